// The one receive path every provider webhook function shares (product.md §7, providers.md §0):
//
//   raw body (≤ 256 KB, else 413) → the provider's secret configured? (else 503) → signature over
//   the RAW bytes and the PUBLIC url (else 401) → parse JSON / form (else 400) → the provider's
//   event id → INSERT … ON CONFLICT DO NOTHING into webhook_events and, only when inserted, enqueue
//   'flow.inbound' in the same statement (grouped with the deliveries arriving at the same moment:
//   event-store.ts) → 200 once committed (a duplicate is also a 200).
//
// Nothing is stored for a request that fails any step, and nothing a caller on the internet sends
// can make it answer 5xx: bodies are size-capped, depth-capped and scrubbed of what Postgres
// refuses (NUL, lone surrogates) before they reach the database. A 5xx means our side failed
// (database down), which is exactly when the provider should retry.
//
// Only an event without an id of its own needs the body's hash, so it is computed on demand; a
// JSON body that escapes no NUL or surrogate is stored as parsed, without a scrubbed copy.
//
// Processing is asynchronous (shared/engines/inbound.ts via flow-inbound); the outbox row is
// published in the background right after the answer (coalesced during a flood), and the outbox
// publisher's cron is the backstop, so the provider is answered as soon as the event is durable.
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { readEnv } from "../config/env.ts";
import { db } from "../db/client.ts";
import { publishSoon } from "../flows/outbox.ts";
import { storeWebhookEvent, type JsonObject } from "./event-store.ts";
import { createFunctionApp, type App, type AppEnv } from "../http/app.ts";
import { AppError } from "../http/errors.ts";
import { errorResponses, jsonContent } from "../schemas/common.ts";
import { publicUrlForRequest } from "./public-url.ts";
import {
  sha256,
  toHex,
  verifyCalCom,
  verifyCalendly,
  verifyPostGridJwt,
  verifySecretToken,
  verifyTwilio,
  verifyVapi,
  type VerifyResult,
} from "./verify.ts";

/** Largest webhook body accepted; anything bigger is a 413 and stored nothing. */
export const WEBHOOK_MAX_BODY_BYTES = 256 * 1024;
/** Deepest JSON nesting stored (Postgres' jsonb parser has its own stack limit). */
export const WEBHOOK_MAX_DEPTH = 64;
export { INBOUND_TOPIC } from "./event-store.ts";

export type WebhookProvider = "salesforge" | "twilio" | "clicksend" | "vapi" | "unipile" | "postgrid" | "calcom" | "calendly";

export type { JsonObject } from "./event-store.ts";

/** The hex SHA-256 of the raw body, computed on first use (most events carry an id of their own). */
export type RawHash = () => Promise<string>;

/** What a provider's delivery is: a stored event, or one we only acknowledge. */
export type Identified =
  | { eventId: string; eventType: string }
  | { ignore: true; eventType: string };

type Auth = "twilio" | "url-token" | "unipile-header" | "vapi" | "postgrid" | "calcom" | "calendly";

export interface WebhookSpec {
  provider: WebhookProvider;
  functionName: string;
  title: string;
  description: string;
  /** The environment variable holding the provider's secret; unset → 503, nothing stored. */
  secretEnv: string;
  auth: Auth;
  /** How the verified body is read: JSON only, JSON or form, or the payload of a verified JWT. */
  body: "json" | "json-or-form" | "jwt";
  /** The provider's own event id and our event type; null when the body is not one of its events. */
  identify(payload: JsonObject, rawHash: RawHash): Identified | null | Promise<Identified | null>;
  /** The 200 body the provider expects (default {"received": true}). */
  respond?(c: Context<AppEnv>, result: { stored: boolean; duplicate: boolean; eventType: string }): Response;
}

// ---------------------------------------------------------------------------------------------
// Small pure helpers (exported for tests)
// ---------------------------------------------------------------------------------------------

/** A non-empty trimmed string (numbers as text), else undefined. */
export function str(value: unknown): string | undefined {
  if (typeof value === "string") {
    const t = value.trim();
    return t ? t : undefined;
  }
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return undefined;
}

/** The value as a plain object, else undefined. */
export function obj(value: unknown): JsonObject | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as JsonObject) : undefined;
}

