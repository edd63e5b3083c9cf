// Upstash Redis REST bridge for local development: speaks the SRH (serverless-redis-http) wire contract
// (POST /, /pipeline, /multi-exec) and forwards commands to a real redis-server via node-redis.
// Like Upstash, it runs Lua scripts whose shebang declares flags redis-server 7.0 doesn't know.
import { Hono } from "hono";
import type { Context } from "hono";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { createClient, ErrorReply, MultiErrorReply, RESP_TYPES } from "redis";

export interface RedisBridgeOptions {
  /** Bearer token clients must present (UPSTASH_REDIS_REST_TOKEN). */
  token: string;
  /** e.g. redis://127.0.0.1:6379 */
  redisUrl: string;
}

export interface RedisBridge {
  /** Routes are relative (POST "/", "/pipeline", "/multi-exec", GET "/"); the stack mounts it at "/redis". */
  app: Hono;
  /** True while the redis connection is up. */
  available(): boolean;
  /** Checks redis now (PING with a short timeout). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

// Bulk strings come back as raw bytes so base64 responses are binary-safe (values not written by the
// SDK, e.g. DUMP or GETRANGE cutting a multi-byte char, would otherwise be mangled by a UTF-8 decode).
const TYPE_MAPPING = { [RESP_TYPES.BLOB_STRING]: Buffer } as const;

// How long createRedisBridge waits for the first connect attempt before handing back an
// "unavailable" bridge; reconnection then continues in the background.
const FIRST_CONNECT_WAIT_MS = 2_000;
const RECONNECT_CAP_MS = 3_000;
const PING_TIMEOUT_MS = 1_000;

// Commands that would change the state of the shared connection (db, pub/sub mode, transaction,
// reply mode) and so corrupt every other request multiplexed on it. Upstash rejects these too.
const FORBIDDEN = new Set([
  "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE",
  "MONITOR", "SELECT", "QUIT", "RESET", "HELLO", "AUTH", "MULTI", "EXEC", "DISCARD", "WATCH",
  "UNWATCH", "SYNC", "PSYNC", "REPLCONF",
]);
// Blocking commands would stall the shared connection for their timeout, so they get their own.
const BLOCKING = new Set([
  "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT", "WAITAOF",
]);

const UNAVAILABLE = "SRH: Unable to connect to the Redis server";

// Script shebang flags redis-server 7.0 knows; it refuses a script declaring any other. Upstash also
// accepts flags such as `allow-key-locking`, which every @upstash/ratelimit script declares
// (`#!lua flags=allow-key-locking`), so the bridge drops the flags Redis doesn't know, as Upstash would.
const REDIS_SCRIPT_FLAGS = new Set(["no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"]);
// Bounds the original → rewritten sha map; a script is only rewritten once per distinct text.
const MAX_SCRIPT_SHAS = 10_000;

type Command = string[];
type Json = null | number | string | Json[];

class BadRequest extends Error {}

function makeClient(url: string, reconnect: boolean) {
  return createClient({
    url,
    // RESP2 is what Upstash speaks: HGETALL etc. are flat arrays, not maps.
    RESP: 2,
    // Fail fast while disconnected instead of queueing requests until redis comes back.
    disableOfflineQueue: true,
    commandOptions: { typeMapping: TYPE_MAPPING },
    socket: {
      connectTimeout: FIRST_CONNECT_WAIT_MS,
      // Never give up (the dev stack may start redis later), but back off to a cap.
      reconnectStrategy: reconnect ? (retries: number) => Math.min(100 * 2 ** retries, RECONNECT_CAP_MS) : false,
    },
  });
}
type Client = ReturnType<typeof makeClient>;

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "<invalid redis url>";
  }
}

function parseCommand(raw: unknown): Command {
  if (!Array.isArray(raw) || raw.length === 0) throw new BadRequest("ERR malformed command: expected a non-empty JSON array");
  return raw.map((arg) => {
    // The SDK sends strings, but numbers (and the odd boolean) are allowed per the REST API.
    if (typeof arg === "string") return arg;
    if (typeof arg === "number" || typeof arg === "boolean") return String(arg);
    throw new BadRequest("ERR malformed command: arguments must be strings or numbers");
  });
}

/**
 * The script with the shebang flags redis-server doesn't know removed, or undefined when Redis can
 * take it as it is. `#!lua flags=allow-key-locking` becomes `#!lua`: still a shebang script (flag
 * semantics, not eval-compat mode) like on Upstash, and the line count stays the same.
 */
export function stripUnknownScriptFlags(script: string): string | undefined {
  if (!script.startsWith("#!")) return undefined;
  const eol = script.indexOf("\n");
  if (eol < 0) return undefined; // Redis reports the invalid shebang itself
  const line = script.slice(0, eol);
  if (/["'\\]/.test(line)) return undefined; // quoted shebang arguments: left to Redis as sent
  const end = line.trimEnd();
  const parts = end.split(/\s+/);
  if (parts[0] !== "#!lua") return undefined;
  let changed = false;
  const kept = [parts[0]];
  for (const part of parts.slice(1)) {
    if (!part.startsWith("flags=")) {
      kept.push(part); // an unknown option: Redis answers with its own error, as it should
      continue;
    }
    const flags = part.slice("flags=".length).split(",");
    const known = flags.filter((f) => REDIS_SCRIPT_FLAGS.has(f));
    if (known.length === flags.length) {
      kept.push(part);
      continue;
    }
    changed = true;
    if (known.length > 0) kept.push(`flags=${known.join(",")}`);
  }
  if (!changed) return undefined;
  return kept.join(" ") + line.slice(end.length) + script.slice(eol);
}

function sha1(text: string): string {
  return createHash("sha1").update(text, "utf8").digest("hex");
}

interface Prepared {
  cmd: Command;
  /** Turns Redis's reply into the one Upstash would give for the command as the client sent it. */
  reply: (r: unknown) => unknown;
}
const asIs = (r: unknown) => r;

/**
 * Rewrites scripting commands so scripts whose shebang declares flags Redis doesn't know run anyway.
 * Clients compute EVALSHA hashes over the script text they sent, so the sha of each rewritten script's
 * original text maps to the sha Redis knows it by; an unmapped sha goes to Redis unchanged, whose
 * NOSCRIPT makes the client (@upstash/ratelimit, @upstash/redis's Script) fall back to EVAL.
 */
function scriptRewriter() {
  const shas = new Map<string, string>(); // sha1 of the text the client sent → sha1 of what Redis got

  function rewrite(script: string): { script: string; originalSha?: string } {
    const stripped = stripUnknownScriptFlags(script);
    if (stripped === undefined) return { script };
    const originalSha = sha1(script);
    if (!shas.has(originalSha)) {
      if (shas.size >= MAX_SCRIPT_SHAS) shas.delete(shas.keys().next().value as string);
      shas.set(originalSha, sha1(stripped));
    }
    return { script: stripped, originalSha };
  }
  const mapSha = (sha: string) => shas.get(sha.toLowerCase()) ?? sha;

  return function prepare(cmd: Command): Prepared {
    const name = cmd[0].toUpperCase();
    if ((name === "EVAL" || name === "EVAL_RO") && cmd.length > 1) {
      const { script } = rewrite(cmd[1]);
      return { cmd: script === cmd[1] ? cmd : [cmd[0], script, ...cmd.slice(2)], reply: asIs };
    }
    if ((name === "EVALSHA" || name === "EVALSHA_RO") && cmd.length > 1) {
      return { cmd: [cmd[0], mapSha(cmd[1]), ...cmd.slice(2)], reply: asIs };
    }
    if (name === "SCRIPT" && cmd.length > 2) {
      const sub = cmd[1].toUpperCase();
      if (sub === "LOAD" && cmd.length === 3) {
        const { script, originalSha } = rewrite(cmd[2]);
        if (!originalSha) return { cmd, reply: asIs };
        // Upstash answers with the sha of the script as sent, the one the client will EVALSHA.
        return { cmd: [cmd[0], cmd[1], script], reply: () => Buffer.from(originalSha) };
      }
      if (sub === "EXISTS") return { cmd: [cmd[0], cmd[1], ...cmd.slice(2).map(mapSha)], reply: asIs };
    }
    return { cmd, reply: asIs };
  };
}

function forbiddenError(cmd: Command): string | undefined {
  const name = cmd[0].toUpperCase();
  if (FORBIDDEN.has(name)) return `ERR Command is not available: '${cmd[0].toLowerCase()}'`;
  return undefined;
}

function isBlocking(cmd: Command): boolean {
  const name = cmd[0].toUpperCase();
  if (BLOCKING.has(name)) return true;
  return (name === "XREAD" || name === "XREADGROUP") && cmd.some((a) => a.toUpperCase() === "BLOCK");
}

// Turn a RESP2 reply into JSON. With base64 every string is encoded (like SRH, including "OK"):
// the SDK's decoder base64-decodes strings inside arrays unconditionally, so leaving a status
// "OK" bare there would be decoded into garbage; an encoded "OK" ("T0s=") always round-trips.
function toJson(reply: unknown, base64: boolean): Json {
  if (reply === null || reply === undefined) return null;
  if (typeof reply === "number") return reply;
  if (typeof reply === "bigint") return Number(reply);
  if (Buffer.isBuffer(reply)) return base64 ? reply.toString("base64") : reply.toString("utf8");
  if (Array.isArray(reply)) return reply.map((r) => toJson(r, base64));
  // A nested error (e.g. from a Lua script's table) has no JSON slot of its own: pass its message.
  const s = reply instanceof Error ? reply.message : String(reply);
  return base64 ? Buffer.from(s, "utf8").toString("base64") : s;
}

function isRedisError(err: unknown): err is ErrorReply {
  return err instanceof ErrorReply;
}

export async function createRedisBridge(opts: RedisBridgeOptions): Promise<RedisBridge> {
  const where = redact(opts.redisUrl);
  const client: Client = makeClient(opts.redisUrl, true);
  let state: "connecting" | "up" | "down" = "connecting";
  let closed = false;

  // An EventEmitter without an 'error' listener throws: keep one, and log only transitions.
  client.on("error", (err: Error) => {
    if (state !== "down" && !closed) console.warn(`[redis-bridge] redis unavailable at ${where} (${err.message}); retrying in background`);
    state = "down";
  });
  client.on("ready", () => {
    if (state === "down") console.warn(`[redis-bridge] redis connection to ${where} restored`);
    state = "up";
  });

  // connect() only settles once connected (it keeps retrying), so don't await it: wait for the
  // first outcome of the first attempt, then let node-redis carry on reconnecting by itself.
  const connecting = client.connect().catch(() => undefined);
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off("ready", done);
      client.off("error", done);
      resolve();
    };
    const timer = setTimeout(done, FIRST_CONNECT_WAIT_MS + 500);
    client.once("ready", done);
    client.once("error", done);
  });

