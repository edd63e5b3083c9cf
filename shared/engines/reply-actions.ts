// What happens when a person replies (product.md §7): each reply class has one action, run once per
// reply in the same transaction that records it (replies.acted_at), so a redelivered QStash message
// or two concurrent flows never act twice.
//
//   interested, meeting_request, question  assignment → replied → interested; the suggested answer
//                                          (with the client's booking link for a meeting request)
//                                          waits in the inbox for the client
//   not_now         → replied; the remaining steps stop; ONE follow-up is planned at the date the
//                     person gave (else +90 days): at that date the assignment goes back to
//                     in_sequence and the first unsent step is rescheduled, its message written
//                     afresh (reply_follow_ups)
//   out_of_office   the sequence does NOT stop: its pending steps (and any send queued but not yet
//                   handed to a provider) are pushed so the first falls on the day after the return
//                   date (+7 days when no date could be read)
//   referral        → replied; the referred person becomes a new pool lead (source 'referral')
//   wrong_person    → replied → not_interested
//   not_interested  → replied → not_interested; the company is paused 14 days (product.md §6.8)
//   unsubscribe     unsubscribePerson: global suppression of every identifier, every assignment
//                   unsubscribed, pending steps cancelled, company paused (compliance S3, G2)
//   complaint       the same, and the agency is alerted (events 'complaint_alert')
//   auto_reply      ignored: nothing changes
//   bounce          the address is suppressed (kind email) and the assignment → bounced
// Every reply but out_of_office and auto_reply stops the person's remaining steps at once: the
// assignment leaves in_sequence (the gate refuses its steps) and its pending step runs are cancelled.
//
// Status moves go through the state machine (status_transitions): a path of legal steps along the
// main line is taken (queued → in_sequence → replied → interested), never a backwards one, so an
// assignment already past 'replied' (meeting booked, won, completed…) keeps its status. A client
// user reclassifying a reply re-runs the new class's action (reclassifyReply).
import type { Sql, Tx } from "../db/client.ts";
import { asService, db } from "../db/client.ts";
import { enqueue, kick } from "../flows/outbox.ts";
import type { AnthropicClient } from "../integrations/anthropic.ts";
import {
  addDays,
  classifyReply,
  localDate,
  parseFollowUpDate,
  parseReturnDate,
  type Classification,
  type Referral,
  type ReplyClass,
} from "./reply-classifier.ts";
import { COMPANY_PAUSE_DAYS, normaliseDomain, normaliseEmail, recordComplaint, suppressAddress, unsubscribePerson } from "./suppress.ts";

export const REPLIES_TOPIC = "flow.replies";
/** Published for each reply acted on (client webhooks, notifications subscribe to it). */
export const REPLY_ACTED_TOPIC = "reply.acted";
export const NOT_NOW_DEFAULT_DAYS = 90;
/** An out-of-office without a readable return date pauses the sequence this long. */
export const OOO_DEFAULT_DAYS = 7;

const PENDING_STEP_STATUSES = ["scheduled", "awaiting_approval", "approved"];
/** The statuses a reply's status path may pass through (never an exit such as paused). */
const PATH_STATUSES = new Set(["queued", "in_sequence", "replied"]);

export interface ReplyRow {
  id: string;
  client_id: string | null;
  lead_id: string | null;
  assignment_id: string | null;
  send_id: string | null;
  channel: "email" | "sms" | "voice" | "linkedin" | "mail";
  provider: string;
  provider_message_id: string;
  from_address: string | null;
  subject: string | null;
  body: string;
  received_at: Date;
  class: ReplyClass | null;
  class_source: string | null;
  confidence: string | number | null;
  details: Record<string, unknown>;
  suggested_answer: string | null;
  classified_at: Date | null;
  acted_at: Date | null;
}

export interface ActionResult {
  class: ReplyClass;
  /** What was done, in a few words (stored in details.action). */
  action: string;
  assignment: { id: string; from: string; to: string } | null;
  stepRunsCancelled?: number;
  stepRunsDeferred?: number;
  /** out_of_office: queued sends withdrawn so they move with the sequence. */
  sendsWithdrawn?: number;
  resumeDate?: string;
  followUp?: { id: string; dueAt: string; stepRunId: string | null } | null;
  referralLeadId?: string | null;
  suppressionsAdded?: number;
  companyPaused?: boolean;
  notes: string[];
}

