// ClickSend REST v3 sandbox: POST /v3/sms/send and GET /v3/sms/history with Basic auth
// (username:API key), every answer in the {http_code, response_code, response_msg, data} envelope and
// a status per message. It keeps the messages it queued and, after answering, posts a delivery
// receipt (form-encoded, as ClickSend does by default) to the receipt URL: from the options, or set
// through POST /v3/automations/sms/receipts like the real receipt rules. ClickSend does not sign
// webhooks; the receipt URL carries a secret `token` query parameter instead (receiptToken).
// Mount at /sandbox/clicksend; CLICKSEND_BASE_URL=<that>/v3.
//
// Outcomes are seeded from recipient + body (mostly Delivered, some Undelivered). Magic recipients:
//   ClickSend's test numbers (+61411111111, +61422222222, +61433333333, +61444444444, +14055555555,
//     +14055555666, +447777777777) → SUCCESS at no charge, then a Delivered receipt
//   +61400000001 → Delivered          +61400000002 / +61400000003 → Undelivered
//   +15005550001 or a number that isn't E.164 → INVALID_RECIPIENT (HTTP 200, per-message status)
//   +61400000498 → THROTTLED every time (also: the same body to the same number within throttleMs)
//   +61400000429 → HTTP 429 on the first send of that recipient + body, then normal
//   +61400000499 → HTTP 429 every time
//   +61400000500 → HTTP 500 on the first send of that recipient + body, then normal
// The app carries `state`: messages(), webhooks(), settled(), reset().
import { Hono } from "hono";
import type { Context } from "hono";
import { OnceOnly, seeded } from "./seeded.ts";
import { deliverWebhook, Pending, segmentsOf, type SandboxWebhook } from "./twilio.ts";

export const CLICKSEND_SANDBOX_DEFAULTS = { username: "sandbox", apiKey: "sandbox" } as const;

export const CLICKSEND_TEST_NUMBERS = [
  "+61411111111", "+61422222222", "+61433333333", "+61444444444", "+14055555555", "+14055555666", "+447777777777",
] as const;

export const CLICKSEND_MAGIC = {
  delivered: "+61400000001",
  undelivered: "+61400000002",
  undeliveredToo: "+61400000003",
  invalidRecipient: "+15005550001",
  throttled: "+61400000498",
  rateLimitedOnce: "+61400000429",
  rateLimitedAlways: "+61400000499",
  serverErrorOnce: "+61400000500",
} as const;

export interface ClickSendSandboxOptions {
  username?: string;
  apiKey?: string;
  /** Where delivery receipts go (a receipt rule's action_address); none: no receipts until a rule is added. */
  receiptUrl?: string;
  /** Appended to the receipt URL as ?token=… (the shared secret the receiver checks). */
  receiptToken?: string;
  /** "form" (ClickSend's default) or "json". */
  receiptFormat?: "form" | "json";
  /** Between the API answer and the receipt (default 50 ms). */
  webhookDelayMs?: number;
  /** Tries per receipt before giving up (default 3). */
  webhookAttempts?: number;
  /** Same body to the same number within this window → THROTTLED (default 10 s). */
  throttleMs?: number;
  /** Price per message part in the account currency (default 0.0770 AUD). */
  pricePerPart?: number;
  currency?: "AUD" | "USD" | "GBP" | "NZD";
  retryAfterSeconds?: number;
  fetch?: typeof fetch;
}

export interface ClickSendSandboxMessage {
  messageId: string;
  to: string;
  from: string;
  body: string;
  customString: string;
  source: string | null;
  parts: number;
  price: number;
  /** unix seconds */
  date: number;
  /** Sent until the receipt, then Delivered or Undelivered. */
  status: "Sent" | "Delivered" | "Undelivered";
  outcome: "Delivered" | "Undelivered";
  testNumber: boolean;
}

export interface ClickSendSandboxState {
  messages(): ClickSendSandboxMessage[];
  message(messageId: string): ClickSendSandboxMessage | undefined;
  webhooks(): SandboxWebhook[];
  settled(): Promise<void>;
  reset(): void;
}

