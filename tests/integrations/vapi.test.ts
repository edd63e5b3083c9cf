// The Vapi client and voice adapter against the Vapi sandbox on a local server: the POST /call body
// (transient assistant, 11labs voice, server.url, metadata.sendId), the status-update and
// end-of-call-report messages at a local receiver with an HMAC signature recomputed here, error
// mapping (401, 400, 429 with retry, 5xx, timeout), findByReference through GET /call, and the
// voice retry rules (busy +2 h, no answer next day, at most 3 attempts).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { createHmac, timingSafeEqual } from "node:crypto";
import { createVapiSandbox, VAPI_MAGIC, vapiSignature, type VapiSandbox } from "../../dev/sandbox/vapi.ts";
import { ProviderError, type ProviderCall } from "../../shared/integrations/provider-http.ts";
import {
  classifyCallOutcome,
  createVapiClient,
  nextVoiceAttempt,
  vapiFromEnv,
  vapiVoiceAdapter,
  type VapiClient,
  type VapiConfig,
} from "../../shared/integrations/vapi.ts";
import type { SendRequest } from "../../shared/channels/types.ts";

const API_KEY = "vapi-private-key-test";
const HMAC_SECRET = "vapi-hmac-secret-test";
const PHONE_ID = "11111111-2222-4333-8444-555555555555";

interface Received {
  rawBody: string;
  timestamp: string;
  signature: string;
  message: { type: string; status?: string; endedReason?: string; call: { id: string; assistant: { metadata: Record<string, string> } } };
}

let server: ServerType;
let base: string;
let sandbox: VapiSandbox;
let calls: ProviderCall[] = [];
const received: Received[] = [];
const requests: Array<{ path: string; body: unknown; query: string }> = [];

function config(over: Partial<VapiConfig> = {}): VapiConfig {
  return {
    apiKey: API_KEY, baseUrl: `${base}/sandbox/vapi`, redis: null, rateLimit: false, serverCredentialId: "cred-hmac-1",
    record: (c) => void calls.push(c), retry: { baseDelayMs: 5, maxDelayMs: 20 }, timeoutMs: 2_000, ...over,
  };
}

