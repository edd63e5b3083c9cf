// Anthropic (Claude) through the official @anthropic-ai/sdk: one configured client, the model ids
// and prices the content engine budgets with, SDK errors mapped to ProviderError, and the Message
// Batches API for bulk pre-generation nobody waits on (half price).
//
// Retries are the SDK's own (providers.md §11): connection errors, 408, 409, 429 and ≥500 (529
// overloaded included), honouring retry-after-ms / retry-after, else 0.5 s·2ⁿ up to 8 s. The one
// 429 that must not be retried — the organisation's monthly spend cap
// (error.details.error_code enforced_spend_limit_reached) — gets x-should-retry: false from a
// middleware, which the SDK obeys, and maps to a non-retryable ProviderError.
//
// Wire format: @anthropic-ai/sdk 1.x sends API version 2026-10-21 (its 1.0.0 breaking change) and
// the key as `Authorization: Bearer`, not providers.md's `x-api-key` / 2023-06-01; the SDK is left
// to speak its own version. It is given every setting explicitly, so of its environment variables
// it reads only ANTHROPIC_CUSTOM_HEADERS (unconditionally, in its constructor).
//
// Each call can write one provider_calls row (record callback or sql handle): tokens as credits,
// cost in cents. Without either, nothing is written here — the content engine returns usage and
// cost per step for its caller to persist.
import Anthropic, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  AnthropicError,
  type Middleware,
} from "@anthropic-ai/sdk";
import { readEnv } from "../config/env.ts";
import { PROVIDERS } from "../config/providers.ts";
import { log } from "../observability/log.ts";
import {
  insertProviderCall,
  isLocalUrl,
  parseRetryAfter,
  ProviderError,
  truncate,
  type ProviderCall,
  type RecordCall,
  type SqlTag,
} from "./provider-http.ts";

export type MessageParams = Anthropic.Messages.MessageCreateParamsNonStreaming;
export type ClaudeMessage = Anthropic.Messages.Message;

export const ANTHROPIC_DEFAULT_BASE_URL = "https://api.anthropic.com";

// ---------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------

/** Current Sonnet and Haiku ids (providers.md §11); ANTHROPIC_MODEL_LARGE / _SMALL override them. */
export const DEFAULT_MODELS = { large: "claude-sonnet-5-5", small: "claude-haiku-5-5" } as const;

export interface ModelIds {
  /** Hot leads: research and every step. */
  large: string;
  /** Warm and Cool leads. */
  small: string;
}

export const MODEL_ENV = { large: "ANTHROPIC_MODEL_LARGE", small: "ANTHROPIC_MODEL_SMALL" } as const;

export function anthropicModels(): ModelIds {
  return {
    large: readEnv(MODEL_ENV.large)?.trim() || DEFAULT_MODELS.large,
    small: readEnv(MODEL_ENV.small)?.trim() || DEFAULT_MODELS.small,
  };
}

// ---------------------------------------------------------------------------------------------
// Prices and cost
// ---------------------------------------------------------------------------------------------

/** USD per million tokens. */
export interface ModelPrice {
  input: number;
  output: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
  cacheRead: number;
}

interface PriceEntry extends ModelPrice {
  /** Prompts above this many tokens (input + cache read + cache write) bill at `long`. */
  longContext?: { overTokens: number; price: ModelPrice };
}

/**
 * providers.md §11 pricing. Sonnet 5.5's cache read fell from 0.20 to 0.10 on 2026-10-07 (trackers,
 * [I]); the later price is used. Haiku 5.5 bills differently above 100K prompt tokens.
 */
export const ANTHROPIC_PRICES: Readonly<Record<string, PriceEntry>> = {
  "claude-sonnet-5-5": { input: 2, output: 10, cacheWrite5m: 2.5, cacheWrite1h: 4, cacheRead: 0.1 },
  "claude-sonnet-5": { input: 2, output: 10, cacheWrite5m: 2.5, cacheWrite1h: 4, cacheRead: 0.2 },
  "claude-sonnet-4-6": { input: 3, output: 15, cacheWrite5m: 3.75, cacheWrite1h: 6, cacheRead: 0.3 },
  "claude-sonnet-4-5": { input: 3, output: 15, cacheWrite5m: 3.75, cacheWrite1h: 6, cacheRead: 0.3 },
  "claude-haiku-5-5": {
    input: 0.1, output: 0.5, cacheWrite5m: 0.125, cacheWrite1h: 0.2, cacheRead: 0.01,
    longContext: { overTokens: 100_000, price: { input: 0.5, output: 2.5, cacheWrite5m: 0.625, cacheWrite1h: 1, cacheRead: 0.05 } },
  },
  "claude-haiku-4-5": { input: 1, output: 5, cacheWrite5m: 1.25, cacheWrite1h: 2, cacheRead: 0.1 },
};