/** Form fields as an object; a repeated name becomes an array of its values. */
export function formToObject(params: URLSearchParams): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of params) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Text Postgres accepts: no NUL (text and jsonb refuse it), no lone UTF-16 surrogates. */
export function pgSafeText(text: string): string {
  return text.replace(/\u0000/g, "\uFFFD").replace(LONE_SURROGATE, "\uFFFD");
}

/**
 * A copy of parsed JSON that Postgres' jsonb will accept, or null when it nests deeper than
 * WEBHOOK_MAX_DEPTH (treated as malformed: no provider sends that).
 */
export function pgSafeJson(value: unknown, depth = 0): unknown {
  if (depth > WEBHOOK_MAX_DEPTH) throw new RangeError("too deep");
  if (typeof value === "string") return pgSafeText(value);
  if (Array.isArray(value)) return value.map((v) => pgSafeJson(v, depth + 1));
  if (value !== null && typeof value === "object") {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) out[pgSafeText(k)] = pgSafeJson(v, depth + 1);
    return out;
  }
  return value;
}

/** At most this many opening brackets in all: then no nesting can pass the cap (a native scan). */
function fewBrackets(raw: string): boolean {
  let n = 0;
  for (const ch of ["{", "["]) {
    for (let i = raw.indexOf(ch); i !== -1; i = raw.indexOf(ch, i + 1)) if (++n > WEBHOOK_MAX_DEPTH) return false;
  }
  return true;
}

/** Cheap pre-check before JSON.parse: bracket nesting deeper than the cap (ignores strings' contents). */
function nestsTooDeep(raw: string): boolean {
  if (fewBrackets(raw)) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const ch = raw.charCodeAt(i);
    if (inString) {
      if (ch === 92 /* \ */) i++;
      else if (ch === 34 /* " */) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 123 || ch === 91) {
      if (++depth > WEBHOOK_MAX_DEPTH) return true;
    } else if (ch === 125 || ch === 93) depth--;
  }
  return false;
}

/**
 * A JSON body whose text escapes no NUL and no surrogate can only parse to strings Postgres
 * accepts (raw control characters are not valid JSON, and decoded bytes never hold a lone
 * surrogate): storing it needs no scrubbed copy. Form and JWT bodies are always scrubbed.
 */
const UNSAFE_JSON_ESCAPE = /\\u(?:0000|[dD][89a-fA-F])/;
function needsNoScrub(raw: string, from: BodyKind): boolean {
  return from === "json" && !UNSAFE_JSON_ESCAPE.test(raw);
}

/** The body as a JSON object, or null when it is not one (malformed, an array, too deep). */
export function parseJsonObject(raw: string): JsonObject | null {
  if (nestsTooDeep(raw)) return null;
  try {
    const v = JSON.parse(raw);
    return obj(v) ?? null;
  } catch {
    return null;
  }
}

/** A form body as an object, or null when it has no fields at all. */
export function parseForm(raw: string): JsonObject | null {
  if (!raw.trim() || raw.trimStart().startsWith("{") || raw.trimStart().startsWith("[")) return null;
  try {
    const o = formToObject(new URLSearchParams(raw));
    return Object.keys(o).length > 0 ? o : null;
  } catch {
    return null;
  }
}

export async function sha256Hex(text: string): Promise<string> {
  return toHex(await sha256(text));
}

/** Ids longer than the column allows are stored by their hash (one provider id ↔ one stored id). */
export async function storableEventId(id: string): Promise<string> {
  const safe = pgSafeText(id);
  return safe.length <= 200 ? safe : `sha256:${await sha256Hex(safe)}`;
}

// ---------------------------------------------------------------------------------------------
// Each provider's event identity (providers.md §3-§8, §13, §14)
// ---------------------------------------------------------------------------------------------

/** Twilio: MessageSid + status (status callbacks), MessageSid:received (inbound SMS), CallSid + CallStatus. */
export function identifyTwilio(p: JsonObject): Identified | null {
  const sid = str(p.MessageSid) ?? str(p.SmsSid) ?? str(p.SmsMessageSid);
  if (sid) {
    const messageStatus = str(p.MessageStatus);
    const smsStatus = str(p.SmsStatus);
    const inbound = smsStatus === "received" || (!messageStatus && typeof p.Body === "string");
    if (inbound) return { eventId: `${sid}:received`, eventType: "sms.inbound" };
    const status = messageStatus ?? smsStatus;
    return status ? { eventId: `${sid}:${status}`, eventType: "sms.status" } : null;
  }
  const callSid = str(p.CallSid);
  const callStatus = str(p.CallStatus);
  if (callSid && callStatus) return { eventId: `${callSid}:${callStatus}`, eventType: "call.status" };
  return null;
}

