// The pool importer: streams a CSV or JSON file into lead_pool in batches, with a report row per
// input row and progress counters on pool_imports that are readable while the import runs.
//
// Memory stays flat: the file is parsed as it arrives and at most two batches are alive (one
// being validated while the previous one is in the database). Each batch is one transaction of
// a few set-based statements, never a query per row:
//   1. claim: lock the pool_imports row and check that no other upload has written to it;
//   2. the leads, the batch's report rows (one multi-row insert) and the counters.
// Step 2 goes one of two ways (see writeBatch): the fast way, one statement with a plain INSERT,
// when none of the batch's keys is in the pool yet (new data); else the general way, INSERT …
// ON CONFLICT DO NOTHING against every dedup key (email_normalized, linkedin_key, phone_e164),
// then the rows that did not insert are looked up by their keys to name the lead they duplicate
// and by which key.
// Duplicates are decided as if the rows were inserted one by one in file order: a row duplicates
// the lead an earlier row (or an earlier import) created with one of its keys; a row that was
// itself a duplicate created nothing, so its other keys stay free. Within a batch the general
// way takes "rounds" (a row only races the earlier rows whose outcome is still open); across
// batches the database already holds the earlier batches' leads.
import { db, type Sql, type Tx } from "../db/client.ts";
import { parse as parseCsv } from "csv-parse/stream";
import {
  dedupKeys, fieldForHeader, hasChannelColumn, mapRecord, normalizeLeadFields, type ImportLead, type LeadField,
  type LeadFields, type LeadRowResult,
} from "./lead-row.ts";

export type ImportFormat = "csv" | "json";

export interface ImportTotals {
  rows_seen: number;
  accepted: number;
  duplicates: number;
  rejected: number;
}

export interface ImportResult extends ImportTotals {
  id: string;
  status: "completed" | "failed";
  error: string | null;
}

export interface ImportOptions {
  importId: string;
  format: ImportFormat;
  body: ReadableStream<Uint8Array>;
  /** Rows per transaction (default 2,000). */
  batchSize?: number;
  /** Called after each committed batch with the running totals. */
  onProgress?: (totals: ImportTotals) => void;
  /** The pool to use (default: the function's db() pool). */
  sql?: Sql;
  /** The admin who uploaded the file: lead_pool.created_by and the audit actor. */
  createdBy?: string | null;
}

/** The file cannot be read as the format says; the rows before the fault are kept. */
export class MalformedFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MalformedFileError";
  }
}

/** Another upload is writing (or has written) this import; nothing of this one was kept. */
export class ImportConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImportConflictError";
  }
}

const DEFAULT_BATCH = 2_000;
const MAX_JSON_ROW_CHARS = 1_000_000;

// ---- sources: the file → a row's lead fields, one at a time -----------------------------------

type SourceRow = LeadFields | { invalid: string };

/** Reads the first line to choose the delimiter (",", ";" or tab), then hands the stream on unread. */
async function sniffDelimiter(body: ReadableStream<Uint8Array>): Promise<{ delimiter: string; body: ReadableStream<Uint8Array> }> {
  const reader = body.getReader();
  const head: Uint8Array[] = [];
  let text = "";
  const decoder = new TextDecoder();
  while (!text.includes("\n") && text.length < 65_536) {
    const { done, value } = await reader.read();
    if (done) break;
    head.push(value);
    text += decoder.decode(value, { stream: true });
  }
  const line = text.split("\n", 1)[0].replace(/"[^"]*"/g, "");
  const count = (ch: string) => line.split(ch).length - 1;
  const candidates: Array<[string, number]> = [[",", count(",")], [";", count(";")], ["\t", count("\t")]];
  const [delimiter] = candidates.reduce((best, c) => (c[1] > best[1] ? c : best));
  let i = 0;
  const replay = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (i < head.length) return controller.enqueue(head[i++]);
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return { delimiter, body: replay };
}