/** For an id not in the table: the dearest Sonnet price, so a budget is never under-estimated. */
const UNKNOWN_MODEL_PRICE: PriceEntry = ANTHROPIC_PRICES["claude-sonnet-4-6"];

function priceEntry(model: string): PriceEntry | undefined {
  const id = model.trim().toLowerCase();
  return ANTHROPIC_PRICES[id] ?? ANTHROPIC_PRICES[id.replace(/-\d{8}$/, "")]; // dated snapshots: claude-haiku-4-5-20251001
}

export function isPricedModel(model: string): boolean {
  return priceEntry(model) !== undefined;
}

/** Token counts of one call or a sum of calls. */
export interface TokenUsage {
  /** Uncached input. */
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  /** Cache writes of every TTL. */
  cacheWriteTokens: number;
  /** The part of cacheWriteTokens written with the 1-hour TTL. */
  cacheWrite1hTokens?: number;
}

export const ZERO_USAGE: TokenUsage = Object.freeze({ inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 });

export function addUsage(a: TokenUsage, b: TokenUsage): TokenUsage {
  const h = (a.cacheWrite1hTokens ?? 0) + (b.cacheWrite1hTokens ?? 0);
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cacheReadTokens: a.cacheReadTokens + b.cacheReadTokens,
    cacheWriteTokens: a.cacheWriteTokens + b.cacheWriteTokens,
    ...(h ? { cacheWrite1hTokens: h } : {}),
  };
}

export function totalTokens(u: TokenUsage): number {
  return u.inputTokens + u.outputTokens + u.cacheReadTokens + u.cacheWriteTokens;
}

/** The API's usage object (nullable fields as the SDK types them) in our shape. */
export function usageFromApi(u: Partial<Anthropic.Messages.Usage> | null | undefined): TokenUsage {
  const n = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v > 0 ? v : 0);
  const oneHour = n(u?.cache_creation?.ephemeral_1h_input_tokens);
  return {
    inputTokens: n(u?.input_tokens),
    outputTokens: n(u?.output_tokens),
    cacheReadTokens: n(u?.cache_read_input_tokens),
    cacheWriteTokens: n(u?.cache_creation_input_tokens),
    ...(oneHour ? { cacheWrite1hTokens: oneHour } : {}),
  };
}

/** The price that applies to a call of this model with this usage. */
export function priceFor(model: string, usage: TokenUsage = ZERO_USAGE): ModelPrice {
  const entry = priceEntry(model) ?? UNKNOWN_MODEL_PRICE;
  const prompt = usage.inputTokens + usage.cacheReadTokens + usage.cacheWriteTokens;
  return entry.longContext && prompt > entry.longContext.overTokens ? entry.longContext.price : entry;
}

/** Rounded to 1/10,000 of a cent, the precision of provider_calls.cost_cents and step_runs.content_cost_cents. */
export function roundCents(c: number): number {
  return Math.round(c * 10_000) / 10_000;
}

/**
 * US cents for one call's usage. USD/MTok × tokens / 10⁶ × 100 = tokens × price / 10⁴. The Batch
 * API halves input and output (providers.md §11). An unknown model is priced as the dearest Sonnet.
 */
