// providerFetch against a tiny local provider: retries (429 with Retry-After, 5xx), no retry on other
// 4xx, timeouts, malformed bodies, the Redis cache and its provider_calls rows, the rate limit shared
// by two clients through one Redis, and the per-process fallback when Redis is missing or down.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { Redis } from "@upstash/redis";
import { z } from "zod";
import { createRedisBridge, type RedisBridge } from "../../dev/redis-bridge.ts";
import {
  linkedinKey,
  normalizeDomain,
  parseRetryAfter,
  ProviderError,
  providerFetch,
  resetProviderHttpState,
  type ProviderCall,
  type ProviderSpec,
} from "../../shared/integrations/provider-http.ts";
import { db } from "../../shared/db/client.ts";
import { getStack } from "../helpers/stack.ts";

const TOKEN = `ph-${Math.random().toString(36).slice(2)}`;
const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

let server: ServerType;
let base: string;
let bridge: RedisBridge;
let redis: Redis;
const hits = new Map<string, number>();
const hit = (key: string) => hits.set(key, (hits.get(key) ?? 0) + 1);
const hitsOf = (key: string) => hits.get(key) ?? 0;

// A provider that misbehaves on demand; every route counts its hits per "k" query value.
function fakeProvider(): Hono {
  const app = new Hono();
  app.use("*", async (c, next) => {
    hit(`${c.req.path.replace(/^\/p(?=\/)/, "")}:${c.req.query("k") ?? ""}`);
    await next();
  });
  app.get("/ok", (c) => c.json({ value: c.req.query("k"), n: 1 }));
  app.get("/none", (c) => c.json({ value: null }));
  app.get("/once-429", (c) =>
    hitsOf(`/once-429:${c.req.query("k")}`) === 1
      ? c.json({ error: "slow down" }, 429, { "retry-after": c.req.query("ra") ?? "1" })
      : c.json({ value: "after-429" }));
  app.get("/twice-500", (c) =>
    hitsOf(`/twice-500:${c.req.query("k")}`) <= 2 ? c.json({ error: "boom" }, 500) : c.json({ value: "after-500" }));
  app.get("/always-503", (c) => c.text("unavailable", 503));
  app.get("/bad-request", (c) => c.json({ error: { type: "invalid-input", message: "profileUrls is required" } }, 400));
  app.get("/slow", async (c) => {
    await new Promise((r) => setTimeout(r, 400));
    return c.json({ value: "late" });
  });
  app.get("/not-json", (c) => c.body(`<html>${"x".repeat(2000)}</html>`, 200, { "content-type": "text/html" }));
  app.get("/wrong-shape", (c) => c.json({ value: 42 }));
  app.get("/gone", (c) => c.json({ error: "not found" }, 404));
  return app;
}

const Value = z.object({ value: z.string().nullable() }).transform((b) => b.value);

function spec(over: Partial<ProviderSpec> & { calls?: ProviderCall[] } = {}): ProviderSpec {
  const calls = over.calls;
  return {
    provider: `test-${RUN}`,
    baseUrl: `${base}/p`,
    redis,
    rateLimit: false,
    retry: { baseDelayMs: 10, maxDelayMs: 50 },
    record: calls ? (c) => void calls.push(c) : () => {},
    ...over,
  };
}

