// Benchmark `ingest`: N signed Cal.com BOOKING_CREATED deliveries (every tenth a re-sent earlier
// one, byte for byte, as a provider retry is) through the real webhook function — its app, the
// shared receive pipeline (verify, parse, dedupe, store + outbox row in one statement per group of
// concurrent deliveries, background publisher) and its pool — against a bare Hono app answering the very same requests with `{}`,
// at the same fixed concurrency, in the same run. Reports both sides' p50/p99 latency and checks
// that every unique event was stored (and queued) exactly once.
//
// The function is called in process (`app.fetch`), as the local stack calls it after the gateway
// has stripped /functions/v1: no sockets on either side, so the ratio is the pipeline's cost.
// Requests carry Content-Length, as every provider delivery through the gateway does (without it
// hono's bodyLimit re-buffers the body into a new Request, a path production never takes).
//
// Publishing: the function publishes the outbox in the background right after answering
// (coalesced, ≥250 ms apart, ≤200 rows a run). QSTASH_URL points at an in-process endpoint that
// accepts every batch at once, so the publisher's real database work (claim, mark published) is
// measured without a network call; rows it did not reach by the end are left to the cron, as in
// production, and reported as `backlog`. Log lines are formatted as in production and counted,
// not written to the terminal (the bench prints one line).
import { serve } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { Hono } from "hono";
import postgres from "postgres";
import { signCalCom } from "../shared/webhooks/verify.ts";

/** Requests in flight at once, on both sides; the function's pool gets as many connections. */
export const INGEST_CONCURRENCY = 16;
/** Where the function is served (the public URL the provider calls, gateway prefix included). */
const PUBLIC_BASE = "http://127.0.0.1:54321/functions/v1";
/** What the app sees once the gateway has stripped /functions/v1. */
const APP_URL = "http://127.0.0.1:54321/webhook-calcom";
const SECRET = "bench_calcom_webhook_secret_0123456789";
const WARMUP = 500;

interface Delivery {
  raw: string;
  headers: Record<string, string>;
  eventId: string;
}

const NAMES = ["Olivia Smith", "Jack Nguyen", "Charlotte Brown", "Noah Wilson", "Amelia Taylor", "José O'Brien"];

/** Booking i as Cal.com's default template sends it (≈1.6 kB). */
function booking(i: number, prefix: string): { raw: string; eventId: string } {
  const uid = `${prefix}${i.toString(36).padStart(6, "0")}bkg`;
  const start = new Date(Date.UTC(2026, 11, 1, 0, 0) + (i % 5000) * 30 * 60_000).toISOString();
  const end = new Date(Date.parse(start) + 30 * 60_000).toISOString();
  const name = NAMES[i % NAMES.length];
  const email = `lead${i}@company-${i % 2000}.com.au`;
  const body = {
    triggerEvent: "BOOKING_CREATED",
    createdAt: "2026-11-30T22:15:03.123Z",
    payload: {
      type: "30min-intro",
      title: `Intro call between Agency and ${name}`,
      description: "",
      additionalNotes: i % 3 === 0 ? "Keen to talk about lead generation in Q1 — can we include our sales lead?" : "",
      customInputs: {},
      startTime: start,
      endTime: end,
      organizer: { id: 17, name: "Sam Agency", email: "sam@agency.example", username: "sam", timeZone: "Australia/Sydney", language: { locale: "en" }, timeFormat: "h:mma", utcOffset: 660 },
      responses: {
        name: { label: "your_name", value: name },
        email: { label: "email_address", value: email },
        location: { label: "location", value: { optionValue: "", value: "integrations:google:meet" } },
        notes: { label: "additional_notes", value: "" },
        guests: { label: "additional_guests", value: [] },
      },
      userFieldsResponses: {},
      attendees: [{ email, name, firstName: name.split(" ")[0], lastName: name.split(" ")[1], timeZone: "Australia/Melbourne", language: { locale: "en" }, utcOffset: 660 }],
      location: "integrations:google:meet",
      destinationCalendar: null,
      hideCalendarNotes: false,
      requiresConfirmation: false,
      eventTypeId: 4242,
      seatsShowAttendees: true,
      seatsPerTimeSlot: null,
      uid,
      bookingId: 100_000 + i,
      metadata: { videoCallUrl: `https://meet.google.com/abc-${(i % 9999).toString().padStart(4, "0")}-xyz` },
      status: "ACCEPTED",
      eventTitle: "30 min intro",
      eventDescription: "A short call to see whether we can help.",
      price: 0,
      currency: "usd",
      length: 30,
      appsStatus: [{ appName: "Google Meet", type: "google_video", success: 1, failures: 0, errors: [], warnings: [] }],
    },
  };
  return { raw: JSON.stringify(body), eventId: `${uid}:BOOKING_CREATED:${start}` };
}

