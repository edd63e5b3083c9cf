// The Twilio client (official SDK over our fetch httpClient) and the SMS adapter against the Twilio
// sandbox on a local server: the form-encoded send, the signed StatusCallback (verified with the SDK's
// own twilio.validateRequest), error mapping (401, 21211, 21610, 429 with retry, 5xx, timeouts,
// malformed bodies), provider_calls rows, listing, and findByReference's "can't tell".
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import twilio from "twilio";
import { createTwilioSandbox, twilioSignature, TWILIO_MAGIC, type TwilioSandbox } from "../../dev/sandbox/twilio.ts";
import { ProviderError, type ProviderCall } from "../../shared/integrations/provider-http.ts";
import {
  createTwilioClient,
  twilioErrorCode,
  twilioFromEnv,
  twilioSmsAdapter,
  type TwilioClient,
  type TwilioConfig,
} from "../../shared/integrations/twilio.ts";
import type { SendRequest } from "../../shared/channels/types.ts";

const SID = "AC0123456789abcdef0123456789abcdef";
const TOKEN = "twilio-test-token";
const FROM = "+61480000000";

interface Received {
  url: string;
  params: Record<string, string>;
  signature: string;
}

let server: ServerType;
let base: string;
let sandbox: TwilioSandbox;
let calls: ProviderCall[] = [];
const received: Received[] = [];

function config(over: Partial<TwilioConfig> = {}): TwilioConfig {
  return {
    accountSid: SID, authToken: TOKEN, baseUrl: `${base}/sandbox/twilio`,
    record: (c) => void calls.push(c), retry: { baseDelayMs: 5, maxDelayMs: 20 }, timeoutMs: 2_000, ...over,
  };
}

