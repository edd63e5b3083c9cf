// The "unsubscribe a person everywhere" engine (shared/engines/suppress.ts) against the database:
// global suppressions of every identifier (never the domain), the assignment ended through the
// state machine, pending steps cancelled and batched sends withdrawn as the dispatcher would, the
// company paused 14 days, consent withdrawn; bounces suppress one address only; complaints alert
// the agency; everything idempotent; and the gate and the dispatcher refuse the person afterwards.
import { beforeAll, describe, expect, it } from "vitest";
import { asService, db } from "../../shared/db/client.ts";
import {
  normaliseEmail, normaliseLinkedin, normalisePhone, recordComplaint, suppressAddress, unsubscribePerson,
} from "../../shared/engines/suppress.ts";
import { getStack, unique } from "../helpers/stack.ts";

const DAY = 86_400_000;
let phoneSeq = 10_000_000 + Math.floor(Math.random() * 80_000_000);

interface Person {
  clientId: string;
  campaignId: string;
  leadId: string;
  assignmentId: string;
  email: string;
  phone: string;
  linkedin: string;
  domain: string;
  steps: Record<string, string>; // channel → step id
  runs: Record<string, string>;  // channel → step run id
}

/** A client, an active campaign (email, sms, voice, LinkedIn), one lead in sequence with a step run per step. */
async function person(opts: { withDomain?: boolean } = {}): Promise<Person> {
  const sql = db();
  const tag = unique("sup").toLowerCase().replace(/[^a-z0-9-]/g, "-");
  const domain = `${tag}.example`;
  const [client] = await sql`insert into public.clients (slug, name, status, permission_mode) values (${tag.slice(0, 60)}, ${tag}, 'active', 'autopilot') returning id`;
  const [campaign] = await sql`insert into public.campaigns (client_id, name) values (${client.id}, ${tag}) returning id`;
  const steps: Record<string, string> = {};
  for (const [i, channel] of ["email", "sms", "voice", "linkedin"].entries()) {
    const [s] = await sql`
      insert into public.campaign_steps (campaign_id, client_id, position, day_offset, channel, linkedin_action)
      values (${campaign.id}, ${client.id}, ${i + 1}, ${i}, ${channel}, ${channel === "linkedin" ? "invitation" : null}) returning id`;
    steps[channel] = s.id;
  }
  await sql`update public.campaigns set status = 'active', approved_at = now() where id = ${campaign.id}`;
  const phone = `+614${String(phoneSeq++).padStart(8, "0")}`;
  const email = `pat-${tag}@${domain}`;
  const linkedin = normaliseLinkedin(`https://www.linkedin.com/in/${tag}`)!;
  await sql`insert into public.companies (domain, name) values (${domain}, 'Prospect') on conflict do nothing`;
  const [lead] = await sql`
    insert into public.lead_pool (email, email_status, first_name, company_domain, phone, phone_e164, linkedin_url, linkedin_key, country, timezone)
    values (${email.toUpperCase()}, 'verified', 'Pat', ${opts.withDomain === false ? null : domain}, ${phone}, ${phone}, ${linkedin}, ${linkedin}, 'AU', 'Australia/Sydney')
    returning id`;
  for (const channel of ["email", "sms", "linkedin"]) {
    await sql`insert into public.lead_consents (lead_id, channel, basis, evidence_url, evidence_captured_at) values (${lead.id}, ${channel}, 'inferred_publication', 'https://x.example', now())`;
  }
  await sql`insert into public.lead_consents (lead_id, channel, basis) values (${lead.id}, 'voice', 'express')`;
  const [a] = await sql`insert into public.lead_assignments (lead_id, client_id, campaign_id, als_tier) values (${lead.id}, ${client.id}, ${campaign.id}, 'hot') returning id`;
  await sql`update public.lead_assignments set status = 'queued' where id = ${a.id}`;
  await sql`update public.lead_assignments set status = 'in_sequence' where id = ${a.id}`;
  const runs: Record<string, string> = {};
  for (const [i, channel] of ["email", "sms", "voice", "linkedin"].entries()) {
    const [r] = await sql`
      insert into public.step_runs (assignment_id, client_id, campaign_id, lead_id, step_id, position, channel, due_at, timezone, country, body, status)
      values (${a.id}, ${client.id}, ${campaign.id}, ${lead.id}, ${steps[channel]}, ${i + 1}, ${channel}, now() + make_interval(days => ${i}),
              'Australia/Sydney', 'AU', 'Hello', ${channel === "voice" ? "awaiting_approval" : "scheduled"})
      returning id`;
    runs[channel] = r.id;
  }
  return { clientId: client.id, campaignId: campaign.id, leadId: lead.id, assignmentId: a.id, email, phone, linkedin, domain, steps, runs };
}

