// The eight provider webhook functions over HTTP on the local stack: a correctly signed delivery
// is stored once and queued for flow-inbound; a duplicate answers 200 and changes nothing; a bad,
// missing or stale signature is a 401 in the standard error shape; malformed and oversized bodies
// are 4xx; an unconfigured secret is a 503 — and none of those stores anything. The providers.md
// §16 vectors go through the real functions, and a duplicated inbound text is applied once end to
// end (QStash emulator → flow-inbound).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../../dev/stack.ts";
import { db } from "../../shared/db/client.ts";
import { signCalCom, signCalendly, signPostGridJwt, signTwilio, signVapi } from "../../shared/webhooks/verify.ts";
import { backgroundPublishSettled, WEBHOOK_MAX_BODY_BYTES } from "../../shared/webhooks/receive.ts";
import { getStack, unique } from "../helpers/stack.ts";
import { until } from "../helpers/until.ts";

let stack: Stack;
const saved: Record<string, string | undefined> = {};

// Secrets: whatever the stack configured, else a test value (restored afterwards).
const SECRET_ENVS = [
  "TWILIO_AUTH_TOKEN", "CLICKSEND_WEBHOOK_TOKEN", "SALESFORGE_WEBHOOK_TOKEN", "UNIPILE_WEBHOOK_SECRET",
  "POSTGRID_WEBHOOK_SECRET", "VAPI_WEBHOOK_SECRET", "CALCOM_WEBHOOK_SECRET", "CALENDLY_SIGNING_KEY",
];
const secret = (name: string) => process.env[name]!;

beforeAll(async () => {
  stack = await getStack();
  for (const name of SECRET_ENVS) {
    saved[name] = process.env[name];
    if (!process.env[name]) process.env[name] = `test-${name.toLowerCase()}-${unique("s")}`;
  }
});
afterAll(async () => {
  await backgroundPublishSettled();
  for (const name of SECRET_ENVS) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
});

/** Temporarily sets environment variables (the functions read their secret per request). */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(before)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  }
}

const publicUrl = (fn: string, rest = "") => `${process.env.PUBLIC_FUNCTIONS_BASE_URL}/${fn}${rest}`;

async function post(fn: string, raw: string, headers: Record<string, string>, rest = "") {
  const res = await fetch(`${stack.url}/functions/v1/${fn}${rest}`, { method: "POST", headers, body: raw });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // TwiML
  }
  return { status: res.status, body, headers: res.headers };
}

async function stored(provider: string, eventId: string): Promise<number> {
  const [r] = await db()`select count(*)::int as n from public.webhook_events where provider = ${provider} and event_id = ${eventId}`;
  return r.n;
}

async function queued(provider: string, eventId: string): Promise<number> {
  const [r] = await db()`
    select count(*)::int as n from public.outbox o join public.webhook_events e on o.payload->'event_ids' @> to_jsonb(e.id)
    where o.topic = 'flow.inbound' and e.provider = ${provider} and e.event_id = ${eventId}`;
  return r.n;
}

type Signed = { raw: string; headers: Record<string, string>; rest?: string };
type Variant = "valid" | "bad" | "missing" | "stale";

interface Case {
  fn: string;
  provider: string;
  /** A fresh event: its body and the event id the function must derive. */
  event(): { raw: string; eventId: string; contentType: string; json?: unknown };
  sign(raw: string, contentType: string, variant: Variant, json?: unknown): Promise<Signed>;
  /** Signature schemes with a timestamp can be stale. */
  stale: boolean;
  /** A body the provider would never send, signed correctly. */
  malformed: string;
  secretEnv: string;
  okBody?: (body: any) => void;
}

const form = (o: Record<string, string>) => new URLSearchParams(o).toString();
const TEN_MIN_AGO = () => new Date(Date.now() - 10 * 60_000);

