// Local QStash v2 emulator: a Hono app speaking the QStash REST wire format (publish, enqueue,
// batch, messages, DLQ, schedules, queues, events) plus a delivery loop that signs and POSTs.
import { Hono } from "hono";
import type { Context } from "hono";
import { parseCron, type ParsedCron } from "./cron.ts";
import { compileRetryDelay, parseDurationMs, retryHintMs } from "./parse.ts";
import { base64ToBytes, bytesToBase64, randomId, sha256Base64Url, signQStashJwt } from "./sign.ts";
import { JsonFileStore } from "./store.ts";

export interface QStashEmulatorOptions {
  token: string; // bearer token clients must present (also accept ?qstash_token=)
  currentSigningKey: string;
  nextSigningKey: string;
  storePath?: string; // JSON file for pending messages, schedules, DLQ, dedup ids; none = memory only
  backoffScale?: number; // multiplies the default retry backoff min(86400, e^(2.5 n)) seconds
  defaultRetries?: number; // default 3
  tickMs?: number; // how often the delivery loop looks for due messages (default 250)
  fetch?: typeof fetch; // for delivery; default globalThis.fetch
  now?: () => number; // ms clock, default Date.now
  log?: (entry: Record<string, unknown>) => void;
  /** Max deliveries in flight at once (default 10). */
  maxConcurrency?: number;
  /** Per-attempt HTTP timeout when the message has no `Upstash-Timeout` (default 15 min, the Free plan max). */
  attemptTimeoutMs?: number;
  /** How long stop() waits for in-flight deliveries before aborting them (default 5 s); aborted ones stay pending. */
  stopGraceMs?: number;
}

export interface QStashEmulator {
  app: Hono;
  start(): void;
  stop(): Promise<void>;
  stats(): { pending: number; delivered: number; dlq: number; schedules: number };
  /** Pending messages whose destination URL contains `urlPart` (a test waits for its own work only). */
  pendingTo(urlPart: string): number;
}

type HeaderMap = Record<string, string[]>;

interface CallbackSpec {
  url: string;
  method: string;
  retries?: number;
  retryDelay?: string;
  delayMs?: number;
  timeoutMs?: number;
  header: HeaderMap;
}

interface Msg {
  messageId: string;
  url: string;
  method: string;
  /** Exactly what is delivered besides QStash's own headers: Content-Type + stripped Upstash-Forward-*. */
  header: HeaderMap;
  body: Uint8Array<ArrayBuffer>;
  maxRetries: number;
  retried: number;
  retryDelayExpression?: string;
  timeoutMs?: number;
  notBefore: number;
  nextAttemptAt: number;
  createdAt: number;
  seq: number;
  callback?: CallbackSpec;
  failureCallback?: CallbackSpec;
  queueName?: string;
  scheduleId?: string;
  callerIp?: string;
  labels?: string[];
  flowControlKey?: string;
  parallelism?: number;
  rate?: number;
  period?: number;
  /** Set on callback / failure-callback messages: they never trigger callbacks themselves. */
  callbackFor?: string;
}

interface DlqEntry {
  dlqId: string;
  msg: Msg;
  failedAt: number;
  responseStatus?: number;
  responseHeader?: HeaderMap;
  responseBody?: Uint8Array<ArrayBuffer>;
}

interface Schedule {
  scheduleId: string;
  cron: string;
  createdAt: number;
  destination: string;
  /** Upstash-* and Content-Type headers of the create request; replayed on every firing. */
  headers: [string, string][];
  body: Uint8Array<ArrayBuffer>;
  isPaused: boolean;
  callerIp?: string;
  queueName?: string;
  lastScheduleTime?: number;
  nextScheduleTime?: number;
  lastScheduleStates: Record<string, "IN_PROGRESS" | "SUCCESS" | "FAIL">;
}

interface QueueConfig {
  name: string;
  parallelism: number;
  paused: boolean;
  createdAt: number;
  updatedAt: number;
}

interface EventEntry {
  time: number;
  messageId: string;
  state: string;
  url: string;
  queueName?: string;
  scheduleId?: string;
  responseStatus?: number;
  error?: string;
  nextDeliveryTime?: number;
}

// On-disk shape: bodies as base64 so the file stays plain JSON.
type Persisted<T> = Omit<T, "body" | "responseBody"> & { body?: string; responseBody?: string };
interface Snapshot {
  version: 1;
  seq: number;
  delivered: number;
  messages: Persisted<Msg>[];
  dlq: (Omit<DlqEntry, "msg" | "responseBody"> & { msg: Persisted<Msg>; responseBody?: string })[];
  schedules: Persisted<Schedule>[];
  queues: QueueConfig[];
  dedup: [string, { messageId: string; expiresAt: number }][];
}

class BadRequest extends Error {}

const DEDUP_WINDOW_MS = 10 * 60 * 1000;
const MAX_EVENTS = 1000;
const EMPTY = new Uint8Array(0);
const METHODS = new Set(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]);

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}
const err = (status: number, message: string) => json({ error: message }, status);

/** `my-header` → `My-Header`, the way QStash shows header names. */
function canonical(name: string): string {
  return name.split("-").map((p) => (p ? p[0].toUpperCase() + p.slice(1).toLowerCase() : p)).join("-");
}

/** Repairs `http:/host` (a proxy collapsed `//`) and checks it is an absolute http(s) URL. */
function normalizeDestination(raw: string): string | null {
  const fixed = raw.replace(/^(https?):\/(?!\/)/i, "$1://");
  try {
    const u = new URL(fixed);
    return (u.protocol === "http:" || u.protocol === "https:") && u.hostname ? fixed : null;
  } catch {
    return null;
  }
}

/**
 * The destination is appended RAW after e.g. `/v2/publish/`, so take it from the request URL
 * string (a route param could have `//` collapsed or the query dropped). Works under a mount.
 */
