// The CRM push end to end on the local stack, driven by QStash: a meeting booked by hand is pushed
// to the HubSpot sandbox (contact upserted by email, meeting engagement, association), outcomes and
// won/lost update it, a redelivered or concurrent message leaves one contact, one meeting and one
// association (idempotent), a retryable HubSpot failure is retried by QStash and recorded, a permanent
// one is recorded and not retried; the manual /crm/sync and /crm/status routes with their tenancy.
import { serve, type ServerType } from "@hono/node-server";
import { Hono } from "hono";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHubSpotSandbox } from "../../dev/sandbox/hubspot.ts";
import type { Stack } from "../../dev/stack.ts";
import { asService, db } from "../../shared/db/client.ts";
import { CRM_SYNC_TOPIC, queueCrmSync } from "../../shared/engines/closer.ts";
import { enqueue, publishOutbox } from "../../shared/flows/outbox.ts";
import { call, getStack, leadInput, makeUser, unique, type TestUser } from "../helpers/stack.ts";
import { until } from "../helpers/until.ts";

let stack: Stack;
let owner: TestUser, viewer: TestUser, other: TestUser;
let server: ServerType;

const sandbox = createHubSpotSandbox({ windowMs: 200, maxPerWindow: 1000 });
// Faults served before the sandbox answers: the next HubSpot calls fail with these.
const faults: Array<{ status: number; body: Record<string, unknown> }> = [];
const front = new Hono();
front.all("*", async (c) => {
  const fault = faults.shift();
  if (fault) return c.json(fault.body, fault.status as 500);
  return await sandbox.fetch(c.req.raw);
});
const hubspotError = (category: string, message: string) => ({ status: "error", message, correlationId: crypto.randomUUID(), category });

async function repliedLead(user: TestUser): Promise<{ leadId: string; assignmentId: string; email: string }> {
  const input = leadInput();
  const res = await call(stack, "leads", { token: user.token, body: input });
  expect(res.status).toBe(201);
  const assignmentId = res.body.assignment.id as string;
  for (const s of ["queued", "in_sequence", "replied"]) await db()`update public.lead_assignments set status = ${s} where id = ${assignmentId}`;
  return { leadId: res.body.id, assignmentId, email: input.email.toLowerCase() };
}

async function bookFor(user: TestUser, assignmentId: string, title = "Discovery call") {
  const res = await call(stack, "meetings", {
    token: user.token,
    body: { assignment_id: assignmentId, title, starts_at: new Date(Date.now() + 86_400_000).toISOString() },
  });
  expect(res.status).toBe(201);
  return res.body as { id: string };
}

async function meetingRow(id: string) {
  const [m] = await db()`select crm_id, crm_synced_at, updated_at from public.meetings where id = ${id}`;
  return m as { crm_id: string | null; crm_synced_at: Date | null; updated_at: Date };
}

/** Waits until the meeting was pushed since its last change, and returns its row. */
function synced(id: string) {
  return until(`meeting ${id} pushed to HubSpot`, async () => {
    const m = await meetingRow(id);
    return m.crm_synced_at && m.crm_synced_at >= m.updated_at ? m : undefined;
  });
}

async function quiet() {
  // only this flow's messages: other tests leave delayed messages (retries, follow-ups) pending
  await until("QStash has no CRM sync pending", async () => stack.qstash.pendingTo("/flow-crm-sync") === 0);
}

async function syncAgain(meetingId: string, times: number) {
  await asService({ role: "service:test" }, async (tx) => {
    for (let i = 0; i < times; i++) await enqueue(tx, CRM_SYNC_TOPIC, { meeting_id: meetingId });
  });
  await publishOutbox(db());
}