/** ClickSend: message_id + status (delivery receipts) or the inbound message's message_id. */
export function identifyClickSend(p: JsonObject): Identified | null {
  const id = str(p.message_id);
  if (!id) return null;
  const text = typeof p.body === "string" ? p.body : typeof p.message === "string" ? p.message : undefined;
  const from = str(p.from) ?? str(p.sms) ?? str(p.originalsenderid);
  const status = str(p.status);
  if (text !== undefined && from && !status) return { eventId: `inbound:${id}`, eventType: "sms.inbound" };
  if (status) return { eventId: `receipt:${id}:${status}`, eventType: "sms.receipt" };
  return null;
}

/** Vapi server messages that ask us for an answer we don't give (no inbound assistants, no tools). */
const VAPI_ANSWER_ONLY = new Set(["assistant-request", "tool-calls", "transfer-destination-request", "knowledge-base-request"]);

/** Vapi: call.id + message.type (+ status for status-update). */
export async function identifyVapi(p: JsonObject, rawHash: RawHash): Promise<Identified | null> {
  const message = obj(p.message);
  const type = str(message?.type);
  if (!message || !type) return null;
  if (VAPI_ANSWER_ONLY.has(type)) return { ignore: true, eventType: type };
  const callId = str(obj(message.call)?.id);
  if (!callId) return { eventId: `${type}:${await rawHash()}`, eventType: type };
  if (type === "status-update") return { eventId: `${callId}:${type}:${str(message.status) ?? "unknown"}`, eventType: type };
  if (type === "end-of-call-report") return { eventId: `${callId}:${type}`, eventType: type };
  // conversation-update, transcript, … repeat within a call: one stored event per distinct body
  return { eventId: `${callId}:${type}:${(await rawHash()).slice(0, 32)}`, eventType: type };
}

/** Unipile: event + message_id (messaging), new_relation + account + member, account_status by body. */
export async function identifyUnipile(p: JsonObject, rawHash: RawHash): Promise<Identified | null> {
  if (obj(p.AccountStatus)) return { eventId: `account_status:${await rawHash()}`, eventType: "account_status" };
  const event = str(p.event);
  if (!event) return null;
  const messageId = str(p.message_id);
  if (event.startsWith("message_")) return messageId ? { eventId: `${event}:${messageId}`, eventType: event } : null;
  if (event === "new_relation") {
    const member = str(p.user_provider_id) ?? str(p.user_public_identifier);
    return member ? { eventId: `new_relation:${str(p.account_id) ?? ""}:${member}`, eventType: event } : null;
  }
  return { eventId: `${event}:${await rawHash()}`, eventType: event };
}

/** PostGrid: the event's own id. */
export function identifyPostGrid(p: JsonObject): Identified | null {
  const id = str(p.id);
  const type = str(p.type);
  return id && type ? { eventId: id, eventType: type } : null;
}

/** Salesforge: the event's own id, else a hash of the type and the ids it names. */
export async function identifySalesforge(p: JsonObject, rawHash: RawHash): Promise<Identified | null> {
  const type = str(p.type) ?? str(p.event) ?? str(p.eventType);
  if (!type) return null;
  const own = str(p.eventId) ?? str(p.event_id) ?? str(p.id);
  if (own) return { eventId: own, eventType: type };
  const contact = obj(p.contact);
  const ids = [p.emailId, p.threadId, p.mailboxId, p.sequenceId, contact?.id, contact?.email, p.email, p.value]
    .map((v) => str(v) ?? "")
    .join("|");
  // a body naming no ids at all is identified by its bytes
  return { eventId: `${type}:${ids.replace(/\|/g, "") ? await sha256Hex(`${type}|${ids}`) : await rawHash()}`, eventType: type };
}

/** Cal.com: payload.uid + triggerEvent + payload.startTime (no replay protection of its own). */
export async function identifyCalCom(p: JsonObject, rawHash: RawHash): Promise<Identified | null> {
  const trigger = str(p.triggerEvent);
  if (!trigger) return null;
  const payload = obj(p.payload);
  const uid = str(payload?.uid);
  if (!uid) return { eventId: `${trigger}:${await rawHash()}`, eventType: trigger };
  return { eventId: `${uid}:${trigger}:${str(payload?.startTime) ?? ""}`, eventType: trigger };
}

