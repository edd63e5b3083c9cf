// The leads function over HTTP on the local stack: tenancy, the state machine through the API,
// manual leads, the pool for admins, pagination, and the supabase-js functions client.
import { createClient } from "@supabase/supabase-js";
import { beforeAll, describe, expect, it } from "vitest";
import { db } from "../../shared/db/client.ts";
import type { Stack } from "../../dev/stack.ts";
import { call, getStack, leadInput, makeUser, unique, type TestUser } from "../helpers/stack.ts";

let stack: Stack;
let ownerA: TestUser, memberA: TestUser, viewerA: TestUser, ownerB: TestUser, admin: TestUser, outsider: TestUser;
let leadA: string, leadB: string;

beforeAll(async () => {
  stack = await getStack();
  const a = unique("client-a"), b = unique("client-b");
  ownerA = await makeUser(stack, { client: a, role: "owner" });
  memberA = await makeUser(stack, { client: a, role: "member" });
  viewerA = await makeUser(stack, { client: a, role: "viewer" });
  ownerB = await makeUser(stack, { client: b, role: "owner" });
  admin = await makeUser(stack, { role: "admin" });
  outsider = await makeUser(stack);
  const ra = await call(stack, "leads", { token: ownerA.token, body: leadInput() });
  const rb = await call(stack, "leads", { token: ownerB.token, body: leadInput() });
  expect(ra.status).toBe(201);
  expect(rb.status).toBe(201);
  leadA = ra.body.id;
  leadB = rb.body.id;
});

describe("tenancy through the API", () => {
  it("a client A user gets 404 for a client B lead, on read, update and status change", async () => {
    expect((await call(stack, `leads/${leadB}`, { token: ownerA.token })).status).toBe(404);
    const patch = await call(stack, `leads/${leadB}`, { token: ownerA.token, method: "PATCH", body: { title: "Hijacked" } });
    expect(patch.status).toBe(404);
    const status = await call(stack, `leads/${leadB}/status`, { token: ownerA.token, body: { status: "queued" } });
    expect(status.status).toBe(404);
    const [row] = await db()`select l.title, a.status from public.lead_pool l join public.lead_assignments a on a.lead_id = l.id where l.id = ${leadB}`;
    expect(row).toEqual({ title: "Head of Growth", status: "assigned" });
  });

  it("the list holds only the caller's client's leads", async () => {
    const res = await call(stack, "leads?limit=100", { token: memberA.token });
    expect(res.status).toBe(200);
    const ids = res.body.data.map((l: { id: string }) => l.id);
    expect(ids).toContain(leadA);
    expect(ids).not.toContain(leadB);
    expect(res.body.data.every((l: { assignment: { client_id: string } }) => l.assignment.client_id === ownerA.clientId)).toBe(true);
  });

  it("a user with no membership sees no leads and cannot add one", async () => {
    const list = await call(stack, "leads", { token: outsider.token });
    expect(list.body).toEqual({ data: [], next_cursor: null });
    expect((await call(stack, `leads/${leadA}`, { token: outsider.token })).status).toBe(404);
    const add = await call(stack, "leads", { token: outsider.token, body: leadInput() });
    expect(add.status).toBe(400);
    expect(add.body.error.details[0].field).toBe("client_id");
  });

  it("a viewer reads but cannot change a lead or its status", async () => {
    expect((await call(stack, `leads/${leadA}`, { token: viewerA.token })).status).toBe(200);
    expect((await call(stack, `leads/${leadA}`, { token: viewerA.token, method: "PATCH", body: { title: "X" } })).status).toBe(403);
    expect((await call(stack, `leads/${leadA}/status`, { token: viewerA.token, body: { status: "queued" } })).status).toBe(403);
    expect((await call(stack, "leads", { token: viewerA.token, body: leadInput() })).status).toBe(403);
  });

  it("the supabase-js functions client (as the portal calls it) gets the same answers", async () => {
    const portal = createClient(stack.url, stack.anonKey, {
      global: { headers: { Authorization: `Bearer ${ownerA.token}` } },
      auth: { persistSession: false, autoRefreshToken: false },
    });
    const own = await portal.functions.invoke(`leads/${leadA}`, { method: "GET" });
    expect(own.error).toBeNull();
    expect(own.data.id).toBe(leadA);
    const other = await portal.functions.invoke(`leads/${leadB}`, { method: "GET" });
    expect(other.data).toBeNull();
    expect((other.error as { context: Response }).context.status).toBe(404);
    const list = await portal.functions.invoke("leads", { method: "GET" });
    expect(list.data.data.map((l: { id: string }) => l.id)).not.toContain(leadB);
  });
});

