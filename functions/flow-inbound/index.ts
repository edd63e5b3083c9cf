// Inbound flow: applies stored provider webhook events (shared/engines/inbound.ts). The webhook
// functions queue 'flow.inbound' {event_ids} for each group of new events they store together
// (shared/webhooks/event-store.ts; {event_id} from earlier releases is still accepted); this
// applies those events once, each in its own savepoint, then sweeps a few older unprocessed ones
// whose message was lost or whose earlier try failed. A failure of one of the message's own events
// answers 500, so QStash retries the message with backoff; the events already applied are skipped
// on the retry. Invoked by QStash (a cron delivery with {} only sweeps).
import { z } from "@hono/zod-openapi";
import { processInboundEvents, sweepInboundEvents } from "../../shared/engines/inbound.ts";
import { createFlowFunction } from "../../shared/flows/flow-app.ts";
import { serveFunction } from "../../shared/http/serve.ts";

const EventId = z.coerce.number().int().positive();

const app = createFlowFunction(
  "flow-inbound",
  "flow.inbound",
  "Apply stored provider webhook events (statuses, replies, opt-outs, call outcomes, bookings)",
  z.object({
    event_ids: z.array(EventId).max(500).optional(),
    event_id: EventId.optional(),
    limit: z.number().int().min(1).max(500).optional(),
  }),
  async ({ input }) => {
    let processed = 0;
    const own = [...new Set([...(input.event_ids ?? []), ...(input.event_id ? [input.event_id] : [])])];
    if (own.length) {
      const outcomes = await processInboundEvents(own);
      const failed: string[] = [];
      for (const [id, out] of outcomes) {
        if (out.status === "processed") processed++;
        else if (out.status === "failed") failed.push(`${id}: ${out.error}`);
      }
      // a plain Error: whatever the cause, the answer is a 5xx and QStash delivers again
      if (failed.length) throw new Error(`webhook events not applied: ${failed.join("; ").slice(0, 1000)}`);
    }
    const swept = await sweepInboundEvents({ limit: input.limit ?? 25 });
    return { processed: processed + swept.processed, failed: swept.failed, more: swept.more };
  },
);

export default app;
serveFunction(app);
