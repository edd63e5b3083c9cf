// The ClickSend client and SMS adapter against the ClickSend sandbox on a local server: the send
// envelope with custom_string = sendId, per-message statuses (INVALID_RECIPIENT non-retryable,
// THROTTLED retryable), HTTP 401/429/500, the delivery receipt at a token-protected receipt URL,
// findByReference through /v3/sms/history, costs, and bad bodies.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { timingSafeEqual } from "node:crypto";
import { CLICKSEND_MAGIC, createClickSendSandbox, type ClickSendSandbox } from "../../dev/sandbox/clicksend.ts";
import { ProviderError, type ProviderCall } from "../../shared/integrations/provider-http.ts";
import {
  clicksendFromEnv,
  clicksendMessageStatus,
  clicksendSmsAdapter,
  createClickSendClient,
  type ClickSendClient,
  type ClickSendConfig,
} from "../../shared/integrations/clicksend.ts";
import type { SendRequest } from "../../shared/channels/types.ts";

const USER = "agency@example.com";
const KEY = "CS-TEST-KEY-0001";
const RECEIPT_TOKEN = "receipt-secret-1234567890";

let server: ServerType;
let base: string;
let sandbox: ClickSendSandbox;
let calls: ProviderCall[] = [];
const receipts: Array<{ token: string | null; fields: Record<string, string>; contentType: string | undefined }> = [];
const requests: Array<{ path: string; body: unknown; query: string }> = [];

function config(over: Partial<ClickSendConfig> = {}): ClickSendConfig {
  return {
    username: USER, apiKey: KEY, baseUrl: `${base}/sandbox/clicksend/v3`, redis: null, rateLimit: false,
    record: (c) => void calls.push(c), retry: { baseDelayMs: 5, maxDelayMs: 20 }, timeoutMs: 2_000, ...over,
  };
}

