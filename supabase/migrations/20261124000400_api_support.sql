-- =====================================================================================
-- What the API functions need beyond the domain tables: stored Idempotency-Key responses and
-- the manual-lead entry point for client users.
-- =====================================================================================

-- -------------------------------------------------------------------------------------
-- Idempotency keys: a creating POST with the same key and body answers the stored response
-- -------------------------------------------------------------------------------------
create table public.idempotency_keys (
  user_id uuid not null,
  key text not null check (length(key) between 1 and 255),
  function_name text not null,
  request_hash text not null,
  status_code integer,
  response jsonb,
  created_at timestamptz not null default now(),
  primary key (user_id, function_name, key)
);
comment on table public.idempotency_keys is 'Responses to creating POSTs, by caller and Idempotency-Key, replayed on retry. Service only.';
create index idempotency_keys_created_at_idx on public.idempotency_keys (created_at);
alter table public.idempotency_keys enable row level security;

-- -------------------------------------------------------------------------------------
-- create_manual_lead: a client user adds a lead by hand. It enters the pool (or matches the
-- existing pool lead by normalised email) and is assigned to the caller's client. Security
-- definer because clients may not insert pool rows or assignments directly; it checks the
-- caller's right to write for that client itself.
-- -------------------------------------------------------------------------------------
create or replace function public.create_manual_lead(p_client_id uuid, p_campaign_id uuid, p_lead jsonb)
returns table (lead_id uuid, assignment_id uuid, created boolean)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_lead_id uuid;
  v_assignment_id uuid;
  v_created boolean := false;
begin
  if not (p_client_id in (select private.my_writable_client_ids()) or private.is_platform_admin()) then
    raise exception using errcode = '42501', message = 'not allowed to add leads for this client';
  end if;
  if p_campaign_id is not null and not exists (
    select 1 from public.campaigns c where c.id = p_campaign_id and c.client_id = p_client_id
  ) then
    raise exception using errcode = 'AOS06', message = 'campaign not found for this client',
      detail = json_build_object('field', 'campaign_id')::text;
  end if;

  select l.id into v_lead_id from public.lead_pool l
  where l.email_normalized = lower(btrim(p_lead ->> 'email'));

  if v_lead_id is null then
    insert into public.lead_pool (email, first_name, last_name, company_name, title, phone,
      linkedin_url, company_domain, country, source, created_by)
    values (p_lead ->> 'email', p_lead ->> 'first_name', p_lead ->> 'last_name',
      p_lead ->> 'company_name', p_lead ->> 'title', p_lead ->> 'phone', p_lead ->> 'linkedin_url',
      p_lead ->> 'company_domain', p_lead ->> 'country', 'manual', auth.uid())
    returning id into v_lead_id;
    v_created := true;
  else
    -- already ours and active: answer with the existing assignment instead of a duplicate
    select a.id into v_assignment_id from public.lead_assignments a
    where a.lead_id = v_lead_id and a.client_id = p_client_id and a.ended_at is null;
    if v_assignment_id is not null then
      return query select v_lead_id, v_assignment_id, false;
      return;
    end if;
  end if;

  insert into public.lead_assignments (lead_id, client_id, campaign_id, created_by)
  values (v_lead_id, p_client_id, p_campaign_id, auth.uid())
  returning id into v_assignment_id;

  return query select v_lead_id, v_assignment_id, v_created;
end;
$$;
comment on function public.create_manual_lead(uuid, uuid, jsonb) is 'A client user adds a lead by hand: into the pool (deduplicated on email) and assigned to their client. Exclusivity (23505 on lead_assignments_one_active_per_lead) and the cool-off (AOS03) still apply.';
revoke all on function public.create_manual_lead(uuid, uuid, jsonb) from public;
grant execute on function public.create_manual_lead(uuid, uuid, jsonb) to authenticated, service_role;