/** Calendly: payload.uri (the invitee) + event. */
export async function identifyCalendly(p: JsonObject, rawHash: RawHash): Promise<Identified | null> {
  const event = str(p.event);
  if (!event) return null;
  const uri = str(obj(p.payload)?.uri);
  return { eventId: uri ? `${uri}:${event}` : `${event}:${await rawHash()}`, eventType: event };
}

const TWIML_EMPTY = "<Response/>";

/** The eight provider webhooks. */
export const WEBHOOKS: Record<WebhookProvider, WebhookSpec> = {
  twilio: {
    provider: "twilio", functionName: "webhook-twilio", title: "Twilio webhook",
    description: "Twilio SMS status callbacks and inbound SMS (form-encoded, X-Twilio-Signature over the public URL). Answers empty TwiML.",
    secretEnv: "TWILIO_AUTH_TOKEN", auth: "twilio", body: "json-or-form", identify: identifyTwilio,
    respond: (c) => c.body(TWIML_EMPTY, 200, { "content-type": "text/xml; charset=utf-8" }),
  },
  clicksend: {
    provider: "clicksend", functionName: "webhook-clicksend", title: "ClickSend webhook",
    description: "ClickSend delivery receipts and inbound SMS (form or JSON). ClickSend does not sign: the secret token rides in the URL (/{token} or ?token=).",
    secretEnv: "CLICKSEND_WEBHOOK_TOKEN", auth: "url-token", body: "json-or-form", identify: identifyClickSend,
  },
  vapi: {
    provider: "vapi", functionName: "webhook-vapi", title: "Vapi webhook",
    description: "Vapi server messages (status-update, end-of-call-report), HMAC credential: x-signature = hex HMAC-SHA256 over \"{x-timestamp}.{body}\", 5-minute tolerance.",
    secretEnv: "VAPI_WEBHOOK_SECRET", auth: "vapi", body: "json", identify: identifyVapi,
    respond: (c) => c.json({}, 200),
  },
  unipile: {
    provider: "unipile", functionName: "webhook-unipile", title: "Unipile webhook",
    description: "Unipile (LinkedIn) messaging, new_relation and account_status events; authenticated by the Unipile-Auth header set on the webhook.",
    secretEnv: "UNIPILE_WEBHOOK_SECRET", auth: "unipile-header", body: "json", identify: identifyUnipile,
  },
  postgrid: {
    provider: "postgrid", functionName: "webhook-postgrid", title: "PostGrid webhook",
    description: "PostGrid letter/postcard events; the body is an HS256 JWT signed with the webhook secret.",
    secretEnv: "POSTGRID_WEBHOOK_SECRET", auth: "postgrid", body: "jwt", identify: identifyPostGrid,
  },
  salesforge: {
    provider: "salesforge", functionName: "webhook-salesforge", title: "Salesforge webhook",
    description: "Salesforge email events (email_sent, email_opened, email_replied, email_bounced, contact_unsubscribed, dnc_added, …). Salesforge does not sign: the secret token rides in the URL (/{token} or ?token=).",
    secretEnv: "SALESFORGE_WEBHOOK_TOKEN", auth: "url-token", body: "json", identify: identifySalesforge,
  },
  calcom: {
    provider: "calcom", functionName: "webhook-calcom", title: "Cal.com webhook",
    description: "Cal.com booking events; X-Cal-Signature-256 = hex HMAC-SHA256 of the raw body.",
    secretEnv: "CALCOM_WEBHOOK_SECRET", auth: "calcom", body: "json-or-form", identify: identifyCalCom,
  },
  calendly: {
    provider: "calendly", functionName: "webhook-calendly", title: "Calendly webhook",
    description: "Calendly invitee events; Calendly-Webhook-Signature t=…,v1=… (HMAC-SHA256 of \"t.body\"), 3-minute tolerance.",
    secretEnv: "CALENDLY_SIGNING_KEY", auth: "calendly", body: "json", identify: identifyCalendly,
  },
};

// ---------------------------------------------------------------------------------------------
// Storing: shared/webhooks/event-store.ts (one statement per group of concurrent deliveries)
// ---------------------------------------------------------------------------------------------

