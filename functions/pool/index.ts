// Agency admins fill the lead pool from CSV/JSON files (create an import, stream its content,
// watch progress, read the per-row report) and search, filter and count the pool.
// Reads run as the caller under RLS (admins see every row); imports write as the service.
import { createRoute, z } from "@hono/zod-openapi";
import { requireAdmin, requireUser } from "../../shared/auth/caller.ts";
import { env } from "../../shared/config/env.ts";
import { asService, asUser, db, type Tx } from "../../shared/db/client.ts";
import { enqueue, kick, publishSoon } from "../../shared/flows/outbox.ts";
import { ImportConflictError, importStream, type ImportFormat } from "../../shared/engines/pool-import.ts";
import { createFunctionApp } from "../../shared/http/app.ts";
import { AppError } from "../../shared/http/errors.ts";
import { idempotent } from "../../shared/http/idempotency.ts";
import { decodeCursor, page } from "../../shared/http/pagination.ts";
import { serveFunction } from "../../shared/http/serve.ts";
import {
  errorResponses, IdempotencyHeader, PageQuery, pageOf, UuidParam, BEARER as security, isoDates as iso, jsonContent as json,
} from "../../shared/schemas/common.ts";
import { LeadStatus, Tier } from "../../shared/schemas/leads.ts";

const app = createFunctionApp("pool", {
  title: "Pool",
  description: "Admins import leads into the shared pool from CSV or JSON (streamed, validated, deduplicated, reported per row) and search, filter and count the pool.",
  // the import file is read as a stream, never buffered: exempt from the JSON body limit
  streamedBody: (method, path) => method === "PUT" && /^\/pool\/imports\/[^/]+\/content\/?$/.test(path),
});
// Registered after the OpenAPI document route, so the document stays public.
app.use("*", requireUser(), requireAdmin());
app.post("/imports", idempotent("pool"));


// ---- schemas ---------------------------------------------------------------------------------------

const Format = z.enum(["csv", "json"]);
const ImportStatus = z.enum(["running", "completed", "failed"]);
const Outcome = z.enum(["accepted", "duplicate", "rejected"]);
const Source = z.enum(["manual", "import", "apollo", "referral"]);

const ImportSchema = z
  .object({
    id: z.string().uuid(),
    format: Format,
    filename: z.string().nullable(),
    status: ImportStatus.openapi({ description: "running until the content has been processed, then completed or failed" }),
    rows_seen: z.number().int(),
    accepted: z.number().int(),
    duplicates: z.number().int(),
    rejected: z.number().int(),
    error: z.string().nullable().openapi({ description: "Why a failed import stopped (rows before the fault are kept)" }),
    created_by: z.string().uuid().nullable(),
    started_at: z.string(),
    finished_at: z.string().nullable(),
  })
  .openapi("PoolImport");

const CreatedImportSchema = ImportSchema.extend({
  upload_url: z.string().openapi({ description: "PUT the file here (Content-Type text/csv, application/json or application/x-ndjson)" }),
}).openapi("CreatedPoolImport");

const CreateImportSchema = z
  .object({
    format: Format.openapi({ description: "csv: a header row, then one lead per row. json: an array of objects, or one object per line (NDJSON)" }),
    filename: z.string().trim().min(1).max(255).optional(),
  })
  .strict()
  .openapi("CreatePoolImport");

const ImportRowSchema = z
  .object({
    row_number: z.number().int().openapi({ description: "1-based data row (the CSV header is not counted)" }),
    outcome: Outcome,
    lead_id: z.string().uuid().nullable().openapi({ description: "The new lead (accepted) or the existing lead it duplicates" }),
    reason: z.string().nullable().openapi({ example: "duplicate_email" }),
    field: z.string().nullable().openapi({ example: "email" }),
    message: z.string().nullable(),
  })
  .openapi("PoolImportRow");

