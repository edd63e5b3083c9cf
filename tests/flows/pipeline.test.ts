// The lead pipeline end to end on the local stack, driven by QStash: leads go new → enriching →
// enriched → scored → assigned through flow functions the QStash emulator invokes over HTTP,
// enriched by the sandbox providers; five pre-enriched leads land on hand-computed scores.
import { beforeAll, describe, expect, it } from "vitest";
import { asService, db } from "../../shared/db/client.ts";
import { kick } from "../../shared/flows/outbox.ts";
import { publishOutbox } from "../../shared/flows/outbox.ts";
import { getStack, unique } from "../helpers/stack.ts";
import { until } from "../helpers/until.ts";

const DAY = 86_400_000;
const ago = (days: number) => new Date(Date.now() - days * DAY).toISOString();

// The agency default ICP every pool lead is scored against (product.md §3).
const ICP = {
  target_titles: ["Head of Growth"],
  industries: ["software"],
  adjacent_industries: ["fintech"],
  employee_min: 51,
  employee_max: 500,
  technologies: ["hubspot", "salesforce", "segment"],
  hiring_roles: ["growth marketer"],
  buying_signals: ["expansion"],
  countries: ["AU"],
};

// Pre-enriched leads (fresh company data, verified email, LinkedIn profile found), so the
// waterfall has nothing left to fill and the score is the hand-computed one.
const TABLE = [
  {
    label: "A: target title, all intent, strong LinkedIn",
    lead: { title: "Head of Growth", country: "AU", linkedin_connections: 800, linkedin_active_at: ago(5), job_started_at: ago(20) },
    company: { industry: "software", employee_count: 120, technologies: ["hubspot", "salesforce", "segment"], hiring_roles: ["growth marketer"], hiring_seen_at: ago(10), last_funding_at: ago(30), signal_keywords: [] },
    // title 25 + industry 20 + size 15 + tech 15 + intent 15 (hiring, funding, job change) + linkedin 10 = 100
    score: 100, tier: "hot",
  },
  {
    label: "E: founder, one signal, some LinkedIn",
    lead: { title: "Founder", country: "AU", linkedin_connections: 200, linkedin_active_at: ago(10), job_started_at: ago(400) },
    company: { industry: "software", employee_count: 60, technologies: ["segment"], hiring_roles: [], hiring_seen_at: null, last_funding_at: null, signal_keywords: ["expansion"] },
    // 22 + 20 + 15 + 5 + 5 (buying signal) + 4 (found) + 3 (active) = 74
    score: 74, tier: "warm",
  },
  {
    label: "B: VP, adjacent industry, one band over",
    lead: { title: "VP Marketing", country: "AU", linkedin_connections: 100, linkedin_active_at: ago(90), job_started_at: null },
    company: { industry: "fintech", employee_count: 700, technologies: ["hubspot"], hiring_roles: [], hiring_seen_at: null, last_funding_at: ago(500), signal_keywords: [] },
    // 18 + 10 + 8 + 5 + 0 (funding too old) + 4 = 45
    score: 45, tier: "cool",
  },
  {
    label: "C: junior title, unknown company facts",
    lead: { title: "Marketing Coordinator", country: "AU", linkedin_connections: null, linkedin_active_at: null, job_started_at: null },
    company: { industry: null, employee_count: null, technologies: [], hiring_roles: [], hiring_seen_at: null, last_funding_at: null, signal_keywords: [] },
    // 4 (individual contributor) + 5 (unknown industry) + 5 (unknown size) + 4 (found) − 5 = 13
    score: 13, tier: "dead",
  },
  {
    label: "D: outside the ICP's countries",
    lead: { title: "Head of Growth", country: "US", linkedin_connections: 800, linkedin_active_at: ago(5), job_started_at: null },
    company: { industry: "software", employee_count: 120, technologies: [], hiring_roles: [], hiring_seen_at: null, last_funding_at: null, signal_keywords: [] },
    score: 0, tier: "dead", gate: "outside_countries",
  },
];

let clientId: string;

beforeAll(async () => {
  await getStack();
  const sql = db();
  await sql`update public.icps set is_agency_default = false where is_agency_default`;
  await sql`insert into public.icps ${sql({ ...ICP, name: "Agency default (pipeline test)", is_agency_default: true })}`;
  const [client] = await sql`insert into public.clients (slug, name, status, monthly_lead_quota) values (${unique("pipe")}, 'Pipeline', 'active', 1000) returning id`;
  clientId = client.id;
  const [icp] = await sql`insert into public.icps ${sql({ ...ICP, name: "Client ICP", client_id: client.id, approved_at: new Date() })} returning id`;
  await sql`insert into public.campaigns (client_id, icp_id, name, status, approved_at, daily_new_leads) values (${client.id}, ${icp.id}, 'Pipeline', 'active', now(), 500)`;
});


