// The ElevenLabs client against its sandbox on a local server: voice id validation through
// GET /v1/voices (and its cache), text-to-speech bytes with cost by character, and failures:
// 401, unknown voice, over-long text, 429 with retry, 500, malformed and non-audio answers.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { Redis } from "@upstash/redis";
import { createRedisBridge, type RedisBridge } from "../../dev/redis-bridge.ts";
import { createElevenLabsSandbox, type ElevenLabsSandbox } from "../../dev/sandbox/elevenlabs.ts";
import { ProviderError, type ProviderCall } from "../../shared/integrations/provider-http.ts";
import {
  createElevenLabsClient,
  elevenlabsFromEnv,
  type ElevenLabsClient,
  type ElevenLabsConfig,
} from "../../shared/integrations/elevenlabs.ts";

const KEY = "xi-test-key";
const RACHEL = "21m00Tcm4TlvDq8ikWAM";

let server: ServerType;
let base: string;
let sandbox: ElevenLabsSandbox;
let bridge: RedisBridge;
let redis: Redis;
const REDIS_TOKEN = `el-${Math.random().toString(36).slice(2)}`;
let calls: ProviderCall[] = [];
const headersSeen: Array<Record<string, string>> = [];

function config(over: Partial<ElevenLabsConfig> = {}): ElevenLabsConfig {
  return {
    apiKey: KEY, baseUrl: `${base}/sandbox/elevenlabs`, redis: null, rateLimit: false,
    record: (c) => void calls.push(c), retry: { baseDelayMs: 5, maxDelayMs: 20 }, timeoutMs: 2_000, ...over,
  };
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

beforeAll(async () => {
  sandbox = createElevenLabsSandbox({ apiKey: KEY, slowMs: 300, voices: [{ voiceId: "cloneVoice0000000001", name: "Alex (clone)" }] });
  const root = new Hono();
  root.use("/sandbox/*", async (c, next) => {
    headersSeen.push(Object.fromEntries(c.req.raw.headers));
    await next();
  });
  root.route("/sandbox/elevenlabs", sandbox);
  bridge = await createRedisBridge({ token: REDIS_TOKEN, redisUrl: "redis://127.0.0.1:6379" });
  root.route("/redis", bridge.app);
  await new Promise<void>((resolve) => {
    server = serve({ fetch: root.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
      base = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
  redis = new Redis({ url: `${base}/redis`, token: REDIS_TOKEN, retry: false, enableTelemetry: false });
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await bridge.close();
});

beforeEach(() => {
  calls = [];
});

describe("elevenlabs against the sandbox", () => {
  let client: ElevenLabsClient;
  beforeAll(() => {
    client = createElevenLabsClient(config());
  });

  it("lists voices with xi-api-key and validates configured voice ids", async () => {
    const voices = await client.listVoices();
    expect(headersSeen.at(-1)!["xi-api-key"]).toBe(KEY);
    expect(voices).toContainEqual({ voiceId: RACHEL, name: "Rachel", category: "premade" });
    expect(voices).toContainEqual({ voiceId: "cloneVoice0000000001", name: "Alex (clone)", category: "cloned" });
    expect(await client.hasVoice(RACHEL)).toBe(true);
    expect(await client.hasVoice("doesNotExist00000000")).toBe(false);
    expect(await client.hasVoice("  ")).toBe(false);
    expect((await client.assertVoice(RACHEL)).name).toBe("Rachel");
    const e = await failure(client.assertVoice("doesNotExist00000000"));
    expect(e).toMatchObject({ code: "invalid_request", retryable: false });
    expect(e.message).toContain("doesNotExist00000000");
    expect(calls.every((c) => c.operation === "voices.list" && c.status === 200)).toBe(true);
  });

  it("caches the voice list in Redis when there is one", async () => {
    const key = "cache:elevenlabs:voices:all";
    await redis.del(key);
    try {
      const cached = createElevenLabsClient(config({ redis }));
      const before = headersSeen.length;
      await cached.listVoices();
      const second = await cached.listVoices();
      expect(second.some((v) => v.voiceId === RACHEL)).toBe(true);
      expect(calls.map((c) => c.cached)).toEqual([false, true]);
      expect(headersSeen.length - before).toBe(1);
    } finally {
      await redis.del(key);
    }
  });

  it("turns text into audio/mpeg bytes, deterministically, with cost by character", async () => {
    const text = "Hi Sam, it's Alex from Acme. Sorry I missed you.";
    const a = await client.textToSpeech(RACHEL, text, { modelId: "eleven_flash_v2_5", outputFormat: "mp3_44100_128" }, { leadId: "00000000-0000-0000-0000-00000000000a" });
    expect(a.contentType).toBe("audio/mpeg");
    expect([...a.audio.slice(0, 3)]).toEqual([0xff, 0xfb, 0x90]);
    expect(a.audio.length % 417).toBe(0);
    expect(a.characters).toBe(text.length);
    expect(a.costCents).toBeCloseTo(text.length * 0.022, 6);
    expect(a.requestId).toMatch(/^[0-9a-f]{32}$/);
    expect(calls.at(-1)).toMatchObject({ operation: "text_to_speech", status: 200, credits: text.length, leadId: "00000000-0000-0000-0000-00000000000a" });
    expect(sandbox.state.requests().at(-1)).toMatchObject({ voiceId: RACHEL, text, modelId: "eleven_flash_v2_5", outputFormat: "mp3_44100_128" });
    expect(headersSeen.at(-1)!.accept).toBe("audio/mpeg");
    const again = await client.textToSpeech(RACHEL, text, { modelId: "eleven_flash_v2_5" });
    expect(Buffer.from(again.audio).equals(Buffer.from(a.audio))).toBe(true);
    const other = await client.textToSpeech(RACHEL, `${text}!`, { modelId: "eleven_flash_v2_5" });
    expect(Buffer.from(other.audio).equals(Buffer.from(a.audio))).toBe(false);
  });

  it("401 with a bad key and an unknown voice are non-retryable", async () => {
    const bad = createElevenLabsClient(config({ apiKey: "wrong" }));
    expect(await failure(bad.listVoices())).toMatchObject({ code: "http", status: 401, retryable: false });
    const e = await failure(client.textToSpeech("doesNotExist00000000", "hello"));
    expect(e).toMatchObject({ status: 400, retryable: false });
    expect(e.message).toContain("voice_not_found");
  });

  it("refuses empty or over-long text before any HTTP; not_configured without a key", async () => {
    expect(await failure(client.textToSpeech(RACHEL, " "))).toMatchObject({ code: "invalid_request" });
    expect(await failure(client.textToSpeech("", "hi"))).toMatchObject({ code: "invalid_request" });
    expect(await failure(client.textToSpeech(RACHEL, "x".repeat(3_001), { modelId: "eleven_v3" }))).toMatchObject({ code: "invalid_request" });
    expect(calls).toHaveLength(0);
    const none = createElevenLabsClient({ baseUrl: `${base}/sandbox/elevenlabs`, redis: null, rateLimit: false });
    expect(await failure(none.listVoices())).toMatchObject({ code: "not_configured" });
    // a model we don't know the limit of is left to ElevenLabs to judge
    expect(await failure(client.textToSpeech(RACHEL, "hi", { modelId: "eleven_unknown" }))).toMatchObject({ status: 400 });
  });

  it("429 too_many_concurrent_requests once is retried; 500 once is retried", async () => {
    const a = await client.textToSpeech(RACHEL, `ratelimit ${Date.now()}`);
    expect(a.audio.length).toBeGreaterThan(0);
    expect(calls.map((c) => c.status)).toEqual([429, 200]);
    calls = [];
    await client.textToSpeech(RACHEL, `servererror ${Date.now()}`);
    expect(calls.map((c) => c.status)).toEqual([500, 200]);
  });

  it("an empty, non-audio or malformed 200 is a non-retryable malformed error; timeouts are retryable", async () => {
    const empty = createElevenLabsClient(config({ fetch: async () => new Response(new Uint8Array(0), { headers: { "content-type": "audio/mpeg" } }) }));
    expect(await failure(empty.textToSpeech(RACHEL, "hi"))).toMatchObject({ code: "malformed", retryable: false });
    const html = createElevenLabsClient(config({ fetch: async () => new Response("<html></html>", { headers: { "content-type": "text/html" } }) }));
    expect(await failure(html.textToSpeech(RACHEL, "hi"))).toMatchObject({ code: "malformed" });
    const badVoices = createElevenLabsClient(config({ fetch: async () => Response.json({ voices: "nope" }) }));
    expect(await failure(badVoices.listVoices())).toMatchObject({ code: "malformed" });
    const slow = createElevenLabsClient(config({ timeoutMs: 50, retry: { attempts: 2, baseDelayMs: 5 } }));
    expect(await failure(slow.textToSpeech(RACHEL, "slow please"))).toMatchObject({ code: "timeout", retryable: true });
  });

  it("elevenlabsFromEnv reads ELEVENLABS_* and defaults the key on a local base URL", async () => {
    const saved = { ...process.env };
    try {
      delete process.env.ELEVENLABS_API_KEY;
      process.env.ELEVENLABS_BASE_URL = "http://localhost:9";
      const def = createElevenLabsSandbox();
      const local = elevenlabsFromEnv({ redis: null, rateLimit: false, record: () => {}, fetch: async (i, init) => def.request(new Request(i as URL, init)) });
      expect(await local.hasVoice(RACHEL)).toBe(true);
      process.env.ELEVENLABS_BASE_URL = "https://api.elevenlabs.io";
      expect(await failure(elevenlabsFromEnv({ redis: null, rateLimit: false }).listVoices())).toMatchObject({ code: "not_configured" });
    } finally {
      process.env = saved;
    }
  });
});