const CASES: Case[] = [
  {
    fn: "webhook-twilio", provider: "twilio", secretEnv: "TWILIO_AUTH_TOKEN", stale: false,
    event() {
      const sid = `SM${unique("tw").replace(/[^a-z0-9]/gi, "")}`;
      return {
        raw: form({ AccountSid: "AC1", ApiVersion: "2010-04-01", From: "+61400000001", MessageSid: sid, MessageStatus: "delivered", SmsSid: sid, SmsStatus: "delivered", To: "+61400000002" }),
        eventId: `${sid}:delivered`, contentType: "application/x-www-form-urlencoded",
      };
    },
    async sign(raw, contentType, variant) {
      const token = variant === "bad" ? "not-the-token" : secret("TWILIO_AUTH_TOKEN");
      const headers: Record<string, string> = { "content-type": contentType };
      if (variant !== "missing") headers["x-twilio-signature"] = await signTwilio(publicUrl("webhook-twilio"), new URLSearchParams(raw), token);
      return { raw, headers };
    },
    malformed: form({ AccountSid: "AC1", Foo: "bar" }),
    okBody: (body) => expect(body).toBe("<Response/>"),
  },
  {
    fn: "webhook-clicksend", provider: "clicksend", secretEnv: "CLICKSEND_WEBHOOK_TOKEN", stale: false,
    event() {
      const id = unique("cs");
      return {
        raw: form({ timestamp_send: "1767225600", timestamp: "1767225660", message_id: id, status: "Delivered", status_code: "201", custom_string: "", message_type: "sms" }),
        eventId: `receipt:${id}:Delivered`, contentType: "application/x-www-form-urlencoded",
      };
    },
    async sign(raw, contentType, variant) {
      const token = variant === "bad" ? "wrong-token" : secret("CLICKSEND_WEBHOOK_TOKEN");
      return { raw, headers: { "content-type": contentType }, rest: variant === "missing" ? "" : `?token=${encodeURIComponent(token)}` };
    },
    malformed: form({ hello: "world" }),
  },
  {
    fn: "webhook-vapi", provider: "vapi", secretEnv: "VAPI_WEBHOOK_SECRET", stale: true,
    event() {
      const callId = unique("call");
      return {
        raw: JSON.stringify({ message: { type: "status-update", status: "ringing", timestamp: Date.now(), call: { id: callId } } }),
        eventId: `${callId}:status-update:ringing`, contentType: "application/json",
      };
    },
    async sign(raw, contentType, variant) {
      if (variant === "missing") return { raw, headers: { "content-type": contentType } };
      const s = variant === "bad" ? "another-secret" : secret("VAPI_WEBHOOK_SECRET");
      const h = await signVapi(raw, { secret: s }, variant === "stale" ? TEN_MIN_AGO() : new Date());
      return { raw, headers: { "content-type": contentType, ...h } };
    },
    malformed: JSON.stringify({ not: "a server message" }),
    okBody: (body) => expect(body).toEqual({}),
  },
  {
    fn: "webhook-unipile", provider: "unipile", secretEnv: "UNIPILE_WEBHOOK_SECRET", stale: false,
    event() {
      const member = unique("ACoAA");
      return {
        // API-created Unipile webhooks send no Content-Type
        raw: JSON.stringify({ event: "new_relation", account_id: "acc-1", account_type: "LINKEDIN", user_provider_id: member, user_public_identifier: member }),
        eventId: `new_relation:acc-1:${member}`, contentType: "",
      };
    },
    async sign(raw, _ct, variant) {
      const headers: Record<string, string> = {};
      if (variant !== "missing") headers["Unipile-Auth"] = variant === "bad" ? "nope" : secret("UNIPILE_WEBHOOK_SECRET");
      return { raw, headers };
    },
    malformed: "[1, 2, 3]",
  },
  {
    fn: "webhook-postgrid", provider: "postgrid", secretEnv: "POSTGRID_WEBHOOK_SECRET", stale: true,
    event() {
      const id = `event_${unique("pg")}`;
      const json = { id, type: "letter.updated", data: { id: `letter_${id}`, status: "printing" } };
      return { raw: "", json, eventId: id, contentType: "text/plain" };
    },
    async sign(_raw, contentType, variant, json) {
      if (variant === "missing") return { raw: "", headers: { "content-type": contentType } };
      const event = variant === "stale" ? { ...(json as object), exp: Math.floor(Date.now() / 1000) - 600 } : json;
      const raw = await signPostGridJwt(event, variant === "bad" ? "other-secret" : secret("POSTGRID_WEBHOOK_SECRET"));
      return { raw, headers: { "content-type": contentType } };
    },
    malformed: "{}",
  },
  {
    fn: "webhook-salesforge", provider: "salesforge", secretEnv: "SALESFORGE_WEBHOOK_TOKEN", stale: false,
    event() {
      const id = `evt_${unique("sf")}`;
      return {
        raw: JSON.stringify({ type: "email_opened", eventId: id, occurredAt: new Date().toISOString(), mailboxId: "mb_1", emailId: `eml_${id}`, contact: { id: "c1", email: "x@y.example" } }),
        eventId: id, contentType: "application/json",
      };
    },
    async sign(raw, contentType, variant) {
      // the token in the path this time (the query form is covered by ClickSend)
      const token = variant === "bad" ? "wrong" : secret("SALESFORGE_WEBHOOK_TOKEN");
      return { raw, headers: { "content-type": contentType }, rest: variant === "missing" ? "" : `/${encodeURIComponent(token)}` };
    },
    malformed: "{\"type\": ",
  },
  {
    fn: "webhook-calcom", provider: "calcom", secretEnv: "CALCOM_WEBHOOK_SECRET", stale: false,
    event() {
      const uid = unique("bk");
      const start = "2026-12-01T01:00:00.000Z";
      return {
        raw: JSON.stringify({ triggerEvent: "BOOKING_CREATED", createdAt: new Date().toISOString(), payload: { uid, startTime: start, endTime: "2026-12-01T01:30:00.000Z", attendees: [{ email: "nobody@nowhere.example", name: "N" }] } }),
        eventId: `${uid}:BOOKING_CREATED:${start}`, contentType: "application/json",
      };
    },
    async sign(raw, contentType, variant) {
      const headers: Record<string, string> = { "content-type": contentType };
      if (variant !== "missing") headers["x-cal-signature-256"] = await signCalCom(raw, variant === "bad" ? "other" : secret("CALCOM_WEBHOOK_SECRET"));
      return { raw, headers };
    },
    malformed: JSON.stringify({ payload: { uid: "x" } }),
  },
  {
    fn: "webhook-calendly", provider: "calendly", secretEnv: "CALENDLY_SIGNING_KEY", stale: true,
    event() {
      const uri = `https://api.calendly.com/scheduled_events/E1/invitees/${unique("inv")}`;
      return {
        raw: JSON.stringify({ event: "invitee.created", created_at: new Date().toISOString(), payload: { uri, email: "nobody@nowhere.example", scheduled_event: { start_time: "2026-12-01T01:00:00.000000Z" } } }),
        eventId: `${uri}:invitee.created`, contentType: "application/json",
      };
    },
    async sign(raw, contentType, variant) {
      const headers: Record<string, string> = { "content-type": contentType };
      if (variant !== "missing") {
        headers["calendly-webhook-signature"] = await signCalendly(raw, variant === "bad" ? "other" : secret("CALENDLY_SIGNING_KEY"), variant === "stale" ? TEN_MIN_AGO() : new Date());
      }
      return { raw, headers };
    },
    malformed: "not json at all",
  },
];

