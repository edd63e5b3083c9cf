// Replies flow (product.md §7): classifies each reply and runs its class's action, once. Invoked by
// QStash with {reply_id} (the webhook and reply-recovery paths enqueue 'flow.replies' for every new
// reply), or without one as a cron sweep: replies not yet acted on (a lost message, a Claude outage)
// and not-now follow-ups that fell due. Redelivery is harmless: classified_at / acted_at are written
// in the transaction that acts, under the reply's row lock.
import { z } from "@hono/zod-openapi";
import { asService, db } from "../../shared/db/client.ts";
import { ClassifyRetryableError } from "../../shared/engines/reply-classifier.ts";
import { processReply, resumeDueFollowUps } from "../../shared/engines/reply-actions.ts";
import { createFlowFunction } from "../../shared/flows/flow-app.ts";
import { anthropicFromEnv } from "../../shared/integrations/anthropic.ts";
import { serveFunction } from "../../shared/http/serve.ts";

/** Replies per sweep: each may wait on Claude, so a tick stays well inside the function's time. */
const SWEEP = 25;

const app = createFlowFunction(
  "flow-replies",
  "flow.replies",
  "Classify replies and act on them; sweep unhandled replies and due not-now follow-ups",
  z.object({
    reply_id: z.string().uuid().optional(),
    limit: z.number().int().min(1).max(200).optional(),
  }),
  async ({ input, log, continueLater }) => {
    const claude = anthropicFromEnv({ sql: db() });
    if (input.reply_id) {
      // a transient Claude failure throws: QStash retries this message with backoff
      const r = await processReply(input.reply_id, { claude });
      return { processed: r.status === "acted" ? 1 : 0, more: false, status: r.status, ...(r.status === "acted" ? { class: r.class } : {}) };
    }

    const followUps = await asService({ role: "service:replies", reason: "not-now follow-up due" }, (tx) => resumeDueFollowUps(tx));
    const limit = input.limit ?? SWEEP;
    const pending = await db()`
      select id from public.replies where acted_at is null
      order by received_at, id
      limit ${limit}`;
    let processed = 0;
    let deferred = 0;
    let failed = 0;
    for (const { id } of pending) {
      try {
        if ((await processReply(id as string, { claude })).status === "acted") processed++;
      } catch (err) {
        // one bad reply must not hold up the rest; it stays unhandled for the next sweep
        if (err instanceof ClassifyRetryableError) deferred++;
        else {
          failed++;
          log.error("reply not processed", { reply_id: id, error: err instanceof Error ? err.message : String(err) });
        }
      }
    }
    const more = pending.length === limit && deferred + failed < pending.length;
    if (more) await asService({ role: "service:replies" }, (tx) => continueLater(tx));
    return { processed, more, deferred, failed, follow_ups: followUps };
  },
);

export default app;
serveFunction(app);