describe("the pipeline, driven by QStash", () => {
  it("takes new leads to scored and assigned, with the hand-computed scores", { timeout: 120_000 }, async () => {
    const sql = db();
    const ids: string[] = [];
    // pre-enriched leads
    for (const row of TABLE) {
      const domain = `${unique("pre")}.com.au`;
      await sql`insert into public.companies ${sql({ domain, ...row.company, enriched_at: new Date(), signals_checked_at: new Date() })}`;
      const [lead] = await sql`
        insert into public.lead_pool ${sql({
          email: `${unique("p")}@${domain}`, email_status: "verified", first_name: "Pat", last_name: "Lee",
          company_domain: domain, linkedin_url: `https://www.linkedin.com/in/${unique("pre")}`, linkedin_found: true,
          enriched_at: new Date(), source: "import", ...row.lead,
        })} returning id`;
      await sql`update public.lead_pool set linkedin_key = linkedin_url where id = ${lead.id}`;
      ids.push(lead.id);
    }
    // leads the sandbox providers enrich
    const fresh: string[] = [];
    for (let i = 0; i < 30; i++) {
      const [lead] = await sql`
        insert into public.lead_pool (email, first_name, last_name, company_name, company_domain, source)
        values (${`${unique("s")}@${unique("acme")}.com.au`}, 'Sam', ${`Sandbox${i}`}, 'Acme', null, 'import') returning id`;
      fresh.push(lead.id);
    }
    const all = [...ids, ...fresh];

    // one kick; the flows chain themselves through the outbox and QStash from here
    await asService({ role: "test" }, (tx) => kick(tx, "flow.enrichment"));
    await publishOutbox(sql);

    await until("every lead scored", async () => {
      const [r] = await sql`select count(*)::int as n from public.lead_pool where id = any(${all}::uuid[]) and status = 'scored'`;
      return r.n === all.length;
    }, 90_000);
    await until("every lead placed or given the reason it was not", async () => {
      const [r] = await sql`
        select count(*)::int as n from public.lead_pool l
        where l.id = any(${all}::uuid[])
          and (exists (select 1 from public.lead_assignments a where a.lead_id = l.id and a.ended_at is null)
               or exists (select 1 from public.lead_allocation la where la.lead_id = l.id))`;
      return r.n === all.length;
    }, 90_000);

    const scored = await sql`
      select l.id, l.als_score, l.als_tier, l.als_gate, a.client_id, la.reason
      from public.lead_pool l
      left join public.lead_assignments a on a.lead_id = l.id and a.ended_at is null
      left join public.lead_allocation la on la.lead_id = l.id
      where l.id = any(${ids}::uuid[])`;
    const byId = new Map(scored.map((r) => [r.id, r]));
    TABLE.forEach((row, i) => {
      const got = byId.get(ids[i])!;
      expect({ label: row.label, score: got.als_score, tier: got.als_tier, gate: got.als_gate })
        .toEqual({ label: row.label, score: row.score, tier: row.tier, gate: row.gate ?? null });
    });
    // allocation: fitting live leads go to the client's campaign; the others say why not — B is
    // scored (one band over earns size points) but 700 staff is outside the campaign ICP's range
    expect(byId.get(ids[0])!.client_id).toBe(clientId);
    expect(byId.get(ids[1])!.client_id).toBe(clientId);
    expect(byId.get(ids[2])!.reason).toBe("no_matching_campaign");
    expect(byId.get(ids[3])!.reason).toBe("below_min_tier");
    expect(byId.get(ids[4])!.reason).toBe("gated:outside_countries");

    // the sandbox-enriched leads: each went through Apollo (a provider_calls row), and each
    // scored lead is either assigned or carries the reason it was not
    const [{ n: calls }] = await sql`select count(distinct lead_id)::int as n from public.provider_calls where lead_id = any(${fresh}::uuid[]) and provider = 'apollo'`;
    expect(calls).toBe(fresh.length);
    const unplaced = await sql`
      select l.id from public.lead_pool l
      left join public.lead_assignments a on a.lead_id = l.id and a.ended_at is null
      left join public.lead_allocation la on la.lead_id = l.id
      where l.id = any(${fresh}::uuid[]) and a.id is null and la.reason is null`;
    expect(unplaced).toEqual([]);
    // the assignment was scored against the client's ICP
    const [assignment] = await sql`select als_score, als_components from public.lead_assignments where lead_id = ${ids[0]}`;
    expect(assignment.als_score).toBe(100);
  });
});
