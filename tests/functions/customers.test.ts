// The customers function: admins manage clients and members; nobody else can.
import { beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../../dev/stack.ts";
import { call, getStack, makeUser, unique, type TestUser } from "../helpers/stack.ts";

let stack: Stack;
let admin: TestUser, owner: TestUser;

beforeAll(async () => {
  stack = await getStack();
  admin = await makeUser(stack, { role: "admin" });
  owner = await makeUser(stack, { client: unique("cust"), role: "owner" });
});

describe("clients", () => {
  it("an admin creates a client with defaults, reads it and sees it in the list", async () => {
    const slug = unique("acme");
    const res = await call(stack, "customers", { token: admin.token, body: { slug, name: "Acme Pty Ltd", plan: "growth" } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ slug, name: "Acme Pty Ltd", plan: "growth", status: "trialing", permission_mode: "co_pilot", emergency_paused: false });
    const read = await call(stack, `customers/${res.body.id}`, { token: admin.token });
    expect(read.body).toEqual(res.body);
    const list = await call(stack, "customers?limit=100&status=trialing", { token: admin.token });
    expect(list.body.data.map((c: { id: string }) => c.id)).toContain(res.body.id);
  });

  it("a duplicate slug is a 409; a bad slug, plan or time zone a 400 naming the field", async () => {
    const slug = unique("dupe");
    expect((await call(stack, "customers", { token: admin.token, body: { slug, name: "One" } })).status).toBe(201);
    const dupe = await call(stack, "customers", { token: admin.token, body: { slug, name: "Two" } });
    expect(dupe.status).toBe(409);
    const bad = await call(stack, "customers", { token: admin.token, body: { slug: "Bad Slug!", name: "X", plan: "gold", timezone: "Mars/Olympus" } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: { field: string }) => d.field).sort()).toEqual(["plan", "slug", "timezone"]);
  });

  it("the emergency pause records when it started and clears with the flag", async () => {
    const created = await call(stack, "customers", { token: admin.token, body: { slug: unique("pause"), name: "Pausable" } });
    const paused = await call(stack, `customers/${created.body.id}`, {
      token: admin.token, method: "PATCH", body: { emergency_paused: true, emergency_pause_reason: "complaint spike" },
    });
    expect(paused.status).toBe(200);
    expect(paused.body.emergency_paused).toBe(true);
    expect(Date.parse(paused.body.emergency_paused_at)).toBeGreaterThan(Date.now() - 60_000);
    const resumed = await call(stack, `customers/${created.body.id}`, { token: admin.token, method: "PATCH", body: { emergency_paused: false } });
    expect(resumed.body).toMatchObject({ emergency_paused: false, emergency_paused_at: null, emergency_pause_reason: null });
  });

  it("an empty or unknown-field update is a 400; an unknown client a 404", async () => {
    const created = await call(stack, "customers", { token: admin.token, body: { slug: unique("upd"), name: "U" } });
    expect((await call(stack, `customers/${created.body.id}`, { token: admin.token, method: "PATCH", body: {} })).status).toBe(400);
    expect((await call(stack, `customers/${created.body.id}`, { token: admin.token, method: "PATCH", body: { slug: "new" } })).status).toBe(400);
    const missing = await call(stack, "customers/00000000-0000-4000-8000-000000000000", { token: admin.token, method: "PATCH", body: { name: "X" } });
    expect(missing.status).toBe(404);
    expect((await call(stack, "customers/not-a-uuid", { token: admin.token })).status).toBe(400);
  });

  it("client users, even owners, get 403 for every customers route", async () => {
    expect((await call(stack, "customers", { token: owner.token })).status).toBe(403);
    expect((await call(stack, "customers", { token: owner.token, body: { slug: unique("x"), name: "X" } })).status).toBe(403);
    expect((await call(stack, `customers/${owner.clientId}`, { token: owner.token, method: "PATCH", body: { plan: "scale" } })).status).toBe(403);
  });

  it("Idempotency-Key on create replays the first response instead of a 409", async () => {
    const key = unique("k");
    const body = { slug: unique("idem"), name: "Idem" };
    const first = await call(stack, "customers", { token: admin.token, body, headers: { "idempotency-key": key } });
    const second = await call(stack, "customers", { token: admin.token, body, headers: { "idempotency-key": key } });
    expect(second.status).toBe(201);
    expect(second.body.id).toBe(first.body.id);
  });
});

describe("members", () => {
  it("adds an existing user by email, lists, changes the role and removes them", async () => {
    const client = await call(stack, "customers", { token: admin.token, body: { slug: unique("team"), name: "Team" } });
    const person = await makeUser(stack);
    const added = await call(stack, `customers/${client.body.id}/members`, { token: admin.token, body: { email: person.email, role: "viewer" } });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ user_id: person.userId, role: "viewer", email: person.email });
    const list = await call(stack, `customers/${client.body.id}/members`, { token: admin.token });
    expect(list.body.data).toEqual([expect.objectContaining({ user_id: person.userId, email: person.email, role: "viewer" })]);
    const changed = await call(stack, `customers/${client.body.id}/members/${person.userId}`, { token: admin.token, method: "PATCH", body: { role: "member" } });
    expect(changed.body.role).toBe("member");
    const removed = await call(stack, `customers/${client.body.id}/members/${person.userId}`, { token: admin.token, method: "DELETE" });
    expect(removed.status).toBe(204);
    expect((await call(stack, `customers/${client.body.id}/members`, { token: admin.token })).body.data).toEqual([]);
    expect((await call(stack, `customers/${client.body.id}/members/${person.userId}`, { token: admin.token, method: "DELETE" })).status).toBe(404);
  });

  it("an unknown email is a 404 naming email; a bad role a 400", async () => {
    const res = await call(stack, `customers/${owner.clientId}/members`, { token: admin.token, body: { email: `${unique("nobody")}@example.com`, role: "member" } });
    expect(res.status).toBe(404);
    expect(res.body.error.details[0].field).toBe("email");
    const bad = await call(stack, `customers/${owner.clientId}/members`, { token: admin.token, body: { email: owner.email, role: "god" } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].field).toBe("role");
  });
});