function request(to: string, over: Partial<SendRequest> = {}): SendRequest {
  return {
    sendId: `send-${Math.random().toString(36).slice(2)}`,
    clientId: "00000000-0000-0000-0000-00000000000c",
    leadId: "00000000-0000-0000-0000-00000000000l",
    channel: "sms",
    sender: { id: "sender-1", address: FROM },
    recipient: { phoneE164: to },
    body: `Hi Sam, quick question about Acme ${Math.random().toString(36).slice(2, 8)}. Reply STOP to opt out.`,
    statusCallbackUrl: `${base}/hooks/twilio/status?sendId=abc`,
    ...over,
  };
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

beforeAll(async () => {
  sandbox = createTwilioSandbox({ accountSid: SID, authToken: TOKEN, webhookDelayMs: 10 });
  const root = new Hono();
  root.route("/sandbox/twilio", sandbox);
  root.post("/hooks/twilio/status", async (c) => {
    const params = Object.fromEntries(new URLSearchParams(await c.req.text()));
    received.push({ url: c.req.url, params, signature: c.req.header("x-twilio-signature") ?? "" });
    return c.body(null, 204);
  });
  root.post("/hooks/broken", (c) => c.text("nope", 500));
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

describe("twilio signature", () => {
  it("matches the test vector of providers.md §16 and the SDK's validateRequest", async () => {
    const params = { CallSid: "CA1234567890ABCDE", Caller: "+12349013030", Digits: "1234", From: "+12349013030", To: "+18005551212" };
    const sig = await twilioSignature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params);
    expect(sig).toBe("0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    expect(twilio.validateRequest("12345", sig, "https://mycompany.com/myapp.php?foo=1&bar=2", params)).toBe(true);
  });
});

describe("twilio SMS adapter against the sandbox", () => {
  let client: TwilioClient;
  beforeAll(() => {
    client = createTwilioClient(config());
  });

  it("sends through the SDK, returns the sid, records the call, and the signed status callbacks arrive", async () => {
    const adapter = twilioSmsAdapter(client);
    expect(adapter.channel).toBe("sms");
    expect(adapter.provider).toBe("twilio");
    const req = request(TWILIO_MAGIC.delivered);
    const res = await adapter.send(req);
    expect(res.provider).toBe("twilio");
    expect(res.providerMessageId).toMatch(/^SM[0-9a-f]{32}$/);
    expect(res.status).toBe("queued");
    expect(res.costCents).toBe(0);

    const stored = sandbox.state.message(res.providerMessageId)!;
    expect(stored).toMatchObject({ to: TWILIO_MAGIC.delivered, from: FROM, body: req.body, statusCallback: req.statusCallbackUrl, accountSid: SID });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ provider: "twilio", operation: "messages.create", status: 201, cached: false, error: null, leadId: req.leadId, clientId: req.clientId });

    await sandbox.state.settled();
    const mine = received.filter((r) => r.params.MessageSid === res.providerMessageId);
    expect(mine.map((r) => r.params.MessageStatus)).toEqual(["sent", "delivered"]);
    for (const r of mine) {
      expect(r.url).toBe(req.statusCallbackUrl);
      expect(r.params).toMatchObject({ AccountSid: SID, To: TWILIO_MAGIC.delivered, From: FROM, SmsSid: res.providerMessageId, ApiVersion: "2010-04-01" });
      expect(twilio.validateRequest(TOKEN, r.signature, req.statusCallbackUrl!, r.params)).toBe(true);
      // Any other token, URL or parameter value must fail verification.
      expect(twilio.validateRequest("other-token", r.signature, req.statusCallbackUrl!, r.params)).toBe(false);
      expect(twilio.validateRequest(TOKEN, r.signature, `${base}/hooks/twilio/status?sendId=xyz`, r.params)).toBe(false);
      expect(twilio.validateRequest(TOKEN, r.signature, req.statusCallbackUrl!, { ...r.params, MessageStatus: "failed" })).toBe(false);
    }
    expect(mine[1].params.RawDlrDoneDate).toMatch(/^\d{10}$/);

    // Once sent, the resource carries Twilio's (negative, USD) price per segment.
    const fetched = await client.fetchMessage(res.providerMessageId);
    expect(fetched.status).toBe("delivered");
    expect(fetched.price).toBeLessThan(0);
    expect(fetched.costCents).toBeCloseTo(Math.abs(fetched.price!) * 100, 6);
    expect(fetched.dateSent).not.toBeNull();
  });

  it("reports undelivered and failed outcomes with Twilio's ErrorCode in the callback", async () => {
    const adapter = twilioSmsAdapter(client);
    const undelivered = await adapter.send(request(TWILIO_MAGIC.undelivered));
    const failed = await adapter.send(request(TWILIO_MAGIC.failed));
    await sandbox.state.settled();
    const statuses = (sid: string) => received.filter((r) => r.params.MessageSid === sid).map((r) => [r.params.MessageStatus, r.params.ErrorCode]);
    expect(statuses(undelivered.providerMessageId)).toEqual([["sent", undefined], ["undelivered", "30003"]]);
    expect(statuses(failed.providerMessageId)).toEqual([["failed", "30008"]]);
  });

  it("seeds outcomes from recipient + body: the same pair always ends the same way", async () => {
    const body = "Seeded outcome check";
    const first = await client.sendSms({ to: "+61412345678", from: FROM, body });
    const second = await client.sendSms({ to: "+61412345678", from: FROM, body });
    expect(sandbox.state.message(first.sid)!.outcome).toBe(sandbox.state.message(second.sid)!.outcome);
    expect(first.sid).not.toBe(second.sid);
    const outcomes = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const m = await client.sendSms({ to: `+614123${String(i).padStart(5, "0")}`, from: FROM, body });
      outcomes.add(sandbox.state.message(m.sid)!.outcome);
    }
    expect(outcomes.has("delivered")).toBe(true);
    expect(outcomes.size).toBeGreaterThan(1);
    await sandbox.state.settled();
  });

  it("sends through a Messaging Service when the sender's providerAccountId is MG…", async () => {
    const service = "MG0123456789abcdef0123456789abcdef";
    const res = await twilioSmsAdapter(client).send(request(TWILIO_MAGIC.delivered, { sender: { id: "s", address: FROM, providerAccountId: service } }));
    expect(res.status).toBe("accepted");
    expect(sandbox.state.message(res.providerMessageId)).toMatchObject({ messagingServiceSid: service, from: null });
    await sandbox.state.settled();
  });

  it("401 on bad credentials: non-retryable, recorded", async () => {
    const bad = createTwilioClient(config({ authToken: "wrong" }));
    const e = await failure(bad.sendSms({ to: TWILIO_MAGIC.delivered, from: FROM, body: "hello" }));
    expect(e).toMatchObject({ provider: "twilio", operation: "messages.create", code: "http", status: 401, retryable: false });
    expect(twilioErrorCode(e)).toBe(20003);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ status: 401 });
    expect(calls[0].error).toContain("20003");
  });

  it("21211 invalid To and malformed numbers: non-retryable", async () => {
    for (const to of [TWILIO_MAGIC.invalidTo, "0412 345 678"]) {
      const e = await failure(twilioSmsAdapter(client).send(request(to)));
      expect(e).toMatchObject({ status: 400, retryable: false, code: "http" });
      expect(twilioErrorCode(e)).toBe(21211);
    }
  });

  it("21610 unsubscribed recipient: non-retryable, also after the sandbox saw a STOP", async () => {
    const e = await failure(twilioSmsAdapter(client).send(request(TWILIO_MAGIC.unsubscribed)));
    expect(e.retryable).toBe(false);
    expect(twilioErrorCode(e)).toBe(21610);
    sandbox.state.optOut("+61499999999");
    const e2 = await failure(client.sendSms({ to: "+61499999999", from: FROM, body: "hi" }));
    expect(twilioErrorCode(e2)).toBe(21610);
  });

  it("other permanent Twilio codes (21612, 21408, 21614) are non-retryable", async () => {
    for (const [to, code] of [[TWILIO_MAGIC.cannotRoute, 21612], [TWILIO_MAGIC.regionNotEnabled, 21408], [TWILIO_MAGIC.notMobile, 21614]] as const) {
      const e = await failure(client.sendSms({ to, from: FROM, body: "hi" }));
      expect(e.retryable).toBe(false);
      expect(twilioErrorCode(e)).toBe(code);
    }
  });

  it("429 / 20429 once: backs off, retries and succeeds; both attempts are recorded", async () => {
    const res = await client.sendSms({ to: TWILIO_MAGIC.rateLimitedOnce, from: FROM, body: `retry me ${Date.now()}` });
    expect(res.sid).toMatch(/^SM/);
    expect(calls.map((c) => c.status)).toEqual([429, 201]);
    await sandbox.state.settled();
  });

  it("429 every time: a retryable ProviderError after the configured attempts", async () => {
    const e = await failure(client.sendSms({ to: TWILIO_MAGIC.rateLimitedAlways, from: FROM, body: "always limited" }));
    expect(e).toMatchObject({ status: 429, retryable: true, code: "http" });
    expect(twilioErrorCode(e)).toBe(20429);
    expect(calls.map((c) => c.status)).toEqual([429, 429, 429]);
  });

  it("honours Retry-After on a 429 and reports a long one without waiting", async () => {
    const slowSandbox = createTwilioSandbox({ accountSid: SID, authToken: TOKEN, retryAfterSeconds: 120 });
    const c = createTwilioClient(config({ baseUrl: "https://sandbox.invalid", fetch: async (input, init) => slowSandbox.request(new Request(input as URL, init)) }));
    const started = Date.now();
    const e = await failure(c.sendSms({ to: TWILIO_MAGIC.rateLimitedAlways, from: FROM, body: "x" }));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(e).toMatchObject({ status: 429, retryable: true, retryAfterMs: 120_000 });
    expect(calls).toHaveLength(1);
  });

  it("500 once: retried and accepted", async () => {
    const res = await client.sendSms({ to: TWILIO_MAGIC.serverErrorOnce, from: FROM, body: `server error ${Date.now()}` });
    expect(res.sid).toMatch(/^SM/);
    expect(calls.map((c) => c.status)).toEqual([500, 201]);
    await sandbox.state.settled();
  });

  it("network errors are retried then reported retryable; a timed-out send is not retried", async () => {
    const dead = createTwilioClient(config({ baseUrl: "http://127.0.0.1:1" }));
    const e = await failure(dead.sendSms({ to: TWILIO_MAGIC.delivered, from: FROM, body: "x" }));
    expect(e).toMatchObject({ code: "network", retryable: true });
    expect(calls).toHaveLength(3);

    calls = [];
    const hanging = createTwilioClient(config({ timeoutMs: 50, fetch: (_u, init) => new Promise((_, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason))) }));
    const t = await failure(hanging.sendSms({ to: TWILIO_MAGIC.delivered, from: FROM, body: "x" }));
    expect(t).toMatchObject({ code: "timeout", retryable: true });
    expect(calls).toHaveLength(1); // POST: Twilio may have the message already

    calls = [];
    const tl = await failure(hanging.listMessages({ to: TWILIO_MAGIC.delivered }));
    expect(tl.code).toBe("timeout");
    expect(calls).toHaveLength(3); // a read is safe to retry
  });

  it("the caller's abort ends a send, during the request or while backing off", async () => {
    const controller = new AbortController();
    const slowBackoff = createTwilioClient(config({ retry: { baseDelayMs: 5_000, maxDelayMs: 5_000 } }));
    const pending = slowBackoff.sendSms({ to: TWILIO_MAGIC.rateLimitedAlways, from: FROM, body: "abort me" }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const e = await failure(pending);
    expect(e).toMatchObject({ code: "aborted", retryable: false });
    expect(calls.map((c) => c.status)).toEqual([429]);
    const already = new AbortController();
    already.abort();
    expect(await failure(client.sendSms({ to: TWILIO_MAGIC.delivered, from: FROM, body: "x" }, { signal: already.signal }))).toMatchObject({ code: "aborted" });
  });

  it("a malformed 2xx body is a non-retryable malformed error", async () => {
    const broken = createTwilioClient(config({ fetch: async () => new Response('{"sid":"SM12', { status: 201 }) }));
    expect(await failure(broken.sendSms({ to: TWILIO_MAGIC.delivered, from: FROM, body: "x" }))).toMatchObject({ code: "malformed", retryable: false });
    const wrongShape = createTwilioClient(config({ fetch: async () => Response.json({ hello: "world" }, { status: 201 }) }));
    expect(await failure(wrongShape.sendSms({ to: TWILIO_MAGIC.delivered, from: FROM, body: "x" }))).toMatchObject({ code: "malformed", retryable: false });
  });

  it("refuses bad input before any HTTP, and fails not_configured without credentials", async () => {
    const adapter = twilioSmsAdapter(client);
    expect(await failure(adapter.send(request("", { recipient: { phoneE164: null } })))).toMatchObject({ code: "invalid_request" });
    expect(await failure(client.sendSms({ to: TWILIO_MAGIC.delivered, from: FROM, body: "  " }))).toMatchObject({ code: "invalid_request" });
    expect(await failure(client.sendSms({ to: TWILIO_MAGIC.delivered, body: "x" }))).toMatchObject({ code: "invalid_request" });
    expect(await failure(client.fetchMessage("not-a-sid"))).toMatchObject({ code: "invalid_request" });
    const none = createTwilioClient({ baseUrl: `${base}/sandbox/twilio` });
    expect(await failure(none.sendSms({ to: TWILIO_MAGIC.delivered, from: FROM, body: "x" }))).toMatchObject({ code: "not_configured", retryable: false });
    expect(calls).toHaveLength(0);
    expect(() => createTwilioClient({ accountSid: "SK123", authToken: "x" })).toThrow(/AC/);
  });

  it("lists messages to a number since a time; findByReference can't tell (undefined)", async () => {
    const to = "+61411112222";
    const before = new Date(Date.now() - 1_000);
    const a = await client.sendSms({ to, from: FROM, body: "one" });
    const b = await client.sendSms({ to, from: FROM, body: "two" });
    await client.sendSms({ to: "+61411113333", from: FROM, body: "other" });
    const listed = await client.listMessages({ to, sentAfter: before });
    expect(listed.map((m) => m.sid).sort()).toEqual([a.sid, b.sid].sort());
    expect(await client.listMessages({ to, sentAfter: new Date(Date.now() + 60_000) })).toEqual([]);
    const adapter = twilioSmsAdapter(client);
    expect(await adapter.findByReference!("send-1", request(to))).toBeUndefined();
    await sandbox.state.settled();
  });

  it("the sandbox survives a dead or failing status callback receiver", async () => {
    const r1 = await client.sendSms({ to: TWILIO_MAGIC.delivered, from: FROM, body: "dead hook", statusCallback: "http://127.0.0.1:1/hook" });
    const r2 = await client.sendSms({ to: TWILIO_MAGIC.delivered, from: FROM, body: "500 hook", statusCallback: `${base}/hooks/broken` });
    await sandbox.state.settled();
    for (const sid of [r1.sid, r2.sid]) {
      const hooks = sandbox.state.webhooks().filter((w) => w.payload.MessageSid === sid);
      expect(hooks.length).toBe(2);
      for (const h of hooks) expect(h).toMatchObject({ delivered: false, attempts: 3 });
    }
    expect(sandbox.state.message(r1.sid)!.status).toBe("delivered");
    // and it still answers
    expect((await client.fetchMessage(r2.sid)).status).toBe("delivered");
  });

  it("twilioFromEnv reads TWILIO_* and defaults to the sandbox's credentials on a local base URL", async () => {
    const saved = { ...process.env };
    try {
      delete process.env.TWILIO_ACCOUNT_SID;
      delete process.env.TWILIO_AUTH_TOKEN;
      process.env.TWILIO_BASE_URL = `${base}/sandbox/twilio`;
      const local = twilioFromEnv({ record: (c) => void calls.push(c) });
      expect(local.accountSid).toBe("AC00000000000000000000000000000000");
      const def = createTwilioSandbox({ webhookDelayMs: 0 });
      const viaDefault = twilioFromEnv({ baseUrl: "https://x.invalid", fetch: async (i, init) => def.request(new Request(i as URL, init)), record: () => {} });
      await expect(viaDefault.sendSms({ to: TWILIO_MAGIC.delivered, from: FROM, body: "x" })).rejects.toMatchObject({ code: "not_configured" });
      process.env.TWILIO_BASE_URL = "http://localhost:9";
      const defaults = twilioFromEnv({ fetch: async (i, init) => def.request(new Request(i as URL, init)), record: () => {} });
      expect((await defaults.sendSms({ to: TWILIO_MAGIC.delivered, from: FROM, body: "x" })).sid).toMatch(/^SM/);
      await def.state.settled();
      process.env.TWILIO_ACCOUNT_SID = SID;
      process.env.TWILIO_AUTH_TOKEN = TOKEN;
      process.env.TWILIO_BASE_URL = "https://api.twilio.com";
      expect(twilioFromEnv().accountSid).toBe(SID);
    } finally {
      process.env = saved;
    }
  });
});
