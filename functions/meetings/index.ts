// Meetings of a client's leads: list and read them, book one by hand, record its outcome (held,
// no-show, rescheduled, cancelled) and close the lead as won or lost. Calendar bookings (Cal.com,
// Calendly) land in the same table through their webhooks. Every change goes through the closer
// engine: the assignment state machine, the client's outbound webhooks, the CRM push. Runs as the
// caller under RLS, so another client's meeting is a 404; viewers read but cannot change.
import { createRoute, z } from "@hono/zod-openapi";
import { requireUser, roleIn, type Caller } from "../../shared/auth/caller.ts";
import { asUser, db, type Tx } from "../../shared/db/client.ts";
import {
  bookMeetingByHand, CLOSE_RESULTS, closeMeeting, MEETING_OUTCOMES, MEETING_STATUSES, recordMeetingOutcome, type MeetingChange,
} from "../../shared/engines/closer.ts";
import { publishSoon } from "../../shared/flows/outbox.ts";
import { createFunctionApp } from "../../shared/http/app.ts";
import { AppError } from "../../shared/http/errors.ts";
import { idempotent } from "../../shared/http/idempotency.ts";
import { decodeCursor, page, type Cursor } from "../../shared/http/pagination.ts";
import { serveFunction } from "../../shared/http/serve.ts";
import {
  errorResponses, IdempotencyHeader, PageQuery, pageOf, UuidParam, BEARER as security, isoDates as iso, jsonContent as json,
} from "../../shared/schemas/common.ts";

const app = createFunctionApp("meetings", {
  title: "Meetings",
  description: "A client's meetings: booked from Cal.com/Calendly or by hand; outcomes (held, no-show, rescheduled, cancelled) and won/lost move the lead through the assignment state machine, notify the client's webhooks and go to the CRM.",
});
// Registered after the OpenAPI document route, so the document stays public.
app.use("*", requireUser());
app.post("/", idempotent("meetings"));

// ---------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------

const MeetingStatus = z.enum(MEETING_STATUSES);
const dateTime = z.string().datetime({ offset: true });

const MeetingSchema = z.object({
  id: z.string().uuid(),
  client_id: z.string().uuid(),
  lead_id: z.string().uuid().nullable(),
  assignment_id: z.string().uuid().nullable(),
  assignment_status: z.string().nullable().openapi({ description: "The lead's assignment status now" }),
  source: z.enum(["calcom", "calendly", "manual"]),
  external_id: z.string().nullable(),
  status: MeetingStatus,
  starts_at: z.string(),
  ends_at: z.string().nullable(),
  title: z.string().nullable(),
  join_url: z.string().nullable(),
  notes: z.string().nullable(),
  attendee_email: z.string().nullable(),
  attendee_name: z.string().nullable(),
  outcome_at: z.string().nullable(),
  crm_id: z.string().nullable().openapi({ description: "The meeting's id in the CRM, once pushed" }),
  crm_synced_at: z.string().nullable(),
  lead: z.object({
    id: z.string(), email: z.string().nullable(), first_name: z.string().nullable(), last_name: z.string().nullable(),
    company_name: z.string().nullable(), title: z.string().nullable(),
  }).nullable(),
  created_by: z.string().uuid().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
}).openapi("Meeting");

const MeetingActionSchema = MeetingSchema.extend({
  changed: z.boolean().openapi({ description: "False when the meeting already had this outcome / the lead this result" }),
  events: z.array(z.string()).openapi({ description: "Client events emitted (to the outbound webhooks)" }),
}).openapi("MeetingAction");

const BookSchema = z.object({
  lead_id: z.string().uuid().optional(),
  assignment_id: z.string().uuid().optional(),
  client_id: z.string().uuid().optional().openapi({ description: "With lead_id: which of your clients' assignments" }),
  starts_at: dateTime,
  ends_at: dateTime.optional(),
  title: z.string().trim().min(1).max(300).optional(),
  notes: z.string().max(10_000).optional(),
  join_url: z.string().url().max(2000).optional(),
  attendee_email: z.string().trim().toLowerCase().email().optional(),
  attendee_name: z.string().trim().min(1).max(200).optional(),
}).strict().superRefine((b, ctx) => {
  if (!b.lead_id === !b.assignment_id) {
    ctx.addIssue({ code: "custom", path: ["lead_id"], message: "give exactly one of lead_id and assignment_id" });
  }
  if (b.ends_at && Date.parse(b.ends_at) <= Date.parse(b.starts_at)) {
    ctx.addIssue({ code: "custom", path: ["ends_at"], message: "must be after starts_at" });
  }
}).openapi("BookMeeting");

