// What every outbound provider call shares (Apollo, Apify, Serper, DataForSEO; later Salesforge,
// Twilio, Vapi…): timeouts, retries, one rate limit across all instances, a Redis response cache,
// zod validation of every body, and one provider_calls row per real call or cache hit.
import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis";
import { z } from "zod";
import { readEnv } from "../config/env.ts";
import { db } from "../db/client.ts";
import { log } from "../observability/log.ts";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

export type ProviderErrorCode =
  | "http" // the provider answered with an error status
  | "network" // no answer: connection refused, reset, DNS
  | "timeout" // no answer within the attempt's timeout
  | "rate_limited" // our own shared limit is exhausted for longer than the caller may wait
  | "malformed" // the body is not JSON or not the shape we expect
  | "provider" // a 2xx whose body reports an error (DataForSEO task status codes)
  | "not_configured" // no credentials
  | "invalid_request" // the caller's parameters can never succeed
  | "aborted"; // the caller's signal aborted the call

/** The one error type provider clients throw. retryable: trying again later may succeed. */
export class ProviderError extends Error {
  readonly provider: string;
  readonly operation: string;
  readonly status?: number;
  readonly retryable: boolean;
  readonly code: ProviderErrorCode;
  /** When the provider (Retry-After) or our limiter said how long to wait. */
  readonly retryAfterMs?: number;

