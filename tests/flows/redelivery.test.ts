// Delivering a flow's message twice, or twice at once, changes nothing twice; a step that dies
// after claiming its batch loses nothing (its lease expires and the leads are claimed again).
import { Client } from "@upstash/qstash";
import { beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../../dev/stack.ts";
import { asService, db } from "../../shared/db/client.ts";
import { claimForEnrichment } from "../../shared/db/queries/enrichment.ts";
import { getStack, unique } from "../helpers/stack.ts";
import { until } from "../helpers/until.ts";

let stack: Stack;
let qstash: Client;
beforeAll(async () => {
  stack = await getStack();
  qstash = new Client({ baseUrl: `${stack.url}/qstash`, token: stack.secrets.qstashToken, enableTelemetry: false });
});


async function newLeads(n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const [r] = await db()`
      insert into public.lead_pool (email, first_name, last_name, source)
      values (${`${unique("r")}@${unique("redeliver")}.com.au`}, 'Red', ${`Eliver${i}`}, 'import') returning id`;
    ids.push(r.id);
  }
  return ids;
}

/** How many times each lead made each transition, from the audit trail. */
async function transitions(ids: string[]) {
  return db()`
    select entity_id, from_status, to_status, count(*)::int as n from public.events
    where entity_type = 'lead' and entity_id = any(${ids}::uuid[])
    group by entity_id, from_status, to_status`;
}

const url = (name: string) => `${stack.url}/functions/v1/${name}`;

describe("at-most-once effects under redelivery", () => {
  it("the same enrichment message delivered three times, two of them at once, enriches each lead once", async () => {
    const ids = await newLeads(6);
    const body = { limit: 200 };
    await Promise.all([
      qstash.publishJSON({ url: url("flow-enrichment"), body }),
      qstash.publishJSON({ url: url("flow-enrichment"), body }),
    ]);
    await qstash.publishJSON({ url: url("flow-enrichment"), body });
    await until("every lead enriched or scored", async () => {
      const [r] = await db()`select count(*)::int as n from public.lead_pool where id = any(${ids}::uuid[]) and status in ('enriched', 'scored')`;
      return r.n === ids.length;
    });
    const t = await transitions(ids);
    for (const id of ids) {
      const mine = t.filter((x) => x.entity_id === id);
      expect(mine.find((x) => x.from_status === "new" && x.to_status === "enriching")?.n).toBe(1);
      expect(mine.find((x) => x.from_status === "enriching" && x.to_status === "enriched")?.n).toBe(1);
    }
  });

  it("a step that dies after claiming loses nothing: the lease expires and the next tick finishes the leads", async () => {
    const ids = await newLeads(3);
    // a step claims the leads, then "crashes" before writing anything
    const claim = await asService({ role: "test" }, (tx) => claimForEnrichment(tx, 1000));
    expect(claim.leads.map((l) => l.id)).toEqual(expect.arrayContaining(ids));
    await db()`update public.lead_pool set enrichment_claimed_at = now() - interval '11 minutes' where id = any(${ids}::uuid[])`;
    await qstash.publishJSON({ url: url("flow-enrichment"), body: { limit: 200 } });
    await until("the abandoned leads enriched", async () => {
      const [r] = await db()`select count(*)::int as n from public.lead_pool where id = any(${ids}::uuid[]) and status in ('enriched', 'scored')`;
      return r.n === ids.length;
    });
    // the dead step's late write (its old claim token) changes nothing
    const { writeLeads } = await import("../../shared/db/queries/enrichment.ts");
    const late = await asService({ role: "test" }, (tx) => writeLeads(tx, claim, new Map(ids.map((id) => [id, { title: "Stale" }])), []));
    expect(late).toEqual({ enriched: 0, retrying: 0 });
    const titles = await db()`select title from public.lead_pool where id = any(${ids}::uuid[]) and title = 'Stale'`;
    expect(titles).toEqual([]);
  });

  it("a provider failing sends the lead back to new with a backoff and the error, and a later tick finishes it", async () => {
    const { ProviderError } = await import("../../shared/integrations/provider-http.ts");
    const { scout } = await import("../../shared/engines/scout.ts");
    const { writeLeads } = await import("../../shared/db/queries/enrichment.ts");
    const [lead] = await newLeads(1).then((ids) => ids);
    const claim = await asService({ role: "test" }, (tx) => claimForEnrichment(tx, 1000));
    const mine = { ...claim, leads: claim.leads.filter((l) => l.id === lead) };
    const down = () => {
      throw new ProviderError({ provider: "apollo", operation: "people/match", message: "503 after retries", retryable: true, code: "http", status: 503 });
    };
    const found = await scout({
      leads: mine.leads, companies: new Map(), signalKeywords: [], preScoreTiers: async () => new Map(),
    }, {
      apollo: { matchPerson: down, enrichOrganization: down, searchPeople: down, organizationJobPostings: down } as never,
      apify: { linkedinProfile: down } as never,
      serper: { search: down, news: down } as never,
      dataforseo: { domainTechnologies: down, googleNews: down } as never,
    });
    expect(found.failures[0]).toMatchObject({ leadId: lead, step: "apollo_person", retryable: true });
    const result = await asService({ role: "test" }, (tx) => writeLeads(tx, mine, found.leads, found.failures));
    expect(result).toEqual({ enriched: 0, retrying: 1 });
    const [row] = await db()`select status, enrichment_error, enrichment_attempts, next_enrichment_at > now() as later from public.lead_pool where id = ${lead}`;
    expect(row).toMatchObject({ status: "new", enrichment_attempts: 1, later: true });
    expect(row.enrichment_error).toContain("503");
    // due again: the real flow (sandbox providers up) finishes it
    await db()`update public.lead_pool set next_enrichment_at = now() where id = ${lead}`;
    await qstash.publishJSON({ url: url("flow-enrichment"), body: { limit: 200 } });
    await until("the lead enriched on retry", async () => {
      const [r] = await db()`select status, enrichment_error from public.lead_pool where id = ${lead}`;
      return ["enriched", "scored"].includes(r.status) && r.enrichment_error === null ? r : undefined;
    });
  });
});
