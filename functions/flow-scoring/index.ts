// Scoring flow: claims one bounded batch of leads to (re)score — newly enriched ones, and scored
// ones whose agency default ICP changed since — scores them set-based, then kicks allocation.
// Invoked by QStash.
import { z } from "@hono/zod-openapi";
import { asService } from "../../shared/db/client.ts";
import { rescorePool } from "../../shared/engines/scorer.ts";
import { createFlowFunction } from "../../shared/flows/flow-app.ts";
import { kick } from "../../shared/flows/outbox.ts";
import { serveFunction } from "../../shared/http/serve.ts";

const BATCH = 5_000;

const app = createFlowFunction(
  "flow-scoring",
  "flow.scoring",
  "Score enriched leads (ALS) and rescore after an ICP change",
  z.object({ limit: z.number().int().min(1).max(50_000).optional() }),
  async ({ input, continueLater }) =>
    await asService({ role: "service:scorer", reason: "ALS scored" }, async (tx) => {
      const limit = input.limit ?? BATCH;
      const claimed = await tx`
        select l.id from public.lead_pool l
        left join public.icps i on i.is_agency_default
        where l.status = 'enriched'
           or (l.status = 'scored' and i.id is not null
               and (l.scored_icp_id is distinct from i.id or l.scored_at < i.updated_at))
        order by l.id
        limit ${limit}
        for update of l skip locked`;
      if (claimed.length === 0) return { processed: 0, more: false };
      const { scored } = await rescorePool(tx, { leadIds: claimed.map((r) => r.id as string) });
      const more = claimed.length === limit;
      if (more) await continueLater(tx);
      await kick(tx, "flow.allocation");
      return { processed: scored, more };
    }),
);

export default app;
serveFunction(app);
