// The closer engine (conversion, product.md §8): a booked meeting moves its assignment to
// meeting_booked, an outcome moves it on (held → meeting_held, no-show → no_show), won/lost close it;
// every change notifies the client's webhooks (client-events.ts) and queues a push of the meeting and
// the lead to the CRM (HubSpot), which syncMeetingToCrm performs idempotently.
//
// Both booking paths end here: meetings booked by hand (functions/meetings) and meetings the calendar
// webhooks (Cal.com, Calendly) upsert into the same table, which then call meetingBooked /
// recordMeetingOutcome with strict: false. Every function runs in the caller's transaction: as the
// user under RLS (the meeting and assignment changes are theirs, checked by policy and by the
// assignment state machine's trigger) or as the service. What follows from a change — delivery rows,
// outbox messages, audit rows — is written with service privileges (withServicePrivileges).
//
// Assignment rules (the state machine in 20261124000300_lifecycle.sql decides what is legal):
//   booked       replied | interested | no_show → meeting_booked; in_sequence → replied → meeting_booked
//                (a booking through a message's link is the lead's answer); meeting_booked, meeting_held,
//                won, lost stay (a further meeting with a lead already that far). Anything else — not yet
//                contacted, paused, not_interested, completed, unsubscribed, bounced, suppressed — cannot
//                be booked: 409 by hand; from a calendar the meeting is kept and the assignment stays.
//   held         meeting_booked → meeting_held (meeting_held, won, lost stay)
//   no_show      meeting_booked → no_show (no_show, meeting_held, won, lost stay)
//   rescheduled  no_show → meeting_booked (rebooked); otherwise stays
//   cancelled    stays meeting_booked until the lead rebooks, or is closed lost (below), or leaves
//                through paused/unsubscribed/….
//   won / lost   meeting_held | no_show → won | lost; a cancelled meeting's meeting_booked → lost
//                (the same result again is a no-op)
// Meeting rules: booked and rescheduled take any outcome; a no-show can be rescheduled; held and
// cancelled are final. Recording the outcome a meeting already has changes nothing (no new event).
import { asService, db, type Tx } from "../db/client.ts";
import { enqueue } from "../flows/outbox.ts";
import { AppError } from "../http/errors.ts";
import { ProviderError } from "../integrations/provider-http.ts";
import { hubspotConfigured, type HubSpotClient, type HubSpotMeetingOutcome } from "../integrations/hubspot.ts";
import { emitClientEvent, withServicePrivileges, type ClientEventType } from "./client-events.ts";

export const MEETING_OUTCOMES = ["held", "no_show", "rescheduled", "cancelled"] as const;
export type MeetingOutcome = (typeof MEETING_OUTCOMES)[number];
export const MEETING_STATUSES = ["booked", "held", "no_show", "rescheduled", "cancelled"] as const;
export type MeetingStatus = (typeof MEETING_STATUSES)[number];
export const CLOSE_RESULTS = ["won", "lost"] as const;
export type CloseResult = (typeof CLOSE_RESULTS)[number];

export const CRM_SYNC_TOPIC = "flow.crm-sync";

// ---------------------------------------------------------------------------------------------
// The rules, as pure functions
// ---------------------------------------------------------------------------------------------

/** What a booking does to an assignment: the statuses to walk, "stay", or null when it cannot be booked. */
export function bookingSteps(assignmentStatus: string): string[] | "stay" | null {
  switch (assignmentStatus) {
    case "replied":
    case "interested":
    case "no_show":
      return ["meeting_booked"];
    case "in_sequence":
      return ["replied", "meeting_booked"];
    case "meeting_booked":
    case "meeting_held":
    case "won":
    case "lost":
      return "stay";
    default:
      return null;
  }
}

/** The meeting's next status for an outcome: the status, "same" (already so), or null (not allowed). */
export function meetingStatusAfter(current: string, outcome: MeetingOutcome): MeetingStatus | "same" | null {
  if (outcome !== "rescheduled" && current === outcome) return "same";
  if (current === "booked" || current === "rescheduled") return outcome;
  if (current === "no_show" && outcome === "rescheduled") return "rescheduled";
  return null;
}

