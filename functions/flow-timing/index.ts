// Timing facts tick (cron, and kicked by allocation and the gate): loads the public-holiday
// calendars the gate needs (date-holidays) and resolves the time zone and holiday region of leads
// about to be planned, then kicks the outreach flow. Invoked by QStash.
import { z } from "@hono/zod-openapi";
import { asService, db } from "../../shared/db/client.ts";
import { ensureHolidayCalendars, resolveLeadTimezones } from "../../shared/engines/timing-facts.ts";
import { createFlowFunction } from "../../shared/flows/flow-app.ts";
import { kick } from "../../shared/flows/outbox.ts";
import { serveFunction } from "../../shared/http/serve.ts";

const BATCH = 2_000;

const app = createFlowFunction(
  "flow-timing",
  "flow.timing",
  "Load holiday calendars and resolve recipients' time zones",
  z.object({}),
  async ({ continueLater }) => {
    const calendars = await ensureHolidayCalendars(db());
    const resolved = await asService({ role: "service:timing", reason: "time zone resolved" }, async (tx) => {
      const n = await resolveLeadTimezones(tx, BATCH);
      if (n === BATCH) await continueLater(tx);
      if (n > 0 || calendars > 0) await kick(tx, "flow.outreach");
      return n;
    });
    return { processed: resolved, more: resolved === BATCH, calendars, resolved };
  },
);

export default app;
serveFunction(app);
