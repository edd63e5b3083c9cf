// The campaigns and campaign-generation functions over HTTP on the local stack: sequences (the
// default one), approval by an owner or admin only, re-approval after edits, pause/resume, sender
// pools and the capacity planner, the emergency pause, the co-pilot approval queue, tenancy, and
// a Claude-drafted campaign (the Anthropic sandbox) saved pending approval.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../../dev/stack.ts";
import { asService, db } from "../../shared/db/client.ts";
import { planSequences, runSendGate } from "../../shared/engines/outreach.ts";
import { discardSimulatedDispatches } from "../helpers/outreach-fixture.ts";
import { call, getStack, makeUser, type TestUser, unique } from "../helpers/stack.ts";

let stack: Stack;
let owner: TestUser;
let member: TestUser;
let viewer: TestUser;
let other: TestUser;
let slug: string;

afterAll(() => discardSimulatedDispatches());

beforeAll(async () => {
  stack = await getStack();
  slug = unique("camp").toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 50);
  owner = await makeUser(stack, { client: slug, role: "owner" });
  member = await makeUser(stack, { client: slug, role: "member" });
  viewer = await makeUser(stack, { client: slug, role: "viewer" });
  other = await makeUser(stack, { client: `${slug}-x`, role: "owner" });
});

async function create(token: string, body: Record<string, unknown> = {}) {
  return call(stack, "campaigns", { token, body: { client_id: owner.clientId, name: "Q1 outbound", offer: "bookkeeping", ...body } });
}

