-- =====================================================================================
-- ICPs, the shared lead pool, campaigns and lead assignments.
-- A client user reaches a pool lead only through an assignment to their client (product.md §1);
-- raw provider payloads live outside lead_pool so the columns here are what a client may see.
-- =====================================================================================

-- -------------------------------------------------------------------------------------
-- ICPs (client_id null = the agency default ICP, used to score unassigned pool leads)
-- -------------------------------------------------------------------------------------
create table public.icps (
  id uuid primary key default gen_random_uuid(),
  client_id uuid references public.clients (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  target_titles text[] not null default '{}',
  industries text[] not null default '{}',
  adjacent_industries text[] not null default '{}',
  employee_min integer check (employee_min >= 0),
  employee_max integer check (employee_max >= 0),
  technologies text[] not null default '{}',
  hiring_roles text[] not null default '{}',
  buying_signals text[] not null default '{}',
  countries text[] not null default '{}',
  offer text,
  approved_at timestamptz,
  approved_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (employee_min is null or employee_max is null or employee_min <= employee_max)
);
comment on table public.icps is 'Ideal customer profiles: what a client targets, and what the ALS score is computed against.';
create index icps_client_id_idx on public.icps (client_id);
create trigger icps_touch before update on public.icps
  for each row execute function private.touch_updated_at();

-- -------------------------------------------------------------------------------------
-- The shared lead pool
-- -------------------------------------------------------------------------------------
create table public.lead_pool (
  id uuid primary key default gen_random_uuid(),
  email text,
  email_normalized text generated always as (lower(btrim(email))) stored,
  email_status text not null default 'unknown'
    check (email_status in ('unknown', 'verified', 'catch_all', 'invalid')),
  first_name text,
  last_name text,
  title text,
  company_name text,
  company_domain text,
  linkedin_url text,
  phone text,
  country text check (country is null or country ~ '^[A-Z]{2}$'),
  state text,
  city text,
  timezone text,
  industry text,
  employee_count integer check (employee_count is null or employee_count >= 0),
  source text not null default 'manual' check (source in ('manual', 'import', 'apollo', 'referral')),
  status text not null default 'new',
  status_changed_at timestamptz not null default now(),
  als_score integer check (als_score between 0 and 100),
  als_tier text check (als_tier in ('hot', 'warm', 'cool', 'cold', 'dead')),
  created_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.lead_pool is 'Every person the agency may contact, shared across clients. Status follows the pool state machine (status_transitions).';
create unique index lead_pool_email_normalized_key on public.lead_pool (email_normalized) where email_normalized is not null;
create index lead_pool_status_idx on public.lead_pool (status);
create index lead_pool_created_at_id_idx on public.lead_pool (created_at desc, id desc);
create trigger lead_pool_touch before update on public.lead_pool
  for each row execute function private.touch_updated_at();

-- -------------------------------------------------------------------------------------
-- Campaigns
-- -------------------------------------------------------------------------------------
create table public.campaigns (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.clients (id) on delete cascade,
  icp_id uuid references public.icps (id) on delete set null,
  name text not null check (length(name) between 1 and 200),
  status text not null default 'draft'
    check (status in ('draft', 'pending_approval', 'active', 'paused', 'completed', 'archived')),
  approved_at timestamptz,
  approved_by uuid references auth.users (id) on delete set null,
  created_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (id, client_id)
);
comment on table public.campaigns is 'A client''s outreach campaign: one ICP segment, one sequence of steps.';
create index campaigns_client_id_idx on public.campaigns (client_id);
create trigger campaigns_touch before update on public.campaigns
  for each row execute function private.touch_updated_at();

-- -------------------------------------------------------------------------------------
-- Lead assignments: a pool lead worked by one client's campaign
-- -------------------------------------------------------------------------------------
create table public.lead_assignments (
  id uuid primary key default gen_random_uuid(),
  lead_id uuid not null references public.lead_pool (id) on delete cascade,
  client_id uuid not null references public.clients (id) on delete cascade,
  campaign_id uuid,
  status text not null default 'assigned',
  status_changed_at timestamptz not null default now(),
  ended_at timestamptz,
  created_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- the campaign must belong to the same client; deleting a campaign keeps its assignments
  -- (they carry the exclusivity and cool-off history) and only detaches them
  foreign key (campaign_id, client_id) references public.campaigns (id, client_id) on delete set null (campaign_id)
);
comment on table public.lead_assignments is 'A lead worked by one client (optionally in one campaign). Status follows the assignment state machine; ended_at is set when it ends.';
comment on column public.lead_assignments.ended_at is 'When the assignment reached a status that ends the work (lifecycle_statuses.ends_work); starts the cool-off.';
-- Exclusivity: a lead is actively worked by at most one client at a time (product.md §1).
create unique index lead_assignments_one_active_per_lead on public.lead_assignments (lead_id) where ended_at is null;
create index lead_assignments_client_id_idx on public.lead_assignments (client_id, created_at desc, id desc);
create index lead_assignments_lead_id_idx on public.lead_assignments (lead_id, ended_at);
create index lead_assignments_campaign_id_idx on public.lead_assignments (campaign_id);
create trigger lead_assignments_touch before update on public.lead_assignments
  for each row execute function private.touch_updated_at();

-- -------------------------------------------------------------------------------------
-- Lead-visibility helpers
-- -------------------------------------------------------------------------------------
create or replace function private.my_lead_ids() returns setof uuid
language sql stable security definer
set search_path = ''
as $$
  select lead_id from public.lead_assignments where client_id in (select private.my_client_ids())
$$;
comment on function private.my_lead_ids() is 'Pool leads assigned (now or before) to a client the caller belongs to.';

create or replace function private.my_writable_lead_ids() returns setof uuid
language sql stable security definer
set search_path = ''
as $$
  select lead_id from public.lead_assignments
  where client_id in (select private.my_writable_client_ids()) and ended_at is null
$$;
comment on function private.my_writable_lead_ids() is 'Pool leads the caller may edit: actively assigned to a client where they write.';

revoke all on function private.my_lead_ids(), private.my_writable_lead_ids() from public;
grant execute on function private.my_lead_ids(), private.my_writable_lead_ids() to authenticated, service_role;

-- -------------------------------------------------------------------------------------
-- RLS
-- -------------------------------------------------------------------------------------
alter table public.icps enable row level security;
grant select, insert, update, delete on public.icps to authenticated;
create policy "members read their client's ICPs" on public.icps
  for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
create policy "writers create ICPs" on public.icps
  for insert to authenticated
  with check (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()));
create policy "writers update ICPs" on public.icps
  for update to authenticated
  using (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()))
  with check (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()));
