// The pre-enrichment score the waterfall needs before its LinkedIn step (product.md §4: Apify
// only for leads at least Cool): what the Apollo steps found is written in a transaction, the
// real scorer scores it, and the transaction is rolled back — one scoring rule, no copy of it.
import type { Sql } from "../db/client.ts";
import { writeCompanies, writeLeads, type Claim } from "../db/queries/enrichment.ts";
import { rescorePool } from "./scorer.ts";
import type { CompanyPatch, LeadPatch } from "./scout.ts";

class Preview extends Error {}

export async function previewTiers(
  sql: Sql,
  claim: Claim,
  leads: Map<string, LeadPatch>,
  companies: Map<string, CompanyPatch>,
): Promise<Map<string, string>> {
  const tiers = new Map<string, string>();
  const ids = claim.leads.map((l) => l.id);
  try {
    await sql.begin(async (tx) => {
      await writeCompanies(tx, companies);
      await writeLeads(tx, claim, leads, []);
      await rescorePool(tx, { leadIds: ids });
      const rows = await tx`select id, als_tier from public.lead_pool where id = any(${ids}::uuid[])`;
      for (const r of rows) tiers.set(r.id as string, r.als_tier as string);
      throw new Preview();
    });
  } catch (err) {
    if (!(err instanceof Preview)) throw err;
  }
  return tiers;
}
