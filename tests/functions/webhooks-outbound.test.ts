// Clients' outbound webhooks on the local stack: registration returns the whsec_ secret once and
// lists never show it; a delivery reaches a local receiver that verifies it with the
// `standardwebhooks` npm package's Webhook.verify; a failing receiver is retried through QStash
// (the emulator) on the schedule the flow answers with, then marked failed; a replay by hand delivers
// it; tenancy (another client's webhook or delivery is a 404, viewers cannot manage), validation,
// paused and deleted webhooks, and the delivery attempt's timeout.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../../dev/stack.ts";
import { asService, db } from "../../shared/db/client.ts";
import {
  attemptDelivery, emitClientEvent, retryDelaySeconds, webhookUrlProblem, type ClientEventType,
} from "../../shared/engines/client-events.ts";
import { publishOutbox } from "../../shared/flows/outbox.ts";
import { call, getStack, makeUser, unique, type TestUser } from "../helpers/stack.ts";
import { until } from "../helpers/until.ts";

let stack: Stack;
let ownerA: TestUser, viewerA: TestUser, ownerB: TestUser;

interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
  verified: unknown;
  error?: string;
}

/** A local receiver: answers with `answer(path)` and verifies each delivery with standardwebhooks. */
function receiverFor(secrets: Map<string, string>, answer: (path: string) => number) {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      const entry: Received = { path: req.url ?? "", headers, body, verified: null };
      try {
        entry.verified = new Webhook(secrets.get(req.url ?? "") ?? "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").verify(body, headers);
      } catch (e) {
        entry.error = (e as Error).message;
      }
      got.push(entry);
      res.writeHead(answer(req.url ?? "")).end();
    });
  });
  return { server, got };
}

const secrets = new Map<string, string>();
const failing = new Set<string>();
const rx = receiverFor(secrets, (path) => (failing.has(path) ? 500 : 200));
let base: string;

async function register(user: TestUser, path: string, events: ClientEventType[], extra: Record<string, unknown> = {}) {
  const res = await call(stack, "webhooks-outbound", { token: user.token, body: { url: `${base}${path}`, events, ...extra } });
  expect(res.status).toBe(201);
  secrets.set(path, res.body.secret);
  return res.body as { id: string; secret: string; client_id: string };
}

async function emit(clientId: string, type: ClientEventType, data: Record<string, unknown>, eventId?: string) {
  const out = await asService({ role: "service:test", reason: "test event" }, (tx) => emitClientEvent(tx, clientId, type, data, { eventId }));
  await publishOutbox(db());
  return out;
}

/** The delivery of one event to one webhook (an event goes to every webhook of the client subscribed to it). */
async function deliveryOf(hookId: string, eventId: string): Promise<string> {
  const [row] = await db()`select id from public.webhook_deliveries where webhook_id = ${hookId} and event_id = ${eventId}`;
  return row.id;
}

async function delivery(id: string) {
  const [row] = await db()`select status, attempts, last_status, last_error, delivered_at from public.webhook_deliveries where id = ${id}`;
  return row;
}

