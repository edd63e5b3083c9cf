// Outreach tick (cron, and kicked by the timing flow): plans new assignments' sequences, then runs
// the send gate over one bounded batch of due steps. The gate records sends in dispatch batches (one QStash message per batch, published
// after commit) and a refusal for every step it holds back. Invoked by QStash.
import { z } from "@hono/zod-openapi";
import { asService } from "../../shared/db/client.ts";
import { completeSequences, planSequences, runSendGate } from "../../shared/engines/outreach.ts";
import { createFlowFunction } from "../../shared/flows/flow-app.ts";
import { kick } from "../../shared/flows/outbox.ts";
import { serveFunction } from "../../shared/http/serve.ts";

// one gate call over up to 25k due steps takes a few seconds of database time (bench/dispatch.ts)
const GATE_BATCH = 25_000;
const PLAN_BATCH = 1_000;

const app = createFlowFunction(
  "flow-outreach",
  "flow.outreach",
  "Plan sequences and pass due steps through the send gate",
  z.object({ limit: z.number().int().min(1).max(100_000).optional() }),
  async ({ input, continueLater }) => {
    const limit = input.limit ?? GATE_BATCH;
    const planned = await asService({ role: "service:outreach", reason: "sequence planned" }, async (tx) => {
      const n = await planSequences(tx, { limit: PLAN_BATCH });
      // new step runs need their messages written before they are due
      if (n > 0) await kick(tx, "flow.content");
      return n;
    });
    const gate = await asService({ role: "service:send-gate", reason: "send gate" }, async (tx) => {
      const summary = await runSendGate(tx, { limit });
      if (summary.claimed === limit || planned === PLAN_BATCH) await continueLater(tx);
      if ((summary.refused.content_pending ?? 0) > 0) await kick(tx, "flow.content");
      if ((summary.refused.dncr_unwashed ?? 0) > 0) await kick(tx, "flow.dncr");
      if ((summary.refused.holiday_calendar_missing ?? 0) > 0) await kick(tx, "flow.timing");
      return summary;
    });
    const completed = await asService({ role: "service:outreach", reason: "sequence finished" }, (tx) => completeSequences(tx));
    return { processed: gate.claimed, more: gate.claimed === limit, planned, completed, ...gate };
  },
);

export default app;
serveFunction(app);