create policy "writers delete ICPs" on public.icps
  for delete to authenticated
  using (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()));

alter table public.lead_pool enable row level security;
grant select, insert, delete on public.lead_pool to authenticated;
-- Client users may correct contact details, never status or score (those move through the pipeline).
grant update (email, first_name, last_name, title, company_name, company_domain, linkedin_url, phone,
  country, state, city, timezone) on public.lead_pool to authenticated;
create policy "members read leads assigned to their client" on public.lead_pool
  for select to authenticated
  using (id in (select private.my_lead_ids()) or (select private.is_platform_admin()));
create policy "admins add pool leads" on public.lead_pool
  for insert to authenticated with check ((select private.is_platform_admin()));
create policy "writers update their active leads" on public.lead_pool
  for update to authenticated
  using (id in (select private.my_writable_lead_ids()) or (select private.is_platform_admin()))
  with check (id in (select private.my_writable_lead_ids()) or (select private.is_platform_admin()));
create policy "admins delete pool leads" on public.lead_pool
  for delete to authenticated using ((select private.is_platform_admin()));

alter table public.campaigns enable row level security;
grant select, insert, update, delete on public.campaigns to authenticated;
create policy "members read their client's campaigns" on public.campaigns
  for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
create policy "writers create campaigns" on public.campaigns
  for insert to authenticated
  with check (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()));
create policy "writers update campaigns" on public.campaigns
  for update to authenticated
  using (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()))
  with check (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()));
create policy "writers delete campaigns" on public.campaigns
  for delete to authenticated
  using (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()));

alter table public.lead_assignments enable row level security;
grant select, insert, delete on public.lead_assignments to authenticated;
grant update (status, campaign_id) on public.lead_assignments to authenticated;
create policy "members read their client's assignments" on public.lead_assignments
  for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
-- Clients add leads through public.create_manual_lead, which checks membership itself; a direct
-- insert would let a client claim any pool lead by id.
create policy "admins assign leads" on public.lead_assignments
  for insert to authenticated with check ((select private.is_platform_admin()));
create policy "writers update their client's assignments" on public.lead_assignments
  for update to authenticated
  using (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()))
  with check (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()));
create policy "admins delete assignments" on public.lead_assignments
  for delete to authenticated using ((select private.is_platform_admin()));
