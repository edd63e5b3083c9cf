// Queries behind the enrichment flow: claim a batch with a lease, read what the scout needs,
// write its findings set-based, and release failures for a later retry. Run as the service.
import type { Tx } from "../client.ts";
import type { CompanyPatch, LeadPatch, ScoutCompany, ScoutLead, StepFailure } from "../../engines/scout.ts";

/** A lease: a lead claimed longer ago than this is presumed abandoned (the step died) and reclaimed. */
export const LEASE_MINUTES = 10;
export const MAX_ATTEMPTS = 5;

export interface Claim {
  token: Date;
  leads: ScoutLead[];
}

/**
 * Claims up to `limit` leads due for enrichment (new and due, or enriching with an expired
 * lease): SKIP LOCKED so concurrent ticks take disjoint leads; the claim time is the fencing
 * token every later write checks, so a step whose lease expired cannot overwrite a newer one.
 */
export async function claimForEnrichment(tx: Tx, limit: number): Promise<Claim> {
  const [{ token }] = await tx`select clock_timestamp() as token`;
  const rows = await tx`
    update public.lead_pool l
    set status = 'enriching', enrichment_claimed_at = ${token}, enrichment_attempts = l.enrichment_attempts + 1
    from (
      select id from public.lead_pool
      where (status = 'new' and next_enrichment_at <= now())
         or (status = 'enriching' and enrichment_claimed_at < now() - make_interval(mins => ${LEASE_MINUTES}))
      order by next_enrichment_at, id
      limit ${limit}
      for update skip locked
    ) due
    where l.id = due.id
    returning l.id, l.email, l.email_status, l.first_name, l.last_name, l.title, l.company_name, l.company_domain,
              l.linkedin_url, l.linkedin_key, l.country, l.apollo_person_id, l.linkedin_found, l.enriched_at`;
  return { token, leads: rows as unknown as ScoutLead[] };
}

export async function companiesFor(tx: Tx, domains: string[]): Promise<Map<string, ScoutCompany>> {
  if (domains.length === 0) return new Map();
  const rows = await tx`select domain, enriched_at, signals_checked_at from public.companies where domain = any(${domains})`;
  return new Map(rows.map((r) => [r.domain as string, r as unknown as ScoutCompany]));
}

/** Buying-signal keywords of every ICP in use, lower case: what the website step looks for. */
export async function signalKeywords(tx: Tx): Promise<string[]> {
  const rows = await tx`
    select distinct lower(k) as k from public.icps i, unnest(i.buying_signals) k
    where i.is_agency_default or exists (select 1 from public.campaigns c where c.icp_id = i.id and c.status = 'active')`;
  return rows.map((r) => r.k as string);
}

/** Upserts company findings: known values are kept where the scout learned nothing new. */
export async function writeCompanies(tx: Tx, companies: Map<string, CompanyPatch>): Promise<void> {
  if (companies.size === 0) return;
  const rows = [...companies].map(([domain, p]) => ({ domain, ...p }));
  await tx`
    insert into public.companies as c (domain, name, industry, employee_count, country, linkedin_url, technologies,
      hiring_roles, hiring_seen_at, last_funding_at, signal_keywords, website_status, apollo_organization_id,
      enriched_at, signals_checked_at)
    select p.domain, p.name, p.industry, p.employee_count, p.country, p.linkedin_url, coalesce(p.technologies, '{}'),
           coalesce(p.hiring_roles, '{}'), p.hiring_seen_at, p.last_funding_at, coalesce(p.signal_keywords, '{}'),
           coalesce(p.website_status, 'unknown'), p.apollo_organization_id,
           case when p.enriched then now() end, case when p.signals_checked then now() end
    from jsonb_to_recordset(${tx.json(rows as never)}) as p (domain text, name text, industry text, employee_count int,
      country text, linkedin_url text, technologies text[], hiring_roles text[], hiring_seen_at timestamptz,
      last_funding_at date, signal_keywords text[], website_status text, apollo_organization_id text,
      enriched boolean, signals_checked boolean)
    on conflict (domain) do update set
      name = coalesce(excluded.name, c.name),
      industry = coalesce(excluded.industry, c.industry),
      employee_count = coalesce(excluded.employee_count, c.employee_count),
      country = coalesce(excluded.country, c.country),
      linkedin_url = coalesce(excluded.linkedin_url, c.linkedin_url),
      technologies = case when cardinality(excluded.technologies) > 0 then excluded.technologies else c.technologies end,
      hiring_roles = case when excluded.hiring_seen_at is not null then excluded.hiring_roles else c.hiring_roles end,
      hiring_seen_at = coalesce(excluded.hiring_seen_at, c.hiring_seen_at),
      last_funding_at = coalesce(excluded.last_funding_at, c.last_funding_at),
      signal_keywords = case when excluded.signals_checked_at is not null then excluded.signal_keywords else c.signal_keywords end,
      website_status = case when excluded.website_status <> 'unknown' then excluded.website_status else c.website_status end,
      apollo_organization_id = coalesce(excluded.apollo_organization_id, c.apollo_organization_id),
      enriched_at = coalesce(excluded.enriched_at, c.enriched_at),
      signals_checked_at = coalesce(excluded.signals_checked_at, c.signals_checked_at)`;
}

