// The HubSpot client against the HubSpot sandbox on a local server: contacts upserted by email
// (created once, then updated), meetings created/updated/archived and associated to the contact
// (idempotently), the rolling 10-second window's 429 (no Retry-After: waited out from the policy and
// interval header), a daily-quota 429 that fails retryable at once, 401, 5xx retries, validation
// errors, malformed bodies and missing credentials.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { createHubSpotSandbox, type HubSpotSandbox } from "../../dev/sandbox/hubspot.ts";
import { ProviderError, type ProviderCall } from "../../shared/integrations/provider-http.ts";
import {
  createHubSpotClient,
  hubspotFromEnv,
  hubspotRetryAfterSeconds,
  meetingProperties,
  withHubSpotRetryAfter,
  type HubSpotConfig,
} from "../../shared/integrations/hubspot.ts";

const TOKEN = "pat-na1-00000000-test";
const WINDOW_MS = 400;

let sandbox: HubSpotSandbox;
let server: ServerType;
let base: string;
let calls: ProviderCall[] = [];

function config(over: Partial<HubSpotConfig> = {}): HubSpotConfig {
  return {
    accessToken: TOKEN, baseUrl: base, redis: null, rateLimit: false,
    record: (c) => void calls.push(c), retry: { baseDelayMs: 5, maxDelayMs: 20 }, timeoutMs: 2_000, ...over,
  };
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

const email = (tag: string) => `${tag}-${Math.random().toString(36).slice(2, 8)}@prospect.example`;

beforeAll(async () => {
  sandbox = createHubSpotSandbox({ accessToken: TOKEN, windowMs: WINDOW_MS, maxPerWindow: 1000 });
  server = serve({ fetch: sandbox.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise((r) => server.once("listening", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

beforeEach(() => {
  calls = [];
});

describe("contacts", () => {
  it("upsert by email creates the contact once, then updates it in place", async () => {
    const hs = createHubSpotClient(config());
    const addr = email("ada");
    const first = await hs.upsertContact({ email: addr.toUpperCase(), firstName: "Ada", lastName: "Lovelace", jobTitle: "Head of Growth", company: "Analytical" });
    expect(first.created).toBe(true);
    expect(first.id).toMatch(/^\d+$/);
    expect(first.email).toBe(addr);
    const second = await hs.upsertContact({ email: addr, jobTitle: "VP Growth", properties: { hs_lead_status: "IN_PROGRESS" } });
    expect(second).toMatchObject({ id: first.id, created: false });
    const stored = sandbox.state.contacts.get(first.id)!;
    // an upsert without a first name must not blank the one HubSpot has
    expect(stored.properties).toMatchObject({ email: addr, firstname: "Ada", jobtitle: "VP Growth", hs_lead_status: "IN_PROGRESS" });
    expect([...sandbox.state.contacts.values()].filter((c) => c.properties.email === addr)).toHaveLength(1);
    // the wire format: one input keyed by email
    const req = sandbox.state.requests.findLast((r) => r.path === "/crm/v3/objects/contacts/batch/upsert")!;
    expect(req.body).toEqual({ inputs: [{ id: addr, idProperty: "email", properties: { email: addr, jobtitle: "VP Growth", hs_lead_status: "IN_PROGRESS" } }] });
    expect(calls.map((c) => [c.provider, c.operation, c.status, c.costCents])).toEqual([
      ["hubspot", "contacts.upsert", 200, 0], ["hubspot", "contacts.upsert", 200, 0],
    ]);
  });

  it("refuses a contact without a valid email before any call", async () => {
    const hs = createHubSpotClient(config());
    const err = await failure(hs.upsertContact({ email: "not-an-email" }));
    expect(err).toMatchObject({ code: "invalid_request", retryable: false });
    expect(calls).toHaveLength(0);
  });
});

describe("meetings and associations", () => {
  it("creates a meeting engagement, updates its outcome, and associates it to the contact once", async () => {
    const hs = createHubSpotClient(config());
    const contact = await hs.upsertContact({ email: email("grace"), firstName: "Grace" });
    const start = new Date("2026-12-01T01:00:00.000Z");
    const meeting = await hs.createMeeting({
      title: "Intro call", startTime: start, endTime: new Date(start.getTime() + 30 * 60_000), outcome: "SCHEDULED",
      body: "Booked by Agency OS", externalUrl: "https://meet.example/abc",
    });
    expect(meeting.id).toMatch(/^\d+$/);
    expect(sandbox.state.meetings.get(meeting.id)!.properties).toMatchObject({
      hs_timestamp: start.toISOString(), hs_meeting_title: "Intro call", hs_meeting_start_time: start.toISOString(),
      hs_meeting_end_time: "2026-12-01T01:30:00.000Z", hs_meeting_outcome: "SCHEDULED", hs_meeting_external_url: "https://meet.example/abc",
    });
    await hs.associateMeetingToContact(meeting.id, contact.id);
    await hs.associateMeetingToContact(meeting.id, contact.id);
    expect(sandbox.state.meetingsOf(contact.id).map((m) => m.id)).toEqual([meeting.id]);
    const put = sandbox.state.requests.findLast((r) => r.method === "PUT")!;
    expect(put.path).toBe(`/crm/v4/objects/meetings/${meeting.id}/associations/default/contacts/${contact.id}`);

    const updated = await hs.updateMeeting(meeting.id, { title: "Intro call", startTime: start, outcome: "COMPLETED" });
    expect(updated?.properties.hs_meeting_outcome).toBe("COMPLETED");
    expect(sandbox.state.meetings.get(meeting.id)!.properties.hs_meeting_outcome).toBe("COMPLETED");

    await hs.archiveMeeting(meeting.id);
    expect(sandbox.state.meetings.get(meeting.id)!.archived).toBe(true);
    // a meeting deleted in HubSpot: update says so with null, so the caller creates a new one
    expect(await hs.updateMeeting(meeting.id, { title: "Intro call", startTime: start, outcome: "COMPLETED" })).toBeNull();
  });

  it("an association to a contact that does not exist is a non-retryable 404", async () => {
    const hs = createHubSpotClient(config());
    const meeting = await hs.createMeeting({ title: "Orphan", startTime: new Date(), outcome: "SCHEDULED" });
    const err = await failure(hs.associateMeetingToContact(meeting.id, "999999999"));
    expect(err).toMatchObject({ code: "http", status: 404, retryable: false });
    expect(err.message).toContain("No contacts with ID 999999999 exists");
  });

  it("rejects a meeting without a title or with an unknown outcome before any call", async () => {
    const hs = createHubSpotClient(config());
    expect(await failure(hs.createMeeting({ title: " ", startTime: new Date(), outcome: "SCHEDULED" }))).toMatchObject({ code: "invalid_request" });
    expect(await failure(hs.createMeeting({ title: "x", startTime: "not a date", outcome: "SCHEDULED" }))).toMatchObject({ code: "invalid_request" });
    expect(await failure(hs.createMeeting({ title: "x", startTime: new Date(), outcome: "DONE" as never }))).toMatchObject({ code: "invalid_request" });
    expect(calls).toHaveLength(0);
  });

  it("the sandbox validates like HubSpot: a meeting without hs_timestamp is a VALIDATION_ERROR", async () => {
    const res = await fetch(`${base}/crm/v3/objects/meetings`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ properties: { hs_meeting_title: "x" } }),
    });
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body).toMatchObject({ status: "error", category: "VALIDATION_ERROR" });
    expect(body.correlationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(meetingProperties({ title: "t", startTime: "2026-12-01T00:00:00Z", outcome: "NO_SHOW" })).toEqual({
      hs_timestamp: "2026-12-01T00:00:00.000Z", hs_meeting_title: "t", hs_meeting_start_time: "2026-12-01T00:00:00.000Z", hs_meeting_outcome: "NO_SHOW",
    });
  });
});

describe("errors and rate limits", () => {
  it("401 with HubSpot's error envelope is a non-retryable http error, tried once", async () => {
    const hs = createHubSpotClient(config({ accessToken: "pat-na1-wrong" }));
    const err = await failure(hs.upsertContact({ email: email("x") }));
    expect(err).toMatchObject({ provider: "hubspot", code: "http", status: 401, retryable: false });
    expect(err.message).toContain("Authentication credentials not found");
    expect(calls.map((c) => c.status)).toEqual([401]);
  });

  it("a 429 of the rolling window (no Retry-After) is waited out for the interval the headers give, then succeeds", async () => {
    const hs = createHubSpotClient(config());
    const addr = email("ratelimit");
    const started = Date.now();
    const contact = await hs.upsertContact({ email: addr });
    expect(contact.created).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(WINDOW_MS - 20);
    expect(calls.map((c) => c.status)).toEqual([429, 200]);
    expect(calls[0].error).toContain("ten_secondly_rolling");
  });

  it("the sandbox's rolling window really limits: past the max, 429 until the window moves", async () => {
    const tight = createHubSpotSandbox({ accessToken: TOKEN, windowMs: 300, maxPerWindow: 2 });
    const hs = createHubSpotClient(config({ fetch: (async (input: string, init?: RequestInit) => await tight.fetch(new Request(input, init))) as typeof fetch }));
    const start = Date.now();
    for (let i = 0; i < 3; i++) await hs.upsertContact({ email: email(`w${i}`) });
    expect(tight.state.requests.map((r) => r.status)).toEqual([200, 200, 429, 200]);
    expect(Date.now() - start).toBeGreaterThanOrEqual(280);
  });

  it("a daily-quota 429 fails at once, retryable, with the wait it asked for", async () => {
    const daily = (() => Promise.resolve(new Response(JSON.stringify({
      status: "error", message: "You have reached your daily limit.", errorType: "RATE_LIMIT", policyName: "DAILY", correlationId: "c",
    }), { status: 429, headers: { "content-type": "application/json" } }))) as typeof fetch;
    const hs = createHubSpotClient(config({ fetch: daily }));
    const err = await failure(hs.upsertContact({ email: email("d") }));
    expect(err).toMatchObject({ code: "http", status: 429, retryable: true, retryAfterMs: 3_600_000 });
    expect(calls).toHaveLength(1);
    expect(hubspotRetryAfterSeconds("SECONDLY", null)).toBe(1);
    expect(hubspotRetryAfterSeconds(undefined, "10000")).toBe(10);
    // a Retry-After HubSpot did send is left alone
    const withHeader = withHubSpotRetryAfter((() => Promise.resolve(new Response("{}", { status: 429, headers: { "retry-after": "2" } }))) as typeof fetch);
    expect((await withHeader("http://x")).headers.get("retry-after")).toBe("2");
  });

  it("a 5xx is retried; a malformed 2xx body is a non-retryable malformed error", async () => {
    const hs = createHubSpotClient(config());
    const contact = await hs.upsertContact({ email: email("servererror") });
    expect(contact.created).toBe(true);
    expect(calls.map((c) => c.status)).toEqual([502, 200]);

    const broken = createHubSpotClient(config({ fetch: (() => Promise.resolve(new Response('{"status":"COMPLETE","results":[{"id"', { status: 200 }))) as typeof fetch }));
    expect(await failure(broken.upsertContact({ email: email("m") }))).toMatchObject({ code: "malformed", retryable: false });
    const wrongShape = createHubSpotClient(config({ fetch: (() => Promise.resolve(Response.json({ id: "1" }))) as typeof fetch }));
    expect(await failure(wrongShape.upsertContact({ email: email("m") }))).toMatchObject({ code: "malformed" });
  });

  it("a timeout on create is not retried (the meeting may exist); on upsert it is", async () => {
    let n = 0;
    const hang = ((_: unknown, init?: RequestInit) => {
      n++;
      return new Promise<Response>((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason)));
    }) as typeof fetch;
    const hs = createHubSpotClient(config({ fetch: hang, timeoutMs: 50 }));
    expect(await failure(hs.createMeeting({ title: "t", startTime: new Date(), outcome: "SCHEDULED" }))).toMatchObject({ code: "timeout", retryable: true });
    expect(n).toBe(1);
    n = 0;
    expect(await failure(hs.upsertContact({ email: email("t") }))).toMatchObject({ code: "timeout" });
    expect(n).toBe(3);
  });

  it("without a token every call fails not_configured before any I/O; a local base URL defaults to the sandbox token", async () => {
    const hs = createHubSpotClient(config({ accessToken: undefined }));
    expect(await failure(hs.upsertContact({ email: email("n") }))).toMatchObject({ code: "not_configured", retryable: false });
    expect(calls).toHaveLength(0);
    const saved = { token: process.env.HUBSPOT_ACCESS_TOKEN, url: process.env.HUBSPOT_BASE_URL };
    delete process.env.HUBSPOT_ACCESS_TOKEN;
    process.env.HUBSPOT_BASE_URL = base;
    try {
      const open = createHubSpotSandbox();
      const fromEnv = hubspotFromEnv({ redis: null, rateLimit: false, record: () => {}, fetch: (async (i: string, init?: RequestInit) => await open.fetch(new Request(i, init))) as typeof fetch });
      expect((await fromEnv.upsertContact({ email: email("env") })).created).toBe(true);
    } finally {
      if (saved.token === undefined) delete process.env.HUBSPOT_ACCESS_TOKEN; else process.env.HUBSPOT_ACCESS_TOKEN = saved.token;
      if (saved.url === undefined) delete process.env.HUBSPOT_BASE_URL; else process.env.HUBSPOT_BASE_URL = saved.url;
    }
  });
});
