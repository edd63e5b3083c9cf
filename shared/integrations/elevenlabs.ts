// ElevenLabs: GET /v1/voices to check that a configured voice id exists (Vapi speaks with it, so a
// typo would only show up as a failed call), and POST /v1/text-to-speech/{voice_id} for audio bytes
// (voicemail drops, previews). Auth is the xi-api-key header. Calls go through providerFetch, which
// speaks JSON: the TTS spec's fetch turns the audio answer into a small JSON envelope (base64) so
// timeouts, retries, the rate limit and provider_calls rows stay the shared ones.
import { z } from "zod";
import type { Redis } from "@upstash/redis";
import { readEnv } from "../config/env.ts";
import {
  isLocalUrl,
  lenient,
  ProviderError,
  providerFetch,
  rateLimitFromEnv,
  tolerantArray,
  type ProviderCallContext,
  type ProviderSpec,
  type RateLimitSpec,
  type RecordCall,
  type RetrySpec,
  type SqlTag,
} from "./provider-http.ts";

export const ELEVENLABS_DEFAULT_BASE_URL = "https://api.elevenlabs.io";
export const ELEVENLABS_DEFAULT_MODEL = "eleven_multilingual_v2";

/** Characters one request may carry, per model (providers.md §6). */
export const ELEVENLABS_CHAR_LIMITS: Record<string, number> = {
  eleven_v3: 3_000,
  eleven_flash_v2_5: 40_000,
  eleven_turbo_v2_5: 40_000,
  eleven_flash_v2: 30_000,
  eleven_turbo_v2: 30_000,
  eleven_multilingual_v2: 10_000,
};

export interface ElevenLabsConfig {
  apiKey?: string;
  baseUrl?: string;
  /** Default 10 requests/s shared (ELEVENLABS_RATE_LIMIT overrides); the plan's concurrency limit answers 429 beyond. */
  rateLimit?: RateLimitSpec | false;
  retry?: RetrySpec;
  timeoutMs?: number;
  redis?: Redis | null;
  record?: RecordCall;
  sql?: SqlTag;
  fetch?: typeof fetch;
  /** What a character costs on our plan, in US cents (default 0.022: Creator, $22 per 100k). */
  centsPerCharacter?: number;
  /** How long the voice list is cached (default 1 hour). */
  voicesTtlSeconds?: number;
}

export interface ElevenLabsVoice {
  voiceId: string;
  name: string | null;
  category: string | null;
}

export interface VoiceSettings {
  stability?: number;
  similarity_boost?: number;
  style?: number;
  use_speaker_boost?: boolean;
  speed?: number;
}

export interface TextToSpeechOptions {
  modelId?: string;
  /** e.g. mp3_44100_128 (default), ulaw_8000 for telephony. */
  outputFormat?: string;
  voiceSettings?: VoiceSettings;
  /** false = zero-retention mode (enterprise). */
  enableLogging?: boolean;
}

export interface SpeechAudio {
  audio: Uint8Array;
  contentType: string;
  characters: number;
  requestId: string | null;
  costCents: number;
}

export interface ElevenLabsClient {
  listVoices(ctx?: ProviderCallContext): Promise<ElevenLabsVoice[]>;
  /** Whether the account can use this voice id. */
  hasVoice(voiceId: string, ctx?: ProviderCallContext): Promise<boolean>;
  /** The voice, or a non-retryable invalid_request error naming the id. */
  assertVoice(voiceId: string, ctx?: ProviderCallContext): Promise<ElevenLabsVoice>;
  textToSpeech(voiceId: string, text: string, opts?: TextToSpeechOptions, ctx?: ProviderCallContext): Promise<SpeechAudio>;
}

const VoicesWire = z.object({
  voices: tolerantArray(z.object({ voice_id: z.string().min(1), name: lenient.string, category: lenient.string })
    .transform((v): ElevenLabsVoice => ({ voiceId: v.voice_id, name: v.name, category: v.category }))),
});

const AudioEnvelope = z.object({
  audioBase64: z.string().min(1),
  contentType: z.string(),
  characters: z.number().nullable(),
  requestId: z.string().nullable(),
});

function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