describe("campaigns", () => {
  it("creates a draft with the default sequence; a viewer cannot; bad steps are 400s naming the field", async () => {
    const res = await create(member.token);
    expect(res.status).toBe(201);
    expect(res.body.status).toBe("draft");
    expect(res.body.steps.map((s: { channel: string; day_offset: number }) => `${s.channel}@${s.day_offset}`))
      .toEqual(["email@0", "voice@3", "linkedin@5", "email@8", "sms@12"]);
    expect((await create(viewer.token)).status).toBe(403);
    const bad = await create(member.token, { steps: [{ day_offset: 0, channel: "linkedin" }] });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body.error.details)).toContain("linkedin_action");
    expect((await call(stack, `campaigns/${res.body.id}`, { token: other.token })).status).toBe(404);
  });

  it("activates only once an owner (not a member) approves; an edited active campaign needs approval again", async () => {
    const { body: c } = await create(member.token, { steps: [{ day_offset: 0, channel: "email", variants: [{ label: "A", body_template: "Hello {{first_name|there}}" }, { label: "B", body_template: "Hi {{first_name|there}}", weight: 2 }] }] });
    expect((await call(stack, `campaigns/${c.id}/approve`, { token: owner.token, method: "POST" })).status).toBe(409); // still a draft
    expect((await call(stack, `campaigns/${c.id}/submit`, { token: member.token, method: "POST" })).body.status).toBe("pending_approval");
    expect((await call(stack, `campaigns/${c.id}/approve`, { token: member.token, method: "POST" })).status).toBe(403);
    expect((await call(stack, `campaigns/${c.id}/approve`, { token: viewer.token, method: "POST" })).status).toBe(403);
    const approved = await call(stack, `campaigns/${c.id}/approve`, { token: owner.token, method: "POST" });
    expect(approved.body).toMatchObject({ status: "active", approved_by: owner.userId });
    // pause / resume
    expect((await call(stack, `campaigns/${c.id}/pause`, { token: member.token, body: { reason: "holiday" } })).body.status).toBe("paused");
    expect((await call(stack, `campaigns/${c.id}/resume`, { token: member.token, method: "POST" })).body.status).toBe("active");
    // editing the sequence sends it back for approval
    const edited = await call(stack, `campaigns/${c.id}/steps`, { token: member.token, method: "PUT", body: { steps: [{ day_offset: 0, channel: "email" }, { day_offset: 2, channel: "email" }] } });
    expect(edited.body).toMatchObject({ status: "pending_approval", approved_at: null });
    // the database refuses a direct status write by a client user, whatever the API does
    const direct = await db()`select has_column_privilege('authenticated', 'public.campaigns', 'status', 'UPDATE') as can`;
    expect(direct[0].can).toBe(false);
  });

  it("sender pools, warm-up and the capacity planner name the binding cap", async () => {
    const { body: c } = await create(member.token, { daily_new_leads: 500, steps: [{ day_offset: 0, channel: "email" }, { day_offset: 3, channel: "email" }, { day_offset: 5, channel: "sms" }] });
    const bad = await call(stack, "campaigns/senders", { token: member.token, body: { client_id: owner.clientId, channel: "sms", provider: "salesforge", address: "+61400000000" } });
    expect(bad.status).toBe(400);
    const today = new Date().toISOString().slice(0, 10);
    const mailboxes = [];
    for (let i = 0; i < 3; i++) {
      const m = await call(stack, "campaigns/senders", { token: member.token, body: {
        client_id: owner.clientId, channel: "email", provider: "salesforge", address: `mb${i}-${slug}@sender.example`,
        daily_cap: 30, warmup_started_on: today, warmup_start_cap: 10, warmup_daily_increase: 2,
      } });
      expect(m.status).toBe(201);
      expect(m.body.today_cap).toBeGreaterThanOrEqual(10);
      expect(m.body.today_cap).toBeLessThanOrEqual(12);
      mailboxes.push(m.body.id);
    }
    const pool = await call(stack, `campaigns/${c.id}/senders`, { token: member.token, method: "PUT", body: { sender_ids: mailboxes } });
    expect(pool.body.sender_ids.sort()).toEqual([...mailboxes].sort());
    let cap = await call(stack, `campaigns/${c.id}/capacity`, { token: viewer.token });
    // no SMS sender yet: zero, and the planner says why
    expect(cap.body).toMatchObject({ daily_capacity: 0, binding: "sms senders" });
    const sms = await call(stack, "campaigns/senders", { token: member.token, body: { client_id: owner.clientId, channel: "sms", provider: "twilio", address: "+61411122233", daily_cap: 1000 } });
    await call(stack, `campaigns/${c.id}/senders`, { token: member.token, method: "PUT", body: { sender_ids: [...mailboxes, sms.body.id] } });
    cap = await call(stack, `campaigns/${c.id}/capacity`, { token: viewer.token });
    // three warming mailboxes (10–12 a day each) for two email steps per lead bind before 500 new leads a day
    expect(cap.body.binding).toBe("email senders");
    const emailCap = cap.body.caps.find((x: { name: string }) => x.name === "email senders");
    expect(cap.body.daily_capacity).toBe(emailCap.daily_leads);
    expect(cap.body.daily_capacity).toBeGreaterThanOrEqual(15);
    expect(cap.body.daily_capacity).toBeLessThanOrEqual(18);
  });

  it("the emergency pause: owners only, and it shows on the client", async () => {
    expect((await call(stack, `campaigns/clients/${owner.clientId}/emergency-pause`, { token: member.token, body: { reason: "x" } })).status).toBe(403);
    expect((await call(stack, `campaigns/clients/${owner.clientId}/emergency-pause`, { token: other.token, body: { reason: "x" } })).status).toBe(403);
    const paused = await call(stack, `campaigns/clients/${owner.clientId}/emergency-pause`, { token: owner.token, body: { reason: "wrong list uploaded" } });
    expect(paused.body).toMatchObject({ emergency_paused: true, emergency_pause_reason: "wrong list uploaded" });
    const lifted = await call(stack, `campaigns/clients/${owner.clientId}/emergency-pause`, { token: owner.token, method: "DELETE" });
    expect(lifted.body.emergency_paused).toBe(false);
  });

  it("co-pilot: a Hot lead's first touch waits in the approval queue; approved it goes, expired it is skipped", async () => {
    const u = await makeUser(stack, { client: `${slug}-cp`, role: "owner" });
    await db()`update public.clients set status = 'active', permission_mode = 'co_pilot' where id = ${u.clientId}`;
    const { body: c } = await call(stack, "campaigns", { token: u.token, body: { client_id: u.clientId, name: "CP", steps: [{ day_offset: 0, channel: "email" }] } });
    const mb = await call(stack, "campaigns/senders", { token: u.token, body: { client_id: u.clientId, channel: "email", provider: "salesforge", address: `cp-${slug}@sender.example` } });
    await call(stack, `campaigns/${c.id}/senders`, { token: u.token, method: "PUT", body: { sender_ids: [mb.body.id] } });
    await call(stack, `campaigns/${c.id}/submit`, { token: u.token, method: "POST" });
    await call(stack, `campaigns/${c.id}/approve`, { token: u.token, method: "POST" });
    const leads = [];
    for (let i = 0; i < 2; i++) {
      const [l] = await db()`insert into public.lead_pool (email, email_status, first_name, country, timezone)
                              values (${`${unique("cp")}@p.example`}, 'verified', 'Ann', 'AU', 'Australia/Sydney') returning id`;
      await db()`insert into public.lead_consents (lead_id, channel, basis, evidence_url, evidence_captured_at) values (${l.id}, 'email', 'inferred_publication', 'https://p.example', now())`;
      await db()`insert into public.lead_assignments (lead_id, client_id, campaign_id, als_tier) values (${l.id}, ${u.clientId}, ${c.id}, 'hot')`;
      leads.push(l.id);
    }
    const now = new Date("2026-12-01T23:00:00Z"); // Wednesday 10:00 in Sydney
    await asService({ role: "test" }, (tx) => planSequences(tx, { now }));
    await db()`update public.step_runs set body = 'Hello Ann', content_ready_at = now() where client_id = ${u.clientId}`;
    await asService({ role: "test" }, (tx) => runSendGate(tx, { now }));
    // (the gate is global: count this client's rows, not the summary, on the shared stack)
    const held = await db()`select count(*)::int as n from public.step_runs where client_id = ${u.clientId} and status = 'awaiting_approval'`;
    expect(held[0].n).toBe(2);
    const queue = await call(stack, `campaigns/approvals?client_id=${u.clientId}`, { token: u.token });
    expect(queue.body.data).toHaveLength(2);
    const [a, b] = queue.body.data;
    expect((await call(stack, `campaigns/approvals/${a.id}`, { token: other.token, body: { decision: "approve" } })).status).toBe(404);
    const ok = await call(stack, `campaigns/approvals/${a.id}`, { token: u.token, body: { decision: "approve", body: "Hello Ann, edited" } });
    expect(ok.body.status).toBe("approved");
    // the other one's window closes
    await db()`update public.step_runs set approval_expires_at = now() - interval '1 minute' where id = ${b.id}`;
    expect((await call(stack, `campaigns/approvals/${b.id}`, { token: u.token, body: { decision: "approve" } })).status).toBe(409);
    await asService({ role: "test" }, (tx) => runSendGate(tx, { now: new Date(now.getTime() + 60_000) }));
    const sent = await db()`select count(*)::int as n from public.sends where client_id = ${u.clientId}`;
    expect(sent[0].n).toBe(1);
    const runs = await db()`select id, status, last_refusal from public.step_runs where client_id = ${u.clientId} order by id`;
    expect(runs.find((r) => r.id === a.id)?.status).toBe("sent");
    expect(runs.find((r) => r.id === b.id)).toMatchObject({ status: "skipped", last_refusal: "approval_expired" });
  });
});

