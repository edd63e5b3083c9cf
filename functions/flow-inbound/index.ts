// Inbound flow: applies stored provider webhook events (shared/engines/inbound.ts). Each webhook
// function queues 'flow.inbound' {event_id} when it stores a new event; this applies that event
// once, then sweeps a few older unprocessed ones whose message was lost or whose earlier try
// failed. A failure of the message's own event answers 500, so QStash retries it with backoff.
// Invoked by QStash (a cron delivery with {} only sweeps).
import { z } from "@hono/zod-openapi";
import { processInboundEvent, sweepInboundEvents } from "../../shared/engines/inbound.ts";
import { createFlowFunction } from "../../shared/flows/flow-app.ts";
import { serveFunction } from "../../shared/http/serve.ts";

const app = createFlowFunction(
  "flow-inbound",
  "flow.inbound",
  "Apply stored provider webhook events (statuses, replies, opt-outs, call outcomes, bookings)",
  z.object({
    event_id: z.coerce.number().int().positive().optional(),
    limit: z.number().int().min(1).max(500).optional(),
  }),
  async ({ input }) => {
    let processed = 0;
    if (input.event_id) {
      const out = await processInboundEvent(input.event_id);
      // a plain Error: whatever the cause, the answer is a 5xx and QStash delivers again
      if (out.status === "failed") throw new Error(`webhook event ${input.event_id} not applied: ${out.error}`);
      if (out.status === "processed") processed++;
    }
    const swept = await sweepInboundEvents({ limit: input.limit ?? 25 });
    return { processed: processed + swept.processed, failed: swept.failed, more: swept.more };
  },
);

export default app;
serveFunction(app);
