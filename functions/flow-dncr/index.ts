// DNCR wash tick: washes the numbers the send gate is holding calls and texts for (kicked by the
// outreach flow, and on cron to recover timed-out washes). Invoked by QStash.
import { z } from "@hono/zod-openapi";
import { asService, db } from "../../shared/db/client.ts";
import { washRequestedNumbers } from "../../shared/engines/dncr-wash.ts";
import { dncrFromEnv } from "../../shared/integrations/dncr.ts";
import { createFlowFunction } from "../../shared/flows/flow-app.ts";
import { kick } from "../../shared/flows/outbox.ts";
import { serveFunction } from "../../shared/http/serve.ts";

const app = createFlowFunction(
  "flow-dncr",
  "flow.dncr",
  "Wash Australian numbers against the Do Not Call Register",
  z.object({}),
  async () => {
    const result = await washRequestedNumbers(db(), dncrFromEnv());
    // fresh washes release held steps: let the gate look again now rather than in 30 minutes
    if (result.washed + result.recovered > 0) {
      await asService({ role: "service:dncr" }, async (tx) => {
        await tx`update public.step_runs set due_at = now()
                 where status = 'scheduled' and last_refusal = 'dncr_unwashed' and due_at > now()`;
        await kick(tx, "flow.outreach");
      });
    }
    return { processed: result.washed + result.recovered, more: false, ...result };
  },
);

export default app;
serveFunction(app);
