// Tests for the local QStash emulator (dev/qstash): the real @upstash/qstash Client and
// Receiver talk to it over HTTP, mounted under /qstash like the dev stack does.
import { afterEach, describe, expect, it } from "vitest";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { serve } from "@hono/node-server";
import { Client, QstashError, Receiver } from "@upstash/qstash";
import { decodeJwt } from "jose";
import { createQStashEmulator, type QStashEmulatorOptions } from "../../dev/qstash/emulator.ts";
import { signQStashJwt } from "../../dev/qstash/sign.ts";
import { compileRetryDelay, parseDurationMs } from "../../dev/qstash/parse.ts";

const TOKEN = "test-qstash-token";
const CURRENT = "sig_current_test_key";
const NEXT = "sig_next_test_key";

interface Received {
  method: string;
  path: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
  at: number;
}
type Reply = { status?: number; headers?: Record<string, string>; body?: string; hang?: boolean };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A destination server that records every request; `reply` decides the response. */
async function destination(reply: (r: Received, n: number) => Reply = () => ({})) {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const port = (server.address() as AddressInfo).port;
      const r: Received = {
        method: req.method ?? "",
        path: req.url ?? "",
        url: `http://127.0.0.1:${port}${req.url}`,
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        at: Date.now(),
      };
      received.push(r);
      const out = reply(r, received.length);
      if (out.hang) return; // never answer
      res.writeHead(out.status ?? 200, out.headers ?? {});
      res.end(out.body ?? "ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { base, received };
}

/** Emulator mounted at /qstash in a root Hono app, served on a random port. */
async function emulator(extra: Partial<QStashEmulatorOptions> = {}, autoStart = true) {
  const em = createQStashEmulator({
    token: TOKEN,
    currentSigningKey: CURRENT,
    nextSigningKey: NEXT,
    backoffScale: 0.001,
    tickMs: 20,
    ...extra,
  });
  const root = new Hono();
  root.route("/qstash", em.app);
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: root.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/qstash`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await em.stop();
  };
  cleanups.push(async () => {
    await stop();
    await new Promise<void>((r) => server.close(() => r()));
  });
  if (autoStart) em.start();
  const client = new Client({ baseUrl, token: TOKEN, devMode: false, retry: false, enableTelemetry: false });
  return { em, baseUrl, client, stop };
}

async function waitFor<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("waitFor timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const receiver = new Receiver({ currentSigningKey: CURRENT, nextSigningKey: NEXT });

describe("QStash emulator", () => {
  it("delivers publishJSON with a signature the real Receiver accepts, and rejects a tampered body", async () => {
    const dest = await destination();
    const { client } = await emulator();
    const url = `${dest.base}/functions/v1/worker?y=1&z=two`;
    const res = await client.publishJSON({ url, body: { hello: "world" } });
    expect(res.messageId).toMatch(/^msg_/);
    expect(res.url).toBe(url);

    const got = await waitFor(() => dest.received[0]);
    expect(got.method).toBe("POST");
    expect(got.path).toBe("/functions/v1/worker?y=1&z=two"); // query string kept
    expect(got.body).toBe('{"hello":"world"}');
    expect(got.headers["content-type"]).toBe("application/json");
    expect(got.headers["upstash-message-id"]).toBe(res.messageId);
    expect(got.headers["upstash-retried"]).toBe("0");
    expect(got.headers["user-agent"]).toBe("Upstash-QStash");

    const signature = got.headers["upstash-signature"] as string;
    await expect(receiver.verify({ signature, body: got.body, url: got.url })).resolves.toBe(true);
    await expect(receiver.verify({ signature, body: '{"hello":"World"}', url: got.url })).rejects.toThrow(/body hash/);
    await expect(receiver.verify({ signature, body: got.body, url: `${dest.base}/other` })).rejects.toThrow(/invalid subject/);
    // Signed with the current key only: a receiver that knows neither key rejects it.
    await expect(
      new Receiver({ currentSigningKey: "sig_wrong_1", nextSigningKey: "sig_wrong_2" }).verify({ signature, body: got.body }),
    ).rejects.toThrow();

    // §16 vector: body claim for {"hello":"world"} (QStash pads it; compare without padding).
    const claims = decodeJwt(signature);
    expect(String(claims.body).replace(/=+$/, "")).toBe("k6I5cakU5erL8KjSUVTNownDwccvu5kU1Hxg88toFYg");
    expect(claims.iss).toBe("Upstash");
    expect(claims.sub).toBe(url);
    expect((claims.exp as number) - (claims.iat as number)).toBe(300);
    expect(typeof claims.jti).toBe("string");
  });

  it("mints exactly the §16 QStash vector token", async () => {
    const token = await signQStashJwt({
      key: "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r",
      url: "https://example.supabase.co/functions/v1/qstash-worker",
      body: new TextEncoder().encode('{"hello":"world"}'),
      nowMs: 1767225600_000,
      jti: "jwt_test_0001",
    });
    expect(token).toBe(
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJVcHN0YXNoIiwic3ViIjoiaHR0cHM6Ly9leGFtcGxlLnN1cGFiYXNlLmNvL2Z1bmN0aW9ucy92MS9xc3Rhc2gtd29ya2VyIiwiZXhwIjoxNzY3MjI1OTAwLCJuYmYiOjE3NjcyMjU2MDAsImlhdCI6MTc2NzIyNTYwMCwianRpIjoiand0X3Rlc3RfMDAwMSIsImJvZHkiOiJrNkk1Y2FrVTVlckw4S2pTVVZUTm93bkR3Y2N2dTVrVTFIeGc4OHRvRllnPSJ9.OKdvOzf5p65pLD1ZlbxXaP37JqjMQFGro9pcO_31HLM",
    );
  });

  it("forwards Upstash-Forward-* headers (prefix stripped), method and raw body; not other Upstash-* headers", async () => {
    const dest = await destination();
    const { client } = await emulator();
    await client.publish({
      url: `${dest.base}/raw`,
      method: "PUT",
      body: "a,b\n1,2",
      headers: { "Content-Type": "text/csv", "X-Tenant": "acme", Authorization: "Bearer abc" },
      retries: 1,
      callback: `${dest.base}/cb`,
    });
    const got = await waitFor(() => dest.received.find((r) => r.path === "/raw"));
    expect(got.method).toBe("PUT");
    expect(got.body).toBe("a,b\n1,2");
    expect(got.headers["content-type"]).toBe("text/csv");
    expect(got.headers["x-tenant"]).toBe("acme");
    expect(got.headers["authorization"]).toBe("Bearer abc");
    expect(got.headers["upstash-retries"]).toBeUndefined();
    expect(got.headers["upstash-method"]).toBeUndefined();
    expect(Object.keys(got.headers).some((h) => h.startsWith("upstash-forward-"))).toBe(false);
    expect(got.headers["authorization"]).not.toContain(TOKEN);

    // Success callback: a signed delivery carrying the destination's response.
    const cb = await waitFor(() => dest.received.find((r) => r.path === "/cb"));
    await expect(receiver.verify({ signature: cb.headers["upstash-signature"] as string, body: cb.body, url: cb.url })).resolves.toBe(true);
    const payload = JSON.parse(cb.body);
    expect(payload).toMatchObject({ status: 200, retried: 0, maxRetries: 1, sourceMessageId: got.headers["upstash-message-id"], method: "PUT" });
    expect(atob(payload.body)).toBe("ok");
    expect(cb.headers["x-tenant"]).toBeUndefined(); // the source's forwarded headers are not the callback's
  });

  it("honours Upstash-Delay, and Upstash-Not-Before wins over the delay", async () => {
    const dest = await destination();
    const { client } = await emulator();
    const t0 = Date.now();
    const delayed = await client.publishJSON({ url: `${dest.base}/delayed`, body: {}, delay: 1 });
    const notBefore = Math.ceil(t0 / 1000) + 1; // unix seconds, 1–2 s from now
    const nb = await client.publishJSON({ url: `${dest.base}/nb`, body: {}, notBefore, delay: "1h" });

    await sleep(600);
    expect(dest.received).toHaveLength(0);
    const msg = await client.messages.get(delayed.messageId);
    expect(msg.url).toBe(`${dest.base}/delayed`);
    expect(msg.notBefore).toBeGreaterThanOrEqual(t0 + 1000);

    await waitFor(() => dest.received.length === 2, 4000);
    const d = dest.received.find((r) => r.path === "/delayed")!;
    const n = dest.received.find((r) => r.path === "/nb")!;
    expect(d.at - t0).toBeGreaterThanOrEqual(950);
    expect(n.at).toBeGreaterThanOrEqual(notBefore * 1000 - 50);
    expect(n.headers["upstash-message-id"]).toBe(nb.messageId);
  });

  it("retries failed deliveries with backoff, honouring Retry-After and a Retry-Delay expression", async () => {
    const dest = await destination((r, n) => {
      if (r.path === "/flaky") return n <= 2 ? { status: 500 } : { status: 200 };
      // /hinted: first attempt asks for a 1 s pause
      return r.headers["upstash-retried"] === "0" ? { status: 503, headers: { "Retry-After": "1" } } : { status: 204 };
    });
    const { client, em } = await emulator();
    const res = await client.publishJSON({ url: `${dest.base}/flaky`, body: { n: 1 }, retries: 3 });
    await waitFor(() => dest.received.length === 3);
    expect(dest.received.map((r) => r.headers["upstash-retried"])).toEqual(["0", "1", "2"]);
    expect(new Set(dest.received.map((r) => r.headers["upstash-message-id"]))).toEqual(new Set([res.messageId]));
    // Each retry is freshly signed and verifiable.
    for (const r of dest.received) {
      await expect(receiver.verify({ signature: r.headers["upstash-signature"] as string, body: r.body, url: r.url })).resolves.toBe(true);
    }
    await waitFor(() => em.stats().delivered === 1);
    expect(em.stats().pending).toBe(0);

    dest.received.length = 0;
    await client.publishJSON({ url: `${dest.base}/hinted`, body: {}, retries: 2, retryDelay: "0" });
    await waitFor(() => dest.received.length === 2, 3000);
    expect(dest.received[1].at - dest.received[0].at).toBeGreaterThanOrEqual(900);

    // Custom expression: retried=0,1 → 150 ms, 300 ms.
    dest.received.length = 0;
    const flaky2 = await destination((_r, n) => ({ status: n <= 2 ? 500 : 200 }));
    await client.publishJSON({ url: `${flaky2.base}/x`, body: {}, retries: 3, retryDelay: "150 * (retried + 1)" });
    await waitFor(() => flaky2.received.length === 3, 3000);
    const gaps = [flaky2.received[1].at - flaky2.received[0].at, flaky2.received[2].at - flaky2.received[1].at];
    expect(gaps[0]).toBeGreaterThanOrEqual(140);
    expect(gaps[1]).toBeGreaterThanOrEqual(290);
  });

  it("moves exhausted messages to the DLQ (with a signed failure callback); 489 non-retryable goes straight there", async () => {
    let healthy = false;
    const dest = await destination((r) => {
      if (r.path === "/callback") return { status: 200 };
      if (healthy) return { status: 200 };
      if (r.path === "/fatal") return { status: 489, headers: { "Upstash-NonRetryable-Error": "true" }, body: "bad input" };
      return { status: 500, body: "boom" };
    });
    const { client, em } = await emulator();
    const failing = await client.publishJSON({
      url: `${dest.base}/always-500`,
      body: { job: 1 },
      retries: 2,
      failureCallback: `${dest.base}/callback`,
    });
    const fatal = await client.publishJSON({ url: `${dest.base}/fatal`, body: { job: 2 }, retries: 3 });

    await waitFor(() => em.stats().dlq === 2);
    expect(dest.received.filter((r) => r.path === "/always-500")).toHaveLength(3); // 1 + 2 retries
    expect(dest.received.filter((r) => r.path === "/fatal")).toHaveLength(1); // no retries

    const { messages } = await client.dlq.listMessages();
    expect(messages).toHaveLength(2);
    const d500 = messages.find((m) => m.messageId === failing.messageId)!;
    expect(d500.url).toBe(`${dest.base}/always-500`);
    expect(d500.responseStatus).toBe(500);
    expect(d500.responseBody).toBe("boom");
    expect(d500.body).toBe('{"job":1}');
    const d489 = messages.find((m) => m.messageId === fatal.messageId)!;
    expect(d489.responseStatus).toBe(489);

    // Failure callback: a signed QStash delivery describing the failure.
    const cb = await waitFor(() => dest.received.find((r) => r.path === "/callback"));
    await expect(receiver.verify({ signature: cb.headers["upstash-signature"] as string, body: cb.body, url: cb.url })).resolves.toBe(true);
    const payload = JSON.parse(cb.body);
    expect(payload).toMatchObject({ status: 500, sourceMessageId: failing.messageId, dlqId: d500.dlqId, retried: 2, maxRetries: 2 });
    expect(atob(payload.body)).toBe("boom");
    expect(atob(payload.sourceBody)).toBe('{"job":1}');

    // Retry from the DLQ once the endpoint is healthy; delete the other entry.
    healthy = true;
    const retried = await client.dlq.retry(d500.dlqId);
    expect(retried.responses).toHaveLength(1);
    await waitFor(() => dest.received.filter((r) => r.path === "/always-500").length === 4);
    expect(await client.dlq.delete(d489.dlqId)).toEqual({ deleted: 1 });
    expect((await client.dlq.listMessages()).messages).toHaveLength(0);
    await waitFor(() => em.stats().pending === 0 && em.stats().dlq === 0);
  });

  it("deduplicates by Deduplication-Id (202, same messageId, one delivery) and by content", async () => {
    const dest = await destination();
    const { client, baseUrl, em } = await emulator({}, false); // not started: nothing delivered yet
    const first = await client.publishJSON({ url: `${dest.base}/d`, body: { a: 1 }, deduplicationId: "order-42" });
    const second = await client.publishJSON({ url: `${dest.base}/d`, body: { a: 2 }, deduplicationId: "order-42" });
    expect(second.messageId).toBe(first.messageId);
    expect(second.deduplicated).toBe(true);
    expect(first.deduplicated).toBeUndefined();

    const raw = await fetch(`${baseUrl}/v2/publish/${dest.base}/d`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, "Upstash-Deduplication-Id": "order-42" },
      body: "x",
    });
    expect(raw.status).toBe(202);
    expect(await raw.json()).toMatchObject({ messageId: first.messageId, deduplicated: true });

    const c1 = await client.publishJSON({ url: `${dest.base}/c`, body: { same: true }, contentBasedDeduplication: true });
    const c2 = await client.publishJSON({ url: `${dest.base}/c`, body: { same: true }, contentBasedDeduplication: true });
    const c3 = await client.publishJSON({ url: `${dest.base}/c`, body: { same: false }, contentBasedDeduplication: true });
    expect(c2.messageId).toBe(c1.messageId);
    expect(c3.messageId).not.toBe(c1.messageId);

    em.start();
    await waitFor(() => em.stats().delivered === 3);
    await sleep(100);
    expect(dest.received.filter((r) => r.path === "/d")).toHaveLength(1);
    expect(dest.received.find((r) => r.path === "/d")!.body).toBe('{"a":1}');
    expect(dest.received.filter((r) => r.path === "/c")).toHaveLength(2);
  });

  it("batchJSON returns responses aligned with the request and delivers each item", async () => {
    const dest = await destination();
    const { client, baseUrl } = await emulator();
    const res = await client.batchJSON([
      { url: `${dest.base}/b1`, body: { i: 1 } },
      { url: `${dest.base}/b2`, body: { i: 2 }, headers: { "X-Item": "two" } },
      { url: `${dest.base}/b3`, body: { i: 3 }, delay: 0 },
    ]);
    expect(res).toHaveLength(3);
    const ids = res.map((r) => (r as { messageId: string }).messageId);
    expect(new Set(ids).size).toBe(3);
    await waitFor(() => dest.received.length === 3);
    for (const [i, path] of ["/b1", "/b2", "/b3"].entries()) {
      const r = dest.received.find((x) => x.path === path)!;
      expect(r.body).toBe(JSON.stringify({ i: i + 1 }));
      expect(r.headers["upstash-message-id"]).toBe(ids[i]);
      expect(r.headers["content-type"]).toBe("application/json");
    }
    expect(dest.received.find((x) => x.path === "/b2")!.headers["x-item"]).toBe("two");

    // A bad item gets an error entry; the others are still accepted.
    const mixed = await fetch(`${baseUrl}/v2/batch`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify([{ destination: "not a url", body: "x" }, { destination: `${dest.base}/b4`, body: "y" }]),
    });
    const out = (await mixed.json()) as { error?: string; messageId?: string }[];
    expect(out[0].error).toBeTruthy();
    expect(out[1].messageId).toMatch(/^msg_/);
    await waitFor(() => dest.received.some((r) => r.path === "/b4"));
  });

  it("fires cron schedules created with client.schedules.create (injected clock)", async () => {
    const dest = await destination();
    let offset = 0;
    const { client } = await emulator({ now: () => Date.now() + offset });
    const { scheduleId } = await client.schedules.create({
      destination: `${dest.base}/cron?x=1`,
      cron: "*/5 * * * *",
      body: JSON.stringify({ tick: true }),
      headers: { "X-From": "cron" },
      retries: 1,
    });
    expect(scheduleId).toMatch(/^scd_/);
    const s = await client.schedules.get(scheduleId);
    expect(s).toMatchObject({ scheduleId, cron: "*/5 * * * *", destination: `${dest.base}/cron?x=1`, isPaused: false, retries: 1, method: "POST" });
    expect(s.nextScheduleTime! % 300_000).toBe(0);
    expect((await client.schedules.list()).map((x) => x.scheduleId)).toEqual([scheduleId]);

    await sleep(100);
    expect(dest.received).toHaveLength(0); // not due yet
    offset = s.nextScheduleTime! - Date.now() + 1000; // jump just past the next run
    const got = await waitFor(() => dest.received[0]);
    expect(got.path).toBe("/cron?x=1");
    expect(got.headers["upstash-schedule-id"]).toBe(scheduleId);
    expect(got.headers["x-from"]).toBe("cron");
    expect(got.body).toBe('{"tick":true}');
    await sleep(100);
    expect(dest.received).toHaveLength(1); // fired once for that minute
    const after = await client.schedules.get(scheduleId);
    expect(after.nextScheduleTime).toBe(s.nextScheduleTime! + 300_000);
    expect(Object.values(after.lastScheduleStates ?? {})).toEqual(["SUCCESS"]);

    // Paused schedules don't fire; resumed ones do again.
    await client.schedules.pause({ schedule: scheduleId });
    expect((await client.schedules.get(scheduleId)).isPaused).toBe(true);
    offset += 300_000;
    await sleep(150);
    expect(dest.received).toHaveLength(1);
    await client.schedules.resume({ schedule: scheduleId });
    offset += 300_000;
    await waitFor(() => dest.received.length === 2);

    // Overwrite by id, CRON_TZ prefix, invalid cron, delete.
    const tz = await client.schedules.create({ destination: `${dest.base}/tz`, cron: "CRON_TZ=Asia/Tokyo 0 9 * * *", scheduleId: "daily" });
    expect(tz.scheduleId).toBe("daily");
    const daily = await client.schedules.get("daily");
    expect(new Date(daily.nextScheduleTime!).getUTCHours()).toBe(0); // 09:00 Tokyo = 00:00 UTC
    await client.schedules.create({ destination: `${dest.base}/tz2`, cron: "0 12 * * *", scheduleId: "daily" });
    expect((await client.schedules.get("daily")).destination).toBe(`${dest.base}/tz2`);
    await expect(client.schedules.create({ destination: `${dest.base}/bad`, cron: "every minute" })).rejects.toMatchObject({ status: 400 });
    await client.schedules.delete(scheduleId);
    await client.schedules.delete("daily");
    expect(await client.schedules.list()).toEqual([]);
  });

  it("rejects a bad token with 401 and accepts ?qstash_token=", async () => {
    const dest = await destination();
    const { baseUrl } = await emulator();
    const bad = new Client({ baseUrl, token: "nope", devMode: false, retry: false, enableTelemetry: false });
    const e = await bad.publishJSON({ url: `${dest.base}/x`, body: {} }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(QstashError);
    expect((e as QstashError).status).toBe(401);

    const none = await fetch(`${baseUrl}/v2/dlq`);
    expect(none.status).toBe(401);
    expect(await none.json()).toHaveProperty("error");

    const viaQuery = await fetch(`${baseUrl}/v2/publish/${dest.base}/q?keep=1&qstash_token=${TOKEN}`, { method: "POST", body: "hi" });
    expect(viaQuery.status).toBe(201);
    const got = await waitFor(() => dest.received[0]);
    expect(got.path).toBe("/q?keep=1"); // token stripped from the destination

    const badDest = await fetch(`${baseUrl}/v2/publish/ftp:/nowhere`, { method: "POST", headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(badDest.status).toBe(400);
    expect(await badDest.json()).toHaveProperty("error");
  });

  it("gets and cancels pending messages", async () => {
    const dest = await destination();
    const { client, em } = await emulator();
    const { messageId } = await client.publish({
      url: `${dest.base}/later`,
      body: "payload",
      delay: "1h",
      headers: { "Content-Type": "text/plain", "X-A": "1" },
      label: "nightly",
    });
    const m = await client.messages.get(messageId);
    expect(m).toMatchObject({ messageId, url: `${dest.base}/later`, method: "POST", body: "payload", maxRetries: 3, labels: ["nightly"] });
    expect(m.header).toMatchObject({ "Content-Type": ["text/plain"], "X-A": ["1"] });
    expect(await client.messages.cancel(messageId)).toEqual({ cancelled: 1 });
    expect(em.stats().pending).toBe(0);
    await expect(client.messages.get(messageId)).rejects.toMatchObject({ status: 404 });
  });

  it("delivers a queue in order, holding later messages while the head retries", async () => {
    let failedOnce = false;
    const dest = await destination((r) => {
      if (r.path === "/q1" && !failedOnce) {
        failedOnce = true;
        return { status: 500 };
      }
      return { status: 200 };
    });
    const { client } = await emulator();
    const q = client.queue({ queueName: "ordered" });
    for (const i of [1, 2, 3]) await q.enqueueJSON({ url: `${dest.base}/q${i}`, body: { i } });
    await waitFor(() => dest.received.length === 4);
    expect(dest.received.map((r) => r.path)).toEqual(["/q1", "/q1", "/q2", "/q3"]);
    expect((await q.get()).lag).toBe(0);
  });

  it("persists pending messages, schedules, DLQ and dedup ids across a restart", async () => {
    const dir = await mkdtemp(join(tmpdir(), "qstash-emu-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const storePath = join(dir, "nested", "qstash.json");
    let hang = true;
    const dest = await destination((r) => {
      if (r.path === "/dead") return { status: 500 };
      if (r.path === "/inflight" && hang) return { hang: true };
      return { status: 200 };
    });

    const one = await emulator({ storePath, stopGraceMs: 100 });
    const delayed = await one.client.publishJSON({ url: `${dest.base}/delayed`, body: { keep: 1 }, delay: 1, deduplicationId: "persist-1" });
    await one.client.publishJSON({ url: `${dest.base}/dead`, body: {}, retries: 0 });
    await one.client.publishJSON({ url: `${dest.base}/inflight`, body: { once: "more" } });
    await one.client.schedules.create({ destination: `${dest.base}/sched`, cron: "0 0 1 1 *", scheduleId: "yearly" });
    await waitFor(() => one.em.stats().dlq === 1 && dest.received.some((r) => r.path === "/inflight"));
    await one.stop(); // aborts the hanging delivery after the grace period; flushes the store
    expect(one.em.stats()).toMatchObject({ pending: 2, dlq: 1, schedules: 1 });
    const onDisk = JSON.parse(await readFile(storePath, "utf8"));
    expect(onDisk.messages).toHaveLength(2);

    hang = false;
    const two = await emulator({ storePath });
    // Dedup ids survive: same id, same messageId.
    const again = await two.client.publishJSON({ url: `${dest.base}/delayed`, body: { keep: 1 }, delay: 1, deduplicationId: "persist-1" });
    expect(again).toMatchObject({ messageId: delayed.messageId, deduplicated: true });
    await waitFor(() => dest.received.filter((r) => r.path === "/inflight").length === 2);
    const d = await waitFor(() => dest.received.find((r) => r.path === "/delayed"), 3000);
    expect(d.body).toBe('{"keep":1}');
    expect(d.headers["upstash-message-id"]).toBe(delayed.messageId);
    await expect(receiver.verify({ signature: d.headers["upstash-signature"] as string, body: d.body, url: d.url })).resolves.toBe(true);
    expect((await two.client.dlq.listMessages()).messages.map((m) => m.url)).toEqual([`${dest.base}/dead`]);
    expect((await two.client.schedules.get("yearly")).cron).toBe("0 0 1 1 *");
    await waitFor(() => two.em.stats().pending === 0);
    expect(two.em.stats()).toMatchObject({ dlq: 1, schedules: 1 });
  });

  it("bounds concurrent deliveries and never delivers one message twice at once (custom fetch)", async () => {
    let active = 0;
    let peak = 0;
    const perMessage = new Map<string, number>();
    const fakeFetch = (async (_url: RequestInfo | URL, init?: RequestInit) => {
      const id = new Headers(init?.headers).get("upstash-message-id")!;
      perMessage.set(id, (perMessage.get(id) ?? 0) + 1);
      active++;
      peak = Math.max(peak, active);
      await sleep(120); // slower than several ticks, so a second pick-up would show
      active--;
      return new Response("ok");
    }) as typeof fetch;
    const { client, em } = await emulator({ fetch: fakeFetch, tickMs: 5 });
    const ids = await Promise.all(
      Array.from({ length: 15 }, (_, i) => client.publishJSON({ url: `http://127.0.0.1:9/n${i}`, body: { i } })),
    );
    await waitFor(() => em.stats().delivered === 15, 4000);
    expect(peak).toBe(10);
    expect([...perMessage.values()].every((n) => n === 1)).toBe(true);
    expect(new Set(perMessage.keys())).toEqual(new Set(ids.map((r) => r.messageId)));
  });

  it("parses durations and evaluates retry-delay expressions without eval", () => {
    expect(parseDurationMs("50s")).toBe(50_000);
    expect(parseDurationMs("1d10h30m")).toBe((24 + 10.5) * 3_600_000);
    expect(parseDurationMs("10x")).toBeNull();
    expect(compileRetryDelay("pow(2, retried) * 1000")(3)).toBe(8000);
    expect(compileRetryDelay("max(1000, min(5000, retried * 2000))")(4)).toBe(5000);
    expect(compileRetryDelay("-(retried) + abs(-3) + floor(2.7) + ceil(0.1) + round(0.5) + sqrt(16) + exp(0)")(1)).toBe(11);
    expect(() => compileRetryDelay("process.exit(1)")).toThrow();
    expect(() => compileRetryDelay("constructor")).toThrow();
    expect(() => compileRetryDelay("1000;")).toThrow();
    expect(() => compileRetryDelay("pow(2)")).toThrow();
  });
});
