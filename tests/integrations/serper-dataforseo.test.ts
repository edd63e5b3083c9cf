// The website-signal clients against their sandboxes on a local server: Serper search and news, and
// DataForSEO domain technologies and Google News: mapping, caching per query/domain, credits and cost,
// misses, errors in the v3 envelope, auth, and agreement with the Apollo sandbox about a domain.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { Redis } from "@upstash/redis";
import { createRedisBridge, type RedisBridge } from "../../dev/redis-bridge.ts";
import { createApolloSandbox } from "../../dev/sandbox/apollo.ts";
import { createDataForSeoSandbox } from "../../dev/sandbox/dataforseo.ts";
import { createSerperSandbox } from "../../dev/sandbox/serper.ts";
import { createDataForSeoClient, flattenTechnologies, type DataForSeoClient } from "../../shared/integrations/dataforseo.ts";
import type { ProviderCall } from "../../shared/integrations/provider-http.ts";
import { createSerperClient, serperDateToIso, type SerperClient } from "../../shared/integrations/serper.ts";

const TOKEN = `sd-${Math.random().toString(36).slice(2)}`;
const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

let server: ServerType;
let base: string;
let bridge: RedisBridge;
let redis: Redis;
let serper: SerperClient;
let dfs: DataForSeoClient;
const calls: ProviderCall[] = [];
const requests: Array<{ path: string; body: unknown; auth: string | undefined }> = [];

