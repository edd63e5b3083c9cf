// Outreach end to end on the local stack: an approved campaign planned, written (templates, no
// Claude key), gated and dispatched over all five channels to the sandbox providers; DNCR, the
// recipient's calling hours with holidays, redelivered and concurrent ticks, and the emergency pause.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../../dev/stack.ts";
import { asService, db } from "../../shared/db/client.ts";
import { dispatchBatch } from "../../shared/engines/dispatch.ts";
import { planSequences, runSendGate } from "../../shared/engines/outreach.ts";
import { writeDueContent } from "../../shared/engines/step-content.ts";
import { allAdapters, DEFAULT_STEPS, discardSimulatedDispatches, outreachFixture } from "../helpers/outreach-fixture.ts";
import { getStack } from "../helpers/stack.ts";

const DAY = 86_400_000;
// Tuesday 1 December 2026, 10:00 in Sydney (UTC+11)
const BASE = new Date("2026-11-30T23:00:00Z");

let stack: Stack;
beforeAll(async () => {
  stack = await getStack();
  // the tests drive the flows themselves: stop the emulator so queued kicks don't race them
  await stack.qstash.stop();
});
afterAll(async () => {
  await discardSimulatedDispatches();
  stack.qstash.start();
});

async function plan(now: Date) {
  return asService({ role: "test" }, (tx) => planSequences(tx, { now, limit: 100_000 }));
}
async function gate(now: Date, limit = 100_000) {
  return asService({ role: "test" }, (tx) => runSendGate(tx, { now, limit }));
}
/** This client's sends and refusals (the gate is global: other tests' rows may be due too). */
async function sentFor(clientId: string): Promise<number> {
  const [r] = await db()`select count(*)::int as n from public.sends where client_id = ${clientId}`;
  return r.n;
}
async function refusedFor(clientId: string, reason: string): Promise<number> {
  const [r] = await db()`select count(*)::int as n from public.gate_refusals where client_id = ${clientId} and reason = ${reason}`;
  return r.n;
}
async function write() {
  return writeDueContent(db(), { limit: 500, horizonHours: 24 * 60, anthropic: null });
}
/** Dispatches every batch with pending sends of these clients. */
async function dispatchAll(clientIds: string[], now: Date) {
  const batches = await db()`
    select distinct batch_id from public.sends
    where client_id = any(${clientIds}::uuid[]) and status = 'pending' and batch_id is not null`;
  const adapters = await allAdapters();
  for (const b of batches) await dispatchBatch(db(), b.batch_id, adapters, { now, concurrency: 4 });
  return batches.length;
}

