-- =====================================================================================
-- The lead pipeline (product.md §3–4): companies, enrichment and score fields on the pool,
-- imports and their per-row report, provider calls (credits), suppressions, Apollo pool
-- population runs, and what the allocator needs. All of it is agency data: admins only.
-- =====================================================================================

-- -------------------------------------------------------------------------------------
-- Companies: company data is keyed by domain and never cached under a person
-- -------------------------------------------------------------------------------------
create table public.companies (
  domain text primary key check (domain = lower(domain) and domain ~ '^[a-z0-9.-]+\.[a-z]{2,63}$'),
  name text,
  industry text,
  employee_count integer check (employee_count is null or employee_count >= 0),
  country text check (country is null or country ~ '^[A-Z]{2}$'),
  linkedin_url text,
  technologies text[] not null default '{}',
  hiring_roles text[] not null default '{}',
  hiring_seen_at timestamptz,
  last_funding_at date,
  signal_keywords text[] not null default '{}',
  website_status text not null default 'unknown'
    check (website_status in ('unknown', 'ok', 'parked', 'placeholder', 'unreachable')),
  apollo_organization_id text,
  enriched_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.companies is 'Company facts by domain (Apollo organisation, website signals, technologies, hiring, funding). Scoring joins leads to it.';
comment on column public.companies.signal_keywords is 'Buying-signal keywords found on the company site or in news (lower case).';
create trigger companies_touch before update on public.companies
  for each row execute function private.touch_updated_at();

-- -------------------------------------------------------------------------------------
-- Pool lead: dedup keys, enrichment and score components
-- -------------------------------------------------------------------------------------
alter table public.lead_pool
  add column linkedin_key text,
  add column phone_e164 text check (phone_e164 is null or phone_e164 ~ '^\+[1-9][0-9]{6,14}$'),
  add column phone_country text check (phone_country is null or phone_country ~ '^[A-Z]{2}$'),
  add column apollo_person_id text,
  add column seniority text,
  add column job_started_at date,
  add column linkedin_found boolean not null default false,
  add column linkedin_connections integer,
  add column linkedin_active_at timestamptz,
  add column import_id uuid,
  add column enrichment_attempts integer not null default 0,
  add column enrichment_claimed_at timestamptz,
  add column next_enrichment_at timestamptz not null default now(),
  add column enrichment_error text,
  add column enriched_at timestamptz,
  add column als_title smallint,
  add column als_industry smallint,
  add column als_size smallint,
  add column als_tech smallint,
  add column als_intent smallint,
  add column als_linkedin smallint,
  add column als_deduction smallint,
  add column als_gate text,
  add column scored_at timestamptz,
  add column scored_icp_id uuid,
  add column unassigned_reason text,
  add column allocation_checked_at timestamptz;
comment on column public.lead_pool.linkedin_key is 'Normalised LinkedIn profile URL (https://www.linkedin.com/in/<slug>), a dedup key.';
comment on column public.lead_pool.als_gate is 'Why the lead is Dead regardless of points (no_channel, suppressed, competitor, outside_countries), else null.';
comment on column public.lead_pool.unassigned_reason is 'Why the allocator did not assign this scored lead at its last pass.';
create unique index lead_pool_linkedin_key_key on public.lead_pool (linkedin_key) where linkedin_key is not null;
create unique index lead_pool_phone_e164_key on public.lead_pool (phone_e164) where phone_e164 is not null;
create unique index lead_pool_apollo_person_id_key on public.lead_pool (apollo_person_id) where apollo_person_id is not null;
create index lead_pool_company_domain_idx on public.lead_pool (company_domain);
create index lead_pool_enrichment_due_idx on public.lead_pool (next_enrichment_at) where status in ('new', 'enriching');
create index lead_pool_scored_unassigned_idx on public.lead_pool (als_score desc) where status = 'scored';
create index lead_pool_import_id_idx on public.lead_pool (import_id);

alter table public.lead_assignments
  add column als_score smallint check (als_score between 0 and 100),
  add column als_tier text check (als_tier in ('hot', 'warm', 'cool', 'cold', 'dead')),
  add column als_components jsonb,
  add column scored_at timestamptz;
comment on column public.lead_assignments.als_score is 'The ALS against the assigned client''s ICP (the pool''s own score uses the agency default ICP).';

alter table public.icps add column is_agency_default boolean not null default false;
create unique index icps_one_agency_default on public.icps (is_agency_default) where is_agency_default;
comment on column public.icps.is_agency_default is 'The ICP unassigned pool leads are scored against (client_id null).';

alter table public.campaigns
  add column daily_new_leads integer not null default 50 check (daily_new_leads >= 0),
  add column allocation_priority integer not null default 0;
comment on column public.campaigns.daily_new_leads is 'How many new leads a day the campaign can start (its sending capacity for new leads).';

alter table public.agency_settings
  add column monthly_enrichment_credit_budget integer not null default 10000 check (monthly_enrichment_credit_budget >= 0),
  add column min_allocation_tier text not null default 'cold' check (min_allocation_tier in ('hot', 'warm', 'cool', 'cold'));

-- -------------------------------------------------------------------------------------
-- Suppressions: global (client_id null) or per client, by email, domain, phone or LinkedIn
-- -------------------------------------------------------------------------------------
create table public.suppressions (
  id uuid primary key default gen_random_uuid(),
  client_id uuid references public.clients (id) on delete cascade,
  kind text not null check (kind in ('email', 'domain', 'phone', 'linkedin')),
  value text not null check (value = lower(value) or kind = 'phone'),
  reason text not null,
  source text,
  created_at timestamptz not null default now()
);
comment on table public.suppressions is 'Never contact: global rows (client_id null) apply to every client. Values are normalised like the pool''s dedup keys.';
create unique index suppressions_scope_kind_value_key
  on public.suppressions (coalesce(client_id, '00000000-0000-0000-0000-000000000000'::uuid), kind, value);
create index suppressions_kind_value_idx on public.suppressions (kind, value);
alter table public.suppressions enable row level security;
grant select, insert, delete on public.suppressions to authenticated;
create policy "members read their client's and global suppressions" on public.suppressions
  for select to authenticated
  using (client_id in (select private.my_client_ids()) or client_id is null or (select private.is_platform_admin()));
create policy "writers add their client's suppressions" on public.suppressions
  for insert to authenticated
  with check (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()));
