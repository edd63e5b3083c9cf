// Twilio Programmable Messaging sandbox: the REST API's wire format (form-encoded
// POST /2010-04-01/Accounts/{Sid}/Messages.json with Basic auth, the JSON Message resource, Twilio's
// error body {code, message, more_info, status}), so the official SDK runs against it unchanged.
// It keeps the messages it accepted and, after answering, walks each one to its outcome and posts
// Twilio's StatusCallback (form-encoded, signed with X-Twilio-Signature using the auth token).
// Mount at /sandbox/twilio; TWILIO_BASE_URL=<that> (the SDK adds /2010-04-01).
//
// Outcomes are seeded from recipient + body (mostly delivered, some undelivered or failed), so a
// run repeats. Magic recipients force them:
//   +15005550001  → 400, 21211 invalid 'To' number (Twilio's own test number)
//   +15005550002  → 400, 21612 cannot route to this number
//   +15005550003  → 400, 21408 region not enabled
//   +15005550004  → 400, 21610 unsubscribed recipient (also any number passed to state.optOut)
//   +15005550009  → 400, 21614 not a mobile number
//   +61400000001  → delivered           +61400000002 → undelivered (30003)
//   +61400000003  → failed (30008)
//   +61400000429  → 429 / 20429 on the first send of that recipient + body, accepted on a retry
//   +61400000499  → 429 / 20429 every time
//   +61400000500  → 500 on the first send of that recipient + body, accepted on a retry
// Any other E.164 number is accepted; anything else is 21211.
// The app carries `state`: messages(), webhooks(), optOut(number), settled(), reset().
// deliverWebhook and Pending below are shared with the ClickSend and Vapi sandboxes.
import { Hono } from "hono";
import type { Context } from "hono";
import { log } from "../../shared/observability/log.ts";
import { OnceOnly, seeded } from "./seeded.ts";

export const TWILIO_SANDBOX_DEFAULTS = {
  accountSid: "AC00000000000000000000000000000000",
  authToken: "sandbox",
} as const;

export const TWILIO_MAGIC = {
  invalidTo: "+15005550001",
  cannotRoute: "+15005550002",
  regionNotEnabled: "+15005550003",
  unsubscribed: "+15005550004",
  notMobile: "+15005550009",
  delivered: "+61400000001",
  undelivered: "+61400000002",
  failed: "+61400000003",
  rateLimitedOnce: "+61400000429",
  rateLimitedAlways: "+61400000499",
  serverErrorOnce: "+61400000500",
} as const;

export interface TwilioSandboxOptions {
  /** Only this account (default: any AC… sid with the auth token). */
  accountSid?: string;
  /** Checked on every request and used to sign status callbacks (default "sandbox"). */
  authToken?: string;
  /** Between the API answer and the first status callback, and between callbacks (default 50 ms). */
  webhookDelayMs?: number;
  /** Tries per status callback before giving up (default 3). */
  webhookAttempts?: number;
  /** Retry-After (seconds) on a simulated 429; Twilio usually sends none (default none). */
  retryAfterSeconds?: number;
  /** Price per segment in USD once sent, as Twilio writes it (default "-0.05150"). */
  pricePerSegment?: string;
  /** For delivering webhooks (tests). */
  fetch?: typeof fetch;
}

export type TwilioFinalStatus = "delivered" | "undelivered" | "failed";

export interface TwilioSandboxMessage {
  sid: string;
  accountSid: string;
  to: string;
  from: string | null;
  messagingServiceSid: string | null;
  body: string;
  status: string;
  /** Where this message ends up. */
  outcome: TwilioFinalStatus;
  errorCode: number | null;
  numSegments: number;
  price: string | null;
  statusCallback: string | null;
  dateCreated: number;
  dateUpdated: number;
  dateSent: number | null;
}

export interface SandboxWebhook {
  url: string;
  /** The form or JSON fields posted. */
  payload: Record<string, unknown>;
  headers: Record<string, string>;
  /** HTTP status of the last try, null when it never answered. */
  status: number | null;
  attempts: number;
  delivered: boolean;
}

export interface TwilioSandboxState {
  messages(): TwilioSandboxMessage[];
  message(sid: string): TwilioSandboxMessage | undefined;
  webhooks(): SandboxWebhook[];
  /** Sends to this number now fail with 21610, as after the recipient texted STOP. */
  optOut(number: string): void;
  /** Resolves once every scheduled status callback was delivered or given up. */
  settled(): Promise<void>;
  reset(): void;
}

export type TwilioSandbox = Hono & { state: TwilioSandboxState };

const E164 = /^\+[1-9]\d{6,14}$/;
const API_VERSION = "2010-04-01";

/** Twilio's date format (RFC 2822 with +0000). */
function rfc2822(ms: number): string {
  return new Date(ms).toUTCString().replace("GMT", "+0000");
}