describe.each(CASES)("$fn", (c) => {
  it("stores a correctly signed event once and queues it for flow-inbound; a duplicate answers 200 and stores nothing", async () => {
    const e = c.event();
    const s = await c.sign(e.raw, e.contentType, "valid", e.json);
    const first = await post(c.fn, s.raw, s.headers, s.rest);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    c.okBody?.(first.body);
    expect(await stored(c.provider, e.eventId)).toBe(1);
    expect(await queued(c.provider, e.eventId)).toBe(1);

    const again = await post(c.fn, s.raw, s.headers, s.rest);
    expect(again.status).toBe(200);
    if (!c.okBody) expect(again.body).toEqual({ received: true, duplicate: true });
    expect(await stored(c.provider, e.eventId)).toBe(1);
    expect(await queued(c.provider, e.eventId)).toBe(1);
  });

  it("refuses a wrong or missing signature with 401 and the standard error body, storing nothing", async () => {
    for (const variant of ["bad", "missing"] as const) {
      const e = c.event();
      const s = await c.sign(e.raw, e.contentType, variant, e.json);
      const res = await post(c.fn, s.raw, s.headers, s.rest);
      expect(res.status, `${variant}: ${JSON.stringify(res.body)}`).toBe(401);
      expect(res.body).toEqual({ error: { code: "unauthorized", message: expect.stringMatching(/^webhook signature (missing|mismatch|malformed)$/) } });
      expect(await stored(c.provider, e.eventId)).toBe(0);
    }
  });

  if (c.stale) it("refuses a stale signature with 401, storing nothing", async () => {
    const e = c.event();
    const s = await c.sign(e.raw, e.contentType, "stale", e.json);
    const res = await post(c.fn, s.raw, s.headers, s.rest);
    expect(res.status).toBe(401);
    expect(res.body.error).toEqual({ code: "unauthorized", message: "webhook signature stale" });
    expect(await stored(c.provider, e.eventId)).toBe(0);
  });

  it("answers 400 to a correctly signed body that is not one of the provider's events, 413 to one over 256 KB", async () => {
    const [before] = await db()`select count(*)::int as n from public.webhook_events where provider = ${c.provider}`;
    if (c.provider === "postgrid") {
      // a verified JWT whose payload is no event (no id/type)
      const raw = await signPostGridJwt({ hello: "world" }, secret("POSTGRID_WEBHOOK_SECRET"));
      expect((await post(c.fn, raw, { "content-type": "text/plain" })).status).toBe(400);
    } else {
      const ct = c.provider === "twilio" || c.provider === "clicksend" ? "application/x-www-form-urlencoded" : "application/json";
      const s = await c.sign(c.malformed, ct, "valid");
      const res = await post(c.fn, s.raw, s.headers, s.rest);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error.code).toBe("bad_request");
    }
    // over the cap: refused before verification, in-process (over a socket the server may answer
    // before the upload ends)
    const app = (await import(`../../functions/${c.fn}/index.ts`)).default;
    const big = JSON.stringify({ pad: "x".repeat(WEBHOOK_MAX_BODY_BYTES) });
    const e = c.event();
    const s = await c.sign(big, "application/json", "valid", e.json);
    const res = await app.request(`/${c.fn}${s.rest ?? ""}`, { method: "POST", body: big, headers: { ...s.headers, "content-type": "application/json" } });
    expect(res.status).toBe(413);
    expect((await res.json()).error.code).toBe("payload_too_large");
    // and a chunked upload without Content-Length is measured as it streams
    const stream = new ReadableStream({ start(ctrl) { ctrl.enqueue(new TextEncoder().encode(big)); ctrl.close(); } });
    const chunked = await app.request(`/${c.fn}${s.rest ?? ""}`, { method: "POST", body: stream, duplex: "half", headers: s.headers } as RequestInit);
    expect(chunked.status).toBe(413);
    const [after] = await db()`select count(*)::int as n from public.webhook_events where provider = ${c.provider}`;
    expect(after.n).toBe(before.n);
  });

  it("answers 503 and stores nothing while its secret is not configured", async () => {
    const e = c.event();
    const s = await c.sign(e.raw, e.contentType, "valid", e.json);
    const res = await withEnv({ [c.secretEnv]: undefined }, () => post(c.fn, s.raw, s.headers, s.rest));
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe("service_unavailable");
    expect(await stored(c.provider, e.eventId)).toBe(0);
  });
});