beforeAll(async () => {
  bridge = await createRedisBridge({ token: TOKEN, redisUrl: "redis://127.0.0.1:6379" });
  const root = new Hono();
  root.route("/p", fakeProvider());
  root.route("/redis", bridge.app);
  await new Promise<void>((resolve) => {
    server = serve({ fetch: root.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
      base = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
  redis = new Redis({ url: `${base}/redis`, token: TOKEN, retry: false, enableTelemetry: false });
});

afterAll(async () => {
  const keys = [...await redis.keys(`cache:*${RUN}*`), ...await redis.keys(`ratelimit:provider:*${RUN}*`)];
  if (keys.length) await redis.del(...keys);
  await new Promise<void>((r) => server.close(() => r()));
  await bridge.close();
});

describe("retries", () => {
  it("retries a 429 after its Retry-After (seconds) and records both attempts", async () => {
    const calls: ProviderCall[] = [];
    const started = Date.now();
    const res = await providerFetch(spec({ calls }), { operation: "op", path: "/once-429", query: { k: `a-${RUN}` }, schema: Value, credits: 1 });
    expect(res.data).toBe("after-429");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(hitsOf(`/once-429:a-${RUN}`)).toBe(2);
    expect(calls.map((c) => [c.status, c.credits, c.error !== null])).toEqual([[429, 0, true], [200, 1, false]]);
    expect(calls[0].error).toMatch(/HTTP 429: slow down/);
  });

  it("reads Retry-After as an HTTP date too, and gives up at once when it asks for longer than the cap", async () => {
    expect(parseRetryAfter("2", 0)).toBe(2000);
    expect(parseRetryAfter(new Date(Date.now() + 3000).toUTCString())).toBeGreaterThan(1000);
    expect(parseRetryAfter("soon")).toBeUndefined();
    const calls: ProviderCall[] = [];
    const err = await providerFetch(spec({ calls, retry: { maxRetryAfterMs: 5_000 } }), {
      operation: "op", path: "/once-429", query: { k: `cap-${RUN}`, ra: "120" }, schema: Value,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ status: 429, retryable: true, code: "http", retryAfterMs: 120_000 });
    expect(hitsOf(`/once-429:cap-${RUN}`)).toBe(1);
  });

  it("retries 5xx with backoff until it succeeds, and fails retryable when attempts run out", async () => {
    const res = await providerFetch(spec({ retry: { attempts: 3, baseDelayMs: 5 } }), {
      operation: "op", path: "/twice-500", query: { k: `b-${RUN}` }, schema: Value,
    });
    expect(res.data).toBe("after-500");
    expect(hitsOf(`/twice-500:b-${RUN}`)).toBe(3);

    const calls: ProviderCall[] = [];
    const err = await providerFetch(spec({ calls, retry: { attempts: 2, baseDelayMs: 5 } }), {
      operation: "op", path: "/always-503", query: { k: `c-${RUN}` }, schema: Value,
    }).catch((e) => e);
    expect(err).toMatchObject({ provider: `test-${RUN}`, operation: "op", status: 503, retryable: true });
    expect(err.message).toContain("unavailable");
    expect(hitsOf(`/always-503:c-${RUN}`)).toBe(2);
    expect(calls).toHaveLength(2);
  });

  it("does not retry another 4xx, and carries the provider's message", async () => {
    const err = await providerFetch(spec(), { operation: "op", path: "/bad-request", query: { k: `d-${RUN}` }, schema: Value }).catch((e) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ status: 400, retryable: false, code: "http" });
    expect(err.message).toContain("profileUrls is required");
    expect(hitsOf(`/bad-request:d-${RUN}`)).toBe(1);
  });

  it("a status the request declares an answer (404 → null) is not an error", async () => {
    const res = await providerFetch(spec(), {
      operation: "op", path: "/gone", query: { k: `g-${RUN}` }, schema: Value, onStatus: { 404: () => null },
    });
    expect(res.data).toBeNull();
    expect(res.status).toBe(404);
  });

  it("times out each attempt and retries, then fails retryable with code timeout", async () => {
    const calls: ProviderCall[] = [];
    const started = Date.now();
    const err = await providerFetch(spec({ calls, timeoutMs: 100, retry: { attempts: 2, baseDelayMs: 5 } }), {
      operation: "op", path: "/slow", query: { k: `e-${RUN}` }, schema: Value,
    }).catch((e) => e);
    expect(err).toMatchObject({ code: "timeout", retryable: true });
    expect(Date.now() - started).toBeLessThan(390 * 2);
    expect(hitsOf(`/slow:e-${RUN}`)).toBe(2);
    expect(calls.every((c) => c.status === null && /no answer within 100 ms/.test(c.error ?? ""))).toBe(true);
  });

  it("does not retry a timeout when the spec says a timed-out call keeps running", async () => {
    await providerFetch(spec({ timeoutMs: 100, retry: { attempts: 3, onTimeout: false } }), {
      operation: "op", path: "/slow", query: { k: `e2-${RUN}` }, schema: Value,
    }).catch((e) => e);
    expect(hitsOf(`/slow:e2-${RUN}`)).toBe(1);
  });

  it("stops when the caller's signal aborts, without retrying", async () => {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 50);
    const err = await providerFetch(spec({ retry: { attempts: 3 } }), {
      operation: "op", path: "/slow", query: { k: `ab-${RUN}` }, schema: Value,
    }, { signal: ctl.signal }).catch((e) => e);
    expect(err).toMatchObject({ code: "aborted", retryable: false });
    expect(hitsOf(`/slow:ab-${RUN}`)).toBe(1);
  });

  it("fails a network error retryable after its attempts", async () => {
    const err = await providerFetch(spec({ baseUrl: "http://127.0.0.1:1", retry: { attempts: 2, baseDelayMs: 5 } }), {
      operation: "op", path: "/ok", schema: Value,
    }).catch((e) => e);
    expect(err).toMatchObject({ code: "network", retryable: true });
  });

  it("without credentials fails not_configured before any request", async () => {
    const err = await providerFetch(spec({ missingCredentials: "FAKE_API_KEY is not set" }), {
      operation: "op", path: "/ok", query: { k: `nc-${RUN}` }, schema: Value,
    }).catch((e) => e);
    expect(err).toMatchObject({ code: "not_configured", retryable: false });
    expect(err.message).toContain("FAKE_API_KEY");
    expect(hitsOf(`/ok:nc-${RUN}`)).toBe(0);
  });
});

describe("validation", () => {
  it("a body that is not JSON is a non-retryable malformed error quoting the raw body, truncated", async () => {
    const err = await providerFetch(spec(), { operation: "op", path: "/not-json", query: { k: `f-${RUN}` }, schema: Value }).catch((e) => e);
    expect(err).toMatchObject({ code: "malformed", retryable: false, status: 200 });
    expect(err.message).toContain("<html>xxx");
    expect(err.message).toMatch(/…\(2013 chars\)/);
    expect(err.message.length).toBeLessThan(500);
    expect(hitsOf(`/not-json:f-${RUN}`)).toBe(1);
  });

  it("JSON of the wrong shape names the bad field", async () => {
    const err = await providerFetch(spec(), { operation: "op", path: "/wrong-shape", query: { k: `h-${RUN}` }, schema: Value }).catch((e) => e);
    expect(err).toMatchObject({ code: "malformed", retryable: false });
    expect(err.message).toMatch(/value: /);
    expect(err.message).toContain('{"value":42}');
  });
});

describe("cache", () => {
  it("a hit costs no HTTP call and records credits 0, cached true, under cache:<provider>:<kind>:<key>", async () => {
    const calls: ProviderCall[] = [];
    const s = spec({ calls });
    const key = `ana+${RUN}@example.com`;
    const req = {
      operation: "person.lookup", path: "/ok", query: { k: `c1-${RUN}` }, schema: Value, credits: 1, costCents: 2.5,
      cache: { kind: "person:email", key, ttlSeconds: 60 },
    };
    const first = await providerFetch(s, req, { leadId: "00000000-0000-0000-0000-000000000001", clientId: null });
    const second = await providerFetch(s, req, { leadId: "00000000-0000-0000-0000-000000000001" });
    expect(first).toMatchObject({ data: `c1-${RUN}`, cached: false, credits: 1, costCents: 2.5 });
    expect(second).toMatchObject({ data: `c1-${RUN}`, cached: true, credits: 0, costCents: 0, status: 200 });
    expect(hitsOf(`/ok:c1-${RUN}`)).toBe(1);
    const cacheKey = `cache:test-${RUN}:person:email:${key}`;
    expect(calls.map((c) => [c.cacheKey, c.cached, c.credits, c.costCents])).toEqual([
      [cacheKey, false, 1, 2.5],
      [cacheKey, true, 0, 0],
    ]);
    expect(calls[1].leadId).toBe("00000000-0000-0000-0000-000000000001");
    const ttl = await redis.ttl(cacheKey);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);

    // refresh skips the read but still writes
    const fresh = await providerFetch(s, req, { refresh: true });
    expect(fresh.cached).toBe(false);
    expect(hitsOf(`/ok:c1-${RUN}`)).toBe(2);
  });

  it("caches a null answer with its own TTL, and a bumped version ignores old entries", async () => {
    const s = spec();
    const req = { operation: "org", path: "/none", query: { k: `n1-${RUN}` }, schema: Value, cache: { kind: "org:domain", key: `none-${RUN}.com`, ttlSeconds: 600, nullTtlSeconds: 30 } };
    expect((await providerFetch(s, req)).data).toBeNull();
    const again = await providerFetch(s, req);
    expect(again).toMatchObject({ data: null, cached: true });
    expect(await redis.ttl(`cache:test-${RUN}:org:domain:none-${RUN}.com`)).toBeLessThanOrEqual(30);
    const v2 = await providerFetch(s, { ...req, cache: { ...req.cache, version: 2 } });
    expect(v2.cached).toBe(false);
    expect(hitsOf(`/none:n1-${RUN}`)).toBe(2);
  });

  it("errors are never cached", async () => {
    const s = spec();
    const req = { operation: "op", path: "/bad-request", query: { k: `nc2-${RUN}` }, schema: Value, cache: { kind: "x", key: `bad-${RUN}`, ttlSeconds: 60 } };
    await providerFetch(s, req).catch(() => {});
    await providerFetch(s, req).catch(() => {});
    expect(hitsOf(`/bad-request:nc2-${RUN}`)).toBe(2);
  });
});

describe("rate limit", () => {
  it("two clients sharing one Redis never exceed the limit together", async () => {
    const provider = `test-rl-${RUN}`;
    const rateLimit = { limit: 4, window: "1 m" as const, maxWaitMs: 0 };
    // Two specs: two Ratelimit instances and two Redis clients, as two function instances would have.
    const a = spec({ provider, rateLimit, redis: new Redis({ url: `${base}/redis`, token: TOKEN, retry: false, enableTelemetry: false }) });
    const b = spec({ provider, rateLimit, redis: new Redis({ url: `${base}/redis`, token: TOKEN, retry: false, enableTelemetry: false }) });
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => providerFetch(i % 2 ? a : b, { operation: "op", path: "/ok", query: { k: `rl-${RUN}` }, schema: Value })),
    );
    const ok = results.filter((r) => r.status === "fulfilled");
    const limited = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
    expect(ok).toHaveLength(4);
    expect(hitsOf(`/ok:rl-${RUN}`)).toBe(4);
    expect(limited).toHaveLength(6);
    for (const e of limited) expect(e).toMatchObject({ code: "rate_limited", retryable: true });
    expect(limited[0].retryAfterMs).toBeGreaterThan(0);
    // The count lives in Redis (not in this process's fallback limiter), where any instance sees it.
    expect(await redis.keys(`ratelimit:provider:${provider}:*`)).not.toHaveLength(0);
  });

  it("waits for a slot when allowed to, so every call goes through at the limited pace", async () => {
    const provider = `test-rlw-${RUN}`;
    const rateLimit = { limit: 2, window: "1 s" as const, algorithm: "fixed" as const, maxWaitMs: 5_000 };
    const a = spec({ provider, rateLimit });
    const b = spec({ provider, rateLimit, redis: new Redis({ url: `${base}/redis`, token: TOKEN, retry: false, enableTelemetry: false }) });
    const started = Date.now();
    await Promise.all(Array.from({ length: 5 }, (_, i) =>
      providerFetch(i % 2 ? a : b, { operation: "op", path: "/ok", query: { k: `rlw-${RUN}` }, schema: Value })));
    expect(hitsOf(`/ok:rlw-${RUN}`)).toBe(5);
    // 5 calls at 2 per fixed second span three windows: at least two window boundaries pass.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it("falls back to a per-process limiter when Redis is unreachable or absent, and says so once", async () => {
    const previous = process.env.LOG_LEVEL;
    process.env.LOG_LEVEL = "warn";
    resetProviderHttpState();
    const lines: string[] = [];
    const spy = vi.spyOn(console, "error").mockImplementation((line: unknown) => void lines.push(String(line)));
    try {
      const rateLimit = { limit: 2, window: "1 m" as const, maxWaitMs: 0 };
      const down = spec({
        provider: `test-down-${RUN}`, rateLimit,
        redis: new Redis({ url: "http://127.0.0.1:1", token: "x", retry: false, enableTelemetry: false }),
      });
      const r1 = await Promise.allSettled([1, 2, 3].map(() => providerFetch(down, { operation: "op", path: "/ok", query: { k: `down-${RUN}` }, schema: Value })));
      expect(r1.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected"]);
      expect((r1[2] as PromiseRejectedResult).reason).toMatchObject({ code: "rate_limited" });

      const none = spec({ provider: `test-none-${RUN}`, rateLimit, redis: null });
      const r2 = await Promise.allSettled([1, 2, 3, 4].map(() => providerFetch(none, { operation: "op", path: "/ok", query: { k: `none-${RUN}` }, schema: Value })));
      expect(r2.filter((r) => r.status === "fulfilled")).toHaveLength(2);
      // one more call on the unreachable Redis logs nothing new
      await providerFetch(down, { operation: "op", path: "/ok", query: { k: `down2-${RUN}` }, schema: Value }).catch(() => {});
    } finally {
      spy.mockRestore();
      process.env.LOG_LEVEL = previous;
    }
    const unreachable = lines.filter((l) => l.includes("Redis is unreachable"));
    const absent = lines.filter((l) => l.includes("Redis is not configured"));
    expect(unreachable).toHaveLength(1);
    expect(absent).toHaveLength(1);
    for (const l of [...unreachable, ...absent]) expect(JSON.parse(l).level).toBe("warn");
  });
});