function request(to: string, over: Partial<SendRequest> = {}): SendRequest {
  return {
    sendId: crypto.randomUUID(),
    clientId: "00000000-0000-0000-0000-00000000000c",
    leadId: "00000000-0000-0000-0000-00000000000a",
    channel: "sms",
    sender: { id: "sender-1", address: "AgencyOS" },
    recipient: { phoneE164: to },
    body: `Hi Sam, a quick note ${Math.random().toString(36).slice(2, 8)}. Reply STOP to opt out.`,
    ...over,
  };
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

function tokenMatches(given: string | null): boolean {
  const a = Buffer.from(given ?? "");
  const b = Buffer.from(RECEIPT_TOKEN);
  return a.length === b.length && timingSafeEqual(a, b);
}

beforeAll(async () => {
  const root = new Hono();
  root.use("/sandbox/*", async (c, next) => {
    const url = new URL(c.req.url);
    requests.push({ path: url.pathname, query: url.search, body: await c.req.raw.clone().json().catch(() => null) });
    await next();
  });
  root.post("/hooks/clicksend/receipts", async (c) => {
    const token = new URL(c.req.url).searchParams.get("token");
    if (!tokenMatches(token)) return c.text("forbidden", 403);
    const fields = Object.fromEntries(new URLSearchParams(await c.req.text()));
    receipts.push({ token, fields, contentType: c.req.header("content-type") });
    return c.text("ok");
  });
  await new Promise<void>((resolve) => {
    server = serve({ fetch: root.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
      base = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
  sandbox = createClickSendSandbox({
    username: USER, apiKey: KEY, webhookDelayMs: 10, receiptUrl: `${base}/hooks/clicksend/receipts`, receiptToken: RECEIPT_TOKEN,
  });
  root.route("/sandbox/clicksend", sandbox);
});

afterAll(async () => {
  await sandbox.state.settled();
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(() => {
  calls = [];
});

describe("clicksend SMS adapter against the sandbox", () => {
  let client: ClickSendClient;
  beforeAll(() => {
    client = createClickSendClient(config());
  });

  it("sends one message in the envelope with custom_string = sendId, and records cost and parts", async () => {
    const adapter = clicksendSmsAdapter(client);
    expect([adapter.provider, adapter.channel]).toEqual(["clicksend", "sms"]);
    const req = request(CLICKSEND_MAGIC.delivered);
    const res = await adapter.send(req);
    expect(res).toMatchObject({ provider: "clicksend", status: "queued" });
    expect(res.providerMessageId).toMatch(/^[0-9A-F-]{36}$/);
    const sent = requests.at(-1)!;
    expect(sent.path).toBe("/sandbox/clicksend/v3/sms/send");
    expect(sent.body).toEqual({ messages: [{ to: req.recipient.phoneE164, body: req.body, source: "agency-os", from: "AgencyOS", custom_string: req.sendId }] });
    // 0.0770 AUD per part, recorded at face value without a conversion rate
    expect(res.costCents).toBeCloseTo(7.7, 6);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ provider: "clicksend", operation: "sms.send", status: 200, credits: 1, leadId: req.leadId, error: null });
    expect(calls[0].costCents).toBeCloseTo(7.7, 6);

    const converted = await createClickSendClient(config({ usdPerCurrencyUnit: 0.65 })).sendSms({ to: CLICKSEND_MAGIC.delivered, body: "converted", customString: "x" });
    expect(converted.costCents).toBeCloseTo(7.7 * 0.65, 6);
  });

  it("posts a form-encoded delivery receipt to the receipt URL with the token and our custom_string", async () => {
    const ok = await clicksendSmsAdapter(client).send(request(CLICKSEND_MAGIC.delivered, { sendId: "send-delivered-1" }));
    const bad = await clicksendSmsAdapter(client).send(request(CLICKSEND_MAGIC.undelivered, { sendId: "send-undelivered-1" }));
    await sandbox.state.settled();
    const forId = (id: string) => receipts.find((r) => r.fields.message_id === id);
    expect(forId(ok.providerMessageId)).toMatchObject({
      token: RECEIPT_TOKEN, contentType: "application/x-www-form-urlencoded",
      fields: { status: "Delivered", custom_string: "send-delivered-1", message_type: "sms" },
    });
    expect(forId(bad.providerMessageId)!.fields).toMatchObject({ status: "Undelivered", custom_string: "send-undelivered-1" });
    expect(Number(forId(ok.providerMessageId)!.fields.timestamp)).toBeGreaterThan(1_700_000_000);
  });

  it("a receiver that refuses the token (wrong secret) is retried then given up, without hurting the sandbox", async () => {
    const other = createClickSendSandbox({ username: USER, apiKey: KEY, webhookDelayMs: 0, receiptUrl: `${base}/hooks/clicksend/receipts`, receiptToken: "wrong" });
    const c = createClickSendClient(config({ baseUrl: "https://cs.invalid/v3", fetch: async (i, init) => other.request(new Request(i as URL, init)) }));
    await c.sendSms({ to: CLICKSEND_MAGIC.delivered, body: "wrong token", customString: "t" });
    await other.state.settled();
    expect(other.state.webhooks()[0]).toMatchObject({ delivered: false, status: 403, attempts: 3 });
    expect(receipts.some((r) => r.fields.custom_string === "t")).toBe(false);
  });

  it("ClickSend test numbers succeed at no charge", async () => {
    const res = await client.sendSms({ to: "+61411111111", body: "test number", customString: "tn" });
    expect(res).toMatchObject({ status: "SUCCESS", price: 0, costCents: 0 });
  });

  it("INVALID_RECIPIENT inside a 200 is a non-retryable provider error, recorded as an error", async () => {
    for (const to of [CLICKSEND_MAGIC.invalidRecipient, "0412345678"]) {
      calls = [];
      const e = await failure(clicksendSmsAdapter(client).send(request(to)));
      expect(e).toMatchObject({ provider: "clicksend", code: "provider", status: 200, retryable: false });
      expect(clicksendMessageStatus(e)).toBe("INVALID_RECIPIENT");
      expect(calls).toHaveLength(1);
      expect(calls[0].error).toContain("INVALID_RECIPIENT");
    }
    const sender = await failure(client.sendSms({ to: CLICKSEND_MAGIC.delivered, body: "x", from: "AgencyOSTooLongName" }));
    expect(clicksendMessageStatus(sender)).toBe("INVALID_SENDER_ID");
    expect(sender.retryable).toBe(false);
  });

  it("THROTTLED (same body to the same number seconds ago) is retryable", async () => {
    const e = await failure(client.sendSms({ to: CLICKSEND_MAGIC.throttled, body: "x" }));
    expect(e.retryable).toBe(true);
    expect(clicksendMessageStatus(e)).toBe("THROTTLED");
    calls = [];
    await client.sendSms({ to: "+61400111222", body: "exactly the same" });
    const again = await failure(client.sendSms({ to: "+61400111222", body: "exactly the same" }));
    expect(clicksendMessageStatus(again)).toBe("THROTTLED");
    expect(again.retryable).toBe(true);
  });

  it("401 on bad credentials: non-retryable", async () => {
    const bad = createClickSendClient(config({ apiKey: "wrong" }));
    const e = await failure(bad.sendSms({ to: CLICKSEND_MAGIC.delivered, body: "x" }));
    expect(e).toMatchObject({ code: "http", status: 401, retryable: false });
    expect(e.message).toContain("UNAUTHORIZED");
    expect(calls.map((c) => c.status)).toEqual([401]);
  });

  it("429 once is retried and succeeds; 429 every time ends retryable; 500 once is retried", async () => {
    const ok = await client.sendSms({ to: CLICKSEND_MAGIC.rateLimitedOnce, body: `limit ${Date.now()}` });
    expect(ok.status).toBe("SUCCESS");
    expect(calls.map((c) => c.status)).toEqual([429, 200]);
    calls = [];
    const e = await failure(client.sendSms({ to: CLICKSEND_MAGIC.rateLimitedAlways, body: "x" }));
    expect(e).toMatchObject({ status: 429, retryable: true });
    expect(calls.map((c) => c.status)).toEqual([429, 429, 429]);
    calls = [];
    await client.sendSms({ to: CLICKSEND_MAGIC.serverErrorOnce, body: `500 ${Date.now()}` });
    expect(calls.map((c) => c.status)).toEqual([500, 200]);
  });

  it("a malformed or wrongly shaped body is non-retryable malformed; a timed-out send is not retried", async () => {
    const broken = createClickSendClient(config({ fetch: async () => new Response('{"http_code":200,"data":{', { status: 200 }) }));
    expect(await failure(broken.sendSms({ to: CLICKSEND_MAGIC.delivered, body: "x" }))).toMatchObject({ code: "malformed", retryable: false });
    const empty = createClickSendClient(config({ fetch: async () => Response.json({ http_code: 200, response_code: "SUCCESS", data: { messages: [] } }) }));
    expect(await failure(empty.sendSms({ to: CLICKSEND_MAGIC.delivered, body: "x" }))).toMatchObject({ code: "malformed" });
    calls = [];
    const hanging = createClickSendClient(config({ timeoutMs: 50, fetch: (_u, init) => new Promise((_, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason))) }));
    expect(await failure(hanging.sendSms({ to: CLICKSEND_MAGIC.delivered, body: "x" }))).toMatchObject({ code: "timeout", retryable: true });
    expect(calls).toHaveLength(1);
  });

  it("refuses bad input before any HTTP and fails not_configured without credentials", async () => {
    expect(await failure(clicksendSmsAdapter(client).send(request("", { recipient: {} })))).toMatchObject({ code: "invalid_request" });
    expect(await failure(client.sendSms({ to: CLICKSEND_MAGIC.delivered, body: " " }))).toMatchObject({ code: "invalid_request" });
    const none = createClickSendClient({ baseUrl: `${base}/sandbox/clicksend/v3`, redis: null, rateLimit: false, record: (c) => void calls.push(c) });
    expect(await failure(none.sendSms({ to: CLICKSEND_MAGIC.delivered, body: "x" }))).toMatchObject({ code: "not_configured" });
    expect(calls).toHaveLength(0);
  });

  it("findByReference finds the message by custom_string in /v3/sms/history, and null when there is none", async () => {
    const adapter = clicksendSmsAdapter(client);
    const req = request("+61400333444");
    const sent = await adapter.send(req);
    const found = await adapter.findByReference!(req.sendId, req);
    expect(found).toMatchObject({ provider: "clicksend", providerMessageId: sent.providerMessageId });
    const q = new URLSearchParams(requests.at(-1)!.query);
    expect(requests.at(-1)!.path).toBe("/sandbox/clicksend/v3/sms/history");
    expect(q.get("q")).toBe(`custom_string:${req.sendId}`);
    expect(Number(q.get("date_from"))).toBeLessThan(Date.now() / 1000);
    await sandbox.state.settled();
    const later = await adapter.findByReference!(req.sendId, req);
    expect(["delivered", "sent"]).toContain(later!.status);
    expect(await adapter.findByReference!(crypto.randomUUID(), req)).toBeNull();
    // another recipient with our reference is not ours
    expect(await adapter.findByReference!(req.sendId, { ...req, recipient: { phoneE164: "+61400999888" } })).toBeNull();
  });

  it("receipt rules set through the automations API redirect receipts (JSON format too)", async () => {
    const got: unknown[] = [];
    const other = createClickSendSandbox({ username: USER, apiKey: KEY, webhookDelayMs: 0, receiptFormat: "json", fetch: async (_u, init) => {
      got.push(JSON.parse(String(init?.body)));
      return new Response("ok");
    } });
    const c = createClickSendClient(config({ baseUrl: "https://cs.invalid/v3", fetch: async (i, init) => other.request(new Request(i as URL, init)) }));
    await c.sendSms({ to: CLICKSEND_MAGIC.delivered, body: "before rule", customString: "a" });
    await other.state.settled();
    expect(got).toHaveLength(0);
    const rule = await other.request("/v3/automations/sms/receipts", {
      method: "POST", headers: { authorization: `Basic ${btoa(`${USER}:${KEY}`)}`, "content-type": "application/json" },
      body: JSON.stringify({ rule_name: "all", match_type: 0, action: "URL", action_address: "https://hooks.example.com/r?token=abc", enabled: 1 }),
    });
    expect(rule.status).toBe(200);
    await c.sendSms({ to: CLICKSEND_MAGIC.delivered, body: "after rule", customString: "b" });
    await other.state.settled();
    expect(got).toEqual([expect.objectContaining({ custom_string: "b", status: "Delivered" })]);
    expect(other.state.webhooks()[0].url).toBe("https://hooks.example.com/r?token=abc");
  });

  it("clicksendFromEnv reads CLICKSEND_* and defaults to sandbox credentials on a local base URL", async () => {
    const saved = { ...process.env };
    try {
      delete process.env.CLICKSEND_USERNAME;
      delete process.env.CLICKSEND_API_KEY;
      process.env.CLICKSEND_BASE_URL = "http://127.0.0.1:9/v3";
      const def = createClickSendSandbox({ webhookDelayMs: 0 });
      const local = clicksendFromEnv({ redis: null, rateLimit: false, record: () => {}, fetch: async (i, init) => def.request(new Request(new URL(new URL(i as URL).pathname + new URL(i as URL).search, "http://x"), init)) });
      expect((await local.sendSms({ to: CLICKSEND_MAGIC.delivered, body: "x" })).status).toBe("SUCCESS");
      process.env.CLICKSEND_BASE_URL = "https://rest.clicksend.com/v3";
      const remote = clicksendFromEnv({ redis: null, rateLimit: false, record: () => {} });
      expect(await failure(remote.sendSms({ to: CLICKSEND_MAGIC.delivered, body: "x" }))).toMatchObject({ code: "not_configured" });
      await def.state.settled();
    } finally {
      process.env = saved;
    }
  });
});
