// ClickSend SMS (REST v3): POST /v3/sms/send with Basic auth (username:API key) and the
// {http_code, response_code, response_msg, data} envelope; our sendId rides in custom_string, so a
// send whose answer was lost can be found again through GET /v3/sms/history. A 200 does not mean the
// message was accepted: each message carries its own status (SUCCESS, INVALID_RECIPIENT, THROTTLED…).
// Delivery receipts arrive at the receipt rule's URL (a webhook function's job, not this file's).
import { z } from "zod";
import type { Redis } from "@upstash/redis";
import { readEnv } from "../config/env.ts";
import type { ChannelAdapter, SendRequest, SendResult, SendStatus } from "../channels/types.ts";
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

export const CLICKSEND_DEFAULT_BASE_URL = "https://rest.clicksend.com/v3";

/** Per-message statuses worth retrying later: THROTTLED is "the same body to the same number seconds ago". */
const RETRYABLE_STATUSES = new Set(["THROTTLED", "TOO_MANY_REQUESTS", "QUEUE_FULL"]);

export interface ClickSendConfig {
  username?: string;
  apiKey?: string;
  /** Includes /v3 (default https://rest.clicksend.com/v3). */
  baseUrl?: string;
  /** Default 8 requests/s shared (CLICKSEND_RATE_LIMIT overrides). */
  rateLimit?: RateLimitSpec | false;
  retry?: RetrySpec;
  timeoutMs?: number;
  redis?: Redis | null;
  record?: RecordCall;
  sql?: SqlTag;
  fetch?: typeof fetch;
  /** The `source` ClickSend shows in its reports (default "agency-os"). */
  source?: string;
  /**
   * ClickSend prices in the account's currency (AUD for an Australian account). US dollars per unit of
   * that currency; without it a non-USD price is recorded at face value (an over-estimate for AUD,
   * which keeps budget checks on the safe side).
   */
  usdPerCurrencyUnit?: number;
  /** How far back findByCustomString looks (default 7 days). */
  historyLookbackDays?: number;
}

export interface ClickSendSendInput {
  to: string;
  body: string;
  /** Dedicated number or alphanumeric sender id; ClickSend's shared number when absent. */
  from?: string | null;
  /** Our reference, echoed in receipts, replies and history. */
  customString?: string | null;
}

export interface ClickSendMessage {
  messageId: string;
  to: string;
  from: string | null;
  /** SUCCESS on send; in history: e.g. Sent, Delivered, Undelivered. */
  status: string;
  customString: string | null;
  parts: number;
  /** In the account currency. */
  price: number;
  currency: string | null;
  costCents: number;
}

export interface ClickSendClient {
  sendSms(input: ClickSendSendInput, ctx?: ProviderCallContext): Promise<ClickSendMessage>;
  /** The message we sent with this custom_string, or null. */
  findByCustomString(customString: string, opts?: { to?: string | null; since?: Date }, ctx?: ProviderCallContext): Promise<ClickSendMessage | null>;
}

// ---------------------------------------------------------------------------------------------
// Wire shapes
// ---------------------------------------------------------------------------------------------

const MessageWire = z.object({
  message_id: z.string().min(1),
  to: z.string(),
  from: lenient.string,
  status: z.string().min(1),
  custom_string: lenient.string,
  message_parts: lenient.number,
  message_price: lenient.number,
  status_text: lenient.string,
});
type MessageWire = z.infer<typeof MessageWire>;

const CurrencyWire = z.object({ currency_name_short: lenient.string }).nullish().catch(null);

const SendWire = z.object({
  response_code: z.string(),
  response_msg: lenient.string,
  data: z.object({
    total_price: lenient.number,
    queued_count: lenient.number,
    messages: z.array(MessageWire).min(1),
    _currency: CurrencyWire,
  }),
});

const HistoryWire = z.object({
  response_code: z.string(),
  data: z.object({
    total: lenient.number,
    data: tolerantArray(MessageWire.extend({ _currency: CurrencyWire })),
  }),
});

/** The per-message status of a ProviderError from sendSms ("INVALID_RECIPIENT", "THROTTLED"…), if any. */
export function clicksendMessageStatus(err: unknown): string | undefined {
  if (!(err instanceof ProviderError) || err.provider !== "clicksend") return undefined;
  return /message status ([A-Z_]+)/.exec(err.message)?.[1];
}

