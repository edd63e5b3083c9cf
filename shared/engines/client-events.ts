// Client events: what a client's own systems hear about their leads and meetings (lead.replied,
// meeting.booked, lead.won, …) through the outbound webhooks they register. emitClientEvent writes one
// webhook_deliveries row per matching active webhook and queues its delivery in the caller's
// transaction, so an event exists exactly when the change that caused it commits. The delivery flow
// then POSTs it signed per Standard Webhooks (standardwebhooks.com), retried through QStash, logged
// per attempt, replayable by hand.
import type { Tx } from "../db/client.ts";
import { readEnv } from "../config/env.ts";
import { enqueue } from "../flows/outbox.ts";
import { isLocalStack } from "../http/serve.ts";
import { signStandardWebhook } from "../webhooks/standard-webhooks.ts";

/** Every event a client can subscribe to. */
export const CLIENT_EVENT_TYPES = [
  "lead.replied",
  "lead.interested",
  "lead.unsubscribed",
  "meeting.booked",
  "meeting.rescheduled",
  "meeting.cancelled",
  "meeting.held",
  "meeting.no_show",
  "lead.won",
  "lead.lost",
] as const;
export type ClientEventType = (typeof CLIENT_EVENT_TYPES)[number];

export const WEBHOOK_DELIVERY_TOPIC = "flow.webhook-delivery";

/** The JSON body every delivery carries (the Standard Webhooks payload shape). */
export interface ClientEventPayload {
  type: ClientEventType;
  /** When the event happened, ISO 8601. */
  timestamp: string;
  data: Record<string, unknown>;
}

export interface EmitOptions {
  /**
   * Stable id of this event, sent as webhook-id (receivers deduplicate on it). Pass one derived from
   * what caused the event (e.g. `lead.replied:<reply id>`) so emitting twice for the same cause —
   * a redelivered webhook, a retried flow — delivers once. Default: a new random id.
   */
  eventId?: string;
  occurredAt?: Date;
}

export interface EmitResult {
  eventId: string;
  /** The delivery rows created now (empty when no webhook listens, or all already had this event). */
  deliveryIds: string[];
}

// ---------------------------------------------------------------------------------------------
// Privileges: users cannot write deliveries or the outbox
// ---------------------------------------------------------------------------------------------

/**
 * Runs fn with the function's own (service) privileges inside a transaction that asUser started.
 * The user's own changes were made under RLS before this; what fn writes here is what follows from
 * them (delivery rows, outbox messages, audit rows) — tables users have no write grant on, exactly as
 * the lifecycle triggers write the outbox as security definer. The request's JWT claims stay set, so
 * the audit still names the user. In a service transaction it just runs fn.
 */