async function* csvRows(input: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<SourceRow> {
  const { delimiter, body } = await sniffDelimiter(input);
  const parser = parseCsv({
    bom: true,
    delimiter,
    relax_column_count: true,
    skip_empty_lines: true,
    max_record_size: 1_000_000,
  });
  const records = body.pipeThrough(parser as unknown as TransformStream<Uint8Array, string[]>, { signal });
  let columns: Array<LeadField | "full_name" | null> | undefined;
  try {
    for await (const record of records as unknown as AsyncIterable<string[]>) {
      if (!columns) {
        columns = record.map((h) => fieldForHeader(h));
        if (!hasChannelColumn(record)) {
          throw new MalformedFileError(
            `the CSV has no email, phone or LinkedIn column (its header is: ${record.slice(0, 20).join(", ").slice(0, 300)})`,
          );
        }
        continue;
      }
      const row: LeadFields = {};
      let fullName: string | undefined;
      for (let i = 0; i < record.length && i < columns.length; i++) {
        const field = columns[i];
        if (!field || !record[i]) continue;
        if (field === "full_name") fullName ??= record[i];
        else if (row[field] === undefined || !row[field]!.trim()) row[field] = record[i]; // first non-blank wins
      }
      yield fullName === undefined ? row : mapRecord({ ...row, full_name: fullName });
    }
  } catch (err) {
    if (err instanceof MalformedFileError) throw err;
    const e = err as { code?: string; message?: string };
    if (typeof e.code === "string" && e.code.startsWith("CSV_")) throw new MalformedFileError(`invalid CSV: ${e.message}`);
    throw err;
  }
  if (!columns) throw new MalformedFileError("the file is empty: a CSV import needs a header row");
}

/**
 * Splits a JSON array of objects, or newline-delimited (or simply concatenated) objects, into one
 * object at a time without holding the file: it only tracks nesting and strings to find where
 * each top-level object ends, and JSON.parse checks the object itself.
 */
export async function* jsonObjects(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<Record<string, unknown>> {
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  type State = "start" | "array_first" | "array_after" | "array_next" | "lines" | "end";
  let state: State = "start";
  let depth = 0;
  let inString = false;
  let escaped = false;
  let carry = "";
  let count = 0;
  let afterObject: State = "lines";

  const fail = (what: string): never => {
    throw new MalformedFileError(`invalid JSON after ${count} row${count === 1 ? "" : "s"}: ${what}`);
  };
  const parseObject = (text: string): Record<string, unknown> => {
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      return fail(`row ${count + 1}: ${(err as Error).message}`);
    }
  };

  const reader = body.getReader();
  signal?.addEventListener("abort", () => void reader.cancel(signal.reason).catch(() => {}), { once: true });
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      finished = done;
      let text: string;
      try {
        text = done ? decoder.decode() : decoder.decode(value, { stream: true });
      } catch {
        return fail("the file is not UTF-8 text");
      }
      let start = depth > 0 ? 0 : -1;
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (depth > 0) {
          if (inString) {
            if (escaped) escaped = false;
            else if (c === 92) escaped = true; // \
            else if (c === 34) inString = false; // "
          } else if (c === 34) inString = true;
          else if (c === 123 || c === 91) depth++; // { [
          else if (c === 125 || c === 93) { // } ]
            if (--depth === 0) {
              const object = parseObject(carry + text.slice(start, i + 1));
              count++;
              carry = "";
              start = -1;
              state = afterObject;
              yield object;
            }
          }
          continue;
        }
        if (c === 32 || c === 10 || c === 13 || c === 9 || c === 0xfeff) continue;
        const open = c === 123;
        switch (state) {
          case "start":
            if (c === 91) { state = "array_first"; continue; }
            if (!open) fail("expected an array of objects or one object per line");
            afterObject = "lines";
            break;
          case "array_first":
            if (c === 93) { state = "end"; continue; }
            if (!open) fail(`row ${count + 1} is not an object`);
            afterObject = "array_after";
            break;
          case "array_next":
            if (!open) fail(`row ${count + 1} is not an object`);
            break;
          case "array_after":
            if (c === 44) { state = "array_next"; continue; }
            if (c === 93) { state = "end"; continue; }
            fail(`expected "," or "]" after row ${count}`);
            break;
          case "lines":
            if (!open) fail(`expected an object on its own line after row ${count}`);
            break;
          case "end":
            fail("unexpected data after the closing \"]\"");
        }
        depth = 1;
        start = i;
      }
      if (depth > 0) {
        carry += text.slice(start);
        if (carry.length > MAX_JSON_ROW_CHARS) fail(`row ${count + 1} is larger than ${MAX_JSON_ROW_CHARS} characters`);
      }
      if (done) break;
    }
  } finally {
    // stopped early (a fault, or the writer gave up): stop the upload too
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  if (depth > 0) fail(`the file ends inside row ${count + 1}`);
  if (state === "start") fail("the file is empty");
  if (state === "array_first" || state === "array_after" || state === "array_next") fail("the file ends before the closing \"]\"");
}