describe("recording to provider_calls", () => {
  it("writes one row per call and per cache hit through a sql handle", async () => {
    await getStack();
    const provider = `test-sql-${RUN}`;
    const s = spec({ provider, record: undefined, sql: db() });
    const req = { operation: "person.match", path: "/ok", query: { k: `sql-${RUN}` }, schema: Value, credits: 1, costCents: 3, cache: { kind: "person:email", key: `sql-${RUN}@example.com`, ttlSeconds: 60 } };
    const lead = "00000000-0000-0000-0000-0000000000aa";
    await providerFetch(s, req, { leadId: lead });
    await providerFetch(s, req, { leadId: lead });
    await providerFetch(s, { ...req, path: "/bad-request", cache: undefined }, { leadId: lead }).catch(() => {});
    const rows = await db()`select operation, cache_key, cached, status, credits::float8 as credits, cost_cents::float8 as cost_cents,
                                   duration_ms, lead_id, client_id, error
                              from public.provider_calls where provider = ${provider} order by id`;
    expect(rows.map((r) => [r.cached, r.status, r.credits, r.cost_cents, r.lead_id])).toEqual([
      [false, 200, 1, 3, lead],
      [true, 200, 0, 0, lead],
      [false, 400, 0, 0, lead],
    ]);
    expect(rows[0].cache_key).toBe(`cache:${provider}:person:email:sql-${RUN}@example.com`);
    expect(rows[2].error).toContain("HTTP 400");
    expect(rows.every((r) => typeof r.duration_ms === "number")).toBe(true);
  });
});