export async function withServicePrivileges<T>(tx: Tx, fn: () => Promise<T>): Promise<T> {
  const [{ role }] = await tx`select current_user as role`;
  if (role !== "authenticated") return await fn();
  // RESET ROLE is a session-level SET: a rollback undoes it, a commit leaves the session default
  // (the login role), so a failure inside fn needs no cleanup here.
  await tx`reset role`;
  const out = await fn();
  await tx`set local role authenticated`;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Emitting
// ---------------------------------------------------------------------------------------------

export function isClientEventType(v: string): v is ClientEventType {
  return (CLIENT_EVENT_TYPES as readonly string[]).includes(v);
}

/**
 * Records `type` for every active webhook of `clientId` subscribed to it, and queues each delivery
 * (topic flow.webhook-delivery, {delivery_id}) in the same transaction. Callable from a service
 * transaction (asService) or a user's (asUser). Idempotent per (webhook, eventId).
 *
 * ```ts
 * await emitClientEvent(tx, clientId, "lead.replied", { lead, reply }, { eventId: `lead.replied:${reply.id}` });
 * ```
 */
export async function emitClientEvent(
  tx: Tx,
  clientId: string,
  type: ClientEventType,
  data: Record<string, unknown>,
  opts: EmitOptions = {},
): Promise<EmitResult> {
  if (!isClientEventType(type)) throw new Error(`unknown client event type ${String(type)}`);
  const eventId = opts.eventId ?? `evt_${crypto.randomUUID().replace(/-/g, "")}`;
  const payload: ClientEventPayload = { type, timestamp: (opts.occurredAt ?? new Date()).toISOString(), data };
  return await withServicePrivileges(tx, async () => {
    const rows = await tx`
      insert into public.webhook_deliveries (webhook_id, client_id, event_type, event_id, payload)
      select w.id, w.client_id, ${type}, ${eventId}, ${tx.json(payload as never)}
      from public.client_webhooks w
      where w.client_id = ${clientId} and w.active and ${type} = any (w.events)
      on conflict (webhook_id, event_id) do nothing
      returning id`;
    for (const r of rows) {
      await enqueue(tx, WEBHOOK_DELIVERY_TOPIC, { delivery_id: r.id }, { clientId });
    }
    return { eventId, deliveryIds: rows.map((r) => r.id as string) };
  });
}

/**
 * Sends a failed or delivered delivery again (by hand): back to pending and queued afresh, with a
 * full retry schedule. Returns false when it is pending already (its retries are still running).
 */
export async function queueDeliveryReplay(tx: Tx, deliveryId: string, clientId: string): Promise<boolean> {
  return await withServicePrivileges(tx, async () => {
    const rows = await tx`
      update public.webhook_deliveries set status = 'pending'
      where id = ${deliveryId} and client_id = ${clientId} and status <> 'pending'
      returning id`;
    if (rows.length === 0) return false;
    await enqueue(tx, WEBHOOK_DELIVERY_TOPIC, { delivery_id: deliveryId, replay: true }, { clientId });
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// Delivering
// ---------------------------------------------------------------------------------------------

export const DELIVERY_TIMEOUT_MS = 10_000;
/**
 * Retries after the first attempt. The outbox publisher publishes every message with retries: 5,
 * and QStash says which retry this is in Upstash-Retried; the attempt at 5 is the last one.
 */
export const DELIVERY_MAX_RETRIES = 5;
/** Wait before each retry (Standard Webhooks' suggested 5 s, 5 min, 30 min, 2 h, 5 h). */
export const DEFAULT_RETRY_SCHEDULE_SECONDS = [5, 300, 1800, 7200, 18000];

/** CLIENT_WEBHOOK_RETRY_SCHEDULE ("5,300,1800,…" seconds) overrides the default schedule. */
export function retrySchedule(): number[] {
  const raw = readEnv("CLIENT_WEBHOOK_RETRY_SCHEDULE")?.trim();
  if (!raw) return DEFAULT_RETRY_SCHEDULE_SECONDS;
  const parsed = raw.split(",").map((s) => Number(s.trim()));
  return parsed.length > 0 && parsed.every((n) => Number.isFinite(n) && n >= 0) ? parsed : DEFAULT_RETRY_SCHEDULE_SECONDS;
}

/** Seconds before the retry that follows attempt `retried` (0 = the first attempt failed). */
export function retryDelaySeconds(retried: number, schedule = retrySchedule()): number {
  return schedule[Math.min(Math.max(0, retried), schedule.length - 1)];
}

export interface DeliveryAttempt {
  ok: boolean;
  /** The receiver's HTTP status; null when it never answered. */
  status: number | null;
  error: string | null;
  durationMs: number;
}

/** One POST of a delivery, signed with the webhook's secret; never throws. */
export async function attemptDelivery(input: {
  url: string;
  secret: string;
  eventId: string;
  payload: ClientEventPayload;
  now?: Date;
  timeoutMs?: number;
  fetch?: typeof fetch;
}): Promise<DeliveryAttempt> {
  const body = JSON.stringify(input.payload);
  const headers = await signStandardWebhook(input.secret, input.eventId, input.now ?? new Date(), body);
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const res = await (input.fetch ?? fetch)(input.url, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json", "user-agent": "AgencyOS-Webhooks/1.0" },
      body,
      // a receiver's redirect could point anywhere, including inside our network: not followed
      redirect: "manual",
      signal: AbortSignal.timeout(input.timeoutMs ?? DELIVERY_TIMEOUT_MS),
    });
    // read (and bound) the answer so the connection is released; its content is not ours to keep
    const text = (await res.text().catch(() => "")).slice(0, 300);
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status, error: null, durationMs: elapsed() };
    return { ok: false, status: res.status, error: `HTTP ${res.status}${text ? `: ${text}` : ""}`, durationMs: elapsed() };
  } catch (err) {
    const e = err as { name?: string; message?: string };
    const timedOut = e?.name === "TimeoutError";
    return {
      ok: false, status: null, durationMs: elapsed(),
      error: timedOut ? `no answer within ${input.timeoutMs ?? DELIVERY_TIMEOUT_MS} ms` : `network error: ${e?.message ?? String(err)}`,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Which URLs a client may register
// ---------------------------------------------------------------------------------------------

/** Private, loopback, link-local and other non-public address literals (IPv4 and IPv6). */
function isPrivateHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost") || h.endsWith(".local") || h.endsWith(".internal")) return true;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 0 || a === 10 || a === 127 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || a >= 224;
  }
  if (h.includes(":")) {
    return h === "::" || h === "::1" || h.startsWith("fc") || h.startsWith("fd") || h.startsWith("fe80") || h.startsWith("::ffff:");
  }
  return false;
}

/** Private URLs are allowed in the local stack or with CLIENT_WEBHOOK_ALLOW_PRIVATE_URLS=true. */
export function privateWebhookUrlsAllowed(): boolean {
  return isLocalStack() || readEnv("CLIENT_WEBHOOK_ALLOW_PRIVATE_URLS") === "true";
}

/**
 * Why a client may not register this URL, or null when it may: https only, no credentials in it,
 * and never an address inside our own network (we POST to it from our servers).
 */
export function webhookUrlProblem(raw: string, allowPrivate = privateWebhookUrlsAllowed()): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "not a URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "must be an https URL";
  if (url.username || url.password) return "must not contain credentials; the signature authenticates us";
  if (allowPrivate) return null;
  if (url.protocol !== "https:") return "must be an https URL";
  if (isPrivateHost(url.hostname)) return "must be a public address";
  return null;
}