// ---------------------------------------------------------------------------------------------
// Classification → row
// ---------------------------------------------------------------------------------------------

/** The details jsonb and suggested answer a classification is stored as. */
export function classificationRow(c: Classification): { details: Record<string, unknown>; suggestedAnswer: string | null } {
  const details: Record<string, unknown> = {};
  if (c.rule) details.rule = c.rule;
  if (c.note) details.note = c.note;
  if (c.followUpDate) details.follow_up_date = c.followUpDate;
  if (c.returnDate) details.return_date = c.returnDate;
  if (c.referral) details.referral = c.referral;
  if (c.bouncedAddress) details.bounced_address = c.bouncedAddress;
  if (c.llm) {
    details.llm = {
      model: c.llm.model,
      calls: c.llm.calls,
      input_tokens: c.llm.usage.inputTokens,
      output_tokens: c.llm.usage.outputTokens,
      cache_read_tokens: c.llm.usage.cacheReadTokens,
      cache_write_tokens: c.llm.usage.cacheWriteTokens,
      cost_cents: c.llm.costCents,
    };
  }
  return { details, suggestedAnswer: c.suggestedAnswer ?? null };
}

// ---------------------------------------------------------------------------------------------
// State-machine moves
// ---------------------------------------------------------------------------------------------

let transitions: Map<string, string[]> | null = null;

async function assignmentTransitions(tx: Tx): Promise<Map<string, string[]>> {
  if (transitions) return transitions;
  const rows = await tx`select from_status, to_status from public.status_transitions where entity = 'assignment'`;
  const map = new Map<string, string[]>();
  for (const r of rows) map.set(r.from_status, [...(map.get(r.from_status) ?? []), r.to_status]);
  transitions = map;
  return map;
}

/** The shortest legal path from → to (excluding from), through main-line statuses only; null if none. */
export function statusPath(graph: Map<string, string[]>, from: string, to: string): string[] | null {
  if (from === to) return [];
  const prev = new Map<string, string>();
  const queue = [from];
  const seen = new Set([from]);
  while (queue.length) {
    const s = queue.shift()!;
    for (const next of graph.get(s) ?? []) {
      if (seen.has(next)) continue;
      if (next !== to && !PATH_STATUSES.has(next)) continue;
      prev.set(next, s);
      if (next === to) {
        const path = [to];
        let p = s;
        while (p !== from) {
          path.unshift(p);
          p = prev.get(p)!;
        }
        return path;
      }
      seen.add(next);
      queue.push(next);
    }
  }
  return null;
}

interface AssignmentRow {
  id: string;
  client_id: string;
  lead_id: string;
  status: string;
  ended_at: Date | null;
}

async function setReason(tx: Tx, reason: string): Promise<string> {
  const [prev] = await tx`select current_setting('app.reason', true) as reason, set_config('app.reason', ${reason}, true)`;
  return (prev?.reason as string | null) ?? "";
}

/**
 * Moves the assignment toward target along legal steps. Returns the status it ends in; when no
 * forward path exists (already past it) or the database refuses (cool-off), it stays, with a note.
 */
async function moveAssignment(tx: Tx, a: AssignmentRow, target: string, reason: string, notes: string[]): Promise<string> {
  const path = statusPath(await assignmentTransitions(tx), a.status, target);
  if (path === null) {
    notes.push(`assignment stays ${a.status} (no forward move to ${target})`);
    return a.status;
  }
  if (path.length === 0) return a.status;
  const prevReason = await setReason(tx, reason);
  try {
    await tx.savepoint(async (sp) => {
      for (const s of path) await sp`update public.lead_assignments set status = ${s} where id = ${a.id}`;
    });
    a.status = target;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== "AOS01" && code !== "AOS03") throw err;
    notes.push(`assignment stays ${a.status}: ${(err as Error).message}`);
  } finally {
    await setReason(tx, prevReason);
  }
  return a.status;
}