export type ClickSendSandbox = Hono & { state: ClickSendSandboxState };

const USER_ID = 123456;
const SUBACCOUNT_ID = 654321;
const SHARED_NUMBER = "+61481070001";
const CURRENCIES = {
  AUD: { currency_name_short: "AUD", currency_prefix_d: "$", currency_prefix_c: "c", currency_name_long: "Australian Dollars" },
  USD: { currency_name_short: "USD", currency_prefix_d: "$", currency_prefix_c: "c", currency_name_long: "US Dollars" },
  GBP: { currency_name_short: "GBP", currency_prefix_d: "£", currency_prefix_c: "p", currency_name_long: "British Pounds" },
  NZD: { currency_name_short: "NZD", currency_prefix_d: "$", currency_prefix_c: "c", currency_name_long: "New Zealand Dollars" },
};

function countryOf(to: string): string {
  if (to.startsWith("+61")) return "AU";
  if (to.startsWith("+64")) return "NZ";
  if (to.startsWith("+44")) return "GB";
  if (to.startsWith("+1")) return "US";
  return "XX";
}

export function createClickSendSandbox(opts: ClickSendSandboxOptions = {}): ClickSendSandbox {
  const username = opts.username ?? CLICKSEND_SANDBOX_DEFAULTS.username;
  const apiKey = opts.apiKey ?? CLICKSEND_SANDBOX_DEFAULTS.apiKey;
  const delayMs = Math.max(0, opts.webhookDelayMs ?? 50);
  const attempts = Math.max(1, opts.webhookAttempts ?? 3);
  const throttleMs = opts.throttleMs ?? 10_000;
  const pricePerPart = opts.pricePerPart ?? 0.077;
  const currency = CURRENCIES[opts.currency ?? "AUD"];
  const doFetch = opts.fetch ?? fetch;
  let receiptUrl = opts.receiptUrl ?? null;
  const once = new OnceOnly();
  const messages = new Map<string, ClickSendSandboxMessage>();
  const lastSent = new Map<string, number>();
  const webhooks: SandboxWebhook[] = [];
  const pending = new Pending();
  const app = new Hono();

  const envelope = (c: Context, status: 200 | 400 | 401 | 404 | 429 | 500, code: string, msg: string, data: unknown = null) =>
    c.json({ http_code: status, response_code: code, response_msg: msg, data }, status);

  app.use("/v3/*", async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    let ok = false;
    if (header.startsWith("Basic ")) {
      try {
        const decoded = new TextDecoder().decode(Uint8Array.from(atob(header.slice(6)), (ch) => ch.charCodeAt(0)));
        ok = decoded === `${username}:${apiKey}`;
      } catch {
        ok = false;
      }
    }
    if (!ok) return envelope(c, 401, "UNAUTHORIZED", "Unauthorized.");
    await next();
  });

  function wire(m: ClickSendSandboxMessage, status: string) {
    return {
      direction: "out",
      date: m.date,
      to: m.to,
      body: m.body,
      from: m.from,
      schedule: 0,
      message_id: m.messageId,
      message_parts: m.parts,
      message_price: m.price.toFixed(4),
      from_email: null,
      list_id: null,
      custom_string: m.customString,
      contact_id: null,
      user_id: USER_ID,
      subaccount_id: SUBACCOUNT_ID,
      country: countryOf(m.to),
      carrier: seeded(`clicksend:carrier:${m.to}`).pick(["Telstra", "Optus", "Vodafone"]),
      status,
    };
  }

  async function postReceipt(m: ClickSendSandboxMessage): Promise<void> {
    if (!receiptUrl) return;
    const url = new URL(receiptUrl);
    if (opts.receiptToken) url.searchParams.set("token", opts.receiptToken);
    const delivered = m.outcome === "Delivered";
    const fields: Record<string, string> = {
      timestamp_send: String(m.date),
      timestamp: String(Math.floor(Date.now() / 1000)),
      message_id: m.messageId,
      status: m.outcome,
      // ClickSend's numeric codes aren't in our reference; these are the sandbox's own.
      status_code: delivered ? "201" : "301",
      status_text: delivered ? "Delivered" : "Undelivered: handset unreachable",
      error_code: delivered ? "" : "301",
      error_text: delivered ? "" : "Undelivered",
      custom_string: m.customString,
      user_id: String(USER_ID),
      subaccount_id: String(SUBACCOUNT_ID),
      message_type: "sms",
    };
    const json = opts.receiptFormat === "json";
    const record: SandboxWebhook = {
      url: url.toString(),
      payload: fields,
      headers: { "content-type": json ? "application/json" : "application/x-www-form-urlencoded", "user-agent": "ClickSend" },
      status: null,
      attempts: 0,
      delivered: false,
    };
    webhooks.push(record);
    await deliverWebhook(record, json ? JSON.stringify(fields) : new URLSearchParams(fields).toString(), attempts, doFetch, "clicksend");
  }

  function outcomeFor(to: string, body: string): "Delivered" | "Undelivered" {
    if (to === CLICKSEND_MAGIC.delivered || (CLICKSEND_TEST_NUMBERS as readonly string[]).includes(to)) return "Delivered";
    if (to === CLICKSEND_MAGIC.undelivered || to === CLICKSEND_MAGIC.undeliveredToo) return "Undelivered";
    return seeded(`clicksend:outcome:${to}\n${body}`).next() < 0.88 ? "Delivered" : "Undelivered";
  }

  app.post("/v3/sms/send", async (c) => {
    let payload: { messages?: unknown };
    try {
      payload = await c.req.json();
    } catch {
      return envelope(c, 400, "BAD_REQUEST", "Invalid JSON.");
    }
    if (!Array.isArray(payload?.messages) || payload.messages.length === 0) return envelope(c, 400, "BAD_REQUEST", "messages is required.");
    if (payload.messages.length > 1000) return envelope(c, 400, "BAD_REQUEST", "Too many messages: at most 1000 per call.");
    const items = payload.messages as Array<Record<string, unknown>>;

    // Whole-request failures the first message's recipient asks for.
    const first = items[0];
    const key = `${String(first.to)}\n${String(first.body)}`;
    if (first.to === CLICKSEND_MAGIC.rateLimitedAlways || (first.to === CLICKSEND_MAGIC.rateLimitedOnce && once.first(`429:${key}`))) {
      if (opts.retryAfterSeconds !== undefined) c.header("retry-after", String(opts.retryAfterSeconds));
      return envelope(c, 429, "TOO_MANY_REQUESTS", "Too many requests.");
    }
    if (first.to === CLICKSEND_MAGIC.serverErrorOnce && once.first(`500:${key}`)) return envelope(c, 500, "INTERNAL_SERVER_ERROR", "Something went wrong.");

    const now = Date.now();
    const out: unknown[] = [];
    let total = 0;
    let queued = 0;
    for (const item of items) {
      const to = typeof item.to === "string" ? item.to.trim() : "";
      const body = typeof item.body === "string" ? item.body : "";
      const from = typeof item.from === "string" && item.from.trim() ? item.from.trim() : SHARED_NUMBER;
      const m: ClickSendSandboxMessage = {
        messageId: crypto.randomUUID().toUpperCase(),
        to,
        from,
        body,
        customString: typeof item.custom_string === "string" ? item.custom_string : "",
        source: typeof item.source === "string" ? item.source : null,
        parts: body ? segmentsOf(body) : 0,
        price: 0,
        date: Math.floor(now / 1000),
        status: "Sent",
        outcome: outcomeFor(to, body),
        testNumber: (CLICKSEND_TEST_NUMBERS as readonly string[]).includes(to),
      };
      const throttleKey = `${to}\n${body}`;
      const status = !to ? "MISSING_REQUIRED_FIELDS"
        : !body.trim() ? "EMPTY_MESSAGE"
        : !/^\+[1-9]\d{6,14}$/.test(to) || to === CLICKSEND_MAGIC.invalidRecipient ? "INVALID_RECIPIENT"
        : /^[A-Za-z]/.test(from) && !/^[A-Za-z0-9 ]{1,11}$/.test(from) ? "INVALID_SENDER_ID"
        : to === CLICKSEND_MAGIC.throttled || now - (lastSent.get(throttleKey) ?? -Infinity) < throttleMs ? "THROTTLED"
        : "SUCCESS";
      if (status === "SUCCESS") {
        m.price = m.testNumber ? 0 : Number((m.parts * pricePerPart).toFixed(4));
        lastSent.set(throttleKey, now);
        messages.set(m.messageId, m);
        total += m.price;
        queued++;
        pending.add((async () => {
          await new Promise((r) => setTimeout(r, delayMs));
          m.status = m.outcome;
          await postReceipt(m);
        })());
      }
      out.push(wire(m, status));
    }
    return envelope(c, 200, "SUCCESS", "Messages queued for delivery.", {
      total_price: Number(total.toFixed(4)),
      total_count: items.length,
      queued_count: queued,
      messages: out,
      _currency: currency,
      blocked_count: 0,
    });
  });

  // q is ClickSend's "field:value,field:value" filter.
  app.get("/v3/sms/history", (c) => {
    const q = new URL(c.req.url).searchParams;
    const filters = (q.get("q") ?? "").split(",").map((p) => p.split(":")).filter((p) => p.length >= 2)
      .map(([k, ...v]) => [k.trim(), v.join(":").trim()] as const);
    const from = Number(q.get("date_from") ?? 0) || 0;
    const to = Number(q.get("date_to") ?? Number.MAX_SAFE_INTEGER) || Number.MAX_SAFE_INTEGER;
    const limit = Math.min(100, Math.max(1, Number(q.get("limit") ?? 15) || 15));
    const page = Math.max(1, Number(q.get("page") ?? 1) || 1);
    const rows = [...messages.values()]
      .filter((m) => m.date >= from && m.date <= to)
      .map((m) => ({ ...wire(m, m.status), status_code: m.status === "Delivered" ? "201" : m.status === "Undelivered" ? "301" : null, status_text: m.status, _currency: currency }))
      .filter((row) => filters.every(([k, v]) => String((row as Record<string, unknown>)[k] ?? "") === v))
      .sort((a, b) => b.date - a.date);
    const lastPage = Math.max(1, Math.ceil(rows.length / limit));
    return envelope(c, 200, "SUCCESS", "Here is your history.", {
      total: rows.length,
      per_page: limit,
      current_page: page,
      last_page: lastPage,
      next_page_url: page < lastPage ? `/?page=${page + 1}` : null,
      prev_page_url: page > 1 ? `/?page=${page - 1}` : null,
      from: rows.length ? (page - 1) * limit + 1 : null,
      to: rows.length ? Math.min(rows.length, page * limit) : null,
      data: rows.slice((page - 1) * limit, page * limit),
    });
  });

  // Receipt rules: the one with action URL decides where receipts go.
  app.post("/v3/automations/sms/receipts", async (c) => {
    const body = await c.req.json().catch(() => null) as Record<string, unknown> | null;
    if (!body || body.action !== "URL" || typeof body.action_address !== "string") {
      return envelope(c, 400, "BAD_REQUEST", "action URL and action_address are required.");
    }
    try {
      new URL(body.action_address);
    } catch {
      return envelope(c, 400, "BAD_REQUEST", "action_address is not a URL.");
    }
    receiptUrl = body.enabled === 0 ? null : body.action_address;
    return envelope(c, 200, "SUCCESS", "New rule has been created.", {
      receipt_rule_id: 1, rule_name: body.rule_name ?? "", match_type: body.match_type ?? 0, action: "URL",
      action_address: body.action_address, enabled: body.enabled ?? 1,
    });
  });

  const state: ClickSendSandboxState = {
    messages: () => [...messages.values()],
    message: (id) => messages.get(id),
    webhooks: () => [...webhooks],
    settled: () => pending.settled(),
    reset: () => {
      messages.clear();
      lastSent.clear();
      webhooks.length = 0;
    },
  };
  return Object.assign(app, { state });
}