function base64Utf8(s: string): string {
  let bin = "";
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function createClickSendClient(config: ClickSendConfig = {}): ClickSendClient {
  const baseUrl = config.baseUrl ?? CLICKSEND_DEFAULT_BASE_URL;
  const { username, apiKey } = config;
  const source = config.source ?? "agency-os";
  const lookbackDays = config.historyLookbackDays ?? 7;
  const spec: ProviderSpec = {
    provider: "clicksend",
    baseUrl,
    headers: { authorization: `Basic ${base64Utf8(`${username ?? ""}:${apiKey ?? ""}`)}` },
    missingCredentials: !username ? "CLICKSEND_USERNAME is not set" : !apiKey ? "CLICKSEND_API_KEY is not set" : undefined,
    rateLimit: config.rateLimit ?? rateLimitFromEnv("CLICKSEND_RATE_LIMIT", { limit: 8, window: "1 s" }),
    retry: config.retry,
    timeoutMs: config.timeoutMs ?? 15_000,
    redis: config.redis,
    record: config.record,
    sql: config.sql,
    fetch: config.fetch,
  };
  // A send that timed out may have gone out: no automatic retry (findByReference settles it).
  const sendSpec: ProviderSpec = { ...spec, retry: { ...config.retry, onTimeout: false } };

  function cents(price: number | null, currency: string | null): number {
    if (!price || price <= 0) return 0;
    const rate = !currency || currency.toUpperCase() === "USD" ? 1 : config.usdPerCurrencyUnit ?? 1;
    return Math.round(price * rate * 100 * 10_000) / 10_000;
  }

  function toMessage(m: MessageWire, currency: string | null): ClickSendMessage {
    const price = m.message_price ?? 0;
    return {
      messageId: m.message_id, to: m.to, from: m.from, status: m.status, customString: m.custom_string,
      parts: m.message_parts ?? 1, price, currency, costCents: cents(price, currency),
    };
  }

  return {
    async sendSms(input, ctx) {
      const operation = "sms.send";
      const invalid = (message: string) => new ProviderError({ provider: "clicksend", operation, code: "invalid_request", retryable: false, message });
      if (!input.to?.trim()) throw invalid("no recipient number");
      if (!input.body?.trim()) throw invalid("empty body");
      const message = {
        to: input.to.trim(),
        body: input.body,
        source,
        ...(input.from ? { from: input.from } : {}),
        ...(input.customString ? { custom_string: input.customString } : {}),
      };
      const res = await providerFetch(sendSpec, {
        operation, method: "POST", path: "/sms/send", body: { messages: [message] },
        schema: SendWire.transform((b) => ({ envelope: b, message: toMessage(b.data.messages[0], b.data._currency?.currency_name_short ?? null) })),
        check: ({ envelope, message: m }) => {
          if (envelope.response_code !== "SUCCESS") {
            return { message: `response ${envelope.response_code}: ${envelope.response_msg ?? ""}`, retryable: false };
          }
          if (m.status !== "SUCCESS") {
            return { message: `message status ${m.status} for ${m.to}`, retryable: RETRYABLE_STATUSES.has(m.status) };
          }
          return null;
        },
        credits: ({ message: m }) => m.parts,
        costCents: ({ message: m }) => m.costCents,
      }, ctx);
      return res.data.message;
    },

    async findByCustomString(customString, opts = {}, ctx) {
      const since = opts.since ?? new Date(Date.now() - lookbackDays * 86_400_000);
      const res = await providerFetch(spec, {
        operation: "sms.history", path: "/sms/history",
        query: {
          q: `custom_string:${customString}`,
          date_from: Math.floor(since.getTime() / 1000),
          date_to: Math.ceil(Date.now() / 1000) + 60,
          limit: 100,
          page: 1,
        },
        schema: HistoryWire,
      }, ctx);
      // Match exactly ourselves: the query syntax is ClickSend's and may match loosely.
      const hit = res.data.data.data.find((m) => m.custom_string === customString && (!opts.to || m.to === opts.to));
      return hit ? toMessage(hit, hit._currency?.currency_name_short ?? null) : null;
    },
  };
}

/**
 * A client from CLICKSEND_USERNAME, CLICKSEND_API_KEY, CLICKSEND_BASE_URL (and CLICKSEND_RATE_LIMIT).
 * Against a local base URL (a sandbox) missing credentials default to "sandbox".
 */
export function clicksendFromEnv(overrides: Partial<ClickSendConfig> = {}): ClickSendClient {
  const baseUrl = overrides.baseUrl ?? readEnv("CLICKSEND_BASE_URL") ?? CLICKSEND_DEFAULT_BASE_URL;
  const local = isLocalUrl(baseUrl);
  return createClickSendClient({
    username: readEnv("CLICKSEND_USERNAME") || (local ? "sandbox" : undefined),
    apiKey: readEnv("CLICKSEND_API_KEY") || (local ? "sandbox" : undefined),
    ...overrides,
    baseUrl,
  });
}

// ---------------------------------------------------------------------------------------------
// Channel adapter
// ---------------------------------------------------------------------------------------------

/** A ClickSend status (send: SUCCESS; history: Sent, Delivered, …) → our SendStatus. */
export function clicksendSendStatus(status: string): SendStatus {
  const s = status.toLowerCase();
  if (s === "delivered") return "delivered";
  if (s === "success" || s === "queued" || s === "scheduled" || s === "waiting") return "queued";
  return "sent";
}

/** SMS through ClickSend; sender.address is the dedicated number or alphanumeric sender id. */
export function clicksendSmsAdapter(client: ClickSendClient): ChannelAdapter {
  const result = (m: ClickSendMessage): SendResult => ({
    provider: "clicksend", providerMessageId: m.messageId, status: clicksendSendStatus(m.status), costCents: m.costCents,
  });
  return {
    provider: "clicksend",
    channel: "sms",

    async send(req: SendRequest): Promise<SendResult> {
      const to = req.recipient.phoneE164?.trim();
      if (!to) throw new ProviderError({ provider: "clicksend", operation: "sms.send", code: "invalid_request", retryable: false, message: "recipient has no phone number" });
      const m = await client.sendSms(
        { to, body: req.body, from: req.sender.address || null, customString: req.sendId },
        { leadId: req.leadId, clientId: req.clientId, signal: req.signal },
      );
      return result(m);
    },

    async findByReference(sendId: string, req: SendRequest) {
      const m = await client.findByCustomString(sendId, { to: req.recipient.phoneE164 ?? null }, {
        leadId: req.leadId, clientId: req.clientId, signal: req.signal,
      });
      return m ? result(m) : null;
    },
  };
}