function request(to: string, over: Partial<SendRequest> = {}): SendRequest {
  return {
    sendId: crypto.randomUUID(),
    clientId: "00000000-0000-0000-0000-00000000000c",
    leadId: "00000000-0000-0000-0000-00000000000a",
    channel: "voice",
    sender: { id: "sender-voice", address: "+61280000000", providerAccountId: PHONE_ID },
    recipient: { phoneE164: to, firstName: "Sam", lastName: "Lee" },
    body: "",
    voice: {
      firstMessage: `Hi Sam, it's Alex from Acme ${Math.random().toString(36).slice(2, 6)}. Have you got a minute?`,
      systemPrompt: "You are Alex, calling on behalf of Acme. Be brief and polite.",
      voiceId: "21m00Tcm4TlvDq8ikWAM",
      maxDurationSeconds: 300,
    },
    statusCallbackUrl: `${base}/hooks/vapi`,
    ...over,
  };
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

/** The receiver's check: hex HMAC-SHA256 over "{timestamp}.{raw body}", constant-time, 5-minute window. */
function verify(rawBody: string, timestamp: string, signature: string, secret = HMAC_SECRET): boolean {
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const expected = Buffer.from(createHmac("sha256", secret).update(`${timestamp}.${rawBody}`).digest("hex"));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

beforeAll(async () => {
  const root = new Hono();
  root.use("/sandbox/*", async (c, next) => {
    const url = new URL(c.req.url);
    requests.push({ path: url.pathname, query: url.search, body: await c.req.raw.clone().json().catch(() => null) });
    await next();
  });
  root.post("/hooks/vapi", async (c) => {
    const rawBody = await c.req.text();
    received.push({
      rawBody, timestamp: c.req.header("x-timestamp") ?? "", signature: c.req.header("x-signature") ?? "",
      message: JSON.parse(rawBody).message,
    });
    return c.json({});
  });
  sandbox = createVapiSandbox({ apiKey: API_KEY, hmacSecret: HMAC_SECRET, webhookDelayMs: 5, phoneNumberIds: [PHONE_ID] });
  root.route("/sandbox/vapi", sandbox);
  await new Promise<void>((resolve) => {
    server = serve({ fetch: root.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
      base = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
});

afterAll(async () => {
  await sandbox.state.settled();
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(() => {
  calls = [];
});

describe("vapi HMAC signature", () => {
  it("matches the test vector of providers.md §16", async () => {
    const body = '{"message":{"type":"status-update","status":"ended"}}';
    const sig = await vapiSignature("vapi_test_secret", "1767225600", body);
    expect(sig).toBe("1b61874a71d29d84c7fa15f1aa53ef362f34f2d73047e447ecdf4cedcc88280f");
    expect(createHmac("sha256", "vapi_test_secret").update(`1767225600.${body}`).digest("hex")).toBe(sig);
  });
});

describe("vapi voice adapter against the sandbox", () => {
  let client: VapiClient;
  beforeAll(() => {
    client = createVapiClient(config());
  });

  it("places the call with a transient assistant, then signed status-update and end-of-call-report arrive", async () => {
    const adapter = vapiVoiceAdapter(client);
    expect([adapter.provider, adapter.channel]).toEqual(["vapi", "voice"]);
    const req = request(VAPI_MAGIC.answered);
    const res = await adapter.send(req);
    expect(res).toMatchObject({ provider: "vapi", status: "queued", costCents: 0 });
    expect(res.providerMessageId).toMatch(/^[0-9a-f-]{36}$/);

    const sent = requests.find((r) => r.path === "/sandbox/vapi/call" && (r.body as { assistant?: { metadata?: { sendId?: string } } })?.assistant?.metadata?.sendId === req.sendId)!;
    expect(sent.body).toEqual({
      phoneNumberId: PHONE_ID,
      customer: { number: VAPI_MAGIC.answered, name: "Sam Lee" },
      assistant: {
        firstMessage: req.voice!.firstMessage,
        model: { provider: "openai", model: "gpt-4o-mini", messages: [{ role: "system", content: req.voice!.systemPrompt }] },
        voice: { provider: "11labs", voiceId: "21m00Tcm4TlvDq8ikWAM" },
        maxDurationSeconds: 300,
        server: { url: req.statusCallbackUrl, credentialId: "cred-hmac-1" },
        serverMessages: ["status-update", "end-of-call-report"],
        metadata: { sendId: req.sendId, clientId: req.clientId, leadId: req.leadId },
      },
    });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ provider: "vapi", operation: "call.create", status: 201, leadId: req.leadId, error: null });

    await sandbox.state.settled();
    const mine = received.filter((r) => r.message.call.id === res.providerMessageId);
    expect(mine.map((r) => [r.message.type, r.message.status ?? null])).toEqual([
      ["status-update", "ringing"], ["status-update", "in-progress"], ["status-update", "ended"], ["end-of-call-report", null],
    ]);
    for (const r of mine) {
      expect(verify(r.rawBody, r.timestamp, r.signature)).toBe(true);
      expect(verify(r.rawBody, r.timestamp, r.signature, "another-secret")).toBe(false);
      expect(verify(r.rawBody.replace("status", "Status"), r.timestamp, r.signature)).toBe(false);
      expect(verify(r.rawBody, String(Number(r.timestamp) - 1), r.signature)).toBe(false);
      expect(r.message.call.assistant.metadata.sendId).toBe(req.sendId);
    }
    const report = mine.at(-1)!.message as unknown as { endedReason: string; cost: number; artifact: { transcript: string } };
    expect(classifyCallOutcome(report.endedReason)).toBe("answered");
    expect(report.cost).toBeGreaterThan(0);
    expect(report.artifact.transcript).toContain(req.voice!.firstMessage);

    const fetched = (await client.getCall(res.providerMessageId))!;
    expect(fetched).toMatchObject({ id: res.providerMessageId, status: "ended", phoneNumberId: PHONE_ID, customerNumber: VAPI_MAGIC.answered });
    expect(fetched.metadata.sendId).toBe(req.sendId);
    expect(fetched.costCents).toBeCloseTo(report.cost * 100, 6);
  });

  it("busy, no answer, voicemail and failed calls end with reasons that classify as such", async () => {
    const adapter = vapiVoiceAdapter(client);
    const cases = [[VAPI_MAGIC.busy, "busy"], [VAPI_MAGIC.noAnswer, "no_answer"], [VAPI_MAGIC.voicemail, "voicemail"], [VAPI_MAGIC.failed, "failed"]] as const;
    const ids = await Promise.all(cases.map(async ([to]) => (await adapter.send(request(to))).providerMessageId));
    await sandbox.state.settled();
    for (const [i, [, outcome]] of cases.entries()) {
      const report = received.find((r) => r.message.call.id === ids[i] && r.message.type === "end-of-call-report")!;
      expect(classifyCallOutcome(report.message.endedReason)).toBe(outcome);
      expect(verify(report.rawBody, report.timestamp, report.signature)).toBe(true);
    }
    // A call that never connects never rings or goes in-progress.
    expect(received.filter((r) => r.message.call.id === ids[3]).map((r) => r.message.status ?? r.message.type)).toEqual(["ended", "end-of-call-report"]);
  });

  it("seeds outcomes from number + first message: the same pair ends the same way", async () => {
    const a = await client.createCall({ phoneNumberId: PHONE_ID, customerNumber: "+61412000111", assistant: { firstMessage: "Hello", systemPrompt: "p", voiceId: "v" } });
    const b = await client.createCall({ phoneNumberId: PHONE_ID, customerNumber: "+61412000111", assistant: { firstMessage: "Hello", systemPrompt: "p", voiceId: "v" } });
    expect(sandbox.state.call(a.id)!.outcome).toBe(sandbox.state.call(b.id)!.outcome);
    const outcomes = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const c = await client.createCall({ phoneNumberId: PHONE_ID, customerNumber: `+614120${String(i).padStart(5, "0")}`, assistant: { firstMessage: "Hello", systemPrompt: "p", voiceId: "v" } });
      outcomes.add(sandbox.state.call(c.id)!.outcome);
    }
    expect(outcomes.size).toBeGreaterThanOrEqual(3);
    await sandbox.state.settled();
  });

  it("401 with a bad key: non-retryable", async () => {
    const e = await failure(createVapiClient(config({ apiKey: "nope" })).createCall({ phoneNumberId: PHONE_ID, customerNumber: VAPI_MAGIC.answered, assistant: { firstMessage: "a", systemPrompt: "b", voiceId: "c" } }));
    expect(e).toMatchObject({ code: "http", status: 401, retryable: false });
    expect(calls.map((c) => c.status)).toEqual([401]);
  });

  it("400 for an invalid number or an unknown phoneNumberId: non-retryable, with Vapi's message", async () => {
    const e = await failure(vapiVoiceAdapter(client).send(request(VAPI_MAGIC.invalidNumber)));
    expect(e).toMatchObject({ status: 400, retryable: false });
    expect(e.message).toContain("E.164");
    const unknown = await failure(vapiVoiceAdapter(client).send(request(VAPI_MAGIC.answered, { sender: { id: "s", address: "x", providerAccountId: "not-ours" } })));
    expect(unknown).toMatchObject({ status: 400, retryable: false });
    expect(unknown.message).toContain("phoneNumberId");
  });

  it("429 once is retried and the call is placed once; 429 always ends retryable; 500 once is retried", async () => {
    await vapiVoiceAdapter(client).send(request(VAPI_MAGIC.rateLimitedOnce));
    expect(calls.map((c) => c.status)).toEqual([429, 201]);
    expect(sandbox.state.calls().filter((c) => c.customer.number === VAPI_MAGIC.rateLimitedOnce)).toHaveLength(1);
    calls = [];
    const e = await failure(vapiVoiceAdapter(client).send(request(VAPI_MAGIC.rateLimitedAlways)));
    expect(e).toMatchObject({ status: 429, retryable: true });
    expect(calls).toHaveLength(3);
    calls = [];
    await vapiVoiceAdapter(client).send(request(VAPI_MAGIC.serverErrorOnce));
    expect(calls.map((c) => c.status)).toEqual([500, 201]);
    await sandbox.state.settled();
  });

  it("a timed-out POST /call is not retried (someone may be ringing); a malformed body is non-retryable", async () => {
    const hanging = createVapiClient(config({ timeoutMs: 50, fetch: (_u, init) => new Promise((_, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason))) }));
    expect(await failure(vapiVoiceAdapter(hanging).send(request(VAPI_MAGIC.answered)))).toMatchObject({ code: "timeout", retryable: true });
    expect(calls).toHaveLength(1);
    const broken = createVapiClient(config({ fetch: async () => new Response("<html>oops</html>", { status: 201 }) }));
    expect(await failure(vapiVoiceAdapter(broken).send(request(VAPI_MAGIC.answered)))).toMatchObject({ code: "malformed", retryable: false });
    const noId = createVapiClient(config({ fetch: async () => Response.json({ status: "queued" }, { status: 201 }) }));
    expect(await failure(vapiVoiceAdapter(noId).send(request(VAPI_MAGIC.answered)))).toMatchObject({ code: "malformed" });
  });

  it("refuses incomplete requests before any HTTP; not_configured without a key", async () => {
    const adapter = vapiVoiceAdapter(client);
    expect(await failure(adapter.send(request(VAPI_MAGIC.answered, { voice: undefined })))).toMatchObject({ code: "invalid_request" });
    expect(await failure(adapter.send(request(VAPI_MAGIC.answered, { sender: { id: "s", address: "x" } })))).toMatchObject({ code: "invalid_request" });
    expect(await failure(adapter.send(request("", { recipient: {} })))).toMatchObject({ code: "invalid_request" });
    expect(await failure(adapter.send(request("0412345678")))).toMatchObject({ code: "invalid_request" });
    const noVoice = request(VAPI_MAGIC.answered);
    noVoice.voice = { ...noVoice.voice!, voiceId: "" };
    expect(await failure(adapter.send(noVoice))).toMatchObject({ code: "invalid_request" });
    expect(calls).toHaveLength(0);
    const none = createVapiClient({ baseUrl: `${base}/sandbox/vapi`, redis: null, rateLimit: false, record: (c) => void calls.push(c) });
    expect(await failure(vapiVoiceAdapter(none).send(request(VAPI_MAGIC.answered)))).toMatchObject({ code: "not_configured" });
    expect(await failure(client.getCall(" "))).toMatchObject({ code: "invalid_request" });
  });

  it("getCall answers null for an unknown id", async () => {
    expect(await client.getCall(crypto.randomUUID())).toBeNull();
  });

  it("findByReference finds the call by metadata.sendId through GET /call, and null when there is none", async () => {
    const adapter = vapiVoiceAdapter(client);
    const req = request(VAPI_MAGIC.noAnswer);
    const res = await adapter.send(req);
    const found = await adapter.findByReference!(req.sendId, req);
    expect(found).toMatchObject({ provider: "vapi", providerMessageId: res.providerMessageId });
    const listed = requests.at(-1)!;
    expect(listed.path).toBe("/sandbox/vapi/call");
    const q = new URLSearchParams(listed.query);
    expect(q.get("phoneNumberId")).toBe(PHONE_ID);
    expect(Date.parse(q.get("createdAtGt")!)).toBeLessThan(Date.now());
    expect(await adapter.findByReference!(crypto.randomUUID(), req)).toBeNull();
    expect(await adapter.findByReference!(req.sendId, { ...req, recipient: { phoneE164: "+61400999000" } })).toBeNull();
    await sandbox.state.settled();
  });

  it("an unreachable webhook receiver doesn't hurt the sandbox", async () => {
    const res = await vapiVoiceAdapter(client).send(request(VAPI_MAGIC.busy, { statusCallbackUrl: "http://127.0.0.1:1/hook" }));
    await sandbox.state.settled();
    const hooks = sandbox.state.webhooks().filter((w) => w.url === "http://127.0.0.1:1/hook");
    expect(hooks.length).toBeGreaterThan(0);
    for (const h of hooks) expect(h).toMatchObject({ delivered: false, attempts: 3 });
    expect((await client.getCall(res.providerMessageId))!.status).toBe("ended");
  });

  it("vapiFromEnv reads VAPI_* (model as provider/model) and defaults the key on a local base URL", async () => {
    const saved = { ...process.env };
    try {
      delete process.env.VAPI_API_KEY;
      process.env.VAPI_BASE_URL = "http://localhost:9";
      process.env.VAPI_MODEL = "anthropic/claude-sonnet-4";
      process.env.VAPI_SERVER_CREDENTIAL_ID = "cred-from-env";
      const def = createVapiSandbox({ webhookDelayMs: 0, fetch: async () => new Response("ok") });
      let sentBody: { assistant: { model: { provider: string; model: string }; server: { credentialId: string } } } | undefined;
      const local = vapiFromEnv({ redis: null, rateLimit: false, record: () => {}, fetch: async (i, init) => {
        sentBody = JSON.parse(String(init?.body));
        return def.request(new Request(i as URL, init));
      } });
      await local.createCall({ phoneNumberId: "p", customerNumber: VAPI_MAGIC.answered, assistant: { firstMessage: "a", systemPrompt: "b", voiceId: "c" }, serverUrl: "https://hooks.example.com/vapi" });
      expect(sentBody!.assistant.model).toMatchObject({ provider: "anthropic", model: "claude-sonnet-4" });
      expect(sentBody!.assistant.server.credentialId).toBe("cred-from-env");
      process.env.VAPI_BASE_URL = "https://api.vapi.ai";
      expect(await failure(vapiFromEnv({ redis: null, rateLimit: false, record: () => {} }).getCall("x"))).toMatchObject({ code: "not_configured" });
      await def.state.settled();
    } finally {
      process.env = saved;
    }
  });
});

describe("voice retry rules (product.md §5)", () => {
  const now = new Date("2026-03-10T01:00:00.000Z");

  it("classifies Vapi endedReasons", () => {
    expect(classifyCallOutcome("customer-busy")).toBe("busy");
    expect(classifyCallOutcome("customer-did-not-answer")).toBe("no_answer");
    expect(classifyCallOutcome("voicemail")).toBe("voicemail");
    for (const r of ["customer-ended-call", "assistant-ended-call", "assistant-said-end-call-phrase", "exceeded-max-duration", "silence-timed-out", "assistant-forwarded-call"]) {
      expect(classifyCallOutcome(r)).toBe("answered");
    }
    for (const r of ["twilio-failed-to-connect-call", "pipeline-error-openai-llm-failed", "call.start.error-subscription-concurrency-limit-reached", "manually-canceled", "", null, undefined]) {
      expect(classifyCallOutcome(r)).toBe("failed");
    }
  });

  it("busy → again 2 hours later", () => {
    expect(nextVoiceAttempt("busy", 1, now)).toEqual({ kind: "at", at: new Date("2026-03-10T03:00:00.000Z"), attemptNo: 2 });
    expect(nextVoiceAttempt("busy", 2, now)).toEqual({ kind: "at", at: new Date("2026-03-10T03:00:00.000Z"), attemptNo: 3 });
  });

  it("no answer, voicemail and failed → the next permitted day (the scheduler resolves it)", () => {
    expect(nextVoiceAttempt("no_answer", 1, now)).toEqual({ kind: "next_day", attemptNo: 2 });
    expect(nextVoiceAttempt("voicemail", 2, now)).toEqual({ kind: "next_day", attemptNo: 3 });
    expect(nextVoiceAttempt("failed", 1, now)).toEqual({ kind: "next_day", attemptNo: 2 });
  });

  it("stops when answered or after the third attempt", () => {
    expect(nextVoiceAttempt("answered", 1, now)).toBeNull();
    for (const o of ["busy", "no_answer", "voicemail", "failed"] as const) expect(nextVoiceAttempt(o, 3, now)).toBeNull();
    expect(nextVoiceAttempt("busy", 7, now)).toBeNull();
  });

  it("walks a step: busy, busy, then done — never a fourth call", () => {
    let attempt = 1;
    const plan: unknown[] = [];
    for (;;) {
      const next = nextVoiceAttempt("busy", attempt, now);
      if (!next) break;
      plan.push(next);
      attempt = next.attemptNo;
    }
    expect(plan).toHaveLength(2);
    expect(attempt).toBe(3);
  });

  it("rejects a nonsense attempt number", () => {
    expect(() => nextVoiceAttempt("busy", 0, now)).toThrow(RangeError);
    expect(() => nextVoiceAttempt("busy", 1.5, now)).toThrow(RangeError);
  });
});