/** Cancels the assignment's steps not sent yet, each with a gate_refusals row; returns how many. */
async function stopPendingSteps(tx: Tx, assignmentId: string, refusal: string): Promise<number> {
  const cancelled = await tx`
    update public.step_runs r set status = 'cancelled', refusals = r.refusals + 1, last_refusal = ${refusal}
    where r.assignment_id = ${assignmentId} and r.status = any(${PENDING_STEP_STATUSES}::text[])
    returning r.id, r.client_id, r.channel`;
  if (cancelled.length) {
    await tx`
      insert into public.gate_refusals (step_run_id, client_id, channel, reason, outcome)
      select t.id, t.client_id, t.channel, ${refusal}, 'skipped'
      from unnest(${cancelled.map((r) => r.id as string)}::uuid[], ${cancelled.map((r) => r.client_id as string)}::uuid[],
                  ${cancelled.map((r) => r.channel as string)}::text[]) as t (id, client_id, channel)`;
  }
  return cancelled.length;
}

// ---------------------------------------------------------------------------------------------
// Helpers of single actions
// ---------------------------------------------------------------------------------------------

interface LeadRow {
  id: string;
  email: string | null;
  phone_e164: string | null;
  linkedin_key: string | null;
  first_name: string | null;
  company_name: string | null;
  company_domain: string | null;
  country: string | null;
  timezone: string | null;
}

/** The reply's assignment: its own, else the lead's active one (for the reply's client when known). Locked. */
async function resolveAssignment(tx: Tx, reply: ReplyRow): Promise<AssignmentRow | null> {
  if (reply.assignment_id) {
    const [a] = await tx`select id, client_id, lead_id, status, ended_at from public.lead_assignments where id = ${reply.assignment_id} for update`;
    if (a) return a as unknown as AssignmentRow;
  }
  if (!reply.lead_id) return null;
  const [a] = await tx`
    select id, client_id, lead_id, status, ended_at from public.lead_assignments
    where lead_id = ${reply.lead_id} and (${reply.client_id}::uuid is null or client_id = ${reply.client_id}::uuid)
    order by (ended_at is null) desc, created_at desc
    limit 1
    for update`;
  return (a as unknown as AssignmentRow) ?? null;
}

async function pauseCompany(tx: Tx, lead: LeadRow | null, at: Date): Promise<boolean> {
  const domain = normaliseDomain(lead?.company_domain);
  if (!domain) return false;
  const until = new Date(at.getTime() + COMPANY_PAUSE_DAYS * 86_400_000);
  await tx`
    insert into public.companies as co (domain, outreach_paused_until) values (${domain}, ${until})
    on conflict (domain) do update
      set outreach_paused_until = greatest(coalesce(co.outreach_paused_until, excluded.outreach_paused_until), excluded.outreach_paused_until)`;
  return true;
}

const EMAIL_IN_TEXT = /([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})/g;

/** The referred person from the stored classification, else the first other address in the reply. */
function referralOf(reply: ReplyRow, lead: LeadRow | null): Referral | null {
  const stored = reply.details.referral as Referral | undefined;
  if (stored && typeof stored.name === "string" && stored.name.trim()) return stored;
  const own = new Set([normaliseEmail(reply.from_address), normaliseEmail(lead?.email)].filter(Boolean));
  for (const m of reply.body.matchAll(EMAIL_IN_TEXT)) {
    const email = normaliseEmail(m[1]);
    if (email && !own.has(email)) return { name: email.split("@")[0].replace(/[._-]+/g, " "), email };
  }
  return null;
}

async function createReferralLead(tx: Tx, ref: Referral, lead: LeadRow | null, reply: ReplyRow, notes: string[]): Promise<string | null> {
  const email = normaliseEmail(ref.email);
  if (email && (email === normaliseEmail(lead?.email) || email === normaliseEmail(reply.from_address))) {
    notes.push("the referred address is the replier's own");
    return null;
  }
  const [first, ...rest] = ref.name.trim().split(/\s+/);
  const domain = email ? email.split("@")[1] : normaliseDomain(lead?.company_domain);
  const values = {
    email,
    first_name: first || null,
    last_name: rest.join(" ") || null,
    title: ref.title?.trim() || null,
    company_name: lead?.company_name ?? null,
    company_domain: domain ?? lead?.company_domain ?? null,
    country: lead?.country ?? null,
    source: "referral",
  };
  const [made] = email
    ? await tx`insert into public.lead_pool ${tx(values)} on conflict (email_normalized) where email_normalized is not null do nothing returning id`
    : await tx`insert into public.lead_pool ${tx(values)} returning id`;
  if (made) {
    await kick(tx, "flow.enrichment");
    return made.id as string;
  }
  const [existing] = await tx`select id from public.lead_pool where email_normalized = ${email}`;
  notes.push("the referred person is already in the pool");
  return (existing?.id as string) ?? null;
}

