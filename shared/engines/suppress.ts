// The one "stop contacting this person" engine. Every path that learns someone must not be
// contacted again goes through here: STOP texts, "please remove me" replies, one-click email
// unsubscribes, Salesforge unsubscribe/DNC events, opt-outs said on a call, complaints, bounces.
//
//   unsubscribePerson  an objection (Spam Act S3, GDPR Art 21 / compliance G2): a GLOBAL suppression
//                      of every identifier the person has (email, phone, LinkedIn — not the
//                      company domain), every active assignment of theirs (any client) →
//                      'unsubscribed', their pending steps cancelled and their batched sends
//                      withdrawn, consent withdrawn, and their company paused 14 days (product.md §6.8)
//   recordComplaint    the same, and the agency is alerted (an events row 'complaint_alert')
//   suppressAddress    a bounce: that one address only; the assignment → 'bounced'
//
// All of it runs in the caller's transaction and is idempotent: running it again for the same
// person and event changes nothing. The send gate (private.gate_due_steps) and the dispatcher
// (private.claim_dispatch_batch) re-check suppressions and assignment status themselves, so a send
// racing this transaction is still stopped at the next step; the row state here is what they read.
import type { Tx } from "../db/client.ts";
import { linkedinKey as normaliseLinkedinUrl } from "../integrations/provider-http.ts";

export const COMPANY_PAUSE_DAYS = 14;

/** Step-run statuses that have not gone out yet. */
const PENDING_STEP_STATUSES = ["scheduled", "awaiting_approval", "approved"];

export interface PersonRef {
  leadId?: string | null;
  email?: string | null;
  phone?: string | null;
  /** A LinkedIn profile URL or the normalised key (https://www.linkedin.com/in/<slug>). */
  linkedinKey?: string | null;
}

export interface UnsubscribeInput extends PersonRef {
  /** Why, for the suppression row and the audit trail ("sms_stop", "reply_unsubscribe", …). */
  reason: string;
  /** Where it came from ("twilio:SM…", "reply:<id>", …). */
  source: string;
  /** The client whose message prompted it (recorded on the complaint alert; suppression is global anyway). */
  clientId?: string | null;
  /** When the person asked (default now): the company pause runs 14 days from here. */
  at?: Date;
}

export interface StopResult {
  /** Pool leads that are this person. */
  leadIds: string[];
  suppressionsAdded: number;
  assignmentsStopped: number;
  stepRunsCancelled: number;
  sendsWithdrawn: number;
  companiesPaused: number;
}

// ---------------------------------------------------------------------------------------------
// Normalising identifiers the way the pool and the suppression list store them
// ---------------------------------------------------------------------------------------------

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: unknown): value is string {
  return typeof value === "string" && UUID.test(value);
}

/** Lower-cased trimmed email, or null when it is not an address. */
export function normaliseEmail(value: string | null | undefined): string | null {
  const v = (value ?? "").trim().toLowerCase().replace(/^mailto:/, "");
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v) ? v : null;
}

/** E.164 from what providers send (+61 412 345 678, 0061…, 61412345678 from ClickSend), else null. */
export function normalisePhone(value: string | null | undefined): string | null {
  let v = (value ?? "").trim().replace(/[\s().-]/g, "");
  if (v.startsWith("00")) v = `+${v.slice(2)}`;
  // ClickSend and some carriers drop the plus on international numbers
  if (/^[1-9]\d{9,14}$/.test(v)) v = `+${v}`;
  return /^\+[1-9]\d{6,14}$/.test(v) ? v : null;
}

/** The pool's LinkedIn key from a profile URL, a bare slug or an existing key. */
export function normaliseLinkedin(value: string | null | undefined): string | null {
  const v = (value ?? "").trim();
  if (!v) return null;
  if (/linkedin\.com/i.test(v)) return normaliseLinkedinUrl(v);
  return /^[A-Za-z0-9_\-%.]+$/.test(v) ? normaliseLinkedinUrl(`https://www.linkedin.com/in/${v}`) : null;
}

export function normaliseDomain(value: string | null | undefined): string | null {
  const v = (value ?? "").trim().toLowerCase().replace(/^@/, "");
  return /^[a-z0-9.-]+\.[a-z]{2,63}$/.test(v) ? v : null;
}