describe("status changes through the state machine", () => {
  it("an illegal change is a 409 naming both states, and nothing is written", async () => {
    const lead = (await call(stack, "leads", { token: ownerA.token, body: leadInput() })).body.id;
    const [{ count: before }] = await db()`select count(*)::int from public.events where entity_id = (select id from public.lead_assignments where lead_id = ${lead})`;
    const res = await call(stack, `leads/${lead}/status`, { token: ownerA.token, body: { status: "won" } });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("illegal_transition");
    expect(res.body.error.message).toContain("assigned");
    expect(res.body.error.message).toContain("won");
    expect(res.body.error.details).toMatchObject({ from: "assigned", to: "won" });
    const [{ count: after }] = await db()`select count(*)::int from public.events where entity_id = (select id from public.lead_assignments where lead_id = ${lead})`;
    expect(after).toBe(before);
    expect((await call(stack, `leads/${lead}`, { token: ownerA.token })).body.assignment.status).toBe("assigned");
  });

  it("a legal change moves the assignment and records who and why", async () => {
    const lead = (await call(stack, "leads", { token: memberA.token, body: leadInput() })).body.id;
    const res = await call(stack, `leads/${lead}/status`, { token: memberA.token, body: { status: "queued", reason: "ready to sequence" } });
    expect(res.status).toBe(200);
    expect(res.body.assignment.status).toBe("queued");
    const events = await db()`
      select e.from_status, e.to_status, e.actor_id, e.reason from public.events e
      join public.lead_assignments a on a.id = e.entity_id
      where a.lead_id = ${lead} and e.kind = 'status_changed'`;
    expect(events).toEqual([{ from_status: "assigned", to_status: "queued", actor_id: memberA.userId, reason: "ready to sequence" }]);
    const outbox = await db()`select topic from public.outbox where payload->>'lead_id' = ${lead} order by id`;
    expect(outbox.map((o) => o.topic)).toEqual(["assignment.created", "assignment.status_changed"]);
  });

  it("an unknown status is a 400 naming the field", async () => {
    const res = await call(stack, `leads/${leadA}/status`, { token: ownerA.token, body: { status: "teleported" } });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].field).toBe("status");
  });
});