/** Puts the email step through "the gate": a pending send in a dispatch batch, counted as a first touch. */
async function batchedSend(p: Person, channel = "email"): Promise<{ sendId: string; batchId: string }> {
  const sql = db();
  const [batch] = await sql`insert into public.dispatch_batches (channel, send_count) values (${channel}, 1) returning id`;
  await sql`update public.step_runs set status = 'sent' where id = ${p.runs[channel]}`;
  const [send] = await sql`
    insert into public.sends (step_run_id, assignment_id, step_id, channel, client_id, campaign_id, lead_id, touch_day, batch_id)
    values (${p.runs[channel]}, ${p.assignmentId}, ${p.steps[channel]}, ${channel}, ${p.clientId}, ${p.campaignId}, ${p.leadId},
            current_date + 40, ${batch.id})
    returning id`;
  await sql`
    insert into public.client_spend (client_id, month, first_touches) values (${p.clientId}, date_trunc('month', now())::date, 1)
    on conflict (client_id, month) do update set first_touches = public.client_spend.first_touches + 1`;
  return { sendId: send.id, batchId: batch.id };
}

const svc = <T>(fn: Parameters<typeof asService<T>>[1]) => asService({ role: "test:suppress", reason: "test" }, fn);

beforeAll(async () => {
  await getStack();
});

describe("identifier normalisation", () => {
  it("emails, phones and LinkedIn profiles normalise as the pool stores them; junk is null", () => {
    expect(normaliseEmail("  Pat@Example.COM ")).toBe("pat@example.com");
    expect(normaliseEmail("mailto:a@b.co")).toBe("a@b.co");
    expect(normaliseEmail("not an email")).toBeNull();
    expect(normalisePhone("+61 412 345 678")).toBe("+61412345678");
    expect(normalisePhone("0061412345678")).toBe("+61412345678");
    expect(normalisePhone("61412345678")).toBe("+61412345678");
    expect(normalisePhone("0412 345 678")).toBeNull();
    expect(normalisePhone("STOP")).toBeNull();
    expect(normaliseLinkedin("https://linkedin.com/in/Jane-Doe/")).toBe("https://www.linkedin.com/in/jane-doe");
    expect(normaliseLinkedin("jane-doe")).toBe("https://www.linkedin.com/in/jane-doe");
    expect(normaliseLinkedin("https://example.com/in/x")).toBeNull();
  });
});