/**
 * The person's sends the gate queued that have not gone to a provider yet (pending in a dispatch
 * batch) are withdrawn and their steps put back on the schedule, so the deferral that follows
 * moves them past the return date with the rest: a message landing while the person is away is
 * one nobody reads. A send already being dispatched is left to finish. The refusal is recorded
 * like the gate's, and a withdrawn first touch stops counting against the month's lead quota
 * (as the dispatcher's own withdrawal does: private.claim_dispatch_batch).
 */
async function withdrawQueuedSends(tx: Tx, assignmentId: string, reason: string): Promise<number> {
  const withdrawn = await tx`
    with w as (
      delete from public.sends s where s.assignment_id = ${assignmentId} and s.status = 'pending'
      returning s.step_run_id, s.client_id, s.channel
    ), runs as (
      update public.step_runs r
      set status = 'scheduled', refusals = r.refusals + 1, last_refusal = ${reason},
          voice_attempts = greatest(0, r.voice_attempts - (r.channel = 'voice')::integer)
      from w where r.id = w.step_run_id
      returning r.id
    )
    insert into public.gate_refusals (step_run_id, client_id, channel, reason, outcome, decided_at)
    select step_run_id, client_id, channel, ${reason}, 'rescheduled', now() from w
    returning client_id`;
  if (withdrawn.length === 0) return 0;
  await tx`
    update public.client_spend sp set first_touches = greatest(0, sp.first_touches - 1)
    where sp.client_id = ${withdrawn[0]!.client_id} and sp.month = date_trunc('month', now())::date
      and not exists (select 1 from public.sends x where x.assignment_id = ${assignmentId})`;
  return withdrawn.length;
}

/** Pushes the assignment's pending steps so the first one is due at the start of resumeDate (its zone). */
async function deferPendingSteps(tx: Tx, assignmentId: string, resumeDate: string): Promise<number> {
  const moved = await tx`
    with p as (
      select r.id, r.due_at, r.timezone from public.step_runs r
      where r.assignment_id = ${assignmentId} and r.status = any(${PENDING_STEP_STATUSES}::text[])
    ), s as (
      select ((${resumeDate}::date)::timestamp at time zone (select p.timezone from p order by p.due_at limit 1))
             - min(p.due_at) as shift
      from p
    )
    update public.step_runs r
    set due_at = r.due_at + s.shift,
        approval_expires_at = r.approval_expires_at + s.shift
    from s
    where r.id in (select id from p) and s.shift > interval '0'
    returning r.id`;
  return moved.length;
}

/** Plans the not-now follow-up: the first cancelled, never-sent step of the assignment, at dueAt. */
async function planFollowUp(tx: Tx, reply: ReplyRow, a: AssignmentRow, dueAt: Date): Promise<{ id: string; dueAt: string; stepRunId: string | null }> {
  const [run] = await tx`
    select r.id from public.step_runs r
    where r.assignment_id = ${a.id} and r.status = 'cancelled'
      and not exists (select 1 from public.sends s where s.step_run_id = r.id)
    order by r.position, r.id
    limit 1`;
  const [f] = await tx`
    insert into public.reply_follow_ups (reply_id, assignment_id, client_id, step_run_id, due_at)
    values (${reply.id}, ${a.id}, ${a.client_id}, ${(run?.id as string) ?? null}, ${dueAt})
    on conflict (reply_id) do update
      set assignment_id = excluded.assignment_id, client_id = excluded.client_id, step_run_id = excluded.step_run_id,
          due_at = excluded.due_at, status = 'scheduled', outcome = null, resolved_at = null
    returning id, due_at, step_run_id`;
  return { id: f.id, dueAt: (f.due_at as Date).toISOString(), stepRunId: f.step_run_id };
}