describe("outreach over five channels", () => {
  it("sends an approved Hot campaign on email, voice, LinkedIn, mail and SMS through the sandboxes, each step once", async () => {
    const f = await outreachFixture({
      tier: "hot",
      steps: [...DEFAULT_STEPS, { day_offset: 10, channel: "mail" }],
    });
    expect(await plan(BASE)).toBeGreaterThanOrEqual(1);
    const written = await write();
    expect(written.written).toBeGreaterThanOrEqual(6);

    for (let d = 0; d <= 14; d++) {
      const now = new Date(BASE.getTime() + d * DAY);
      await gate(now);
      // a redelivered tick finds nothing more to send
      const before = await sentFor(f.clientId);
      await gate(now);
      expect(await sentFor(f.clientId)).toBe(before);
      await dispatchAll([f.clientId], now);
    }

    const sends = await db()`
      select s.channel, s.status, s.provider, s.provider_message_id, r.position
      from public.sends s join public.step_runs r on r.id = s.step_run_id
      where s.client_id = ${f.clientId} order by r.position`;
    const byChannel = new Map<string, number>();
    for (const s of sends) byChannel.set(s.channel, (byChannel.get(s.channel) ?? 0) + 1);
    // one send per step: two emails, one each of voice, LinkedIn, mail, SMS
    expect(Object.fromEntries(byChannel)).toEqual({ email: 2, voice: 1, linkedin: 1, mail: 1, sms: 1 });
    const first = sends.find((s) => s.position === 1)!;
    expect(first.status).toBe("sent");
    for (const s of sends.filter((x) => x.channel !== "email")) {
      expect(s.status, `${s.channel} send`).toBe("sent");
      expect(s.provider_message_id).toBeTruthy();
    }

    // the providers really received them
    const lead = (await db()`select email, phone_e164 from public.lead_pool where id = ${f.leadIds[0]}`)[0];
    expect(stack.sandboxes.twilio.messages().filter((m: { to: string }) => m.to === lead.phone_e164)).toHaveLength(1);
    expect(stack.sandboxes.vapi.calls().filter((c) => c.customer.number === lead.phone_e164)).toHaveLength(1);
    const letterId = sends.find((s) => s.channel === "mail")!.provider_message_id;
    expect(stack.sandboxes.postgrid.letters().some((l) => l.id === letterId)).toBe(true);
    const contact = stack.sandboxes.salesforge.contactByEmail(lead.email);
    expect(contact).toBeTruthy();
    expect(stack.sandboxes.salesforge.enrollments(process.env.SALESFORGE_SEQUENCE_ID!)).toContain(contact!.id);

    // the recipient's windows held: the LinkedIn step (due on a Sunday) went out on Monday, the SMS
    // (due Sunday the 13th) on Monday the 14th, in Sydney office/calling hours
    const when = await db()`
      select s.channel, to_char(s.created_at at time zone 'Australia/Sydney', 'Dy HH24:MI') as local
      from public.sends s where s.client_id = ${f.clientId} and s.channel in ('linkedin', 'sms')`;
    for (const w of when) expect(w.local, w.channel).toMatch(/^Mon /);

    // the assignment is in sequence and every step run ended
    const [a] = await db()`select status from public.lead_assignments where lead_id = ${f.leadIds[0]}`;
    expect(a.status).toBe("in_sequence");
    const open = await db()`select count(*)::int as n from public.step_runs where client_id = ${f.clientId} and status in ('scheduled', 'approved')`;
    expect(open[0].n).toBe(0);
  });

  it("never texts or calls a number on the DNCR, and holds them while the wash is missing", async () => {
    const f = await outreachFixture({
      leads: 2,
      tier: "hot",
      registered: (i) => i === 0,
      steps: [{ day_offset: 0, channel: "sms" }, { day_offset: 1, channel: "voice" }],
    });
    // the second lead's wash is 40 days old: stale
    await db()`update public.dncr_washes set washed_at = ${new Date(BASE.getTime() - 40 * DAY)}
               where phone_e164 = (select phone_e164 from public.lead_pool where id = ${f.leadIds[1]})`;
    await plan(BASE);
    await write();
    for (let d = 0; d <= 2; d++) {
      const now = new Date(BASE.getTime() + d * DAY);
      await gate(now);
      await dispatchAll([f.clientId], now);
    }
    const sends = await db()`select count(*)::int as n from public.sends where client_id = ${f.clientId}`;
    expect(sends[0].n).toBe(0);
    const refusals = await db()`
      select r.lead_id, g.reason, g.outcome from public.gate_refusals g join public.step_runs r on r.id = g.step_run_id
      where g.client_id = ${f.clientId}`;
    expect(refusals.filter((r) => r.lead_id === f.leadIds[0]).map((r) => r.reason)).toEqual(
      expect.arrayContaining(["dncr_registered"]),
    );
    expect(refusals.filter((r) => r.lead_id === f.leadIds[0]).every((r) => r.reason === "dncr_registered" && r.outcome === "skipped")).toBe(true);
    const stale = refusals.filter((r) => r.lead_id === f.leadIds[1]);
    expect(stale.length).toBeGreaterThan(0);
    expect(stale.every((r) => r.reason === "dncr_unwashed" && r.outcome === "rescheduled")).toBe(true);
    const [req] = await db()`select count(*)::int as n from public.dncr_wash_requests
                             where phone_e164 = (select phone_e164 from public.lead_pool where id = ${f.leadIds[1]})`;
    expect(req.n).toBe(1);
  });

  it("waits an SMS due at 21:00 until 09:00 of the next permitted day, skipping Sunday and public holidays", async () => {
    const f = await outreachFixture({ tier: "hot", steps: [{ day_offset: 0, channel: "sms" }] });
    // Thursday 24 December 2026, 21:00 in Sydney: Christmas (Fri), Boxing Day (Sat), Sunday and the
    // Boxing Day substitute (Mon 28) are all closed
    const due = new Date("2026-12-24T10:00:00Z");
    await plan(due);
    await write();
    await gate(due);
    expect(await refusedFor(f.clientId, "outside_window")).toBe(1);
    const [run] = await db()`
      select to_char(due_at at time zone 'Australia/Sydney', 'YYYY-MM-DD HH24:MI') as local, due_at
      from public.step_runs where client_id = ${f.clientId}`;
    const [holidays] = await db()`
      select array_agg(day::text order by day) as days from public.public_holidays
      where country = 'AU' and region in ('', 'NSW') and day between '2026-12-25' and '2026-12-31'`;
    // the first day after the 24th that is neither Sunday nor a holiday, at 09:00 (+ up to 15 min jitter)
    let day = new Date("2026-12-25T00:00:00Z");
    while (day.getUTCDay() === 0 || (holidays.days as string[]).includes(day.toISOString().slice(0, 10))) {
      day = new Date(day.getTime() + DAY);
    }
    expect(run.local.slice(0, 10)).toBe(day.toISOString().slice(0, 10));
    expect(run.local.slice(11)).toMatch(/^09:(0\d|1[0-4])$/);
    // (a wash is good for 30 days: refresh it as the DNCR flow would before the call day)
    await db()`update public.dncr_washes set washed_at = ${new Date(run.due_at.getTime() - DAY)}
               where phone_e164 = (select phone_e164 from public.lead_pool where id = ${f.leadIds[0]})`;
    // nothing goes out before then, and it goes out then
    await gate(new Date(run.due_at.getTime() - 60_000));
    expect(await sentFor(f.clientId)).toBe(0);
    await gate(run.due_at);
    expect(await sentFor(f.clientId)).toBe(1);
  });
});