async function* jsonRows(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<SourceRow> {
  for await (const value of jsonObjects(body, signal)) yield mapRecord(value);
}

// ---- a batch ---------------------------------------------------------------------------------------

interface BatchRow {
  n: number;
  result: LeadRowResult;
}

type DupKey = "email" | "linkedin" | "phone";
const KEY_FIELD: Record<DupKey, LeadField> = { email: "email", linkedin: "linkedin_url", phone: "phone" };
const KEY_ORDER: DupKey[] = ["email", "linkedin", "phone"];

interface Candidate {
  index: number; // position in the batch
  id: string;
  lead: ImportLead;
  keys: Record<DupKey, string | null>;
}

interface Outcome {
  outcome: "accepted" | "duplicate" | "rejected";
  leadId: string | null;
  reason: string | null;
  field: string | null;
}

const LEAD_COLUMNS = [
  "email", "first_name", "last_name", "title", "company_name", "company_domain", "linkedin_url",
  "linkedin_key", "phone", "phone_e164", "phone_country", "country", "state", "city",
] as const;

/**
 * INSERT of these rows into lead_pool: ON CONFLICT DO NOTHING (every unique index is an arbiter,
 * so a row whose email, LinkedIn or phone is taken is skipped), or plain for the fast path,
 * where a taken key aborts the statement instead. No terminator: it also serves as a CTE.
 */
function insertLeadsSql(tx: Tx, importId: string, createdBy: string | null, rows: Candidate[], mode: "skip_conflicts" | "plain") {
  const col = (c: (typeof LEAD_COLUMNS)[number]) => rows.map((r) => r.lead[c]);
  return tx`
    insert into public.lead_pool (id, email, first_name, last_name, title, company_name, company_domain, linkedin_url,
      linkedin_key, phone, phone_e164, phone_country, country, state, city, source, status, import_id, created_by)
    select u.*, 'import', 'new', ${importId}::uuid, ${createdBy}::uuid
    from unnest(${rows.map((r) => r.id)}::uuid[], ${col("email")}::text[], ${col("first_name")}::text[],
      ${col("last_name")}::text[], ${col("title")}::text[], ${col("company_name")}::text[], ${col("company_domain")}::text[],
      ${col("linkedin_url")}::text[], ${col("linkedin_key")}::text[], ${col("phone")}::text[], ${col("phone_e164")}::text[],
      ${col("phone_country")}::text[], ${col("country")}::text[], ${col("state")}::text[], ${col("city")}::text[]) as u
    ${mode === "skip_conflicts" ? tx`on conflict do nothing returning id` : tx`returning 1`}`;
}

async function insertLeads(tx: Tx, importId: string, createdBy: string | null, rows: Candidate[]): Promise<Set<string>> {
  const inserted = await insertLeadsSql(tx, importId, createdBy, rows, "skip_conflicts");
  return new Set(inserted.map((r) => r.id as string));
}

/** The leads already in the pool under any of these keys. */
async function existingLeads(tx: Tx, rows: Candidate[]): Promise<Array<{ kind: DupKey; value: string; id: string }>> {
  const keys = (k: DupKey) => rows.map((r) => r.keys[k]).filter((v): v is string => v !== null);
  const found = await tx`
    select 'email' as kind, email_normalized as value, id from public.lead_pool where email_normalized = any(${keys("email")}::text[])
    union all
    select 'linkedin', linkedin_key, id from public.lead_pool where linkedin_key = any(${keys("linkedin")}::text[])
    union all
    select 'phone', phone_e164, id from public.lead_pool where phone_e164 = any(${keys("phone")}::text[])`;
  return found as unknown as Array<{ kind: DupKey; value: string; id: string }>;
}

/**
 * Decides every valid row of the batch (accepted or duplicate of which lead) as a row-by-row
 * insert in file order would, with one INSERT per round; see the file comment.
 */
async function decide(tx: Tx, importId: string, createdBy: string | null, candidates: Candidate[], outcomes: Outcome[]) {
  // key value → the lead holding it: accepted rows of this batch and leads found in the pool
  const known: Record<DupKey, Map<string, string>> = { email: new Map(), linkedin: new Map(), phone: new Map() };
  let open = candidates;
  for (let round = 0; open.length > 0; round++) {
    if (round > 50) throw new Error("pool import: the batch's duplicates did not settle after 50 rounds");
    // rows holding a key some lead already has are duplicates of it (email before LinkedIn before phone)
    const stillOpen: Candidate[] = [];
    for (const c of open) {
      const kind = KEY_ORDER.find((k) => c.keys[k] !== null && known[k].has(c.keys[k]!));
      if (kind) {
        outcomes[c.index] = { outcome: "duplicate", leadId: known[kind].get(c.keys[kind]!)!, reason: `duplicate_${kind}`, field: KEY_FIELD[kind] };
      } else stillOpen.push(c);
    }
    // winners: rows no earlier open row shares a key with
    const claimed: Record<DupKey, Set<string>> = { email: new Set(), linkedin: new Set(), phone: new Set() };
    const winners: Candidate[] = [];
    const waiting: Candidate[] = [];
    for (const c of stillOpen) {
      const blocked = KEY_ORDER.some((k) => c.keys[k] !== null && claimed[k].has(c.keys[k]!));
      for (const k of KEY_ORDER) if (c.keys[k] !== null) claimed[k].add(c.keys[k]!);
      (blocked ? waiting : winners).push(c);
    }
    if (winners.length === 0) break;
    const inserted = await insertLeads(tx, importId, createdBy, winners);
    const conflicted: Candidate[] = [];
    for (const c of winners) {
      if (inserted.has(c.id)) {
        outcomes[c.index] = { outcome: "accepted", leadId: c.id, reason: null, field: null };
        for (const k of KEY_ORDER) if (c.keys[k] !== null) known[k].set(c.keys[k]!, c.id);
      } else conflicted.push(c);
    }
    if (conflicted.length > 0) {
      for (const row of await existingLeads(tx, conflicted)) known[row.kind].set(row.value, row.id);
      // a conflicting lead that vanished in between (deleted) is simply tried again
      for (const c of conflicted) c.id = crypto.randomUUID();
    }
    open = [...conflicted, ...waiting].sort((a, b) => a.index - b.index);
  }
}

/**
 * The batch decided row by row in file order as if no lead outside it shared a key: a row is a
 * duplicate of the earlier accepted row holding one of its keys (email before LinkedIn before
 * phone), else accepted. Returns the accepted rows; fills their outcomes and the duplicates'.
 */
function decideWithinBatch(candidates: Candidate[], outcomes: Outcome[]): Candidate[] {
  const known: Record<DupKey, Map<string, string>> = { email: new Map(), linkedin: new Map(), phone: new Map() };
  const accepted: Candidate[] = [];
  for (const c of candidates) {
    const kind = KEY_ORDER.find((k) => c.keys[k] !== null && known[k].has(c.keys[k]!));
    if (kind) {
      outcomes[c.index] = { outcome: "duplicate", leadId: known[kind].get(c.keys[kind]!)!, reason: `duplicate_${kind}`, field: KEY_FIELD[kind] };
      continue;
    }
    outcomes[c.index] = { outcome: "accepted", leadId: c.id, reason: null, field: null };
    for (const k of KEY_ORDER) if (c.keys[k] !== null) known[k].set(c.keys[k]!, c.id);
    accepted.push(c);
  }
  return accepted;
}

function tally(outcomes: Outcome[]): ImportTotals {
  const totals: ImportTotals = { rows_seen: outcomes.length, accepted: 0, duplicates: 0, rejected: 0 };
  for (const o of outcomes) {
    if (o.outcome === "accepted") totals.accepted++;
    else if (o.outcome === "duplicate") totals.duplicates++;
    else totals.rejected++;
  }
  return totals;
}

function reportSql(tx: Tx, importId: string, rows: BatchRow[], outcomes: Outcome[]) {
  return tx`
    insert into public.pool_import_rows (import_id, row_number, outcome, lead_id, reason, field)
    select ${importId}::uuid, u.* from unnest(${rows.map((r) => r.n)}::int[], ${outcomes.map((o) => o.outcome)}::text[],
      ${outcomes.map((o) => o.leadId)}::uuid[], ${outcomes.map((o) => o.reason)}::text[], ${outcomes.map((o) => o.field)}::text[]) as u`;
}

function countersSql(tx: Tx, importId: string, t: ImportTotals) {
  return tx`
    update public.pool_imports
    set rows_seen = rows_seen + ${t.rows_seen}, accepted = accepted + ${t.accepted},
        duplicates = duplicates + ${t.duplicates}, rejected = rejected + ${t.rejected}
    where id = ${importId}`;
}

/**
 * One batch, one transaction, in one of two ways:
 * - fast (the usual case for new data): the within-batch decision is taken as final and the
 *   leads (a plain INSERT), the report and the counters go in one statement, sent together with
 *   the claim: one round trip, and no ON CONFLICT probing of every unique index per row. If one
 *   of the rows' keys is already in the pool, the INSERT fails on its unique index (23505), the
 *   transaction rolls back and the batch is written again the general way.
 * - general: decide() against the pool with INSERT … ON CONFLICT DO NOTHING, then the report.
 * Returns the batch's totals and whether the fast way was tried and failed.
 */
async function writeBatch(
  sql: Sql, importId: string, createdBy: string | null, rows: BatchRow[], seenBefore: number, tryFast: boolean,
): Promise<{ totals: ImportTotals; fellBack: boolean }> {
  if (tryFast) {
    try {
      return { totals: await writeBatchOnce(sql, importId, createdBy, rows, seenBefore, true), fellBack: false };
    } catch (err) {
      if ((err as { code?: string }).code !== UNIQUE_VIOLATION) throw err;
    }
  }
  return { totals: await writeBatchOnce(sql, importId, createdBy, rows, seenBefore, false), fellBack: tryFast };
}

const UNIQUE_VIOLATION = "23505";

async function writeBatchOnce(
  sql: Sql, importId: string, createdBy: string | null, rows: BatchRow[], seenBefore: number, fast: boolean,
): Promise<ImportTotals> {
  const outcomes: Outcome[] = new Array(rows.length);
  const candidates: Candidate[] = [];
  rows.forEach((row, index) => {
    const r = row.result;
    if (r.ok) candidates.push({ index, id: crypto.randomUUID(), lead: r.lead, keys: dedupKeys(r.lead) });
    else outcomes[index] = { outcome: "rejected", leadId: null, reason: r.reason, field: r.field };
  });
  const accepted = fast ? decideWithinBatch(candidates, outcomes) : [];
  const fastTotals = fast ? tally(outcomes) : undefined;

  return await sql.begin(async (tx) => {
    // Sent together: postgres.js pipelines a transaction's queries that are not awaited one by one.
    const [, [claim], written] = await Promise.all([
      // Batches commit without waiting for the WAL flush (a crash loses at most the last
      // batches, counters and rows together, and the import stays "running"); finish() commits
      // synchronously, which flushes every batch before the import is reported complete.
      tx`select set_config('app.actor_role', 'import', true), set_config('app.actor_id', ${createdBy ?? ""}, true),
                set_config('app.reason', 'pool import', true), set_config('synchronous_commit', 'off', true)`,
      // The row lock serialises two uploads of one import; the count check lets only the first write.
      tx`select status, rows_seen from public.pool_imports where id = ${importId} for update`,
      fast
        ? tx`
          with ins as (${insertLeadsSql(tx, importId, createdBy, accepted, "plain")}),
          report as (${reportSql(tx, importId, rows, outcomes)}),
          counters as (${countersSql(tx, importId, fastTotals!)})
          select (select count(*) from ins)::int as inserted`
        : null,
    ]);
    if (!claim || claim.status !== "running" || claim.rows_seen !== seenBefore) {
      throw new ImportConflictError("another upload is writing to this import");
    }
    if (written) return fastTotals!;

    await decide(tx, importId, createdBy, candidates, outcomes);
    const totals = tally(outcomes);
    await Promise.all([reportSql(tx, importId, rows, outcomes), countersSql(tx, importId, totals)]);
    return totals;
  }) as ImportTotals;
}

// ---- the pipeline ----------------------------------------------------------------------------------

/**
 * The hand-over between the parser (producer) and the batch writer (consumer): put() returns
 * once the writer has taken the batch, so the parser prepares exactly one batch while the
 * previous one is in the database, and at most two batches are alive at a time.
 */
class Handover<T> {
  private item: T | undefined;
  private closed = false;
  private failure: unknown;
  private wakeTaker?: () => void;
  private wakePutter?: () => void;

  async put(item: T): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    this.item = item;
    this.wakeTaker?.();
    while (this.item !== undefined && this.failure === undefined) await new Promise<void>((r) => (this.wakePutter = r));
    if (this.failure !== undefined) throw this.failure;
  }

  async take(): Promise<T | undefined> {
    while (this.item === undefined && !this.closed) await new Promise<void>((r) => (this.wakeTaker = r));
    const item = this.item;
    this.item = undefined;
    this.wakePutter?.();
    return item;
  }

  close(): void {
    this.closed = true;
    this.wakeTaker?.();
  }

  /** The consumer gave up: the producer's next put throws this. */
  abort(err: unknown): void {
    this.failure = err;
    this.wakePutter?.();
  }
}

