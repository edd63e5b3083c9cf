-- =====================================================================================
-- Tenancy: clients (the agency's customers), their members, platform admins, and the
-- security-definer helpers every row-level-security policy tests against.
-- Product rules: ../shared/spec/product.md §1. Policy form: `col in (select private.fn())`,
-- evaluated once per statement, never a per-row function call or a join back.
-- =====================================================================================

create schema if not exists private;
comment on schema private is 'Helpers for RLS policies and triggers. Not exposed through the API.';
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- -------------------------------------------------------------------------------------
-- updated_at, shared by every table that has one
-- -------------------------------------------------------------------------------------
create or replace function private.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;
comment on function private.touch_updated_at() is 'BEFORE UPDATE trigger: stamps updated_at.';

-- -------------------------------------------------------------------------------------
-- Agency-wide settings (one row)
-- -------------------------------------------------------------------------------------
create table public.agency_settings (
  id boolean primary key default true check (id),
  name text not null default 'Agency',
  cooloff_days integer not null default 90 check (cooloff_days between 0 and 3650),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.agency_settings is 'Single row of agency-wide settings, e.g. the exclusivity cool-off after an assignment ends.';
comment on column public.agency_settings.cooloff_days is 'Days after an assignment ends before the lead can go to another client (product.md §1).';
insert into public.agency_settings (id) values (true) on conflict do nothing;
create trigger agency_settings_touch before update on public.agency_settings
  for each row execute function private.touch_updated_at();

-- -------------------------------------------------------------------------------------
-- Clients
-- -------------------------------------------------------------------------------------
create table public.clients (
  id uuid primary key default gen_random_uuid(),
  slug text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
  name text not null check (length(name) between 1 and 200),
  plan text not null default 'starter' check (plan in ('starter', 'growth', 'scale', 'custom')),
  monthly_lead_quota integer not null default 500 check (monthly_lead_quota >= 0),
  monthly_enrichment_credits integer not null default 1000 check (monthly_enrichment_credits >= 0),
  monthly_llm_budget_cents integer not null default 5000 check (monthly_llm_budget_cents >= 0),
  monthly_provider_budget_cents integer not null default 20000 check (monthly_provider_budget_cents >= 0),
  status text not null default 'trialing'
    check (status in ('trialing', 'active', 'past_due', 'paused', 'cancelled')),
  emergency_paused boolean not null default false,
  emergency_paused_at timestamptz,
  emergency_pause_reason text,
  permission_mode text not null default 'co_pilot' check (permission_mode in ('autopilot', 'co_pilot', 'manual')),
  timezone text not null default 'Australia/Sydney',
  competitor_domains text[] not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.clients is 'The agency''s customers. Only trialing and active clients send; emergency_paused stops every send before the next tick.';
create trigger clients_touch before update on public.clients
  for each row execute function private.touch_updated_at();

-- -------------------------------------------------------------------------------------
-- Client members and platform admins
-- -------------------------------------------------------------------------------------
create table public.client_members (
  client_id uuid not null references public.clients (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null check (role in ('owner', 'member', 'viewer')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (client_id, user_id)
);
comment on table public.client_members is 'Who belongs to which client: owners and members write, viewers only read.';
create index client_members_user_id_idx on public.client_members (user_id);
create trigger client_members_touch before update on public.client_members
  for each row execute function private.touch_updated_at();

create table public.platform_admins (
  user_id uuid primary key references auth.users (id) on delete cascade,
  created_at timestamptz not null default now()
);
comment on table public.platform_admins is 'Agency staff: they see and run everything.';

-- -------------------------------------------------------------------------------------
-- Policy helpers: security definer so they read membership regardless of the caller's RLS,
-- pinned search_path, EXECUTE granted on purpose.
-- -------------------------------------------------------------------------------------
create or replace function private.is_platform_admin() returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (select 1 from public.platform_admins where user_id = (select auth.uid()))
$$;
comment on function private.is_platform_admin() is 'True when the caller is agency staff.';

create or replace function private.my_client_ids() returns setof uuid
language sql stable security definer
set search_path = ''
as $$
  select client_id from public.client_members where user_id = (select auth.uid())
$$;
comment on function private.my_client_ids() is 'Clients the caller belongs to, in any role.';

create or replace function private.my_writable_client_ids() returns setof uuid
language sql stable security definer
set search_path = ''
as $$
  select client_id from public.client_members
  where user_id = (select auth.uid()) and role in ('owner', 'member')
$$;
comment on function private.my_writable_client_ids() is 'Clients where the caller may write (owner or member; viewers only read).';

create or replace function private.my_owned_client_ids() returns setof uuid
language sql stable security definer
set search_path = ''
as $$
  select client_id from public.client_members where user_id = (select auth.uid()) and role = 'owner'
$$;
comment on function private.my_owned_client_ids() is 'Clients the caller owns: owners manage members and approve.';

revoke all on function private.is_platform_admin(), private.my_client_ids(),
  private.my_writable_client_ids(), private.my_owned_client_ids() from public;
grant execute on function private.is_platform_admin(), private.my_client_ids(),
  private.my_writable_client_ids(), private.my_owned_client_ids() to authenticated, service_role;

-- -------------------------------------------------------------------------------------
-- RLS
-- -------------------------------------------------------------------------------------
alter table public.agency_settings enable row level security;
grant select, update on public.agency_settings to authenticated;
create policy "admins read agency settings" on public.agency_settings
  for select to authenticated using ((select private.is_platform_admin()));
create policy "admins update agency settings" on public.agency_settings
  for update to authenticated using ((select private.is_platform_admin()))
  with check ((select private.is_platform_admin()));

alter table public.clients enable row level security;
grant select, insert, update, delete on public.clients to authenticated;
create policy "members read their clients" on public.clients
  for select to authenticated
  using (id in (select private.my_client_ids()) or (select private.is_platform_admin()));
create policy "admins create clients" on public.clients
  for insert to authenticated with check ((select private.is_platform_admin()));
create policy "admins update clients" on public.clients
  for update to authenticated using ((select private.is_platform_admin()))
  with check ((select private.is_platform_admin()));
create policy "admins delete clients" on public.clients
  for delete to authenticated using ((select private.is_platform_admin()));

alter table public.client_members enable row level security;
grant select, insert, update, delete on public.client_members to authenticated;
create policy "members read their client's members" on public.client_members
  for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
create policy "owners and admins add members" on public.client_members
  for insert to authenticated
  with check (client_id in (select private.my_owned_client_ids()) or (select private.is_platform_admin()));
create policy "owners and admins change members" on public.client_members
  for update to authenticated
  using (client_id in (select private.my_owned_client_ids()) or (select private.is_platform_admin()))
  with check (client_id in (select private.my_owned_client_ids()) or (select private.is_platform_admin()));
create policy "owners and admins remove members" on public.client_members
  for delete to authenticated
  using (client_id in (select private.my_owned_client_ids()) or (select private.is_platform_admin()));

alter table public.platform_admins enable row level security;
grant select on public.platform_admins to authenticated;
create policy "admins read admins, users read themselves" on public.platform_admins
  for select to authenticated
  using (user_id = (select auth.uid()) or (select private.is_platform_admin()));