/** Local start of a date in a zone, as an instant (09:00 there: a follow-up goes out in office hours). */
async function localMorning(tx: Tx, date: string, timeZone: string): Promise<Date> {
  const [r] = await tx`
    select ((${date}::date + time '09:00') at time zone
            coalesce((select z.name from private.time_zones z where z.name = ${timeZone}), 'UTC')) as at`;
  return r.at as Date;
}

// ---------------------------------------------------------------------------------------------
// The action
// ---------------------------------------------------------------------------------------------

export interface ActOptions {
  now?: Date;
  /** Who asked: the flow (classification) or a client user (reclassification). */
  by?: "flow" | "user";
}

/**
 * Runs the action of reply.class in the caller's transaction and marks the reply acted on. The
 * caller holds the reply row locked (FOR UPDATE) and has written its class.
 */
export async function actOnReply(tx: Tx, reply: ReplyRow, opts: ActOptions = {}): Promise<ActionResult> {
  const now = opts.now ?? new Date();
  const cls = reply.class;
  if (!cls) throw new Error(`reply ${reply.id} has no class to act on`);
  const notes: string[] = [];
  const reason = `reply ${cls}${opts.by === "user" ? " (reclassified by the client)" : ""}`;

  // this reply's earlier plan (before a reclassification) no longer holds
  await tx`
    update public.reply_follow_ups set status = 'cancelled', outcome = 'reply reclassified', resolved_at = ${now}
    where reply_id = ${reply.id} and status = 'scheduled'`;

  const a = await resolveAssignment(tx, reply);
  const leadId = reply.lead_id ?? a?.lead_id ?? null;
  const [lead] = leadId
    ? await tx`
        select id, email_normalized as email, phone_e164, linkedin_key, first_name, company_name,
               nullif(lower(btrim(company_domain)), '') as company_domain, country, timezone
        from public.lead_pool where id = ${leadId}`
    : [];
  const l = (lead as unknown as LeadRow) ?? null;
  const clientId = reply.client_id ?? a?.client_id ?? null;
  const from = a?.status ?? null;
  const result: ActionResult = { class: cls, action: "", assignment: null, notes };
  const source = `reply:${reply.id}`;
  const timeZone = l?.timezone ?? "UTC";

  const stopSequence = async (target: string) => {
    if (!a) {
      notes.push("no assignment found for this reply");
      return;
    }
    await moveAssignment(tx, a, target, reason, notes);
    result.stepRunsCancelled = await stopPendingSteps(tx, a.id, "replied");
  };

  switch (cls) {
    case "interested":
    case "meeting_request":
    case "question":
      await stopSequence("interested");
      result.action = cls === "meeting_request" ? "sequence stopped; marked interested; booking link suggested" : "sequence stopped; marked interested";
      break;

    case "not_now": {
      await stopSequence("replied");
      const date = (reply.details.follow_up_date as string | undefined) ?? parseFollowUpDate(reply.body, now, timeZone)
        ?? addDays(localDate(now, timeZone), NOT_NOW_DEFAULT_DAYS);
      if (a && a.status === "replied") {
        result.followUp = await planFollowUp(tx, reply, a, await localMorning(tx, date, timeZone));
        if (!result.followUp.stepRunId) notes.push("no unsent step left: the follow-up is for a person to make");
        result.action = `sequence stopped; follow-up planned for ${date}`;
      } else {
        result.followUp = null;
        result.action = "sequence stopped; no follow-up (the assignment is not in replied)";
      }
      break;
    }

    case "out_of_office": {
      const returnDate = (reply.details.return_date as string | undefined) ?? parseReturnDate(`${reply.subject ?? ""}\n${reply.body}`, now, timeZone);
      result.resumeDate = returnDate ? addDays(returnDate, 1) : addDays(localDate(now, timeZone), OOO_DEFAULT_DAYS);
      if (!returnDate) notes.push(`no return date found: resuming after ${OOO_DEFAULT_DAYS} days`);
      if (a) {
        result.sendsWithdrawn = await withdrawQueuedSends(tx, a.id, "out_of_office");
        if (result.sendsWithdrawn) notes.push(`${result.sendsWithdrawn} queued send(s) withdrawn and moved with the sequence`);
      }
      result.stepRunsDeferred = a ? await deferPendingSteps(tx, a.id, result.resumeDate) : 0;
      result.action = `sequence kept; pending steps from ${result.resumeDate}`;
      break;
    }

    case "referral": {
      const ref = referralOf(reply, l);
      result.referralLeadId = ref ? await createReferralLead(tx, ref, l, reply, notes) : null;
      if (!ref) notes.push("the reply names no one to contact");
      await stopSequence("replied");
      result.action = result.referralLeadId ? "sequence stopped; referred person added to the pool" : "sequence stopped";
      break;
    }

    case "wrong_person":
      await stopSequence("not_interested");
      result.action = "sequence stopped; marked not interested";
      break;

    case "not_interested":
      await stopSequence("not_interested");
      result.companyPaused = await pauseCompany(tx, l, now);
      result.action = `sequence stopped; marked not interested${result.companyPaused ? `; company paused ${COMPANY_PAUSE_DAYS} days` : ""}`;
      break;

    case "unsubscribe":
    case "complaint": {
      const input = {
        leadId,
        email: reply.channel === "email" ? reply.from_address : null,
        phone: reply.channel === "sms" || reply.channel === "voice" ? reply.from_address : null,
        reason: cls === "complaint" ? "complaint" : "reply_unsubscribe",
        source,
        clientId,
        at: now,
      };
      const stopped = cls === "complaint" ? await recordComplaint(tx, input) : await unsubscribePerson(tx, input);
      result.suppressionsAdded = stopped.suppressionsAdded;
      result.stepRunsCancelled = stopped.stepRunsCancelled;
      result.companyPaused = stopped.companiesPaused > 0;
      if (!stopped.leadIds.length && !stopped.suppressionsAdded) notes.push("no identifier of the person was known");
      result.action = cls === "complaint" ? "unsubscribed everywhere; agency alerted" : "unsubscribed everywhere";
      break;
    }

    case "auto_reply":
      result.action = "ignored";
      break;

    case "bounce": {
      const address = normaliseEmail(reply.details.bounced_address as string | undefined) ?? normaliseEmail(l?.email);
      if (address) {
        const stopped = await suppressAddress(tx, { kind: "email", value: address, reason: "hard_bounce", source });
        result.suppressionsAdded = stopped.suppressionsAdded;
        result.stepRunsCancelled = stopped.stepRunsCancelled;
      } else notes.push("no address to suppress");
      // the bounced message's own assignment, even if the notice named another address
      if (a && a.ended_at === null) {
        const [now2] = await tx`select status from public.lead_assignments where id = ${a.id}`;
        a.status = now2.status;
        if (a.status !== "bounced") await moveAssignment(tx, a, "bounced", reason, notes);
        result.stepRunsCancelled = (result.stepRunsCancelled ?? 0) + await stopPendingSteps(tx, a.id, "bounced");
      }
      result.action = address ? `address ${address} suppressed; assignment bounced` : "assignment bounced";
      break;
    }
  }

  if (a) {
    const [after] = await tx`select status from public.lead_assignments where id = ${a.id}`;
    result.assignment = { id: a.id, from: from!, to: after.status as string };
  }

  await tx`
    update public.replies set
      acted_at = ${now},
      assignment_id = coalesce(assignment_id, ${a?.id ?? null}::uuid),
      lead_id = coalesce(lead_id, ${leadId}::uuid),
      client_id = coalesce(client_id, ${clientId}::uuid),
      details = details || ${tx.json({ action: { ...result } } as never)}
    where id = ${reply.id}`;
  await tx`
    insert into public.events (client_id, entity_type, entity_id, kind, from_status, to_status, actor_id, actor_role, reason, data)
    values (${clientId}, 'reply', ${reply.id}, 'reply_acted', ${result.assignment?.from ?? null}, ${result.assignment?.to ?? null},
            private.current_actor_id(), private.current_actor_role(), ${reason},
            ${tx.json({ class: cls, action: result.action, notes } as never)})`;
  await enqueue(tx, REPLY_ACTED_TOPIC, { reply_id: reply.id, class: cls, client_id: clientId, assignment_id: a?.id ?? null }, {
    clientId: clientId ?? undefined,
    dedupKey: `reply-acted:${reply.id}:${now.getTime()}`,
  });
  return result;
}