beforeAll(async () => {
  server = serve({ fetch: front.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise((r) => server.once("listening", r));
  process.env.HUBSPOT_BASE_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.HUBSPOT_RATE_LIMIT = "off";
  stack = await getStack();
  const client = unique("crm");
  owner = await makeUser(stack, { client, role: "owner" });
  viewer = await makeUser(stack, { client, role: "viewer" });
  other = await makeUser(stack, { client: unique("crm-other"), role: "owner" });
});

afterAll(async () => {
  delete process.env.HUBSPOT_BASE_URL;
  delete process.env.HUBSPOT_RATE_LIMIT;
  await new Promise<void>((r) => server.close(() => r()));
});

describe("the closer pushes meetings to HubSpot through QStash", () => {
  it("a booked meeting becomes a contact, a meeting engagement and their association; outcomes and won follow", async () => {
    const { assignmentId, email } = await repliedLead(owner);
    const meeting = await bookFor(owner, assignmentId);
    const row = await synced(meeting.id);
    const contact = sandbox.state.contactByEmail(email)!;
    expect(contact.properties).toMatchObject({ email, firstname: "Ada", lastname: "Lovelace", jobtitle: "Head of Growth", hs_lead_status: "IN_PROGRESS" });
    expect(sandbox.state.meetingsOf(contact.id).map((m) => m.id)).toEqual([row.crm_id]);
    expect(sandbox.state.meetings.get(row.crm_id!)!.properties).toMatchObject({ hs_meeting_title: "Discovery call", hs_meeting_outcome: "SCHEDULED" });

    await call(stack, `meetings/${meeting.id}/outcome`, { token: owner.token, body: { outcome: "held", notes: "keen" } });
    await synced(meeting.id);
    expect(sandbox.state.meetings.get(row.crm_id!)!.properties).toMatchObject({ hs_meeting_outcome: "COMPLETED", hs_internal_meeting_notes: "keen" });
    expect(contact.properties.hs_lead_status).toBe("OPEN_DEAL");

    await call(stack, `meetings/${meeting.id}/close`, { token: owner.token, body: { result: "won" } });
    await until("the won lead pushed", async () => contact.properties.lifecyclestage === "customer");
    await quiet();
    expect((await meetingRow(meeting.id)).crm_id).toBe(row.crm_id);
    expect(sandbox.state.meetingsOf(contact.id)).toHaveLength(1);
  });

  it("redelivered and concurrent messages leave one contact, one meeting, one association", async () => {
    const { assignmentId, email } = await repliedLead(owner);
    const meeting = await bookFor(owner, assignmentId, "Redelivery");
    const first = await synced(meeting.id);
    await quiet();
    await syncAgain(meeting.id, 2);
    await quiet();
    await syncAgain(meeting.id, 1);
    await quiet();
    const contacts = [...sandbox.state.contacts.values()].filter((c) => c.properties.email === email);
    expect(contacts).toHaveLength(1);
    expect(sandbox.state.meetingsOf(contacts[0].id).map((m) => m.id)).toEqual([first.crm_id]);
    expect([...sandbox.state.meetings.values()].filter((m) => m.properties.hs_meeting_title === "Redelivery")).toHaveLength(1);
    expect((await meetingRow(meeting.id)).crm_id).toBe(first.crm_id);

    // a meeting never pushed, three messages at once: races converge on one live HubSpot meeting
    const second = await repliedLead(owner);
    const [m] = await db()`
      insert into public.meetings (client_id, lead_id, assignment_id, source, external_id, starts_at, title)
      select client_id, lead_id, id, 'calendly', ${unique("cal")}, now() + interval '2 days', 'Race' from public.lead_assignments where id = ${second.assignmentId}
      returning id`;
    await syncAgain(m.id, 3);
    await quiet();
    const row = await synced(m.id);
    const contact = sandbox.state.contactByEmail(second.email)!;
    const live = [...sandbox.state.meetings.values()].filter((x) => x.properties.hs_meeting_title === "Race" && !x.archived);
    expect(live.map((x) => x.id)).toEqual([row.crm_id]);
    expect(sandbox.state.meetingsOf(contact.id).map((x) => x.id)).toEqual([row.crm_id]);
  });

  it("a retryable HubSpot failure is retried by QStash and recorded; a permanent one is recorded and not retried", async () => {
    const { assignmentId } = await repliedLead(owner);
    // every attempt of the first run fails (the client's own 3 attempts), QStash's retry succeeds
    for (let i = 0; i < 3; i++) faults.push({ status: 503, body: hubspotError("INTERNAL_ERROR", "Service unavailable") });
    const meeting = await bookFor(owner, assignmentId, "Retried");
    await synced(meeting.id);
    const [failure] = await db()`select data from public.events where entity_id = ${meeting.id} and kind = 'crm_sync_failed'`;
    expect(failure.data).toMatchObject({ provider: "hubspot", retryable: true });
    expect(failure.data.error).toContain("HTTP 503");

    const next = await repliedLead(owner);
    faults.push({ status: 401, body: hubspotError("INVALID_AUTHENTICATION", "Authentication credentials not found.") });
    const denied = await bookFor(owner, next.assignmentId, "Denied");
    await until("the 401 recorded", async () =>
      (await db()`select data from public.events where entity_id = ${denied.id} and kind = 'crm_sync_failed'`)[0]);
    await quiet();
    expect((await meetingRow(denied.id)).crm_id).toBeNull();
    const failures = await db()`select data from public.events where entity_id = ${denied.id} and kind = 'crm_sync_failed'`;
    expect(failures).toHaveLength(1); // not retried
    expect(failures[0].data).toMatchObject({ retryable: false });

    const status = await call(stack, "crm/status", { token: viewer.token });
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ provider: "hubspot", status: "sandbox", last_error: { retryable: false, entity_id: denied.id } });
    expect(status.body.meetings.pending).toBeGreaterThanOrEqual(1);
    expect(status.body.meetings.synced).toBeGreaterThanOrEqual(1);
    expect(status.body.meetings.total).toBe(status.body.meetings.synced + status.body.meetings.pending);

    // pushed by hand once HubSpot answers again
    const manual = await call(stack, "crm/sync", { token: owner.token, body: { meeting_id: denied.id } });
    expect(manual.status).toBe(200);
    expect(manual.body).toMatchObject({ status: "synced", meeting_id: denied.id });
    expect((await meetingRow(denied.id)).crm_id).toBe(manual.body.crm_id);
  });
});