  constructor(init: {
    provider: string;
    operation: string;
    message: string;
    retryable: boolean;
    code: ProviderErrorCode;
    status?: number;
    retryAfterMs?: number;
    cause?: unknown;
  }) {
    super(`${init.provider} ${init.operation}: ${init.message}`, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "ProviderError";
    this.provider = init.provider;
    this.operation = init.operation;
    this.status = init.status;
    this.retryable = init.retryable;
    this.code = init.code;
    this.retryAfterMs = init.retryAfterMs;
  }
}

// ---------------------------------------------------------------------------------------------
// Spec (one per client instance) and request (one per call)
// ---------------------------------------------------------------------------------------------

export type WindowUnit = "ms" | "s" | "m" | "h" | "d";
export type Window = `${number} ${WindowUnit}` | `${number}${WindowUnit}`;

export interface RateLimitSpec {
  /** Calls allowed per window, across every instance sharing the Redis. */
  limit: number;
  window: Window;
  /** sliding (default) smooths bursts at window edges; fixed counts per clock-aligned window. */
  algorithm?: "sliding" | "fixed";
  /** How long a call may wait for a slot before failing with a retryable rate_limited error (default 15 s). */
  maxWaitMs?: number;
  /** Limiter identifier (default: the provider name). */
  key?: string;
}

export interface RetrySpec {
  /** Attempts in all, the first included (default 3). */
  attempts?: number;
  /** First backoff step; doubles each attempt, with jitter (default 250 ms). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** A Retry-After longer than this is not waited out: the call fails retryable at once (default 30 s). */
  maxRetryAfterMs?: number;
  /** Retry after our own timeout (default true). Off where a timed-out call keeps running and billing (Apify run-sync). */
  onTimeout?: boolean;
}

/** One provider_calls row. */
export interface ProviderCall {
  provider: string;
  operation: string;
  cacheKey: string | null;
  cached: boolean;
  status: number | null;
  credits: number;
  costCents: number;
  durationMs: number;
  leadId: string | null;
  clientId: string | null;
  error: string | null;
}
export type RecordCall = (call: ProviderCall) => void | Promise<void>;

/** A postgres.js handle (pool or transaction) used as a tagged template. */
// deno-lint-ignore no-explicit-any
export type SqlTag = (strings: TemplateStringsArray, ...values: any[]) => PromiseLike<unknown>;

export interface ProviderSpec {
  provider: string;
  baseUrl: string;
  /** Sent on every request (auth). */
  headers?: Record<string, string>;
  /** Set when credentials are missing: every call fails not_configured with this message, before any I/O. */
  missingCredentials?: string;
  /** Per attempt (default 15 s). */
  timeoutMs?: number;
  retry?: RetrySpec;
  rateLimit?: RateLimitSpec | false;
  /** Shared Redis for the limiter and the cache. undefined: from UPSTASH_REDIS_REST_URL/TOKEN; null: none. */
  redis?: Redis | null;
  /** Where provider_calls rows go: a callback, else a sql handle, else the function's pool (db()). */
  record?: RecordCall;
  sql?: SqlTag;
  /** For tests. */
  fetch?: typeof fetch;
  /** Bound on each Redis command (default 1.5 s); a slow Redis must not stall provider calls. */
  redisTimeoutMs?: number;
  /** How long a call waits for its provider_calls row to be written (default 2 s); the write itself goes on. */
  recordWaitMs?: number;
}

export interface ProviderCallContext {
  leadId?: string | null;
  clientId?: string | null;
  signal?: AbortSignal;
  /** Skip the cache read (the fresh answer is still written). */
  refresh?: boolean;
}

export interface CacheSpec<T = unknown> {
  /** e.g. "person:email", "person:linkedin", "org:domain": the Redis key is cache:<provider>:<kind>:<key>. */
  kind: string;
  key: string;
  ttlSeconds: number;
  /** TTL for an empty answer ("no match"); 0 = don't cache those. Default min(ttlSeconds, 1 day). */
  nullTtlSeconds?: number;
  /** What counts as empty (default: null). */
  isEmpty?: (data: T) => boolean;
  /** Bump when the mapped shape changes so old entries are ignored. */
  version?: number;
}

export type QueryValue = string | number | boolean | null | undefined;

export interface ProviderRequest<T> {
  /** e.g. "people.match": the provider_calls operation. */
  operation: string;
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Relative to the spec's baseUrl. */
  path: string;
  query?: Record<string, QueryValue | QueryValue[]>;
  /** Sent as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Validates the JSON body and maps it (snake_case → camelCase); a failure is a malformed error. */
  schema: z.ZodType<T>;
  /** Statuses that are an answer rather than an error, e.g. {404: () => null}. */
  onStatus?: Partial<Record<number, () => T>>;
  /** Errors reported inside a 2xx body. */
  check?: (data: T) => { message: string; retryable: boolean } | null | undefined;
  cache?: CacheSpec<T>;
  /** Credits a successful call spends (default 0); a cache hit always records 0. */
  credits?: number | ((data: T) => number);
  costCents?: number | ((data: T, credits: number) => number);
  timeoutMs?: number;
}

export interface ProviderResult<T> {
  data: T;
  cached: boolean;
  /** HTTP status of the answer (a cache hit: the status it was cached from). */
  status: number | null;
  credits: number;
  costCents: number;
  cacheKey: string | null;
}

const DEFAULTS = {
  timeoutMs: 15_000,
  attempts: 3,
  baseDelayMs: 250,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 30_000,
  maxWaitMs: 15_000,
  redisTimeoutMs: 1_500,
  // After a Redis failure, don't try it again for this long: every call would otherwise pay the timeout.
  redisRetryAfterMs: 30_000,
};

const RAW_BODY_IN_MESSAGE = 300;

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

export function truncate(s: string, max = RAW_BODY_IN_MESSAGE): string {
  return s.length <= max ? s : `${s.slice(0, max)}…(${s.length} chars)`;
}

const loggedOnce = new Set<string>();
/** One log line per process for a condition that would otherwise repeat on every call. */
function logOnce(id: string, level: "info" | "warn", msg: string, fields: Record<string, unknown> = {}) {
  if (loggedOnce.has(id)) return;
  loggedOnce.add(id);
  log(level, msg, fields);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Exponential backoff with jitter: half fixed, half random, so concurrent retries spread out. */
function backoff(attempt: number, retry: RetrySpec): number {
  const base = retry.baseDelayMs ?? DEFAULTS.baseDelayMs;
  const cap = retry.maxDelayMs ?? DEFAULTS.maxDelayMs;
  const step = Math.min(cap, base * 2 ** (attempt - 1));
  return step / 2 + Math.random() * (step / 2);
}

/** Retry-After as seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function windowMs(window: Window): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(window.trim());
  if (!m) throw new Error(`bad rate-limit window "${window}"`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as WindowUnit];
  return Number(m[1]) * unit;
}

/**
 * <PROVIDER>_RATE_LIMIT (e.g. "200/1 m", "50/m") overrides a client's default limit, so a plan's
 * limits can change without a deploy; "off" disables the limiter.
 */
export function rateLimitFromEnv(envName: string, fallback: RateLimitSpec): RateLimitSpec | false {
  const raw = readEnv(envName)?.trim();
  if (!raw) return fallback;
  if (raw === "off") return false;
  const m = /^(\d+)\s*\/\s*(\d+(?:\.\d+)?)?\s*(ms|s|m|h|d)$/.exec(raw);
  if (!m) {
    logOnce(`bad-rate-limit:${envName}`, "warn", `${envName} is not like "200/1 m"; using the default`, { value: raw });
    return fallback;
  }
  return { ...fallback, limit: Number(m[1]), window: `${m[2] ?? "1"} ${m[3]}` as Window };
}

/**
 * True for a base URL on this machine (a sandbox). Clients then default a missing key to "sandbox",
 * as providers.ts reports such a provider as sandbox whatever its key.
 */
export function isLocalUrl(url: string): boolean {
  try {
    const host = new URL(url).hostname;
    return host === "localhost" || host === "::1" || host === "[::1]" || host.startsWith("127.");
  } catch {
    return false;
  }
}

// Cache keys: normalised like the pool's dedup keys so a lead and its cache entry agree.

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** A bare lower-case domain from a domain or URL ("https://www.Acme.com.au/x" → "acme.com.au"), or null. */
export function normalizeDomain(input: string): string | null {
  let s = input.trim().toLowerCase();
  if (!s) return null;
  s = s.replace(/^[a-z][a-z0-9+.-]*:\/\//, "").replace(/[/?#].*$/, "").replace(/:\d+$/, "").replace(/\.$/, "");
  s = s.replace(/^www\./, "");
  return /^[a-z0-9.-]+\.[a-z]{2,63}$/.test(s) && !s.includes("..") ? s : null;
}

/** https://www.linkedin.com/in/<slug> (lead_pool.linkedin_key's form) for a profile URL, else null. */
export function linkedinKey(url: string): string | null {
  let u: URL;
  try {
    u = new URL(/^https?:\/\//i.test(url.trim()) ? url.trim() : `https://${url.trim()}`);
  } catch {
    return null;
  }
  if (!/(^|\.)linkedin\.com$/i.test(u.hostname)) return null;
  const m = /^\/in\/([^/]+)\/?/i.exec(u.pathname);
  if (!m) return null;
  let slug: string;
  try {
    slug = decodeURIComponent(m[1]);
  } catch {
    slug = m[1];
  }
  slug = slug.trim().toLowerCase();
  return slug ? `https://www.linkedin.com/in/${encodeURIComponent(slug)}` : null;
}

/** Hex SHA-256, for cache keys built from free text (search queries). */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

// Lenient leaf parsers for provider bodies: the real APIs omit, null or retype fields freely, and
// one odd field must not fail a whole lookup. Structure (arrays, ids) is still validated strictly.
export const lenient = {
  string: z.unknown().optional().transform((v) => (typeof v === "string" && v.trim() !== "" ? v : null)),
  number: z.unknown().optional().transform((v) => toNumber(v)),
  boolean: z.unknown().optional().transform((v) => (typeof v === "boolean" ? v : null)),
  strings: z.unknown().optional().transform((v) =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === "string" && x.trim() !== "") : []
  ),
};

/** A number from a number or a numeric string ("1,200", "500+"), else null. */
export function toNumber(v: unknown): number | null {
  if (typeof v === "number") return Number.isFinite(v) ? v : null;
  if (typeof v !== "string") return null;
  const n = Number(v.replace(/[,+\s]/g, ""));
  return v.trim() !== "" && Number.isFinite(n) ? n : null;
}

/** Items of an array that pass the schema; the others are skipped (logged at debug). */
export function tolerantArray<T>(item: z.ZodType<T>) {
  return z.array(z.unknown()).transform((items) =>
    items.flatMap((raw) => {
      const r = item.safeParse(raw);
      if (!r.success) log("debug", "provider item skipped", { issues: summarizeIssues(r.error) });
      return r.success ? [r.data] : [];
    })
  );
}

function summarizeIssues(error: z.ZodError): string {
  return error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ");
}

// ---------------------------------------------------------------------------------------------
// Redis: one client per URL, a health flag, and the fallback when it is missing or down
// ---------------------------------------------------------------------------------------------

const redisFromEnv = new Map<string, Redis>();
const redisDownUntil = new WeakMap<Redis, number>();

function resolveRedis(spec: ProviderSpec): Redis | null {
  if (spec.redis !== undefined) return spec.redis;
  const url = readEnv("UPSTASH_REDIS_REST_URL");
  const token = readEnv("UPSTASH_REDIS_REST_TOKEN");
  if (!url || !token) return null;
  const id = `${url}\n${token}`;
  let r = redisFromEnv.get(id);
  if (!r) {
    // No SDK retries: a failing Redis falls back at once instead of after ~4 s of backoff.
    r = new Redis({ url, token, retry: false, enableTelemetry: false });
    redisFromEnv.set(id, r);
  }
  return r;
}

function redisUsable(spec: ProviderSpec): Redis | null {
  const r = resolveRedis(spec);
  if (!r) {
    logOnce("redis:none", "warn",
      "provider calls: Redis is not configured; rate limits are per process and provider responses are not cached");
    return null;
  }
  const until = redisDownUntil.get(r) ?? 0;
  return Date.now() >= until ? r : null;
}

/** A reply error (bad command, wrong type) means Redis answered: only connectivity failures mark it down. */
function isConnectivityError(err: unknown): boolean {
  const e = err as { name?: string; message?: string } | null;
  if (e?.name === "UpstashError") return /unable to connect|connection|ECONN|timed? ?out/i.test(e.message ?? "");
  return true;
}

function markRedisDown(r: Redis, err: unknown) {
  if (!isConnectivityError(err)) {
    log("warn", "provider calls: Redis refused a command", { error: err instanceof Error ? err.message : String(err) });
    return;
  }
  redisDownUntil.set(r, Date.now() + DEFAULTS.redisRetryAfterMs);
  logOnce("redis:down", "warn",
    "provider calls: Redis is unreachable; rate limits fall back to a per-process limiter and responses are not cached until it answers",
    { error: err instanceof Error ? err.message : String(err) });
}

// ---------------------------------------------------------------------------------------------
// Rate limit: @upstash/ratelimit shared by every instance; a per-process limiter when Redis isn't there
// ---------------------------------------------------------------------------------------------

interface LimitAnswer {
  success: boolean;
  reset: number;
}

// Per process, so every client of a provider in this process shares it like they share Redis.
const localWindows = new Map<string, number[]>();

function localLimit(id: string, rl: RateLimitSpec): LimitAnswer {
  const span = windowMs(rl.window);
  const now = Date.now();
  if ((rl.algorithm ?? "sliding") === "fixed") {
    const bucket = Math.floor(now / span);
    const key = `${id}|fixed|${rl.limit}|${span}|${bucket}`;
    const hits = localWindows.get(key) ?? [];
    if (hits.length === 0) {
      for (const k of localWindows.keys()) if (k.startsWith(`${id}|fixed|`)) localWindows.delete(k);
    }
    const reset = (bucket + 1) * span;
    if (hits.length >= rl.limit) return { success: false, reset };
    hits.push(now);
    localWindows.set(key, hits);
    return { success: true, reset };
  }
  // Sliding log: exact, and the process-local volume is small.
  const key = `${id}|sliding|${rl.limit}|${span}`;
  const hits = (localWindows.get(key) ?? []).filter((t) => t > now - span);
  localWindows.set(key, hits);
  if (hits.length >= rl.limit) return { success: false, reset: hits[0] + span };
  hits.push(now);
  return { success: true, reset: now + span };
}

// The library's Lua scripts begin with `#!lua flags=allow-key-locking`, which Upstash accepts and a plain
// redis-server 7.0 rejects; locally dev/redis-bridge.ts rewrites that shebang the way Upstash accepts it,
// so nothing here works around it. A Redis that refuses the scripts just gets the per-process limiter.
const limiters = new WeakMap<ProviderSpec, { redis: Redis; limiter: Ratelimit }>();

function sharedLimiter(spec: ProviderSpec, redis: Redis, rl: RateLimitSpec): Ratelimit {
  const existing = limiters.get(spec);
  if (existing && existing.redis === redis) return existing.limiter;
  const limiter = new Ratelimit({
    redis,
    limiter: (rl.algorithm ?? "sliding") === "fixed"
      ? Ratelimit.fixedWindow(rl.limit, rl.window)
      : Ratelimit.slidingWindow(rl.limit, rl.window),
    prefix: "ratelimit:provider",
    analytics: false,
    // On a Redis timeout the library lets the call through (reason "timeout"); we then ask the local limiter.
    timeout: spec.redisTimeoutMs ?? DEFAULTS.redisTimeoutMs,
  });
  limiters.set(spec, { redis, limiter });
  return limiter;
}

async function limitOnce(spec: ProviderSpec, rl: RateLimitSpec, id: string): Promise<LimitAnswer> {
  const redis = redisUsable(spec);
  if (redis) {
    try {
      const res = await withTimeout(
        sharedLimiter(spec, redis, rl).limit(id),
        (spec.redisTimeoutMs ?? DEFAULTS.redisTimeoutMs) + 500,
        "rate limit",
      );
      if (res.reason !== "timeout") return { success: res.success, reset: res.reset };
      markRedisDown(redis, new Error("rate limit: Redis timed out"));
    } catch (err) {
      markRedisDown(redis, err);
    }
  }
  return localLimit(id, rl);
}

async function acquireSlot(spec: ProviderSpec, operation: string, ctx: ProviderCallContext): Promise<void> {
  const rl = spec.rateLimit;
  if (!rl) return;
  const id = rl.key ?? spec.provider;
  const deadline = Date.now() + (rl.maxWaitMs ?? DEFAULTS.maxWaitMs);
  for (;;) {
    const answer = await limitOnce(spec, rl, id);
    if (answer.success) return;
    const wait = Math.max(5, answer.reset - Date.now());
    if (Date.now() + wait > deadline) {
      throw new ProviderError({
        provider: spec.provider, operation, code: "rate_limited", retryable: true, retryAfterMs: wait,
        message: `our rate limit of ${rl.limit} per ${rl.window} is used up; a slot frees in ${wait} ms`,
      });
    }
    // A little jitter so waiters don't all stampede the same reset instant.
    await sleep(wait + Math.random() * 25, ctx.signal);
  }
}

// ---------------------------------------------------------------------------------------------
// Cache
// ---------------------------------------------------------------------------------------------

interface CacheEnvelope {
  v: number;
  s: number | null;
  d: unknown;
}

export function cacheKeyFor(provider: string, cache: Pick<CacheSpec, "kind" | "key">): string {
  return `cache:${provider}:${cache.kind}:${cache.key}`;
}

async function cacheRead(spec: ProviderSpec, key: string, version: number): Promise<CacheEnvelope | null> {
  const redis = redisUsable(spec);
  if (!redis) return null;
  try {
    const env = await withTimeout(redis.get<CacheEnvelope>(key), spec.redisTimeoutMs ?? DEFAULTS.redisTimeoutMs, "cache read");
    return env && typeof env === "object" && env.v === version && "d" in env ? env : null;
  } catch (err) {
    markRedisDown(redis, err);
    return null;
  }
}

async function cacheWrite(spec: ProviderSpec, key: string, env: CacheEnvelope, ttlSeconds: number): Promise<void> {
  if (ttlSeconds <= 0) return;
  const redis = redisUsable(spec);
  if (!redis) return;
  try {
    await withTimeout(redis.set(key, env, { ex: Math.ceil(ttlSeconds) }), spec.redisTimeoutMs ?? DEFAULTS.redisTimeoutMs, "cache write");
  } catch (err) {
    markRedisDown(redis, err);
  }
}

// ---------------------------------------------------------------------------------------------
// Recording credits
// ---------------------------------------------------------------------------------------------

/** Inserts one provider_calls row through a postgres.js handle (pool or transaction). */
export async function insertProviderCall(sql: SqlTag, c: ProviderCall): Promise<void> {
  await sql`insert into public.provider_calls
      (provider, operation, cache_key, cached, status, credits, cost_cents, duration_ms, lead_id, client_id, error)
    values (${c.provider}, ${c.operation}, ${c.cacheKey}, ${c.cached}, ${c.status}, ${c.credits}, ${c.costCents},
            ${c.durationMs}, ${c.leadId}, ${c.clientId}, ${c.error})`;
}

async function writeCall(spec: ProviderSpec, call: ProviderCall): Promise<void> {
  if (spec.record) return await spec.record(call);
  if (spec.sql) return await insertProviderCall(spec.sql, call);
  if (!readEnv("SUPABASE_DB_URL") && !readEnv("DATABASE_URL")) {
    logOnce("record:no-db", "warn", "provider calls: no database configured; credits are not recorded");
    return;
  }
  await insertProviderCall(db() as unknown as SqlTag, call);
}

async function recordCall(spec: ProviderSpec, call: ProviderCall): Promise<void> {
  const written = writeCall(spec, call).then(
    () => true,
    (err) => {
      // A lost row must not fail a call that already spent credits; say so loudly instead.
      log("error", "provider call not recorded", {
        provider: call.provider, operation: call.operation, credits: call.credits,
        error: err instanceof Error ? err.message : String(err),
      });
      return true;
    },
  );
  // The default pool may be busy, e.g. a caller's transaction holding a one-connection pool (PGlite):
  // waiting would deadlock, so the insert stays queued and runs when a connection frees.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const done = await Promise.race([
    written,
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), spec.recordWaitMs ?? 2_000))),
  ]);
  clearTimeout(timer);
  if (!done) {
    log("warn", "provider call row still queued: the database pool is busy", { provider: call.provider, operation: call.operation });
  }
}

