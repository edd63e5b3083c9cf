// Twilio Programmable Messaging through the official `twilio` SDK (6.2.0), and the SMS channel adapter
// built on it. The SDK builds the requests (form-encoded POST /2010-04-01/Accounts/{Sid}/Messages.json,
// Basic auth) and parses the answers; the HTTP itself goes through a small fetch-based `httpClient`
// (the SDK's supported `ClientOpts.httpClient` hook) so that:
//  - TWILIO_BASE_URL can point the SDK at a sandbox (the hook rewrites https://api.twilio.com to it);
//  - it runs on web-standard fetch under Deno and Node (no axios/https.Agent);
//  - every HTTP attempt gets a timeout, retries (429/5xx) and one provider_calls row, as providerFetch
//    does for the JSON providers (the SDK does its own HTTP, so providerFetch can't be used here).
// Twilio has no idempotency key and no custom field on a message: findByReference answers undefined
// ("can't tell"); listMessages is there for a person or a job that wants to look by number and time.
// Not done here: a shared rate limit. Twilio queues per sender and answers 20429/429 when the
// account's REST concurrency is exceeded; that 429 is retried with backoff.
import BaseTwilio from "twilio/lib/base/BaseTwilio.js";
import TwilioApi from "twilio/lib/rest/Api.js";
import type RequestClient from "twilio/lib/base/RequestClient.js";

/**
 * The official SDK's REST client with only its Api domain (Programmable Messaging and Voice live
 * there). The SDK's default export wires every Twilio product into one class and bundles to 8 MB,
 * a cold-start cost every SMS dispatch would pay; this is the same request, auth and error code.
 */
class TwilioMessagingClient extends BaseTwilio.Client {
  #api?: TwilioApi;
  get api(): TwilioApi {
    return this.#api ??= new TwilioApi(this as never);
  }
  get messages() {
    return this.api.v2010.account.messages;
  }
}
import { z } from "zod";
import { readEnv } from "../config/env.ts";
import type { ChannelAdapter, SendRequest, SendResult, SendStatus } from "../channels/types.ts";
import { db } from "../db/client.ts";
import { log } from "../observability/log.ts";
import {
  insertProviderCall,
  isLocalUrl,
  parseRetryAfter,
  ProviderError,
  truncate,
  type ProviderCall,
  type ProviderCallContext,
  type RecordCall,
  type RetrySpec,
  type SqlTag,
} from "./provider-http.ts";

export const TWILIO_DEFAULT_BASE_URL = "https://api.twilio.com";
/** Used against a local sandbox when no credentials are set (the sandbox's defaults). */
export const TWILIO_SANDBOX_ACCOUNT_SID = "AC00000000000000000000000000000000";
export const TWILIO_SANDBOX_AUTH_TOKEN = "sandbox";

/** Twilio error codes the dispatcher cares about (https://www.twilio.com/docs/errors/<code>). */
export const TWILIO_ERRORS = {
  authenticate: 20003,
  tooManyRequests: 20429,
  invalidTo: 21211,
  regionNotEnabled: 21408,
  unsubscribedRecipient: 21610,
  cannotRoute: 21612,
  notMobile: 21614,
} as const;

const NON_RETRYABLE_CODES = new Set<number>([
  TWILIO_ERRORS.authenticate, TWILIO_ERRORS.invalidTo, TWILIO_ERRORS.regionNotEnabled,
  TWILIO_ERRORS.unsubscribedRecipient, TWILIO_ERRORS.cannotRoute, TWILIO_ERRORS.notMobile,
]);

export interface TwilioConfig {
  accountSid?: string;
  authToken?: string;
  /** Where the API lives (default https://api.twilio.com); anything else replaces that origin. */
  baseUrl?: string;
  /** Twilio edge/region (e.g. "sydney"/"au1"); only used with the default base URL. */
  edge?: string;
  region?: string;
  retry?: RetrySpec;
  /** Per HTTP attempt (default 15 s). */
  timeoutMs?: number;
  record?: RecordCall;
  sql?: SqlTag;
  fetch?: typeof fetch;
}

export interface TwilioMessage {
  sid: string;
  /** queued, sending, sent, delivered, undelivered, failed, accepted, scheduled, … */
  status: string;
  to: string;
  from: string | null;
  body: string | null;
  numSegments: number | null;
  /** Twilio reports price as a negative amount (a charge), null until known. */
  price: number | null;
  priceUnit: string | null;
  errorCode: number | null;
  errorMessage: string | null;
  dateCreated: string | null;
  dateSent: string | null;
  /** What the price comes to in US cents (0 when unknown or not in USD). */
  costCents: number;
}