/**
 * Lets pending I/O (the batch writer's database replies) run between slices of parsing. An
 * in-memory or already-buffered body is read through promise jobs alone, which never give the
 * event loop a turn, so without this the writer would wait for the parser's whole batch.
 * A MessageChannel message is a task without setTimeout's 1–4 ms clamp.
 */
function eventLoopYielder(): { yield(): Promise<void>; close(): void } {
  if (typeof MessageChannel === "undefined") {
    return { yield: () => new Promise<void>((r) => setTimeout(r, 0)), close: () => {} };
  }
  const channel = new MessageChannel();
  const waiting: Array<() => void> = [];
  channel.port1.onmessage = () => waiting.shift()?.();
  return {
    yield: () => new Promise<void>((r) => {
      waiting.push(r);
      channel.port2.postMessage(0);
    }),
    close: () => {
      channel.port1.close();
      channel.port2.close();
    },
  };
}

const SLICE_MS = 4;

async function finish(sql: Sql, importId: string, status: "completed" | "failed", error: string | null): Promise<ImportResult> {
  const [row] = await sql`
    update public.pool_imports set status = ${status}, error = ${error}, finished_at = now()
    where id = ${importId} and status = 'running'
    returning id, status, rows_seen, accepted, duplicates, rejected, error`;
  if (!row) throw new ImportConflictError("the import was finished by another upload");
  return row as unknown as ImportResult;
}

