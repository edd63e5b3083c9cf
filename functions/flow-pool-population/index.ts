// Pool population flow: pages through Apollo people search for an ICP, one page per step,
// adding new people to the pool (deduplicated on the Apollo person id); pauses at the agency's
// monthly credit budget and resumes from the page it reached. Invoked by QStash.
import { z } from "@hono/zod-openapi";
import { asService } from "../../shared/db/client.ts";
import * as q from "../../shared/db/queries/population.ts";
import { createApolloClient, type ApolloClient } from "../../shared/integrations/apollo.ts";
import { createFlowFunction } from "../../shared/flows/flow-app.ts";
import { kick } from "../../shared/flows/outbox.ts";
import { serveFunction } from "../../shared/http/serve.ts";

const PER_PAGE = 100;
// Apollo shows at most 50,000 records of a search (500 pages of 100).
const DISPLAY_CAP = 50_000;

let apollo: ApolloClient | undefined;

function employeeRange(min: number | null, max: number | null): string[] {
  return min === null && max === null ? [] : [`${min ?? 1},${max ?? 1_000_000}`];
}

const app = createFlowFunction(
  "flow-pool-population",
  "flow.pool-population",
  "Add people from Apollo search for an ICP to the pool",
  z.object({ run_id: z.string().uuid() }),
  async ({ input, continueLater }) => {
    apollo ??= createApolloClient();
    const actor = { role: "service:pool-population", reason: "Apollo people search" };
    // Read the run and check the budget, then search outside any transaction (a slow provider
    // must not hold a connection), then write the page with a compare-and-set on next_page so a
    // duplicate delivery that read the same page adds nothing twice.
    const plan = await asService(actor, async (tx) => {
      const run = await q.lockRun(tx, input.run_id);
      if (!run) return { skip: "not running or busy" } as const;
      const budget = await q.creditBudget(tx);
      if (budget.spent >= budget.budget) {
        await q.pauseRun(tx, run.id, "credit_budget_reached");
        return { skip: "credit_budget_reached" } as const;
      }
      const icp = await q.icpSearchFilters(tx, run.icp_id);
      if (!icp) {
        await q.pauseRun(tx, run.id, "icp_missing");
        return { skip: "icp_missing" } as const;
      }
      return { run, icp } as const;
    });
    if ("skip" in plan) return { processed: 0, more: false, skipped: plan.skip };
    const { run, icp } = plan;

    const page = await apollo.searchPeople({
      page: run.next_page,
      perPage: PER_PAGE,
      personTitles: icp.target_titles,
      organizationLocations: icp.countries,
      organizationNumEmployeesRanges: employeeRange(icp.employee_min, icp.employee_max),
    });

    return await asService(actor, async (tx) => {
      const last = Math.min(run.max_pages, Math.ceil(Math.min(page.totalEntries, DISPLAY_CAP) / PER_PAGE));
      const done = page.people.length === 0 || run.next_page >= last;
      const advanced = await q.advanceRun(tx, run.id, run.next_page, {
        nextPage: run.next_page + 1,
        totalEntries: page.totalEntries,
        seen: page.people.length,
        status: done ? "completed" : "running",
        stopReason: done ? "all_pages_read" : null,
      });
      if (!advanced) return { processed: 0, more: false, skipped: "page already taken" };
      const added = await q.addPeople(tx, page.people);
      await q.countAdded(tx, run.id, added);
      if (!done) await continueLater(tx, { run_id: run.id });
      if (added > 0) await kick(tx, "flow.enrichment");
      return { processed: page.people.length, added, page: run.next_page, more: !done };
    });
  },
);

export default app;
serveFunction(app);