export { storeWebhookEvent, type StoredEvent } from "./event-store.ts";

// ---------------------------------------------------------------------------------------------
// Publishing in the background, coalesced: one publisher run at a time per isolate
// ---------------------------------------------------------------------------------------------

let publishing: Promise<void> | null = null;
let publishAgain = false;

/** Between two background publisher runs while deliveries keep arriving (a flood is published in batches). */
const PUBLISH_GAP_MS = 250;

/** Runs `work` past the response: EdgeRuntime.waitUntil on Supabase, a floating promise elsewhere. */
function inBackground(work: Promise<unknown>): void {
  const rt = (globalThis as { EdgeRuntime?: { waitUntil?(p: Promise<unknown>): void } }).EdgeRuntime;
  rt?.waitUntil?.(work);
}

/**
 * Publishes the outbox right after the answer. Coalesced per isolate: one publisher run at a time,
 * and while deliveries keep arriving, one more run every PUBLISH_GAP_MS rather than one each.
 */
export function publishInBackground(): void {
  if (publishing) {
    publishAgain = true;
    return;
  }
  publishing = (async () => {
    do {
      publishAgain = false;
      await publishSoon(db()); // best effort: logs and leaves the rows to the cron tick on failure
      if (publishAgain) await new Promise((r) => setTimeout(r, PUBLISH_GAP_MS));
    } while (publishAgain);
  })().finally(() => {
    publishing = null;
  });
  inBackground(publishing);
}

/** Resolves when no background publish is running (tests). */
export async function backgroundPublishSettled(): Promise<void> {
  while (publishing) await publishing;
}

// ---------------------------------------------------------------------------------------------
// The pipeline
// ---------------------------------------------------------------------------------------------

function unauthorized(reason: string): AppError {
  return new AppError("unauthorized", `webhook signature ${reason}`);
}

function malformed(message: string): AppError {
  return new AppError("bad_request", message);
}

async function verifyDelivery(spec: WebhookSpec, c: Context<AppEnv>, raw: string, secret: string, publicUrl: string):
  Promise<VerifyResult & { jwtPayload?: unknown }> {
  const headers = c.req.raw.headers;
  switch (spec.auth) {
    case "twilio": {
      const json = (headers.get("content-type") ?? "").toLowerCase().includes("application/json");
      const payload = json ? { jsonBody: raw } : new URLSearchParams(raw);
      return verifyTwilio(publicUrl, payload, headers.get("x-twilio-signature"), secret);
    }
    case "url-token": {
      const presented = c.req.param("token") ?? new URL(c.req.url).searchParams.get("token");
      return verifySecretToken(presented, secret);
    }
    case "unipile-header":
      return verifySecretToken(headers.get("unipile-auth"), secret);
    case "vapi":
      return verifyVapi(raw, headers, { secret }, new Date(), undefined, { method: c.req.method, url: publicUrl });
    case "postgrid": {
      const r = await verifyPostGridJwt(raw, secret);
      return r.ok ? { ok: true, jwtPayload: r.payload } : r;
    }
    case "calcom":
      return verifyCalCom(raw, headers.get("x-cal-signature-256"), secret);
    case "calendly":
      return verifyCalendly(raw, headers.get("calendly-webhook-signature"), secret);
  }
}

type BodyKind = "json" | "form" | "jwt";

function parseVerified(spec: WebhookSpec, raw: string, contentType: string, jwtPayload: unknown): { object: JsonObject; from: BodyKind } | null {
  const as = (object: JsonObject | null | undefined, from: BodyKind) => (object ? { object, from } : null);
  if (spec.body === "jwt") return as(obj(jwtPayload), "jwt");
  const json = parseJsonObject(raw);
  if (json || spec.body === "json") return as(json, "json");
  // form bodies (Twilio, ClickSend's default, a Cal.com custom template), whatever Content-Type says
  if (contentType.includes("json")) return null;
  return as(parseForm(raw), "form");
}

/** The query string's parameters other than a URL secret, kept with the payload (a send id we put there). */
function queryExtras(url: string): JsonObject | undefined {
  const params = new URL(url).searchParams;
  params.delete("token");
  const extras = formToObject(params);
  return Object.keys(extras).length ? extras : undefined;
}