export function costCents(model: string, usage: TokenUsage, opts: { batch?: boolean } = {}): number {
  const p = priceFor(model, usage);
  const io = opts.batch ? 0.5 : 1;
  const oneHour = Math.min(usage.cacheWrite1hTokens ?? 0, usage.cacheWriteTokens);
  const usd =
    (usage.inputTokens * p.input * io +
      usage.outputTokens * p.output * io +
      (usage.cacheWriteTokens - oneHour) * p.cacheWrite5m +
      oneHour * p.cacheWrite1h +
      usage.cacheReadTokens * p.cacheRead) / 1_000_000;
  return roundCents(usd * 100);
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** 429s that are a spending cap rather than a rate: waiting won't help this month. */
export const SPEND_LIMIT_ERROR_CODES: ReadonlySet<string> = new Set(["enforced_spend_limit_reached", "contract_spend_limit_reached"]);

function retryAfterOf(headers: Headers | undefined): number | undefined {
  const ms = headers?.get("retry-after-ms");
  if (ms && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  return parseRetryAfter(headers?.get("retry-after") ?? null);
}

/** Any SDK error (after the SDK's own retries) as a ProviderError whose retryable says if later may work. */
export function toProviderError(err: unknown, operation: string): ProviderError {
  if (err instanceof ProviderError) return err;
  const provider = "anthropic";
  if (err instanceof APIUserAbortError) {
    return new ProviderError({ provider, operation, code: "aborted", retryable: false, message: "aborted by the caller", cause: err });
  }
  if (err instanceof APIConnectionTimeoutError) {
    return new ProviderError({ provider, operation, code: "timeout", retryable: true, message: err.message, cause: err });
  }
  if (err instanceof APIConnectionError) {
    return new ProviderError({ provider, operation, code: "network", retryable: true, message: `network error: ${err.message}`, cause: err });
  }
  if (err instanceof APIError && typeof err.status === "number") {
    const status = err.status;
    const detail = truncate(err.apiMessage ?? err.message);
    const kind = err.type ? `${err.type}: ` : "";
    if (status === 429 && err.errorCode && SPEND_LIMIT_ERROR_CODES.has(err.errorCode)) {
      return new ProviderError({
        provider, operation, code: "http", status, retryable: false, cause: err,
        message: `HTTP 429 ${err.errorCode}: ${detail} (the organisation's Anthropic spend limit; not retried)`,
      });
    }
    const retryable = status === 408 || status === 409 || status === 429 || status >= 500 || err.type === "overloaded_error";
    return new ProviderError({
      provider, operation, status, retryable, cause: err,
      code: status === 400 || status === 413 ? "invalid_request" : status === 401 || status === 403 ? "not_configured" : "http",
      retryAfterMs: retryable ? retryAfterOf(err.headers) : undefined,
      message: `HTTP ${status}: ${kind}${detail}`,
    });
  }
  if (err instanceof AnthropicError) {
    return new ProviderError({ provider, operation, code: "provider", retryable: false, message: err.message, cause: err });
  }
  return new ProviderError({
    provider, operation, code: "provider", retryable: false, cause: err,
    message: err instanceof Error ? err.message : String(err),
  });
}

/**
 * Marks a spend-limit 429 x-should-retry: false so the SDK gives up at once instead of hammering a
 * cap that lasts until the month turns.
 */
export const noRetryOnSpendLimit: Middleware = async (request, next) => {
  const res = await next(request);
  if (res.status !== 429) return res;
  const text = await res.clone().text().catch(() => "");
  let code: unknown;
  try {
    code = (JSON.parse(text) as { error?: { details?: { error_code?: unknown } } }).error?.details?.error_code;
  } catch {
    return res;
  }
  if (typeof code !== "string" || !SPEND_LIMIT_ERROR_CODES.has(code)) return res;
  const headers = new Headers(res.headers);
  headers.set("x-should-retry", "false");
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
};

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

export interface AnthropicConfig {
  apiKey?: string;
  baseUrl?: string;
  /** SDK retries after the first attempt (default ANTHROPIC_MAX_RETRIES, else 2). */
  maxRetries?: number;
  /** Per attempt (default 60 s: a message of ≤4K tokens never needs the SDK's 10 min). */
  timeoutMs?: number;
  models?: Partial<ModelIds>;
  /** Where provider_calls rows go; with neither, no row is written (the caller records from results). */
  record?: RecordCall;
  sql?: SqlTag;
  /** For tests. */
  fetch?: typeof fetch;
}

export interface AnthropicCallContext {
  leadId?: string | null;
  clientId?: string | null;
  signal?: AbortSignal;
  /** provider_calls.operation (default "messages.create"). */
  operation?: string;
}

export interface MessageResult {
  message: ClaudeMessage;
  usage: TokenUsage;
  costCents: number;
}

export interface BatchRequest {
  /** Unique within the batch: how results find their request (they come back in any order). */
  custom_id: string;
  params: MessageParams;
}

export interface BatchInfo {
  id: string;
  status: "in_progress" | "canceling" | "ended";
  counts: { processing: number; succeeded: number; errored: number; canceled: number; expired: number };
  resultsUrl: string | null;
  createdAt: string;
  endedAt: string | null;
  expiresAt: string;
}

export interface BatchResultItem {
  customId: string;
  type: "succeeded" | "errored" | "canceled" | "expired";
  message?: ClaudeMessage;
  usage?: TokenUsage;
  /** At batch prices. */
  costCents?: number;
  error?: string;
}

export interface AnthropicClient {
  /** The SDK client itself, for anything not wrapped here. */
  readonly sdk: Anthropic;
  readonly models: ModelIds;
  readonly baseUrl: string;
  /** POST /v1/messages; usage and cost computed; SDK errors become ProviderError. */
  createMessage(params: MessageParams, ctx?: AnthropicCallContext): Promise<MessageResult>;
  /** POST /v1/messages/batches (≤100,000 requests, unique custom_ids). */
  submitBatch(requests: BatchRequest[], ctx?: AnthropicCallContext): Promise<BatchInfo>;
  /** GET /v1/messages/batches/{id}. */
  batchStatus(id: string, ctx?: AnthropicCallContext): Promise<BatchInfo>;
  /** The JSONL results of an ended batch, parsed; throws a retryable ProviderError while it is still running. */
  batchResults(id: string, ctx?: AnthropicCallContext): Promise<BatchResultItem[]>;
}

export const MAX_BATCH_REQUESTS = 100_000;

function maxRetriesFromEnv(): number | undefined {
  const raw = readEnv("ANTHROPIC_MAX_RETRIES")?.trim();
  if (!raw) return undefined;
  const n = Number(raw);
  if (Number.isInteger(n) && n >= 0 && n <= 10) return n;
  log("warn", "ANTHROPIC_MAX_RETRIES is not an integer 0–10; using the default", { value: raw });
  return undefined;
}

/** True when Claude can be called: a key is set, or the base URL is a local sandbox. */
export function anthropicConfigured(): boolean {
  if (readEnv(PROVIDERS.anthropic.key)?.trim()) return true;
  const base = readEnv(PROVIDERS.anthropic.baseUrl)?.trim();
  return !!base && isLocalUrl(base);
}

function batchInfo(b: Anthropic.Messages.MessageBatch): BatchInfo {
  return {
    id: b.id,
    status: b.processing_status,
    counts: {
      processing: b.request_counts?.processing ?? 0,
      succeeded: b.request_counts?.succeeded ?? 0,
      errored: b.request_counts?.errored ?? 0,
      canceled: b.request_counts?.canceled ?? 0,
      expired: b.request_counts?.expired ?? 0,
    },
    resultsUrl: b.results_url ?? null,
    createdAt: b.created_at,
    endedAt: b.ended_at ?? null,
    expiresAt: b.expires_at,
  };
}

// The SDK's logger, routed into our JSON logs (retries are worth a line; the SDK says them at info).
const sdkLogger = {
  debug: () => {},
  info: (msg: string) => log("debug", "anthropic sdk", { detail: msg }),
  warn: (msg: string) => log("warn", "anthropic sdk", { detail: msg }),
  error: (msg: string) => log("error", "anthropic sdk", { detail: msg }),
};

export function createAnthropicClient(config: AnthropicConfig = {}): AnthropicClient {
  const baseUrl = (config.baseUrl ?? readEnv(PROVIDERS.anthropic.baseUrl)?.trim()) || ANTHROPIC_DEFAULT_BASE_URL;
  const apiKey = config.apiKey || readEnv(PROVIDERS.anthropic.key)?.trim() || (isLocalUrl(baseUrl) ? "sandbox" : undefined);
  if (!apiKey) {
    throw new ProviderError({ provider: "anthropic", operation: "client", code: "not_configured", retryable: false, message: "ANTHROPIC_API_KEY is not set" });
  }
  const envModels = anthropicModels();
  const models: ModelIds = { large: config.models?.large ?? envModels.large, small: config.models?.small ?? envModels.small };
  const sdk = new Anthropic({
    apiKey,
    baseURL: baseUrl,
    maxRetries: config.maxRetries ?? maxRetriesFromEnv() ?? 2,
    timeout: config.timeoutMs ?? 60_000,
    // Explicit so the SDK reads no other credentials or settings from the environment.
    webhookKey: null,
    logLevel: "info",
    logger: sdkLogger,
    middleware: [noRetryOnSpendLimit],
    // Spans (if a tracer is registered) carry metadata only — prompts hold lead data — and our trace
    // context is not sent to Anthropic. Explicit, so the ANTHROPIC_OPEN_TELEMETRY_* variables are not read.
    openTelemetry: { propagation: false, traces: { enabled: true, contentMode: "metadata_only" } },
    ...(config.fetch ? { fetch: config.fetch } : {}),
  });

  async function record(call: Omit<ProviderCall, "provider" | "cacheKey" | "cached">): Promise<void> {
    if (!config.record && !config.sql) return;
    try {
      const row: ProviderCall = { provider: "anthropic", cacheKey: null, cached: false, ...call };
      if (config.record) await config.record(row);
      else await insertProviderCall(config.sql!, row);
    } catch (err) {
      // A lost row must not fail a call that already spent tokens; say so loudly instead.
      log("error", "anthropic call not recorded", { operation: call.operation, error: err instanceof Error ? err.message : String(err) });
    }
  }

  async function call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw toProviderError(err, operation);
    }
  }

  return {
    sdk,
    models,
    baseUrl,

    async createMessage(params, ctx = {}) {
      const operation = ctx.operation ?? "messages.create";
      const started = performance.now();
      const base = { operation, leadId: ctx.leadId ?? null, clientId: ctx.clientId ?? null };
      try {
        const message = await sdk.messages.create(params, { signal: ctx.signal });
        const usage = usageFromApi(message.usage);
        const cents = costCents(params.model, usage);
        await record({ ...base, status: 200, credits: totalTokens(usage), costCents: cents, durationMs: Math.round(performance.now() - started), error: null });
        return { message, usage, costCents: cents };
      } catch (err) {
        const e = toProviderError(err, operation);
        await record({ ...base, status: e.status ?? null, credits: 0, costCents: 0, durationMs: Math.round(performance.now() - started), error: truncate(e.message, 1000) });
        throw e;
      }
    },

    async submitBatch(requests, ctx = {}) {
      const operation = "batches.create";
      if (requests.length === 0 || requests.length > MAX_BATCH_REQUESTS) {
        throw new ProviderError({ provider: "anthropic", operation, code: "invalid_request", retryable: false, message: `a batch holds 1–${MAX_BATCH_REQUESTS} requests, not ${requests.length}` });
      }
      const ids = new Set<string>();
      for (const r of requests) {
        if (!/^[a-zA-Z0-9_-]{1,64}$/.test(r.custom_id)) {
          throw new ProviderError({ provider: "anthropic", operation, code: "invalid_request", retryable: false, message: `custom_id "${r.custom_id}" must be 1–64 letters, digits, _ or -` });
        }
        if (ids.has(r.custom_id)) {
          throw new ProviderError({ provider: "anthropic", operation, code: "invalid_request", retryable: false, message: `custom_id "${r.custom_id}" appears twice` });
        }
        ids.add(r.custom_id);
      }
      return await call(operation, async () => batchInfo(await sdk.messages.batches.create({ requests }, { signal: ctx.signal })));
    },

    async batchStatus(id, ctx = {}) {
      return await call("batches.retrieve", async () => batchInfo(await sdk.messages.batches.retrieve(id, {}, { signal: ctx.signal })));
    },

    async batchResults(id, ctx = {}) {
      const operation = "batches.results";
      return await call(operation, async () => {
        const status = batchInfo(await sdk.messages.batches.retrieve(id, {}, { signal: ctx.signal }));
        if (status.status !== "ended") {
          throw new ProviderError({ provider: "anthropic", operation, code: "provider", retryable: true, message: `batch ${id} is ${status.status}; results come when it has ended` });
        }
        // The model of each line is known only from its request; price by the message's own model id.
        const out: BatchResultItem[] = [];
        for await (const line of await sdk.messages.batches.results(id, {}, { signal: ctx.signal })) {
          const r = line.result;
          if (r.type === "succeeded") {
            const usage = usageFromApi(r.message.usage);
            out.push({ customId: line.custom_id, type: "succeeded", message: r.message, usage, costCents: costCents(r.message.model, usage, { batch: true }) });
          } else if (r.type === "errored") {
            const e = r.error as { error?: { type?: string; message?: string } } | undefined;
            out.push({ customId: line.custom_id, type: "errored", error: `${e?.error?.type ?? "error"}: ${e?.error?.message ?? "unknown"}` });
          } else {
            out.push({ customId: line.custom_id, type: r.type });
          }
        }
        return out;
      });
    },
  };
}

/** A client from ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL, or null when Claude is not configured. */
export function anthropicFromEnv(config: Omit<AnthropicConfig, "apiKey" | "baseUrl"> = {}): AnthropicClient | null {
  return anthropicConfigured() ? createAnthropicClient(config) : null;
}