beforeAll(async () => {
  // fast retries for the test: the flow answers QStash with these Retry-After values (seconds)
  process.env.CLIENT_WEBHOOK_RETRY_SCHEDULE = "0.05,0.05,0.1,0.1,0.1";
  stack = await getStack();
  const a = unique("hooks-a"), b = unique("hooks-b");
  ownerA = await makeUser(stack, { client: a, role: "owner" });
  viewerA = await makeUser(stack, { client: a, role: "viewer" });
  ownerB = await makeUser(stack, { client: b, role: "owner" });
  await new Promise<void>((r) => rx.server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(rx.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  delete process.env.CLIENT_WEBHOOK_RETRY_SCHEDULE;
  await new Promise<void>((r) => rx.server.close(() => r()));
});

describe("registration", () => {
  it("returns the whsec_ secret once; list and read never show it", async () => {
    const hook = await register(ownerA, "/reg", ["meeting.booked", "lead.won", "meeting.booked"]);
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(hook).toMatchObject({ client_id: ownerA.clientId, events: ["meeting.booked", "lead.won"], active: true });
    const list = await call(stack, "webhooks-outbound", { token: viewerA.token });
    expect(list.status).toBe(200);
    const listed = list.body.data.find((w: { id: string }) => w.id === hook.id);
    expect(listed).toBeDefined();
    expect(listed).not.toHaveProperty("secret");
    expect(JSON.stringify(list.body)).not.toContain(hook.secret);
    const one = await call(stack, `webhooks-outbound/${hook.id}`, { token: ownerA.token });
    expect(one.status).toBe(200);
    expect(one.body).not.toHaveProperty("secret");
    const [row] = await db()`select secret from public.client_webhooks where id = ${hook.id}`;
    expect(row.secret).toBe(hook.secret);
    expect((await call(stack, "webhooks-outbound/events", { token: ownerA.token })).body.data).toContain("lead.unsubscribed");
  });

  it("viewers cannot register, change or delete; another client's webhook is a 404", async () => {
    const hook = await register(ownerA, "/tenancy", ["lead.won"]);
    const viewer = await call(stack, "webhooks-outbound", { token: viewerA.token, body: { url: `${base}/v`, events: ["lead.won"] } });
    expect(viewer.status).toBe(403);
    expect((await call(stack, `webhooks-outbound/${hook.id}`, { token: viewerA.token, method: "DELETE" })).status).toBe(403);
    expect((await call(stack, `webhooks-outbound/${hook.id}`, { token: ownerB.token })).status).toBe(404);
    expect((await call(stack, `webhooks-outbound/${hook.id}`, { token: ownerB.token, method: "DELETE" })).status).toBe(404);
    expect((await call(stack, `webhooks-outbound/${hook.id}`, { token: ownerB.token, method: "PATCH", body: { active: false } })).status).toBe(404);
    const listB = await call(stack, "webhooks-outbound", { token: ownerB.token });
    expect(listB.body.data.map((w: { id: string }) => w.id)).not.toContain(hook.id);
    // naming another client explicitly is a 404, not a way in
    const cross = await call(stack, "webhooks-outbound", { token: ownerB.token, body: { url: `${base}/x`, events: ["lead.won"], client_id: ownerA.clientId } });
    expect(cross.status).toBe(404);
    expect((await call(stack, `webhooks-outbound/${hook.id}`, { token: ownerA.token })).body.active).toBe(true);
  });

  it("rejects bad URLs and unknown events, naming the field", async () => {
    const bad = async (body: Record<string, unknown>) => {
      const res = await call(stack, "webhooks-outbound", { token: ownerA.token, body });
      expect(res.status).toBe(400);
      return res.body.error.details.map((d: { field: string }) => d.field);
    };
    expect(await bad({ url: "ftp://example.com/hook", events: ["lead.won"] })).toEqual(["url"]);
    expect(await bad({ url: "https://user:pw@example.com/hook", events: ["lead.won"] })).toEqual(["url"]);
    expect(await bad({ url: "not a url", events: ["lead.won"] })).toEqual(["url"]);
    expect(await bad({ url: "https://example.com/hook", events: ["lead.exploded"] })).toEqual(["events.0"]);
    expect(await bad({ url: "https://example.com/hook", events: [] })).toEqual(["events"]);
    // outside the local stack only public https URLs are accepted
    expect(webhookUrlProblem("http://hooks.example.com/x", false)).toBe("must be an https URL");
    for (const u of ["https://127.0.0.1/x", "https://10.1.2.3/x", "https://192.168.0.5/x", "https://169.254.169.254/latest", "https://[::1]/x", "https://localhost:8443/x"]) {
      expect(webhookUrlProblem(u, false), u).toBe("must be a public address");
    }
    expect(webhookUrlProblem("https://hooks.example.com/agency", false)).toBeNull();
    expect(webhookUrlProblem("http://127.0.0.1:9999/x", true)).toBeNull();
  });
});

describe("delivery", () => {
  it("a delivery reaches the receiver signed: standardwebhooks' Webhook.verify accepts it, and it is logged delivered", async () => {
    const hook = await register(ownerA, "/ok", ["lead.replied"]);
    const { eventId, deliveryIds } = await emit(ownerA.clientId!, "lead.replied", { lead: { id: "L1", email: "ada@prospect.example" }, reply: { body: "Sounds good" } });
    // the only webhook of client A subscribed to lead.replied
    expect(deliveryIds).toEqual([await deliveryOf(hook.id, eventId)]);
    const got = await until("the delivery at the receiver", async () => rx.got.find((r) => r.path === "/ok"));
    expect(got.error).toBeUndefined();
    expect(got.verified).toMatchObject({ type: "lead.replied", data: { reply: { body: "Sounds good" } } });
    expect(got.headers["webhook-id"]).toBe(eventId);
    expect(got.headers["content-type"]).toBe("application/json");
    // the same delivery under another secret does not verify
    expect(() => new Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").verify(got.body, got.headers)).toThrow();
    const row = await until("delivered", async () => {
      const d = await delivery(deliveryIds[0]);
      return d.status === "delivered" ? d : undefined;
    });
    expect(row).toMatchObject({ attempts: 1, last_status: 200, last_error: null });
    const log = await call(stack, `webhooks-outbound/deliveries?webhook_id=${hook.id}`, { token: viewerA.token });
    expect(log.body.data).toEqual([expect.objectContaining({ id: deliveryIds[0], status: "delivered", event_type: "lead.replied", event_id: eventId })]);
    expect((await call(stack, `webhooks-outbound/deliveries?webhook_id=${hook.id}`, { token: ownerB.token })).body.data).toEqual([]);
  });

  it("only active webhooks subscribed to the type get a delivery; the same event id twice is one delivery", async () => {
    const on = await register(ownerA, "/sub-on", ["meeting.held"]);
    const off = await register(ownerA, "/sub-off", ["meeting.held"]);
    await register(ownerA, "/sub-other", ["lead.lost"]);
    expect((await call(stack, `webhooks-outbound/${off.id}`, { token: ownerA.token, method: "PATCH", body: { active: false } })).body.active).toBe(false);
    const id = `meeting.held:${crypto.randomUUID()}`;
    const first = await emit(ownerA.clientId!, "meeting.held", { meeting: { id: "m" } }, id);
    const second = await emit(ownerA.clientId!, "meeting.held", { meeting: { id: "m" } }, id);
    expect(first.deliveryIds).toHaveLength(1);
    expect(second.deliveryIds).toHaveLength(0);
    const rows = await db()`select webhook_id from public.webhook_deliveries where event_id = ${id}`;
    expect(rows.map((r) => r.webhook_id)).toEqual([on.id]);
    // another client's webhooks never hear client A's events
    const b = await register(ownerB, "/b", ["meeting.held"]);
    expect(await db()`select id from public.webhook_deliveries where webhook_id = ${b.id}`).toHaveLength(0);
  });

  it("a failing receiver is retried through QStash, then the delivery is failed; a replay by hand delivers it", async () => {
    failing.add("/flaky");
    const hook = await register(ownerA, "/flaky", ["lead.lost"]);
    const { eventId } = await emit(ownerA.clientId!, "lead.lost", { reason: "budget" });
    const id = await deliveryOf(hook.id, eventId);
    const failed = await until("failed after the retries", async () => {
      const d = await delivery(id);
      return d.status === "failed" ? d : undefined;
    }, 30_000, 100);
    // the first attempt and five retries, each answered 500
    expect(failed).toMatchObject({ attempts: 6, last_status: 500, delivered_at: null });
    expect(failed.last_error).toContain("HTTP 500");
    const attempts = rx.got.filter((r) => r.path === "/flaky");
    expect(attempts).toHaveLength(6);
    expect(new Set(attempts.map((a) => a.headers["webhook-id"]))).toEqual(new Set([eventId]));
    expect(attempts.every((a) => a.error === undefined)).toBe(true);
    // the log shows it failed
    const log = await call(stack, `webhooks-outbound/deliveries?status=failed&webhook_id=${hook.id}`, { token: ownerA.token });
    expect(log.body.data.map((d: { id: string }) => d.id)).toEqual([id]);

    // a viewer cannot replay; another client cannot see it
    expect((await call(stack, `webhooks-outbound/deliveries/${id}/replay`, { token: viewerA.token, method: "POST" })).status).toBe(403);
    expect((await call(stack, `webhooks-outbound/deliveries/${id}/replay`, { token: ownerB.token, method: "POST" })).status).toBe(404);

    failing.delete("/flaky");
    const replay = await call(stack, `webhooks-outbound/deliveries/${id}/replay`, { token: ownerA.token, method: "POST" });
    expect(replay.status).toBe(202);
    expect(replay.body).toMatchObject({ id, status: "pending" });
    const delivered = await until("delivered after the replay", async () => {
      const d = await delivery(id);
      return d.status === "delivered" ? d : undefined;
    });
    expect(delivered).toMatchObject({ attempts: 7, last_status: 200, last_error: null });
    expect(rx.got.filter((r) => r.path === "/flaky")).toHaveLength(7);
  });

  it("a replay while a delivery is still pending is a 409", async () => {
    const hook = await register(ownerA, "/pending", ["lead.won"]);
    const [row] = await db()`insert into public.webhook_deliveries (webhook_id, client_id, event_type, event_id, payload)
      values (${hook.id}, ${ownerA.clientId}, 'lead.won', ${unique("evt")}, ${db().json({ type: "lead.won", timestamp: new Date().toISOString(), data: {} })})
      returning id`;
    const res = await call(stack, `webhooks-outbound/deliveries/${row.id}/replay`, { token: ownerA.token, method: "POST" });
    expect(res.status).toBe(409);
    expect((await call(stack, `webhooks-outbound/deliveries/${crypto.randomUUID()}/replay`, { token: ownerA.token, method: "POST" })).status).toBe(404);
  });

  it("deleting a webhook removes it and its log; a queued delivery for it finds nothing to do", async () => {
    failing.add("/gone");
    const hook = await register(ownerA, "/gone", ["lead.won"]);
    const { eventId } = await emit(ownerA.clientId!, "lead.won", {});
    const id = await deliveryOf(hook.id, eventId);
    await until("a first failed attempt", async () => (await delivery(id))?.attempts >= 1);
    expect((await call(stack, `webhooks-outbound/${hook.id}`, { token: ownerA.token, method: "DELETE" })).status).toBe(204);
    expect((await call(stack, `webhooks-outbound/${hook.id}`, { token: ownerA.token })).status).toBe(404);
    expect(await db()`select id from public.webhook_deliveries where id = ${id}`).toHaveLength(0);
    const before = rx.got.filter((r) => r.path === "/gone").length;
    await new Promise((r) => setTimeout(r, 600));
    expect(rx.got.filter((r) => r.path === "/gone").length).toBeLessThanOrEqual(before + 1);
    failing.delete("/gone");
  });

  it("the flow refuses a request without QStash's signature", async () => {
    const res = await call(stack, "flow-webhook-delivery", { body: { delivery_id: crypto.randomUUID() } });
    expect(res.status).toBe(401);
  });
});

describe("one attempt", () => {
  it("times out a receiver that does not answer, and never follows redirects", async () => {
    const hang = createServer(() => {});
    await new Promise<void>((r) => hang.listen(0, "127.0.0.1", r));
    const port = (hang.address() as AddressInfo).port;
    const payload = { type: "lead.won" as const, timestamp: new Date().toISOString(), data: {} };
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    try {
      const slow = await attemptDelivery({ url: `http://127.0.0.1:${port}/`, secret, eventId: "evt_1", payload, timeoutMs: 150 });
      expect(slow).toMatchObject({ ok: false, status: null, error: "no answer within 150 ms" });
    } finally {
      hang.closeAllConnections();
      await new Promise<void>((r) => hang.close(() => r()));
    }
    const redirect = await attemptDelivery({
      url: "https://hooks.example/x", secret, eventId: "evt_2", payload,
      fetch: (async () => new Response(null, { status: 302, headers: { location: "http://169.254.169.254/" } })) as typeof fetch,
    });
    expect(redirect).toMatchObject({ ok: false, status: 302 });
    const refused = await attemptDelivery({ url: "http://127.0.0.1:1/", secret, eventId: "evt_3", payload });
    expect(refused.ok).toBe(false);
    expect(refused.error).toMatch(/^network error/);
    expect(retryDelaySeconds(0, [5, 300])).toBe(5);
    expect(retryDelaySeconds(9, [5, 300])).toBe(300);
  });
});
