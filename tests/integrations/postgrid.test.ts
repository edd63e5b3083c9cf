// The PostGrid client and "mail" adapter against the stateful PostGrid sandbox on a local server: the
// letter body and headers on the wire, Idempotency-Key replay, findByReference, bad input and provider
// failures, and letter.updated webhooks whose JWT bodies are verified by recomputing the HMAC (with the
// providers.md §16 vector reproduced).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { createPostgridSandbox, signPostgridWebhookJwt, type PostgridSandboxState } from "../../dev/sandbox/postgrid.ts";
import { createPostgridClient, postgridMailAdapter, type PostgridClient } from "../../shared/integrations/postgrid.ts";
import { ProviderError, type ProviderCall } from "../../shared/integrations/provider-http.ts";
import type { SendRequest } from "../../shared/channels/types.ts";

const SECRET = "postgrid_test_webhook_secret";
const API_KEY = "test_sk_sandbox123";
const VECTOR_PAYLOAD = '{"id":"event_test1","type":"letter.updated","data":{"id":"letter_test1","status":"printing"}}';
const VECTOR_TOKEN =
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6ImV2ZW50X3Rlc3QxIiwidHlwZSI6ImxldHRlci51cGRhdGVkIiwiZGF0YSI6eyJpZCI6ImxldHRlcl90ZXN0MSIsInN0YXR1cyI6InByaW50aW5nIn19.ajbgSWHe2O3dUhCHVhAPUjci3m7NCYDSVdtC33VP5t4";

let server: ServerType;
let base: string;
let state: PostgridSandboxState;
let downState: PostgridSandboxState;
let client: PostgridClient;
const calls: ProviderCall[] = [];
const wire: Array<{ method: string; url: string; headers: Headers; body: string }> = [];
const received: Array<{ verified: boolean; event: { type: string; data: Record<string, unknown> } | null }> = [];

// An independent verifier: recompute HMAC-SHA256(secret, header.payload) and compare base64url.
async function verifyJwt(token: string, secret: string): Promise<{ ok: boolean; payload: string | null }> {
  const parts = token.split(".");
  if (parts.length !== 3) return { ok: false, payload: null };
  const header = JSON.parse(Buffer.from(parts[0], "base64url").toString("utf8"));
  if (header.alg !== "HS256") return { ok: false, payload: null };
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  const ok = await crypto.subtle.verify("HMAC", key, Buffer.from(parts[2], "base64url"), new TextEncoder().encode(`${parts[0]}.${parts[1]}`));
  return { ok, payload: Buffer.from(parts[1], "base64url").toString("utf8") };
}

function recordingFetch(): typeof fetch {
  return async (input, init) => {
    wire.push({ method: init?.method ?? "GET", url: String(input), headers: new Headers(init?.headers), body: String(init?.body ?? "") });
    return fetch(input, init);
  };
}

function request(overrides: Partial<SendRequest> = {}): SendRequest {
  const sendId = crypto.randomUUID();
  return {
    sendId,
    clientId: "client-1",
    leadId: "lead-1",
    channel: "mail",
    sender: {
      id: "sender-1",
      address: "Acme return address",
      displayName: "Acme Pty Ltd",
      postalAddress: { line1: "1 George St", city: "Sydney", state: "NSW", postcode: "2000", country: "AU" },
    },
    recipient: {
      firstName: "Jane",
      lastName: "Citizen",
      company: "Harbour Logistics",
      postalAddress: { line1: "22 Collins St", line2: "Level 3", city: "Melbourne", state: "VIC", postcode: "3000", country: "au" },
    },
    body: "<p>Hello Jane</p>",
    ...overrides,
  };
}

