// Property-based tests of the send gate (fast-check) against the real database functions:
//   1. the SQL window rules agree with an independent oracle (tests/helpers/window-oracle.ts) on
//      random instants, zones, channels and countries, around DST changes and holidays;
//   2. over random leads, tiers, suppressions, DNCR washes, consents, caps, approvals, pauses and
//      redelivered/concurrent ticks: no recorded send breaks a rule, none is recorded twice, and
//      no step is lost (each ends sent, skipped or cancelled with a reason, or waits with a reason).
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asService, db } from "../../shared/db/client.ts";
import { planSequences, runSendGate } from "../../shared/engines/outreach.ts";
import { ensureHolidayCalendars } from "../../shared/engines/timing-facts.ts";
import { getStack, unique } from "../helpers/stack.ts";
import { type Channel, holidaySet, isPermitted, nextPermittedStart } from "../helpers/window-oracle.ts";
import { discardSimulatedDispatches } from "../helpers/outreach-fixture.ts";

let holidays: Set<string>;

afterAll(() => discardSimulatedDispatches());

beforeAll(async () => {
  await getStack();
  for (const at of ["2026-06-30T00:00:00Z", "2027-06-30T00:00:00Z"]) await ensureHolidayCalendars(db(), new Date(at));
  const rows = await db()`select country, nullif(region, '') as region, day::text as day from public.public_holidays`;
  holidays = holidaySet(rows as unknown as Array<{ country: string; region: string | null; day: string }>);
});

const ZONES: Array<{ tz: string; country: string; region: string }> = [
  { tz: "Australia/Sydney", country: "AU", region: "NSW" },
  { tz: "Australia/Melbourne", country: "AU", region: "VIC" },
  { tz: "Australia/Perth", country: "AU", region: "WA" },
  { tz: "Australia/Adelaide", country: "AU", region: "SA" },
  { tz: "Australia/Brisbane", country: "AU", region: "QLD" },
  { tz: "America/New_York", country: "US", region: "NY" },
  { tz: "America/Los_Angeles", country: "US", region: "CA" },
  { tz: "Europe/London", country: "GB", region: "" },
  { tz: "Pacific/Auckland", country: "NZ", region: "" },
];
const CHANNEL_LIST: Channel[] = ["email", "sms", "voice", "linkedin", "mail"];

// instants spread over 2026–2027, a third of them within two days of a DST change
const DST_EDGES = [
  "2026-04-05T03:00:00+10:00", "2026-10-04T02:00:00+10:00", "2027-04-04T03:00:00+10:00", "2027-10-03T02:00:00+10:00",
  "2026-03-08T02:00:00-05:00", "2026-11-01T02:00:00-04:00", "2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z",
].map((s) => new Date(s).getTime());
const instant = fc.oneof(
  fc.integer({ min: Date.UTC(2026, 0, 5), max: Date.UTC(2027, 11, 20) }).map((ms) => new Date(ms)),
  fc.tuple(fc.constantFrom(...DST_EDGES), fc.integer({ min: -2 * 86_400_000, max: 2 * 86_400_000 }))
    .map(([edge, off]) => new Date(edge + off)),
  // Christmas to New Year in Australia: the densest run of holidays
  fc.integer({ min: Date.UTC(2026, 11, 23), max: Date.UTC(2027, 0, 4) }).map((ms) => new Date(ms)),
);