/** Forgets process state (Redis health, once-only log lines, local limiter windows): for tests. */
export function resetProviderHttpState(): void {
  loggedOnce.clear();
  localWindows.clear();
  redisFromEnv.clear();
}

// ---------------------------------------------------------------------------------------------
// providerFetch
// ---------------------------------------------------------------------------------------------

function buildUrl(baseUrl: string, path: string, query?: ProviderRequest<unknown>["query"]): string {
  const url = `${baseUrl.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`;
  if (!query) return url;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    for (const item of Array.isArray(v) ? v : [v]) {
      if (item !== undefined && item !== null) params.append(k, String(item));
    }
  }
  const qs = params.toString();
  return qs ? `${url}${url.includes("?") ? "&" : "?"}${qs}` : url;
}

/** The provider's own error message from a JSON or text body, for ProviderError messages. */
function errorDetail(text: string): string {
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    const e = body.error;
    const msg = typeof e === "string" ? e
      : e && typeof e === "object" && typeof (e as { message?: unknown }).message === "string" ? (e as { message: string }).message
      : typeof body.message === "string" ? body.message
      : typeof body.status_message === "string" ? body.status_message
      : undefined;
    if (msg) return truncate(msg);
  } catch {
    // not JSON
  }
  return truncate(text.trim() || "(empty body)");
}