describe("providers.md §16 vectors through the functions", () => {
  it("Cal.com: the vector body and signature are accepted and stored under uid + trigger + start", async () => {
    const raw = '{"triggerEvent":"BOOKING_CREATED","createdAt":"2026-01-01T00:00:00.000Z","payload":{"uid":"abc123"}}';
    const res = await withEnv({ CALCOM_WEBHOOK_SECRET: "cal_test_secret" }, () =>
      post("webhook-calcom", raw, { "content-type": "application/json", "x-cal-signature-256": "a4890dc9a9ae7e1ec2829500cd28ab8e8fc07c6feadcf2aa4b7eb55e626b5515" }));
    expect(res.status).toBe(200);
    expect(await stored("calcom", "abc123:BOOKING_CREATED:")).toBe(1);
    // one flipped body byte no longer matches
    const tampered = await withEnv({ CALCOM_WEBHOOK_SECRET: "cal_test_secret" }, () =>
      post("webhook-calcom", raw.replace("abc123", "abc124"), { "content-type": "application/json", "x-cal-signature-256": "a4890dc9a9ae7e1ec2829500cd28ab8e8fc07c6feadcf2aa4b7eb55e626b5515" }));
    expect(tampered.status).toBe(401);
    expect(await stored("calcom", "abc124:BOOKING_CREATED:")).toBe(0);
  });

  it("PostGrid: the vector JWT is accepted and stored under the event id", async () => {
    const jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6ImV2ZW50X3Rlc3QxIiwidHlwZSI6ImxldHRlci51cGRhdGVkIiwiZGF0YSI6eyJpZCI6ImxldHRlcl90ZXN0MSIsInN0YXR1cyI6InByaW50aW5nIn19.ajbgSWHe2O3dUhCHVhAPUjci3m7NCYDSVdtC33VP5t4";
    const res = await withEnv({ POSTGRID_WEBHOOK_SECRET: "postgrid_test_webhook_secret" }, () => post("webhook-postgrid", jwt, { "content-type": "text/plain" }));
    expect(res.status).toBe(200);
    expect(await stored("postgrid", "event_test1")).toBe(1);
    const [row] = await db()`select event_type, payload from public.webhook_events where provider = 'postgrid' and event_id = 'event_test1'`;
    expect(row.event_type).toBe("letter.updated");
    expect(row.payload).toEqual({ id: "event_test1", type: "letter.updated", data: { id: "letter_test1", status: "printing" } });
  });

  it("Calendly and Vapi: the vectors are genuine but signed on 2026-01-01, so they are stale today", async () => {
    const calendly = await withEnv({ CALENDLY_SIGNING_KEY: "calendly_test_signing_key" }, () =>
      post("webhook-calendly", '{"event":"invitee.created","payload":{"email":"a@b.com"}}', {
        "content-type": "application/json",
        "calendly-webhook-signature": "t=1767225600,v1=9d73351335b941389f1346bf01e42e1f7fa9e3ede311fa02309391ab63f7d63c",
      }));
    expect(calendly.status).toBe(401);
    expect(calendly.body.error.message).toBe("webhook signature stale");
    const vapi = await withEnv({ VAPI_WEBHOOK_SECRET: "vapi_test_secret" }, () =>
      post("webhook-vapi", '{"message":{"type":"status-update","status":"ended"}}', {
        "content-type": "application/json", "x-timestamp": "1767225600",
        "x-signature": "1b61874a71d29d84c7fa15f1aa53ef362f34f2d73047e447ecdf4cedcc88280f",
      }));
    expect(vapi.status).toBe(401);
    expect(vapi.body.error.message).toBe("webhook signature stale");
  });

  it("Twilio: signed with the vector's auth token over the function's public URL (query string included)", async () => {
    const raw = form({ CallSid: "CA1234567890ABCDE", Caller: "+12349013030", Digits: "1234", From: "+12349013030", To: "+18005551212", CallStatus: `completed-${unique("v")}` });
    const sig = await signTwilio(publicUrl("webhook-twilio", "?foo=1&bar=2"), new URLSearchParams(raw), "12345");
    const res = await withEnv({ TWILIO_AUTH_TOKEN: "12345" }, () =>
      post("webhook-twilio", raw, { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": sig }, "?foo=1&bar=2"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/xml");
    const wrongQuery = await withEnv({ TWILIO_AUTH_TOKEN: "12345" }, () =>
      post("webhook-twilio", raw, { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": sig }, "?foo=1&bar=3"));
    expect(wrongQuery.status).toBe(401);
  });
});

describe("answer-only and odd deliveries", () => {
  it("Vapi assistant-request and tool-calls are answered {} and not stored", async () => {
    for (const type of ["assistant-request", "tool-calls"]) {
      const callId = unique("call");
      const raw = JSON.stringify({ message: { type, call: { id: callId } } });
      const res = await post("webhook-vapi", raw, { "content-type": "application/json", ...(await signVapi(raw, { secret: secret("VAPI_WEBHOOK_SECRET") })) });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({});
      const [r] = await db()`select count(*)::int as n from public.webhook_events where provider = 'vapi' and event_id like ${callId + "%"}`;
      expect(r.n).toBe(0);
    }
  });

  it("a body Postgres could not store (NUL, lone surrogates) is stored cleaned, never a 5xx", async () => {
    const id = `evt_${unique("nul")}`;
    const raw = JSON.stringify({ type: "label_changed", eventId: id, note: "a\u0000b\ud800c", "k\u0000": 1 });
    const res = await post("webhook-salesforge", raw, { "content-type": "application/json" }, `?token=${secret("SALESFORGE_WEBHOOK_TOKEN")}`);
    expect(res.status).toBe(200);
    const [row] = await db()`select payload from public.webhook_events where provider = 'salesforge' and event_id = ${id}`;
    expect(row.payload.note).toBe("a\uFFFDb\uFFFDc");
    expect(row.payload["k\uFFFD"]).toBe(1);
  });

  it("odd URLs (NUL in the query, broken escapes in the token path) are answered, never a 5xx", async () => {
    const id = `evt_${unique("q")}`;
    const raw = JSON.stringify({ type: "label_changed", eventId: id });
    const ok = await post("webhook-salesforge", raw, { "content-type": "application/json" }, `?token=${secret("SALESFORGE_WEBHOOK_TOKEN")}&send_id=%00x`);
    expect(ok.status).toBe(200);
    const [row] = await db()`select payload from public.webhook_events where provider = 'salesforge' and event_id = ${id}`;
    expect(row.payload._query).toEqual({ send_id: "\uFFFDx" });
    expect(JSON.stringify(row.payload)).not.toContain(secret("SALESFORGE_WEBHOOK_TOKEN"));
    for (const rest of ["/%E0%A4%A", "/%ZZ", "/%00", "?token=%"]) {
      const res = await post("webhook-salesforge", raw, { "content-type": "application/json" }, rest);
      expect(res.status, rest).toBe(401);
    }
  });

  it("JSON nested deeper than any provider sends is a 400", async () => {
    const raw = `{"type":"email_opened","eventId":"deep","x":${"[".repeat(200)}${"]".repeat(200)}}`;
    const res = await post("webhook-salesforge", raw, { "content-type": "application/json" }, `?token=${secret("SALESFORGE_WEBHOOK_TOKEN")}`);
    expect(res.status).toBe(400);
  });
});

describe("end to end: stored once, applied once", () => {
  it("a duplicated inbound text becomes one reply, its event processed exactly once by flow-inbound", async () => {
    const sid = `SM${unique("in").replace(/[^a-z0-9]/gi, "")}`;
    const raw = form({ AccountSid: "AC1", ApiVersion: "2010-04-01", Body: "Sounds interesting, call me Tuesday", From: "+61499000111", MessageSid: sid, NumMedia: "0", SmsMessageSid: sid, SmsSid: sid, SmsStatus: "received", To: "+61400000002" });
    const headers = { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": await signTwilio(publicUrl("webhook-twilio"), new URLSearchParams(raw), secret("TWILIO_AUTH_TOKEN")) };
    const answers = await Promise.all([post("webhook-twilio", raw, headers), post("webhook-twilio", raw, headers), post("webhook-twilio", raw, headers)]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers.every((a) => a.body === "<Response/>")).toBe(true);
    const row = await until("the text applied by flow-inbound", async () => {
      const [r] = await db()`select processed_at, attempts, error from public.webhook_events where provider = 'twilio' and event_id = ${`${sid}:received`}`;
      return r?.processed_at ? r : false;
    });
    expect(row).toMatchObject({ attempts: 1, error: null });
    // (the replies classifier may already have classified it: its class is not asserted here)
    const replies = await db()`select body, channel, from_address from public.replies where provider = 'twilio' and provider_message_id = ${sid}`;
    expect(replies).toEqual([{ body: "Sounds interesting, call me Tuesday", channel: "sms", from_address: "+61499000111" }]);
  });
});
