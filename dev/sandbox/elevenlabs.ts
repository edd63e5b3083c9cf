// ElevenLabs sandbox: GET /v1/voices and POST /v1/text-to-speech/{voice_id} with the xi-api-key
// header, answering audio/mpeg bytes (valid MPEG-1 Layer III frame headers around seeded filler,
// so the same text, voice and model always give the same bytes) and FastAPI-style error bodies:
// {"detail": {"status": "...", "message": "..."}}, or {"detail": [...]} for a 422.
// Mount at /sandbox/elevenlabs; ELEVENLABS_BASE_URL=<that>.
//
// Voices: a few of ElevenLabs' premade voices (Rachel 21m00Tcm4TlvDq8ikWAM, …) plus opts.voices;
// any other voice id is voice_not_found. Magic words in the text: "ratelimit" → 429
// too_many_concurrent_requests once, "servererror" → 500 once, "slow" → answers after slowMs.
// The app carries `state`: requests(), reset().
import { Hono } from "hono";
import type { Context } from "hono";
import { delay, failureNow, OnceOnly, seeded } from "./seeded.ts";

export const ELEVENLABS_SANDBOX_DEFAULTS = { apiKey: "sandbox" } as const;

export const ELEVENLABS_PREMADE_VOICES = [
  { voice_id: "21m00Tcm4TlvDq8ikWAM", name: "Rachel", category: "premade", labels: { accent: "american", gender: "female" } },
  { voice_id: "AZnzlk1XvdvUeBnXmlld", name: "Domi", category: "premade", labels: { accent: "american", gender: "female" } },
  { voice_id: "EXAVITQu4vr4xnSDxMaL", name: "Bella", category: "premade", labels: { accent: "american", gender: "female" } },
  { voice_id: "ErXwobaYiN019PkySvjV", name: "Antoni", category: "premade", labels: { accent: "american", gender: "male" } },
  { voice_id: "pNInz6obpgDQGcFmaJgB", name: "Adam", category: "premade", labels: { accent: "american", gender: "male" } },
] as const;

const MODEL_LIMITS: Record<string, number> = {
  eleven_v3: 3_000, eleven_flash_v2_5: 40_000, eleven_turbo_v2_5: 40_000, eleven_flash_v2: 30_000,
  eleven_turbo_v2: 30_000, eleven_multilingual_v2: 10_000, eleven_monolingual_v1: 5_000,
};

export interface ElevenLabsSandboxOptions {
  apiKey?: string;
  /** Extra voices the account has (cloned ones), by id and name. */
  voices?: Array<{ voiceId: string; name: string }>;
  slowMs?: number;
}

export interface ElevenLabsSandboxRequest {
  voiceId: string;
  text: string;
  modelId: string;
  outputFormat: string;
  bytes: number;
}

export interface ElevenLabsSandboxState {
  requests(): ElevenLabsSandboxRequest[];
  reset(): void;
}

export type ElevenLabsSandbox = Hono & { state: ElevenLabsSandboxState };

/** MPEG-1 Layer III, 128 kbps, 44.1 kHz frames: 417 bytes each, ~26 ms of "audio". */
function fakeMp3(seed: string, frames: number): Uint8Array<ArrayBuffer> {
  const frameBytes = 417;
  const out = new Uint8Array(new ArrayBuffer(frames * frameBytes));
  const r = seeded(seed);
  for (let f = 0; f < frames; f++) {
    const at = f * frameBytes;
    out.set([0xff, 0xfb, 0x90, 0x64], at);
    for (let i = 4; i < frameBytes; i++) out[at + i] = Math.floor(r.next() * 256);
  }
  return out;
}

export function createElevenLabsSandbox(opts: ElevenLabsSandboxOptions = {}): ElevenLabsSandbox {
  const apiKey = opts.apiKey ?? ELEVENLABS_SANDBOX_DEFAULTS.apiKey;
  const once = new OnceOnly();
  const requests: ElevenLabsSandboxRequest[] = [];
  const voices = [
    ...ELEVENLABS_PREMADE_VOICES,
    ...(opts.voices ?? []).map((v) => ({ voice_id: v.voiceId, name: v.name, category: "cloned", labels: {} })),
  ];
  const app = new Hono();

  const detail = (c: Context, status: 400 | 401 | 429 | 500, code: string, message: string) =>
    c.json({ detail: { status: code, message } }, status);

  app.use("*", async (c, next) => {
    const key = c.req.header("xi-api-key");
    if (key !== apiKey) return detail(c, 401, "invalid_api_key", "Invalid API key");
    await next();
  });

  app.get("/v1/voices", (c) =>
    c.json({
      voices: voices.map((v) => ({
        ...v,
        description: null,
        preview_url: `https://storage.googleapis.com/eleven-public-prod/premade/voices/${v.voice_id}/preview.mp3`,
        available_for_tiers: [],
        settings: null,
      })),
    }));

  app.post("/v1/text-to-speech/:voiceId", async (c) => {
    const voiceId = c.req.param("voiceId");
    const body = await c.req.json().catch(() => null) as Record<string, unknown> | null;
    if (!body || typeof body.text !== "string") {
      return c.json({ detail: [{ loc: ["body", "text"], msg: "field required", type: "value_error.missing" }] }, 422);
    }
    const text = body.text;
    const modelId = typeof body.model_id === "string" ? body.model_id : "eleven_multilingual_v2";
    const outputFormat = new URL(c.req.url).searchParams.get("output_format") ?? "mp3_44100_128";
    if (!voices.some((v) => v.voice_id === voiceId)) return detail(c, 400, "voice_not_found", `A voice with the voice_id ${voiceId} was not found.`);
    if (!(modelId in MODEL_LIMITS)) return detail(c, 400, "model_not_found", `A model with model ID ${modelId} does not exist.`);
    if (text.length > MODEL_LIMITS[modelId]) {
      return detail(c, 400, "max_character_limit_exceeded", `Text is too long: ${text.length} characters, the limit is ${MODEL_LIMITS[modelId]}.`);
    }
    const failure = failureNow(text, once, "tts");
    if (failure === "ratelimit") return detail(c, 429, "too_many_concurrent_requests", "Too many concurrent requests.");
    if (failure === "servererror") return detail(c, 500, "internal_error", "Something went wrong.");
    if (failure === "slow") await delay(opts.slowMs ?? 2000);

    const audio = fakeMp3(`elevenlabs:${voiceId}:${modelId}:${text}`, Math.max(2, Math.ceil(text.length / 12)));
    requests.push({ voiceId, text, modelId, outputFormat, bytes: audio.length });
    return c.body(audio, 200, {
      "content-type": "audio/mpeg",
      "request-id": crypto.randomUUID().replace(/-/g, ""),
      "x-character-count": String(text.length),
    });
  });

  const state: ElevenLabsSandboxState = {
    requests: () => [...requests],
    reset: () => void (requests.length = 0),
  };
  return Object.assign(app, { state });
}