create policy "admins remove suppressions" on public.suppressions
  for delete to authenticated using ((select private.is_platform_admin()));

-- -------------------------------------------------------------------------------------
-- Imports and their per-row report
-- -------------------------------------------------------------------------------------
create table public.pool_imports (
  id uuid primary key default gen_random_uuid(),
  created_by uuid,
  format text not null check (format in ('csv', 'json')),
  filename text,
  content_sha256 text,
  status text not null default 'running' check (status in ('running', 'completed', 'failed')),
  rows_seen integer not null default 0,
  accepted integer not null default 0,
  duplicates integer not null default 0,
  rejected integer not null default 0,
  error text,
  started_at timestamptz not null default now(),
  finished_at timestamptz
);
comment on table public.pool_imports is 'One CSV/JSON import into the pool: progress counters while it runs, totals when done.';

create table public.pool_import_rows (
  import_id uuid not null references public.pool_imports (id) on delete cascade,
  row_number integer not null,
  outcome text not null check (outcome in ('accepted', 'duplicate', 'rejected')),
  lead_id uuid,
  reason text,
  field text,
  primary key (import_id, row_number)
);
comment on table public.pool_import_rows is 'The import report: every row accepted (lead_id), duplicate (lead_id of the existing lead, reason names the key) or rejected (reason and field).';

-- -------------------------------------------------------------------------------------
-- Provider calls: every paid or rate-limited call, with credits, for budgets and reports
-- -------------------------------------------------------------------------------------
create table public.provider_calls (
  id bigint generated always as identity primary key,
  provider text not null,
  operation text not null,
  cache_key text,
  cached boolean not null default false,
  status integer,
  credits numeric(10, 2) not null default 0,
  cost_cents numeric(12, 4) not null default 0,
  duration_ms integer,
  lead_id uuid,
  client_id uuid,
  error text,
  created_at timestamptz not null default now()
);
comment on table public.provider_calls is 'One row per provider call (or cache hit): credits and cost per call, lead and client, for budgets and cost-per-lead reports.';
create index provider_calls_created_at_idx on public.provider_calls (created_at);
create index provider_calls_lead_id_idx on public.provider_calls (lead_id);

-- -------------------------------------------------------------------------------------
-- Apollo pool population runs (resumable)
-- -------------------------------------------------------------------------------------
create table public.pool_population_runs (
  id uuid primary key default gen_random_uuid(),
  icp_id uuid not null references public.icps (id) on delete cascade,
  status text not null default 'running' check (status in ('running', 'paused', 'completed', 'failed')),
  next_page integer not null default 1,
  max_pages integer not null default 500 check (max_pages between 1 and 500),
  total_entries integer,
  people_seen integer not null default 0,
  people_added integer not null default 0,
  stop_reason text,
  started_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz
);
comment on table public.pool_population_runs is 'Paging through Apollo people search for an ICP: next_page is where a resumed run continues.';
create trigger pool_population_runs_touch before update on public.pool_population_runs
  for each row execute function private.touch_updated_at();

-- -------------------------------------------------------------------------------------
-- RLS: agency data, admins only (the pipeline runs as the service)
-- -------------------------------------------------------------------------------------
alter table public.companies enable row level security;
alter table public.pool_imports enable row level security;
alter table public.pool_import_rows enable row level security;
alter table public.provider_calls enable row level security;
alter table public.pool_population_runs enable row level security;
grant select on public.companies, public.pool_imports, public.pool_import_rows, public.provider_calls,
  public.pool_population_runs to authenticated;
create policy "admins read companies" on public.companies
  for select to authenticated using ((select private.is_platform_admin()));
create policy "admins read imports" on public.pool_imports
  for select to authenticated using ((select private.is_platform_admin()));
create policy "admins read import reports" on public.pool_import_rows
  for select to authenticated using ((select private.is_platform_admin()));
create policy "admins read provider calls" on public.provider_calls
  for select to authenticated using ((select private.is_platform_admin()));
create policy "admins read population runs" on public.pool_population_runs
  for select to authenticated using ((select private.is_platform_admin()));