  const available = () => !closed && client.isReady;
  const prepareScripts = scriptRewriter();

  async function runOne(cmd: Command): Promise<unknown> {
    if (!isBlocking(cmd)) return client.sendCommand(cmd);
    return withIsolated((c) => c.sendCommand(cmd));
  }

  async function withIsolated<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    const c = makeClient(opts.redisUrl, false);
    c.on("error", () => {}); // failures surface through the awaited promises below
    await c.connect();
    try {
      return await fn(c);
    } finally {
      c.destroy();
    }
  }

  // Body shapes are validated before touching redis so bad input is a 400 even when redis is down.
  async function readBody(c: Context): Promise<unknown> {
    try {
      return await c.req.json();
    } catch {
      throw new BadRequest("ERR malformed body: expected JSON");
    }
  }

  const app = new Hono();

  app.get("/", (c) => c.text("Welcome to Serverless Redis HTTP! (agency-os local bridge)"));

  // Auth as SRH does it: a missing or non-Bearer header is a malformed request (400), a wrong token 401.
  const auth = async (c: Context, next: () => Promise<void>) => {
    const m = c.req.header("authorization")?.match(/^Bearer\s+(\S+)\s*$/i);
    if (!m) return c.json({ error: "Authorization header is missing or malformed (expected 'Bearer <token>')" }, 400);
    if (!timingSafeEqual(m[1], opts.token)) return c.json({ error: "Unauthorized: invalid token" }, 401);
    await next();
  };
  app.post("*", auth);

  app.post("/", async (c) => {
    const base64 = wantsBase64(c);
    try {
      const cmd = parseCommand(await readBody(c));
      const denied = forbiddenError(cmd);
      if (denied) return c.json({ error: denied }, 400);
      if (!available()) return c.json({ error: UNAVAILABLE }, 500);
      const { cmd: sent, reply } = prepareScripts(cmd);
      return c.json({ result: toJson(reply(await runOne(sent)), base64) });
    } catch (err) {
      return failure(c, err);
    }
  });

  app.post("/pipeline", async (c) => {
    const base64 = wantsBase64(c);
    try {
      const cmds = parseBatch(await readBody(c));
      if (!available()) return c.json({ error: UNAVAILABLE }, 500);
      // Not atomic (as on Upstash). node-redis writes commands issued in the same tick as one batch
      // on the single connection, so order is preserved; a blocking command moves the batch aside.
      const prepared = cmds.map(prepareScripts);
      const run = (cl: Client) =>
        Promise.allSettled(cmds.map((cmd, i) => {
          const denied = forbiddenError(cmd);
          return denied ? Promise.reject(new ErrorReply(denied)) : cl.sendCommand(prepared[i].cmd);
        }));
      const settled = cmds.some(isBlocking) ? await withIsolated(run) : await run(client);
      const out = settled.map((s, i) => {
        if (s.status === "fulfilled") return { result: toJson(prepared[i].reply(s.value), base64) };
        if (isRedisError(s.reason)) return { error: s.reason.message };
        throw s.reason; // lost connection mid-pipeline: the whole request fails with 500
      });
      return c.json(out);
    } catch (err) {
      return failure(c, err);
    }
  });

  app.post("/multi-exec", async (c) => {
    const base64 = wantsBase64(c);
    try {
      const cmds = parseBatch(await readBody(c));
      for (const cmd of cmds) {
        const denied = forbiddenError(cmd);
        if (denied) return c.json({ error: denied }, 400); // whole transaction discarded
      }
      if (!available()) return c.json({ error: UNAVAILABLE }, 500);
      if (cmds.length === 0) return c.json([]);
      // node-redis queues MULTI, the commands and EXEC back-to-back on the connection, so other
      // requests can't interleave into the transaction.
      const prepared = cmds.map(prepareScripts);
      const multi = client.multi();
      for (const p of prepared) multi.addCommand(p.cmd);
      let replies: unknown[];
      try {
        replies = await multi.exec();
      } catch (err) {
        // Runtime errors inside EXEC: the other commands still ran; report each individually.
        if (err instanceof MultiErrorReply) replies = err.replies;
        else throw err; // queue-time error (EXECABORT: transaction discarded) or connection loss
      }
      return c.json(replies.map((r, i) =>
        r instanceof ErrorReply ? { error: r.message } : { result: toJson(prepared[i].reply(r), base64) }));
    } catch (err) {
      return failure(c, err);
    }
  });

  // Upstash answers 405 to other methods on its endpoints; SRH answers 404 for unknown endpoints.
  const notAllowed = (c: Context) => c.json({ error: `Method ${c.req.method} not allowed` }, 405);
  app.all("/", notAllowed);
  app.all("/pipeline", notAllowed);
  app.all("/multi-exec", notAllowed);
  app.all("*", (c) =>
    c.json({ error: "SRH: Endpoint not found. SRH currently supports only POST /, POST /pipeline and POST /multi-exec" }, 404));

  return {
    app,
    available,
    async ping() {
      if (!available()) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("ping timeout")), PING_TIMEOUT_MS);
        });
        await Promise.race([client.sendCommand(["PING"]), timeout]);
        return true;
      } catch {
        return false;
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        // Graceful when connected (pending replies still arrive); destroy() also stops the retry loop.
        if (client.isReady) await client.close();
        else client.destroy();
      } catch {
        client.destroy();
      }
      await connecting;
    },
  };
}

function wantsBase64(c: Context): boolean {
  return c.req.header("upstash-encoding")?.toLowerCase() === "base64";
}

function parseBatch(raw: unknown): Command[] {
  if (!Array.isArray(raw)) throw new BadRequest("ERR malformed body: expected a JSON array of commands");
  return raw.map(parseCommand);
}

function failure(c: Context, err: unknown): Response {
  if (err instanceof BadRequest) return c.json({ error: err.message }, 400);
  if (isRedisError(err)) return c.json({ error: err.message }, 400);
  // Anything else is the connection (offline, closed, socket dropped mid-request): SRH answers 500.
  return c.json({ error: UNAVAILABLE }, 500);
}

// Constant-time so the token can't be guessed byte by byte from response timing.
function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}