function fromBase64(b64: string): Uint8Array {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/** A 2xx audio answer → JSON envelope for providerFetch; errors and anything else pass through. */
function audioAsJson(inner: typeof fetch): typeof fetch {
  return async (input, init) => {
    const res = await inner(input, init);
    const type = res.headers.get("content-type") ?? "";
    if (!res.ok || !/^audio\//i.test(type)) return res;
    const bytes = new Uint8Array(await res.arrayBuffer());
    const chars = Number(res.headers.get("x-character-count") ?? res.headers.get("character-cost") ?? NaN);
    const body = bytes.length
      ? { audioBase64: toBase64(bytes), contentType: type, characters: Number.isFinite(chars) ? chars : null, requestId: res.headers.get("request-id") }
      : {};
    return new Response(JSON.stringify(body), { status: res.status, headers: { "content-type": "application/json" } });
  };
}

export function createElevenLabsClient(config: ElevenLabsConfig = {}): ElevenLabsClient {
  const baseUrl = config.baseUrl ?? ELEVENLABS_DEFAULT_BASE_URL;
  const centsPerCharacter = config.centsPerCharacter ?? 0.022;
  const spec: ProviderSpec = {
    provider: "elevenlabs",
    baseUrl,
    headers: { "xi-api-key": config.apiKey ?? "" },
    missingCredentials: config.apiKey ? undefined : "ELEVENLABS_API_KEY is not set",
    rateLimit: config.rateLimit ?? rateLimitFromEnv("ELEVENLABS_RATE_LIMIT", { limit: 10, window: "1 s" }),
    retry: config.retry,
    timeoutMs: config.timeoutMs ?? 30_000,
    redis: config.redis,
    record: config.record,
    sql: config.sql,
    fetch: config.fetch,
  };
  const ttsSpec: ProviderSpec = { ...spec, fetch: audioAsJson(config.fetch ?? ((input, init) => fetch(input, init))) };

  const client: ElevenLabsClient = {
    async listVoices(ctx) {
      const res = await providerFetch(spec, {
        operation: "voices.list", path: "/v1/voices", schema: VoicesWire,
        cache: { kind: "voices", key: "all", ttlSeconds: config.voicesTtlSeconds ?? 3_600, isEmpty: (v) => v.voices.length === 0 },
      }, ctx);
      return res.data.voices;
    },

    async hasVoice(voiceId, ctx) {
      const id = voiceId?.trim();
      if (!id) return false;
      return (await client.listVoices(ctx)).some((v) => v.voiceId === id);
    },

    async assertVoice(voiceId, ctx) {
      const id = voiceId?.trim();
      const voice = id ? (await client.listVoices(ctx)).find((v) => v.voiceId === id) : undefined;
      if (!voice) {
        throw new ProviderError({
          provider: "elevenlabs", operation: "voices.list", code: "invalid_request", retryable: false,
          message: `voice id "${voiceId}" is not available on this ElevenLabs account`,
        });
      }
      return voice;
    },

    async textToSpeech(voiceId, text, opts = {}, ctx) {
      const operation = "text_to_speech";
      const invalid = (message: string) => new ProviderError({ provider: "elevenlabs", operation, code: "invalid_request", retryable: false, message });
      if (!voiceId?.trim()) throw invalid("no voice id");
      if (!text?.trim()) throw invalid("empty text");
      const modelId = opts.modelId ?? ELEVENLABS_DEFAULT_MODEL;
      const limit = ELEVENLABS_CHAR_LIMITS[modelId];
      if (limit !== undefined && text.length > limit) throw invalid(`${text.length} characters is over ${modelId}'s limit of ${limit}`);
      const res = await providerFetch(ttsSpec, {
        operation, method: "POST", path: `/v1/text-to-speech/${encodeURIComponent(voiceId.trim())}`,
        query: { output_format: opts.outputFormat, enable_logging: opts.enableLogging },
        headers: { accept: "audio/mpeg" },
        body: { text, model_id: modelId, ...(opts.voiceSettings ? { voice_settings: opts.voiceSettings } : {}) },
        schema: AudioEnvelope.transform((a): SpeechAudio => {
          const characters = a.characters ?? text.length;
          return {
            audio: fromBase64(a.audioBase64), contentType: a.contentType, characters, requestId: a.requestId,
            costCents: Math.round(characters * centsPerCharacter * 10_000) / 10_000,
          };
        }),
        credits: (a) => a.characters,
        costCents: (a) => a.costCents,
      }, ctx);
      return res.data;
    },
  };
  return client;
}

/**
 * A client from ELEVENLABS_API_KEY, ELEVENLABS_BASE_URL (and ELEVENLABS_RATE_LIMIT).
 * Against a local base URL the key defaults to "sandbox".
 */
export function elevenlabsFromEnv(overrides: Partial<ElevenLabsConfig> = {}): ElevenLabsClient {
  const baseUrl = overrides.baseUrl ?? readEnv("ELEVENLABS_BASE_URL") ?? ELEVENLABS_DEFAULT_BASE_URL;
  return createElevenLabsClient({
    apiKey: readEnv("ELEVENLABS_API_KEY") || (isLocalUrl(baseUrl) ? "sandbox" : undefined),
    ...overrides,
    baseUrl,
  });
}
