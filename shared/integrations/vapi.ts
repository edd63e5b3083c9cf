// Vapi outbound voice calls: POST /call (Bearer) with a transient assistant (our script as the
// system prompt, an ElevenLabs voice, our status webhook as server.url, our sendId in its metadata),
// GET /call/{id}, and GET /call to find a call by sendId after a crash. Also the voice retry rules
// of product.md §5: busy → again in 2 hours; no answer → the next permitted day; at most 3 attempts.
// Why the sendId rides in assistant.metadata: CreateCallDTO has no metadata of its own, and the call
// object echoes a transient assistant back (GET /call, and every server message's call.assistant).
import { z } from "zod";
import type { Redis } from "@upstash/redis";
import { readEnv } from "../config/env.ts";
import type { ChannelAdapter, SendRequest, SendResult, SendStatus } from "../channels/types.ts";
import {
  isLocalUrl,
  lenient,
  ProviderError,
  providerFetch,
  rateLimitFromEnv,
  tolerantArray,
  type ProviderCallContext,
  type ProviderSpec,
  type RateLimitSpec,
  type RecordCall,
  type RetrySpec,
  type SqlTag,
} from "./provider-http.ts";

export const VAPI_DEFAULT_BASE_URL = "https://api.vapi.ai";
export const VAPI_DEFAULT_MODEL = { provider: "openai", model: "gpt-4o-mini" } as const;
/** The server messages our webhook needs; Vapi's default list would post every utterance too. */
export const VAPI_SERVER_MESSAGES = ["status-update", "end-of-call-report"] as const;

export interface VapiConfig {
  apiKey?: string;
  baseUrl?: string;
  /** Default 60 requests/min shared (VAPI_RATE_LIMIT overrides). */
  rateLimit?: RateLimitSpec | false;
  retry?: RetrySpec;
  timeoutMs?: number;
  redis?: Redis | null;
  record?: RecordCall;
  sql?: SqlTag;
  fetch?: typeof fetch;
  /** The Vapi credential (HMAC: sha256, hex, `{timestamp}.{body}`) that signs our server messages. */
  serverCredentialId?: string;
  /** The LLM behind the voice agent (default openai gpt-4o-mini). */
  model?: { provider: string; model: string };
  serverMessages?: readonly string[];
  /** How far back findCallBySendId looks (default 48 h). */
  lookbackHours?: number;
}

export interface VapiAssistantInput {
  firstMessage: string;
  systemPrompt: string;
  /** ElevenLabs voice id. */
  voiceId: string;
  maxDurationSeconds?: number;
}

export interface VapiCreateCallInput {
  /** Our Vapi phone number (the sender's providerAccountId). */
  phoneNumberId: string;
  customerNumber: string;
  customerName?: string | null;
  assistant: VapiAssistantInput;
  /** Echoed in every server message and in GET /call (assistant.metadata). */
  metadata?: Record<string, string>;
  /** Where Vapi posts status-update and end-of-call-report. */
  serverUrl?: string | null;
}

export interface VapiCall {
  id: string;
  /** scheduled, queued, ringing, in-progress, forwarding, ended */
  status: string | null;
  endedReason: string | null;
  createdAt: string | null;
  startedAt: string | null;
  endedAt: string | null;
  phoneNumberId: string | null;
  customerNumber: string | null;
  metadata: Record<string, unknown>;
  /** Vapi's cost so far in US cents. */
  costCents: number;
}

export interface VapiClient {
  createCall(input: VapiCreateCallInput, ctx?: ProviderCallContext): Promise<VapiCall>;
  /** null when Vapi has no such call. */
  getCall(id: string, ctx?: ProviderCallContext): Promise<VapiCall | null>;
  listCalls(filter?: { phoneNumberId?: string | null; createdAfter?: Date; limit?: number }, ctx?: ProviderCallContext): Promise<VapiCall[]>;
  /** The call we placed for this sendId (metadata.sendId), or null. */
  findCallBySendId(sendId: string, opts?: { phoneNumberId?: string | null; customerNumber?: string | null; since?: Date }, ctx?: ProviderCallContext): Promise<VapiCall | null>;
}