/** One webhook delivery through the whole pipeline. */
export async function receiveWebhook(spec: WebhookSpec, c: Context<AppEnv>): Promise<Response> {
  // 1. the raw body (the body-limit middleware has already refused anything over the cap)
  const raw = await c.req.text();

  // 2. our configuration: a missing secret must neither accept nor silently reject deliveries
  const secret = readEnv(spec.secretEnv)?.trim();
  if (!secret) throw new AppError("service_unavailable", `${spec.provider} webhook is not configured (${spec.secretEnv})`);
  let publicUrl: string;
  try {
    publicUrl = publicUrlForRequest(c.req.raw, spec.functionName);
  } catch (err) {
    throw new AppError("service_unavailable", err instanceof Error ? err.message : "public URL not configured");
  }

  // 3. the signature over the raw bytes
  const verified = await verifyDelivery(spec, c, raw, secret, publicUrl);
  if (!verified.ok) throw unauthorized(verified.reason);

  // 4. parse and identify
  const parsed = parseVerified(spec, raw, (c.req.header("content-type") ?? "").toLowerCase(), verified.jwtPayload);
  if (!parsed) throw malformed(`the ${spec.provider} webhook body is not a ${spec.body === "jwt" ? "JWT event" : "JSON or form"} object`);
  let payload: JsonObject;
  if (needsNoScrub(raw, parsed.from)) {
    payload = parsed.object; // parseJsonObject already refused bodies nested too deeply
  } else {
    try {
      payload = pgSafeJson(parsed.object) as JsonObject;
    } catch {
      throw malformed("the webhook body nests too deeply");
    }
  }
  // the body's hash identifies only events that carry no id of their own: computed when asked
  let hashed: Promise<string> | undefined;
  const identity = await spec.identify(payload, () => (hashed ??= sha256Hex(raw)));
  if (!identity) throw malformed(`the body is not a ${spec.provider} event this endpoint knows (no event type or id)`);
  if ("ignore" in identity) {
    return spec.respond?.(c, { stored: false, duplicate: false, eventType: identity.eventType }) ?? c.json({ received: true }, 200);
  }
  const extras = queryExtras(c.req.url);
  if (extras && spec.auth !== "postgrid") payload = { ...payload, _query: pgSafeJson(extras) };

  // 5. store once; a new row queues its processing in the same transaction
  const stored = await storeWebhookEvent({
    provider: spec.provider,
    eventId: await storableEventId(identity.eventId),
    eventType: pgSafeText(identity.eventType).slice(0, 200),
    payload,
  });
  if (stored.inserted) publishInBackground();
  c.var.log.info("webhook", { provider: spec.provider, type: identity.eventType, stored: stored.inserted, event: stored.id || undefined });
  return spec.respond?.(c, { stored: stored.inserted, duplicate: !stored.inserted, eventType: identity.eventType })
    ?? c.json({ received: true, duplicate: !stored.inserted }, 200);
}

const Received = z.object({ received: z.boolean(), duplicate: z.boolean().optional() }).openapi("WebhookReceived");

/**
 * The Hono app of one provider's webhook function: POST / (and POST /{token} for providers whose
 * secret rides in the URL path).
 */
export function createWebhookFunction(spec: WebhookSpec): App {
  const app = createFunctionApp(spec.functionName, { title: spec.title, description: spec.description });
  app.use("*", bodyLimit({
    maxSize: WEBHOOK_MAX_BODY_BYTES,
    onError: () => {
      throw new AppError("payload_too_large", `a webhook body is at most ${WEBHOOK_MAX_BODY_BYTES} bytes`);
    },
  }));
  const responses = {
    200: jsonContent(Received, "Stored (or a duplicate of an event already stored); processed asynchronously"),
    ...errorResponses(400, 401, 413, 503),
  };
  const summary = `Receive a ${spec.title.replace(/ webhook$/, "")} event (signature verified; stored once)`;
  app.openapi(createRoute({ method: "post", path: "/", summary, description: spec.description, responses }),
    (c) => receiveWebhook(spec, c) as never);
  if (spec.auth === "url-token") {
    app.openapi(
      createRoute({
        method: "post", path: "/{token}", summary: `${summary}, secret token in the path`, description: spec.description,
        request: { params: z.object({ token: z.string().max(500) }) },
        responses,
      }),
      (c) => receiveWebhook(spec, c) as never,
    );
  }
  return app;
}