/** What an outcome does to the assignment: the status to move to, "stay", or null (illegal). */
export function assignmentAfterOutcome(outcome: MeetingOutcome, assignmentStatus: string): string | "stay" | null {
  switch (outcome) {
    case "held":
      if (assignmentStatus === "meeting_booked") return "meeting_held";
      return ["meeting_held", "won", "lost"].includes(assignmentStatus) ? "stay" : null;
    case "no_show":
      if (assignmentStatus === "meeting_booked") return "no_show";
      return ["no_show", "meeting_held", "won", "lost"].includes(assignmentStatus) ? "stay" : null;
    case "rescheduled":
      return assignmentStatus === "no_show" ? "meeting_booked" : "stay";
    case "cancelled":
      return "stay";
  }
}

/**
 * What won/lost does to the assignment: the status, "same" (already closed so), or null (illegal).
 * A meeting that was cancelled can be closed lost without being held (the lead called it off);
 * won always needs a held meeting or a no-show.
 */
export function assignmentAfterClose(result: CloseResult, assignmentStatus: string, meetingStatus?: string): CloseResult | "same" | null {
  if (assignmentStatus === result) return "same";
  if (result === "lost" && assignmentStatus === "meeting_booked" && meetingStatus === "cancelled") return "lost";
  return assignmentStatus === "meeting_held" || assignmentStatus === "no_show" ? result : null;
}

const OUTCOME_EVENT: Record<MeetingOutcome, ClientEventType> = {
  held: "meeting.held",
  no_show: "meeting.no_show",
  rescheduled: "meeting.rescheduled",
  cancelled: "meeting.cancelled",
};

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

interface MeetingRow {
  id: string;
  client_id: string;
  lead_id: string | null;
  assignment_id: string | null;
  source: string;
  status: MeetingStatus;
  starts_at: Date;
  ends_at: Date | null;
}

interface AssignmentRow {
  id: string;
  client_id: string;
  lead_id: string;
  status: string;
}

/** The result of a closer action, for the API's answer and the callers' logs. */
export interface MeetingChange {
  meetingId: string;
  meetingStatus: MeetingStatus;
  /** The assignment before and after (equal when it stayed); null without an assignment. */
  assignment: { id: string; from: string; to: string } | null;
  /** False when nothing changed (the same outcome again, a repeated booking). */
  changed: boolean;
  /** Set when a calendar booking or outcome could not move the assignment (strict: false). */
  assignmentBlocked?: string;
  /** Set when a calendar outcome was not applied: the meeting cannot take it (strict: false). */
  ignored?: string;
  events: ClientEventType[];
}

async function lockMeeting(tx: Tx, meetingId: string): Promise<MeetingRow | undefined> {
  const [row] = await tx`
    select id, client_id, lead_id, assignment_id, source, status, starts_at, ends_at
    from public.meetings where id = ${meetingId} for update`;
  return row as MeetingRow | undefined;
}

async function lockAssignment(tx: Tx, assignmentId: string | null): Promise<AssignmentRow | undefined> {
  if (!assignmentId) return undefined;
  const [row] = await tx`
    select id, client_id, lead_id, status from public.lead_assignments where id = ${assignmentId} for update`;
  return row as AssignmentRow | undefined;
}

/** Moves the assignment one legal step at a time; the audit row of each names the reason. */
async function walkAssignment(tx: Tx, assignmentId: string, steps: string[], reason: string): Promise<void> {
  await tx`select set_config('app.reason', ${reason}, true)`;
  for (const status of steps) {
    await tx`update public.lead_assignments set status = ${status} where id = ${assignmentId}`;
  }
}