interface LeadIdentity {
  id: string;
  email: string | null;
  phone: string | null;
  linkedin: string | null;
  domain: string | null;
}

/** Every pool lead that is this person: by id, email, phone or LinkedIn key. */
export async function findLeads(tx: Tx, ref: PersonRef): Promise<LeadIdentity[]> {
  const ids = isUuid(ref.leadId) ? [ref.leadId] : [];
  const emails = [normaliseEmail(ref.email)].filter((v): v is string => !!v);
  const phones = [normalisePhone(ref.phone)].filter((v): v is string => !!v);
  const linkedins = [normaliseLinkedin(ref.linkedinKey)].filter((v): v is string => !!v);
  if (!ids.length && !emails.length && !phones.length && !linkedins.length) return [];
  const rows = await tx`
    select id, email_normalized as email, phone_e164 as phone, linkedin_key as linkedin,
           nullif(lower(btrim(company_domain)), '') as domain
    from public.lead_pool
    where id = any(${ids}::uuid[]) or email_normalized = any(${emails}::text[])
       or phone_e164 = any(${phones}::text[]) or linkedin_key = any(${linkedins}::text[])`;
  return rows as unknown as LeadIdentity[];
}

// ---------------------------------------------------------------------------------------------
// Stopping a person's work (shared by unsubscribes and bounces)
// ---------------------------------------------------------------------------------------------

interface StopOptions {
  /** The assignment status the work ends in. */
  status: "unsubscribed" | "bounced";
  /** gate_refusals.reason / step_runs.last_refusal for the steps this cancels. */
  refusal: string;
  /** The audit trail's reason for the status change. */
  reason: string;
  /** Only this client's work (a client-scoped bounce); default every client's. */
  clientId?: string | null;
}

/** Runs fn with app.reason set, then restores the transaction's own reason. */
async function withReason<T>(tx: Tx, reason: string, fn: () => Promise<T>): Promise<T> {
  const [prev] = await tx`select current_setting('app.reason', true) as reason, set_config('app.reason', ${reason}, true)`;
  try {
    return await fn();
  } finally {
    await tx`select set_config('app.reason', ${(prev?.reason as string | null) ?? ""}, true)`;
  }
}

/**
 * Ends every active assignment of the leads (state machine: any working status → status), withdraws
 * their batched sends exactly as the dispatcher does, and cancels their steps not yet sent, each with
 * a gate_refusals row.
 */
async function stopWork(tx: Tx, leadIds: string[], opts: StopOptions): Promise<Pick<StopResult, "assignmentsStopped" | "stepRunsCancelled" | "sendsWithdrawn">> {
  if (leadIds.length === 0) return { assignmentsStopped: 0, stepRunsCancelled: 0, sendsWithdrawn: 0 };
  const client = isUuid(opts.clientId) ? opts.clientId : null;

  const assignments = await withReason(tx, opts.reason, () => tx`
    update public.lead_assignments a set status = ${opts.status}
    where a.lead_id = any(${leadIds}::uuid[]) and a.ended_at is null and a.status <> ${opts.status}
      and (${client}::uuid is null or a.client_id = ${client}::uuid)
    returning a.id`);

  // Batched sends not yet leased: deleted, their step cancelled (the dispatcher's withdrawal). A send
  // the dispatcher holds right now is skipped here; its own re-check stops it.
  const withdrawn = await tx`
    with w as (
      delete from public.sends s
      where s.id in (
        select x.id from public.sends x
        where x.lead_id = any(${leadIds}::uuid[]) and x.status = 'pending'
          and (${client}::uuid is null or x.client_id = ${client}::uuid)
        for update skip locked)
      returning s.id as send_id, s.step_run_id, s.client_id, s.channel, s.assignment_id, s.attempt, s.created_at
    ), runs as (
      update public.step_runs r set status = 'cancelled',
             voice_attempts = greatest(0, r.voice_attempts - (r.channel = 'voice')::integer),
             refusals = r.refusals + 1, last_refusal = ${opts.refusal}
      from w where r.id = w.step_run_id
      returning r.id
    ), spend as (
      -- a withdrawn first touch no longer counts against the month's quota
      update public.client_spend sp set first_touches = greatest(0, sp.first_touches - f.n)
      from (select w.client_id, date_trunc('month', w.created_at)::date as month, count(*) as n from w
            where w.attempt = 1
              -- (this statement still sees the deleted rows: leave them out by hand)
              and not exists (select 1 from public.sends x
                              where x.assignment_id = w.assignment_id and x.id not in (select w2.send_id from w w2))
            group by 1, 2) f
      where sp.client_id = f.client_id and sp.month = f.month
      returning 1
    )
    select w.step_run_id as id, w.client_id, w.channel from w`;

  const cancelled = await tx`
    update public.step_runs r set status = 'cancelled', refusals = r.refusals + 1, last_refusal = ${opts.refusal}
    where r.lead_id = any(${leadIds}::uuid[]) and r.status = any(${PENDING_STEP_STATUSES}::text[])
      and (${client}::uuid is null or r.client_id = ${client}::uuid)
    returning r.id, r.client_id, r.channel`;

  const refused = [...withdrawn, ...cancelled];
  if (refused.length) {
    await tx`
      insert into public.gate_refusals (step_run_id, client_id, channel, reason, outcome)
      select t.id, t.client_id, t.channel, ${opts.refusal}, 'skipped'
      from unnest(${refused.map((r) => r.id as string)}::uuid[], ${refused.map((r) => r.client_id as string)}::uuid[],
                  ${refused.map((r) => r.channel as string)}::text[]) as t (id, client_id, channel)`;
  }
  return { assignmentsStopped: assignments.length, stepRunsCancelled: refused.length, sendsWithdrawn: withdrawn.length };
}

