// Stores verified provider events once each, and queues their processing, in one statement per
// group of concurrent deliveries.
//
// One INSERT and one commit per delivery made a flood (a provider retrying an outage's worth of
// events, a campaign's delivery receipts) pay a statement round trip and a WAL flush per event.
// Now a delivery joins a queue, and at the end of the current event-loop turn the queue is written
// by up to MAX_IN_FLIGHT statements, shared evenly between them (at most MAX_ROWS events each);
// what arrives while both are running waits for the next free one. When traffic is light a
// delivery is written alone, a few microseconds later. Each delivery is answered only after the
// statement holding its row has committed, so "200" still means "durable"; a statement that fails
// fails every delivery in it (each answers 5xx and its provider retries — nothing is lost, and ON
// CONFLICT makes the retry harmless). A group's new events are queued as ONE 'flow.inbound'
// {event_ids} message. The SQL is private.store_webhook_events (…002200_webhook_event_groups.sql).
//
// Measured by `npm run bench -- --only ingest` (2-core machine, 16 deliveries in flight): one row
// per statement 0.08 of the bare handler's throughput; grouped, as here, about 0.29.
// setImmediate from node:timers: Node, Deno and the Edge Runtime all provide the module
import { setImmediate } from "node:timers";
import { db } from "../db/client.ts";

/** The topic whose consumer (flow-inbound) processes stored events. */
export const INBOUND_TOPIC = "flow.inbound";

export type JsonObject = Record<string, unknown>;

export interface EventToStore {
  provider: string;
  /** The provider's event id (already made storable: ≤ 200 characters, Postgres-safe). */
  eventId: string;
  eventType: string;
  /** Postgres-safe JSON (no NUL, no lone surrogates): see pgSafeJson in receive.ts. */
  payload: JsonObject;
}

export interface StoredEvent {
  id: number;
  /** false: the provider's event id was stored before (a retry or a replay). */
  inserted: boolean;
}

/**
 * Statements writing events at once (per isolate). Two: one is written while the deliveries of
 * the other are answered and the next ones verified (three measured slower: more, smaller commits).
 */
const MAX_IN_FLIGHT = 2;
/** Events per statement at most: bounds its parameter (~1–2 kB an event) and its lock time. */
const MAX_ROWS = 64;

interface Waiting {
  event: EventToStore;
  resolve(stored: StoredEvent): void;
  reject(err: unknown): void;
}

let queue: Waiting[] = [];
let inFlight = 0;

/**
 * Stores a verified event once (unique on provider + event id) and, only when it is new, queues
 * its processing in the same statement — so both commit or neither does. The statement's new
 * events share one 'flow.inbound' {event_ids} message: flow-inbound applies them together (each in
 * its own savepoint), and a group of 64 events costs QStash one message, not 64.
 */
export function storeWebhookEvent(event: EventToStore): Promise<StoredEvent> {
  return new Promise<StoredEvent>((resolve, reject) => {
    queue.push({ event, resolve, reject });
    pump();
  });
}

/**
 * Starts the next statement(s) once the deliveries already running on this turn of the event loop
 * have joined the queue: setImmediate runs after the pending promise callbacks and I/O, so a
 * statement's worth of requests answered together comes back as one group, not as one lone row
 * followed by the rest. When traffic is light that costs a few microseconds.
 */
let flushScheduled = false;
function pump(): void {
  if (flushScheduled || inFlight >= MAX_IN_FLIGHT || queue.length === 0) return;
  flushScheduled = true;
  setImmediate(flush);
}

function flush(): void {
  flushScheduled = false;
  // The queue is shared evenly by the free statement slots: two half groups keep the database
  // and this isolate busy at once (one is written while the other's deliveries are answered and
  // the next ones verified), where one whole group would leave each waiting for the other.
  const size = Math.min(MAX_ROWS, Math.ceil(queue.length / (MAX_IN_FLIGHT - inFlight)));
  while (inFlight < MAX_IN_FLIGHT && queue.length > 0) {
    const group = queue.slice(0, size);
    queue = queue.slice(size);
    inFlight++;
    writeGroup(group).finally(() => {
      inFlight--;
      pump();
    });
  }
}

/**
 * The text as a dollar-quoted SQL literal ($tag$…$tag$: no escapes are processed inside, and the
 * tag is chosen so it does not occur in the text, so no text can end the literal early).
 */
export function dollarQuoted(text: string): string {
  let tag = "j";
  while (text.includes(`$${tag}$`)) tag = `j${Math.random().toString(36).slice(2, 10)}`;
  return `$${tag}$${text}$${tag}$`;
}

const keyOf = (provider: string, eventId: string) => `${provider}\u0000${eventId}`;

async function writeGroup(group: Waiting[]): Promise<void> {
  // One row per event id: a re-sent event in the same group (a retry racing the original) is
  // answered as the duplicate it is, the first copy is the one stored.
  const rows: Array<{ p: string; e: string; t: string; d: JsonObject }> = [];
  const seen = new Set<string>();
  for (const { event } of group) {
    const key = keyOf(event.provider, event.eventId);
    if (seen.has(key)) continue;
    seen.add(key);
    rows.push({ p: event.provider, e: event.eventId, t: event.eventType, d: event.payload });
  }
  let stored: Map<string, number>;
  try {
    // The group travels as one literal, not a parameter: without prepared statements (the
    // transaction pooler) a parameter costs postgres.js a Describe round trip before the Bind,
    // and round trips are what a flood waits on.
    const inserted = await db().unsafe(
      `select id, provider, event_id from private.store_webhook_events(${dollarQuoted(JSON.stringify(rows))}::jsonb)`,
    );
    stored = new Map(inserted.map((r) => [keyOf(r.provider, r.event_id), Number(r.id)]));
  } catch (err) {
    for (const w of group) w.reject(err);
    return;
  }
  const answered = new Set<string>();
  for (const w of group) {
    const key = keyOf(w.event.provider, w.event.eventId);
    const id = stored.get(key);
    // the first delivery of a newly stored id is the insert; any other copy is a duplicate
    if (id !== undefined && !answered.has(key)) {
      answered.add(key);
      w.resolve({ id, inserted: true });
    } else {
      w.resolve({ id: 0, inserted: false });
    }
  }
}