const OutcomeSchema = z.object({
  outcome: z.enum(MEETING_OUTCOMES),
  starts_at: dateTime.optional().openapi({ description: "The new time; required when rescheduled" }),
  ends_at: dateTime.optional(),
  notes: z.string().max(10_000).optional(),
}).strict().superRefine((b, ctx) => {
  if (b.outcome === "rescheduled" && !b.starts_at) ctx.addIssue({ code: "custom", path: ["starts_at"], message: "required to reschedule" });
  if (b.outcome !== "rescheduled" && (b.starts_at || b.ends_at)) {
    ctx.addIssue({ code: "custom", path: ["starts_at"], message: "only a rescheduled meeting takes a new time" });
  }
}).openapi("MeetingOutcome");

const CloseSchema = z.object({
  result: z.enum(CLOSE_RESULTS),
  reason: z.string().trim().min(1).max(500).optional(),
}).strict().openapi("CloseMeeting");

// ---------------------------------------------------------------------------------------------
// Queries (the caller's RLS transaction decides which rows exist)
// ---------------------------------------------------------------------------------------------

type Meeting = z.infer<typeof MeetingSchema>;

const SELECT = `
  select m.id, m.client_id, m.lead_id, m.assignment_id, a.status as assignment_status, m.source, m.external_id, m.status,
         m.starts_at, m.ends_at, m.title, m.join_url, m.notes, m.attendee_email, m.attendee_name, m.outcome_at,
         m.crm_id, m.crm_synced_at,
         case when l.id is null then null else json_build_object('id', l.id, 'email', l.email, 'first_name', l.first_name,
           'last_name', l.last_name, 'company_name', l.company_name, 'title', l.title) end as lead,
         m.created_by, m.created_at, m.updated_at
  from public.meetings m
  left join public.lead_assignments a on a.id = m.assignment_id
  left join public.lead_pool l on l.id = m.lead_id`;

async function getMeeting(tx: Tx, id: string): Promise<Meeting | undefined> {
  const [row] = await tx`${tx.unsafe(SELECT)} where m.id = ${id}`;
  return row ? (iso(row) as Meeting) : undefined;
}

interface ListParams {
  limit: number;
  cursor: Cursor | null;
  clientId?: string;
  status?: string;
  leadId?: string;
  from?: string;
  to?: string;
}

function listMeetings(tx: Tx, p: ListParams) {
  return tx`${tx.unsafe(SELECT)}
    where true
      ${p.clientId ? tx`and m.client_id = ${p.clientId}` : tx``}
      ${p.status ? tx`and m.status = ${p.status}` : tx``}
      ${p.leadId ? tx`and m.lead_id = ${p.leadId}` : tx``}
      ${p.from ? tx`and m.starts_at >= ${p.from}::timestamptz` : tx``}
      ${p.to ? tx`and m.starts_at < ${p.to}::timestamptz` : tx``}
      ${p.cursor ? tx`and (m.starts_at, m.id) < (${p.cursor.createdAt}::timestamptz, ${p.cursor.id}::uuid)` : tx``}
    order by m.starts_at desc, m.id desc
    limit ${p.limit + 1}`;
}

/** The assignment a booking by hand is for: the one named, or the lead's (active first). */
async function assignmentFor(tx: Tx, body: z.infer<typeof BookSchema>) {
  const [row] = body.assignment_id
    ? await tx`select id, client_id, status from public.lead_assignments where id = ${body.assignment_id}`
    : await tx`
        select id, client_id, status from public.lead_assignments
        where lead_id = ${body.lead_id!} ${body.client_id ? tx`and client_id = ${body.client_id}` : tx``}
        order by (ended_at is null) desc, created_at desc limit 1`;
  return row as { id: string; client_id: string; status: string } | undefined;
}

function requireWriter(caller: Caller, clientId: string, what: string) {
  const role = roleIn(caller, clientId);
  if (!role) throw new AppError("not_found", "meeting not found");
  if (role === "viewer") throw new AppError("forbidden", `viewers cannot ${what}`);
}

