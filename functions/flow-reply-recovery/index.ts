// Reply-recovery flow (product.md §7): on a cron tick, polls Salesforge threads and Unipile chats
// for replies no webhook delivered and queues them for classification like any other reply
// (shared/engines/reply-recovery.ts). One bounded pass per tick; when the bounds cut a pass short it
// queues itself again. A provider that is not configured here is skipped.
import { z } from "@hono/zod-openapi";
import { asService, db } from "../../shared/db/client.ts";
import { recoverReplies } from "../../shared/engines/reply-recovery.ts";
import { createFlowFunction } from "../../shared/flows/flow-app.ts";
import { readEnv } from "../../shared/config/env.ts";
import { PROVIDERS } from "../../shared/config/providers.ts";
import { createSalesforgeClient } from "../../shared/integrations/salesforge.ts";
import { createUnipileClient } from "../../shared/integrations/unipile.ts";
import { serveFunction } from "../../shared/http/serve.ts";

/** A provider is polled only when its base URL or key is set (a sandbox counts). */
function configured(name: "salesforge" | "unipile"): boolean {
  return !!(readEnv(PROVIDERS[name].key)?.trim() || readEnv(PROVIDERS[name].baseUrl)?.trim());
}

const app = createFlowFunction(
  "flow-reply-recovery",
  "flow.reply-recovery",
  "Poll Salesforge and Unipile for replies no webhook delivered, and queue them for classification",
  z.object({
    thread_reads: z.number().int().min(1).max(500).optional(),
    chat_reads: z.number().int().min(1).max(500).optional(),
  }),
  async ({ input, log, continueLater }) => {
    const sql = db();
    const result = await recoverReplies({
      salesforge: configured("salesforge") ? createSalesforgeClient({ sql }) : null,
      unipile: configured("unipile") ? createUnipileClient({ sql }) : null,
      limits: {
        ...(input.thread_reads ? { threadReads: input.thread_reads } : {}),
        ...(input.chat_reads ? { chatReads: input.chat_reads } : {}),
      },
    });
    if (result.recovered) log.info("replies recovered", { recovered: result.recovered });
    // a pass cut short goes on a minute later rather than waiting for the next cron tick
    if (result.more) await asService({ role: "service:reply-recovery" }, (tx) => continueLater(tx, undefined, 60));
    return {
      processed: result.recovered,
      more: result.more,
      sources: result.sources.map((s) => ({ source: s.source, read: s.read, recovered: s.recovered, ...(s.error ? { error: s.error } : {}) })),
    };
  },
);

export default app;
serveFunction(app);
