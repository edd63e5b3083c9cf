// Vapi sandbox: POST /call (Bearer) answers 201 with a Call object, GET /call/{id} and GET /call
// (phoneNumberId, createdAtGt/Lt, limit) read them back. After answering it plays each call out and
// posts Vapi server messages to assistant.server.url (or the sandbox's serverUrl): status-update
// (ringing, in-progress when answered, ended) then end-of-call-report. With hmacSecret set, every
// message is signed like Vapi's HMAC credential with its defaults: x-timestamp (unix seconds) and
// x-signature = hex HMAC-SHA256(secret, "{timestamp}.{body}").
// Mount at /sandbox/vapi; VAPI_BASE_URL=<that>.
//
// Outcomes are seeded from customer number + first message: answered ~45%, no answer ~30%,
// voicemail ~15%, busy ~10%. Magic customer numbers force them:
//   +61400000001 → answered (customer-ended-call)      +61400000002 → busy (customer-busy)
//   +61400000003 → no answer (customer-did-not-answer)  +61400000004 → voicemail
//   +61400000005 → failed (twilio-failed-to-connect-call)
//   +15005550001 or a number that isn't E.164 → 400 (customer.number validation)
//   +61400000429 → 429 on the first call to that number, then normal; +61400000499 → 429 always
//   +61400000500 → 500 on the first call to that number, then normal
// The app carries `state`: calls(), call(id), webhooks(), settled(), reset().
import { Hono } from "hono";
import type { Context } from "hono";
import { OnceOnly, seeded } from "./seeded.ts";
import { deliverWebhook, Pending, type SandboxWebhook } from "./twilio.ts";

export const VAPI_SANDBOX_DEFAULTS = { apiKey: "sandbox" } as const;

export const VAPI_MAGIC = {
  answered: "+61400000001",
  busy: "+61400000002",
  noAnswer: "+61400000003",
  voicemail: "+61400000004",
  failed: "+61400000005",
  invalidNumber: "+15005550001",
  rateLimitedOnce: "+61400000429",
  rateLimitedAlways: "+61400000499",
  serverErrorOnce: "+61400000500",
} as const;

export type VapiSandboxOutcome = "answered" | "busy" | "no_answer" | "voicemail" | "failed";

const ENDED_REASONS: Record<VapiSandboxOutcome, readonly string[]> = {
  answered: ["customer-ended-call", "assistant-ended-call", "assistant-said-end-call-phrase"],
  busy: ["customer-busy"],
  no_answer: ["customer-did-not-answer"],
  voicemail: ["voicemail"],
  failed: ["twilio-failed-to-connect-call"],
};

export interface VapiSandboxOptions {
  /** The private API key accepted as Bearer (default "sandbox"). */
  apiKey?: string;
  /** Signs server messages (HMAC credential defaults); unsigned when absent. */
  hmacSecret?: string;
  /** Org-level server URL, used when the call's assistant has none. */
  serverUrl?: string;
  /** Only these phone number ids exist (default: any non-empty id). */
  phoneNumberIds?: string[];
  /** Between the API answer and the first server message, and between messages (default 50 ms). */
  webhookDelayMs?: number;
  webhookAttempts?: number;
  retryAfterSeconds?: number;
  /** Cost per connected minute in USD (default 0.12). */
  costPerMinute?: number;
  fetch?: typeof fetch;
}

export interface VapiSandboxCall {
  id: string;
  orgId: string;
  type: "outboundPhoneCall";
  status: "queued" | "ringing" | "in-progress" | "ended";
  endedReason: string | null;
  outcome: VapiSandboxOutcome;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  endedAt: string | null;
  cost: number;
  phoneNumberId: string;
  customer: Record<string, unknown> & { number: string };
  assistant: Record<string, unknown>;
  /** Seconds of conversation when answered. */
  durationSeconds: number;
}

export interface VapiSandboxState {
  calls(): VapiSandboxCall[];
  call(id: string): VapiSandboxCall | undefined;
  webhooks(): SandboxWebhook[];
  settled(): Promise<void>;
  reset(): void;
}

export type VapiSandbox = Hono & { state: VapiSandboxState };

const ORG_ID = "00000000-0000-4000-8000-00000000a0a1";