// ---------------------------------------------------------------------------------------------
// Wire shapes
// ---------------------------------------------------------------------------------------------

const Metadata = z.record(z.string(), z.unknown()).nullish().catch(null);

const CallWire = z.object({
  id: z.string().min(1),
  status: lenient.string,
  endedReason: lenient.string,
  createdAt: lenient.string,
  startedAt: lenient.string,
  endedAt: lenient.string,
  cost: lenient.number,
  phoneNumberId: lenient.string,
  customer: z.object({ number: lenient.string }).nullish().catch(null),
  assistant: z.object({ metadata: Metadata }).nullish().catch(null),
  metadata: Metadata,
}).transform((c): VapiCall => ({
  id: c.id,
  status: c.status,
  endedReason: c.endedReason,
  createdAt: c.createdAt,
  startedAt: c.startedAt,
  endedAt: c.endedAt,
  phoneNumberId: c.phoneNumberId,
  customerNumber: c.customer?.number ?? null,
  metadata: { ...(c.metadata ?? {}), ...(c.assistant?.metadata ?? {}) },
  costCents: c.cost && c.cost > 0 ? Math.round(c.cost * 100 * 10_000) / 10_000 : 0,
}));

const CallListWire = z.union([
  tolerantArray(CallWire),
  z.object({ results: tolerantArray(CallWire) }).transform((r) => r.results),
]);

/**
 * Vapi's errors are NestJS-style {statusCode, error: "Bad Request", message: [details]}; providerFetch
 * reads `error` first, which would keep only "Bad Request". Fold the details into it.
 */
