// The Apify LinkedIn-profile client against the Apify sandbox on a local server: the run-sync call's
// shape, defensive mapping with the raw item kept, caching per LinkedIn key, credits and cost, misses,
// simulated failures (408 run timeout is not retried) and determinism.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { Redis } from "@upstash/redis";
import { createRedisBridge, type RedisBridge } from "../../dev/redis-bridge.ts";
import { createApifySandbox } from "../../dev/sandbox/apify.ts";
import { createApolloSandbox } from "../../dev/sandbox/apollo.ts";
import { createApifyClient, type ApifyClient } from "../../shared/integrations/apify.ts";
import type { ProviderCall } from "../../shared/integrations/provider-http.ts";

const TOKEN = `af-${Math.random().toString(36).slice(2)}`;
const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

let server: ServerType;
let base: string;
let bridge: RedisBridge;
let redis: Redis;
let client: ApifyClient;
const calls: ProviderCall[] = [];
const requests: Array<{ path: string; body: unknown }> = [];

beforeAll(async () => {
  bridge = await createRedisBridge({ token: TOKEN, redisUrl: "redis://127.0.0.1:6379" });
  const root = new Hono();
  root.use("/sandbox/*", async (c, next) => {
    const u = new URL(c.req.url);
    requests.push({ path: `${u.pathname}${u.search}`, body: c.req.method === "POST" ? await c.req.raw.clone().json().catch(() => null) : null });
    await next();
  });
  root.route("/sandbox/apify", createApifySandbox({ noMatchRate: 0 }));
  root.route("/redis", bridge.app);
  await new Promise<void>((resolve) => {
    server = serve({ fetch: root.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
      base = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
  redis = new Redis({ url: `${base}/redis`, token: TOKEN, retry: false, enableTelemetry: false });
  client = createApifyClient({
    token: "sandbox-token",
    baseUrl: `${base}/sandbox/apify/v2`,
    redis,
    record: (c) => void calls.push(c),
    rateLimit: { limit: 1000, window: "1 m" },
    retry: { baseDelayMs: 10 },
    centsPerProfile: 1.2,
  });
});

afterAll(async () => {
  const keys = await redis.keys(`cache:apify:*${RUN}*`);
  if (keys.length) await redis.del(...keys);
  await new Promise<void>((r) => server.close(() => r()));
  await bridge.close();
});

describe("linkedin profile", () => {
  it("runs the actor synchronously with the profile URL and maps the item, keeping it raw", async () => {
    const url = `https://www.linkedin.com/in/priya-patel-${RUN}`;
    const profile = await client.linkedinProfile(url, { leadId: "00000000-0000-0000-0000-000000000007" });
    const req = requests.at(-1)!;
    expect(req.path).toBe("/sandbox/apify/v2/acts/dev_fusion~Linkedin-Profile-Scraper/run-sync-get-dataset-items?timeout=120");
    expect(req.body).toEqual({ profileUrls: [url] });

    expect(profile).toMatchObject({ linkedinUrl: url, firstName: "Priya", lastName: "Patel", fullName: "Priya Patel" });
    expect(profile!.jobTitle).toBeTruthy();
    expect(profile!.companyName).toBeTruthy();
    expect(profile!.headline).toContain(profile!.companyName!);
    expect(typeof profile!.connections).toBe("number");
    expect(profile!.followers).toBeGreaterThanOrEqual(profile!.connections!);
    expect(profile!.lastActivityAt === null || !Number.isNaN(Date.parse(profile!.lastActivityAt))).toBe(true);
    expect(profile!.jobStartedOn).toMatch(/^\d{1,2}-\d{4}$/);
    expect(profile!.experiences[0]).toMatchObject({ current: true, companyName: profile!.companyName });
    expect(profile!.raw).toMatchObject({ fullName: "Priya Patel", linkedinUrl: url });

    expect(calls.at(-1)).toMatchObject({
      provider: "apify", operation: "linkedin.profile", cached: false, credits: 1, costCents: 1.2, status: 201,
      cacheKey: `cache:apify:person:linkedin:${url}`, leadId: "00000000-0000-0000-0000-000000000007",
    });
  });

  it("caches per LinkedIn key: another spelling of the same profile is a hit, with no run and no credits", async () => {
    const url = `https://www.linkedin.com/in/tom-young-${RUN}`;
    const first = await client.linkedinProfile(url);
    const n = requests.length;
    const second = await client.linkedinProfile(`http://au.linkedin.com/in/Tom-Young-${RUN}/?trk=abc`);
    expect(second).toEqual(first);
    expect(requests.length).toBe(n);
    expect(calls.at(-1)).toMatchObject({ cached: true, credits: 0, costCents: 0, cacheKey: `cache:apify:person:linkedin:${url}` });
    const ttl = await redis.ttl(`cache:apify:person:linkedin:${url}`);
    expect(ttl).toBeGreaterThan(6 * 86_400);
    expect(ttl).toBeLessThanOrEqual(7 * 86_400);
  });

  it("an empty dataset is null and costs nothing", async () => {
    expect(await client.linkedinProfile(`https://www.linkedin.com/in/nomatch-${RUN}`)).toBeNull();
    expect(calls.at(-1)).toMatchObject({ credits: 0, costCents: 0, cached: false });
  });

  it("refuses anything that is not a profile URL before running the actor", async () => {
    const n = requests.length;
    await expect(client.linkedinProfile("https://www.linkedin.com/company/acme")).rejects.toMatchObject({ code: "invalid_request" });
    expect(requests.length).toBe(n);
  });

  it("names agree with the person Apollo's sandbox gave that profile URL", async () => {
    const apollo = createApolloSandbox({ noMatchRate: 0 });
    let person: { linkedin_url: string | null; first_name: string; last_name: string } | undefined;
    // Most people have a LinkedIn URL in Apollo; take the first who does.
    for (let i = 0; i < 10 && !person?.linkedin_url; i++) {
      const res = await apollo.request("/api/v1/people/match", {
        method: "POST", headers: { "x-api-key": "k", "content-type": "application/json" },
        body: JSON.stringify({ email: `wei.chen.${i}.${RUN}@atlas-labs.com.au` }),
      });
      person = (await res.json()).person;
    }
    expect(person?.linkedin_url).toMatch(/^http:\/\/www\.linkedin\.com\/in\/wei-chen-[0-9a-f]{6}$/);
    const profile = await client.linkedinProfile(person!.linkedin_url!);
    expect(profile).toMatchObject({ firstName: person!.first_name, lastName: person!.last_name });
  });
});

describe("failures", () => {
  it("a 429 is retried after Retry-After; a 500 is retried", async () => {
    const started = Date.now();
    expect(await client.linkedinProfile(`https://www.linkedin.com/in/ratelimit-${RUN}`)).not.toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(calls.slice(-2).map((c) => c.status)).toEqual([429, 201]);
    expect(await client.linkedinProfile(`https://www.linkedin.com/in/servererror-${RUN}`)).not.toBeNull();
    expect(calls.slice(-2).map((c) => c.status)).toEqual([500, 201]);
  });

  it("a run that outlives the sync call (408) is retryable later but not retried now: another run would bill again", async () => {
    const n = requests.length;
    const err = await client.linkedinProfile(`https://www.linkedin.com/in/runtimeout-${RUN}`).catch((e) => e);
    expect(err).toMatchObject({ provider: "apify", status: 408, retryable: true });
    expect(err.message).toContain("exceeded the timeout");
    expect(requests.length).toBe(n + 1);
  });

  it("a malformed body is a non-retryable error; no token is Apify's 401", async () => {
    await expect(client.linkedinProfile(`https://www.linkedin.com/in/malformed-${RUN}`)).rejects.toMatchObject({ code: "malformed", retryable: false });
    const res = await fetch(`${base}/sandbox/apify/v2/acts/x~y/run-sync-get-dataset-items`, { method: "POST", body: "{}" });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: { type: "token-not-provided", message: expect.any(String) } });
    const tokenless = createApifyClient({ token: "", baseUrl: `${base}/sandbox/apify/v2`, redis: null, record: () => {} });
    await expect(tokenless.linkedinProfile("https://www.linkedin.com/in/ana")).rejects.toMatchObject({ code: "not_configured" });
  });
});

describe("sandbox determinism", () => {
  it("the same profile URL gives the same item from two fresh sandboxes", async () => {
    const run = async (app: Hono) => (await app.request("/v2/acts/dev_fusion~Linkedin-Profile-Scraper/run-sync-get-dataset-items", {
      method: "POST", headers: { authorization: "Bearer t", "content-type": "application/json" },
      body: JSON.stringify({ profileUrls: ["https://www.linkedin.com/in/olivia-kim-9a8b7c", "https://www.linkedin.com/in/noah-singh"] }),
    })).json();
    const [a, b] = [await run(createApifySandbox()), await run(createApifySandbox())];
    expect(a).toEqual(b);
    expect(a.length).toBeGreaterThan(0);
  });
});