const LEAD_PATCH_COLUMNS = `(id uuid, email text, email_status text, title text, seniority text, linkedin_url text,
  linkedin_key text, city text, state text, country text, company_name text, company_domain text, job_started_at date,
  apollo_person_id text, linkedin_found boolean, linkedin_connections int, linkedin_active_at timestamptz,
  retry boolean, error text)`;

/**
 * Writes the scout's findings for the claimed leads and moves them on: enriched, or back to new
 * with a backoff when a step failed in a way worth retrying (until MAX_ATTEMPTS, after which
 * the lead goes on with what is known). A dedup key another lead already holds is not taken.
 * Only rows still holding this claim's token are touched.
 */
export async function writeLeads(
  tx: Tx,
  claim: Claim,
  patches: Map<string, LeadPatch>,
  failures: StepFailure[],
): Promise<{ enriched: number; retrying: number }> {
  const failedDomains = new Map(failures.filter((f) => f.domain && f.retryable).map((f) => [f.domain!, f.message]));
  const seenKeys = new Set<string>();
  const rows = claim.leads.map((l) => {
    const p = { ...patches.get(l.id) };
    // two leads of one batch must not both take the same dedup key
    for (const k of ["email", "linkedin_key", "apollo_person_id"] as const) {
      const v = p[k];
      if (typeof v !== "string") continue;
      const key = `${k}:${v.toLowerCase()}`;
      if (seenKeys.has(key)) delete p[k];
      else seenKeys.add(key);
    }
    const own = failures.find((f) => f.leadId === l.id && f.retryable);
    const domain = p.company_domain ?? l.company_domain;
    const error = own?.message ?? (domain ? failedDomains.get(domain) : undefined);
    return { id: l.id, ...p, retry: !!error, error: error ?? null };
  });
  const result = await tx`
    update public.lead_pool l set
      email = case when p.email is null or exists (select 1 from public.lead_pool o where o.email_normalized = lower(btrim(p.email)) and o.id <> l.id)
                   then l.email else p.email end,
      email_status = coalesce(p.email_status, l.email_status),
      title = coalesce(p.title, l.title),
      seniority = coalesce(p.seniority, l.seniority),
      linkedin_url = case when p.linkedin_key is null or exists (select 1 from public.lead_pool o where o.linkedin_key = p.linkedin_key and o.id <> l.id)
                          then l.linkedin_url else p.linkedin_url end,
      linkedin_key = case when p.linkedin_key is null or exists (select 1 from public.lead_pool o where o.linkedin_key = p.linkedin_key and o.id <> l.id)
                          then l.linkedin_key else p.linkedin_key end,
      city = coalesce(p.city, l.city),
      state = coalesce(p.state, l.state),
      country = coalesce(p.country, l.country),
      company_name = coalesce(p.company_name, l.company_name),
      company_domain = coalesce(p.company_domain, l.company_domain),
      job_started_at = coalesce(p.job_started_at, l.job_started_at),
      apollo_person_id = case when p.apollo_person_id is null or exists (select 1 from public.lead_pool o where o.apollo_person_id = p.apollo_person_id and o.id <> l.id)
                              then l.apollo_person_id else p.apollo_person_id end,
      linkedin_found = coalesce(p.linkedin_found, l.linkedin_found),
      linkedin_connections = coalesce(p.linkedin_connections, l.linkedin_connections),
      linkedin_active_at = coalesce(p.linkedin_active_at, l.linkedin_active_at),
      status = case when p.retry and l.enrichment_attempts < ${MAX_ATTEMPTS} then 'new' else 'enriched' end,
      enriched_at = case when p.retry and l.enrichment_attempts < ${MAX_ATTEMPTS} then l.enriched_at else now() end,
      next_enrichment_at = case when p.retry
        then now() + least(interval '6 hours', make_interval(mins => power(2, l.enrichment_attempts)::int))
        else l.next_enrichment_at end,
      enrichment_error = p.error,
      enrichment_claimed_at = null
    from jsonb_to_recordset(${tx.json(rows as never)}) as p ${tx.unsafe(LEAD_PATCH_COLUMNS)}
    where l.id = p.id and l.status = 'enriching' and l.enrichment_claimed_at = ${claim.token}
    returning l.status`;
  const retrying = result.filter((r) => r.status === "new").length;
  return { enriched: result.length - retrying, retrying };
}
