// Drives dev/redis-bridge.ts with the real @upstash/redis client against the local redis-server
// (127.0.0.1:6379), mounted under /redis exactly as the dev stack does.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import { createServer, type AddressInfo } from "node:net";
import { spawn, type ChildProcess } from "node:child_process";
import { Redis, errors } from "@upstash/redis";
import { createRedisBridge } from "../../dev/redis-bridge.ts";

const { UpstashError } = errors;
const TOKEN = "test-token-" + Math.random().toString(36).slice(2);
const P = `test:redis-bridge:${Date.now()}:${Math.random().toString(36).slice(2, 8)}:`;

type Bridge = Awaited<ReturnType<typeof createRedisBridge>>;

async function start(bridge: Bridge): Promise<{ server: ServerType; base: string }> {
  const root = new Hono();
  root.route("/redis", bridge.app);
  return new Promise((resolve) => {
    const server = serve({ fetch: root.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) =>
      resolve({ server, base: `http://127.0.0.1:${info.port}/redis` }));
  });
}
const stop = (server: ServerType) => new Promise<void>((r) => server.close(() => r()));

function post(url: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) {
  return fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
}

describe("redis bridge (redis-server up)", () => {
  let bridge: Bridge;
  let server: ServerType;
  let base: string;
  let redis: Redis;

  beforeAll(async () => {
    bridge = await createRedisBridge({ token: TOKEN, redisUrl: "redis://127.0.0.1:6379" });
    ({ server, base } = await start(bridge));
    redis = new Redis({ url: base, token: TOKEN, retry: false });
  });

  afterAll(async () => {
    const keys = await redis.keys(`${P}*`);
    if (keys.length) await redis.del(...keys);
    expect(await redis.keys(`${P}*`)).toEqual([]);
    await stop(server);
    await bridge.close();
    expect(bridge.available()).toBe(false);
  });

  it("is available and pings", async () => {
    expect(bridge.available()).toBe(true);
    expect(await bridge.ping()).toBe(true);
    const res = await fetch(base);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/Welcome/);
  });

  it("set/get JSON values with EX", async () => {
    const value = { name: "Zoë ✓", n: 3, tags: ["a", "b"], nested: { ok: true } };
    expect(await redis.set(`${P}json`, value, { ex: 100 })).toBe("OK");
    expect(await redis.get(`${P}json`)).toEqual(value);
    const ttl = await redis.ttl(`${P}json`);
    expect(ttl).toBeGreaterThan(90);
    expect(ttl).toBeLessThanOrEqual(100);
    expect(await redis.set(`${P}str`, "OK")).toBe("OK"); // a stored value equal to "OK" round-trips
    expect(await redis.get(`${P}str`)).toBe("OK");
    expect(await redis.get(`${P}missing`)).toBeNull();
  });

  it("incr", async () => {
    expect(await redis.incr(`${P}counter`)).toBe(1);
    expect(await redis.incrby(`${P}counter`, 41)).toBe(42);
  });

  it("hset/hgetall", async () => {
    expect(await redis.hset(`${P}hash`, { a: 1, b: "two", c: { deep: [1, 2] } })).toBe(3);
    expect(await redis.hgetall(`${P}hash`)).toEqual({ a: 1, b: "two", c: { deep: [1, 2] } });
    expect(await redis.hgetall(`${P}nohash`)).toBeNull();
  });

  it("pipeline", async () => {
    const p = redis.pipeline();
    p.set(`${P}p1`, "x");
    p.incr(`${P}p2`);
    p.incr(`${P}p2`);
    p.get(`${P}p1`);
    p.lpush(`${P}list`, "a", "b");
    p.lrange(`${P}list`, 0, -1);
    expect(await p.exec()).toEqual(["OK", 1, 2, "x", 2, ["b", "a"]]);

    // keepErrors surfaces a per-command error while the others still succeed
    const q = redis.pipeline();
    q.incr(`${P}p1`); // "x" is not an integer
    q.get(`${P}p1`);
    const out = await q.exec({ keepErrors: true });
    expect(out[0].error).toMatch(/not an integer/);
    expect(out[1]).toEqual({ result: "x", error: undefined });
  });

  it("multi-exec transaction", async () => {
    const tx = redis.multi();
    tx.set(`${P}t1`, { v: 1 });
    tx.incr(`${P}t2`);
    tx.get(`${P}t1`);
    tx.hset(`${P}t3`, { f: "g" });
    tx.hgetall(`${P}t3`);
    expect(await tx.exec()).toEqual(["OK", 1, { v: 1 }, 1, { f: "g" }]);
  });

  it("multi-exec: runtime errors are per-command, queue-time errors discard the transaction", async () => {
    const res = await post(`${base}/multi-exec`, [["SET", `${P}m`, "abc"], ["INCR", `${P}m`], ["GET", `${P}m`]]);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Array<{ result?: unknown; error?: string }>;
    expect(body[0]).toEqual({ result: "OK" });
    expect(body[1].error).toMatch(/^ERR .*not an integer/);
    expect(body[2]).toEqual({ result: "abc" });

    const discarded = await post(`${base}/multi-exec`, [["SET", `${P}m2`, "1"], ["NOSUCHCMD", "x"]]);
    expect(discarded.status).toBe(400);
    const err = (await discarded.json()) as { error: string };
    expect(Array.isArray(err)).toBe(false);
    expect(err.error).toMatch(/ERR unknown command/);
    expect(await redis.exists(`${P}m2`)).toBe(0); // nothing ran
  });

  it("redis error → client throws UpstashError; raw 400 with ERR message", async () => {
    await redis.set(`${P}notnum`, "hello");
    await expect(redis.incr(`${P}notnum`)).rejects.toBeInstanceOf(UpstashError);
    await expect(redis.incr(`${P}notnum`)).rejects.toThrow(/ERR value is not an integer/);

    const res = await post(base, ["NOSUCHCMD"]);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/^ERR unknown command/);
  });

  it("accepts JSON numbers as arguments", async () => {
    const res = await post(base, ["SET", `${P}num`, 12.5, "EX", 100]);
    expect(await res.json()).toEqual({ result: "OK" });
    expect(await (await post(base, ["TTL", `${P}num`])).json()).toEqual({ result: 100 });
    expect(await (await post(base, ["INCRBYFLOAT", `${P}num`, 1])).json()).toEqual({ result: "13.5" });
  });

  it("Upstash-Encoding: base64 encodes every string, recursively; integers and null untouched", async () => {
    const h = { authorization: `Bearer ${TOKEN}`, "upstash-encoding": "base64" };
    const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
    expect(await (await post(base, ["SET", `${P}b`, "héllo ✓"], h)).json()).toEqual({ result: b64("OK") });
    expect(await (await post(base, ["GET", `${P}b`], h)).json()).toEqual({ result: b64("héllo ✓") });
    expect(await (await post(base, ["GET", `${P}nob`], h)).json()).toEqual({ result: null });
    expect(await (await post(base, ["STRLEN", `${P}b`], h)).json()).toEqual({ result: 10 }); // UTF-8 bytes
    const nested = await post(base, ["EVAL", "return {1, 'a', {2, 'OK'}, false}", "0"], h);
    expect(await nested.json()).toEqual({ result: [1, b64("a"), [2, b64("OK")], null] });
    const pipe = await post(`${base}/pipeline`, [["GET", `${P}b`], ["INCR", `${P}b`]], h);
    const pj = (await pipe.json()) as Array<{ result?: unknown; error?: string }>;
    expect(pj[0]).toEqual({ result: b64("héllo ✓") });
    expect(pj[1].error).toMatch(/^ERR /); // errors are not encoded
    // without the header strings are plain
    expect(await (await post(base, ["GET", `${P}b`])).json()).toEqual({ result: "héllo ✓" });
  });

  it("blocking commands run on their own connection and don't stall others", async () => {
    const blpop = post(base, ["BLPOP", `${P}queue`, "2"]);
    await new Promise((r) => setTimeout(r, 150));
    const t0 = Date.now();
    expect(await redis.rpush(`${P}queue`, "job")).toBe(1);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await (await blpop).json()).toEqual({ result: [`${P}queue`, "job"] });
  });

  it("connection-state commands are refused", async () => {
    const res = await post(base, ["SELECT", "1"]);
    expect(res.status).toBe(400);
    const pipe = (await (await post(`${base}/pipeline`, [["SUBSCRIBE", "ch"], ["PING"]])).json()) as Array<{ result?: unknown; error?: string }>;
    expect(pipe[0].error).toMatch(/not available/);
    expect(pipe[1]).toEqual({ result: "PONG" });
  });

  it("auth: wrong token → 401, missing/malformed → 400", async () => {
    const bad = new Redis({ url: base, token: "wrong", retry: false });
    await expect(bad.get(`${P}json`)).rejects.toBeInstanceOf(UpstashError);

    const wrong = await post(base, ["PING"], { authorization: "Bearer wrong" });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toHaveProperty("error");

    const missing = await post(base, ["PING"], {});
    expect(missing.status).toBe(400);
    expect(await missing.json()).toHaveProperty("error");

    const malformed = await post(`${base}/pipeline`, [["PING"]], { authorization: `Token ${TOKEN}` });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toHaveProperty("error");
  });

  it("malformed bodies → 400, unknown endpoint → 404, other methods → 405", async () => {
    const notJson = await fetch(base, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` }, body: "{nope" });
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toHaveProperty("error");
    expect((await post(base, [])).status).toBe(400);
    expect((await post(base, { cmd: "PING" })).status).toBe(400);
    expect((await post(base, ["SET", `${P}x`, { a: 1 }])).status).toBe(400);
    expect((await post(`${base}/pipeline`, ["PING"])).status).toBe(400);

    const nf = await post(`${base}/set/foo/bar`, null);
    expect(nf.status).toBe(404);
    expect(((await nf.json()) as { error: string }).error).toMatch(/SRH: Endpoint not found/);
    expect((await fetch(`${base}/pipeline`, { method: "DELETE" })).status).toBe(405);
  });
});

describe("redis bridge (redis unreachable)", () => {
  it("resolves unavailable, answers 500, retries quietly, closes", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      const t0 = Date.now();
      const bridge = await createRedisBridge({ token: TOKEN, redisUrl: "redis://127.0.0.1:1" });
      expect(Date.now() - t0).toBeLessThan(3_500);
      expect(bridge.available()).toBe(false);
      expect(await bridge.ping()).toBe(false);

      const { server, base } = await start(bridge);
      try {
        for (const [path, body] of [["", ["PING"]], ["/pipeline", [["PING"]]], ["/multi-exec", [["PING"]]]] as const) {
          const res = await post(`${base}${path}`, body);
          expect(res.status).toBe(500);
          expect(((await res.json()) as { error: string }).error).toMatch(/Unable to connect/);
        }
        const redis = new Redis({ url: base, token: TOKEN, retry: false });
        await expect(redis.get("k")).rejects.toBeInstanceOf(UpstashError);
        // auth is still checked first
        expect((await post(base, ["PING"], { authorization: "Bearer wrong" })).status).toBe(401);

        // several reconnect attempts happen (100, 200, 400 ms…) but only one line is logged
        await new Promise((r) => setTimeout(r, 800));
        expect(warn.mock.calls.length).toBe(1);
        expect(String(warn.mock.calls[0][0])).toMatch(/redis unavailable at redis:\/\/127\.0\.0\.1:1/);
      } finally {
        await stop(server);
        await bridge.close();
      }
      expect(bridge.available()).toBe(false);
    } finally {
      warn.mockRestore();
    }
  });
});

describe("redis bridge (redis goes down and comes back)", () => {
  async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
      const srv = createServer();
      srv.once("error", reject);
      srv.listen(0, "127.0.0.1", () => {
        const { port } = srv.address() as AddressInfo;
        srv.close(() => resolve(port));
      });
    });
  }
  function startRedis(port: number): ChildProcess {
    return spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  }
  function stopRedis(proc: ChildProcess): Promise<void> {
    return new Promise((r) => {
      if (proc.exitCode !== null) return r();
      proc.once("exit", () => r());
      proc.kill("SIGTERM");
    });
  }
  async function until(cond: () => boolean, ms = 8_000) {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error("timed out waiting for condition");
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it("reconnects in the background and logs one line per transition", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const port = await freePort();
    let proc: ChildProcess | undefined;
    const bridge = await createRedisBridge({ token: TOKEN, redisUrl: `redis://127.0.0.1:${port}` });
    const { server, base } = await start(bridge);
    try {
      expect(bridge.available()).toBe(false);
      expect((await post(base, ["PING"])).status).toBe(500);

      proc = startRedis(port);
      await until(() => bridge.available());
      expect(await bridge.ping()).toBe(true);
      const redis = new Redis({ url: base, token: TOKEN, retry: false });
      expect(await redis.set(`${P}back`, { up: true })).toBe("OK");
      expect(await redis.get(`${P}back`)).toEqual({ up: true });

      await stopRedis(proc);
      await until(() => !bridge.available());
      expect((await post(base, ["GET", `${P}back`])).status).toBe(500);

      proc = startRedis(port);
      await until(() => bridge.available());
      expect(await redis.ping()).toBe("PONG");

      const lines = warn.mock.calls.map((c) => String(c[0]));
      expect(lines.filter((l) => /unavailable/.test(l)).length).toBe(2); // initial + after the kill
      expect(lines.filter((l) => /restored/.test(l)).length).toBe(2);
    } finally {
      await stop(server);
      await bridge.close();
      if (proc) await stopRedis(proc);
      warn.mockRestore();
    }
  }, 30_000);
});