/** The deliveries: i % 10 === 9 re-sends an earlier one (often still in flight), else a new booking. */
async function deliveries(n: number, prefix: string): Promise<{ list: Delivery[]; unique: number }> {
  const fresh: Delivery[] = [];
  const list: Delivery[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 10 === 9) {
      // the same bytes and signature again, from up to ~64 deliveries back
      list.push(fresh[Math.max(0, fresh.length - 1 - ((i * 7919) % 64))]!);
      continue;
    }
    const { raw, eventId } = booking(fresh.length, prefix);
    const d: Delivery = {
      raw,
      eventId,
      headers: {
        "content-type": "application/json",
        "content-length": String(new TextEncoder().encode(raw).length),
        "x-cal-signature-256": await signCalCom(raw, SECRET),
      },
    };
    fresh.push(d);
    list.push(d);
  }
  return { list, unique: fresh.length };
}

interface Run {
  ms: number;
  latencies: Float64Array;
  statuses: Map<number, number>;
  duplicateAnswers: number;
}

/** Sends every delivery through `fetch` with `concurrency` in flight; each latency includes reading the answer. */
async function drive(fetch: (req: Request) => Response | Promise<Response>, list: Delivery[], concurrency: number): Promise<Run> {
  const latencies = new Float64Array(list.length);
  const statuses = new Map<number, number>();
  let duplicateAnswers = 0;
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < list.length; i = next++) {
      const d = list[i]!;
      const t = performance.now();
      const res = await fetch(new Request(APP_URL, { method: "POST", headers: d.headers, body: d.raw }));
      const text = await res.text();
      latencies[i] = performance.now() - t;
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (text.includes('"duplicate":true')) duplicateAnswers++;
    }
  };
  const t = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ms: performance.now() - t, latencies, statuses, duplicateAnswers };
}

function percentile(values: Float64Array, p: number): number {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** The bare handler: one POST route that reads the body and answers 200 {}. */
function bareApp(): Hono {
  const app = new Hono();
  app.post("/webhook-calcom", async (c) => {
    await c.req.text();
    return c.json({}, 200);
  });
  return app;
}

/** A QStash stand-in answering POST /v2/batch at once; counts the messages and their dedup ids. */
async function fakeQStash(): Promise<{ url: string; messages: () => number; distinct: () => number; reset: () => void; close: () => Promise<void> }> {
  let messages = 0;
  const ids = new Set<string>();
  const app = new Hono();
  app.post("/v2/batch", async (c) => {
    const items = (await c.req.json()) as Array<{ headers?: Record<string, string> }>;
    messages += items.length;
    for (const item of items) ids.add(String(item.headers?.["Upstash-Deduplication-Id"] ?? item.headers?.["upstash-deduplication-id"]));
    return c.json(items.map(() => ({ messageId: `msg_${messages}_${Math.random().toString(36).slice(2)}` })));
  });
  const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    messages: () => messages,
    distinct: () => ids.size,
    reset: () => {
      messages = 0;
      ids.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.(); // the client's keep-alive socket
      }),
  };
}

/** Console output of the measured code, counted instead of written. */
function sinkConsole(): { lines: () => number; errors: string[]; restore: () => void } {
  const saved = { log: console.log, error: console.error, warn: console.warn, info: console.info };
  let lines = 0;
  const errors: string[] = [];
  console.log = console.info = () => void lines++;
  console.warn = console.error = (...args: unknown[]) => {
    lines++;
    if (errors.length < 5) errors.push(args.map(String).join(" ")); // nothing here should warn
  };
  return { lines: () => lines, errors, restore: () => Object.assign(console, saved) };
}

const ENV: Record<string, string> = {
  SUPABASE_DB_URL: "", // or it would win over DATABASE_URL
  DB_POOL_MAX: String(INGEST_CONCURRENCY),
  PUBLIC_FUNCTIONS_BASE_URL: PUBLIC_BASE,
  SUPABASE_JWT_SECRET: "bench-jwt-secret-0123456789abcdefghijklmnop",
  CALCOM_WEBHOOK_SECRET: SECRET,
  QSTASH_TOKEN: "bench-qstash-token", // QSTASH_URL: the in-process stand-in (set per run)
  SENTRY_DSN: "",
  LOG_LEVEL: "info", // production's level: both log lines per request are formatted
};