describe("adding leads by hand", () => {
  it("creates a pool lead assigned to the caller's client, with its id", async () => {
    const input = leadInput({ phone: "+61 2 9999 0000", country: "au" });
    const res = await call(stack, "leads", { token: ownerA.token, body: input });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ email: input.email, first_name: "Ada", status: "new", country: "AU" });
    expect(res.body.assignment).toMatchObject({ client_id: ownerA.clientId, status: "assigned" });
    const [row] = await db()`select source, created_by from public.lead_pool where id = ${res.body.id}`;
    expect(row).toEqual({ source: "manual", created_by: ownerA.userId });
  });

  it("adding the same email again answers the existing lead (200), case-insensitively", async () => {
    const input = leadInput();
    const first = await call(stack, "leads", { token: ownerA.token, body: input });
    const again = await call(stack, "leads", { token: memberA.token, body: { ...input, email: input.email.toUpperCase() } });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect(again.body.assignment.id).toBe(first.body.assignment.id);
  });

  it("a lead another client is working is a 409 that does not name the other client", async () => {
    const b = await call(stack, `leads/${leadB}`, { token: ownerB.token });
    const res = await call(stack, "leads", { token: ownerA.token, body: leadInput({ email: b.body.email }) });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("lead_unavailable");
    expect(JSON.stringify(res.body)).not.toContain(ownerB.clientId!);
  });

  it("rejects bad input with 400s that name each field", async () => {
    const res = await call(stack, "leads", { token: ownerA.token, body: { email: "not-an-email", first_name: "", extra: 1 } });
    expect(res.status).toBe(400);
    const fields = res.body.error.details.map((d: { field: string }) => d.field);
    expect(fields).toEqual(expect.arrayContaining(["email", "first_name", "last_name", "company_name", "title"]));
    const malformed = await call(stack, "leads", { token: ownerA.token, body: "{not json" });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toMatch(/bad_request|validation_failed/);
  });

  it("honours Idempotency-Key: a retry replays the first response, another body is a 422", async () => {
    const key = unique("idem");
    const input = leadInput();
    const first = await call(stack, "leads", { token: ownerA.token, body: input, headers: { "idempotency-key": key } });
    const retry = await call(stack, "leads", { token: ownerA.token, body: input, headers: { "idempotency-key": key } });
    expect(first.status).toBe(201);
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(first.body);
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    const reused = await call(stack, "leads", { token: ownerA.token, body: leadInput(), headers: { "idempotency-key": key } });
    expect(reused.status).toBe(422);
    const [{ count }] = await db()`select count(*)::int from public.lead_pool where email_normalized = ${input.email}`;
    expect(count).toBe(1);
  });

  it("a campaign of another client is a 404 naming campaign_id", async () => {
    const [campaign] = await db()`insert into public.campaigns (client_id, name) values (${ownerB.clientId}, 'B only') returning id`;
    const res = await call(stack, "leads", { token: ownerA.token, body: leadInput({ campaign_id: campaign.id }) });
    expect(res.status).toBe(404);
    expect(res.body.error.details).toMatchObject({ field: "campaign_id" });
  });
});

describe("updating contact details", () => {
  it("an owner corrects a lead; status fields are not accepted", async () => {
    const ok = await call(stack, `leads/${leadA}`, { token: ownerA.token, method: "PATCH", body: { title: "VP Growth", city: "Sydney" } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ title: "VP Growth", city: "Sydney" });
    const sneaky = await call(stack, `leads/${leadA}`, { token: ownerA.token, method: "PATCH", body: { als_score: 100 } });
    expect(sneaky.status).toBe(400);
    expect(sneaky.body.error.details[0].message).toMatch(/unrecognized|als_score/i);
  });
});

describe("pagination", () => {
  it("walks every page with next_cursor, without repeats, and rejects a forged cursor", async () => {
    const c = unique("client-page");
    const owner = await makeUser(stack, { client: c });
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await call(stack, "leads", { token: owner.token, body: leadInput() })).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await call(stack, `leads?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { token: owner.token });
      expect(res.status).toBe(200);
      expect(res.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.data.map((l: { id: string }) => l.id));
      cursor = res.body.next_cursor;
    } while (cursor);
    expect(seen.sort()).toEqual(made.sort());
    const bad = await call(stack, "leads?cursor=bm90LWEtY3Vyc29y", { token: owner.token });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].field).toBe("cursor");
    expect((await call(stack, "leads?limit=1000", { token: owner.token })).status).toBe(400);
  });
});

describe("the pool, for admins", () => {
  it("admins see every client's leads; others get 403", async () => {
    const res = await call(stack, "leads/pool?limit=100", { token: admin.token });
    expect(res.status).toBe(200);
    const byId = new Map(res.body.data.map((l: { id: string; active_client_id: string }) => [l.id, l.active_client_id]));
    expect(byId.get(leadA)).toBe(ownerA.clientId);
    expect(byId.get(leadB)).toBe(ownerB.clientId);
    expect((await call(stack, "leads/pool", { token: ownerA.token })).status).toBe(403);
  });

  it("searches by email", async () => {
    const b = await call(stack, `leads/${leadB}`, { token: ownerB.token });
    const res = await call(stack, `leads/pool?q=${encodeURIComponent(b.body.email)}`, { token: admin.token });
    expect(res.body.data.map((l: { id: string }) => l.id)).toEqual([leadB]);
  });

  it("an admin reads any lead by id", async () => {
    expect((await call(stack, `leads/${leadB}`, { token: admin.token })).status).toBe(200);
  });
});