function rawTail(reqUrl: string, marker: string): string | null {
  const pathStart = reqUrl.indexOf("/", reqUrl.indexOf("://") + 3);
  if (pathStart < 0) return null;
  const rest = reqUrl.slice(pathStart);
  const i = rest.indexOf(marker);
  if (i < 0) return null;
  let tail = rest.slice(i + marker.length);
  const q = tail.indexOf("?");
  if (q >= 0) {
    // The auth token may ride in the query; it must not leak into the destination URL.
    const params = new URLSearchParams(tail.slice(q + 1));
    if (params.has("qstash_token")) {
      params.delete("qstash_token");
      const qs = params.toString();
      tail = tail.slice(0, q) + (qs ? `?${qs}` : "");
    }
  }
  const hash = tail.indexOf("#");
  return hash >= 0 ? tail.slice(0, hash) : tail;
}

function headersToMap(h: Headers): HeaderMap {
  const out: HeaderMap = {};
  h.forEach((v, k) => {
    (out[canonical(k)] ??= []).push(v);
  });
  return out;
}

function bodyView(body: Uint8Array, key: "body" | "responseBody"): Record<string, string> {
  if (body.length === 0) return {};
  try {
    return { [key]: new TextDecoder("utf-8", { fatal: true }).decode(body) };
  } catch {
    return { [`${key}Base64`]: bytesToBase64(body) };
  }
}

function parseIntHeader(v: string | null, name: string): number | undefined {
  if (v == null || v.trim() === "") return undefined;
  if (!/^\d+$/.test(v.trim())) throw new BadRequest(`invalid ${name}: ${v}`);
  return Number(v.trim());
}

function parseCallback(h: Headers, prefix: "upstash-callback" | "upstash-failure-callback"): CallbackSpec | undefined {
  const url = h.get(prefix);
  if (!url) return undefined;
  const dest = normalizeDestination(url);
  if (!dest) throw new BadRequest(`invalid ${canonical(prefix)} url: ${url}`);
  const header: HeaderMap = {};
  const fwd = `${prefix}-forward-`;
  h.forEach((v, k) => {
    if (k.startsWith(fwd) && k.length > fwd.length) (header[canonical(k.slice(fwd.length))] ??= []).push(v);
  });
  const retryDelay = h.get(`${prefix}-retry-delay`) ?? undefined;
  if (retryDelay !== undefined) {
    try {
      compileRetryDelay(retryDelay);
    } catch (e) {
      throw new BadRequest(`invalid ${canonical(prefix)}-Retry-Delay: ${(e as Error).message}`);
    }
  }
  const method = (h.get(`${prefix}-method`) ?? "POST").toUpperCase();
  if (!METHODS.has(method)) throw new BadRequest(`invalid ${canonical(prefix)}-Method: ${method}`);
  const delay = h.get(`${prefix}-delay`);
  const timeout = h.get(`${prefix}-timeout`);
  const delayMs = delay ? parseDurationMs(delay) : undefined;
  const timeoutMs = timeout ? parseDurationMs(timeout) : undefined;
  if (delayMs === null || timeoutMs === null) throw new BadRequest(`invalid ${canonical(prefix)} delay/timeout`);
  return {
    url: dest,
    method,
    retries: parseIntHeader(h.get(`${prefix}-retries`), `${canonical(prefix)}-Retries`),
    retryDelay,
    delayMs,
    timeoutMs,
    header,
  };
}

function defaultBackoffMs(n: number, scale: number): number {
  return Math.min(86400, Math.exp(2.5 * n)) * 1000 * scale;
}

function toPersisted(m: Msg): Persisted<Msg> {
  return { ...m, body: bytesToBase64(m.body) };
}
function fromPersisted(p: Persisted<Msg>): Msg {
  return { ...p, body: base64ToBytes(p.body ?? "") } as Msg;
}

/** Query filter shared by DLQ list/delete/retry and bulk cancel: OR within a key, AND across. */
function matches(params: URLSearchParams, r: Msg & { dlqId?: string; responseStatus?: number }): boolean {
  const fields: [string, unknown][] = [
    ["messageId", r.messageId], ["messageIds", r.messageId], ["dlqIds", r.dlqId], ["url", r.url],
    ["scheduleId", r.scheduleId], ["queueName", r.queueName], ["flowControlKey", r.flowControlKey],
    ["callerIp", r.callerIp], ["responseStatus", r.responseStatus],
    // URL groups are not emulated, so a topicName filter matches nothing.
    ["topicName", undefined],
  ];
  for (const [key, value] of fields) {
    const want = params.getAll(key);
    if (want.length && !want.includes(String(value))) return false;
  }
  const labels = params.getAll("label");
  if (labels.length && !(r.labels ?? []).some((l) => labels.includes(l))) return false;
  const host = params.getAll("host");
  const path = params.getAll("path");
  if (host.length || path.length) {
    const u = new URL(r.url);
    if (host.length && !host.includes(u.host) && !host.includes(u.hostname)) return false;
    if (path.length && !path.includes(u.pathname)) return false;
  }
  const from = params.get("fromDate");
  const to = params.get("toDate");
  if (from && r.createdAt < Number(from)) return false;
  if (to && r.createdAt > Number(to)) return false;
  return true;
}