// ---------------------------------------------------------------------------------------------
// Classify and act (the flow), reclassify (the API), follow-ups that fall due
// ---------------------------------------------------------------------------------------------

export interface ProcessDeps {
  claude: AnthropicClient | null;
  now?: Date;
  sql?: Sql;
}

export type ProcessResult =
  | { replyId: string; status: "missing" | "already_acted" }
  | { replyId: string; status: "acted"; class: ReplyClass; source: string; action: ActionResult };

/**
 * Classifies a reply (unless it already is) and acts on it, once. The model is asked outside any
 * transaction; the class, the action and acted_at are written in one transaction holding the reply
 * row, so a second delivery finds acted_at set and changes nothing. Throws ClassifyRetryableError
 * when Claude is briefly unavailable (the reply stays as it was, for a later try).
 */
export async function processReply(replyId: string, deps: ProcessDeps): Promise<ProcessResult> {
  const sql = deps.sql ?? db();
  const now = deps.now ?? new Date();
  const [row] = await sql`
    select r.id, r.acted_at, r.classified_at, r.channel, r.body, r.subject, r.from_address, r.details,
           r.client_id, r.lead_id, l.first_name, coalesce(l.timezone, c.timezone) as timezone, c.name as client_name, c.booking_url
    from public.replies r
    left join public.lead_pool l on l.id = r.lead_id
    left join public.clients c on c.id = r.client_id
    where r.id = ${replyId}`;
  if (!row) return { replyId, status: "missing" };
  if (row.acted_at) return { replyId, status: "already_acted" };

  let classification: Classification | null = null;
  if (!row.classified_at) {
    const headers = (row.details as Record<string, unknown>)?.headers;
    classification = await classifyReply(
      { channel: row.channel, body: row.body ?? "", subject: row.subject, fromAddress: row.from_address, headers: headers && typeof headers === "object" ? headers as Record<string, string> : null },
      {
        claude: deps.claude, now, timeZone: row.timezone ?? "UTC", bookingLink: row.booking_url, clientName: row.client_name,
        leadFirstName: row.first_name, leadId: row.lead_id, clientId: row.client_id,
      },
    );
  }

  return await asService({ role: "service:replies", reason: "reply acted on" }, async (tx) => {
    const [locked] = await tx`select * from public.replies where id = ${replyId} for update`;
    // tokens spent count against the client's month whatever happens next
    const cents = classification?.llm?.costCents ?? 0;
    const spendClient = (locked?.client_id as string | null) ?? null;
    if (cents > 0 && spendClient) {
      await tx`
        insert into public.client_spend as sp (client_id, month, llm_cents)
        values (${spendClient}, date_trunc('month', ${now}::timestamptz)::date, ${cents})
        on conflict (client_id, month) do update set llm_cents = sp.llm_cents + excluded.llm_cents`;
    }
    if (!locked) return { replyId, status: "missing" as const };
    if (locked.acted_at) return { replyId, status: "already_acted" as const };
    let reply = locked as unknown as ReplyRow;
    if (!reply.classified_at && classification) {
      const { details, suggestedAnswer } = classificationRow(classification);
      const [updated] = await tx`
        update public.replies set class = ${classification.class}, class_source = ${classification.source},
               confidence = ${Math.round(classification.confidence * 1000) / 1000}, details = details || ${tx.json(details as never)},
               suggested_answer = ${suggestedAnswer}, classified_at = ${now}
        where id = ${replyId}
        returning *`;
      reply = updated as unknown as ReplyRow;
    }
    if (!reply.class) return { replyId, status: "missing" as const };
    const action = await actOnReply(tx, reply, { now, by: "flow" });
    return { replyId, status: "acted" as const, class: reply.class, source: reply.class_source ?? "keyword", action };
  });
}