/**
 * Imports a CSV or JSON stream into the pool under an existing pool_imports row (status
 * running, nothing written yet). Resolves with the final totals: status completed, or failed
 * with the reason when the file is malformed (rows before the fault are kept). Throws
 * ImportConflictError when another upload owns the import, and rethrows unexpected errors after
 * marking the import failed.
 */
export async function importStream(opts: ImportOptions): Promise<ImportResult> {
  const sql = opts.sql ?? db();
  const size = Math.max(1, Math.floor(opts.batchSize ?? DEFAULT_BATCH));
  const createdBy = opts.createdBy ?? null;
  // Stops reading the upload when the writer fails, so the producer never waits on a client.
  const stop = new AbortController();
  const source = opts.format === "csv" ? csvRows(opts.body, stop.signal) : jsonRows(opts.body, stop.signal);
  const handover = new Handover<BatchRow[]>();
  let sourceError: unknown;

  const yielder = eventLoopYielder();
  const produce = async () => {
    let batch: BatchRow[] = [];
    let n = 0;
    let sliceStart = performance.now();
    try {
      for await (const raw of source) {
        n++;
        const result: LeadRowResult = "invalid" in raw
          ? { ok: false, reason: "invalid_value", field: fieldOf(raw.invalid), message: `${raw.invalid} must be text` }
          : normalizeLeadFields(raw);
        batch.push({ n, result });
        if (batch.length >= size) {
          await handover.put(batch);
          batch = [];
        }
        if ((n & 63) === 0 && performance.now() - sliceStart > SLICE_MS) {
          await yielder.yield();
          sliceStart = performance.now();
        }
      }
    } catch (err) {
      sourceError = err;
    }
    try {
      if (batch.length > 0) await handover.put(batch);
    } catch {
      // the writer already failed; its error wins
    }
    handover.close();
  };

  const totals: ImportTotals = { rows_seen: 0, accepted: 0, duplicates: 0, rejected: 0 };
  // After a batch that had to go the general way (the file overlaps the pool: a re-import, say),
  // the next few go straight there instead of failing the fast way first.
  let generalFor = 0;
  const consume = async () => {
    for (let batch = await handover.take(); batch; batch = await handover.take()) {
      const written = await writeBatch(sql, opts.importId, createdBy, batch, totals.rows_seen, generalFor === 0);
      generalFor = written.fellBack ? 4 : Math.max(0, generalFor - 1);
      const t = written.totals;
      totals.rows_seen += t.rows_seen;
      totals.accepted += t.accepted;
      totals.duplicates += t.duplicates;
      totals.rejected += t.rejected;
      opts.onProgress?.({ ...totals });
    }
  };

  const producing = produce().finally(() => yielder.close());
  try {
    await consume();
  } catch (err) {
    handover.abort(err);
    stop.abort(err);
    await producing;
    if (err instanceof ImportConflictError) throw err;
    await finish(sql, opts.importId, "failed", "the import stopped on an internal error; rows before it were kept").catch(() => {});
    throw err;
  }
  await producing;
  if (sourceError instanceof MalformedFileError) return finish(sql, opts.importId, "failed", sourceError.message);
  if (sourceError) {
    const message = `the upload could not be read: ${(sourceError as Error).message ?? String(sourceError)}`;
    return finish(sql, opts.importId, "failed", message);
  }
  return finish(sql, opts.importId, "completed", null);
}

function fieldOf(key: string): LeadField {
  const f = fieldForHeader(key);
  return f === null || f === "full_name" ? "first_name" : f;
}