async function insertSuppressions(
  tx: Tx,
  rows: Array<{ kind: "email" | "phone" | "linkedin" | "domain"; value: string }>,
  meta: { reason: string; source: string; clientId: string | null },
): Promise<number> {
  if (rows.length === 0) return 0;
  const inserted = await tx`
    insert into public.suppressions (client_id, kind, value, reason, source)
    select ${meta.clientId}::uuid, t.kind, case when t.kind = 'phone' then t.value else lower(t.value) end, ${meta.reason}, ${meta.source}
    from unnest(${rows.map((r) => r.kind)}::text[], ${rows.map((r) => r.value)}::text[]) as t (kind, value)
    on conflict do nothing
    returning id`;
  return inserted.length;
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/**
 * Unsubscribes a person everywhere (see the header). Identify them by any of lead id, email, phone
 * or LinkedIn: every pool lead matching any of them is the person, and every identifier of theirs
 * (plus the ones given) is suppressed globally.
 */
export async function unsubscribePerson(tx: Tx, input: UnsubscribeInput): Promise<StopResult> {
  const at = input.at ?? new Date();
  const leads = await findLeads(tx, input);
  const leadIds = leads.map((l) => l.id);

  const emails = new Set<string>();
  const phones = new Set<string>();
  const linkedins = new Set<string>();
  const add = (set: Set<string>, v: string | null | undefined) => v && set.add(v);
  add(emails, normaliseEmail(input.email));
  add(phones, normalisePhone(input.phone));
  add(linkedins, normaliseLinkedin(input.linkedinKey));
  for (const l of leads) {
    add(emails, normaliseEmail(l.email));
    add(phones, l.phone);
    add(linkedins, l.linkedin);
  }
  const suppressionsAdded = await insertSuppressions(tx, [
    ...[...emails].map((value) => ({ kind: "email" as const, value })),
    ...[...phones].map((value) => ({ kind: "phone" as const, value })),
    ...[...linkedins].map((value) => ({ kind: "linkedin" as const, value })),
  ], { reason: input.reason, source: input.source, clientId: null });

  const stopped = await stopWork(tx, leadIds, { status: "unsubscribed", refusal: "unsubscribed", reason: `unsubscribed: ${input.reason}` });

  let companiesPaused = 0;
  if (leadIds.length) {
    // the person's consent is withdrawn on every channel (Spam Act S3: the unsubscribe is honoured at once)
    await tx`update public.lead_consents set withdrawn_at = ${at} where lead_id = any(${leadIds}::uuid[]) and withdrawn_at is null`;
    // contact pressure (product.md §6.8): nobody at their company for 14 days from the request
    const domains = [...new Set(leads.map((l) => normaliseDomain(l.domain)).filter((d): d is string => !!d))];
    if (domains.length) {
      const until = new Date(at.getTime() + COMPANY_PAUSE_DAYS * 86_400_000);
      const paused = await tx`
        insert into public.companies as co (domain, outreach_paused_until)
        select d, ${until}::timestamptz from unnest(${domains}::text[]) d
        on conflict (domain) do update
          set outreach_paused_until = greatest(coalesce(co.outreach_paused_until, excluded.outreach_paused_until), excluded.outreach_paused_until)
          where co.outreach_paused_until is distinct from greatest(coalesce(co.outreach_paused_until, excluded.outreach_paused_until), excluded.outreach_paused_until)
        returning domain`;
      companiesPaused = paused.length;
    }
  }
  return { leadIds, suppressionsAdded, ...stopped, companiesPaused };
}

/**
 * A complaint (spam report, "this is harassment"): the person is unsubscribed everywhere and the
 * agency is alerted with an events row of kind 'complaint_alert' — once per lead and source.
 */
export async function recordComplaint(tx: Tx, input: UnsubscribeInput): Promise<StopResult & { alerted: number }> {
  const result = await unsubscribePerson(tx, input);
  const client = isUuid(input.clientId) ? input.clientId : null;
  const data = {
    source: input.source,
    email: normaliseEmail(input.email),
    phone: normalisePhone(input.phone),
    linkedin: normaliseLinkedin(input.linkedinKey),
  };
  const targets: Array<string | null> = result.leadIds.length ? result.leadIds : [null];
  const alerted = await tx`
    insert into public.events (client_id, entity_type, entity_id, kind, actor_id, actor_role, reason, data)
    select ${client}::uuid, 'lead', t.id, 'complaint_alert', private.current_actor_id(), private.current_actor_role(),
           ${input.reason}, ${tx.json(data as never)}
    from unnest(${targets}::uuid[]) as t (id)
    where not exists (
      select 1 from public.events e
      where e.kind = 'complaint_alert' and e.entity_id is not distinct from t.id and e.data->>'source' = ${input.source})
    returning id`;
  return { ...result, alerted: alerted.length };
}

export interface SuppressAddressInput {
  kind: "email" | "phone" | "linkedin" | "domain";
  value: string;
  reason: string;
  source: string;
  /** A client-scoped suppression (and only that client's work stops); default global. */
  clientId?: string | null;
}

/**
 * Suppresses one address — a hard bounce: the email only, not the person's other channels — and
 * ends the work of whoever has it (assignment → 'bounced', pending steps cancelled). An email that
 * bounced is also marked invalid on the pool lead so no other client is sent to it. A domain
 * suppresses the domain and stops nobody's assignment.
 */
export async function suppressAddress(tx: Tx, input: SuppressAddressInput): Promise<StopResult> {
  const value = input.kind === "email" ? normaliseEmail(input.value)
    : input.kind === "phone" ? normalisePhone(input.value)
    : input.kind === "linkedin" ? normaliseLinkedin(input.value)
    : normaliseDomain(input.value);
  const none: StopResult = { leadIds: [], suppressionsAdded: 0, assignmentsStopped: 0, stepRunsCancelled: 0, sendsWithdrawn: 0, companiesPaused: 0 };
  if (!value) return none;
  const client = isUuid(input.clientId) ? input.clientId : null;
  const suppressionsAdded = await insertSuppressions(tx, [{ kind: input.kind, value }], { reason: input.reason, source: input.source, clientId: client });
  if (input.kind === "domain") return { ...none, suppressionsAdded };

  const leads = await findLeads(tx, input.kind === "email" ? { email: value } : input.kind === "phone" ? { phone: value } : { linkedinKey: value });
  const leadIds = leads.map((l) => l.id);
  if (input.kind === "email" && leadIds.length) {
    await tx`update public.lead_pool set email_status = 'invalid' where id = any(${leadIds}::uuid[]) and email_status <> 'invalid'`;
  }
  const stopped = await stopWork(tx, leadIds, { status: "bounced", refusal: "bounced", reason: `bounced: ${input.reason}`, clientId: client });
  return { leadIds, suppressionsAdded, ...stopped, companiesPaused: 0 };
}
