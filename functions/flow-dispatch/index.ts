// Dispatch: one QStash message per dispatch batch recorded by the send gate. Withdraws what may no
// longer go (emergency pause, a reply or unsubscribe since), leases the due sends and hands each to
// its channel's provider. Sends still waiting (retries, LinkedIn pacing) bring the same batch back
// later. Redelivered or concurrent messages never send a message twice: sends are leased.
import { z } from "@hono/zod-openapi";
import { asService, db } from "../../shared/db/client.ts";
import { adaptersFromEnv, dispatchBatch } from "../../shared/engines/dispatch.ts";
import { createFlowFunction } from "../../shared/flows/flow-app.ts";
import { serveFunction } from "../../shared/http/serve.ts";

let adapters: ReturnType<typeof adaptersFromEnv> | undefined;

const app = createFlowFunction(
  "flow-dispatch",
  "flow.dispatch",
  "Send one dispatch batch through the channel providers",
  z.object({ batch_id: z.string().uuid() }),
  async ({ input, continueLater }) => {
    adapters ??= adaptersFromEnv();
    const result = await dispatchBatch(db(), input.batch_id, adapters);
    if (result.nextInSeconds !== null) {
      await asService({ role: "service:dispatch" }, (tx) => continueLater(tx, { batch_id: input.batch_id }, result.nextInSeconds!));
    }
    return { processed: result.claimed, more: result.nextInSeconds !== null, ...result };
  },
);

export default app;
serveFunction(app);