beforeAll(async () => {
  const root = new Hono();
  root.post("/hooks/postgrid", async (c) => {
    const raw = await c.req.text();
    const { ok, payload } = await verifyJwt(raw, SECRET);
    received.push({ verified: ok, event: ok && payload ? JSON.parse(payload) : null });
    return ok ? c.body(null, 204) : c.json({ error: "bad signature" }, 401);
  });
  await new Promise<void>((resolve) => {
    server = serve({ fetch: root.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
      base = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
  const sandbox = createPostgridSandbox({
    apiKey: API_KEY,
    webhookUrl: `${base}/hooks/postgrid`,
    webhookSecret: SECRET,
    statusDelaysMs: [20, 40, 60],
    returnRate: 0,
  });
  state = sandbox.state;
  root.route("/sandbox/postgrid", sandbox.app);
  // A sandbox whose webhook endpoint is down.
  const down = createPostgridSandbox({ webhookUrl: "http://127.0.0.1:9/hooks", webhookSecret: SECRET, statusDelaysMs: [5, 10, 15] });
  root.route("/sandbox/postgrid-down", down.app);
  downState = down.state;
  client = createPostgridClient({
    apiKey: API_KEY,
    baseUrl: `${base}/sandbox/postgrid/print-mail/v1`,
    redis: null,
    rateLimit: false,
    retry: { baseDelayMs: 5 },
    record: (call) => void calls.push(call),
    fetch: recordingFetch(),
  });
});

afterAll(async () => {
  await state.settled();
  await new Promise<void>((r) => server.close(() => r()));
});

describe("sending a letter", () => {
  it("posts exactly the letter body with x-api-key and Idempotency-Key = sendId", async () => {
    const adapter = postgridMailAdapter({ client, centsPerLetter: 150 });
    const req = request();
    wire.length = 0;
    const result = await adapter.send(req);
    expect(result).toMatchObject({ provider: "postgrid", status: "accepted", costCents: 150, threadRef: null });
    expect(result.providerMessageId).toMatch(/^letter_/);
    expect(wire).toHaveLength(1);
    const sent = wire[0];
    expect(sent.method).toBe("POST");
    expect(sent.url).toBe(`${base}/sandbox/postgrid/print-mail/v1/letters`);
    expect(sent.headers.get("x-api-key")).toBe(API_KEY);
    expect(sent.headers.get("idempotency-key")).toBe(req.sendId);
    expect(JSON.parse(sent.body)).toEqual({
      to: {
        firstName: "Jane", lastName: "Citizen", companyName: "Harbour Logistics",
        addressLine1: "22 Collins St", addressLine2: "Level 3", city: "Melbourne", provinceOrState: "VIC", postalOrZip: "3000", countryCode: "AU",
      },
      from: { companyName: "Acme Pty Ltd", addressLine1: "1 George St", city: "Sydney", provinceOrState: "NSW", postalOrZip: "2000", countryCode: "AU" },
      html: "<p>Hello Jane</p>",
      size: "a4",
      color: false,
      doubleSided: false,
      addressPlacement: "insert_blank_page",
      description: `aos send ${req.sendId}`,
      metadata: { sendId: req.sendId },
    });
    expect(state.letter(result.providerMessageId)).toMatchObject({ status: "ready", metadata: { sendId: req.sendId } });
  });

  it("the same sendId twice is one letter (Idempotency-Key replay)", async () => {
    const adapter = postgridMailAdapter({ client });
    const req = request();
    const a = await adapter.send(req);
    const b = await adapter.send(req);
    expect(b.providerMessageId).toBe(a.providerMessageId);
    expect(state.letters().filter((l) => (l.metadata as { sendId?: string }).sendId === req.sendId)).toHaveLength(1);
  });

  it("uses the sender's PostGrid contact id when there is no inline return address", async () => {
    const res = await fetch(`${base}/sandbox/postgrid/print-mail/v1/contacts`, {
      method: "POST",
      headers: { "x-api-key": API_KEY, "content-type": "application/json" },
      body: JSON.stringify({ companyName: "Acme", addressLine1: "1 George St", city: "Sydney", provinceOrState: "NSW", postalOrZip: "2000", countryCode: "AU" }),
    });
    const contact = await res.json() as { id: string };
    const adapter = postgridMailAdapter({ client });
    wire.length = 0;
    const req = request({ sender: { id: "sender-2", address: "Acme", providerAccountId: contact.id } });
    const result = await adapter.send(req);
    expect(JSON.parse(wire[0].body).from).toBe(contact.id);
    expect(state.letter(result.providerMessageId)?.from).toMatchObject({ id: contact.id, companyName: "Acme" });
  });

  it("refuses a recipient without a postal address, or a sender without a return address, before any I/O", async () => {
    const adapter = postgridMailAdapter({ client });
    wire.length = 0;
    const bad = [
      request({ recipient: { firstName: "Jane" } }),
      request({ recipient: { firstName: "Jane", postalAddress: { line1: "", city: "Sydney", state: "NSW", postcode: "2000", country: "AU" } } }),
      request({ recipient: { postalAddress: { line1: "1 A St", city: "Sydney", state: "NSW", postcode: "2000", country: "AU" } } }),
      request({ sender: { id: "s", address: "x" } }),
      request({ body: "  " }),
    ];
    for (const req of bad) {
      const err = await adapter.send(req).catch((e) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ code: "invalid_request", retryable: false });
    }
    expect(wire).toHaveLength(0);
  });
});

describe("finding a letter again", () => {
  it("findByReference matches metadata.sendId through GET /letters?search", async () => {
    const adapter = postgridMailAdapter({ client });
    const req = request();
    const sent = await adapter.send(req);
    wire.length = 0;
    const found = await adapter.findByReference!(req.sendId, req);
    expect(found).toMatchObject({ provider: "postgrid", providerMessageId: sent.providerMessageId });
    expect(new URL(wire[0].url).searchParams.get("search")).toBe(req.sendId);
    expect(await adapter.findByReference!(crypto.randomUUID(), req)).toBeNull();
  });

  it("getLetter returns the letter, and null for an unknown id", async () => {
    const sent = await postgridMailAdapter({ client }).send(request());
    expect(await client.getLetter(sent.providerMessageId)).toMatchObject({ id: sent.providerMessageId, status: expect.any(String) });
    expect(await client.getLetter("letter_doesnotexist")).toBeNull();
  });
});

describe("provider failures", () => {
  it("a bad key is a non-retryable 401", async () => {
    const bad = createPostgridClient({ apiKey: "test_sk_wrong", baseUrl: `${base}/sandbox/postgrid/print-mail/v1`, redis: null, rateLimit: false, record: () => {} });
    const err = await postgridMailAdapter({ client: bad }).send(request()).catch((e) => e);
    expect(err).toMatchObject({ code: "http", status: 401, retryable: false });
    expect(err.message).toContain("Invalid API key");
  });

  it("429 and 500 are retryable and attempted once per call; the next call succeeds", async () => {
    const adapter = postgridMailAdapter({ client });
    for (const [magic, status] of [["ratelimit", 429], ["servererror", 500]] as const) {
      const req = request({ recipient: { ...request().recipient, postalAddress: { line1: `1 ${magic} St`, city: "Perth", state: "WA", postcode: "6000", country: "AU" } } });
      const before = calls.length;
      const err = await adapter.send(req).catch((e) => e);
      expect(err).toMatchObject({ code: "http", status, retryable: true });
      expect(calls.length - before).toBe(1);
      await expect(adapter.send(req)).resolves.toMatchObject({ status: "accepted" });
    }
  });

  it("a body PostGrid would reject is a non-retryable 400", async () => {
    const err = await client.createLetter({ to: "contact_missing", from: "contact_missing", html: "<p>x</p>" }, crypto.randomUUID()).catch((e) => e);
    expect(err).toMatchObject({ code: "http", status: 400, retryable: false });
  });
});

describe("letter.updated webhooks", () => {
  it("reproduces the providers.md §16 PostGrid vector", async () => {
    expect(await signPostgridWebhookJwt(VECTOR_PAYLOAD, SECRET)).toBe(VECTOR_TOKEN);
    expect(await signPostgridWebhookJwt(JSON.parse(VECTOR_PAYLOAD), SECRET)).toBe(VECTOR_TOKEN);
    expect(await verifyJwt(VECTOR_TOKEN, SECRET)).toEqual({ ok: true, payload: VECTOR_PAYLOAD });
    expect((await verifyJwt(VECTOR_TOKEN, "wrong-secret")).ok).toBe(false);
    const tampered = VECTOR_TOKEN.replace(/\.([^.]+)\./, (_m, p: string) => `.${p.slice(0, -2)}fQ.`);
    expect(tampered).not.toBe(VECTOR_TOKEN);
    expect((await verifyJwt(tampered, SECRET)).ok).toBe(false);
  });

  it("each letter moves printing → processed_for_delivery → completed, posted as signed JWTs after the create", async () => {
    const req = request({ recipient: { ...request().recipient, firstName: "Returned" } });
    const sent = await postgridMailAdapter({ client }).send(req);
    // nothing was delivered before the create was answered
    expect(state.deliveries().filter((d) => d.letterId === sent.providerMessageId)).toHaveLength(0);
    await state.settled();
    const mine = received.filter((r) => r.event?.data.id === sent.providerMessageId);
    expect(mine.every((r) => r.verified)).toBe(true);
    expect(mine.map((r) => r.event!.type)).toEqual(["letter.updated", "letter.updated", "letter.updated"]);
    expect(mine.map((r) => r.event!.data.status)).toEqual(["printing", "processed_for_delivery", "completed"]);
    expect(mine[2].event!.data).toMatchObject({ imbStatus: "returned_to_sender", metadata: { sendId: req.sendId } });
    expect(await client.getLetter(sent.providerMessageId)).toMatchObject({ status: "completed", imbStatus: "returned_to_sender" });
    expect(received.every((r) => r.verified)).toBe(true);
  });

  it("a failed delivery is logged and recorded, never thrown", async () => {
    const down = downState;
    const c2 = createPostgridClient({ baseUrl: `${base}/sandbox/postgrid-down/print-mail/v1`, redis: null, rateLimit: false, record: () => {} });
    const sent = await postgridMailAdapter({ client: c2 }).send(request());
    await down.settled();
    const attempts = down.deliveries().filter((d) => d.letterId === sent.providerMessageId);
    expect(attempts).toHaveLength(3);
    expect(attempts.every((d) => d.error !== null && d.httpStatus === null)).toBe(true);
    expect(down.letter(sent.providerMessageId)?.status).toBe("completed");
  });
});
