// The unified inbox (product.md §7): every reply a client's leads sent, on every channel, grouped
// into threads (one per assignment, else per lead), newest thread first, filterable by class and
// channel. Client users read their own client's replies (row-level security decides: another
// client's reply is a 404), and owners and members may reclassify one, which re-runs the new
// class's action (stop the sequence, schedule a follow-up, suppress…); viewers only read.
import { createRoute, z } from "@hono/zod-openapi";
import { requireUser, roleIn } from "../../shared/auth/caller.ts";
import { asService, asUser, type Tx } from "../../shared/db/client.ts";
import { reclassifyReply } from "../../shared/engines/reply-actions.ts";
import { REPLY_CLASSES, type ReplyClass } from "../../shared/engines/reply-classifier.ts";
import { createFunctionApp } from "../../shared/http/app.ts";
import { AppError } from "../../shared/http/errors.ts";
import { decodeCursor, page } from "../../shared/http/pagination.ts";
import { serveFunction } from "../../shared/http/serve.ts";
import { BEARER as security, errorResponses, isoDates as iso, jsonContent as json, PageQuery, pageOf, UuidParam } from "../../shared/schemas/common.ts";

const app = createFunctionApp("replies", {
  title: "Replies",
  description: "The unified inbox: replies on every channel grouped into threads, their classification and suggested answers; reclassify a reply to re-run its action.",
});
app.use("*", requireUser());

// ---------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------

const ReplyClassSchema = z.enum(REPLY_CLASSES).openapi("ReplyClass");
const ChannelSchema = z.enum(["email", "sms", "voice", "linkedin", "mail"]).openapi("ReplyChannel");

const ReplySchema = z.object({
  id: z.string().uuid(),
  client_id: z.string().uuid().nullable(),
  lead_id: z.string().uuid().nullable(),
  assignment_id: z.string().uuid().nullable(),
  send_id: z.string().uuid().nullable(),
  channel: ChannelSchema,
  provider: z.string(),
  from_address: z.string().nullable(),
  subject: z.string().nullable(),
  body: z.string(),
  received_at: z.string(),
  class: ReplyClassSchema.nullable().openapi({ description: "null until classified" }),
  class_source: z.enum(["keyword", "llm", "user", "fallback"]).nullable(),
  confidence: z.number().nullable(),
  suggested_answer: z.string().nullable().openapi({ description: "A draft answer for interested, meeting_request and question replies" }),
  details: z.record(z.string(), z.unknown()).openapi({ description: "follow_up_date, return_date, referral, the action taken, model tokens and cost" }),
  classified_at: z.string().nullable(),
  acted_at: z.string().nullable(),
  reclassified_by: z.string().uuid().nullable(),
  reclassified_at: z.string().nullable(),
}).openapi("Reply");

const LeadSummary = z.object({
  id: z.string().uuid(),
  first_name: z.string().nullable(),
  last_name: z.string().nullable(),
  email: z.string().nullable(),
  title: z.string().nullable(),
  company_name: z.string().nullable(),
}).nullable().openapi("ReplyLead");

const ThreadSchema = z.object({
  thread_id: z.string().uuid().openapi({ description: "The assignment id, else the lead id, else the reply id" }),
  client_id: z.string().uuid().nullable(),
  assignment_id: z.string().uuid().nullable(),
  assignment_status: z.string().nullable(),
  lead: LeadSummary,
  last_received_at: z.string(),
  reply_count: z.number().int(),
  channels: z.array(ChannelSchema),
  classes: z.array(ReplyClassSchema),
  latest: ReplySchema,
  replies: z.array(ReplySchema).openapi({ description: "The thread's replies matching the filters, newest first (at most 20)" }),
}).openapi("ReplyThread");

const ReplyDetailSchema = ReplySchema.extend({ lead: LeadSummary, assignment_status: z.string().nullable() }).openapi("ReplyDetail");

const ReclassifyBody = z.object({ class: ReplyClassSchema }).openapi("Reclassify");
const ActionSchema = z.object({
  class: ReplyClassSchema,
  action: z.string(),
  assignment: z.object({ id: z.string().uuid(), from: z.string(), to: z.string() }).nullable(),
  notes: z.array(z.string()),
}).passthrough().openapi("ReplyAction");