function actionBody(meeting: Meeting, change: MeetingChange) {
  return { ...meeting, changed: change.changed, events: change.events };
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

app.openapi(
  createRoute({
    method: "get", path: "/", summary: "List your clients' meetings, latest start first", security,
    request: {
      query: PageQuery.extend({
        client_id: z.string().uuid().optional(),
        status: MeetingStatus.optional(),
        lead_id: z.string().uuid().optional(),
        from: dateTime.optional().openapi({ description: "Meetings starting at or after" }),
        to: dateTime.optional().openapi({ description: "Meetings starting before" }),
      }),
    },
    responses: { 200: json(pageOf(MeetingSchema, "MeetingPage"), "A page of meetings"), ...errorResponses(400, 401) },
  }),
  async (c) => {
    const { limit, cursor, client_id, status, lead_id, from, to } = c.req.valid("query");
    const rows = await asUser(c.var.caller!.claims, (tx) =>
      listMeetings(tx, { limit, cursor: decodeCursor(cursor), clientId: client_id, status, leadId: lead_id, from, to }));
    const p = page(rows as unknown as Record<string, unknown>[], limit, (r) => ({ created_at: r.starts_at as Date, id: r.id as string }));
    return c.json({ data: p.data.map((r) => iso(r) as Meeting), next_cursor: p.next_cursor }, 200);
  },
);

app.openapi(
  createRoute({
    method: "post", path: "/", summary: "Book a meeting by hand: the lead's assignment moves to meeting_booked", security,
    request: { headers: IdempotencyHeader, body: { required: true, content: { "application/json": { schema: BookSchema } } } },
    responses: {
      201: json(MeetingActionSchema, "The booked meeting"),
      ...errorResponses(400, 401, 403, 404, 409, 422),
    },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const caller = c.var.caller!;
    const result = await asUser(caller.claims, async (tx) => {
      const assignment = await assignmentFor(tx, body);
      if (!assignment) throw new AppError("not_found", "lead not found");
      requireWriter(caller, assignment.client_id, "book meetings");
      const change = await bookMeetingByHand(tx, {
        assignmentId: assignment.id,
        startsAt: new Date(body.starts_at),
        endsAt: body.ends_at ? new Date(body.ends_at) : null,
        title: body.title, notes: body.notes, joinUrl: body.join_url,
        attendeeEmail: body.attendee_email, attendeeName: body.attendee_name,
        createdBy: caller.userId,
      });
      return actionBody((await getMeeting(tx, change.meetingId))!, change);
    }, "meeting booked by hand");
    await publishSoon(db()); // webhooks and the CRM push go out now, not at the publisher's next tick
    return c.json(result, 201);
  },
);

const IdParams = z.object({ id: UuidParam });

app.openapi(
  createRoute({
    method: "get", path: "/{id}", summary: "Read a meeting", security,
    request: { params: IdParams },
    responses: { 200: json(MeetingSchema, "The meeting"), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const row = await asUser(c.var.caller!.claims, (tx) => getMeeting(tx, c.req.valid("param").id));
    if (!row) throw new AppError("not_found", "meeting not found");
    return c.json(row, 200);
  },
);

app.openapi(
  createRoute({
    method: "post", path: "/{id}/outcome",
    summary: "Record a meeting's outcome: held → meeting_held, no_show → no_show, rescheduled (new time), cancelled", security,
    request: { params: IdParams, body: { required: true, content: { "application/json": { schema: OutcomeSchema } } } },
    responses: {
      200: json(MeetingActionSchema, "The meeting with its outcome"),
      ...errorResponses(400, 401, 403, 404, 409),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const caller = c.var.caller!;
    const result = await asUser(caller.claims, async (tx) => {
      const meeting = await getMeeting(tx, id);
      if (!meeting) throw new AppError("not_found", "meeting not found");
      requireWriter(caller, meeting.client_id, "record meeting outcomes");
      const change = await recordMeetingOutcome(tx, id, {
        outcome: body.outcome,
        startsAt: body.starts_at ? new Date(body.starts_at) : null,
        endsAt: body.ends_at ? new Date(body.ends_at) : null,
        notes: body.notes,
      });
      return actionBody((await getMeeting(tx, id))!, change);
    }, `meeting ${body.outcome}`);
    await publishSoon(db()); // webhooks and the CRM push go out now, not at the publisher's next tick
    return c.json(result, 200);
  },
);

app.openapi(
  createRoute({
    method: "post", path: "/{id}/close", summary: "Close the meeting's lead as won or lost (after the meeting was held or a no-show)", security,
    request: { params: IdParams, body: { required: true, content: { "application/json": { schema: CloseSchema } } } },
    responses: {
      200: json(MeetingActionSchema, "The meeting, its lead closed"),
      ...errorResponses(400, 401, 403, 404, 409),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const caller = c.var.caller!;
    const result = await asUser(caller.claims, async (tx) => {
      const meeting = await getMeeting(tx, id);
      if (!meeting) throw new AppError("not_found", "meeting not found");
      requireWriter(caller, meeting.client_id, "close leads");
      const change = await closeMeeting(tx, id, { result: body.result, reason: body.reason });
      return actionBody((await getMeeting(tx, id))!, change);
    }, body.reason ? `${body.result}: ${body.reason}` : body.result);
    await publishSoon(db()); // webhooks and the CRM push go out now, not at the publisher's next tick
    return c.json(result, 200);
  },
);

export default app;
serveFunction(app);