function isTimeout(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { name?: string }).name === "TimeoutError";
}

function resolveAmount<T>(v: number | ((data: T) => number) | undefined, data: T): number {
  const n = typeof v === "function" ? v(data) : v ?? 0;
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/**
 * One provider call: cache → rate-limit slot → HTTP with timeout and retries → zod → record → cache.
 * Retries network errors, timeouts, 429 and 5xx (Retry-After honoured up to a cap); any other 4xx
 * and a malformed body fail at once, non-retryable. Every HTTP attempt and every cache hit is a
 * provider_calls row.
 */
export async function providerFetch<T>(
  spec: ProviderSpec,
  req: ProviderRequest<T>,
  ctx: ProviderCallContext = {},
): Promise<ProviderResult<T>> {
  const { provider } = spec;
  const operation = req.operation;
  const base = { provider, operation, leadId: ctx.leadId ?? null, clientId: ctx.clientId ?? null };

  if (spec.missingCredentials) {
    throw new ProviderError({ provider, operation, code: "not_configured", retryable: false, message: spec.missingCredentials });
  }

  const cacheKey = req.cache ? cacheKeyFor(provider, req.cache) : null;
  const version = req.cache?.version ?? 1;
  if (req.cache && cacheKey && !ctx.refresh) {
    const started = performance.now();
    const hit = await cacheRead(spec, cacheKey, version);
    if (hit) {
      await recordCall(spec, {
        ...base, cacheKey, cached: true, status: hit.s, credits: 0, costCents: 0,
        durationMs: Math.round(performance.now() - started), error: null,
      });
      return { data: hit.d as T, cached: true, status: hit.s, credits: 0, costCents: 0, cacheKey };
    }
  }

  const retry = spec.retry ?? {};
  const attempts = Math.max(1, retry.attempts ?? DEFAULTS.attempts);
  const timeoutMs = req.timeoutMs ?? spec.timeoutMs ?? DEFAULTS.timeoutMs;
  const url = buildUrl(spec.baseUrl, req.path, req.query);
  const headers: Record<string, string> = { accept: "application/json", ...spec.headers, ...req.headers };
  if (req.body !== undefined) headers["content-type"] ??= "application/json";
  const body = req.body === undefined ? undefined : JSON.stringify(req.body);
  const doFetch = spec.fetch ?? fetch;

  for (let attempt = 1; ; attempt++) {
    await acquireSlot(spec, operation, ctx);
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const fail = async (e: ProviderError, status: number | null) => {
      await recordCall(spec, { ...base, cacheKey, cached: false, status, credits: 0, costCents: 0, durationMs: elapsed(), error: truncate(e.message, 1000) });
      return e;
    };

    let res: Response;
    let text: string;
    try {
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = ctx.signal ? AbortSignal.any([timeout, ctx.signal]) : timeout;
      res = await doFetch(url, { method: req.method ?? (body === undefined ? "GET" : "POST"), headers, body, signal });
      text = await res.text();
    } catch (err) {
      if (ctx.signal?.aborted) {
        throw await fail(new ProviderError({ provider, operation, code: "aborted", retryable: false, message: "aborted by the caller", cause: err }), null);
      }
      const timedOut = isTimeout(err);
      const e = await fail(new ProviderError({
        provider, operation, code: timedOut ? "timeout" : "network", retryable: true, cause: err,
        message: timedOut ? `no answer within ${timeoutMs} ms` : `network error: ${err instanceof Error ? err.message : String(err)}`,
      }), null);
      if (attempt < attempts && (!timedOut || retry.onTimeout !== false)) {
        await sleep(backoff(attempt, retry), ctx.signal);
        continue;
      }
      throw e;
    }

    let data: T;
    const special = req.onStatus?.[res.status];
    if (special) {
      data = special();
    } else if (!res.ok) {
      const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
      const again = res.status === 429 || res.status >= 500;
      const e = await fail(new ProviderError({
        provider, operation, code: "http", status: res.status, retryAfterMs,
        // 408: the provider gave up waiting (an Apify run outlived the sync call); later may work.
        retryable: again || res.status === 408,
        message: `HTTP ${res.status}: ${errorDetail(text)}`,
      }), res.status);
      if (!again || attempt >= attempts) throw e;
      let delay = backoff(attempt, retry);
      if (retryAfterMs !== undefined) {
        // Waiting less than asked only earns another 429; longer than the cap is the caller's to schedule.
        if (retryAfterMs > (retry.maxRetryAfterMs ?? DEFAULTS.maxRetryAfterMs)) throw e;
        delay = retryAfterMs + Math.random() * 50;
      }
      await sleep(delay, ctx.signal);
      continue;
    } else {
      let json: unknown;
      try {
        json = text.trim() === "" ? null : JSON.parse(text);
      } catch {
        throw await fail(new ProviderError({
          provider, operation, code: "malformed", status: res.status, retryable: false,
          message: `body is not JSON: ${truncate(text)}`,
        }), res.status);
      }
      const parsed = req.schema.safeParse(json);
      if (!parsed.success) {
        throw await fail(new ProviderError({
          provider, operation, code: "malformed", status: res.status, retryable: false,
          message: `unexpected body (${summarizeIssues(parsed.error)}): ${truncate(text)}`,
        }), res.status);
      }
      data = parsed.data;
      const problem = req.check?.(data);
      if (problem) {
        const e = await fail(new ProviderError({
          provider, operation, code: "provider", status: res.status, retryable: problem.retryable, message: problem.message,
        }), res.status);
        if (!problem.retryable || attempt >= attempts) throw e;
        await sleep(backoff(attempt, retry), ctx.signal);
        continue;
      }
    }

    const credits = resolveAmount(req.credits, data);
    const costCents = typeof req.costCents === "function"
      ? Math.max(0, req.costCents(data, credits) || 0)
      : Math.max(0, req.costCents ?? 0);
    await recordCall(spec, { ...base, cacheKey, cached: false, status: res.status, credits, costCents, durationMs: elapsed(), error: null });
    if (req.cache && cacheKey) {
      const empty = req.cache.isEmpty ? req.cache.isEmpty(data) : data === null || data === undefined;
      const ttl = empty
        ? req.cache.nullTtlSeconds ?? Math.min(req.cache.ttlSeconds, 86_400)
        : req.cache.ttlSeconds;
      await cacheWrite(spec, cacheKey, { v: version, s: res.status, d: data ?? null }, ttl);
    }
    return { data, cached: false, status: res.status, credits, costCents, cacheKey };
  }
}