describe("unsubscribePerson", () => {
  it("suppresses every identifier globally, ends the work everywhere and pauses the company, once", async () => {
    const p = await person();
    const { sendId, batchId } = await batchedSend(p);
    const at = new Date("2026-11-24T03:00:00Z");
    const sql = db();
    const [spendBefore] = await sql`select first_touches from public.client_spend where client_id = ${p.clientId}`;

    // the person texted STOP from their phone: only the phone is known to the caller
    const r = await svc((tx) => unsubscribePerson(tx, { phone: p.phone, reason: "sms_stop", source: "test:stop", at }));
    expect(r).toEqual({ leadIds: [p.leadId], suppressionsAdded: 3, assignmentsStopped: 1, stepRunsCancelled: 4, sendsWithdrawn: 1, companiesPaused: 1 });

    const sup = await sql`select client_id, kind, value, reason, source from public.suppressions where value in (${p.email}, ${p.phone}, ${p.linkedin}, ${p.domain}) order by kind`;
    expect(sup).toEqual([
      { client_id: null, kind: "email", value: p.email, reason: "sms_stop", source: "test:stop" },
      { client_id: null, kind: "linkedin", value: p.linkedin, reason: "sms_stop", source: "test:stop" },
      { client_id: null, kind: "phone", value: p.phone, reason: "sms_stop", source: "test:stop" },
    ]);
    const [a] = await sql`select status, ended_at from public.lead_assignments where id = ${p.assignmentId}`;
    expect(a.status).toBe("unsubscribed");
    expect(a.ended_at).not.toBeNull();
    const [audit] = await sql`select from_status, to_status, reason, actor_role from public.events where entity_id = ${p.assignmentId} and kind = 'status_changed' order by id desc limit 1`;
    expect(audit).toEqual({ from_status: "in_sequence", to_status: "unsubscribed", reason: "unsubscribed: sms_stop", actor_role: "test:suppress" });

    const runs = await sql`select channel, status, last_refusal from public.step_runs where assignment_id = ${p.assignmentId} order by position`;
    expect(runs.map((x) => [x.channel, x.status, x.last_refusal])).toEqual([
      ["email", "cancelled", "unsubscribed"], ["sms", "cancelled", "unsubscribed"], ["voice", "cancelled", "unsubscribed"], ["linkedin", "cancelled", "unsubscribed"],
    ]);
    const refusals = await sql`select reason, outcome from public.gate_refusals where step_run_id = any(${Object.values(p.runs)}::uuid[])`;
    expect(refusals).toHaveLength(4);
    expect(refusals.every((x) => x.reason === "unsubscribed" && x.outcome === "skipped")).toBe(true);
    // the batched send is withdrawn and no longer counts as the month's first touch
    expect(await sql`select 1 from public.sends where id = ${sendId}`).toHaveLength(0);
    const [spendAfter] = await sql`select first_touches from public.client_spend where client_id = ${p.clientId}`;
    expect(spendAfter.first_touches).toBe(spendBefore.first_touches - 1);
    // the dispatcher finds nothing left to send in that batch
    const claimed = await sql.begin((tx) => tx`select * from private.claim_dispatch_batch(${batchId}::uuid, 100, 60)`);
    expect(claimed).toHaveLength(0);

    const [co] = await sql`select outreach_paused_until from public.companies where domain = ${p.domain}`;
    expect(co.outreach_paused_until.toISOString()).toBe(new Date(at.getTime() + 14 * DAY).toISOString());
    const consents = await sql`select withdrawn_at from public.lead_consents where lead_id = ${p.leadId}`;
    expect(consents.every((c) => c.withdrawn_at?.toISOString() === at.toISOString())).toBe(true);

    // every channel, for every client (another client included)
    const [other] = await sql`insert into public.clients (slug, name) values (${unique("oth").toLowerCase()}, 'Other') returning id`;
    for (const clientId of [p.clientId, other.id]) {
      for (const channel of ["email", "sms", "voice", "linkedin", "mail"]) {
        const [s] = await sql`select private.is_suppressed(${channel}, ${clientId}::uuid, ${p.email}, null, ${p.phone}, ${p.linkedin}) as s`;
        expect(s.s, `${channel} for ${clientId}`).toBe(true);
      }
    }
    // not the domain: a colleague at the same company is only paused, not suppressed
    const [colleague] = await sql`select private.is_suppressed('email', ${other.id}::uuid, ${`someone@${p.domain}`}, ${p.domain}, null, null) as s`;
    expect(colleague.s).toBe(false);

    // again: nothing changes, nothing is recorded twice
    const [countBefore] = await sql`select count(*)::int as n from public.gate_refusals where client_id = ${p.clientId}`;
    const again = await svc((tx) => unsubscribePerson(tx, { phone: p.phone, email: p.email, reason: "sms_stop", source: "test:stop", at }));
    expect(again).toEqual({ leadIds: [p.leadId], suppressionsAdded: 0, assignmentsStopped: 0, stepRunsCancelled: 0, sendsWithdrawn: 0, companiesPaused: 0 });
    const [countAfter] = await sql`select count(*)::int as n from public.gate_refusals where client_id = ${p.clientId}`;
    expect(countAfter.n).toBe(countBefore.n);
  });

  it("the gate then refuses the person's steps and the dispatcher withdraws a send batched concurrently", async () => {
    const p = await person();
    const sql = db();
    await svc((tx) => unsubscribePerson(tx, { email: p.email.toUpperCase(), reason: "reply_unsubscribe", source: "test:gate" }));
    // a step that slipped back to due (a planner race), and a send the gate batched before it saw the change
    await sql.begin(async (tx) => {
      await tx`update public.step_runs set status = 'scheduled', due_at = now() - interval '1 minute' where id = ${p.runs.sms}`;
      const [batch] = await tx`insert into public.dispatch_batches (channel, send_count) values ('email', 1) returning id`;
      await tx`update public.step_runs set status = 'sent' where id = ${p.runs.email}`;
      await tx`
        insert into public.sends (step_run_id, assignment_id, step_id, channel, client_id, campaign_id, lead_id, touch_day, batch_id)
        values (${p.runs.email}, ${p.assignmentId}, ${p.steps.email}, 'email', ${p.clientId}, ${p.campaignId}, ${p.leadId}, current_date + 41, ${batch.id})`;
      const gate = await tx`select private.gate_due_steps(100000, 100, now()) as r`;
      expect(gate[0].r.claimed).toBeGreaterThanOrEqual(1);
      const [sms] = await tx`select status, last_refusal from public.step_runs where id = ${p.runs.sms}`;
      expect(sms).toEqual({ status: "cancelled", last_refusal: "assignment_inactive" });
      expect(await tx`select 1 from public.sends where step_run_id = ${p.runs.sms}`).toHaveLength(0);
      const claimed = await tx`select * from private.claim_dispatch_batch(${batch.id}::uuid, 100, 60)`;
      expect(claimed).toHaveLength(0);
      const [email] = await tx`select status, last_refusal from public.step_runs where id = ${p.runs.email}`;
      expect(email).toEqual({ status: "cancelled", last_refusal: "assignment_inactive" });
      // leave the shared database as it was (the gate ran over every due step)
      throw new Rollback();
    }).catch((e) => {
      if (!(e instanceof Rollback)) throw e;
    });
  });

  it("a person the pool does not know is still suppressed by the identifier given", async () => {
    const phone = `+614${String(phoneSeq++).padStart(8, "0")}`;
    const r = await svc((tx) => unsubscribePerson(tx, { phone: phone.replace("+61", "+61 "), reason: "sms_stop", source: "test:unknown" }));
    expect(r).toEqual({ leadIds: [], suppressionsAdded: 1, assignmentsStopped: 0, stepRunsCancelled: 0, sendsWithdrawn: 0, companiesPaused: 0 });
    const rows = await db()`select client_id, kind from public.suppressions where value = ${phone}`;
    expect(rows).toEqual([{ client_id: null, kind: "phone" }]);
  });

  it("leaves a send the dispatcher already holds to the dispatcher's own re-check", async () => {
    const p = await person({ withDomain: false });
    const { sendId } = await batchedSend(p, "sms");
    await db()`update public.sends set status = 'dispatching', lease_until = now() + interval '1 minute' where id = ${sendId}`;
    const r = await svc((tx) => unsubscribePerson(tx, { leadId: p.leadId, reason: "test", source: "test:dispatching" }));
    expect(r.sendsWithdrawn).toBe(0);
    expect(r.companiesPaused).toBe(0);
    const [s] = await db()`select status from public.sends where id = ${sendId}`;
    expect(s.status).toBe("dispatching");
  });
});

