// Drives dev/redis-bridge.ts with the real @upstash/redis client against the local redis-server
// (127.0.0.1:6379), mounted under /redis exactly as the dev stack does.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import { createServer, type AddressInfo } from "node:net";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { Redis, errors } from "@upstash/redis";
import { Ratelimit } from "@upstash/ratelimit";
import { createClient } from "redis";
import { createRedisBridge, stripUnknownScriptFlags } from "../../dev/redis-bridge.ts";

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

  describe("Lua scripts with shebang flags redis-server 7.0 doesn't know", () => {
    const sha1 = (s: string) => createHash("sha1").update(s, "utf8").digest("hex");
    // Straight to redis-server, not through the bridge: proves where the counters live.
    const direct = createClient({ url: "redis://127.0.0.1:6379" });
    beforeAll(async () => {
      await direct.connect();
    });
    afterAll(async () => {
      await direct.close();
    });

    // Stay clear of a window boundary so all four calls land in the same window.
    async function startOfQuietWindow(ms: number) {
      const into = Date.now() % ms;
      if (into > ms * 0.7) await new Promise((r) => setTimeout(r, ms - into + 20));
    }

    it("the real @upstash/ratelimit (sliding and fixed window) limits through the bridge, counting in redis-server", async () => {
      for (const [name, limiter, counted] of [
        ["sliding", Ratelimit.slidingWindow(3, "10 s"), "3"], // refused calls don't count
        ["fixed", Ratelimit.fixedWindow(3, "10 s"), "5"], // INCR first, then compare: refused calls count
      ] as const) {
        // Fresh clients: nothing cached, so the first EVALSHA gets NOSCRIPT and the library EVALs.
        const prefix = `${P}rl:${name}`;
        const rl = new Ratelimit({
          redis: new Redis({ url: base, token: TOKEN, retry: false, enableTelemetry: false }),
          limiter, prefix, analytics: false, ephemeralCache: false,
        });
        await startOfQuietWindow(10_000);
        const results = [];
        for (let i = 0; i < 4; i++) results.push(await rl.limit("user"));
        expect(results.map((r) => r.success), name).toEqual([true, true, true, false]);
        expect(results.every((r) => r.reason === undefined), name).toBe(true); // no timeout pass-through
        expect(results.map((r) => r.remaining), name).toEqual([2, 1, 0, 0]);

        // A second client (another instance) shares the count and is refused too.
        const other = new Ratelimit({
          redis: new Redis({ url: base, token: TOKEN, retry: false, enableTelemetry: false }),
          limiter, prefix, analytics: false, ephemeralCache: false,
        });
        expect((await other.limit("user")).success, name).toBe(false);

        const keys = await direct.keys(`${prefix}:user:*`);
        expect(keys, name).toHaveLength(1);
        expect(await direct.get(keys[0]), name).toBe(counted);
      }
    });

    it("EVAL strips unknown flags; EVALSHA / SCRIPT EXISTS of the original sha then work; unknown sha → NOSCRIPT", async () => {
      const script = `#!lua flags=allow-key-locking\nreturn {ARGV[1], '${P}'}`;
      const sha = sha1(script);
      // Before the bridge has seen the script its original sha is unknown: NOSCRIPT, as the client expects.
      const before = await post(base, ["EVALSHA", sha, "0", "a"]);
      expect(before.status).toBe(400);
      expect(((await before.json()) as { error: string }).error).toMatch(/^NOSCRIPT/);
      await expect(redis.evalsha(sha, [], ["a"])).rejects.toThrow(/NOSCRIPT/);

      expect(await redis.eval(script, [], ["x"])).toEqual(["x", P]);
      expect(await redis.evalsha(sha, [], ["y"])).toEqual(["y", P]);
      expect(await redis.evalsha(sha.toUpperCase(), [], ["z"])).toEqual(["z", P]);
      expect(await (await post(base, ["EVALSHA_RO", sha, "0", "ro"])).json()).toEqual({ error: "ERR Can not execute a script with write flag using *_ro command." }); // still a flagged (shebang) script
      expect(await redis.scriptExists(sha, "0".repeat(40))).toEqual([1, 0]);

      // pipeline and multi-exec get the same treatment
      const pipe = (await (await post(`${base}/pipeline`, [
        ["EVAL", script, "0", "p1"], ["EVALSHA", sha, "0", "p2"], ["EVALSHA", "f".repeat(40), "0"], ["SCRIPT", "EXISTS", sha],
      ])).json()) as Array<{ result?: unknown; error?: string }>;
      expect(pipe[0]).toEqual({ result: ["p1", P] });
      expect(pipe[1]).toEqual({ result: ["p2", P] });
      expect(pipe[2].error).toMatch(/^NOSCRIPT/);
      expect(pipe[3]).toEqual({ result: [1] });
      const tx = redis.multi();
      tx.evalsha(sha, [], ["m"]);
      tx.eval(script, [], ["n"]);
      expect(await tx.exec()).toEqual([["m", P], ["n", P]]);
    });

    it("SCRIPT LOAD answers the original sha; @upstash/redis's Script falls back from NOSCRIPT to EVAL", async () => {
      const loaded = `#!lua flags=allow-key-locking\nreturn 'loaded ${P}'`;
      expect(await redis.scriptLoad(loaded)).toBe(sha1(loaded));
      expect(await redis.evalsha(sha1(loaded), [], [])).toBe(`loaded ${P}`);
      const pipe = (await (await post(`${base}/pipeline`, [["SCRIPT", "LOAD", loaded]])).json()) as Array<{ result?: unknown }>;
      expect(pipe).toEqual([{ result: sha1(loaded) }]);

      const s = redis.createScript<string>(`#!lua flags=allow-key-locking\nredis.call('SET', KEYS[1], ARGV[1])\nreturn redis.call('GET', KEYS[1])`);
      expect(await s.exec([`${P}script`], ["v1"])).toBe("v1"); // EVALSHA → NOSCRIPT → EVAL
      expect(await s.exec([`${P}script`], ["v2"])).toBe("v2"); // EVALSHA of the original sha
      expect(await direct.get(`${P}script`)).toBe("v2");
    });

    it("keeps the flags redis-server knows and leaves other scripts alone", async () => {
      // no-writes survives the rewrite: the write is refused by Redis
      const ro = `#!lua flags=no-writes,allow-key-locking\nreturn redis.call('SET', KEYS[1], 'x')`;
      await expect(redis.eval(ro, [`${P}ro`], [])).rejects.toThrow(/Write commands are not allowed from read-only scripts/);
      expect(await direct.exists(`${P}ro`)).toBe(0);
      expect(await redis.eval(`#!lua flags=no-writes,allow-key-locking\nreturn redis.call('GET', KEYS[1])`, [`${P}script`], [])).toBe("v2");

      expect(stripUnknownScriptFlags("return 1")).toBeUndefined();
      expect(stripUnknownScriptFlags("#!lua\nreturn 1")).toBeUndefined();
      expect(stripUnknownScriptFlags("#!lua flags=no-writes,allow-oom\nreturn 1")).toBeUndefined();
      expect(stripUnknownScriptFlags("#!lua flags=allow-key-locking\nreturn 1")).toBe("#!lua\nreturn 1");
      expect(stripUnknownScriptFlags("#!lua flags=allow-key-locking\r\nreturn 1")).toBe("#!lua\r\nreturn 1");
      expect(stripUnknownScriptFlags("#!lua flags=no-writes,allow-key-locking,allow-stale\nreturn 1"))
        .toBe("#!lua flags=no-writes,allow-stale\nreturn 1");
      // not Lua, no newline, or an unknown option: Redis gives its own answer
      expect(stripUnknownScriptFlags("#!js flags=allow-key-locking\nreturn 1")).toBeUndefined();
      expect(stripUnknownScriptFlags("#!lua flags=allow-key-locking")).toBeUndefined();
      expect(stripUnknownScriptFlags("#!lua name=x flags=allow-key-locking\nreturn 1")).toBe("#!lua name=x\nreturn 1");
      const unknownOption = await post(base, ["EVAL", "#!lua name=x flags=allow-key-locking\nreturn 1", "0"]);
      expect(((await unknownOption.json()) as { error: string }).error).toMatch(/Unknown lua shebang option: name=x/);
    });
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
