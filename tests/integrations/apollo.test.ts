// The Apollo client against the Apollo sandbox on a local server: mapping, stable search pages,
// caching per person key and per domain, credits recorded, no-match → null, simulated failures,
// and the sandbox's determinism.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { Redis } from "@upstash/redis";
import { createRedisBridge, type RedisBridge } from "../../dev/redis-bridge.ts";
import { createApolloSandbox } from "../../dev/sandbox/apollo.ts";
import { createApolloClient, type ApolloClient } from "../../shared/integrations/apollo.ts";
import { ProviderError, type ProviderCall } from "../../shared/integrations/provider-http.ts";

const TOKEN = `ap-${Math.random().toString(36).slice(2)}`;
// Unique per run: Redis keeps cache entries between runs, and these tests count misses.
const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

let server: ServerType;
let base: string;
let bridge: RedisBridge;
let redis: Redis;
let client: ApolloClient;
const calls: ProviderCall[] = [];
const requests: string[] = [];

function callsFor(operation: string) {
  return calls.filter((c) => c.operation === operation);
}

beforeAll(async () => {
  bridge = await createRedisBridge({ token: TOKEN, redisUrl: "redis://127.0.0.1:6379" });
  const root = new Hono();
  root.use("/sandbox/*", async (c, next) => {
    requests.push(`${c.req.method} ${new URL(c.req.url).pathname}${new URL(c.req.url).search}`);
    await next();
  });
  // noMatchRate 0: every lookup here matches unless it asks not to ("nomatch").
  root.route("/sandbox/apollo", createApolloSandbox({ noMatchRate: 0 }));
  root.route("/sandbox/apollo-default", createApolloSandbox());
  root.route("/redis", bridge.app);
  await new Promise<void>((resolve) => {
    server = serve({ fetch: root.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
      base = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
  redis = new Redis({ url: `${base}/redis`, token: TOKEN, retry: false, enableTelemetry: false });
  client = createApolloClient({
    apiKey: "sandbox-key",
    baseUrl: `${base}/sandbox/apollo/api/v1`,
    redis,
    record: (c) => void calls.push(c),
    rateLimit: { limit: 1000, window: "1 m" },
    retry: { baseDelayMs: 10 },
    centsPerCredit: 5,
  });
});

afterAll(async () => {
  const keys = await redis.keys(`cache:apollo:*${RUN}*`);
  if (keys.length) await redis.del(...keys);
  await new Promise<void>((r) => server.close(() => r()));
  await bridge.close();
});

describe("people search", () => {
  const filters = {
    personTitles: ["Head of Growth", "CEO"],
    organizationNumEmployeesRanges: ["11,50"],
    organizationLocations: ["Australia"],
    qKeywords: `saas ${RUN}`,
  };

  it("maps people, keeps pages stable and total_entries consistent, spends no credits and caches nothing", async () => {
    const before = calls.length;
    const p1 = await client.searchPeople({ ...filters, page: 1, perPage: 25 });
    const p1Again = await client.searchPeople({ ...filters, page: 1, perPage: 25 });
    const p2 = await client.searchPeople({ ...filters, page: 2, perPage: 25 });
    expect(p1).toEqual(p1Again);
    expect(p1.totalEntries).toBeGreaterThan(50);
    expect(p2.totalEntries).toBe(p1.totalEntries);
    expect(p1.people).toHaveLength(25);
    const ids1 = p1.people.map((p) => p.id);
    expect(new Set([...ids1, ...p2.people.map((p) => p.id)]).size).toBe(50);
    for (const p of p1.people) {
      expect(p.id).toMatch(/^[0-9a-f]{24}$/);
      expect(["Head of Growth", "CEO"]).toContain(p.title);
      expect(p.lastNameObfuscated).toMatch(/^\w\*\*\*\w$/);
      expect(typeof p.hasEmail).toBe("boolean");
      expect(p.organization?.name).toBeTruthy();
      expect(p.organization?.primaryDomain).toMatch(/\./);
    }
    // A result's position depends only on the filters, so a bigger page starts with the same people.
    const big = await client.searchPeople({ ...filters, page: 1, perPage: 100 });
    expect(big.people.slice(0, 25).map((p) => p.id)).toEqual(ids1);

    const searches = calls.slice(before).filter((c) => c.operation === "people.search");
    expect(searches).toHaveLength(4);
    expect(searches.every((c) => c.credits === 0 && c.cacheKey === null && !c.cached && c.status === 200)).toBe(true);
    expect(requests.filter((r) => r.startsWith("POST /sandbox/apollo/api/v1/mixed_people/api_search")).length).toBeGreaterThanOrEqual(4);
  });

  it("a result's company honours the size and location filters, as organisation enrichment reports it", async () => {
    const { people } = await client.searchPeople({ ...filters, page: 3, perPage: 10 });
    // refresh: another sandbox in this process (the stack's, 10% no-match) may have cached this domain
    const org = await client.enrichOrganization(people[0].organization!.primaryDomain!, { refresh: true });
    expect(org?.estimatedNumEmployees).toBeGreaterThanOrEqual(11);
    expect(org?.estimatedNumEmployees).toBeLessThanOrEqual(50);
    expect(org?.country).toBe("Australia");
    expect(org?.name).toBe(people[0].organization!.name);
  });

  it("rejects a page size over 100 before calling Apollo", async () => {
    const n = requests.length;
    const err = await client.searchPeople({ perPage: 101 }).catch((e) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ code: "invalid_request", retryable: false });
    expect(requests.length).toBe(n);
  });
});

describe("people match", () => {
  it("maps the person, spends 1 credit, and a second lookup is a cache hit with 0 credits and no HTTP call", async () => {
    const email = `ana.lee.${RUN}@harbour-logistics.com.au`;
    const n = requests.length;
    const person = await client.matchPerson({ email }, { leadId: "00000000-0000-0000-0000-000000000042" });
    expect(person).not.toBeNull();
    expect(person).toMatchObject({
      email,
      firstName: "Ana",
      lastName: "Lee",
      name: "Ana Lee",
      organization: { primaryDomain: "harbour-logistics.com.au", name: "Harbour Logistics" },
    });
    expect(person!.id).toMatch(/^[0-9a-f]{24}$/);
    expect(["verified", "unverified", "likely to engage", "unavailable"]).toContain(person!.emailStatus);
    expect(person!.title).toBeTruthy();
    expect(person!.organizationId).toBe(person!.organization!.id);
    expect(person!.employmentHistory[0]).toMatchObject({ current: true, organizationName: "Harbour Logistics", endDate: null });
    expect(person!.employmentHistory[0].startDate).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(Array.isArray(person!.organization!.technologyNames)).toBe(true);

    const again = await client.matchPerson({ email: email.toUpperCase() });
    expect(again).toEqual(person);
    expect(requests.length).toBe(n + 1);
    const rows = callsFor("people.match").slice(-2);
    const key = `cache:apollo:person:email:${email}`;
    expect(rows).toEqual([
      expect.objectContaining({ provider: "apollo", cacheKey: key, cached: false, credits: 1, costCents: 5, status: 200, leadId: "00000000-0000-0000-0000-000000000042" }),
      expect.objectContaining({ cacheKey: key, cached: true, credits: 0, costCents: 0 }),
    ]);
    expect(await redis.exists(key)).toBe(1);
  });

  it("caches under the strongest key given: Apollo id over email over LinkedIn", async () => {
    const { people } = await client.searchPeople({ qKeywords: `ops ${RUN}`, perPage: 5 });
    const viaId = await client.matchPerson({ id: people[0].id, email: `someone.${RUN}@x.com` });
    expect(callsFor("people.match").at(-1)?.cacheKey).toBe(`cache:apollo:person:id:${people[0].id}`);
    expect(viaId?.id).toBe(people[0].id);

    await client.matchPerson({ linkedinUrl: `https://linkedin.com/in/Sam-Wu-${RUN}/` });
    expect(callsFor("people.match").at(-1)?.cacheKey).toBe(`cache:apollo:person:linkedin:https://www.linkedin.com/in/sam-wu-${RUN}`);

    await client.matchPerson({ firstName: "Kim", lastName: "Ng", domain: `ng-${RUN}.com.au` });
    expect(callsFor("people.match").at(-1)?.cacheKey).toBeNull();
  });

  it("matching a search result by its id returns the person search showed", async () => {
    const { people } = await client.searchPeople({ personTitles: ["VP Sales"], qKeywords: `match ${RUN}`, perPage: 3 });
    const found = await client.matchPerson({ id: people[1].id });
    expect(found).toMatchObject({ id: people[1].id, firstName: people[1].firstName, title: "VP Sales" });
    expect(found!.organization?.name).toBe(people[1].organization?.name);
    expect(found!.lastName?.[0]).toBe(people[1].lastNameObfuscated?.[0]);
  });

  it("no match is null, costs nothing, and is cached too", async () => {
    const email = `nomatch.${RUN}@example.com`;
    expect(await client.matchPerson({ email })).toBeNull();
    expect(callsFor("people.match").at(-1)).toMatchObject({ cached: false, credits: 0, status: 200 });
    expect(await client.matchPerson({ email })).toBeNull();
    expect(callsFor("people.match").at(-1)).toMatchObject({ cached: true, credits: 0 });
    const ttl = await redis.ttl(`cache:apollo:person:email:${email}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(7 * 86_400);
  });

  it("needs a key or a name with an employer", async () => {
    await expect(client.matchPerson({ firstName: "Ana" })).rejects.toMatchObject({ code: "invalid_request" });
  });

  it("about one lookup in seven finds nobody at the default rate", async () => {
    const dflt = createApolloClient({ apiKey: "k", baseUrl: `${base}/sandbox/apollo-default/api/v1`, redis: null, record: () => {}, rateLimit: false });
    const results = await Promise.all(Array.from({ length: 120 }, (_, i) => dflt.matchPerson({ email: `p${i}.${RUN}@rate-test.com` })));
    const misses = results.filter((r) => r === null).length;
    expect(misses).toBeGreaterThan(5);
    expect(misses).toBeLessThan(40);
  });
});

describe("organisation enrichment", () => {
  it("maps the organisation, spends 1 credit, and caches it by domain, never under a person key", async () => {
    const domain = `cedar-partners.r${RUN}.com.au`;
    const org = await client.enrichOrganization(`https://www.${domain}/about`);
    expect(org).toMatchObject({ primaryDomain: domain, name: "Cedar Partners", country: "Australia" });
    expect(org!.id).toMatch(/^[0-9a-f]{24}$/);
    expect(org!.industry).toBeTruthy();
    expect(org!.estimatedNumEmployees).toBeGreaterThan(0);
    expect(org!.technologyNames.length).toBeGreaterThanOrEqual(3);
    expect(org!.latestFundingRoundDate === null || /^\d{4}-\d{2}-\d{2}/.test(org!.latestFundingRoundDate)).toBe(true);
    expect(callsFor("organizations.enrich").at(-1)).toMatchObject({ credits: 1, costCents: 5, cacheKey: `cache:apollo:org:domain:${domain}` });

    expect(await client.enrichOrganization(domain)).toEqual(org);
    expect(callsFor("organizations.enrich").at(-1)).toMatchObject({ cached: true, credits: 0 });
    expect(await redis.keys(`cache:apollo:person:*${domain}*`)).toEqual([]);

    // The same company, seen through a person at it, is the same company.
    const person = await client.matchPerson({ email: `jo.ray.${RUN}@${domain}` });
    expect(person!.organization).toEqual(org);
  });

  it("an unknown domain is null at 0 credits; a malformed domain never reaches Apollo", async () => {
    expect(await client.enrichOrganization(`nomatch-${RUN}.com`)).toBeNull();
    expect(callsFor("organizations.enrich").at(-1)).toMatchObject({ credits: 0, cached: false });
    await expect(client.enrichOrganization("not a domain")).rejects.toMatchObject({ code: "invalid_request" });
  });

  it("lists the organisation's job postings", async () => {
    // Find a hiring company deterministically among a few domains.
    let postings: Awaited<ReturnType<ApolloClient["organizationJobPostings"]>> = [];
    for (let i = 0; i < 20 && postings.length === 0; i++) {
      const org = await client.enrichOrganization(`hiring-${i}-${RUN}.com.au`);
      postings = await client.organizationJobPostings(org!.id!);
    }
    expect(postings.length).toBeGreaterThan(0);
    for (const p of postings) {
      expect(p.title).toBeTruthy();
      expect(Date.parse(p.postedAt!)).toBeLessThanOrEqual(Date.UTC(2026, 10, 24));
    }
    expect(callsFor("organizations.job_postings").at(-1)?.cacheKey).toMatch(/^cache:apollo:org:jobs:[0-9a-f]{24}$/);
  });
});

describe("failures", () => {
  it("a 429 is retried after Retry-After and succeeds; both attempts are recorded", async () => {
    const email = `ratelimit.${RUN}@example.com`;
    const started = Date.now();
    const person = await client.matchPerson({ email });
    expect(person?.email).toBe(email);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(callsFor("people.match").slice(-2).map((c) => c.status)).toEqual([429, 200]);
  });

  it("a 500 is retried; a malformed body is a non-retryable error", async () => {
    expect(await client.matchPerson({ email: `servererror.${RUN}@example.com` })).not.toBeNull();
    expect(callsFor("people.match").slice(-2).map((c) => c.status)).toEqual([500, 200]);
    const err = await client.enrichOrganization(`malformed-${RUN}.com`).catch((e) => e);
    expect(err).toMatchObject({ provider: "apollo", operation: "organizations.enrich", code: "malformed", retryable: false });
    expect(err.message).toContain("truncated");
  });

  it("without a key the sandbox answers Apollo's 401, and a client without one fails not_configured", async () => {
    const res = await fetch(`${base}/sandbox/apollo/api/v1/people/match`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "a@b.co" }),
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: expect.any(String) });
    const keyless = createApolloClient({ apiKey: "", baseUrl: `${base}/sandbox/apollo/api/v1`, redis: null, record: () => {} });
    await expect(keyless.matchPerson({ email: "a@b.co" })).rejects.toMatchObject({ code: "not_configured", retryable: false });
    const wrongKey = createApolloClient({ apiKey: "k", baseUrl: `${base}/sandbox/apollo/api/v1`, redis: null, record: () => {}, fetch: (u, init) =>
      fetch(u, { ...init, headers: { ...(init?.headers as Record<string, string>), "x-api-key": "" } }) });
    await expect(wrongKey.matchPerson({ email: "a@b.co" })).rejects.toMatchObject({ status: 401, retryable: false });
  });
});

describe("sandbox determinism", () => {
  it("two fresh sandboxes answer the same requests identically", async () => {
    const ask = async (app: Hono, path: string, body?: unknown) =>
      (await app.request(`/api/v1${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: { "x-api-key": "k", "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      })).json();
    const a = createApolloSandbox();
    const b = createApolloSandbox();
    for (const [path, body] of [
      ["/people/match", { email: "grace.kelly@summit-health.com.au" }],
      ["/people/match", { linkedin_url: "https://www.linkedin.com/in/liam-nguyen-3f2a1c" }],
      ["/organizations/enrich?domain=summit-health.com.au", undefined],
      ["/mixed_people/api_search", { person_titles: ["CEO"], page: 2, per_page: 10 }],
    ] as const) {
      expect(await ask(a, path, body)).toEqual(await ask(b, path, body));
    }
  });
});