describe("at most once", () => {
  it("the same tick three times, or twice at once, records each step once", async () => {
    const f = await outreachFixture({ leads: 20, tier: "cold", steps: [{ day_offset: 0, channel: "email" }] });
    await plan(BASE);
    await write();
    await Promise.all([gate(BASE), gate(BASE)]);
    await gate(BASE);
    expect(await sentFor(f.clientId)).toBe(20);
    const [n] = await db()`select count(*)::int as n, count(distinct step_run_id)::int as runs from public.sends where client_id = ${f.clientId}`;
    expect(n).toEqual({ n: 20, runs: 20 });
    // each batch dispatched twice at once, then once more: each message reaches the provider once
    // (two ticks at once may each have recorded a batch)
    const batches = await db()`select distinct batch_id from public.sends where client_id = ${f.clientId}`;
    const adapters = await allAdapters();
    for (const b of batches) {
      await Promise.all([dispatchBatch(db(), b.batch_id, adapters, { now: BASE }), dispatchBatch(db(), b.batch_id, adapters, { now: BASE })]);
      await dispatchBatch(db(), b.batch_id, adapters, { now: BASE });
    }
    const statuses = await db()`select status, count(*)::int as n from public.sends where client_id = ${f.clientId} group by status`;
    expect(statuses).toEqual([{ status: "sent", n: 20 }]);
    const contacts = await db()`select email from public.lead_pool where id = any(${f.leadIds}::uuid[])`;
    const mine = new Set(contacts.map((c) => c.email));
    // Salesforge sends after enrolment: each of our contacts is enrolled exactly once
    const ids = [...mine].map((e) => stack.sandboxes.salesforge.contactByEmail(e)?.id);
    const enrolled = stack.sandboxes.salesforge.enrollments(process.env.SALESFORGE_SEQUENCE_ID!);
    for (const id of ids) expect(enrolled.filter((x) => x === id)).toHaveLength(1);
  });
});

describe("emergency pause", () => {
  it("stops every send of the client before the next tick, including ones already batched", async () => {
    const f = await outreachFixture({ leads: 5, tier: "cold", steps: [{ day_offset: 0, channel: "email" }, { day_offset: 1, channel: "email" }] });
    await plan(BASE);
    await write();
    await gate(BASE);
    expect(await sentFor(f.clientId)).toBe(5);
    // paused after the gate recorded the sends but before they were dispatched
    await db()`update public.clients set emergency_paused = true, emergency_paused_at = now() where id = ${f.clientId}`;
    await dispatchAll([f.clientId], BASE);
    const [left] = await db()`select count(*)::int as n from public.sends where client_id = ${f.clientId}`;
    expect(left.n).toBe(0);
    await gate(new Date(BASE.getTime() + 2 * 3_600_000));
    expect(await sentFor(f.clientId)).toBe(0);
    const reasons = await db()`select reason, outcome, count(*)::int as n from public.gate_refusals where client_id = ${f.clientId} group by 1, 2`;
    // withdrawn from the batch (5), then held again by the gate on the next tick (5): all rescheduled
    expect(reasons).toEqual([{ reason: "emergency_pause", outcome: "rescheduled", n: 10 }]);
    // lifted: the held steps go out, none lost
    await db()`update public.clients set emergency_paused = false where id = ${f.clientId}`;
    await gate(new Date(BASE.getTime() + 3 * 3_600_000));
    expect(await sentFor(f.clientId)).toBe(5);
  });
});

describe("the timing facts", () => {
  it("resolves a planned lead's zone and holiday region from its location, and flags a guessed zone", async () => {
    const f = await outreachFixture({ leads: 2, tier: "warm", steps: [{ day_offset: 0, channel: "sms" }] });
    await db()`update public.lead_pool set timezone = null, state = 'Victoria' where id = ${f.leadIds[0]}`;
    await db()`update public.lead_pool set timezone = null, state = null, city = null where id = ${f.leadIds[1]}`;
    const { resolveLeadTimezones } = await import("../../shared/engines/timing-facts.ts");
    expect(await asService({ role: "test" }, (tx) => resolveLeadTimezones(tx))).toBeGreaterThanOrEqual(2);
    const rows = await db()`select id, timezone, timezone_assumed, region_code from public.lead_pool where id = any(${f.leadIds}::uuid[])`;
    const vic = rows.find((r) => r.id === f.leadIds[0])!;
    const unknown = rows.find((r) => r.id === f.leadIds[1])!;
    expect(vic).toMatchObject({ timezone: "Australia/Melbourne", timezone_assumed: false, region_code: "VIC" });
    // Australia without a state: a guess, so the gate makes no call or text on it
    expect(unknown.timezone_assumed).toBe(true);
    await plan(BASE);
    await write();
    await gate(BASE);
    expect(await refusedFor(f.clientId, "timezone_uncertain")).toBe(1);
  });
});