/** Vapi's HMAC credential with its defaults: hex HMAC-SHA256 over "{timestamp}.{body}". */
export async function vapiSignature(secret: string, timestamp: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const sig = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${timestamp}.${body}`));
  return Array.from(new Uint8Array(sig), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function createVapiSandbox(opts: VapiSandboxOptions = {}): VapiSandbox {
  const apiKey = opts.apiKey ?? VAPI_SANDBOX_DEFAULTS.apiKey;
  const delayMs = Math.max(0, opts.webhookDelayMs ?? 50);
  const attempts = Math.max(1, opts.webhookAttempts ?? 3);
  const costPerMinute = opts.costPerMinute ?? 0.12;
  const doFetch = opts.fetch ?? fetch;
  const once = new OnceOnly();
  const calls = new Map<string, VapiSandboxCall>();
  const webhooks: SandboxWebhook[] = [];
  const pending = new Pending();
  const app = new Hono();

  const nestError = (c: Context, status: 400 | 401 | 404 | 429 | 500, message: string | string[], error: string) =>
    c.json({ message, error, statusCode: status }, status);

  app.use("*", async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    if (header !== `Bearer ${apiKey}`) {
      return nestError(c, 401, "Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa.", "Unauthorized");
    }
    await next();
  });

  function outcomeFor(number: string, firstMessage: string): VapiSandboxOutcome {
    switch (number) {
      case VAPI_MAGIC.answered: return "answered";
      case VAPI_MAGIC.busy: return "busy";
      case VAPI_MAGIC.noAnswer: return "no_answer";
      case VAPI_MAGIC.voicemail: return "voicemail";
      case VAPI_MAGIC.failed: return "failed";
    }
    const x = seeded(`vapi:outcome:${number}\n${firstMessage}`).next();
    return x < 0.45 ? "answered" : x < 0.75 ? "no_answer" : x < 0.9 ? "voicemail" : "busy";
  }

  function callJson(call: VapiSandboxCall) {
    const { outcome: _o, durationSeconds: _d, ...wire } = call;
    return wire;
  }

  async function post(call: VapiSandboxCall, message: Record<string, unknown>): Promise<void> {
    const server = call.assistant.server as { url?: unknown; secret?: unknown } | undefined;
    const url = typeof server?.url === "string" ? server.url : opts.serverUrl;
    if (!url) return;
    const body = JSON.stringify({
      message: { timestamp: Date.now(), ...message, call: callJson(call), customer: call.customer, assistant: call.assistant, phoneNumber: { id: call.phoneNumberId } },
    });
    const headers: Record<string, string> = { "content-type": "application/json", "user-agent": "Vapi" };
    if (opts.hmacSecret) {
      const timestamp = String(Math.floor(Date.now() / 1000));
      headers["x-timestamp"] = timestamp;
      headers["x-signature"] = await vapiSignature(opts.hmacSecret, timestamp, body);
    }
    if (typeof server?.secret === "string") headers["x-vapi-secret"] = server.secret;
    const record: SandboxWebhook = { url, payload: JSON.parse(body), headers, status: null, attempts: 0, delivered: false };
    webhooks.push(record);
    await deliverWebhook(record, body, attempts, doFetch, "vapi");
  }

  /** queued → ringing → (in-progress) → ended, then the end-of-call report. */
  function playOut(call: VapiSandboxCall) {
    const wait = () => new Promise((r) => setTimeout(r, delayMs));
    const set = (patch: Partial<VapiSandboxCall>) => Object.assign(call, patch, { updatedAt: new Date().toISOString() });
    pending.add((async () => {
      await wait();
      if (call.outcome !== "failed") {
        set({ status: "ringing" });
        await post(call, { type: "status-update", status: "ringing" });
        await wait();
      }
      if (call.outcome === "answered" || call.outcome === "voicemail") {
        set({ status: "in-progress", startedAt: new Date().toISOString() });
        await post(call, { type: "status-update", status: "in-progress" });
        await wait();
      }
      const endedReason = seeded(`vapi:reason:${call.id}`).pick(ENDED_REASONS[call.outcome]);
      const connected = call.outcome === "answered" || call.outcome === "voicemail";
      const cost = connected ? Number(((call.durationSeconds / 60) * costPerMinute).toFixed(4)) : 0;
      set({ status: "ended", endedReason, endedAt: new Date().toISOString(), cost });
      await post(call, { type: "status-update", status: "ended", endedReason });
      await wait();
      const firstMessage = typeof call.assistant.firstMessage === "string" ? call.assistant.firstMessage : "";
      const transcript = call.outcome === "answered" ? `AI: ${firstMessage}\nUser: Sure, tell me more.\nAI: Great, I'll send the details through.` : "";
      await post(call, {
        type: "end-of-call-report",
        endedReason,
        cost,
        costs: connected ? [{ type: "vapi", minutes: call.durationSeconds / 60, cost }] : [],
        startedAt: call.startedAt,
        endedAt: call.endedAt,
        durationSeconds: connected ? call.durationSeconds : 0,
        artifact: {
          transcript,
          messages: [],
          recordingUrl: connected ? `https://storage.vapi.ai/${call.id}-mono.wav` : null,
        },
        analysis: {
          summary: call.outcome === "answered" ? "The prospect listened and asked for details by email." : "",
          successEvaluation: call.outcome === "answered" ? "true" : "false",
        },
      });
    })());
  }

  app.post("/call", async (c) => {
    const body = await c.req.json().catch(() => null) as Record<string, unknown> | null;
    if (!body) return nestError(c, 400, ["Invalid JSON"], "Bad Request");
    const problems: string[] = [];
    const phoneNumberId = typeof body.phoneNumberId === "string" ? body.phoneNumberId.trim() : "";
    const customer = body.customer as Record<string, unknown> | undefined;
    const number = typeof customer?.number === "string" ? customer.number.trim() : "";
    const assistant = body.assistant as Record<string, unknown> | undefined;
    if (!phoneNumberId && !body.phoneNumber) problems.push("phoneNumberId or phoneNumber must be provided");
    if (!number) problems.push("customer.number must be provided");
    else if (!/^\+[1-9]\d{6,14}$/.test(number) || number === VAPI_MAGIC.invalidNumber) {
      problems.push("customer.number must be a valid phone number in the E.164 format");
    }
    if (!assistant && !body.assistantId && !body.squadId && !body.workflowId) problems.push("assistant or assistantId must be provided");
    if (assistant) {
      const voice = assistant.voice as { provider?: unknown; voiceId?: unknown } | undefined;
      if (voice && (typeof voice.provider !== "string" || typeof voice.voiceId !== "string" || !voice.voiceId)) {
        problems.push("assistant.voice.voiceId must be a string");
      }
      const server = assistant.server as { url?: unknown } | undefined;
      if (server && (typeof server.url !== "string" || !/^https?:\/\//.test(server.url))) problems.push("assistant.server.url must be a URL address");
    }
    if (problems.length) return nestError(c, 400, problems, "Bad Request");
    if (opts.phoneNumberIds && !opts.phoneNumberIds.includes(phoneNumberId)) {
      return nestError(c, 400, "Couldn't Get Phone Number. Invalid phoneNumberId.", "Bad Request");
    }
    if (number === VAPI_MAGIC.rateLimitedAlways || (number === VAPI_MAGIC.rateLimitedOnce && once.first(`429:${number}`))) {
      if (opts.retryAfterSeconds !== undefined) c.header("retry-after", String(opts.retryAfterSeconds));
      return nestError(c, 429, "Too Many Requests", "Too Many Requests");
    }
    if (number === VAPI_MAGIC.serverErrorOnce && once.first(`500:${number}`)) return nestError(c, 500, "Internal server error", "Internal Server Error");

    const firstMessage = typeof assistant?.firstMessage === "string" ? assistant.firstMessage : "";
    const now = new Date().toISOString();
    const call: VapiSandboxCall = {
      id: crypto.randomUUID(),
      orgId: ORG_ID,
      type: "outboundPhoneCall",
      status: "queued",
      endedReason: null,
      outcome: outcomeFor(number, firstMessage),
      createdAt: now,
      updatedAt: now,
      startedAt: null,
      endedAt: null,
      cost: 0,
      phoneNumberId,
      customer: { ...customer, number },
      assistant: assistant ?? { id: body.assistantId },
      durationSeconds: seeded(`vapi:duration:${number}\n${firstMessage}`).int(20, 240),
    };
    calls.set(call.id, call);
    const answer = callJson(call);
    playOut(call); // the server messages always follow this answer
    return c.json(answer, 201);
  });

  app.get("/call/:id", (c) => {
    const call = calls.get(c.req.param("id"));
    return call ? c.json(callJson(call)) : nestError(c, 404, "Call not found", "Not Found");
  });

  app.get("/call", (c) => {
    const q = new URL(c.req.url).searchParams;
    const limit = Math.min(1000, Math.max(1, Number(q.get("limit") ?? 100) || 100));
    const gt = q.get("createdAtGt") ? Date.parse(q.get("createdAtGt")!) : null;
    const lt = q.get("createdAtLt") ? Date.parse(q.get("createdAtLt")!) : null;
    const list = [...calls.values()]
      .filter((call) => (!q.get("id") || call.id === q.get("id")) && (!q.get("phoneNumberId") || call.phoneNumberId === q.get("phoneNumberId")))
      .filter((call) => (gt === null || Date.parse(call.createdAt) > gt) && (lt === null || Date.parse(call.createdAt) < lt))
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
      .slice(0, limit)
      .map(callJson);
    return c.json(list);
  });

  const state: VapiSandboxState = {
    calls: () => [...calls.values()],
    call: (id) => calls.get(id),
    webhooks: () => [...webhooks],
    settled: () => pending.settled(),
    reset: () => {
      calls.clear();
      webhooks.length = 0;
    },
  };
  return Object.assign(app, { state });
}