export interface TwilioSendInput {
  to: string;
  /** A number or registered alphanumeric sender id; or messagingServiceSid. */
  from?: string | null;
  messagingServiceSid?: string | null;
  body: string;
  statusCallback?: string | null;
}

export interface TwilioListInput {
  to: string;
  from?: string | null;
  /** Only messages sent on or after this time. */
  sentAfter?: Date;
  /** At most this many (default 50). */
  limit?: number;
}

export interface TwilioClient {
  readonly accountSid: string | null;
  sendSms(input: TwilioSendInput, ctx?: ProviderCallContext): Promise<TwilioMessage>;
  fetchMessage(sid: string, ctx?: ProviderCallContext): Promise<TwilioMessage>;
  listMessages(input: TwilioListInput, ctx?: ProviderCallContext): Promise<TwilioMessage[]>;
}

// ---------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------

const dateString = z.unknown().optional().transform((v) =>
  v instanceof Date ? (Number.isNaN(v.getTime()) ? null : v.toISOString()) : typeof v === "string" && v ? v : null
);
const optString = z.unknown().optional().transform((v) => (typeof v === "string" && v !== "" ? v : null));
const optNumber = z.unknown().optional().transform((v) => {
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
});

/** Twilio's price ("-0.00750", USD) in US cents; 0 when unknown or in another currency. */
export function twilioPriceCents(price: number | null, unit: string | null): number {
  if (price === null || (unit && unit.toUpperCase() !== "USD")) return 0;
  return Math.round(Math.abs(price) * 100 * 10_000) / 10_000;
}

/** The SDK's MessageInstance (camelCase, dates parsed) → our TwilioMessage. */
const MessageShape = z.object({
  sid: z.string().min(1),
  status: z.string().min(1),
  to: z.string(),
  from: optString,
  body: optString,
  numSegments: optNumber,
  price: optNumber,
  priceUnit: optString,
  errorCode: optNumber,
  errorMessage: optString,
  dateCreated: dateString,
  dateSent: dateString,
}).transform((m): TwilioMessage => ({ ...m, costCents: twilioPriceCents(m.price, m.priceUnit) }));