/**
 * A client user's reclassification (the caller checked their role and that they see the reply): the
 * new class is stored with who did it and its action runs again. Returns null when the reply is gone.
 */
export async function reclassifyReply(
  tx: Tx,
  replyId: string,
  cls: ReplyClass,
  by: { userId: string; now?: Date },
): Promise<{ reply: ReplyRow; action: ActionResult } | null> {
  const now = by.now ?? new Date();
  const [current] = await tx`select class from public.replies where id = ${replyId} for update`;
  if (!current) return null;
  const [updated] = await tx`
    update public.replies set
      class = ${cls}, class_source = 'user', confidence = 1, reclassified_by = ${by.userId}, reclassified_at = ${now},
      classified_at = coalesce(classified_at, ${now}),
      details = details || ${tx.json({ previous_class: current.class ?? null } as never)}
    where id = ${replyId}
    returning *`;
  const action = await actOnReply(tx, updated as unknown as ReplyRow, { now, by: "user" });
  const [reply] = await tx`select * from public.replies where id = ${replyId}`;
  return { reply: reply as unknown as ReplyRow, action };
}

/**
 * Not-now follow-ups that fell due: the assignment goes replied → in_sequence and the planned step is
 * due now, in one transaction (so the gate never sees the step under a replied assignment). If the
 * person replied otherwise since, the plan is cancelled; with no step left, a person is told.
 */