const PoolLeadSchema = z
  .object({
    id: z.string().uuid(),
    email: z.string().nullable(),
    email_status: z.string(),
    first_name: z.string().nullable(),
    last_name: z.string().nullable(),
    title: z.string().nullable(),
    company_name: z.string().nullable(),
    company_domain: z.string().nullable(),
    linkedin_url: z.string().nullable(),
    phone: z.string().nullable(),
    phone_e164: z.string().nullable(),
    phone_country: z.string().nullable(),
    country: z.string().nullable(),
    state: z.string().nullable(),
    city: z.string().nullable(),
    source: Source,
    status: LeadStatus,
    als_score: z.number().int().nullable(),
    als_tier: Tier.nullable(),
    import_id: z.string().uuid().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("PoolSearchLead");

const PoolFilters = z.object({
  status: LeadStatus.optional(),
  tier: Tier.optional(),
  source: Source.optional(),
  country: z.string().trim().toUpperCase().regex(/^[A-Z]{2}$/, "ISO 3166-1 alpha-2 code, e.g. AU").optional(),
  import_id: z.string().uuid().optional().openapi({ description: "Leads created by this import" }),
  q: z.string().trim().min(1).max(200).optional().openapi({ description: "Search email, name, company or domain" }),
});

// Human wording for the report's stable reason codes.
const REASON_MESSAGES: Record<string, string> = {
  invalid_email: "not an email address",
  placeholder_domain: "a placeholder domain (example.com, test.com …), not a real one",
  parked_domain: "a domain parking or for-sale host, not a company site",
  invalid_phone: "not a valid phone number (give +<country code> or a country for the row)",
  invalid_linkedin_url: "not a LinkedIn profile URL (linkedin.com/in/<name>)",
  invalid_website: "not a website or domain name",
  invalid_country: "not a country name or ISO 3166 code",
  invalid_value: "must be text, not a list or an object",
  too_long: "longer than the field allows",
  no_channel: "no usable channel: give an email, a phone or a LinkedIn profile URL",
  duplicate_email: "a lead with this email is already in the pool",
  duplicate_linkedin: "a lead with this LinkedIn profile is already in the pool",
  duplicate_phone: "a lead with this phone number is already in the pool",
};

// ---- queries ---------------------------------------------------------------------------------------

const IMPORT_COLUMNS = "id, format, filename, status, rows_seen, accepted, duplicates, rejected, error, created_by, started_at, finished_at";

async function getImport(tx: Tx, id: string) {
  const [row] = await tx`select ${tx.unsafe(IMPORT_COLUMNS)} from public.pool_imports where id = ${id}`;
  return row as Record<string, unknown> | undefined;
}

type Filters = z.infer<typeof PoolFilters>;

function poolWhere(tx: Tx, f: Filters) {
  const like = f.q ? `%${f.q.replace(/[\\%_]/g, (m) => `\\${m}`)}%` : undefined;
  return tx`
    where true
      ${f.status ? tx`and l.status = ${f.status}` : tx``}
      ${f.tier ? tx`and l.als_tier = ${f.tier}` : tx``}
      ${f.source ? tx`and l.source = ${f.source}` : tx``}
      ${f.country ? tx`and l.country = ${f.country}` : tx``}
      ${f.import_id ? tx`and l.import_id = ${f.import_id}` : tx``}
      ${like ? tx`and (l.email_normalized like lower(${like}) or l.company_name ilike ${like} or l.company_domain ilike ${like}
                       or concat_ws(' ', l.first_name, l.last_name) ilike ${like})` : tx``}`;
}

const LEAD_COLUMNS = `l.id, l.email, l.email_status, l.first_name, l.last_name, l.title, l.company_name, l.company_domain,
  l.linkedin_url, l.phone, l.phone_e164, l.phone_country, l.country, l.state, l.city, l.source, l.status, l.als_score,
  l.als_tier, l.import_id, l.created_at, l.updated_at`;

function encodeRowCursor(rowNumber: number): string {
  return btoa(JSON.stringify(["row", rowNumber])).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function decodeRowCursor(cursor: string | undefined): number | null {
  if (!cursor) return null;
  try {
    const [kind, n] = JSON.parse(atob(cursor.replace(/-/g, "+").replace(/_/g, "/")));
    if (kind !== "row" || !Number.isInteger(n) || n < 0) throw new Error("shape");
    return n;
  } catch {
    throw new AppError("validation_failed", "invalid query: cursor", [{ field: "cursor", message: "not a cursor from this API" }]);
  }
}

// ---- imports ---------------------------------------------------------------------------------------

const IdParams = z.object({ id: UuidParam });
type ImportRow = z.infer<typeof ImportSchema>;
const importNotFound = () => new AppError("not_found", "import not found");

app.openapi(
  createRoute({
    method: "post", path: "/imports", summary: "Start an import: returns where to upload the file", security,
    request: { headers: IdempotencyHeader, body: { required: true, content: { "application/json": { schema: CreateImportSchema } } } },
    responses: { 201: json(CreatedImportSchema, "The import, waiting for its content"), ...errorResponses(400, 401, 403, 422) },
  }),
  async (c) => {
    const { format, filename } = c.req.valid("json");
    const caller = c.var.caller!;
    const row = await asService({ role: "admin", id: caller.userId, reason: "pool import created" }, async (tx) => {
      const [created] = await tx`
        insert into public.pool_imports (format, filename, created_by) values (${format}, ${filename ?? null}, ${caller.userId})
        returning ${tx.unsafe(IMPORT_COLUMNS)}`;
      return created;
    });
    const base = env().PUBLIC_FUNCTIONS_BASE_URL ?? "/functions/v1";
    return c.json({ ...(iso(row) as ImportRow), upload_url: `${base}/pool/imports/${row.id}/content` }, 201);
  },
);

app.openapi(
  createRoute({
    method: "get", path: "/imports", summary: "List imports, newest first", security,
    request: { query: PageQuery.extend({ status: ImportStatus.optional() }) },
    responses: { 200: json(pageOf(ImportSchema, "PoolImportPage"), "A page of imports"), ...errorResponses(400, 401, 403) },
  }),
  async (c) => {
    const { limit, cursor, status } = c.req.valid("query");
    const after = decodeCursor(cursor);
    const rows = await asUser(c.var.caller!.claims, (tx) => tx`
      select ${tx.unsafe(IMPORT_COLUMNS)} from public.pool_imports
      where true
        ${status ? tx`and status = ${status}` : tx``}
        ${after ? tx`and (started_at, id) < (${after.createdAt}::timestamptz, ${after.id}::uuid)` : tx``}
      order by started_at desc, id desc
      limit ${limit + 1}`);
    const p = page(rows as unknown as Array<Record<string, unknown>>, limit, (r) => ({ created_at: r.started_at as Date, id: r.id as string }));
    return c.json({ data: p.data.map(iso) as ImportRow[], next_cursor: p.next_cursor }, 200);
  },
);

app.openapi(
  createRoute({
    method: "get", path: "/imports/{id}", summary: "An import's progress (while it runs) or totals", security,
    request: { params: IdParams },
    responses: { 200: json(ImportSchema, "The import"), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const row = await asUser(c.var.caller!.claims, (tx) => getImport(tx, c.req.valid("param").id));
    if (!row) throw importNotFound();
    return c.json(iso(row) as ImportRow, 200);
  },
);

const CSV_TYPES = ["text/csv", "application/csv", "text/plain", "application/vnd.ms-excel", "application/octet-stream"];
const JSON_TYPES = ["application/json", "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines",
  "text/plain", "application/octet-stream"];

app.openapi(
  createRoute({
    method: "put", path: "/imports/{id}/content",
    summary: "Upload the file: it is streamed, validated and deduplicated as it arrives; answers with the totals",
    description: "The body is read as a stream (not subject to the JSON body limit). Progress is readable with GET /pool/imports/{id} " +
      "while the upload runs. A malformed file fails the import (400); the rows before the fault are kept.",
    security,
    request: {
      params: IdParams,
      body: {
        required: true,
        content: {
          "text/csv": { schema: { type: "string", description: "A header row (email, first_name, phone, linkedin_url … common aliases accepted), then one lead per row" } },
          "application/json": { schema: { type: "array", items: { type: "object", additionalProperties: true } } },
          "application/x-ndjson": { schema: { type: "string", description: "One JSON object per line" } },
        },
      },
    },
    responses: {
      200: json(ImportSchema, "The import, completed, with its totals"),
      ...errorResponses(400, 401, 403, 404, 409),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const caller = c.var.caller!;
    const body = c.req.raw.body;
    const current = await asUser(caller.claims, (tx) => getImport(tx, id));
    if (!current) throw importNotFound();
    if (current.status !== "running" || (current.rows_seen as number) > 0) {
      throw new AppError("conflict", `this import already has its content (${current.status}); start a new import to upload again`);
    }
    const format = current.format as ImportFormat;
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (type && !(format === "csv" ? CSV_TYPES : JSON_TYPES).includes(type)) {
      throw new AppError("validation_failed", "invalid header: content-type", [
        { field: "content-type", message: `this is a ${format} import; send ${format === "csv" ? "text/csv" : "application/json or application/x-ndjson"}` },
      ]);
    }
    if (!body) throw new AppError("validation_failed", "invalid body: (body)", [{ field: "(body)", message: "the file is missing" }]);

    try {
      await importStream({ importId: id, format, body, createdBy: caller.userId });
    } catch (err) {
      if (err instanceof ImportConflictError) {
        throw new AppError("conflict", "another upload to this import is running or has finished; start a new import to upload again");
      }
      throw err;
    }
    const done = iso((await asUser(caller.claims, (tx) => getImport(tx, id)))!) as ImportRow;
    if ((done.accepted as number) > 0) {
      // the new leads start through the pipeline now rather than at the next cron tick
      await asService({ role: "service:pool", reason: "imported" }, (tx) => kick(tx, "flow.enrichment"));
      await publishSoon(db());
    }
    if (done.status === "failed") {
      throw new AppError("bad_request", `the file could not be imported: ${done.error}`, { import: done });
    }
    return c.json(done, 200);
  },
);

app.openapi(
  createRoute({
    method: "get", path: "/imports/{id}/rows", summary: "The import's report: one row per input row, in file order", security,
    request: {
      params: IdParams,
      query: z.object({
        outcome: Outcome.optional(),
        limit: z.coerce.number().int().min(1).max(1000).default(100).openapi({ description: "Page size, 1–1000" }),
        cursor: z.string().max(500).optional().openapi({ description: "next_cursor from the previous page" }),
      }),
    },
    responses: { 200: json(pageOf(ImportRowSchema, "PoolImportRowPage"), "A page of report rows"), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const { outcome, limit, cursor } = c.req.valid("query");
    const after = decodeRowCursor(cursor);
    const rows = await asUser(c.var.caller!.claims, async (tx) => {
      if (!(await getImport(tx, id))) throw importNotFound();
      return tx`
        select row_number, outcome, lead_id, reason, field from public.pool_import_rows
        where import_id = ${id}
          ${outcome ? tx`and outcome = ${outcome}` : tx``}
          ${after !== null ? tx`and row_number > ${after}` : tx``}
        order by row_number
        limit ${limit + 1}`;
    });
    const data = rows.slice(0, limit).map((r) => ({
      row_number: r.row_number as number,
      outcome: r.outcome as z.infer<typeof Outcome>,
      lead_id: r.lead_id as string | null,
      reason: r.reason as string | null,
      field: r.field as string | null,
      message: r.reason ? REASON_MESSAGES[r.reason as string] ?? null : null,
    }));
    const next = rows.length > limit ? encodeRowCursor(data[data.length - 1].row_number) : null;
    return c.json({ data, next_cursor: next }, 200);
  },
);

// ---- the pool ----------------------------------------------------------------------------------

app.openapi(
  createRoute({
    method: "get", path: "/leads", summary: "Search and filter the pool, newest first", security,
    request: { query: PageQuery.merge(PoolFilters) },
    responses: { 200: json(pageOf(PoolLeadSchema, "PoolSearchPage"), "A page of pool leads"), ...errorResponses(400, 401, 403) },
  }),
  async (c) => {
    const { limit, cursor, ...filters } = c.req.valid("query");
    const after = decodeCursor(cursor);
    const rows = await asUser(c.var.caller!.claims, (tx) => tx`
      select ${tx.unsafe(LEAD_COLUMNS)} from public.lead_pool l
      ${poolWhere(tx, filters)}
        ${after ? tx`and (l.created_at, l.id) < (${after.createdAt}::timestamptz, ${after.id}::uuid)` : tx``}
      order by l.created_at desc, l.id desc
      limit ${limit + 1}`);
    const p = page(rows as unknown as Array<{ created_at: Date; id: string }>, limit);
    return c.json({ data: p.data.map(iso) as z.infer<typeof PoolLeadSchema>[], next_cursor: p.next_cursor }, 200);
  },
);

app.openapi(
  createRoute({
    method: "get", path: "/leads/count", summary: "Count the pool leads matching the same filters as the search", security,
    request: { query: PoolFilters },
    responses: { 200: json(z.object({ count: z.number().int() }).openapi("PoolCount"), "How many leads match"), ...errorResponses(400, 401, 403) },
  }),
  async (c) => {
    const filters = c.req.valid("query");
    const [row] = await asUser(c.var.caller!.claims, (tx) => tx`select count(*)::int as count from public.lead_pool l ${poolWhere(tx, filters)}`);
    return c.json({ count: row.count as number }, 200);
  },
);

// ---- Apollo pool population runs -------------------------------------------------------------------

const RunSchema = z
  .object({
    id: z.string().uuid(),
    icp_id: z.string().uuid(),
    status: z.enum(["running", "paused", "completed", "failed"]),
    next_page: z.number().int(),
    max_pages: z.number().int(),
    total_entries: z.number().int().nullable(),
    people_seen: z.number().int(),
    people_added: z.number().int(),
    stop_reason: z.string().nullable(),
    started_at: z.string(),
    finished_at: z.string().nullable(),
  })
  .openapi("PopulationRun");
const RUN_COLUMNS = ["id", "icp_id", "status", "next_page", "max_pages", "total_entries", "people_seen", "people_added",
  "stop_reason", "started_at", "finished_at"];

app.post("/population-runs", idempotent("pool"));
app.openapi(
  createRoute({
    method: "post", path: "/population-runs", summary: "Start filling the pool from Apollo people search for an ICP", security,
    request: {
      headers: IdempotencyHeader,
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z.object({
              icp_id: z.string().uuid(),
              max_pages: z.number().int().min(1).max(500).default(500).openapi({ description: "Pages of 100 people, at most" }),
            }).strict(),
          },
        },
      },
    },
    responses: { 201: json(RunSchema, "The run, started"), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { icp_id, max_pages } = c.req.valid("json");
    const run = await asService({ role: "service:pool", id: c.var.caller!.userId, reason: "population run started" }, async (tx) => {
      const [icp] = await tx`select id from public.icps where id = ${icp_id}`;
      if (!icp) throw new AppError("not_found", "ICP not found", [{ field: "icp_id", message: "no such ICP" }]);
      const [row] = await tx`insert into public.pool_population_runs (icp_id, max_pages) values (${icp_id}, ${max_pages}) returning ${tx(RUN_COLUMNS)}`;
      await enqueue(tx, "flow.pool-population", { run_id: row.id });
      return row;
    });
    await publishSoon(db());
    return c.json(iso(run) as z.infer<typeof RunSchema>, 201);
  },
);

app.openapi(
  createRoute({
    method: "get", path: "/population-runs/{id}", summary: "A population run's progress", security,
    request: { params: IdParams },
    responses: { 200: json(RunSchema, "The run"), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const [run] = await asUser(c.var.caller!.claims, (tx) => tx`select ${tx(RUN_COLUMNS)} from public.pool_population_runs where id = ${id}`);
    if (!run) throw new AppError("not_found", "population run not found");
    return c.json(iso(run) as z.infer<typeof RunSchema>, 200);
  },
);

app.openapi(
  createRoute({
    method: "post", path: "/population-runs/{id}/resume", summary: "Resume a paused run from the page it reached", security,
    request: { params: IdParams },
    responses: { 200: json(RunSchema, "The run, running again"), ...errorResponses(400, 401, 403, 404, 409) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const run = await asService({ role: "service:pool", id: c.var.caller!.userId, reason: "population run resumed" }, async (tx) => {
      const [row] = await tx`
        update public.pool_population_runs set status = 'running', stop_reason = null
        where id = ${id} and status = 'paused' returning ${tx(RUN_COLUMNS)}`;
      if (!row) {
        const [exists] = await tx`select status from public.pool_population_runs where id = ${id}`;
        if (!exists) throw new AppError("not_found", "population run not found");
        throw new AppError("conflict", `the run is ${exists.status}, not paused`);
      }
      await enqueue(tx, "flow.pool-population", { run_id: id });
      return row;
    });
    await publishSoon(db());
    return c.json(iso(run) as z.infer<typeof RunSchema>, 200);
  },
);

export default app;
serveFunction(app);