beforeAll(async () => {
  bridge = await createRedisBridge({ token: TOKEN, redisUrl: "redis://127.0.0.1:6379" });
  const root = new Hono();
  root.use("/sandbox/*", async (c, next) => {
    requests.push({
      path: new URL(c.req.url).pathname,
      body: await c.req.raw.clone().json().catch(() => null),
      auth: c.req.header("authorization") ?? c.req.header("x-api-key"),
    });
    await next();
  });
  root.route("/sandbox/serper", createSerperSandbox());
  root.route("/sandbox/dataforseo", createDataForSeoSandbox({ noMatchRate: 0 }));
  root.route("/redis", bridge.app);
  await new Promise<void>((resolve) => {
    server = serve({ fetch: root.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
      base = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
  redis = new Redis({ url: `${base}/redis`, token: TOKEN, retry: false, enableTelemetry: false });
  const common = { redis, record: (c: ProviderCall) => void calls.push(c), rateLimit: { limit: 1000, window: "1 m" as const }, retry: { baseDelayMs: 10 } };
  serper = createSerperClient({ ...common, apiKey: "sandbox-key", baseUrl: `${base}/sandbox/serper` });
  dfs = createDataForSeoClient({ ...common, login: "sandbox", password: "secret", baseUrl: `${base}/sandbox/dataforseo` });
});

afterAll(async () => {
  const keys = [...await redis.keys(`cache:serper:*`), ...await redis.keys(`cache:dataforseo:*${RUN}*`)];
  // Serper keys are hashes: delete only those this run wrote.
  const mine = new Set(calls.flatMap((c) => (c.cacheKey ? [c.cacheKey] : [])));
  const ours = keys.filter((k) => mine.has(k));
  if (ours.length) await redis.del(...ours);
  await new Promise<void>((r) => server.close(() => r()));
  await bridge.close();
});

describe("serper", () => {
  it("searches with X-API-KEY and {q, gl, hl, num}, maps organic results, and records its credits", async () => {
    const domain = `harbour-logistics.r${RUN}.com.au`;
    const res = await serper.search(`site:${domain} careers`, { num: 10 }, { leadId: "00000000-0000-0000-0000-000000000009" });
    const req = requests.at(-1)!;
    expect(req.path).toBe("/sandbox/serper/search");
    expect(req.auth).toBe("sandbox-key");
    expect(req.body).toEqual({ q: `site:${domain} careers`, gl: "au", hl: "en", num: 10 });
    expect(res.query).toBe(`site:${domain} careers`);
    expect(res.organic.length).toBe(10);
    expect(res.organic[0]).toMatchObject({ link: `https://${domain}/`, position: 1 });
    for (const o of res.organic) {
      expect(o.title).toBeTruthy();
      expect(o.link).toMatch(/^https:\/\//);
      expect(o.date === null || serperDateToIso(o.date) !== null).toBe(true);
    }
    expect(res.knowledgeGraph?.website).toBe(`http://www.${domain}`);
    expect(calls.at(-1)).toMatchObject({ provider: "serper", operation: "search", credits: 1, costCents: 0.1, cached: false });
    expect(calls.at(-1)!.cacheKey).toMatch(/^cache:serper:search:q:[0-9a-f]{64}$/);
  });

  it("the same query is a cache hit; another option is another key", async () => {
    const q = `acme-${RUN}.com funding`;
    const first = await serper.search(q);
    const n = requests.length;
    expect(await serper.search(q)).toEqual(first);
    expect(requests.length).toBe(n);
    expect(calls.at(-1)).toMatchObject({ cached: true, credits: 0 });
    await serper.search(q, { gl: "us" });
    expect(requests.length).toBe(n + 1);
  });

  it("news maps title, link, date and source, cached for a day", async () => {
    const q = `"Atlas Labs" r${RUN}`;
    const res = await serper.news(q, { num: 20 });
    expect(requests.at(-1)!.path).toBe("/sandbox/serper/news");
    expect(res.news.length).toBeGreaterThan(0);
    for (const n of res.news) {
      expect(n).toMatchObject({ title: expect.any(String), link: expect.stringMatching(/^https:\/\//), source: expect.any(String) });
      expect(serperDateToIso(n.date, Date.UTC(2026, 10, 24))).not.toBeNull();
    }
    const ttl = await redis.ttl(calls.at(-1)!.cacheKey!);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(86_400);
  });

  it("reads relative and absolute Google dates", () => {
    const now = Date.UTC(2026, 10, 24, 12);
    expect(serperDateToIso("3 hours ago", now)).toBe("2026-11-24T09:00:00.000Z");
    expect(serperDateToIso("2 days ago", now)).toBe("2026-11-22T12:00:00.000Z");
    expect(serperDateToIso("Nov 3, 2026", now)?.slice(0, 10)).toBe("2026-11-03");
    expect(serperDateToIso("yesterday-ish", now)).toBeNull();
  });

  it("nothing found is an empty list; no key is Serper's 403, not retried", async () => {
    expect((await serper.search(`nomatch ${RUN}`)).organic).toEqual([]);
    const keyless = createSerperClient({ apiKey: "x", baseUrl: `${base}/sandbox/serper`, redis: null, record: () => {}, rateLimit: false,
      fetch: (u, init) => fetch(u, { ...init, headers: { "content-type": "application/json" } }) });
    const n = requests.length;
    const err = await keyless.search(`q ${RUN}`).catch((e) => e);
    expect(err).toMatchObject({ provider: "serper", status: 403, retryable: false });
    expect(err.message).toContain("Unauthorized.");
    expect(requests.length).toBe(n + 1);
    await expect(createSerperClient({ apiKey: "", redis: null }).search("x")).rejects.toMatchObject({ code: "not_configured" });
    // A base URL on this machine is a sandbox: no key needed.
    const local = createSerperClient({ baseUrl: `${base}/sandbox/serper`, redis: null, record: () => {}, rateLimit: false });
    expect((await local.search(`keyless ${RUN}`)).organic.length).toBeGreaterThan(0);
    expect(requests.at(-1)!.auth).toBe("sandbox");
  });

  it("retries a 429 and a 500; a malformed body is not retried", async () => {
    expect((await serper.news(`ratelimit ${RUN}`)).news).toBeDefined();
    expect(calls.slice(-2).map((c) => c.status)).toEqual([429, 200]);
    expect((await serper.search(`servererror ${RUN}`)).organic.length).toBeGreaterThan(0);
    expect(calls.slice(-2).map((c) => c.status)).toEqual([500, 200]);
    await expect(serper.search(`malformed ${RUN}`)).rejects.toMatchObject({ code: "malformed", retryable: false });
  });
});

describe("dataforseo", () => {
  it("gets a domain's technologies with Basic auth and one live task, agreeing with Apollo about the domain", async () => {
    const domain = `summit-health.r${RUN}.com.au`;
    const names = await dfs.domainTechnologies(`https://www.${domain}/`);
    const req = requests.at(-1)!;
    expect(req.path).toBe("/sandbox/dataforseo/v3/domain_analytics/technologies/domain_technologies/live");
    expect(req.body).toEqual([{ target: domain }]);
    expect(req.auth).toBe(`Basic ${Buffer.from("sandbox:secret").toString("base64")}`);
    expect(names.length).toBeGreaterThanOrEqual(3);
    expect(names).toEqual([...names].sort((a, b) => a.localeCompare(b)));

    const apollo = createApolloSandbox({ noMatchRate: 0 });
    const org = await (await apollo.request(`/api/v1/organizations/enrich?domain=${domain}`, { headers: { "x-api-key": "k" } })).json();
    expect([...org.organization.technology_names].sort()).toEqual([...names].sort());

    // DataForSEO reports a cost in USD: 0.01 → 1 cent.
    expect(calls.at(-1)).toMatchObject({ provider: "dataforseo", operation: "domain_technologies", credits: 1, costCents: 1, cacheKey: `cache:dataforseo:tech:domain:${domain}` });
    const n = requests.length;
    expect(await dfs.domainTechnologies(domain)).toEqual(names);
    expect(requests.length).toBe(n);
    expect(calls.at(-1)).toMatchObject({ cached: true, credits: 0, costCents: 0 });
  });

  it("a domain DataForSEO knows nothing about is [] and cached for less time", async () => {
    const domain = `nomatch.r${RUN}.com`;
    expect(await dfs.domainTechnologies(domain)).toEqual([]);
    const ttl = await redis.ttl(`cache:dataforseo:tech:domain:${domain}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(7 * 86_400);
  });

  it("flattens group → category → names, and group → names", () => {
    expect(flattenTechnologies({ content: { cms: ["WordPress"], blogs: ["WordPress"] }, analytics: ["Google Analytics"], servers: null }))
      .toEqual(["Google Analytics", "WordPress"]);
  });

  it("Google News maps items with ISO publication times", async () => {
    const items = await dfs.googleNews(`bright-finance.r${RUN}.com.au`, { depth: 20 });
    const req = requests.at(-1)!;
    expect(req.path).toBe("/sandbox/dataforseo/v3/serp/google/news/live/advanced");
    expect(req.body).toEqual([{ keyword: `bright-finance.r${RUN}.com.au`, location_code: 2036, language_code: "en", depth: 20 }]);
    expect(items.length).toBeGreaterThan(0);
    for (const i of items) {
      expect(i.title).toBeTruthy();
      expect(i.url).toMatch(/^https:\/\//);
      expect(i.source).toBeTruthy();
      expect(i.publishedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
      expect(Date.parse(i.publishedAt!)).toBeLessThanOrEqual(Date.UTC(2026, 10, 24));
    }
    expect(items.map((i) => i.rank)).toEqual(items.map((_, k) => k + 1));
    expect(calls.at(-1)).toMatchObject({ operation: "google_news", costCents: 0.4, credits: 1 });
  });

  it("an error inside the envelope is a ProviderError; retryable server errors are retried", async () => {
    const err = await dfs.googleNews(" ").catch((e) => e);
    expect(err).toMatchObject({ code: "invalid_request" });
    const dfsRaw = await fetch(`${base}/sandbox/dataforseo/v3/domain_analytics/technologies/domain_technologies/live`, {
      method: "POST",
      headers: { authorization: `Basic ${Buffer.from("a:b").toString("base64")}`, "content-type": "application/json" },
      body: JSON.stringify([{ target: "not a domain" }]),
    }).then((r) => r.json());
    expect(dfsRaw.tasks[0]).toMatchObject({ status_code: 40501, result: null });

    expect(await dfs.domainTechnologies(`servererror.r${RUN}.com`)).not.toHaveLength(0);
    expect(calls.slice(-2).map((c) => c.status)).toEqual([500, 200]);
    await expect(dfs.domainTechnologies(`malformed.r${RUN}.com`)).rejects.toMatchObject({ code: "malformed", retryable: false });
  });

  it("without Basic credentials DataForSEO answers 401 with status 40100; a client without a password is not configured", async () => {
    const res = await fetch(`${base}/sandbox/dataforseo/v3/serp/google/news/live/advanced`, { method: "POST", body: "[]" });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ status_code: 40100, tasks: null });
    await expect(createDataForSeoClient({ login: "x", password: "", redis: null }).domainTechnologies("a.com"))
      .rejects.toMatchObject({ code: "not_configured" });
  });

  it("two fresh sandboxes answer the same task identically", async () => {
    const ask = async (app: Hono, path: string, task: unknown) => (await app.request(path, {
      method: "POST", headers: { authorization: `Basic ${btoa("a:b")}`, "content-type": "application/json" }, body: JSON.stringify([task]),
    })).json();
    for (const [path, task] of [
      ["/v3/domain_analytics/technologies/domain_technologies/live", { target: "river-build.com.au" }],
      ["/v3/serp/google/news/live/advanced", { keyword: "river-build.com.au", location_code: 2036, language_code: "en" }],
    ] as const) {
      expect(await ask(createDataForSeoSandbox(), path, task)).toEqual(await ask(createDataForSeoSandbox(), path, task));
    }
  });
});