describe("POST /crm/sync and GET /crm/status", () => {
  it("owners push a meeting or a lead by hand; viewers cannot; another client's is a 404", async () => {
    const { leadId, assignmentId, email } = await repliedLead(owner);
    const meeting = await bookFor(owner, assignmentId, "By hand");
    await quiet();
    expect((await call(stack, "crm/sync", { token: viewer.token, body: { meeting_id: meeting.id } })).status).toBe(403);
    expect((await call(stack, "crm/sync", { token: other.token, body: { meeting_id: meeting.id } })).status).toBe(404);
    expect((await call(stack, "crm/sync", { token: other.token, body: { lead_id: leadId } })).status).toBe(404);
    expect((await call(stack, "crm/sync", { token: owner.token, body: { meeting_id: meeting.id, lead_id: leadId } })).status).toBe(400);

    const again = await call(stack, "crm/sync", { token: owner.token, body: { meeting_id: meeting.id } });
    expect(again.body).toMatchObject({ status: "synced", crm_id: (await meetingRow(meeting.id)).crm_id });
    const lead = await call(stack, "crm/sync", { token: owner.token, body: { lead_id: leadId } });
    expect(lead.body).toMatchObject({ status: "synced", contact_id: sandbox.state.contactByEmail(email)!.id });

    const otherStatus = await call(stack, "crm/status", { token: other.token });
    expect(otherStatus.body.meetings).toMatchObject({ total: 0, synced: 0, pending: 0, last_synced_at: null });
    expect(otherStatus.body.last_error).toBeNull();
  });

  it("without a CRM configured nothing is queued and a push by hand is a 503", async () => {
    const { assignmentId } = await repliedLead(owner);
    const saved = process.env.HUBSPOT_BASE_URL;
    delete process.env.HUBSPOT_BASE_URL;
    try {
      const meeting = await bookFor(owner, assignmentId, "No CRM");
      const queued = await db()`select id from public.outbox where topic = ${CRM_SYNC_TOPIC} and payload->>'meeting_id' = ${meeting.id}`;
      expect(queued).toHaveLength(0);
      expect(await asService({ role: "service:test" }, (tx) => queueCrmSync(tx, owner.clientId!, { meetingId: meeting.id }))).toBe(false);
      const res = await call(stack, "crm/sync", { token: owner.token, body: { meeting_id: meeting.id } });
      expect(res.status).toBe(503);
      expect((await call(stack, "crm/status", { token: owner.token })).body.status).toBe("not_configured");
    } finally {
      process.env.HUBSPOT_BASE_URL = saved;
    }
  });
});
