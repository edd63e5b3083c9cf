// The outbox: work to publish to QStash, written in the same transaction as the change that
// caused it, published afterwards with a deduplication id so nothing is sent twice or lost.
import type { Sql, Tx } from "../db/client.ts";
import { log } from "../observability/log.ts";
import { functionUrl, qstash } from "../qstash/client.ts";
import { TOPIC_DESTINATIONS } from "./topics.ts";

/** Queues a message in the caller's transaction. */
export async function enqueue(
  tx: Tx,
  topic: string,
  payload: Record<string, unknown>,
  opts: { dedupKey?: string; clientId?: string; delaySeconds?: number } = {},
): Promise<void> {
  await tx`
    insert into public.outbox (topic, payload, dedup_key, client_id, available_at)
    values (${topic}, ${tx.json(payload as never)}, ${opts.dedupKey ?? null}, ${opts.clientId ?? null},
            now() + make_interval(secs => ${opts.delaySeconds ?? 0}))`;
}

/**
 * "Start flow X": one message per producing batch (not per lead). Not deduplicated across
 * batches: a kick dropped as a duplicate while the consumer was already past the new work would
 * leave that work to the next cron tick. Consumers claim with SKIP LOCKED, so extra kicks that
 * find nothing cost one empty step.
 */
export function kick(tx: Tx, topic: string, payload: Record<string, unknown> = {}): Promise<void> {
  return enqueue(tx, topic, payload);
}

export interface PublishResult {
  published: number;
  skipped: number;
}

/**
 * Publishes due outbox rows in one QStash batch: claimed with SKIP LOCKED so concurrent
 * publishers never send the same row, each sent with its deduplication id, marked published
 * in the same transaction. A QStash failure rolls the claim back: the rows go out next time.
 */
export async function publishOutbox(sql: Sql, limit = 200): Promise<PublishResult> {
  const routed = Object.keys(TOPIC_DESTINATIONS);
  return await sql.begin(async (tx) => {
    // topics nobody subscribes to yet: marked done set-based, never sent
    const skipped = await tx`
      update public.outbox set published_at = now()
      where published_at is null and not (topic = any(${routed}))`;
    const rows = await tx`
      select id, topic, payload, dedup_key, extract(epoch from available_at)::bigint as not_before
      from public.outbox
      where published_at is null and topic = any(${routed})
      order by id
      limit ${limit}
      for update skip locked`;
    if (rows.length === 0) return { published: 0, skipped: skipped.count };
    // a delayed row goes out now with QStash's not-before, so no one has to poll for it
    const now = Math.floor(Date.now() / 1000);
    const messages = rows.map((r) => ({
      url: functionUrl(TOPIC_DESTINATIONS[r.topic]),
      body: { ...r.payload, outbox_id: Number(r.id), topic: r.topic },
      deduplicationId: r.dedup_key ?? `outbox-${r.id}`,
      retries: 5,
      ...(Number(r.not_before) > now ? { notBefore: Number(r.not_before) } : {}),
    }));
    await qstash().batchJSON(messages);
    await tx`
      update public.outbox o set published_at = now(), destination = d.destination
      from (select unnest(${rows.map((r) => r.id)}::bigint[]) as id,
                   unnest(${rows.map((r) => TOPIC_DESTINATIONS[r.topic])}::text[]) as destination) d
      where o.id = d.id`;
    return { published: rows.length, skipped: skipped.count };
  }) as PublishResult;
}

/** Best effort right after a commit; the publisher's cron tick retries whatever this misses. */
export async function publishSoon(sql: Sql): Promise<void> {
  try {
    await publishOutbox(sql);
  } catch (err) {
    log("warn", "outbox publish deferred to the next tick", { error: err instanceof Error ? err.message : String(err) });
  }
}