/** The event data of a meeting: the meeting, its lead's contact fields and the assignment. */
async function meetingEventData(tx: Tx, meetingId: string): Promise<Record<string, unknown>> {
  const [row] = await tx`
    select json_build_object(
      'meeting', json_build_object('id', m.id, 'status', m.status, 'source', m.source, 'external_id', m.external_id,
        'starts_at', m.starts_at, 'ends_at', m.ends_at, 'title', m.title, 'join_url', m.join_url,
        'attendee_email', m.attendee_email, 'attendee_name', m.attendee_name, 'notes', m.notes, 'outcome_at', m.outcome_at),
      'lead', case when l.id is null then null else json_build_object('id', l.id, 'email', l.email,
        'first_name', l.first_name, 'last_name', l.last_name, 'title', l.title, 'company_name', l.company_name,
        'company_domain', l.company_domain, 'phone', l.phone, 'linkedin_url', l.linkedin_url) end,
      'assignment', case when a.id is null then null else json_build_object('id', a.id, 'status', a.status,
        'campaign_id', a.campaign_id) end
    ) as data
    from public.meetings m
    left join public.lead_pool l on l.id = m.lead_id
    left join public.lead_assignments a on a.id = m.assignment_id
    where m.id = ${meetingId}`;
  return (row?.data ?? {}) as Record<string, unknown>;
}

/** One audit row for a meeting change (the assignment's own changes are audited by its trigger). */
async function auditMeeting(tx: Tx, m: MeetingRow, kind: string, from: string | null, to: string, data: Record<string, unknown>) {
  await tx`
    insert into public.events (client_id, entity_type, entity_id, kind, from_status, to_status, actor_id, actor_role, reason, data)
    values (${m.client_id}, 'meeting', ${m.id}, ${kind}, ${from}, ${to}, private.current_actor_id(), private.current_actor_role(),
            nullif(current_setting('app.reason', true), ''), ${tx.json(data as never)})`;
}

/**
 * Queues a push of a meeting (with its lead) to the CRM, in the caller's transaction. Only when a
 * CRM is configured: otherwise there is nowhere to push (POST /crm/sync pushes by hand later).
 */
export async function queueCrmSync(tx: Tx, clientId: string, target: { meetingId: string } | { leadId: string }): Promise<boolean> {
  if (!hubspotConfigured()) return false;
  const payload = "meetingId" in target ? { meeting_id: target.meetingId } : { lead_id: target.leadId, client_id: clientId };
  await withServicePrivileges(tx, () => enqueue(tx, CRM_SYNC_TOPIC, payload, { clientId }));
  return true;
}

/** Everything that follows a meeting change: the client's webhooks, the audit row, the CRM push. */
async function afterChange(
  tx: Tx,
  m: MeetingRow,
  change: { kind: string; from: string | null; to: string; event: ClientEventType; eventId: string; extra?: Record<string, unknown> },
): Promise<void> {
  const data = { ...(await meetingEventData(tx, m.id)), ...change.extra };
  await emitClientEvent(tx, m.client_id, change.event, data, { eventId: change.eventId });
  await withServicePrivileges(tx, () => auditMeeting(tx, m, change.kind, change.from, change.to, change.extra ?? {}));
  await queueCrmSync(tx, m.client_id, { meetingId: m.id });
}

function illegal(message: string, details: Record<string, unknown>): AppError {
  return new AppError("illegal_transition", message, details);
}

// ---------------------------------------------------------------------------------------------
// Booking
// ---------------------------------------------------------------------------------------------

/**
 * A meeting row exists (inserted by hand, or upserted from a calendar webhook): move its assignment
 * to meeting_booked where the state machine allows, and tell the client (meeting.booked, once per
 * meeting: calling this again for the same meeting delivers nothing new). strict (by hand): an
 * assignment that cannot be booked is a 409 and nothing is written; otherwise it stays and the
 * result says why.
 */