describe("campaign generation", () => {
  it("Claude drafts steps and copy from the ICP and offer; the draft waits for approval", async () => {
    const [icp] = await db()`
      insert into public.icps (client_id, name, industries, countries, target_titles, offer)
      values (${owner.clientId}, 'Accounting firms', ${["accounting"]}, ${["AU"]}, ${["Managing Partner"]}, 'outsourced bookkeeping')
      returning id`;
    const res = await call(stack, "campaign-generation", { token: member.token, body: { client_id: owner.clientId, icp_id: icp.id, channels: ["email", "linkedin", "email"] } });
    expect(res.status).toBe(201);
    expect(res.body.status).toBe("pending_approval");
    expect(res.body.generation).toMatchObject({ source: "claude" });
    expect(res.body.steps.map((s: { channel: string }) => s.channel)).toEqual(["email", "linkedin", "email"]);
    expect(res.body.steps[0].variants[0].body_template).toContain("outsourced bookkeeping");
    const [request] = stack.sandboxes.anthropic.messageRequests().slice(-1) as Array<{ body: { tool_choice: { name: string } } }>;
    expect(request.body.tool_choice.name).toBe("draft_campaign");
    // a viewer cannot; another client's ICP is not found
    expect((await call(stack, "campaign-generation", { token: viewer.token, body: { client_id: owner.clientId, icp_id: icp.id } })).status).toBe(403);
    expect((await call(stack, "campaign-generation", { token: other.token, body: { client_id: other.clientId, icp_id: icp.id } })).status).toBe(404);
  });
});