export function createQStashEmulator(opts: QStashEmulatorOptions): QStashEmulator {
  const clock = opts.now ?? (() => Date.now());
  const doFetch = opts.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init));
  const log = opts.log ?? (() => {});
  const backoffScale = opts.backoffScale ?? 1;
  const defaultRetries = opts.defaultRetries ?? 3;
  const tickMs = opts.tickMs ?? 250;
  const maxConcurrency = Math.max(1, opts.maxConcurrency ?? 10);
  const attemptTimeoutMs = opts.attemptTimeoutMs ?? 15 * 60 * 1000;
  const stopGraceMs = opts.stopGraceMs ?? 5000;

  // ---- state ------------------------------------------------------------------------------
  const messages = new Map<string, Msg>();
  const dlq = new Map<string, DlqEntry>();
  const schedules = new Map<string, Schedule>();
  const crons = new Map<string, ParsedCron>();
  const queues = new Map<string, QueueConfig>();
  const dedup = new Map<string, { messageId: string; expiresAt: number }>();
  const events: EventEntry[] = [];
  let seq = 0;
  let delivered = 0;

  const inFlight = new Map<string, { ac: AbortController; stopped: boolean }>();
  const inFlightPromises = new Set<Promise<void>>();
  let running = false;
  let interval: ReturnType<typeof setInterval> | undefined;
  let kickTimer: ReturnType<typeof setTimeout> | undefined;
  let ticking = false;

  const store = opts.storePath
    ? new JsonFileStore<Snapshot>(opts.storePath, snapshot, 50, (e) => log({ level: "error", event: "store_error", error: String(e) }))
    : undefined;
  const changed = () => store?.save();

  function snapshot(): Snapshot {
    return {
      version: 1,
      seq,
      delivered,
      messages: [...messages.values()].map(toPersisted),
      dlq: [...dlq.values()].map((d) => ({
        ...d,
        msg: toPersisted(d.msg),
        responseBody: d.responseBody ? bytesToBase64(d.responseBody) : undefined,
      })),
      schedules: [...schedules.values()].map((s) => ({ ...s, body: bytesToBase64(s.body) })),
      queues: [...queues.values()],
      dedup: [...dedup.entries()],
    };
  }

  const ready: Promise<void> = (async () => {
    if (!store) return;
    const snap = await store.load();
    if (!snap) return;
    seq = snap.seq ?? 0;
    delivered = snap.delivered ?? 0;
    // A message that was in flight when the process died is still here, so it is delivered
    // again: at-least-once, like QStash.
    for (const p of snap.messages ?? []) messages.set(p.messageId, fromPersisted(p));
    for (const d of snap.dlq ?? []) {
      dlq.set(d.dlqId, {
        ...d,
        msg: fromPersisted(d.msg),
        responseBody: d.responseBody ? base64ToBytes(d.responseBody) : undefined,
      });
    }
    for (const s of snap.schedules ?? []) {
      const sched = { ...s, body: base64ToBytes(s.body ?? "") } as Schedule;
      try {
        crons.set(sched.scheduleId, parseCron(sched.cron));
        schedules.set(sched.scheduleId, sched);
      } catch (e) {
        log({ level: "error", event: "schedule_load_failed", scheduleId: sched.scheduleId, error: String(e) });
      }
    }
    for (const q of snap.queues ?? []) queues.set(q.name, q);
    for (const [k, v] of snap.dedup ?? []) dedup.set(k, v);
  })().catch((e) => {
    log({ level: "error", event: "store_load_failed", error: String(e) });
  });

  function record(state: string, msg: Msg, extra: Partial<EventEntry> = {}): void {
    const entry: EventEntry = {
      time: clock(),
      messageId: msg.messageId,
      state,
      url: msg.url,
      queueName: msg.queueName,
      scheduleId: msg.scheduleId,
      ...extra,
    };
    events.push(entry);
    if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS);
    log({ component: "qstash", event: state.toLowerCase(), ...entry, retried: msg.retried });
  }

  // ---- message creation -------------------------------------------------------------------

  interface BuildCtx {
    queueName?: string;
    scheduleId?: string;
    callerIp?: string;
  }

  /** Turn publish headers into a message; throws BadRequest for anything QStash would 400. */
  function buildMessage(destination: string, h: Headers, body: Uint8Array<ArrayBuffer>, ctx: BuildCtx): Msg {
    const now = clock();
    const method = (h.get("upstash-method") ?? "POST").toUpperCase();
    if (!METHODS.has(method)) throw new BadRequest(`invalid Upstash-Method: ${method}`);

    let notBefore = now;
    const nb = h.get("upstash-not-before");
    const delay = h.get("upstash-delay");
    if (nb != null && nb.trim() !== "") {
      // Not-Before (unix seconds) wins over Delay.
      if (!/^\d+$/.test(nb.trim())) throw new BadRequest(`invalid Upstash-Not-Before: ${nb}`);
      notBefore = Number(nb.trim()) * 1000;
    } else if (delay != null && delay.trim() !== "") {
      const ms = parseDurationMs(delay);
      if (ms === null) throw new BadRequest(`invalid Upstash-Delay: ${delay}`);
      notBefore = now + ms;
    }

    const retries = parseIntHeader(h.get("upstash-retries"), "Upstash-Retries") ?? defaultRetries;
    const retryDelayExpression = h.get("upstash-retry-delay") ?? undefined;
    if (retryDelayExpression !== undefined) {
      try {
        compileRetryDelay(retryDelayExpression);
      } catch (e) {
        throw new BadRequest(`invalid Upstash-Retry-Delay: ${(e as Error).message}`);
      }
    }
    const timeoutRaw = h.get("upstash-timeout");
    const timeoutMs = timeoutRaw ? parseDurationMs(timeoutRaw) : undefined;
    if (timeoutMs === null) throw new BadRequest(`invalid Upstash-Timeout: ${timeoutRaw}`);

    const header: HeaderMap = {};
    const ct = h.get("content-type");
    if (ct) header["Content-Type"] = [ct];
    h.forEach((v, k) => {
      if (k.startsWith("upstash-forward-") && k.length > "upstash-forward-".length) {
        (header[canonical(k.slice("upstash-forward-".length))] ??= []).push(v);
      }
    });

    const labels = h.get("upstash-label")?.split(",").map((s) => s.trim()).filter(Boolean);
    const flowControlKey = h.get("upstash-flow-control-key") ?? undefined;
    let parallelism: number | undefined;
    let rate: number | undefined;
    let period: number | undefined;
    const fcv = h.get("upstash-flow-control-value");
    if (flowControlKey && fcv) {
      for (const part of fcv.split(",")) {
        const [k, v] = part.split("=").map((s) => s.trim());
        if (k === "parallelism") parallelism = Number(v);
        else if (k === "rate") rate = Number(v);
        else if (k === "period") period = (parseDurationMs(v) ?? 1000) / 1000;
      }
      if (parallelism === undefined && rate === undefined) {
        throw new BadRequest("Upstash-Flow-Control-Value needs parallelism or rate");
      }
    }

    return {
      messageId: randomId("msg_"),
      url: destination,
      method,
      header,
      body,
      maxRetries: retries,
      retried: 0,
      retryDelayExpression,
      timeoutMs,
      notBefore,
      nextAttemptAt: notBefore,
      createdAt: now,
      seq: 0, // assigned by insert(), so building a message has no side effects
      callback: parseCallback(h, "upstash-callback"),
      failureCallback: parseCallback(h, "upstash-failure-callback"),
      queueName: ctx.queueName,
      scheduleId: ctx.scheduleId,
      callerIp: ctx.callerIp,
      labels: labels?.length ? labels : undefined,
      flowControlKey,
      parallelism,
      rate,
      period,
    };
  }

  function insert(msg: Msg): void {
    msg.seq = ++seq;
    messages.set(msg.messageId, msg);
    if (msg.queueName && !queues.has(msg.queueName)) {
      // Enqueueing into an unknown queue creates it, as QStash does (parallelism 1).
      const now = clock();
      queues.set(msg.queueName, { name: msg.queueName, parallelism: 1, paused: false, createdAt: now, updatedAt: now });
    }
    record("CREATED", msg, { nextDeliveryTime: msg.nextAttemptAt });
    changed();
    kick();
  }

  async function dedupKey(destination: string, h: Headers, body: Uint8Array): Promise<string | undefined> {
    const id = h.get("upstash-deduplication-id");
    if (id) return `id:${id}`;
    if ((h.get("upstash-content-based-deduplication") ?? "").toLowerCase() !== "true") return undefined;
    const fwd: string[] = [];
    h.forEach((v, k) => {
      if (k.startsWith("upstash-forward-")) fwd.push(`${k}:${v}`);
    });
    fwd.sort();
    const material = JSON.stringify([destination, bytesToBase64(body), h.get("content-type") ?? "", fwd]);
    return `content:${await sha256Base64Url(new TextEncoder().encode(material))}`;
  }

  /** Shared by publish, enqueue and batch items. */
  async function accept(
    rawDestination: string,
    h: Headers,
    body: Uint8Array<ArrayBuffer>,
    ctx: BuildCtx,
    includeUrl: boolean,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const destination = normalizeDestination(rawDestination);
    if (!destination) {
      return {
        status: 400,
        body: { error: `invalid destination url: ${JSON.stringify(rawDestination)} (URL groups and APIs are not emulated)` },
      };
    }
    let msg: Msg;
    try {
      msg = buildMessage(destination, h, body, ctx);
    } catch (e) {
      if (e instanceof BadRequest) return { status: 400, body: { error: e.message } };
      throw e;
    }
    const key = await dedupKey(destination, h, body);
    const now = clock();
    if (key) {
      const hit = dedup.get(key);
      if (hit && hit.expiresAt > now) {
        return {
          status: 202,
          body: { messageId: hit.messageId, ...(includeUrl ? { url: destination } : {}), deduplicated: true },
        };
      }
      dedup.set(key, { messageId: msg.messageId, expiresAt: now + DEDUP_WINDOW_MS });
    }
    insert(msg);
    return { status: 201, body: { messageId: msg.messageId, ...(includeUrl ? { url: destination } : {}) } };
  }

  // ---- delivery loop ----------------------------------------------------------------------

  function kick(): void {
    if (!running || kickTimer !== undefined) return;
    kickTimer = setTimeout(() => {
      kickTimer = undefined;
      void tick();
    }, 0);
  }

  function fireSchedules(now: number): void {
    for (const s of schedules.values()) {
      if (s.isPaused || s.nextScheduleTime === undefined || s.nextScheduleTime > now) continue;
      const cron = crons.get(s.scheduleId);
      try {
        const msg = buildMessage(s.destination, new Headers(s.headers), s.body, {
          scheduleId: s.scheduleId,
          callerIp: s.callerIp,
          queueName: s.queueName,
        });
        insert(msg);
        s.lastScheduleStates = { [msg.messageId]: "IN_PROGRESS" };
      } catch (e) {
        log({ level: "error", event: "schedule_fire_failed", scheduleId: s.scheduleId, error: String(e) });
      }
      // Missed runs are not replayed one by one: fire once, then continue from now.
      s.lastScheduleTime = now;
      s.nextScheduleTime = cron?.next(now) ?? undefined;
      changed();
    }
  }

  async function tick(): Promise<void> {
    if (!running || ticking) return;
    ticking = true;
    try {
      await ready;
      if (!running) return;
      const now = clock();
      for (const [k, v] of dedup) {
        if (v.expiresAt <= now) {
          dedup.delete(k);
          changed();
        }
      }
      fireSchedules(now);
      let slots = maxConcurrency - inFlight.size;
      if (slots <= 0) return;

      // Queues deliver in order: only the first `parallelism` pending messages of a queue may
      // be attempted, so a message waiting for its retry holds back the ones behind it.
      const byQueue = new Map<string, Msg[]>();
      for (const m of messages.values()) {
        if (m.queueName) (byQueue.get(m.queueName) ?? byQueue.set(m.queueName, []).get(m.queueName)!).push(m);
      }
      const queueHeads = new Set<string>();
      for (const [name, list] of byQueue) {
        const q = queues.get(name);
        if (q?.paused) continue;
        list.sort((a, b) => a.seq - b.seq);
        for (const m of list.slice(0, Math.max(1, q?.parallelism ?? 1))) queueHeads.add(m.messageId);
      }
      const flowInFlight = new Map<string, number>();
      for (const id of inFlight.keys()) {
        const k = messages.get(id)?.flowControlKey;
        if (k) flowInFlight.set(k, (flowInFlight.get(k) ?? 0) + 1);
      }

      const due = [...messages.values()]
        .filter((m) => m.nextAttemptAt <= now && !inFlight.has(m.messageId))
        .filter((m) => !m.queueName || queueHeads.has(m.messageId))
        .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.seq - b.seq);
      for (const m of due) {
        if (slots <= 0) break;
        if (m.flowControlKey && m.parallelism !== undefined) {
          const n = flowInFlight.get(m.flowControlKey) ?? 0;
          if (n >= m.parallelism) continue;
          flowInFlight.set(m.flowControlKey, n + 1);
        }
        slots--;
        launch(m);
      }
    } catch (e) {
      log({ level: "error", event: "tick_failed", error: String(e) });
    } finally {
      ticking = false;
    }
  }

  function launch(msg: Msg): void {
    const handle = { ac: new AbortController(), stopped: false };
    inFlight.set(msg.messageId, handle);
    const p: Promise<void> = attempt(msg, handle)
      .catch((e) => log({ level: "error", event: "delivery_crashed", messageId: msg.messageId, error: String(e) }))
      .finally(() => {
        inFlight.delete(msg.messageId);
        inFlightPromises.delete(p);
        kick();
      });
    inFlightPromises.add(p);
  }

  async function attempt(msg: Msg, handle: { ac: AbortController; stopped: boolean }): Promise<void> {
    const sendBody = msg.method === "GET" || msg.method === "HEAD" ? EMPTY : msg.body;
    const headers = new Headers();
    for (const [k, vs] of Object.entries(msg.header)) for (const v of vs) headers.append(k, v);
    headers.set("Upstash-Signature", await signQStashJwt({ key: opts.currentSigningKey, url: msg.url, body: sendBody, nowMs: clock() }));
    headers.set("Upstash-Message-Id", msg.messageId);
    headers.set("Upstash-Retried", String(msg.retried));
    headers.set("User-Agent", "Upstash-QStash");
    if (msg.scheduleId) headers.set("Upstash-Schedule-Id", msg.scheduleId);
    if (msg.callerIp) headers.set("Upstash-Caller-Ip", msg.callerIp);

    record("ACTIVE", msg);
    const timeout = setTimeout(() => handle.ac.abort(new Error("timeout")), msg.timeoutMs ?? attemptTimeoutMs);
    let res: Response | undefined;
    let resBody: Uint8Array<ArrayBuffer> = new Uint8Array(0);
    let error: string | undefined;
    try {
      res = await doFetch(msg.url, {
        method: msg.method,
        headers,
        body: sendBody.length ? sendBody : undefined,
        signal: handle.ac.signal,
      });
      resBody = new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      error = handle.ac.signal.aborted && !handle.stopped ? "timeout" : String((e as Error)?.message ?? e);
    } finally {
      clearTimeout(timeout);
    }

    // Aborted by stop(): not a failed attempt. It stays pending (and persisted), so it is
    // delivered again after a restart.
    if (handle.stopped && error !== undefined) return;
    // Cancelled while in flight: forget it.
    if (messages.get(msg.messageId) !== msg) return;

    const now = clock();
    const ok = res !== undefined && res.status >= 200 && res.status < 300;
    if (res && msg.callback && !msg.callbackFor) {
      // Like QStash, the callback is called per attempt that got a response.
      enqueueCallback(msg, msg.callback, res, resBody);
    }
    if (ok) {
      messages.delete(msg.messageId);
      delivered++;
      setScheduleState(msg, "SUCCESS");
      record("DELIVERED", msg, { responseStatus: res!.status });
      changed();
      return;
    }

    const nonRetryable = res?.status === 489 && (res.headers.get("upstash-nonretryable-error") ?? "").toLowerCase() === "true";
    if (nonRetryable || msg.retried >= msg.maxRetries) {
      moveToDlq(msg, res, resBody, error);
      return;
    }

    let delayMs = res ? retryHintMs(res.headers, now) : null;
    if (delayMs === null && msg.retryDelayExpression) {
      const v = compileRetryDelay(msg.retryDelayExpression)(msg.retried);
      delayMs = Number.isFinite(v) ? Math.min(86_400_000, Math.max(0, v)) : 0;
    }
    if (delayMs === null) delayMs = defaultBackoffMs(msg.retried + 1, backoffScale);
    msg.retried++;
    msg.nextAttemptAt = now + delayMs;
    record("ERROR", msg, { responseStatus: res?.status, error, nextDeliveryTime: msg.nextAttemptAt });
    record("RETRY", msg, { nextDeliveryTime: msg.nextAttemptAt });
    changed();
  }

  function setScheduleState(msg: Msg, state: "SUCCESS" | "FAIL"): void {
    const s = msg.scheduleId ? schedules.get(msg.scheduleId) : undefined;
    if (s && msg.messageId in s.lastScheduleStates) s.lastScheduleStates[msg.messageId] = state;
  }

  function moveToDlq(msg: Msg, res: Response | undefined, resBody: Uint8Array<ArrayBuffer>, error: string | undefined): void {
    messages.delete(msg.messageId);
    const entry: DlqEntry = {
      dlqId: randomId("dlq_"),
      msg,
      failedAt: clock(),
      responseStatus: res?.status,
      responseHeader: res ? headersToMap(res.headers) : undefined,
      responseBody: res ? resBody : error !== undefined ? new TextEncoder().encode(error) : undefined,
    };
    // Callback messages that fail are dropped rather than parked, so the DLQ holds only
    // things the user published (QStash charges/handles them as separate messages).
    if (!msg.callbackFor) dlq.set(entry.dlqId, entry);
    setScheduleState(msg, "FAIL");
    record("FAILED", msg, { responseStatus: res?.status, error });
    if (msg.failureCallback && !msg.callbackFor) {
      enqueueCallback(msg, msg.failureCallback, res, resBody, entry.dlqId, error);
    }
    changed();
  }

  function enqueueCallback(
    source: Msg,
    spec: CallbackSpec,
    res: Response | undefined,
    resBody: Uint8Array,
    dlqId?: string,
    error?: string,
  ): void {
    const now = clock();
    const payload = {
      status: res?.status ?? 0,
      header: res ? headersToMap(res.headers) : {},
      body: bytesToBase64(res ? resBody : new TextEncoder().encode(error ?? "")),
      retried: source.retried,
      maxRetries: source.maxRetries,
      sourceMessageId: source.messageId,
      topicName: "",
      endpointName: "",
      url: source.url,
      method: source.method,
      sourceHeader: source.header,
      sourceBody: bytesToBase64(source.body),
      notBefore: String(source.notBefore),
      createdAt: String(source.createdAt),
      scheduleId: source.scheduleId ?? "",
      callerIP: source.callerIp ?? "",
      ...(dlqId ? { dlqId } : {}),
    };
    const notBefore = now + (spec.delayMs ?? 0);
    insert({
      messageId: randomId("msg_"),
      url: spec.url,
      method: spec.method,
      header: { "Content-Type": ["application/json"], ...spec.header },
      body: new TextEncoder().encode(JSON.stringify(payload)),
      // "Callbacks will use the retry setting from the original request."
      maxRetries: spec.retries ?? source.maxRetries,
      retried: 0,
      retryDelayExpression: spec.retryDelay ?? source.retryDelayExpression,
      timeoutMs: spec.timeoutMs,
      notBefore,
      nextAttemptAt: notBefore,
      createdAt: now,
      seq: 0,
      callerIp: source.callerIp,
      callbackFor: source.messageId,
    });
  }

  // ---- views ------------------------------------------------------------------------------

  function messageView(m: Msg): Record<string, unknown> {
    return {
      messageId: m.messageId,
      url: m.url,
      method: m.method,
      header: m.header,
      ...bodyView(m.body, "body"),
      maxRetries: m.maxRetries,
      retried: m.retried,
      retryDelayExpression: m.retryDelayExpression,
      notBefore: m.notBefore,
      nextDeliveryTime: m.nextAttemptAt,
      createdAt: m.createdAt,
      callback: m.callback?.url,
      failureCallback: m.failureCallback?.url,
      queueName: m.queueName,
      scheduleId: m.scheduleId,
      callerIp: m.callerIp,
      flowControlKey: m.flowControlKey,
      parallelism: m.parallelism,
      rate: m.rate,
      period: m.period,
      label: m.labels?.[0],
      labels: m.labels,
    };
  }

  function dlqView(d: DlqEntry): Record<string, unknown> {
    return {
      ...messageView(d.msg),
      dlqId: d.dlqId,
      responseStatus: d.responseStatus,
      responseHeader: d.responseHeader,
      ...(d.responseBody ? bodyView(d.responseBody, "responseBody") : {}),
    };
  }

  function scheduleView(s: Schedule): Record<string, unknown> {
    // Derive the message settings from the stored headers exactly as a firing would.
    let t: Msg | undefined;
    try {
      t = buildMessage(s.destination, new Headers(s.headers), s.body, {});
    } catch {
      t = undefined;
    }
    const h = new Headers(s.headers);
    return {
      scheduleId: s.scheduleId,
      cron: s.cron,
      createdAt: s.createdAt,
      destination: s.destination,
      method: t?.method ?? "POST",
      header: t?.header ?? {},
      ...bodyView(s.body, "body"),
      retries: t?.maxRetries ?? defaultRetries,
      delay: h.get("upstash-delay") ? (parseDurationMs(h.get("upstash-delay")) ?? 0) / 1000 : undefined,
      callback: t?.callback?.url,
      failureCallback: t?.failureCallback?.url,
      callerIp: s.callerIp,
      callerIP: s.callerIp,
      isPaused: s.isPaused,
      queueName: s.queueName,
      flowControlKey: t?.flowControlKey,
      parallelism: t?.parallelism,
      rate: t?.rate,
      period: t?.period,
      retryDelayExpression: t?.retryDelayExpression,
      label: t?.labels?.[0],
      labels: t?.labels,
      lastScheduleTime: s.lastScheduleTime,
      nextScheduleTime: s.nextScheduleTime,
      lastScheduleStates: s.lastScheduleStates,
    };
  }

  function queueView(q: QueueConfig): Record<string, unknown> {
    let lag = 0;
    for (const m of messages.values()) if (m.queueName === q.name) lag++;
    return { createdAt: q.createdAt, updatedAt: q.updatedAt, name: q.name, parallelism: q.parallelism, lag, paused: q.paused };
  }

  function retryDlq(d: DlqEntry): string {
    dlq.delete(d.dlqId);
    const now = clock();
    const msg: Msg = { ...d.msg, messageId: randomId("msg_"), retried: 0, notBefore: now, nextAttemptAt: now, createdAt: now };
    insert(msg);
    return msg.messageId;
  }

  /** DLQ entries matching the query, oldest first, paged by an offset cursor. */
  function dlqPage(params: URLSearchParams, defaultCount: number): { page: DlqEntry[]; cursor?: string } {
    const all = [...dlq.values()].filter((d) =>
      matches(params, { ...d.msg, dlqId: d.dlqId, responseStatus: d.responseStatus })
    );
    const start = Math.max(0, Number(params.get("cursor") ?? 0) || 0);
    const count = Math.max(1, Number(params.get("count") ?? defaultCount) || defaultCount);
    const page = all.slice(start, start + count);
    return { page, cursor: start + count < all.length ? String(start + count) : undefined };
  }

  // ---- HTTP API ---------------------------------------------------------------------------

  const app = new Hono();

  app.onError((e) => {
    log({ level: "error", event: "api_error", error: String(e) });
    return err(500, String((e as Error)?.message ?? e));
  });

  // Relative paths so `root.route("/qstash", app)` works.
  app.use("/v2/*", async (c, next) => {
    const auth = c.req.header("authorization") ?? "";
    const queryToken = new URL(c.req.url).searchParams.get("qstash_token");
    if (auth !== `Bearer ${opts.token}` && queryToken !== opts.token) {
      return err(401, "unauthorized: missing or invalid token");
    }
    await ready;
    await next();
  });

  const callerIpOf = (c: Context) =>
    c.req.header("x-forwarded-for")?.split(",")[0]?.trim() || c.req.header("x-real-ip") || "127.0.0.1";
  const readBody = async (c: Context) => new Uint8Array(await c.req.arrayBuffer());

  app.post("/v2/publish/*", async (c) => {
    const dest = rawTail(c.req.url, "/v2/publish/");
    if (!dest) return err(400, "missing destination");
    const r = await accept(dest, c.req.raw.headers, await readBody(c), { callerIp: callerIpOf(c) }, true);
    return json(r.body, r.status);
  });

  app.post("/v2/enqueue/:queue/*", async (c) => {
    const tail = rawTail(c.req.url, "/v2/enqueue/");
    const slash = tail?.indexOf("/") ?? -1;
    if (!tail || slash <= 0) return err(400, "expected /v2/enqueue/{queueName}/{destination}");
    const queueName = decodeURIComponent(tail.slice(0, slash));
    const r = await accept(tail.slice(slash + 1), c.req.raw.headers, await readBody(c), { queueName, callerIp: callerIpOf(c) }, false);
    return json(r.body, r.status);
  });

  app.post("/v2/batch", async (c) => {
    let items: unknown;
    try {
      items = await c.req.json();
    } catch {
      return err(400, "body must be a JSON array");
    }
    if (!Array.isArray(items)) return err(400, "body must be a JSON array");
    const out: unknown[] = [];
    for (const item of items as { destination?: unknown; headers?: unknown; body?: unknown; queue?: unknown }[]) {
      if (!item || typeof item !== "object" || typeof item.destination !== "string") {
        out.push({ error: "each item needs a destination" });
        continue;
      }
      const h = new Headers();
      if (item.headers && typeof item.headers === "object") {
        for (const [k, v] of Object.entries(item.headers as Record<string, unknown>)) {
          for (const one of Array.isArray(v) ? v : [v]) h.append(k, String(one));
        }
      }
      const body = typeof item.body === "string" ? new TextEncoder().encode(item.body) : new Uint8Array(0);
      const queueName = typeof item.queue === "string" && item.queue ? item.queue : undefined;
      const r = await accept(item.destination, h, body, { queueName, callerIp: callerIpOf(c) }, true);
      out.push(r.body);
    }
    return json(out, 200);
  });

  // -- messages
  app.get("/v2/messages/:id", (c) => {
    const m = messages.get(c.req.param("id"));
    return m ? json(messageView(m)) : err(404, "message not found");
  });
  app.delete("/v2/messages/:id", (c) => {
    const m = messages.get(c.req.param("id"));
    if (!m) return err(404, "message not found");
    messages.delete(m.messageId);
    record("CANCELED", m);
    changed();
    return json({ cancelled: 1 });
  });
  app.delete("/v2/messages", (c) => {
    const params = new URL(c.req.url).searchParams;
    let cancelled = 0;
    for (const m of [...messages.values()]) {
      if (matches(params, m)) {
        messages.delete(m.messageId);
        record("CANCELED", m);
        cancelled++;
      }
    }
    if (cancelled) changed();
    return json({ cancelled });
  });

  // -- DLQ
  app.get("/v2/dlq", (c) => {
    const { page, cursor } = dlqPage(new URL(c.req.url).searchParams, 100);
    return json({ messages: page.map(dlqView), ...(cursor ? { cursor } : {}) });
  });
  app.get("/v2/dlq/:dlqId", (c) => {
    const d = dlq.get(c.req.param("dlqId"));
    return d ? json(dlqView(d)) : err(404, "dlq message not found");
  });
  app.delete("/v2/dlq/:dlqId", (c) => {
    if (!dlq.delete(c.req.param("dlqId"))) return err(404, "dlq message not found");
    changed();
    return json({ deleted: 1 });
  });
  app.delete("/v2/dlq", (c) => {
    const { page, cursor } = dlqPage(new URL(c.req.url).searchParams, 100);
    for (const d of page) dlq.delete(d.dlqId);
    if (page.length) changed();
    // Entries were removed, so the next page starts where this one did.
    return json({ deleted: page.length, ...(cursor ? { cursor: String(Number(cursor) - page.length) } : {}) });
  });
  app.post("/v2/dlq/retry/:dlqId", (c) => {
    const d = dlq.get(c.req.param("dlqId"));
    if (!d) return err(404, "dlq message not found");
    return json({ messageId: retryDlq(d) });
  });
  app.post("/v2/dlq/retry", (c) => {
    const { page, cursor } = dlqPage(new URL(c.req.url).searchParams, 100);
    const responses = page.map((d) => ({ messageId: retryDlq(d) }));
    return json({ responses, ...(cursor ? { cursor: String(Number(cursor) - page.length) } : {}) });
  });

  // -- schedules
  app.post("/v2/schedules/*", async (c) => {
    const raw = rawTail(c.req.url, "/v2/schedules/");
    const destination = raw ? normalizeDestination(raw) : null;
    if (!destination) return err(400, `invalid destination url: ${JSON.stringify(raw ?? "")}`);
    const h = c.req.raw.headers;
    const cronRaw = h.get("upstash-cron");
    if (!cronRaw) return err(400, "Upstash-Cron header is required");
    let cron: ParsedCron;
    try {
      cron = parseCron(cronRaw);
    } catch (e) {
      return err(400, `invalid Upstash-Cron: ${(e as Error).message}`);
    }
    const body = await readBody(c);
    const headers: [string, string][] = [];
    h.forEach((v, k) => {
      if ((k.startsWith("upstash-") || k === "content-type") && !/^upstash-(cron|schedule-id|queue-name|telemetry-)/.test(k)) {
        headers.push([k, v]);
      }
    });
    try {
      buildMessage(destination, new Headers(headers), body, {}); // validation only
    } catch (e) {
      if (e instanceof BadRequest) return err(400, e.message);
      throw e;
    }
    const scheduleId = h.get("upstash-schedule-id") || randomId("scd_");
    const existing = schedules.get(scheduleId);
    const now = clock();
    schedules.set(scheduleId, {
      scheduleId,
      cron: cron.expression,
      createdAt: existing?.createdAt ?? now,
      destination,
      headers,
      body,
      isPaused: false,
      callerIp: callerIpOf(c),
      queueName: h.get("upstash-queue-name") || undefined,
      lastScheduleTime: existing?.lastScheduleTime,
      nextScheduleTime: cron.next(now) ?? undefined,
      lastScheduleStates: existing?.lastScheduleStates ?? {},
    });
    crons.set(scheduleId, cron);
    changed();
    return json({ scheduleId }, existing ? 200 : 201);
  });
  app.get("/v2/schedules", () => json([...schedules.values()].map(scheduleView)));
  app.get("/v2/schedules/:id", (c) => {
    const s = schedules.get(c.req.param("id"));
    return s ? json(scheduleView(s)) : err(404, "schedule not found");
  });
  app.delete("/v2/schedules/:id", (c) => {
    const id = c.req.param("id");
    if (!schedules.delete(id)) return err(404, "schedule not found");
    crons.delete(id);
    changed();
    return new Response(null, { status: 200 });
  });
  for (const action of ["pause", "resume"] as const) {
    app.patch(`/v2/schedules/:id/${action}`, (c) => {
      const s = schedules.get(c.req.param("id"));
      if (!s) return err(404, "schedule not found");
      s.isPaused = action === "pause";
      // Resuming does not replay the runs missed while paused.
      if (!s.isPaused) s.nextScheduleTime = crons.get(s.scheduleId)?.next(clock()) ?? undefined;
      changed();
      return new Response(null, { status: 200 });
    });
  }

  // -- queues
  app.post("/v2/queues", async (c) => {
    let b: { queueName?: unknown; parallelism?: unknown; paused?: unknown };
    try {
      b = await c.req.json();
    } catch {
      return err(400, "invalid JSON body");
    }
    if (typeof b.queueName !== "string" || !b.queueName) return err(400, "queueName is required");
    const now = clock();
    const prev = queues.get(b.queueName);
    queues.set(b.queueName, {
      name: b.queueName,
      parallelism: typeof b.parallelism === "number" && b.parallelism > 0 ? Math.floor(b.parallelism) : 1,
      paused: b.paused === true,
      createdAt: prev?.createdAt ?? now,
      updatedAt: now,
    });
    changed();
    kick();
    return new Response(null, { status: 200 });
  });
  app.get("/v2/queues", () => json([...queues.values()].map(queueView)));
  app.get("/v2/queues/:name", (c) => {
    const q = queues.get(c.req.param("name"));
    return q ? json(queueView(q)) : err(404, "queue not found");
  });
  app.delete("/v2/queues/:name", (c) => {
    const name = c.req.param("name");
    if (!queues.delete(name)) return err(404, "queue not found");
    for (const m of [...messages.values()]) if (m.queueName === name) messages.delete(m.messageId);
    changed();
    return new Response(null, { status: 200 });
  });
  for (const action of ["pause", "resume"] as const) {
    app.post(`/v2/queues/:name/${action}`, (c) => {
      const q = queues.get(c.req.param("name"));
      if (!q) return err(404, "queue not found");
      q.paused = action === "pause";
      q.updatedAt = clock();
      changed();
      kick();
      return new Response(null, { status: 200 });
    });
  }

  // -- events (logs): newest first, in-memory only
  app.get("/v2/events", (c) => {
    const params = new URL(c.req.url).searchParams;
    const states = params.getAll("state");
    const ids = [...params.getAll("messageIds"), ...params.getAll("messageId")];
    const count = Math.min(1000, Number(params.get("count") ?? 100) || 100);
    const list = events
      .filter((e) => (!states.length || states.includes(e.state)) && (!ids.length || ids.includes(e.messageId)))
      .filter((e) => !params.get("url") || e.url === params.get("url"))
      .slice()
      .reverse()
      .slice(0, count);
    return json({ events: list });
  });

  app.all("/v2/*", (c) => err(404, `not emulated: ${c.req.method} ${new URL(c.req.url).pathname}`));

  // ---- lifecycle --------------------------------------------------------------------------

  return {
    app,
    start() {
      if (running) return;
      running = true;
      interval = setInterval(() => void tick(), tickMs);
      kick();
    },
    async stop() {
      running = false;
      if (interval !== undefined) clearInterval(interval);
      if (kickTimer !== undefined) clearTimeout(kickTimer);
      interval = kickTimer = undefined;
      await ready;
      if (inFlightPromises.size) {
        let graceTimer: ReturnType<typeof setTimeout> | undefined;
        const grace = new Promise<void>((r) => (graceTimer = setTimeout(r, stopGraceMs)));
        await Promise.race([Promise.allSettled([...inFlightPromises]), grace]);
        clearTimeout(graceTimer);
        for (const h of inFlight.values()) {
          h.stopped = true;
          h.ac.abort(new Error("emulator stopping"));
        }
        await Promise.allSettled([...inFlightPromises]);
      }
      await store?.flush();
    },
    stats() {
      return { pending: messages.size, delivered, dlq: dlq.size, schedules: schedules.size };
    },
    pendingTo(urlPart: string) {
      let n = 0;
      for (const m of messages.values()) if (m.url.includes(urlPart)) n++;
      return n;
    },
  };
}