describe("the window rules (SQL) agree with the independent oracle", () => {
  it("window_open and next_window_start, on random instants, zones and channels", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ZONES), fc.constantFrom(...CHANNEL_LIST), instant, async (z, channel, at) => {
        const [row] = await db()`
          select private.window_open(${channel}, ${z.country}, ${z.region}, ${z.tz}, ${at}) as open,
                 private.next_window_start(${channel}, ${z.country}, ${z.region}, ${z.tz}, ${at}) as next`;
        const region = z.region || null;
        expect(row.open).toBe(isPermitted(channel, z.country, region, z.tz, at, holidays));
        const expected = nextPermittedStart(channel, z.country, region, z.tz, at, holidays, 21);
        expect((row.next as Date).toISOString()).toBe(expected.toISOString());
      }),
      { numRuns: 400 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The gate's invariants over random scenarios
// ---------------------------------------------------------------------------------------------

const TIERS = ["hot", "warm", "cool", "cold", "dead"] as const;
const TIER_CHANNELS: Record<string, Channel[]> = {
  hot: ["email", "linkedin", "sms", "voice", "mail"], warm: ["email", "linkedin", "sms", "voice"],
  cool: ["email", "linkedin"], cold: ["email"], dead: [],
};

const leadArb = fc.record({
  tier: fc.constantFrom(...TIERS),
  zone: fc.constantFrom(...ZONES.filter((z) => z.country === "AU"), ZONES[5], ZONES[7]),
  suppressed: fc.subarray(["email", "phone", "linkedin", "domain"] as const),
  dncr: fc.constantFrom("clean", "registered", "stale", "missing"),
  consents: fc.subarray(CHANNEL_LIST.filter((c) => c !== "mail")),
  voiceConsentAgeDays: fc.integer({ min: 0, max: 200 }),
  companyPaused: fc.boolean(),
});

const scenarioArb = fc.record({
  leads: fc.array(leadArb, { minLength: 1, maxLength: 6 }),
  steps: fc.array(fc.record({ day: fc.integer({ min: 0, max: 2 }), channel: fc.constantFrom(...CHANNEL_LIST) }), { minLength: 1, maxLength: 4 }),
  caps: fc.record({ email: fc.integer({ min: 0, max: 4 }), sms: fc.integer({ min: 0, max: 4 }), voice: fc.integer({ min: 0, max: 4 }), linkedin: fc.integer({ min: 0, max: 4 }), mail: fc.integer({ min: 0, max: 4 }) }),
  mode: fc.constantFrom("autopilot", "co_pilot", "manual"),
  emergencyPaused: fc.boolean(),
  campaignPaused: fc.boolean(),
  quota: fc.integer({ min: 0, max: 10 }),
  budgetExhausted: fc.boolean(),
  start: fc.integer({ min: Date.UTC(2026, 11, 1), max: Date.UTC(2027, 0, 31) }).map((ms) => new Date(ms)),
  // ticks: hours after start, each delivered 1–3 times, sometimes two at once
  ticks: fc.array(fc.record({ afterHours: fc.integer({ min: 0, max: 96 }), deliveries: fc.integer({ min: 1, max: 3 }), concurrent: fc.boolean() }), { minLength: 1, maxLength: 5 }),
});

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

async function build(s: Scenario) {
  const sql = db();
  const tag = unique("prop").toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 60);
  const [client] = await sql`
    insert into public.clients (slug, name, status, permission_mode, monthly_lead_quota, monthly_llm_budget_cents,
                                monthly_provider_budget_cents, emergency_paused, timezone)
    values (${tag}, ${tag}, 'active', ${s.mode}, ${s.quota}, 100, 100, ${s.emergencyPaused}, 'Australia/Sydney') returning id`;
  if (s.budgetExhausted) {
    for (const m of ["2026-12-01", "2027-01-01", "2027-02-01"]) {
      await sql`insert into public.client_spend (client_id, month, llm_cents, provider_cents) values (${client.id}, ${m}, 150, 60)`;
    }
  }
  const [campaign] = await sql`insert into public.campaigns (client_id, name) values (${client.id}, ${tag}) returning id`;
  for (const [i, st] of s.steps.entries()) {
    await sql`
      insert into public.campaign_steps (campaign_id, client_id, position, day_offset, channel, linkedin_action)
      values (${campaign.id}, ${client.id}, ${i + 1}, ${st.day}, ${st.channel}, ${st.channel === "linkedin" ? "message" : null})`;
  }
  await sql`update public.campaigns set status = ${s.campaignPaused ? "paused" : "active"}, approved_at = now() where id = ${campaign.id}`;
  const providers: Record<string, string> = { email: "salesforge", sms: "twilio", voice: "vapi", linkedin: "unipile", mail: "postgrid" };
  for (const ch of CHANNEL_LIST) {
    const [sender] = await sql`
      insert into public.senders (client_id, channel, provider, address, daily_cap)
      values (${client.id}, ${ch}, ${providers[ch]}, ${ch === "email" ? `${tag}@s.example` : ch === "sms" || ch === "voice" ? `+6129${Math.floor(Math.random() * 1e7).toString().padStart(7, "0")}` : `${tag}-${ch}`},
              ${s.caps[ch as keyof typeof s.caps]}) returning id`;
    await sql`insert into public.campaign_senders (campaign_id, sender_id, client_id) values (${campaign.id}, ${sender.id}, ${client.id})`;
  }
  const leads: Array<{ id: string; phone: string; spec: Scenario["leads"][number] }> = [];
  for (const [i, l] of s.leads.entries()) {
    const phone = l.zone.country === "AU" ? `+614${Math.floor(Math.random() * 1e8).toString().padStart(8, "0")}`
      : l.zone.country === "US" ? `+1212${Math.floor(Math.random() * 1e7).toString().padStart(7, "0")}` : `+4420${Math.floor(Math.random() * 1e8).toString().padStart(8, "0")}`;
    const domain = `${tag}-${i}.example`;
    await sql`insert into public.companies (domain, outreach_paused_until) values (${domain}, ${l.companyPaused ? new Date(s.start.getTime() + 30 * 86_400_000) : null})`;
    const [lead] = await sql`
      insert into public.lead_pool (email, email_status, first_name, company_domain, phone_e164, linkedin_key, country, state, timezone, postal_address)
      values (${`p@${domain}`}, 'verified', 'P', ${domain}, ${phone}, ${`${tag}-${i}`}, ${l.zone.country}, ${l.zone.region || null}, ${l.zone.tz},
              ${sql.json({ line1: "1 St", city: "X", state: "Y", postcode: "1", country: l.zone.country })})
      returning id`;
    leads.push({ id: lead.id, phone, spec: l });
    for (const kind of l.suppressed) {
      const value = kind === "email" ? `p@${domain}` : kind === "domain" ? domain : kind === "phone" ? phone : `${tag}-${i}`;
      await sql`insert into public.suppressions (client_id, kind, value, reason) values (null, ${kind}, ${value}, 'test') on conflict do nothing`;
    }
    for (const ch of l.consents) {
      if (ch === "voice") {
        await sql`insert into public.lead_consents (lead_id, channel, basis, recorded_at)
                  values (${lead.id}, 'voice', 'express', ${new Date(s.start.getTime() - l.voiceConsentAgeDays * 86_400_000)})`;
      } else {
        await sql`insert into public.lead_consents (lead_id, channel, basis, evidence_url, evidence_captured_at)
                  values (${lead.id}, ${ch}, 'inferred_publication', 'https://x.example', now())`;
      }
    }
    if (l.dncr !== "missing" && phone.startsWith("+61")) {
      await sql`insert into public.dncr_washes (phone_e164, result, washed_at, client_reference_id)
                values (${phone}, ${l.dncr === "registered" ? "registered" : "not_registered"},
                        ${new Date(s.start.getTime() - (l.dncr === "stale" ? 45 : 1) * 86_400_000)}, 'p')`;
    }
    await sql`insert into public.lead_assignments (lead_id, client_id, campaign_id, als_tier) values (${lead.id}, ${client.id}, ${campaign.id}, ${l.tier})`;
  }
  return { clientId: client.id as string, campaignId: campaign.id as string, leads };
}

async function tick(now: Date) {
  return asService({ role: "test" }, (tx) => runSendGate(tx, { now, limit: 10_000 }));
}

describe("the send gate's invariants", () => {
  it("no send breaks a rule, none is recorded twice, none is lost", async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (s) => {
        const f = await build(s);
        await asService({ role: "test" }, (tx) => planSequences(tx, { now: s.start, limit: 10_000 }));
        // the content flow's work, done here: every step has a message
        await db()`update public.step_runs set body = 'Hello', content_ready_at = now() where client_id = ${f.clientId}`;
        for (const t of s.ticks) {
          const now = new Date(s.start.getTime() + t.afterHours * 3_600_000);
          for (let d = 0; d < t.deliveries; d++) {
            if (t.concurrent) await Promise.all([tick(now), tick(now)]);
            else await tick(now);
          }
        }

        const sends = await db()`
          select s.*, r.channel as step_channel, r.timezone, r.country, r.region, r.position
          from public.sends s join public.step_runs r on r.id = s.step_run_id where s.client_id = ${f.clientId}`;
        const byLead = new Map(f.leads.map((l) => [l.id, l]));
        const seen = new Set<string>();
        const touch = new Set<string>();
        const perSenderDay = new Map<string, number>();
        for (const send of sends) {
          const lead = byLead.get(send.lead_id)!;
          const ch = send.channel as Channel;
          const at = send.created_at as Date;
          const why = `${ch} to a ${lead.spec.tier} lead at ${at.toISOString()}`;
          // recorded once per (assignment, step, channel, attempt), one touch per person per local day
          const key = `${send.assignment_id}|${send.step_id}|${ch}|${send.attempt}`;
          expect(seen.has(key), why).toBe(false);
          seen.add(key);
          const day = `${send.lead_id}|${send.touch_day.toISOString?.() ?? send.touch_day}`;
          expect(touch.has(day), `second touch in a day: ${why}`).toBe(false);
          touch.add(day);
          // client and campaign may send, the tier allows the channel
          expect(s.emergencyPaused || s.campaignPaused, why).toBe(false);
          expect(TIER_CHANNELS[lead.spec.tier], why).toContain(ch);
          // not suppressed on the channel's address
          const sup = new Set<string>(lead.spec.suppressed);
          if (ch === "email") expect(sup.has("email") || sup.has("domain"), why).toBe(false);
          if (ch === "sms" || ch === "voice") expect(sup.has("phone"), why).toBe(false);
          if (ch === "linkedin") expect(sup.has("linkedin"), why).toBe(false);
          if (ch === "mail") expect(sup.size, why).toBe(0);
          // consent with evidence; calls only with express consent under 3 months old
          if (ch !== "mail") expect(lead.spec.consents, why).toContain(ch);
          if (ch === "voice") {
            const consentAt = s.start.getTime() - lead.spec.voiceConsentAgeDays * 86_400_000;
            expect(at.getTime() - consentAt, why).toBeLessThan(93 * 86_400_000);
          }
          // DNCR: calls and texts to Australian numbers only with a clean wash of the last 30 days
          if ((ch === "sms" || ch === "voice") && lead.phone.startsWith("+61")) expect(lead.spec.dncr, why).toBe("clean");
          // the recipient's window (independent oracle)
          expect(isPermitted(ch, send.country, send.region || null, send.timezone, at, holidays), why).toBe(true);
          // the company was not paused
          expect(lead.spec.companyPaused, why).toBe(false);
          // budget
          expect(s.budgetExhausted, why).toBe(false);
          const sk = `${send.sender_id}|${at.toISOString().slice(0, 10)}`;
          perSenderDay.set(sk, (perSenderDay.get(sk) ?? 0) + 1);
        }
        // approvals: nothing goes out unapproved in manual mode
        if (s.mode === "manual") expect(sends.length).toBe(0);
        // sender caps (days in the client's zone, Sydney: at most two UTC dates per local day, so
        // check the total per sender against cap × local days touched)
        const perSender = new Map<string, number>();
        for (const send of sends) perSender.set(send.sender_id, (perSender.get(send.sender_id) ?? 0) + 1);
        for (const send of sends) {
          const cap = s.caps[send.channel as keyof typeof s.caps];
          const days = new Set(sends.filter((x) => x.sender_id === send.sender_id)
            .map((x) => new Intl.DateTimeFormat("en-CA", { timeZone: "Australia/Sydney" }).format(x.created_at))).size;
          expect(perSender.get(send.sender_id)!).toBeLessThanOrEqual(cap * days);
        }
        // the lead quota
        const firstTouches = new Set(sends.map((x) => x.assignment_id)).size;
        expect(firstTouches).toBeLessThanOrEqual(s.quota);

        // nothing lost: every step run is settled with a reason, or still waiting with one
        const runs = await db()`
          select r.id, r.status, r.last_refusal, r.due_at,
                 (select count(*)::int from public.gate_refusals g where g.step_run_id = r.id) as refusals,
                 (select count(*)::int from public.sends x where x.step_run_id = r.id) as sent
          from public.step_runs r where r.client_id = ${f.clientId}`;
        for (const r of runs) {
          if (r.status === "sent") expect(r.sent).toBe(1);
          else expect(r.sent).toBe(0);
          if (r.status === "skipped" || r.status === "cancelled" || r.status === "awaiting_approval") {
            expect(r.refusals, `a ${r.status} step has its reason`).toBeGreaterThan(0);
            expect(r.last_refusal).toBeTruthy();
          }
          if (r.status === "scheduled" && r.refusals > 0) expect(r.last_refusal).toBeTruthy();
          expect(["scheduled", "awaiting_approval", "approved", "sent", "skipped", "cancelled"]).toContain(r.status);
        }
      }),
      { numRuns: 25 },
    );
  }, 240_000);
});