type Reply = z.infer<typeof ReplySchema>;

const REPLY_COLUMNS = ["id", "client_id", "lead_id", "assignment_id", "send_id", "channel", "provider", "from_address", "subject", "body",
  "received_at", "class", "class_source", "confidence", "suggested_answer", "details", "classified_at", "acted_at", "reclassified_by",
  "reclassified_at"] as const;

function toReply(row: Record<string, unknown>): Reply {
  const out = iso(Object.fromEntries(REPLY_COLUMNS.map((k) => [k, row[k] ?? null])));
  // json_agg rows carry timestamps as text already; numeric comes back as a string
  out.confidence = out.confidence === null ? null : Number(out.confidence);
  out.details = out.details ?? {};
  for (const k of ["received_at", "classified_at", "acted_at", "reclassified_at"]) {
    if (typeof out[k] === "string") out[k] = new Date(out[k] as string).toISOString();
  }
  return out as Reply;
}

function toLead(v: unknown): z.infer<typeof LeadSummary> {
  return v && typeof v === "object" ? (v as z.infer<typeof LeadSummary>) : null;
}

const notFound = () => new AppError("not_found", "reply not found");

// ---------------------------------------------------------------------------------------------
// Queries (under the caller's RLS)
// ---------------------------------------------------------------------------------------------

interface ListParams {
  limit: number;
  cursor: { createdAt: string; id: string } | null;
  cls?: string;
  channel?: string;
  clientId?: string;
}

/** One page of threads: the filtered replies grouped by thread, ordered by their newest reply. */
function listThreads(tx: Tx, p: ListParams) {
  return tx`
    with r as (
      select r.*, coalesce(r.assignment_id, r.lead_id, r.id) as thread_id
      from public.replies r
      where (${p.cls ?? null}::text is null or r.class = ${p.cls ?? null}::text)
        and (${p.channel ?? null}::text is null or r.channel = ${p.channel ?? null}::text)
        and (${p.clientId ?? null}::uuid is null or r.client_id = ${p.clientId ?? null}::uuid)
    ), t as (
      -- millisecond precision: the cursor carries milliseconds, so the keyset compares the same values
      select thread_id, date_trunc('milliseconds', max(received_at)) as last_received_at, count(*)::int as reply_count,
             array_agg(distinct channel) as channels,
             coalesce(array_agg(distinct class) filter (where class is not null), '{}') as classes,
             (array_agg(client_id order by received_at desc, id desc))[1] as client_id,
             (array_agg(assignment_id order by received_at desc, id desc) filter (where assignment_id is not null))[1] as assignment_id,
             (array_agg(lead_id order by received_at desc, id desc) filter (where lead_id is not null))[1] as lead_id
      from r group by thread_id
    ), pg as (
      select * from t
      ${p.cursor ? tx`where (t.last_received_at, t.thread_id) < (${p.cursor.createdAt}::timestamptz, ${p.cursor.id}::uuid)` : tx``}
      order by t.last_received_at desc, t.thread_id desc
      limit ${p.limit + 1}
    )
    select pg.thread_id, pg.last_received_at, pg.reply_count, pg.channels, pg.classes, pg.client_id, pg.assignment_id,
           a.status as assignment_status,
           case when l.id is null then null else json_build_object(
             'id', l.id, 'first_name', l.first_name, 'last_name', l.last_name, 'email', l.email, 'title', l.title,
             'company_name', l.company_name) end as lead,
           rs.replies
    from pg
    left join public.lead_assignments a on a.id = pg.assignment_id
    left join public.lead_pool l on l.id = pg.lead_id
    left join lateral (
      select json_agg(x order by x.received_at desc, x.id desc) as replies
      from (select * from r where r.thread_id = pg.thread_id order by r.received_at desc, r.id desc limit 20) x
    ) rs on true
    order by pg.last_received_at desc, pg.thread_id desc`;
}

async function getReply(tx: Tx, id: string) {
  const [row] = await tx`
    select r.*, a.status as assignment_status,
           case when l.id is null then null else json_build_object(
             'id', l.id, 'first_name', l.first_name, 'last_name', l.last_name, 'email', l.email, 'title', l.title,
             'company_name', l.company_name) end as lead
    from public.replies r
    left join public.lead_assignments a on a.id = r.assignment_id
    left join public.lead_pool l on l.id = r.lead_id
    where r.id = ${id}`;
  return row as Record<string, unknown> | undefined;
}