describe("recording never blocks a call for long", () => {
  it("a write that cannot finish (a busy one-connection pool) stays queued and the call returns", async () => {
    let finished = false;
    const slowRecord = () => new Promise<void>((r) => setTimeout(() => { finished = true; r(); }, 300));
    const started = Date.now();
    const res = await providerFetch(spec({ record: slowRecord, recordWaitMs: 50 }), { operation: "op", path: "/ok", query: { k: `rw-${RUN}` }, schema: Value });
    expect(res.data).toBe(`rw-${RUN}`);
    expect(Date.now() - started).toBeLessThan(250);
    expect(finished).toBe(false);
    await new Promise((r) => setTimeout(r, 400));
    expect(finished).toBe(true);
  });
});

describe("key normalisation", () => {
  it("domains and LinkedIn URLs normalise the way the pool's dedup keys do", () => {
    expect(normalizeDomain("https://www.Acme.com.au/about?x=1")).toBe("acme.com.au");
    expect(normalizeDomain("not a domain")).toBeNull();
    expect(linkedinKey("linkedin.com/in/Ana-Lee-123/")).toBe("https://www.linkedin.com/in/ana-lee-123");
    expect(linkedinKey("https://au.linkedin.com/in/ana-lee-123?trk=x")).toBe("https://www.linkedin.com/in/ana-lee-123");
    expect(linkedinKey("https://www.linkedin.com/company/acme")).toBeNull();
    expect(linkedinKey("https://example.com/in/ana")).toBeNull();
  });
});