function newSid(prefix: string): string {
  return prefix + crypto.randomUUID().replace(/-/g, "");
}

/** GSM-7 messages fit 160 chars (153 per part when split); anything else is UCS-2 at 70 (67). */
export function segmentsOf(body: string): number {
  const gsm = /^[A-Za-z0-9 \r\n@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!"#¤%&'()*+,\-./:;<=>?¡ÄÖÑÜ§¿äöñüà^{}\\[~\]|€]*$/.test(body);
  const [single, part] = gsm ? [160, 153] : [70, 67];
  return body.length <= single ? 1 : Math.ceil(body.length / part);
}

function base64(bytes: ArrayBuffer): string {
  let bin = "";
  for (const b of new Uint8Array(bytes)) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** X-Twilio-Signature: base64 HMAC-SHA1 over the URL followed by every sorted param name+value. */
export async function twilioSignature(authToken: string, url: string, params: Record<string, string>): Promise<string> {
  const data = url + Object.keys(params).sort().map((k) => k + params[k]).join("");
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(authToken), { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  return base64(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(data)));
}

/** Posts one webhook, retrying a few times; never throws (a dead receiver must not hurt the sandbox). */
export async function deliverWebhook(
  record: SandboxWebhook,
  body: string,
  attempts: number,
  doFetch: typeof fetch,
  provider: string,
): Promise<void> {
  for (let i = 1; i <= attempts; i++) {
    record.attempts = i;
    try {
      const res = await doFetch(record.url, { method: "POST", headers: record.headers, body, signal: AbortSignal.timeout(5_000) });
      await res.body?.cancel().catch(() => {});
      record.status = res.status;
      if (res.ok) {
        record.delivered = true;
        return;
      }
    } catch (err) {
      record.status = null;
      if (i === attempts) log("warn", `${provider} sandbox: webhook not delivered`, { url: record.url, error: err instanceof Error ? err.message : String(err) });
    }
    if (i < attempts) await new Promise((r) => setTimeout(r, 100 * 2 ** (i - 1)));
  }
  log("warn", `${provider} sandbox: webhook gave up`, { url: record.url, status: record.status, attempts });
}

/** Keeps the promises of scheduled work so tests can wait for all webhooks. */
export class Pending {
  private readonly items = new Set<Promise<void>>();
  add(p: Promise<void>): void {
    const tracked = p.catch((err) => log("warn", "sandbox: scheduled work failed", { error: err instanceof Error ? err.message : String(err) }))
      .finally(() => this.items.delete(tracked));
    this.items.add(tracked);
  }
  async settled(): Promise<void> {
    while (this.items.size) await Promise.all([...this.items]);
  }
}

export function createTwilioSandbox(opts: TwilioSandboxOptions = {}): TwilioSandbox {
  const authToken = opts.authToken ?? TWILIO_SANDBOX_DEFAULTS.authToken;
  const delayMs = Math.max(0, opts.webhookDelayMs ?? 50);
  const attempts = Math.max(1, opts.webhookAttempts ?? 3);
  const pricePerSegment = opts.pricePerSegment ?? "-0.05150";
  const doFetch = opts.fetch ?? fetch;
  const once = new OnceOnly();
  const messages = new Map<string, TwilioSandboxMessage>();
  const webhooks: SandboxWebhook[] = [];
  const optedOut = new Set<string>();
  const pending = new Pending();
  const app = new Hono();

  const twilioError = (c: Context, status: 400 | 401 | 404 | 429 | 500, code: number, message: string) =>
    c.json({ code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }, status);

  // Basic auth: the account sid in the path and the auth token.
  app.use("/2010-04-01/Accounts/:sid/*", async (c, next) => {
    const sid = c.req.param("sid");
    const header = c.req.header("authorization") ?? "";
    let user = "";
    let pass = "";
    if (header.startsWith("Basic ")) {
      try {
        const decoded = new TextDecoder().decode(Uint8Array.from(atob(header.slice(6)), (ch) => ch.charCodeAt(0)));
        const i = decoded.indexOf(":");
        [user, pass] = i < 0 ? [decoded, ""] : [decoded.slice(0, i), decoded.slice(i + 1)];
      } catch {
        // falls through to 401
      }
    }
    const accountOk = opts.accountSid ? sid === opts.accountSid : /^AC[0-9a-fA-F]{32}$/.test(sid);
    if (!accountOk || user !== sid || pass !== authToken) return twilioError(c, 401, 20003, "Authenticate");
    await next();
  });

  function resource(m: TwilioSandboxMessage) {
    const uri = `/${API_VERSION}/Accounts/${m.accountSid}/Messages/${m.sid}.json`;
    return {
      sid: m.sid,
      account_sid: m.accountSid,
      messaging_service_sid: m.messagingServiceSid,
      from: m.from,
      to: m.to,
      body: m.body,
      status: m.status,
      direction: "outbound-api",
      num_segments: String(m.numSegments),
      num_media: "0",
      price: m.price,
      price_unit: "USD",
      error_code: m.errorCode,
      error_message: null,
      date_created: rfc2822(m.dateCreated),
      date_updated: rfc2822(m.dateUpdated),
      date_sent: m.dateSent === null ? null : rfc2822(m.dateSent),
      api_version: API_VERSION,
      uri,
      subresource_uris: { media: uri.replace(/\.json$/, "/Media.json"), feedback: uri.replace(/\.json$/, "/Feedback.json") },
    };
  }

  function outcomeFor(to: string, body: string): { outcome: TwilioFinalStatus; errorCode: number | null } {
    if (to === TWILIO_MAGIC.delivered) return { outcome: "delivered", errorCode: null };
    if (to === TWILIO_MAGIC.undelivered) return { outcome: "undelivered", errorCode: 30003 };
    if (to === TWILIO_MAGIC.failed) return { outcome: "failed", errorCode: 30008 };
    const x = seeded(`twilio:outcome:${to}\n${body}`).next();
    if (x < 0.85) return { outcome: "delivered", errorCode: null };
    if (x < 0.95) return { outcome: "undelivered", errorCode: seeded(`twilio:err:${to}`).pick([30003, 30005, 30006]) };
    return { outcome: "failed", errorCode: 30008 };
  }

  async function postStatus(m: TwilioSandboxMessage): Promise<void> {
    if (!m.statusCallback) return;
    const params: Record<string, string> = {
      AccountSid: m.accountSid,
      ApiVersion: API_VERSION,
      From: m.from ?? "",
      MessageSid: m.sid,
      MessageStatus: m.status,
      SmsSid: m.sid,
      SmsStatus: m.status,
      To: m.to,
    };
    if (m.messagingServiceSid) params.MessagingServiceSid = m.messagingServiceSid;
    if (m.status === "failed" || m.status === "undelivered") params.ErrorCode = String(m.errorCode ?? 30008);
    if (m.status === "delivered" || m.status === "undelivered") {
      // YYMMDDhhmm, one of the params Twilio adds without notice: receivers must sign over all params.
      params.RawDlrDoneDate = new Date().toISOString().replace(/[-T:]/g, "").slice(2, 12);
    }
    const record: SandboxWebhook = {
      url: m.statusCallback,
      payload: params,
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "user-agent": "TwilioProxy/1.1",
        "x-twilio-signature": await twilioSignature(authToken, m.statusCallback, params),
        "i-twilio-idempotency-token": crypto.randomUUID(),
      },
      status: null,
      attempts: 0,
      delivered: false,
    };
    webhooks.push(record);
    await deliverWebhook(record, new URLSearchParams(params).toString(), attempts, doFetch, "twilio");
  }

  /** queued → sent → delivered/undelivered, or queued → failed, a status callback at each step. */
  function walk(m: TwilioSandboxMessage) {
    const step = (status: string) => {
      const now = Date.now();
      m.status = status;
      m.dateUpdated = now;
      if (status === "sent") {
        m.dateSent = now;
        m.price = (Number(pricePerSegment) * m.numSegments).toFixed(5);
      }
    };
    pending.add((async () => {
      await new Promise((r) => setTimeout(r, delayMs));
      if (m.outcome === "failed") {
        step("failed");
        await postStatus(m);
        return;
      }
      step("sent");
      await postStatus(m);
      await new Promise((r) => setTimeout(r, delayMs));
      step(m.outcome);
      await postStatus(m);
    })());
  }

  app.post("/2010-04-01/Accounts/:sid/Messages.json", async (c) => {
    const accountSid = c.req.param("sid");
    const form = new URLSearchParams(await c.req.text());
    const to = form.get("To")?.trim() ?? "";
    const from = form.get("From")?.trim() || null;
    const service = form.get("MessagingServiceSid")?.trim() || null;
    const body = form.get("Body") ?? "";
    const callback = form.get("StatusCallback")?.trim() || null;

    if (!to) return twilioError(c, 400, 21604, "A 'To' phone number is required.");
    if (!from && !service) return twilioError(c, 400, 21603, "A 'From' phone number is required.");
    if (!body.trim() && !form.get("MediaUrl")) return twilioError(c, 400, 21602, "Message body is required.");
    if (body.length > 1600) return twilioError(c, 400, 21617, "The concatenated message body exceeds the 1600 character limit.");
    if (callback) {
      try {
        new URL(callback);
      } catch {
        return twilioError(c, 400, 21609, `The StatusCallback URL ${callback} is not a valid URL.`);
      }
    }
    if (!E164.test(to) || to === TWILIO_MAGIC.invalidTo) return twilioError(c, 400, 21211, `The 'To' number ${to} is not a valid phone number.`);
    if (to === TWILIO_MAGIC.cannotRoute) return twilioError(c, 400, 21612, `The 'To' phone number: ${to}, is not currently reachable using the 'From' phone number: ${from ?? service} via SMS.`);
    if (to === TWILIO_MAGIC.regionNotEnabled) return twilioError(c, 400, 21408, `Permission to send an SMS has not been enabled for the region indicated by the 'To' number: ${to}.`);
    if (to === TWILIO_MAGIC.unsubscribed || optedOut.has(to)) return twilioError(c, 400, 21610, "Attempt to send to unsubscribed recipient");
    if (to === TWILIO_MAGIC.notMobile) return twilioError(c, 400, 21614, `'To' number ${to} is not a valid mobile number`);
    const key = `${to}\n${body}`;
    if (to === TWILIO_MAGIC.rateLimitedAlways || (to === TWILIO_MAGIC.rateLimitedOnce && once.first(`429:${key}`))) {
      if (opts.retryAfterSeconds !== undefined) c.header("retry-after", String(opts.retryAfterSeconds));
      return twilioError(c, 429, 20429, "Too Many Requests");
    }
    if (to === TWILIO_MAGIC.serverErrorOnce && once.first(`500:${key}`)) return twilioError(c, 500, 20500, "An internal server error has occurred");

    const now = Date.now();
    const m: TwilioSandboxMessage = {
      sid: newSid("SM"),
      accountSid,
      to,
      from: from ?? null,
      messagingServiceSid: service,
      body,
      // A Messaging Service accepts first and picks the sender later.
      status: service ? "accepted" : "queued",
      ...outcomeFor(to, body),
      numSegments: segmentsOf(body),
      price: null,
      statusCallback: callback,
      dateCreated: now,
      dateUpdated: now,
      dateSent: null,
    };
    messages.set(m.sid, m);
    const answer = resource(m);
    walk(m); // after a delay: the callbacks always follow this answer
    return c.json(answer, 201);
  });

  app.get("/2010-04-01/Accounts/:sid/Messages.json", (c) => {
    const accountSid = c.req.param("sid");
    const q = new URL(c.req.url).searchParams;
    const to = q.get("To");
    const from = q.get("From");
    const after = q.get("DateSent>") ? Date.parse(q.get("DateSent>")!) : null;
    const before = q.get("DateSent<") ? Date.parse(q.get("DateSent<")!) : null;
    const pageSize = Math.min(1000, Math.max(1, Number(q.get("PageSize") ?? 50) || 50));
    const page = Math.max(0, Number(q.get("Page") ?? 0) || 0);
    const all = [...messages.values()]
      .filter((m) => m.accountSid === accountSid && (!to || m.to === to) && (!from || m.from === from))
      .filter((m) => {
        const at = m.dateSent ?? m.dateCreated;
        return (after === null || at >= after) && (before === null || at < before);
      })
      .sort((a, b) => b.dateCreated - a.dateCreated);
    const slice = all.slice(page * pageSize, (page + 1) * pageSize);
    const uri = `/${API_VERSION}/Accounts/${accountSid}/Messages.json?PageSize=${pageSize}&Page=${page}`;
    const more = (page + 1) * pageSize < all.length;
    return c.json({
      messages: slice.map(resource),
      end: page * pageSize + Math.max(0, slice.length - 1),
      first_page_uri: uri.replace(/Page=\d+$/, "Page=0"),
      next_page_uri: more ? uri.replace(/Page=\d+$/, `Page=${page + 1}`) : null,
      page,
      page_size: pageSize,
      previous_page_uri: page > 0 ? uri.replace(/Page=\d+$/, `Page=${page - 1}`) : null,
      start: page * pageSize,
      uri,
    });
  });

  app.get("/2010-04-01/Accounts/:sid/Messages/:file", (c) => {
    const sid = c.req.param("file").replace(/\.json$/, "");
    const m = messages.get(sid);
    if (!m || m.accountSid !== c.req.param("sid")) {
      return twilioError(c, 404, 20404, `The requested resource /${API_VERSION}/Accounts/${c.req.param("sid")}/Messages/${sid}.json was not found`);
    }
    return c.json(resource(m));
  });

  const state: TwilioSandboxState = {
    messages: () => [...messages.values()],
    message: (sid) => messages.get(sid),
    webhooks: () => [...webhooks],
    optOut: (number) => void optedOut.add(number),
    settled: () => pending.settled(),
    reset: () => {
      messages.clear();
      webhooks.length = 0;
      optedOut.clear();
    },
  };
  return Object.assign(app, { state });
}
