// pool_assignment flow: one bounded batch of scored leads placed into client campaigns by the
// allocator, then the new assignments scored against their client's ICP. Invoked by QStash.
import { z } from "@hono/zod-openapi";
import { asService } from "../../shared/db/client.ts";
import { allocate, ALLOCATION_BATCH } from "../../shared/engines/allocator.ts";
import { rescoreAssignments } from "../../shared/engines/scorer.ts";
import { createFlowFunction } from "../../shared/flows/flow-app.ts";
import { kick } from "../../shared/flows/outbox.ts";
import { serveFunction } from "../../shared/http/serve.ts";

const app = createFlowFunction(
  "flow-allocation",
  "flow.allocation",
  "Assign scored pool leads to client campaigns",
  z.object({ limit: z.number().int().min(1).max(20_000).optional() }),
  async ({ input, continueLater }) =>
    await asService({ role: "service:allocator", reason: "allocated by ICP fit" }, async (tx) => {
      const limit = input.limit ?? ALLOCATION_BATCH;
      const result = await allocate(tx, { limit });
      if (!result) {
        // another allocator holds the lock and may have claimed before the newest leads were
        // scored: look again shortly rather than leave them to the cron tick
        await continueLater(tx, undefined, 5);
        return { processed: 0, more: true, busy: true };
      }
      if (result.assignmentIds.length > 0) {
        await rescoreAssignments(tx, { assignmentIds: result.assignmentIds });
        // new assignments: resolve their zones, then plan their sequences, without waiting for cron
        await kick(tx, "flow.timing");
      }
      const more = result.considered === limit;
      if (more) await continueLater(tx);
      return { processed: result.considered, assigned: result.assigned, unassigned: result.unassigned, more };
    }),
);

export default app;
serveFunction(app);
