// Reply recovery (product.md §7): polls the providers for replies no webhook delivered — a webhook
// that was never sent, refused, or lost — and feeds them through the same path as a webhook reply:
// a replies row (class null) inserted ON CONFLICT (provider, provider_message_id) DO NOTHING, so a
// reply the webhook already stored is not stored twice, and 'flow.replies' {reply_id} queued.
//
//   Salesforge  GET /workspaces/{ws}/threads, then the thread of each one with new activity whose
//               contact is one of our leads: its inbound emails (provider_message_id = the email id,
//               as the webhook path stores it).
//   Unipile     per connected LinkedIn account (senders of provider unipile): GET /chats, and for the
//               chats our own sends started (sends.thread_ref = chat id) — never anyone else's chats
//               — GET /chats/{id}/messages: the messages the other person sent after our first one
//               (provider_message_id = Unipile's message id, as the webhook path stores it).
//
// Bounded per tick: at most N thread pages, N thread reads, N chats per account, N accounts. What was
// read is remembered per source as a keyset cursor over (last activity, id)
// (reply_recovery_cursors.watermark / watermark_id): a tick reads the threads and chats after it,
// oldest activity first, and moves it to the last one read, so a capped tick is continued by the
// next one and a thread with new activity comes round again. A listing cut short by the page bound
// leaves the cursor where it was, so nothing unseen is skipped. A provider that fails is recorded on
// its cursor and the other sources still run. Provider calls go through the clients (provider_calls rows).
import { asService, db, type Sql, type Tx } from "../db/client.ts";
import { enqueue } from "../flows/outbox.ts";
import { ProviderError } from "../integrations/provider-http.ts";
import { salesforgeThreadRef, type SalesforgeClient, type SalesforgeThread, type SalesforgeThreadEmail } from "../integrations/salesforge.ts";
import type { UnipileChat, UnipileClient, UnipileMessage } from "../integrations/unipile.ts";
import { log } from "../observability/log.ts";
import { normaliseEmail } from "./suppress.ts";

export const REPLIES_TOPIC = "flow.replies";

export interface RecoveryLimits {
  /** Salesforge thread pages (100 threads each) listed per tick. */
  threadPages: number;
  /** Salesforge threads read per tick. */
  threadReads: number;
  /** Unipile chat pages (50 each) listed per account per tick. */
  chatPages: number;
  /** Unipile chats read per account per tick. */
  chatReads: number;
  /** Unipile accounts polled per tick. */
  accounts: number;
  /** Messages read per chat (the newest). */
  messagesPerChat: number;
}

export const DEFAULT_RECOVERY_LIMITS: RecoveryLimits = { threadPages: 10, threadReads: 50, chatPages: 4, chatReads: 25, accounts: 20, messagesPerChat: 50 };
/** Where a source's first poll starts. */
export const FIRST_POLL_LOOKBACK_DAYS = 14;

export interface RecoveryDeps {
  /** null: not configured (skipped). */
  salesforge: SalesforgeClient | null;
  unipile: UnipileClient | null;
  sql?: Sql;
  now?: Date;
  limits?: Partial<RecoveryLimits>;
}

export interface SourceResult {
  source: string;
  /** Threads or chats read. */
  read: number;
  /** Inbound messages seen (new or already stored). */
  seen: number;
  /** New replies stored and queued for classification. */
  recovered: number;
  /** Stopped early by the bounds: the next tick goes on. */
  more: boolean;
  error?: string;
}

export interface RecoveryResult {
  sources: SourceResult[];
  recovered: number;
  more: boolean;
}

