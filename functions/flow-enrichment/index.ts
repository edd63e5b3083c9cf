// Enrichment flow (lead_enrichment): claims a bounded batch of leads with a lease, runs the
// scout's waterfall outside any transaction (provider calls are slow), then writes the findings
// and moves each lead to enriched — or back to new with a backoff when a provider failed, so a
// lead is never lost or half-written. Chains itself while leads are due and kicks scoring.
// Invoked by QStash.
import { z } from "@hono/zod-openapi";
import { asService, db } from "../../shared/db/client.ts";
import * as q from "../../shared/db/queries/enrichment.ts";
import { scout } from "../../shared/engines/scout.ts";
import { scoutClients } from "../../shared/engines/scout-clients.ts";
import { previewTiers } from "../../shared/engines/scout-prescore.ts";
import { createFlowFunction } from "../../shared/flows/flow-app.ts";
import { kick } from "../../shared/flows/outbox.ts";
import { serveFunction } from "../../shared/http/serve.ts";

// Small: every lead costs several provider calls, and one step must end well inside the
// Edge Runtime's wall-clock limit.
const BATCH = 25;

const app = createFlowFunction(
  "flow-enrichment",
  "flow.enrichment",
  "Enrich due pool leads through the Apollo/Apify/website waterfall",
  z.object({ limit: z.number().int().min(1).max(200).optional() }),
  async ({ input, continueLater, log }) => {
    const limit = input.limit ?? BATCH;
    const claim = await asService({ role: "service:scout" }, (tx) => q.claimForEnrichment(tx, limit));
    if (claim.leads.length === 0) return { processed: 0, more: false };

    const domains = [...new Set(claim.leads.map((l) => l.company_domain).filter((d): d is string => !!d))];
    const [companies, keywords] = await asService({ role: "service:scout" }, async (tx) =>
      [await q.companiesFor(tx, domains), await q.signalKeywords(tx)] as const);

    const found = await scout({
      leads: claim.leads,
      companies,
      signalKeywords: keywords,
      preScoreTiers: (leads, comps) => previewTiers(db(), claim, leads, comps),
    }, scoutClients());
    for (const f of found.failures) log.warn("enrichment step failed", { ...f });

    return await asService({ role: "service:scout", reason: "enriched" }, async (tx) => {
      await q.writeCompanies(tx, found.companies);
      const { enriched, retrying } = await q.writeLeads(tx, claim, found.leads, found.failures);
      const more = claim.leads.length === limit;
      if (more) await continueLater(tx);
      if (enriched > 0) await kick(tx, "flow.scoring");
      return { processed: claim.leads.length, enriched, retrying, steps: found.steps, more };
    });
  },
);

export default app;
serveFunction(app);