function withNestErrorDetail(inner: typeof fetch): typeof fetch {
  return async (input, init) => {
    const res = await inner(input, init);
    if (res.ok) return res;
    const text = await res.text();
    let body = text;
    try {
      const j = JSON.parse(text) as { error?: unknown; message?: unknown };
      const detail = Array.isArray(j.message) ? j.message.filter((m) => typeof m === "string").join("; ")
        : typeof j.message === "string" ? j.message : "";
      if (detail) body = JSON.stringify({ ...j, error: typeof j.error === "string" ? `${j.error}: ${detail}` : detail });
    } catch {
      // not JSON: passed on as it came
    }
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

export function createVapiClient(config: VapiConfig = {}): VapiClient {
  const baseUrl = config.baseUrl ?? VAPI_DEFAULT_BASE_URL;
  const model = config.model ?? VAPI_DEFAULT_MODEL;
  const lookbackHours = config.lookbackHours ?? 48;
  const spec: ProviderSpec = {
    provider: "vapi",
    baseUrl,
    headers: { authorization: `Bearer ${config.apiKey ?? ""}` },
    missingCredentials: config.apiKey ? undefined : "VAPI_API_KEY is not set",
    rateLimit: config.rateLimit ?? rateLimitFromEnv("VAPI_RATE_LIMIT", { limit: 60, window: "1 m" }),
    retry: config.retry,
    timeoutMs: config.timeoutMs ?? 20_000,
    redis: config.redis,
    record: config.record,
    sql: config.sql,
    fetch: withNestErrorDetail(config.fetch ?? ((input, init) => fetch(input, init))),
  };
  // A POST /call that timed out may be ringing someone already: never place it twice automatically.
  const createSpec: ProviderSpec = { ...spec, retry: { ...config.retry, onTimeout: false } };

  const invalid = (operation: string, message: string) =>
    new ProviderError({ provider: "vapi", operation, code: "invalid_request", retryable: false, message });

  const client: VapiClient = {
    async createCall(input, ctx) {
      const operation = "call.create";
      if (!input.phoneNumberId?.trim()) throw invalid(operation, "no Vapi phoneNumberId for the sender");
      if (!/^\+[1-9]\d{6,14}$/.test(input.customerNumber ?? "")) throw invalid(operation, `customer number is not E.164: ${input.customerNumber}`);
      const a = input.assistant;
      if (!a?.firstMessage?.trim() || !a.systemPrompt?.trim()) throw invalid(operation, "the voice script needs a first message and a system prompt");
      if (!a.voiceId?.trim()) throw invalid(operation, "no ElevenLabs voice id configured");
      const body = {
        phoneNumberId: input.phoneNumberId,
        customer: { number: input.customerNumber, ...(input.customerName ? { name: input.customerName.slice(0, 40) } : {}) },
        assistant: {
          firstMessage: a.firstMessage,
          model: { provider: model.provider, model: model.model, messages: [{ role: "system", content: a.systemPrompt }] },
          voice: { provider: "11labs", voiceId: a.voiceId },
          ...(a.maxDurationSeconds ? { maxDurationSeconds: a.maxDurationSeconds } : {}),
          ...(input.serverUrl
            ? { server: { url: input.serverUrl, ...(config.serverCredentialId ? { credentialId: config.serverCredentialId } : {}) } }
            : {}),
          serverMessages: [...(config.serverMessages ?? VAPI_SERVER_MESSAGES)],
          metadata: input.metadata ?? {},
        },
      };
      const res = await providerFetch(createSpec, {
        operation, method: "POST", path: "/call", body, schema: CallWire, costCents: (c) => c.costCents,
      }, ctx);
      return res.data;
    },

    async getCall(id, ctx) {
      if (!id?.trim()) throw invalid("call.get", "empty call id");
      const res = await providerFetch<VapiCall | null>(spec, {
        operation: "call.get", path: `/call/${encodeURIComponent(id)}`, schema: CallWire, onStatus: { 404: () => null },
      }, ctx);
      return res.data;
    },

    async listCalls(filter = {}, ctx) {
      const res = await providerFetch(spec, {
        operation: "call.list", path: "/call",
        query: {
          phoneNumberId: filter.phoneNumberId ?? undefined,
          createdAtGt: filter.createdAfter?.toISOString(),
          limit: Math.max(1, Math.min(1000, filter.limit ?? 100)),
        },
        schema: CallListWire,
      }, ctx);
      return res.data;
    },

    async findCallBySendId(sendId, opts = {}, ctx) {
      const since = opts.since ?? new Date(Date.now() - lookbackHours * 3_600_000);
      const calls = await client.listCalls({ phoneNumberId: opts.phoneNumberId, createdAfter: since, limit: 1000 }, ctx);
      return calls.find((c) => c.metadata.sendId === sendId && (!opts.customerNumber || c.customerNumber === opts.customerNumber)) ?? null;
    },
  };
  return client;
}

/**
 * A client from VAPI_API_KEY, VAPI_BASE_URL, VAPI_SERVER_CREDENTIAL_ID, VAPI_MODEL ("provider/model",
 * e.g. "openai/gpt-4o-mini") and VAPI_RATE_LIMIT. Against a local base URL the key defaults to "sandbox".
 */
export function vapiFromEnv(overrides: Partial<VapiConfig> = {}): VapiClient {
  const baseUrl = overrides.baseUrl ?? readEnv("VAPI_BASE_URL") ?? VAPI_DEFAULT_BASE_URL;
  const modelEnv = readEnv("VAPI_MODEL")?.trim();
  const slash = modelEnv ? modelEnv.indexOf("/") : -1;
  return createVapiClient({
    apiKey: readEnv("VAPI_API_KEY") || (isLocalUrl(baseUrl) ? "sandbox" : undefined),
    serverCredentialId: readEnv("VAPI_SERVER_CREDENTIAL_ID") || undefined,
    model: modelEnv && slash > 0 ? { provider: modelEnv.slice(0, slash), model: modelEnv.slice(slash + 1) } : undefined,
    ...overrides,
    baseUrl,
  });
}

// ---------------------------------------------------------------------------------------------
// Outcomes and the retry rules (product.md §5)
// ---------------------------------------------------------------------------------------------

export type CallOutcome = "answered" | "busy" | "no_answer" | "voicemail" | "failed";

/** What Vapi's endedReason (free text, ~600 values) means for the retry rules. */
export function classifyCallOutcome(endedReason: string | null | undefined): CallOutcome {
  const r = (endedReason ?? "").trim().toLowerCase();
  if (!r) return "failed";
  if (r.includes("voicemail")) return "voicemail";
  if (r.includes("busy")) return "busy";
  if (/did-not-answer|no-answer|not-answered|ring(ing)?-timeout/.test(r)) return "no_answer";
  // Someone picked up and the conversation ended one way or another.
  if (/^(customer-ended-call|assistant-ended-call|assistant-said-end-call-phrase|assistant-forwarded-call|assistant-hangup|exceeded-max-duration|silence-timed-out)/.test(r)) {
    return "answered";
  }
  return "failed";
}

export const VOICE_MAX_ATTEMPTS_PER_STEP = 3;
export const VOICE_BUSY_RETRY_MS = 2 * 3_600_000;

export type NextVoiceAttempt =
  /** Call again at this time (still subject to the send gate's calling window). */
  | { kind: "at"; at: Date; attemptNo: number }
  /** Call again on the next day the calling window allows: the scheduler resolves the day. */
  | { kind: "next_day"; attemptNo: number };

/**
 * The next attempt after attempt `attemptNo` (1-based) of a voice step ended with `outcome`, or null
 * when the step is done: answered, or the third attempt used. Busy: 2 hours later. No answer,
 * voicemail and a failed call: the next permitted day.
 */
export function nextVoiceAttempt(outcome: CallOutcome, attemptNo: number, now: Date = new Date()): NextVoiceAttempt | null {
  if (!Number.isInteger(attemptNo) || attemptNo < 1) throw new RangeError(`attemptNo must be a positive integer, got ${attemptNo}`);
  if (outcome === "answered" || attemptNo >= VOICE_MAX_ATTEMPTS_PER_STEP) return null;
  const next = attemptNo + 1;
  if (outcome === "busy") return { kind: "at", at: new Date(now.getTime() + VOICE_BUSY_RETRY_MS), attemptNo: next };
  return { kind: "next_day", attemptNo: next };
}

// ---------------------------------------------------------------------------------------------
// Channel adapter
// ---------------------------------------------------------------------------------------------

export function vapiSendStatus(status: string | null): SendStatus {
  switch (status) {
    case "ringing":
    case "in-progress":
    case "forwarding":
    case "ended":
      return "sent";
    case "queued":
    case "scheduled":
      return "queued";
    default:
      return "accepted";
  }
}

/**
 * Voice calls through Vapi: sender.providerAccountId is the Vapi phoneNumberId, req.voice the script,
 * req.statusCallbackUrl our webhook. Outcomes arrive there (status-update, end-of-call-report).
 */
export function vapiVoiceAdapter(client: VapiClient): ChannelAdapter {
  const result = (c: VapiCall): SendResult => ({ provider: "vapi", providerMessageId: c.id, status: vapiSendStatus(c.status), costCents: c.costCents });
  return {
    provider: "vapi",
    channel: "voice",

    async send(req: SendRequest): Promise<SendResult> {
      const invalid = (message: string) => new ProviderError({ provider: "vapi", operation: "call.create", code: "invalid_request", retryable: false, message });
      if (!req.voice) throw invalid("no voice script on the request");
      const to = req.recipient.phoneE164?.trim();
      if (!to) throw invalid("recipient has no phone number");
      const phoneNumberId = req.sender.providerAccountId?.trim();
      if (!phoneNumberId) throw invalid("sender has no Vapi phoneNumberId (providerAccountId)");
      const name = [req.recipient.firstName, req.recipient.lastName].filter(Boolean).join(" ") || null;
      const call = await client.createCall({
        phoneNumberId,
        customerNumber: to,
        customerName: name,
        assistant: req.voice,
        metadata: { sendId: req.sendId, clientId: req.clientId, leadId: req.leadId },
        serverUrl: req.statusCallbackUrl ?? null,
      }, { leadId: req.leadId, clientId: req.clientId, signal: req.signal });
      return result(call);
    },

    async findByReference(sendId: string, req: SendRequest) {
      const call = await client.findCallBySendId(sendId, {
        phoneNumberId: req.sender.providerAccountId ?? null, customerNumber: req.recipient.phoneE164 ?? null,
      }, { leadId: req.leadId, clientId: req.clientId, signal: req.signal });
      return call ? result(call) : null;
    },
  };
}