export async function meetingBooked(tx: Tx, meetingId: string, opts: { strict?: boolean; reason?: string } = {}): Promise<MeetingChange> {
  const m = await lockMeeting(tx, meetingId);
  if (!m) throw new AppError("not_found", "meeting not found");
  const a = await lockAssignment(tx, m.assignment_id);
  let assignment: MeetingChange["assignment"] = null;
  let blocked: string | undefined;
  if (a) {
    const steps = bookingSteps(a.status);
    if (steps === null) {
      blocked = `a lead whose assignment is ${a.status} cannot be moved to meeting_booked`;
      if (opts.strict) throw illegal(`cannot book a meeting: ${blocked}`, { entity: "assignment", from: a.status, to: "meeting_booked" });
      assignment = { id: a.id, from: a.status, to: a.status };
    } else if (steps === "stay") {
      assignment = { id: a.id, from: a.status, to: a.status };
    } else {
      await walkAssignment(tx, a.id, steps, opts.reason ?? `meeting booked (${m.source})`);
      assignment = { id: a.id, from: a.status, to: "meeting_booked" };
    }
  }
  await afterChange(tx, m, {
    kind: "meeting_booked", from: null, to: m.status, event: "meeting.booked", eventId: `meeting.booked:${m.id}`,
    extra: blocked ? { assignment_blocked: blocked } : undefined,
  });
  return {
    meetingId: m.id, meetingStatus: m.status, assignment, changed: true, events: ["meeting.booked"],
    ...(blocked ? { assignmentBlocked: blocked } : {}),
  };
}

export interface ManualBooking {
  assignmentId: string;
  startsAt: Date;
  endsAt?: Date | null;
  title?: string | null;
  notes?: string | null;
  joinUrl?: string | null;
  attendeeEmail?: string | null;
  attendeeName?: string | null;
  createdBy?: string | null;
}

/** Books a meeting by hand for an assignment (run as the user: RLS decides who may). */
export async function bookMeetingByHand(tx: Tx, input: ManualBooking): Promise<MeetingChange> {
  const [a] = await tx`
    select a.id, a.client_id, a.lead_id, l.email, nullif(btrim(concat_ws(' ', l.first_name, l.last_name)), '') as name
    from public.lead_assignments a join public.lead_pool l on l.id = a.lead_id
    where a.id = ${input.assignmentId}`;
  if (!a) throw new AppError("not_found", "lead not found");
  const [m] = await tx`
    insert into public.meetings (client_id, lead_id, assignment_id, source, starts_at, ends_at, title, notes, join_url,
                                 attendee_email, attendee_name, created_by)
    values (${a.client_id}, ${a.lead_id}, ${a.id}, 'manual', ${input.startsAt}, ${input.endsAt ?? null}, ${input.title ?? null},
            ${input.notes ?? null}, ${input.joinUrl ?? null}, ${input.attendeeEmail ?? a.email ?? null},
            ${input.attendeeName ?? a.name ?? null}, ${input.createdBy ?? null})
    returning id`;
  return await meetingBooked(tx, m.id, { strict: true, reason: "meeting booked by hand" });
}

// ---------------------------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------------------------

export interface OutcomeInput {
  outcome: MeetingOutcome;
  /** The new time (rescheduled only). */
  startsAt?: Date | null;
  endsAt?: Date | null;
  notes?: string | null;
}

/**
 * Records held / no_show / rescheduled / cancelled on a meeting and moves the assignment (see the
 * rules at the top). strict (default, by hand): an outcome the meeting or the assignment cannot take
 * is a 409. strict: false (calendar webhooks): the meeting still takes it when the meeting's own rules
 * allow, the assignment stays, and the result says why.
 */