function toDetail(row: Record<string, unknown>) {
  return { ...toReply(row), lead: toLead(row.lead), assignment_status: (row.assignment_status as string | null) ?? null };
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

app.openapi(
  createRoute({
    method: "get", path: "/", summary: "The unified inbox: reply threads across channels, newest first", security,
    request: {
      query: PageQuery.extend({
        class: ReplyClassSchema.optional().openapi({ description: "Only replies of this class" }),
        channel: ChannelSchema.optional().openapi({ description: "Only replies on this channel" }),
        client_id: z.string().uuid().optional().openapi({ description: "One of your clients (default: all you belong to)" }),
      }),
    },
    responses: { 200: json(pageOf(ThreadSchema, "ReplyThreadPage"), "A page of threads"), ...errorResponses(400, 401) },
  }),
  async (c) => {
    const q = c.req.valid("query");
    const rows = await asUser(c.var.caller!.claims, (tx) =>
      listThreads(tx, { limit: q.limit, cursor: decodeCursor(q.cursor), cls: q.class, channel: q.channel, clientId: q.client_id }));
    const p = page(rows as unknown as Record<string, unknown>[], q.limit, (r) => ({ created_at: r.last_received_at as Date, id: r.thread_id as string }));
    const data = p.data.map((r) => {
      const replies = ((r.replies as Record<string, unknown>[] | null) ?? []).map(toReply);
      return {
        thread_id: r.thread_id as string,
        client_id: (r.client_id as string | null) ?? null,
        assignment_id: (r.assignment_id as string | null) ?? null,
        assignment_status: (r.assignment_status as string | null) ?? null,
        lead: toLead(r.lead),
        last_received_at: (r.last_received_at as Date).toISOString(),
        reply_count: r.reply_count as number,
        channels: r.channels as z.infer<typeof ChannelSchema>[],
        classes: r.classes as ReplyClass[],
        latest: replies[0],
        replies,
      };
    });
    return c.json({ data, next_cursor: p.next_cursor }, 200);
  },
);

const IdParams = z.object({ id: UuidParam });

app.openapi(
  createRoute({
    method: "get", path: "/{id}", summary: "Read one reply with its lead", security,
    request: { params: IdParams },
    responses: { 200: json(ReplyDetailSchema, "The reply"), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const row = await asUser(c.var.caller!.claims, (tx) => getReply(tx, c.req.valid("param").id));
    if (!row) throw notFound();
    return c.json(toDetail(row), 200);
  },
);

app.openapi(
  createRoute({
    method: "post", path: "/{id}/reclassify", summary: "Correct a reply's class; the new class's action runs (owners and members)", security,
    request: { params: IdParams, body: { required: true, content: { "application/json": { schema: ReclassifyBody } } } },
    responses: {
      200: json(z.object({ reply: ReplyDetailSchema, action: ActionSchema }).openapi("Reclassified"), "The reply with its new class, and what the action did"),
      ...errorResponses(400, 401, 403, 404),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const cls = c.req.valid("json").class;
    const caller = c.var.caller!;
    // visibility first, under RLS: a reply of another client does not exist for the caller
    const seen = await asUser(caller.claims, (tx) => getReply(tx, id));
    if (!seen) throw notFound();
    const role = seen.client_id ? roleIn(caller, seen.client_id as string) : caller.isAdmin ? "owner" : null;
    if (role !== "owner" && role !== "member") throw new AppError("forbidden", "only a client owner or member may reclassify a reply");
    // the action writes what users cannot (suppressions, other steps, the pool): it runs as the
    // service, recorded in the audit trail as this user
    const done = await asService({ role: "user", id: caller.userId, reason: `reply reclassified as ${cls}` }, async (tx) => {
      const r = await reclassifyReply(tx, id, cls, { userId: caller.userId });
      if (!r) return null;
      return { reply: await getReply(tx, id), action: r.action };
    });
    if (!done?.reply) throw notFound();
    return c.json({ reply: toDetail(done.reply), action: done.action as unknown as z.infer<typeof ActionSchema> }, 200);
  },
);

export default app;
serveFunction(app);
