// The grouped event store (shared/webhooks/event-store.ts) against the real schema: deliveries that
// arrive together share one statement, each event id is stored once whatever the interleaving, the
// group's new events are queued as one flow.inbound {event_ids} message, a statement that fails
// fails every delivery in it and stores none of them (their retries then store them), and the
// literal the group travels in cannot be broken out of by any text.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { db } from "../../shared/db/client.ts";
import { dollarQuoted, storeWebhookEvent, type EventToStore } from "../../shared/webhooks/event-store.ts";
import { getStack, unique } from "../helpers/stack.ts";

beforeAll(async () => {
  await getStack();
});

const event = (eventId: string, extra: Partial<EventToStore> = {}): EventToStore => ({
  provider: "calcom", eventId, eventType: "BOOKING_CREATED", payload: { triggerEvent: "BOOKING_CREATED", payload: { uid: eventId } }, ...extra,
});

async function storedIds(eventIds: string[]): Promise<Map<string, number>> {
  const rows = await db()`select id, event_id from public.webhook_events where provider = 'calcom' and event_id = any(${eventIds})`;
  return new Map(rows.map((r) => [r.event_id as string, Number(r.id)]));
}

/** How many flow.inbound messages name each of these webhook_events ids. */
async function queuedTimes(ids: number[]): Promise<Map<number, number>> {
  const rows = await db()`
    select e.id::bigint as id, count(*)::int as n
    from public.outbox o cross join lateral jsonb_array_elements_text(o.payload->'event_ids') as e (id)
    where o.topic = 'flow.inbound' and e.id::bigint = any(${ids}::bigint[])
    group by e.id`;
  return new Map(rows.map((r) => [Number(r.id), r.n as number]));
}

describe("storeWebhookEvent", () => {
  it("two statements racing over the same event ids neither deadlock nor store one twice", async () => {
    // each id twice, the copies in opposite orders: the two statement slots get the same ids
    // in reverse, which deadlocked before the function inserted in key order
    for (let round = 0; round < 5; round++) {
      const ids = Array.from({ length: 20 }, () => unique("evt"));
      const results = await Promise.all([...ids, ...[...ids].reverse()].map((id) => storeWebhookEvent(event(id))));
      expect(results.filter((r) => r.inserted)).toHaveLength(ids.length);
      expect((await storedIds(ids)).size).toBe(ids.length);
    }
  });

  it("stores each event id once under concurrent duplicates, and queues each new event exactly once", async () => {
    const ids = Array.from({ length: 12 }, () => unique("evt"));
    // 60 deliveries at once: every id five times, interleaved
    const deliveries = Array.from({ length: 60 }, (_, i) => ids[(i * 7) % ids.length]!);
    const results = await Promise.all(deliveries.map((id) => storeWebhookEvent(event(id))));

    const inserted = results.filter((r) => r.inserted);
    expect(inserted).toHaveLength(ids.length);
    expect(new Set(inserted.map((r) => r.id)).size).toBe(ids.length);
    expect(results.filter((r) => !r.inserted).every((r) => r.id === 0)).toBe(true);

    const stored = await storedIds(ids);
    expect(stored.size).toBe(ids.length);
    expect([...stored.values()].sort()).toEqual(inserted.map((r) => r.id).sort());
    const queued = await queuedTimes([...stored.values()]);
    for (const id of stored.values()) expect(queued.get(id), `event ${id}`).toBe(1);
    // grouped: far fewer messages than events
    const [{ messages }] = await db()`
      select count(distinct o.id)::int as messages from public.outbox o
      cross join lateral jsonb_array_elements_text(o.payload->'event_ids') as e (id)
      where o.topic = 'flow.inbound' and e.id::bigint = any(${[...stored.values()]}::bigint[])`;
    expect(messages).toBeLessThan(ids.length);

    // a later re-send is a duplicate and queues nothing
    const again = await storeWebhookEvent(event(ids[0]!));
    expect(again).toEqual({ id: 0, inserted: false });
    expect((await queuedTimes([stored.get(ids[0]!)!])).get(stored.get(ids[0]!)!)).toBe(1);
  });

  it("a statement that fails fails every delivery in it and stores none; their retries store them", async () => {
    const good = Array.from({ length: 9 }, () => unique("evt"));
    // ten deliveries at once, one of them refused by the provider check constraint: the statement
    // holding it fails as a whole, the other statement commits
    const outcomes = await Promise.allSettled([
      ...good.slice(0, 4).map((id) => storeWebhookEvent(event(id))),
      storeWebhookEvent(event(unique("evt"), { provider: "bogus" })),
      ...good.slice(4).map((id) => storeWebhookEvent(event(id))),
    ]);
    expect(outcomes[4]!.status).toBe("rejected");
    const goodOutcomes = [...outcomes.slice(0, 4), ...outcomes.slice(5)];
    const stored = await storedIds(good);
    const failed = good.filter((_, i) => goodOutcomes[i]!.status === "rejected");
    // answered 5xx ⇔ not stored; answered 200 ⇔ stored: no delivery is half-done
    good.forEach((id, i) => expect(stored.has(id), id).toBe(goodOutcomes[i]!.status === "fulfilled"));
    expect(failed.length).toBeGreaterThan(0); // the bad event's statement-mates failed with it

    // the providers retry what failed: stored, once each
    const retried = await Promise.all(failed.map((id) => storeWebhookEvent(event(id))));
    expect(retried.every((r) => r.inserted)).toBe(true);
    expect((await storedIds(good)).size).toBe(good.length);
  });

  it("keeps payloads byte-for-byte, dollar signs and quote characters included", async () => {
    const id = unique("evt");
    const payload = { note: "$j$ ends here? $$ no; 'quotes' \"too\" \\ backslash", nested: { a: [1, "$x$"] } };
    await storeWebhookEvent(event(id, { payload }));
    const [row] = await db()`select payload from public.webhook_events where provider = 'calcom' and event_id = ${id}`;
    expect(row!.payload).toEqual(payload);
  });
});

describe("dollarQuoted", () => {
  it("any text round-trips through the SQL literal unchanged", async () => {
    const sql = db();
    // texts rich in what could end the literal: dollars, tags, quotes, backslashes
    const tricky = fc.array(fc.constantFrom("$", "j", "$j$", "'", "\\", "\"", "a", "\n", "é", "😀"), { maxLength: 40 }).map((parts) => parts.join(""));
    const texts = fc.sample(fc.oneof(tricky, fc.string({ unit: "grapheme", maxLength: 60 })), { numRuns: 150, seed: 20261124 })
      .map((t) => t.replace(/\u0000/g, "")); // Postgres text holds no NUL at all
    const rows = await sql.unsafe(`select v from (values ${texts.map((t, i) => `(${i}, ${dollarQuoted(t)}::text)`).join(", ")}) as x (i, v) order by i`);
    expect(rows.map((r) => r.v)).toEqual(texts);
  });
});
