// Content tick: writes the messages of steps due within a day, by the lead's tier (Claude for
// Hot/Warm/Cool, templates for Cold and whenever Claude is not configured), with tokens and cost
// recorded per step. With Claude configured, Warm and Cool steps due in 6–48 hours are
// pre-generated through the Message Batches API (half price) and collected by later ticks.
// Invoked by QStash (cron and kicks from the outreach flow).
import { z } from "@hono/zod-openapi";
import { writeDueContent } from "../../shared/engines/step-content.ts";
import { serperSearch } from "../../shared/engines/content.ts";
import { anthropicFromEnv } from "../../shared/integrations/anthropic.ts";
import { createSerperClient } from "../../shared/integrations/serper.ts";
import { createFlowFunction } from "../../shared/flows/flow-app.ts";
import { serveFunction } from "../../shared/http/serve.ts";
import { asService, db } from "../../shared/db/client.ts";

const app = createFlowFunction(
  "flow-content",
  "flow.content",
  "Write the messages of steps due soon (Claude by tier, templates without it)",
  z.object({ limit: z.number().int().min(1).max(500).optional() }),
  async ({ input, continueLater }) => {
    const anthropic = anthropicFromEnv();
    const result = await writeDueContent(db(), {
      limit: input.limit ?? 25,
      anthropic,
      search: anthropic ? serperSearch(createSerperClient()) : undefined,
      batch: anthropic ? {} : false,
    });
    // `more` is work ready now; a batch still running is not (the cron tick polls it), so it
    // never chains a tick straight after this one.
    if (result.more) await asService({ role: "service:content" }, (tx) => continueLater(tx));
    return { processed: result.written + result.skipped, claude: anthropic !== null, ...result };
  },
);

export default app;
serveFunction(app);