export async function resumeDueFollowUps(tx: Tx, opts: { limit?: number; now?: Date } = {}): Promise<{ resumed: number; cancelled: number; manual: number }> {
  const now = opts.now ?? new Date();
  const due = await tx`
    select f.id, f.reply_id, f.assignment_id, f.client_id, f.step_run_id, a.status as a_status, a.lead_id
    from public.reply_follow_ups f
    join public.lead_assignments a on a.id = f.assignment_id
    where f.status = 'scheduled' and f.due_at <= ${now}
    order by f.due_at, f.id
    limit ${opts.limit ?? 200}
    for update of f, a skip locked`;
  const out = { resumed: 0, cancelled: 0, manual: 0 };
  for (const f of due) {
    const close = (status: string, outcome: string) => tx`
      update public.reply_follow_ups set status = ${status}, outcome = ${outcome}, resolved_at = ${now} where id = ${f.id}`;
    if (f.a_status !== "replied") {
      await close("cancelled", `the assignment is ${f.a_status}`);
      out.cancelled++;
      continue;
    }
    const [run] = f.step_run_id
      ? await tx`select id from public.step_runs where id = ${f.step_run_id} and status in ('cancelled', 'skipped') for update`
      : [];
    let resumed = false;
    if (run) {
      const prev = await setReason(tx, "not-now follow-up due");
      try {
        await tx.savepoint(async (sp) => {
          await sp`update public.lead_assignments set status = 'in_sequence' where id = ${f.assignment_id}`;
          // written again before it goes: the text from before the "not now" (months old, for a
          // tier the lead may no longer have) is not what they asked to hear from us later
          await sp`
            update public.step_runs set status = 'scheduled', due_at = ${now}, last_refusal = null, approval_expires_at = null,
                   subject = null, body = null, content_source = null, content_model = null, content_tokens = null,
                   content_cost_cents = 0, content_ready_at = null, content_claimed_until = null,
                   content_batch_id = null, content_batch_submitted_at = null
            where id = ${run.id}`;
        });
        resumed = true;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code !== "AOS01" && code !== "AOS03") throw err;
      } finally {
        await setReason(tx, prev);
      }
    }
    if (resumed) {
      await close("resumed", "the follow-up step is due");
      out.resumed++;
    } else {
      await close("manual", "no step to send: follow up by hand");
      await tx`
        insert into public.events (client_id, entity_type, entity_id, kind, actor_id, actor_role, reason, data)
        values (${f.client_id}, 'assignment', ${f.assignment_id}, 'follow_up_due', private.current_actor_id(), private.current_actor_role(),
                'not-now follow-up due', ${tx.json({ reply_id: f.reply_id, lead_id: f.lead_id } as never)})`;
      out.manual++;
    }
  }
  return out;
}