export async function benchIngest(opts: { databaseUrl: string; rows: number; concurrency?: number }) {
  const concurrency = opts.concurrency ?? INGEST_CONCURRENCY;
  const qstash = await fakeQStash();
  const vars = { ...ENV, DATABASE_URL: opts.databaseUrl, DB_POOL_MAX: String(concurrency), QSTASH_URL: qstash.url };
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  const { resetEnvCache } = await import("../shared/config/env.ts");
  const { closeDb } = await import("../shared/db/client.ts");
  const { resetQStash } = await import("../shared/qstash/client.ts");
  const { backgroundPublishSettled } = await import("../shared/webhooks/receive.ts");
  resetEnvCache();
  resetQStash();
  await closeDb(); // a pool another bench opened would point elsewhere
  const sql = postgres(opts.databaseUrl, { max: 1, prepare: false, onnotice: () => {} });
  const sink = sinkConsole();
  try {
    const real = (await import("../functions/webhook-calcom/index.ts")).default;
    const bare = bareApp();
    const warm = await deliveries(WARMUP, "warm");
    const { list, unique } = await deliveries(opts.rows, "bk");

    // warm-up (JIT, pool connections, planner), then an empty table for the measured run
    await drive(bare.fetch, warm.list, concurrency);
    await drive(real.fetch, warm.list, concurrency);
    await backgroundPublishSettled();
    await sql`truncate public.webhook_events, public.outbox restart identity cascade`;
    await sql`vacuum analyze public.webhook_events, public.outbox`;

    // the baseline runs right before and right after the real run: the two halves bracket it, so
    // load that drifts during the run (a shared machine) weighs on both sides alike
    const before = await drive(bare.fetch, list, concurrency);
    const logBefore = sink.lines();
    qstash.reset(); // the warm-up's ids restart with the identity
    const run = await drive(real.fetch, list, concurrency);
    await backgroundPublishSettled();
    const logLines = sink.lines() - logBefore;
    const published = qstash.messages();
    const after = await drive(bare.fetch, list, concurrency);
    const base = { ms: (before.ms + after.ms) / 2, latencies: Float64Array.from([...before.latencies, ...after.latencies]) };

    const [counts] = await sql`
      select (select count(*) from public.webhook_events)::int as stored,
             (select count(distinct event_id) from public.webhook_events where provider = 'calcom')::int as distinct_events,
             (select count(distinct e.id) from public.outbox o
                cross join lateral jsonb_array_elements_text(o.payload->'event_ids') as e (id)
                where o.topic = 'flow.inbound')::int as queued,
             (select count(*) from public.outbox where topic = 'flow.inbound')::int as messages,
             (select count(*) from public.outbox where published_at is not null)::int as marked,
             (select count(*) from public.outbox where published_at is null)::int as backlog`;
    const expected = new Set(list.map((d) => d.eventId)).size;
    const problems: string[] = [];
    if (expected !== unique) problems.push(`generator made ${expected} distinct event ids for ${unique} bookings`);
    if (run.statuses.get(200) !== list.length) problems.push(`real answers ${JSON.stringify([...run.statuses])}`);
    for (const b of [before, after]) if (b.statuses.get(200) !== list.length) problems.push(`baseline answers ${JSON.stringify([...b.statuses])}`);
    if (counts!.stored !== unique || counts!.distinct_events !== unique) problems.push(`stored ${counts!.stored} (${counts!.distinct_events} distinct) of ${unique} unique events`);
    if (counts!.queued !== unique) problems.push(`queued ${counts!.queued} flow.inbound rows for ${unique} events`);
    if (run.duplicateAnswers !== list.length - unique) problems.push(`${run.duplicateAnswers} duplicate answers for ${list.length - unique} re-sends`);
    if (counts!.marked !== published || qstash.distinct() !== published) problems.push(`published ${published} messages (${qstash.distinct()} distinct ids), ${counts!.marked} rows marked`);
    if (sink.errors.length) problems.push(`unexpected log output: ${sink.errors.join(" | ").slice(0, 500)}`);
    if (problems.length) throw new Error(`ingest benchmark is not measuring a correct run: ${problems.join("; ")}`);

    return {
      name: "ingest" as const,
      ratio: base.ms / run.ms,
      ms: run.ms,
      baselineMs: base.ms,
      requests: list.length,
      per_s: (list.length / run.ms) * 1000,
      baseline_per_s: (list.length / base.ms) * 1000,
      p50_ms: percentile(run.latencies, 50).toFixed(2),
      p99_ms: percentile(run.latencies, 99).toFixed(2),
      baseline_p50_ms: percentile(base.latencies, 50).toFixed(3),
      baseline_p99_ms: percentile(base.latencies, 99).toFixed(3),
      concurrency,
      unique,
      duplicates: list.length - unique,
      stored: counts!.stored,
      queued: counts!.queued,
      inbound_messages: counts!.messages,
      published,
      backlog: counts!.backlog,
      log_lines: logLines,
    };
  } finally {
    sink.restore();
    await backgroundPublishSettled();
    await closeDb();
    await sql.end();
    await qstash.close();
    for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v);
    resetEnvCache();
    resetQStash();
  }
}