class Rollback extends Error {}

describe("recordComplaint", () => {
  it("unsubscribes the person and alerts the agency once per source", async () => {
    const p = await person();
    const first = await svc((tx) => recordComplaint(tx, { email: p.email, reason: "reply_complaint", source: "reply:c1", clientId: p.clientId }));
    expect(first.alerted).toBe(1);
    expect(first.assignmentsStopped).toBe(1);
    const again = await svc((tx) => recordComplaint(tx, { email: p.email, reason: "reply_complaint", source: "reply:c1", clientId: p.clientId }));
    expect(again.alerted).toBe(0);
    const alerts = await db()`select client_id, entity_type, reason, data from public.events where kind = 'complaint_alert' and entity_id = ${p.leadId}`;
    expect(alerts).toEqual([{ client_id: p.clientId, entity_type: "lead", reason: "reply_complaint", data: { source: "reply:c1", email: p.email, phone: null, linkedin: null } }]);
  });
});

describe("suppressAddress (bounces)", () => {
  it("suppresses the bounced email only, marks it invalid and ends the assignment as bounced, once", async () => {
    const p = await person();
    const r = await svc((tx) => suppressAddress(tx, { kind: "email", value: p.email, reason: "bounce", source: "test:bounce" }));
    expect(r).toMatchObject({ leadIds: [p.leadId], suppressionsAdded: 1, assignmentsStopped: 1, stepRunsCancelled: 4, sendsWithdrawn: 0, companiesPaused: 0 });
    const sql = db();
    const sup = await sql`select kind, client_id from public.suppressions where value in (${p.email}, ${p.phone}, ${p.linkedin})`;
    expect(sup).toEqual([{ kind: "email", client_id: null }]);
    const [lead] = await sql`select email_status from public.lead_pool where id = ${p.leadId}`;
    expect(lead.email_status).toBe("invalid");
    const [a] = await sql`select status from public.lead_assignments where id = ${p.assignmentId}`;
    expect(a.status).toBe("bounced");
    const [refusal] = await sql`select distinct reason from public.gate_refusals where step_run_id = any(${Object.values(p.runs)}::uuid[])`;
    expect(refusal.reason).toBe("bounced");
    const [co] = await sql`select outreach_paused_until from public.companies where domain = ${p.domain}`;
    expect(co.outreach_paused_until).toBeNull();
    const again = await svc((tx) => suppressAddress(tx, { kind: "email", value: p.email.toUpperCase(), reason: "bounce", source: "test:bounce" }));
    expect(again).toMatchObject({ suppressionsAdded: 0, assignmentsStopped: 0, stepRunsCancelled: 0 });
  });

  it("a client-scoped suppression stops only that client's work; junk values do nothing", async () => {
    const p = await person();
    const [other] = await db()`insert into public.clients (slug, name) values (${unique("oth").toLowerCase()}, 'Other') returning id`;
    const r = await svc((tx) => suppressAddress(tx, { kind: "phone", value: p.phone, reason: "client list", source: "test", clientId: other.id }));
    expect(r).toMatchObject({ suppressionsAdded: 1, assignmentsStopped: 0 });
    const [a] = await db()`select status from public.lead_assignments where id = ${p.assignmentId}`;
    expect(a.status).toBe("in_sequence");
    const junk = await svc((tx) => suppressAddress(tx, { kind: "email", value: "not-an-email", reason: "x", source: "x" }));
    expect(junk.suppressionsAdded).toBe(0);
  });
});
