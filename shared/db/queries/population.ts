// Queries behind the pool population flow (Apollo people search → new pool leads).
import type { Tx } from "../client.ts";
import type { ApolloSearchPerson } from "../../integrations/apollo.ts";

export interface PopulationRun {
  id: string;
  icp_id: string;
  next_page: number;
  max_pages: number;
  people_seen: number;
  people_added: number;
}

/** The run, locked for this read; null when it is not running or another step holds it (SKIP LOCKED). */
export async function lockRun(tx: Tx, runId: string): Promise<PopulationRun | null> {
  const [run] = await tx`
    select id, icp_id, next_page, max_pages, people_seen, people_added from public.pool_population_runs
    where id = ${runId} and status = 'running'
    for update skip locked`;
  return (run as unknown as PopulationRun) ?? null;
}

export async function icpSearchFilters(tx: Tx, icpId: string) {
  const [icp] = await tx`select target_titles, countries, employee_min, employee_max, industries from public.icps where id = ${icpId}`;
  return icp as { target_titles: string[]; countries: string[]; employee_min: number | null; employee_max: number | null; industries: string[] } | undefined;
}

/** Credits spent on providers this calendar month against the agency's monthly budget. */
export async function creditBudget(tx: Tx): Promise<{ spent: number; budget: number }> {
  const [row] = await tx`
    select coalesce((select sum(credits) from public.provider_calls where created_at >= date_trunc('month', now())), 0)::float8 as spent,
           monthly_enrichment_credit_budget as budget
    from public.agency_settings where id`;
  return { spent: Number(row.spent), budget: Number(row.budget) };
}

/** Adds the people not already in the pool (deduplicated on the Apollo person id); returns how many. */
export async function addPeople(tx: Tx, people: ApolloSearchPerson[]): Promise<number> {
  if (people.length === 0) return 0;
  const rows = people.map((p) => ({
    apollo_person_id: p.id,
    first_name: p.firstName,
    title: p.title,
    company_name: p.organization?.name ?? null,
    company_domain: p.organization?.primaryDomain?.toLowerCase() ?? null,
  }));
  const inserted = await tx`
    insert into public.lead_pool (apollo_person_id, first_name, title, company_name, company_domain, source)
    select p.apollo_person_id, p.first_name, p.title, p.company_name, p.company_domain, 'apollo'
    from jsonb_to_recordset(${tx.json(rows as never)}) as p (apollo_person_id text, first_name text, title text,
      company_name text, company_domain text)
    on conflict do nothing
    returning id`;
  return inserted.length;
}

/** Moves the run past `page` if no other step did already (compare-and-set); false when one did. */
export async function advanceRun(
  tx: Tx,
  runId: string,
  page: number,
  change: { nextPage: number; totalEntries: number; seen: number; status: string; stopReason: string | null },
): Promise<boolean> {
  const rows = await tx`
    update public.pool_population_runs set
      next_page = ${change.nextPage}, total_entries = ${change.totalEntries},
      people_seen = people_seen + ${change.seen},
      status = ${change.status}, stop_reason = ${change.stopReason},
      finished_at = case when ${change.status} = 'completed' then now() end
    where id = ${runId} and next_page = ${page} and status = 'running'
    returning id`;
  return rows.length === 1;
}

export async function countAdded(tx: Tx, runId: string, added: number): Promise<void> {
  await tx`update public.pool_population_runs set people_added = people_added + ${added} where id = ${runId}`;
}

export async function pauseRun(tx: Tx, runId: string, reason: string): Promise<void> {
  await tx`update public.pool_population_runs set status = 'paused', stop_reason = ${reason} where id = ${runId}`;
}