function toMessage(raw: unknown, operation: string): TwilioMessage {
  const parsed = MessageShape.safeParse(raw);
  if (!parsed.success) {
    throw new ProviderError({
      provider: "twilio", operation, code: "malformed", retryable: false,
      message: `unexpected message resource: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    });
  }
  return parsed.data;
}

/** The Twilio error code carried by a ProviderError from this client (21610, 21211, …), if any. */
export function twilioErrorCode(err: unknown): number | undefined {
  const cause = (err as { cause?: unknown } | null)?.cause as { code?: unknown } | undefined;
  return typeof cause?.code === "number" ? cause.code : undefined;
}

/** Any error out of the SDK → ProviderError. RestException carries status, code and Twilio's message. */
function mapError(err: unknown, operation: string, retryAfterMs: number | undefined): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = err as { status?: unknown; code?: unknown; message?: unknown } | null;
  if (e && typeof e.status === "number") {
    const status = e.status;
    const code = typeof e.code === "number" ? e.code : undefined;
    const detail = `HTTP ${status}${code ? ` / Twilio ${code}` : ""}: ${truncate(String(e.message ?? ""))}`;
    const rateLimited = status === 429 || code === TWILIO_ERRORS.tooManyRequests;
    const retryable = rateLimited || (status >= 500 && !(code !== undefined && NON_RETRYABLE_CODES.has(code)));
    return new ProviderError({
      provider: "twilio", operation, code: "http", status, retryable,
      retryAfterMs: rateLimited ? retryAfterMs : undefined, message: detail, cause: err,
    });
  }
  // The SDK JSON.parses a 2xx body itself: a broken body surfaces as a SyntaxError.
  if (err instanceof SyntaxError) {
    return new ProviderError({ provider: "twilio", operation, code: "malformed", retryable: false, message: `body is not JSON: ${err.message}`, cause: err });
  }
  // The SDK validates parameters itself ("Required parameter params['to'] missing.").
  return new ProviderError({
    provider: "twilio", operation, code: "invalid_request", retryable: false,
    message: err instanceof Error ? err.message : String(err), cause: err,
  });
}

// ---------------------------------------------------------------------------------------------
// The fetch-based httpClient the SDK calls
// ---------------------------------------------------------------------------------------------

/** What the SDK hands its httpClient (twilio/lib/base/RequestClient RequestOptions). */
interface SdkRequest {
  method: string;
  uri: string;
  username?: string;
  password?: string;
  headers?: Record<string, string>;
  params?: Record<string, unknown>;
  data?: Record<string, unknown>;
  timeout?: number;
}
interface SdkResponse {
  statusCode: number;
  body: string;
  headers: Record<string, string>;
}

function base64Utf8(s: string): string {
  let bin = "";
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin);
}

function formOf(data: Record<string, unknown> | undefined): URLSearchParams {
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(data ?? {})) {
    for (const item of Array.isArray(v) ? v : [v]) {
      if (item !== undefined && item !== null) form.append(k, String(item));
    }
  }
  return form;
}

/** "messages.create", "messages.list", "messages.fetch" for the provider_calls row. */
function operationOf(method: string, path: string): string {
  const m = method.toUpperCase();
  if (/\/Messages\.json$/.test(path)) return m === "POST" ? "messages.create" : "messages.list";
  if (/\/Messages\/[^/]+\.json$/.test(path)) return m === "GET" ? "messages.fetch" : "messages.update";
  return `${m.toLowerCase()} ${path}`;
}

const DEFAULTS = { timeoutMs: 15_000, attempts: 3, baseDelayMs: 250, maxDelayMs: 8_000, maxRetryAfterMs: 30_000 };

function backoff(attempt: number, retry: RetrySpec): number {
  const step = Math.min(retry.maxDelayMs ?? DEFAULTS.maxDelayMs, (retry.baseDelayMs ?? DEFAULTS.baseDelayMs) * 2 ** (attempt - 1));
  return step / 2 + Math.random() * (step / 2);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** One provider_calls row, the way providerFetch writes them: callback, else sql, else the pool. */
async function writeCall(config: TwilioConfig, call: ProviderCall): Promise<void> {
  const write = async () => {
    if (config.record) return await config.record(call);
    if (config.sql) return await insertProviderCall(config.sql, call);
    if (!readEnv("SUPABASE_DB_URL") && !readEnv("DATABASE_URL")) return;
    await insertProviderCall(db() as unknown as SqlTag, call);
  };
  const written = write().catch((err) => {
    // A lost row must not fail a send that already happened.
    log("error", "provider call not recorded", { provider: "twilio", operation: call.operation, error: err instanceof Error ? err.message : String(err) });
  });
  // Don't wait forever on a busy pool (a caller's transaction may hold its only connection).
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([written, new Promise<void>((r) => (timer = setTimeout(r, 2_000)))]);
  clearTimeout(timer);
}

/**
 * The httpClient for one SDK call: rewrites the host, applies timeout and retries, records each attempt.
 * Retries 429 and 5xx answers and network errors; a timed-out POST is not retried (Twilio may have
 * accepted the message, and it has no idempotency key).
 */
class FetchHttpClient {
  /** Retry-After of the last 429, for the ProviderError. */
  lastRetryAfterMs: number | undefined;

  constructor(
    private readonly config: TwilioConfig,
    private readonly baseUrl: string | null,
    private readonly ctx: ProviderCallContext,
  ) {}

  /** Waits between attempts; the caller's abort ends the wait as an "aborted" ProviderError. */
  private async pause(ms: number, operation: string): Promise<void> {
    try {
      await sleep(ms, this.ctx.signal);
    } catch (err) {
      throw new ProviderError({ provider: "twilio", operation, code: "aborted", retryable: false, message: "aborted by the caller", cause: err });
    }
  }

  async request(opts: SdkRequest): Promise<SdkResponse> {
    const method = opts.method.toUpperCase();
    const original = new URL(opts.uri);
    const target = new URL(this.baseUrl ? `${this.baseUrl.replace(/\/+$/, "")}${original.pathname}` : original.href);
    for (const [k, v] of formOf(opts.params)) target.searchParams.append(k, v);
    const operation = operationOf(method, original.pathname);
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.username && opts.password) headers.Authorization = `Basic ${base64Utf8(`${opts.username}:${opts.password}`)}`;
    const body = method === "GET" || method === "DELETE" ? undefined : formOf(opts.data).toString();

    const retry = this.config.retry ?? {};
    const attempts = Math.max(1, retry.attempts ?? DEFAULTS.attempts);
    const timeoutMs = this.config.timeoutMs ?? DEFAULTS.timeoutMs;
    const doFetch = this.config.fetch ?? fetch;
    const base = { provider: "twilio", operation, cacheKey: null, cached: false, credits: 0, leadId: this.ctx.leadId ?? null, clientId: this.ctx.clientId ?? null };

    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      const elapsed = () => Math.round(performance.now() - started);
      let res: Response;
      let text: string;
      try {
        const timeout = AbortSignal.timeout(timeoutMs);
        const signal = this.ctx.signal ? AbortSignal.any([timeout, this.ctx.signal]) : timeout;
        res = await doFetch(target, { method, headers, body, signal });
        text = await res.text();
      } catch (err) {
        const aborted = this.ctx.signal?.aborted ?? false;
        const timedOut = !aborted && (err as { name?: string } | null)?.name === "TimeoutError";
        const e = new ProviderError({
          provider: "twilio", operation, cause: err,
          code: aborted ? "aborted" : timedOut ? "timeout" : "network", retryable: !aborted,
          message: aborted ? "aborted by the caller" : timedOut ? `no answer within ${timeoutMs} ms`
            : `network error: ${err instanceof Error ? err.message : String(err)}`,
        });
        await writeCall(this.config, { ...base, status: null, costCents: 0, durationMs: elapsed(), error: truncate(e.message, 1000) });
        if (aborted || attempt >= attempts || (timedOut && method === "POST")) throw e;
        await this.pause(backoff(attempt, retry), operation);
        continue;
      }

      const again = res.status === 429 || res.status >= 500;
      const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
      if (res.status === 429) this.lastRetryAfterMs = retryAfterMs;
      let costCents = 0;
      if (res.ok && operation === "messages.create") {
        try {
          const j = JSON.parse(text) as { price?: unknown; price_unit?: unknown };
          const price = typeof j.price === "string" || typeof j.price === "number" ? Number(j.price) : null;
          costCents = twilioPriceCents(Number.isFinite(price) ? price : null, typeof j.price_unit === "string" ? j.price_unit : null);
        } catch {
          // The SDK reports the malformed body; the row just has no cost.
        }
      }
      await writeCall(this.config, {
        ...base, status: res.status, costCents, durationMs: elapsed(), error: res.ok ? null : truncate(`HTTP ${res.status}: ${text}`, 1000),
      });
      if (again && attempt < attempts) {
        if (retryAfterMs !== undefined && retryAfterMs > (retry.maxRetryAfterMs ?? DEFAULTS.maxRetryAfterMs)) {
          return { statusCode: res.status, body: text, headers: Object.fromEntries(res.headers) };
        }
        await this.pause(retryAfterMs !== undefined ? retryAfterMs + Math.random() * 50 : backoff(attempt, retry), operation);
        continue;
      }
      return { statusCode: res.status, body: text, headers: Object.fromEntries(res.headers) };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

export function createTwilioClient(config: TwilioConfig = {}): TwilioClient {
  const baseUrl = config.baseUrl ?? TWILIO_DEFAULT_BASE_URL;
  const custom = baseUrl.replace(/\/+$/, "") !== TWILIO_DEFAULT_BASE_URL;
  const { accountSid, authToken } = config;
  const missing = !accountSid ? "TWILIO_ACCOUNT_SID is not set" : !authToken ? "TWILIO_AUTH_TOKEN is not set" : null;
  if (accountSid && !accountSid.startsWith("AC")) throw new Error("TWILIO_ACCOUNT_SID must start with AC");

  /** A fresh SDK client per call: cheap (the SDK loads lazily) and it carries this call's context. */
  function sdk(operation: string, ctx: ProviderCallContext) {
    if (missing) throw new ProviderError({ provider: "twilio", operation, code: "not_configured", retryable: false, message: missing });
    const http = new FetchHttpClient(config, custom ? baseUrl : null, ctx);
    const client = new TwilioMessagingClient(accountSid, authToken, {
      accountSid,
      httpClient: http as unknown as RequestClient,
      edge: custom ? undefined : config.edge,
      region: custom ? undefined : config.region,
      // Keep the SDK from reading TWILIO_* itself: everything comes from this config.
      env: {},
    });
    return { client, http };
  }

  async function run<T>(operation: string, ctx: ProviderCallContext, fn: (c: TwilioMessagingClient) => Promise<T>): Promise<T> {
    const { client, http } = sdk(operation, ctx);
    try {
      return await fn(client);
    } catch (err) {
      throw mapError(err, operation, http.lastRetryAfterMs);
    }
  }

  return {
    accountSid: accountSid ?? null,

    async sendSms(input, ctx = {}) {
      const operation = "messages.create";
      if (!input.to?.trim()) throw new ProviderError({ provider: "twilio", operation, code: "invalid_request", retryable: false, message: "no recipient number" });
      if (!input.body?.trim()) throw new ProviderError({ provider: "twilio", operation, code: "invalid_request", retryable: false, message: "empty body" });
      if (!input.from && !input.messagingServiceSid) {
        throw new ProviderError({ provider: "twilio", operation, code: "invalid_request", retryable: false, message: "no sender (From or MessagingServiceSid)" });
      }
      const raw = await run(operation, ctx, (c) =>
        c.messages.create({
          to: input.to,
          body: input.body,
          ...(input.messagingServiceSid ? { messagingServiceSid: input.messagingServiceSid } : { from: input.from! }),
          ...(input.statusCallback ? { statusCallback: input.statusCallback } : {}),
        })
      );
      return toMessage(raw, operation);
    },

    async fetchMessage(sid, ctx = {}) {
      const operation = "messages.fetch";
      if (!/^(SM|MM)[0-9a-fA-F]{32}$/.test(sid)) {
        throw new ProviderError({ provider: "twilio", operation, code: "invalid_request", retryable: false, message: `not a message sid: ${sid}` });
      }
      return toMessage(await run(operation, ctx, (c) => c.messages(sid).fetch()), operation);
    },

    async listMessages(input, ctx = {}) {
      const operation = "messages.list";
      const limit = Math.max(1, Math.min(1000, input.limit ?? 50));
      const raws = await run(operation, ctx, (c) =>
        c.messages.list({
          to: input.to,
          ...(input.from ? { from: input.from } : {}),
          ...(input.sentAfter ? { dateSentAfter: input.sentAfter } : {}),
          limit,
          pageSize: Math.min(limit, 1000),
        })
      );
      return raws.map((m) => toMessage(m, operation));
    },
  };
}

/**
 * A client from TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_BASE_URL, TWILIO_EDGE and TWILIO_REGION.
 * Against a local base URL (a sandbox) missing credentials default to the sandbox's.
 */
export function twilioFromEnv(overrides: Partial<TwilioConfig> = {}): TwilioClient {
  const baseUrl = overrides.baseUrl ?? readEnv("TWILIO_BASE_URL") ?? TWILIO_DEFAULT_BASE_URL;
  const local = isLocalUrl(baseUrl);
  return createTwilioClient({
    accountSid: readEnv("TWILIO_ACCOUNT_SID") || (local ? TWILIO_SANDBOX_ACCOUNT_SID : undefined),
    authToken: readEnv("TWILIO_AUTH_TOKEN") || (local ? TWILIO_SANDBOX_AUTH_TOKEN : undefined),
    edge: readEnv("TWILIO_EDGE") || undefined,
    region: readEnv("TWILIO_REGION") || undefined,
    ...overrides,
    baseUrl,
  });
}

// ---------------------------------------------------------------------------------------------
// Channel adapter
// ---------------------------------------------------------------------------------------------

/** Twilio's message status at creation → our SendStatus. */
export function twilioSendStatus(status: string): SendStatus {
  switch (status) {
    case "sending":
    case "sent":
      return "sent";
    case "delivered":
    case "read":
      return "delivered";
    case "queued":
    case "scheduled":
      return "queued";
    default:
      return "accepted";
  }
}

/**
 * SMS through Twilio. A sender whose providerAccountId is a Messaging Service (MG…) sends through
 * it; otherwise sender.address is the From number or alphanumeric id.
 */
export function twilioSmsAdapter(client: TwilioClient): ChannelAdapter {
  return {
    provider: "twilio",
    channel: "sms",

    async send(req: SendRequest): Promise<SendResult> {
      const to = req.recipient.phoneE164?.trim();
      if (!to) throw new ProviderError({ provider: "twilio", operation: "messages.create", code: "invalid_request", retryable: false, message: "recipient has no phone number" });
      const service = req.sender.providerAccountId?.startsWith("MG") ? req.sender.providerAccountId : null;
      const msg = await client.sendSms(
        { to, from: service ? null : req.sender.address, messagingServiceSid: service, body: req.body, statusCallback: req.statusCallbackUrl ?? null },
        { leadId: req.leadId, clientId: req.clientId, signal: req.signal },
      );
      if (msg.status === "failed" || msg.status === "undelivered" || msg.status === "canceled") {
        throw new ProviderError({
          provider: "twilio", operation: "messages.create", code: "provider", retryable: false,
          message: `message ${msg.sid} is ${msg.status}${msg.errorCode ? ` (${msg.errorCode})` : ""}`,
        });
      }
      return { provider: "twilio", providerMessageId: msg.sid, status: twilioSendStatus(msg.status), costCents: msg.costCents };
    },

    // Twilio messages carry no reference of ours (no custom field, and we add nothing to the body),
    // so a crashed send can't be matched to its message: "can't tell".
    findByReference(): Promise<undefined> {
      return Promise.resolve(undefined);
    },
  };
}
