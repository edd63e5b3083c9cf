// Publishes committed outbox rows to QStash (cron every minute, and right after flows commit),
// each with its deduplication id. Invoked by QStash.
import { z } from "@hono/zod-openapi";
import { db } from "../../shared/db/client.ts";
import { createFlowFunction } from "../../shared/flows/flow-app.ts";
import { publishOutbox } from "../../shared/flows/outbox.ts";
import { serveFunction } from "../../shared/http/serve.ts";

const BATCH = 200;

const app = createFlowFunction("outbox-publisher", "flow.outbox", "Publish the outbox to QStash", z.object({}), async () => {
  let published = 0;
  let skipped = 0;
  // a few batches per tick, bounded, so one delivery never runs long
  for (let i = 0; i < 10; i++) {
    const r = await publishOutbox(db(), BATCH);
    published += r.published;
    skipped += r.skipped;
    if (r.published < BATCH) return { processed: published, skipped, more: false };
  }
  return { processed: published, skipped, more: true };
});

export default app;
serveFunction(app);