export async function recordMeetingOutcome(tx: Tx, meetingId: string, input: OutcomeInput, opts: { strict?: boolean } = {}): Promise<MeetingChange> {
  const strict = opts.strict ?? true;
  const m = await lockMeeting(tx, meetingId);
  if (!m) throw new AppError("not_found", "meeting not found");
  if (input.outcome === "rescheduled" && !input.startsAt) {
    throw new AppError("validation_failed", "invalid json: starts_at", [{ field: "starts_at", message: "required to reschedule" }]);
  }
  const next = meetingStatusAfter(m.status, input.outcome);
  const a = await lockAssignment(tx, m.assignment_id);
  const unchanged: MeetingChange = {
    meetingId: m.id, meetingStatus: m.status, changed: false, events: [],
    assignment: a ? { id: a.id, from: a.status, to: a.status } : null,
  };
  if (next === "same") return unchanged;
  if (next === null) {
    const message = `a ${m.status} meeting cannot be marked ${input.outcome}`;
    if (strict) throw illegal(message, { entity: "meeting", from: m.status, to: input.outcome });
    return { ...unchanged, ignored: message };
  }

  let assignment: MeetingChange["assignment"] = unchanged.assignment;
  let blocked: string | undefined;
  if (a) {
    const to = assignmentAfterOutcome(input.outcome, a.status);
    if (to === null) {
      blocked = `a lead whose assignment is ${a.status} cannot take the outcome ${input.outcome}`;
      if (strict) throw illegal(`cannot record ${input.outcome}: ${blocked}`, { entity: "assignment", from: a.status, to: input.outcome === "held" ? "meeting_held" : "no_show" });
    } else if (to !== "stay") {
      await walkAssignment(tx, a.id, [to], `meeting ${input.outcome.replace("_", "-")}`);
      assignment = { id: a.id, from: a.status, to };
    }
  }

  let startsAt = m.starts_at;
  let endsAt = m.ends_at;
  if (input.outcome === "rescheduled") {
    startsAt = input.startsAt!;
    // without a new end, the meeting keeps its length
    endsAt = input.endsAt ?? (m.ends_at ? new Date(startsAt.getTime() + (m.ends_at.getTime() - m.starts_at.getTime())) : null);
    if (endsAt && endsAt <= startsAt) {
      throw new AppError("validation_failed", "invalid json: ends_at", [{ field: "ends_at", message: "must be after starts_at" }]);
    }
  }
  const [updated] = await tx`
    update public.meetings set status = ${next}, outcome_at = now(), starts_at = ${startsAt}, ends_at = ${endsAt},
      notes = coalesce(${input.notes ?? null}, notes)
    where id = ${m.id}
    returning (extract(epoch from outcome_at) * 1000)::bigint as outcome_ms`;
  const event = OUTCOME_EVENT[input.outcome];
  await afterChange(tx, m, {
    kind: `meeting_${input.outcome}`, from: m.status, to: next, event,
    eventId: `${event}:${m.id}:${updated.outcome_ms}`,
    extra: {
      ...(input.outcome === "rescheduled" ? { previous_starts_at: m.starts_at.toISOString() } : {}),
      ...(blocked ? { assignment_blocked: blocked } : {}),
    },
  });
  return { meetingId: m.id, meetingStatus: next, assignment, changed: true, events: [event], ...(blocked ? { assignmentBlocked: blocked } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Won / lost
// ---------------------------------------------------------------------------------------------

/** Closes the meeting's assignment as won or lost (lead.won / lead.lost to the client, CRM push). */
export async function closeMeeting(tx: Tx, meetingId: string, input: { result: CloseResult; reason?: string | null }): Promise<MeetingChange> {
  const m = await lockMeeting(tx, meetingId);
  if (!m) throw new AppError("not_found", "meeting not found");
  const a = await lockAssignment(tx, m.assignment_id);
  if (!a) throw new AppError("conflict", "this meeting has no lead assignment to close");
  const to = assignmentAfterClose(input.result, a.status, m.status);
  if (to === "same") {
    return { meetingId: m.id, meetingStatus: m.status, assignment: { id: a.id, from: a.status, to: a.status }, changed: false, events: [] };
  }
  if (to === null) {
    throw illegal(`cannot close as ${input.result}: the assignment is ${a.status} (a meeting must be held or a no-show first)`,
      { entity: "assignment", from: a.status, to: input.result });
  }
  await walkAssignment(tx, a.id, [to], input.reason ? `${input.result}: ${input.reason}` : `closed ${input.result}`);
  const event: ClientEventType = input.result === "won" ? "lead.won" : "lead.lost";
  await afterChange(tx, m, {
    kind: `lead_${input.result}`, from: a.status, to, event, eventId: `${event}:${a.id}`,
    extra: { result: input.result, reason: input.reason ?? null },
  });
  return { meetingId: m.id, meetingStatus: m.status, assignment: { id: a.id, from: a.status, to }, changed: true, events: [event] };
}

// ---------------------------------------------------------------------------------------------
// CRM push (HubSpot)
// ---------------------------------------------------------------------------------------------

const MEETING_OUTCOME_IN_CRM: Record<MeetingStatus, HubSpotMeetingOutcome> = {
  booked: "SCHEDULED",
  rescheduled: "RESCHEDULED",
  held: "COMPLETED",
  no_show: "NO_SHOW",
  cancelled: "CANCELED",
};

/** The contact's lead status in HubSpot for an assignment status (default hs_lead_status options). */
export function crmContactStatus(assignmentStatus: string | null): Record<string, string> {
  switch (assignmentStatus) {
    case "won":
      return { lifecyclestage: "customer" };
    case "lost":
    case "not_interested":
      return { hs_lead_status: "UNQUALIFIED" };
    case "meeting_held":
      return { hs_lead_status: "OPEN_DEAL" };
    case "meeting_booked":
    case "no_show":
      return { hs_lead_status: "IN_PROGRESS" };
    case "replied":
    case "interested":
      return { hs_lead_status: "CONNECTED" };
    case "in_sequence":
    case "completed":
      return { hs_lead_status: "ATTEMPTED_TO_CONTACT" };
    default:
      return {};
  }
}

export type CrmSyncResult =
  | { status: "synced"; meetingId?: string; crmId?: string; contactId: string; syncedAt?: string }
  | { status: "skipped"; reason: string };

interface MeetingSnapshot {
  id: string;
  client_id: string;
  crm_id: string | null;
  version: string;
  status: MeetingStatus;
  source: string;
  starts_at: Date;
  ends_at: Date | null;
  title: string | null;
  notes: string | null;
  join_url: string | null;
  email: string | null;
  first_name: string | null;
  last_name: string | null;
  job_title: string | null;
  company_name: string | null;
  company_domain: string | null;
  phone: string | null;
  assignment_status: string | null;
}

// A meeting's version for the CRM push: any write to the meeting row bumps updated_at (trigger), and
// won/lost move the assignment's status_changed_at. Microseconds, so two writes never look alike.
const VERSION = `concat((extract(epoch from m.updated_at) * 1000000)::bigint, ':',
  coalesce((select (extract(epoch from a.status_changed_at) * 1000000)::bigint from public.lead_assignments a where a.id = m.assignment_id), 0))`;

async function meetingSnapshot(meetingId: string): Promise<MeetingSnapshot | undefined> {
  const sql = db();
  const [row] = await sql`
    select m.id, m.client_id, m.crm_id, ${sql.unsafe(VERSION)} as version, m.status, m.source, m.starts_at, m.ends_at,
           m.title, m.notes, m.join_url, coalesce(l.email, m.attendee_email) as email, l.first_name, l.last_name,
           l.title as job_title, l.company_name, l.company_domain, l.phone,
           (select a.status from public.lead_assignments a where a.id = m.assignment_id) as assignment_status
    from public.meetings m left join public.lead_pool l on l.id = m.lead_id
    where m.id = ${meetingId}`;
  return row as MeetingSnapshot | undefined;
}

function contactInput(s: { email: string; first_name: string | null; last_name: string | null; job_title: string | null; company_name: string | null; company_domain: string | null; phone: string | null; assignment_status: string | null }) {
  return {
    email: s.email, firstName: s.first_name, lastName: s.last_name, jobTitle: s.job_title, company: s.company_name,
    phone: s.phone, website: s.company_domain, properties: crmContactStatus(s.assignment_status),
  };
}

function meetingInput(s: MeetingSnapshot) {
  const who = [s.first_name, s.last_name].filter(Boolean).join(" ") || s.email || "lead";
  return {
    title: s.title?.trim() || `Meeting with ${who}${s.company_name ? ` (${s.company_name})` : ""}`,
    startTime: s.starts_at,
    endTime: s.ends_at,
    outcome: MEETING_OUTCOME_IN_CRM[s.status],
    body: `Booked ${s.source === "manual" ? "by hand" : `through ${s.source === "calcom" ? "Cal.com" : "Calendly"}`} in Agency OS.`,
    internalNotes: s.notes,
    externalUrl: s.join_url,
  };
}

/**
 * Pushes a meeting and its lead to HubSpot: the contact upserted by email (with its lead status),
 * the meeting created once (crm_id remembered) and updated afterwards, associated to the contact.
 * Idempotent: run it twice and HubSpot holds one contact, one meeting, one association. Concurrent
 * runs converge: the row is marked synced only if it did not change while we pushed (else we push
 * again), and a duplicate meeting created by a lost race is archived.
 */
export async function syncMeetingToCrm(meetingId: string, hubspot: HubSpotClient): Promise<CrmSyncResult> {
  for (let pass = 0; pass < 3; pass++) {
    const s = await meetingSnapshot(meetingId);
    if (!s) return { status: "skipped", reason: "the meeting no longer exists" };
    if (!s.email) return { status: "skipped", reason: "the lead has no email address to find the contact by" };
    const ctx = { clientId: s.client_id };
    const contact = await hubspot.upsertContact(contactInput({ ...s, email: s.email }), ctx);
    let crmId = s.crm_id;
    let created = false;
    if (crmId && !(await hubspot.updateMeeting(crmId, meetingInput(s), ctx))) crmId = null; // deleted in HubSpot
    if (!crmId) {
      crmId = (await hubspot.createMeeting(meetingInput(s), ctx)).id;
      created = true;
    }
    await hubspot.associateMeetingToContact(crmId, contact.id, ctx);

    const done = await asService({ role: "service:crm", reason: "pushed to the CRM" }, (tx) => tx`
      update public.meetings m set crm_id = ${crmId}, crm_synced_at = now()
      where m.id = ${meetingId} and ${tx.unsafe(VERSION)} = ${s.version}
      returning crm_synced_at`);
    if (done.length > 0) {
      return { status: "synced", meetingId, crmId, contactId: contact.id, syncedAt: (done[0].crm_synced_at as Date).toISOString() };
    }
    if (created) {
      // The meeting changed while we pushed. Keep the HubSpot meeting we created unless another run
      // stored its own first; then ours is a duplicate.
      const kept = await asService({ role: "service:crm", reason: "CRM meeting id" }, (tx) => tx`
        update public.meetings set crm_id = ${crmId}
        where id = ${meetingId} and crm_id is not distinct from ${s.crm_id}
        returning id`);
      if (kept.length === 0) await hubspot.archiveMeeting(crmId, ctx);
    }
  }
  throw new Error("the meeting kept changing during the CRM push; it is retried");
}

/** Pushes a lead (as a contact, with the client's assignment status) to HubSpot. */
export async function syncLeadToCrm(leadId: string, clientId: string, hubspot: HubSpotClient): Promise<CrmSyncResult> {
  const [s] = await db()`
    select l.email, l.first_name, l.last_name, l.title as job_title, l.company_name, l.company_domain, l.phone,
           (select a.status from public.lead_assignments a where a.lead_id = l.id and a.client_id = ${clientId}
            order by (a.ended_at is null) desc, a.created_at desc limit 1) as assignment_status
    from public.lead_pool l where l.id = ${leadId}`;
  if (!s) return { status: "skipped", reason: "the lead no longer exists" };
  if (!s.email) return { status: "skipped", reason: "the lead has no email address to find the contact by" };
  const contact = await hubspot.upsertContact(contactInput(s as Parameters<typeof contactInput>[0]), { clientId, leadId });
  return { status: "synced", contactId: contact.id };
}

/** Records a failed push for GET /crm/status (an audit row; the flow's retries go on). */
export async function recordCrmFailure(target: { meetingId: string } | { leadId: string; clientId: string }, err: unknown): Promise<void> {
  const message = err instanceof Error ? err.message : String(err);
  const retryable = err instanceof ProviderError ? err.retryable : true;
  await asService({ role: "service:crm", reason: "CRM push failed" }, async (tx) => {
    const [owner] = "meetingId" in target
      ? await tx`select client_id, id as entity_id, 'meeting' as entity_type from public.meetings where id = ${target.meetingId}`
      : [{ client_id: target.clientId, entity_id: target.leadId, entity_type: "lead" }];
    if (!owner) return;
    await tx`
      insert into public.events (client_id, entity_type, entity_id, kind, actor_role, reason, data)
      values (${owner.client_id}, ${owner.entity_type}, ${owner.entity_id}, 'crm_sync_failed', 'service:crm', 'CRM push failed',
              ${tx.json({ provider: "hubspot", error: message.slice(0, 1000), retryable } as never)})`;
  });
}