interface Found {
  provider: "salesforge" | "unipile";
  providerMessageId: string;
  channel: "email" | "linkedin";
  from: string | null;
  subject: string | null;
  body: string;
  receivedAt: Date;
  clientId: string | null;
  leadId: string | null;
  assignmentId: string | null;
  sendId: string | null;
  payload: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Cursors and storing
// ---------------------------------------------------------------------------------------------

/** A position in (last activity, id) order. */
export interface Cursor {
  at: Date;
  id: string;
}

async function cursorOf(sql: Sql, source: string, now: Date): Promise<Cursor> {
  const [r] = await sql`select watermark, watermark_id from public.reply_recovery_cursors where source = ${source}`;
  return r ? { at: r.watermark as Date, id: r.watermark_id as string } : { at: new Date(now.getTime() - FIRST_POLL_LOOKBACK_DAYS * 86_400_000), id: "" };
}

/** Saves the cursor (null: leave it) and the poll's outcome. */
async function saveCursor(tx: Tx, source: string, cursor: Cursor | null, found: number, error: string | null, now: Date) {
  const initial = new Date(now.getTime() - FIRST_POLL_LOOKBACK_DAYS * 86_400_000);
  await tx`
    insert into public.reply_recovery_cursors as c (source, watermark, watermark_id, polled_at, found, last_error)
    values (${source}, ${cursor?.at ?? initial}, ${cursor?.id ?? ""}, ${now}, ${found}, ${error})
    on conflict (source) do update set
      watermark = case when ${cursor?.at ?? null}::timestamptz is null then c.watermark else excluded.watermark end,
      watermark_id = case when ${cursor?.at ?? null}::timestamptz is null then c.watermark_id else excluded.watermark_id end,
      polled_at = excluded.polled_at, found = c.found + excluded.found, last_error = excluded.last_error`;
}

/** Items after the cursor in (activity, id) order, oldest first; items without a time come last, every tick. */
export function afterCursor<T>(items: T[], key: (t: T) => { at: Date | null; id: string }, cursor: Cursor): T[] {
  const after = (t: T) => {
    const k = key(t);
    if (!k.at) return true;
    return k.at.getTime() > cursor.at.getTime() || (k.at.getTime() === cursor.at.getTime() && k.id > cursor.id);
  };
  const order = (a: T, b: T) => {
    const ka = key(a);
    const kb = key(b);
    const ta = ka.at?.getTime() ?? Number.POSITIVE_INFINITY;
    const tb = kb.at?.getTime() ?? Number.POSITIVE_INFINITY;
    return ta !== tb ? ta - tb : ka.id < kb.id ? -1 : ka.id > kb.id ? 1 : 0;
  };
  return items.filter(after).sort(order);
}

/** The cursor after reading batch (in order): its last item with a time, else unchanged. */
function advance<T>(batch: T[], key: (t: T) => { at: Date | null; id: string }): Cursor | null {
  for (let i = batch.length - 1; i >= 0; i--) {
    const k = key(batch[i]);
    if (k.at) return { at: k.at, id: k.id };
  }
  return null;
}

/** Stores the replies no webhook brought (the stored ones are left alone); returns how many were new. */
export async function storeRecovered(tx: Tx, found: Found[]): Promise<number> {
  let recovered = 0;
  for (const f of found) {
    const [reply] = await tx`
      insert into public.replies (client_id, lead_id, assignment_id, send_id, channel, provider, provider_message_id,
                                  from_address, subject, body, received_at)
      values (${f.clientId}, ${f.leadId}, ${f.assignmentId}, ${f.sendId}, ${f.channel}, ${f.provider}, ${f.providerMessageId},
              ${f.from}, ${f.subject}, ${f.body}, ${f.receivedAt})
      on conflict (provider, provider_message_id) do nothing
      returning id`;
    if (!reply) continue;
    // the raw provider record, kept like a webhook's (provider 'recovery'), for the audit trail
    const [ev] = await tx`
      insert into public.webhook_events (provider, event_id, event_type, payload, processed_at)
      values ('recovery', ${`${f.provider}:${f.providerMessageId}`}, 'reply.recovered', ${tx.json(f.payload as never)}, now())
      on conflict (provider, event_id) do update set processed_at = excluded.processed_at
      returning id`;
    await tx`update public.replies set webhook_event_id = ${ev.id} where id = ${reply.id}`;
    await enqueue(tx, REPLIES_TOPIC, { reply_id: reply.id }, { dedupKey: `${REPLIES_TOPIC}:${reply.id}`, clientId: f.clientId ?? undefined });
    recovered++;
  }
  return recovered;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function dateOf(s: string | null | undefined): Date | null {
  if (!s) return null;
  const t = Date.parse(s);
  return Number.isFinite(t) ? new Date(t) : null;
}

// ---------------------------------------------------------------------------------------------
// Salesforge
// ---------------------------------------------------------------------------------------------

const INBOUND = new Set(["inbound", "incoming", "received", "in", "reply"]);

async function recoverSalesforge(sf: SalesforgeClient, sql: Sql, now: Date, lim: RecoveryLimits): Promise<SourceResult> {
  const source = "salesforge";
  const res: SourceResult = { source, read: 0, seen: 0, recovered: 0, more: false };
  const cursor = await cursorOf(sql, source, now);
  const key = (t: SalesforgeThread) => ({ at: dateOf(t.lastMessageAt), id: t.id });
  try {
    // 1. list threads (bounded); keep those with activity after the cursor
    const threads: SalesforgeThread[] = [];
    let complete = false;
    for (let p = 0; p < lim.threadPages; p++) {
      const pageRows = await sf.listThreads({ limit: 100, offset: p * 100 });
      threads.push(...pageRows);
      if (pageRows.length < 100) {
        complete = true;
        break;
      }
    }
    const active = threads.filter((t) => t.mailboxId);
    // 2. only our leads' threads are read
    const emails = [...new Set(active.map((t) => normaliseEmail(t.contactEmail)).filter((e): e is string => !!e))];
    const leads = emails.length
      ? await sql`select id, email_normalized from public.lead_pool where email_normalized = any(${emails}::text[])`
      : [];
    const leadByEmail = new Map(leads.map((l) => [l.email_normalized as string, l.id as string]));
    const ours = afterCursor(active.filter((t) => leadByEmail.has(normaliseEmail(t.contactEmail) ?? "")), key, cursor);
    const batch = ours.slice(0, lim.threadReads);
    res.more = !complete || batch.length < ours.length;

    const found: Found[] = [];
    for (const t of batch) {
      const detail = await sf.getThread(t.mailboxId!, t.id);
      res.read++;
      if (!detail) continue;
      const leadId = leadByEmail.get(normaliseEmail(t.contactEmail) ?? "")!;
      const outbound = detail.emails.filter((e) => !isInbound(e, t));
      const inbound = detail.emails.filter((e) => isInbound(e, t));
      res.seen += inbound.length;
      if (!inbound.length) continue;
      // our send: the one that started (or replied in) this thread, else the lead's latest email send
      const refs = outbound.map((e) => salesforgeThreadRef(t.mailboxId!, e.id));
      const [send] = await sql`
        select s.id, s.assignment_id, s.client_id from public.sends s
        where s.lead_id = ${leadId} and s.channel = 'email'
        order by (s.provider = 'salesforge' and (s.thread_ref = any(${refs}::text[]) or s.provider_message_id = any(${outbound.map((e) => e.id)}::text[]))) desc,
                 s.created_at desc
        limit 1`;
      const [a] = send ? [] : await sql`
        select id, client_id from public.lead_assignments where lead_id = ${leadId}
        order by (ended_at is null) desc, created_at desc limit 1`;
      for (const e of inbound) {
        found.push({
          provider: "salesforge", providerMessageId: e.id, channel: "email",
          from: normaliseEmail(e.from) ?? normaliseEmail(t.contactEmail) ?? e.from, subject: e.subject ?? t.subject, body: e.content ?? "",
          receivedAt: dateOf(e.sentAt) ?? now,
          clientId: (send?.client_id as string | undefined) ?? (a?.client_id as string | undefined) ?? null,
          leadId, assignmentId: (send?.assignment_id as string | undefined) ?? (a?.id as string | undefined) ?? null,
          sendId: (send?.id as string | undefined) ?? null,
          payload: { source: "salesforge.threads", thread_id: t.id, mailbox_id: t.mailboxId, email: e },
        });
      }
    }
    res.recovered = await asService({ role: "service:reply-recovery", reason: "replies recovered from Salesforge" }, async (tx) => {
      const n = await storeRecovered(tx, found);
      // a listing cut short keeps the cursor: threads it did not list may sort before the ones read
      await saveCursor(tx, source, complete ? advance(batch, key) : null, n, null, now);
      return n;
    });
  } catch (err) {
    res.error = errorText(err);
    await asService({ role: "service:reply-recovery" }, (tx) => saveCursor(tx, source, null, 0, res.error!, now));
  }
  return res;
}

function isInbound(e: SalesforgeThreadEmail, t: SalesforgeThread): boolean {
  if (e.direction) return INBOUND.has(e.direction.toLowerCase());
  // no direction given: an email from the contact is theirs
  return !!normaliseEmail(e.from) && normaliseEmail(e.from) === normaliseEmail(t.contactEmail);
}

// ---------------------------------------------------------------------------------------------
// Unipile
// ---------------------------------------------------------------------------------------------

async function recoverUnipileAccount(up: UnipileClient, accountId: string, sql: Sql, now: Date, lim: RecoveryLimits): Promise<SourceResult> {
  const source = `unipile:${accountId}`;
  const res: SourceResult = { source, read: 0, seen: 0, recovered: 0, more: false };
  const position = await cursorOf(sql, source, now);
  const key = (c: UnipileChat) => ({ at: dateOf(c.timestamp), id: c.id });
  try {
    // 1. chats with activity after the cursor (Unipile lists newest first; stop at older ones)
    const chats: UnipileChat[] = [];
    let cursor: string | null = null;
    let complete = false;
    for (let p = 0; p < lim.chatPages; p++) {
      const pg = await up.listChats(accountId, { limit: 50, cursor });
      chats.push(...pg.items);
      const oldest = pg.items.reduce<Date | null>((m, c) => {
        const d = dateOf(c.timestamp);
        return d && (!m || d < m) ? d : m;
      }, null);
      cursor = pg.cursor;
      if (!cursor || (oldest && oldest < position.at)) {
        complete = true;
        break;
      }
    }
    // 2. only chats our sends started are ours to read
    const ids = chats.map((c) => c.id);
    const sends = ids.length
      ? await sql`
          select distinct on (s.thread_ref) s.thread_ref, s.id, s.assignment_id, s.client_id, s.lead_id,
                 min(s.created_at) over (partition by s.thread_ref) as first_at
          from public.sends s
          where s.provider = 'unipile' and s.thread_ref = any(${ids}::text[])
          order by s.thread_ref, s.created_at desc`
      : [];
    const sendByChat = new Map(sends.map((s) => [s.thread_ref as string, s]));
    const ours = afterCursor(chats.filter((c) => sendByChat.has(c.id)), key, position);
    const batch = ours.slice(0, lim.chatReads);
    res.more = !complete || batch.length < ours.length;

    const found: Found[] = [];
    for (const chat of batch) {
      const s = sendByChat.get(chat.id)!;
      const page = await up.listChatMessages(chat.id, { limit: lim.messagesPerChat });
      res.read++;
      const firstAt = s.first_at as Date;
      const theirs = page.items.filter((m: UnipileMessage) => !m.isSender && (dateOf(m.timestamp) ?? now) >= firstAt);
      res.seen += theirs.length;
      for (const m of theirs) {
        found.push({
          provider: "unipile", providerMessageId: m.id, channel: "linkedin",
          from: chat.attendeeProviderId ?? m.senderId, subject: null, body: m.text ?? "",
          receivedAt: dateOf(m.timestamp) ?? now,
          clientId: s.client_id as string, leadId: s.lead_id as string, assignmentId: s.assignment_id as string, sendId: s.id as string,
          payload: { source: "unipile.chats", account_id: accountId, chat_id: chat.id, message: m },
        });
      }
    }
    res.recovered = await asService({ role: "service:reply-recovery", reason: "replies recovered from Unipile" }, async (tx) => {
      const n = await storeRecovered(tx, found);
      await saveCursor(tx, source, complete ? advance(batch, key) : null, n, null, now);
      return n;
    });
  } catch (err) {
    res.error = errorText(err);
    await asService({ role: "service:reply-recovery" }, (tx) => saveCursor(tx, source, null, 0, res.error!, now));
  }
  return res;
}

// ---------------------------------------------------------------------------------------------
// One tick
// ---------------------------------------------------------------------------------------------

/** One bounded poll of every configured provider. Never throws for a provider's failure. */
export async function recoverReplies(deps: RecoveryDeps): Promise<RecoveryResult> {
  const sql = deps.sql ?? db();
  const now = deps.now ?? new Date();
  const lim: RecoveryLimits = { ...DEFAULT_RECOVERY_LIMITS, ...deps.limits };
  const sources: SourceResult[] = [];

  if (deps.salesforge) sources.push(await recoverSalesforge(deps.salesforge, sql, now, lim));

  if (deps.unipile) {
    // the accounts we send from; least recently polled first, so every account gets its turn
    const accounts = await sql`
      select distinct se.provider_account_id as account_id, c.polled_at
      from public.senders se
      left join public.reply_recovery_cursors c on c.source = 'unipile:' || se.provider_account_id
      where se.provider = 'unipile' and se.channel = 'linkedin' and se.active and se.provider_account_id is not null
      order by c.polled_at nulls first
      limit ${lim.accounts}`;
    for (const a of accounts) sources.push(await recoverUnipileAccount(deps.unipile, a.account_id as string, sql, now, lim));
  }

  for (const s of sources) {
    if (s.error) {
      const level = s.error.includes("not set") || s.error.includes("not configured") ? "info" : "warn";
      log(level, "reply recovery: source failed", { source: s.source, error: s.error });
    }
  }
  return { sources, recovered: sources.reduce((n, s) => n + s.recovered, 0), more: sources.some((s) => s.more && !s.error) };
}

/** True for a ProviderError that says the provider is simply not set up here. */
export function isNotConfigured(err: unknown): boolean {
  return err instanceof ProviderError && err.code === "not_configured";
}
