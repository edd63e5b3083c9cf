-- =====================================================================================
-- Hardening found by supabase/tests/50-outreach-tenancy.sql (see each numbered part).
-- =====================================================================================

-- 1. Campaigns: client users create drafts; status, approval, submission and pause are written
--    only by the campaign functions (the INSERT grant of 000200 covered every column).
revoke insert on public.campaigns from anon, authenticated;
grant insert (client_id, icp_id, name, description, offer, sender_name, daily_new_leads, source, generation, created_by)
  on public.campaigns to authenticated;

-- 2. Senders: the ACMA Sender ID registration (compliance S5) is not the client's to assert,
--    at creation any more than later (it is already outside the UPDATE grant).
revoke insert on public.senders from anon, authenticated;
grant insert (client_id, channel, provider, address, display_name, provider_account_id, daily_cap, weekly_cap,
  warmup_started_on, warmup_start_cap, warmup_daily_increase, postal_address, active) on public.senders to authenticated;

-- 3. A step or variant moved OUT of an approved campaign changes that campaign's sequence too:
--    the update triggers read the old rows as well as the new.
create or replace function private.unapprove_on_step_change() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_ids uuid[];
begin
  if tg_op = 'DELETE' then
    select array_agg(distinct campaign_id) into v_ids from old_rows;
  elsif tg_op = 'UPDATE' then
    select array_agg(distinct x.campaign_id) into v_ids
    from (select campaign_id from old_rows union select campaign_id from new_rows) x;
  else
    select array_agg(distinct campaign_id) into v_ids from new_rows;
  end if;
  update public.campaigns c set approved_at = null, approved_by = null,
    status = case when c.status = 'active' then 'pending_approval' else c.status end
  where c.id = any(v_ids) and c.approved_at is not null;
  return null;
end;
$$;

create or replace function private.unapprove_on_variant_change() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_ids uuid[];
begin
  if tg_op = 'DELETE' then
    select array_agg(distinct st.campaign_id) into v_ids from old_rows o join public.campaign_steps st on st.id = o.step_id;
  elsif tg_op = 'UPDATE' then
    select array_agg(distinct st.campaign_id) into v_ids
    from (select step_id from old_rows union select step_id from new_rows) x
    join public.campaign_steps st on st.id = x.step_id;
  else
    select array_agg(distinct st.campaign_id) into v_ids from new_rows n join public.campaign_steps st on st.id = n.step_id;
  end if;
  update public.campaigns c set approved_at = null, approved_by = null,
    status = case when c.status = 'active' then 'pending_approval' else c.status end
  where c.id = any(v_ids) and c.approved_at is not null;
  return null;
end;
$$;

drop trigger campaign_steps_unapprove_upd on public.campaign_steps;
create trigger campaign_steps_unapprove_upd after update on public.campaign_steps
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.unapprove_on_step_change();
drop trigger step_variants_unapprove_upd on public.step_variants;
create trigger step_variants_unapprove_upd after update on public.step_variants
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.unapprove_on_variant_change();

-- 4. decide_step_run: an approval after the window closed stores the skip and its refusal and
--    returns the skipped row (the API answers 409 AOS07 on status 'skipped' + last_refusal
--    'approval_expired'); raising here rolled both writes back.
create or replace function public.decide_step_run(p_id uuid, p_approve boolean, p_subject text, p_body text)
returns public.step_runs
language plpgsql security definer
set search_path = ''
as $$
declare
  v public.step_runs;
begin
  select * into v from public.step_runs where id = p_id for update;
  if not found or not (private.is_platform_admin() or v.client_id in (select private.my_client_ids())) then
    raise exception using errcode = 'AOS06', message = 'queued message not found';
  end if;
  perform private.assert_role(v.client_id, 'writer');
  if v.status <> 'awaiting_approval' then
    raise exception using errcode = 'AOS07', message = format('this message is not waiting for approval (it is %s)', v.status);
  end if;
  if v.approval_expires_at <= now() then
    update public.step_runs set status = 'skipped', last_refusal = 'approval_expired' where id = p_id
    returning * into v;
    insert into public.gate_refusals (step_run_id, client_id, channel, reason, outcome)
    values (p_id, v.client_id, v.channel, 'approval_expired', 'skipped');
    return v;
  end if;
  update public.step_runs set
    status = case when p_approve then 'approved' else 'skipped' end,
    last_refusal = case when p_approve then last_refusal else 'rejected_by_client' end,
    subject = coalesce(p_subject, subject),
    body = coalesce(p_body, body),
    content_source = case when p_subject is not null or p_body is not null then 'edited' else content_source end,
    decided_by = auth.uid(), decided_at = now()
  where id = p_id returning * into v;
  if not p_approve then
    insert into public.gate_refusals (step_run_id, client_id, channel, reason, outcome)
    values (p_id, v.client_id, v.channel, 'rejected_by_client', 'skipped');
  end if;
  return v;
end;
$$;

-- 5. Hosted Supabase grants ALL (incl. TRUNCATE, which RLS does not see) on new public tables to
--    anon and authenticated. Keep only what the policies use; re-grant the column lists (a
--    table-level REVOKE UPDATE also drops the column grants).
revoke insert, update, delete, truncate, references, trigger on public.step_runs, public.sends, public.gate_refusals,
  public.client_spend, public.lead_consents, public.webhook_deliveries, public.public_holidays,
  public.holiday_calendars, public.send_windows from authenticated;
revoke truncate, references, trigger on public.campaign_steps, public.step_variants, public.senders,
  public.campaign_senders, public.replies, public.meetings, public.client_webhooks from authenticated;
revoke update on public.senders, public.replies, public.meetings, public.client_webhooks from authenticated;
revoke delete on public.replies, public.meetings from authenticated;
revoke insert on public.replies from authenticated;
grant update (display_name, daily_cap, weekly_cap, warmup_started_on, warmup_start_cap, warmup_daily_increase,
  postal_address, active) on public.senders to authenticated;
grant update (class, class_source, reclassified_by, reclassified_at) on public.replies to authenticated;
grant update (status, starts_at, ends_at, notes, outcome_at, title, join_url) on public.meetings to authenticated;
grant update (url, events, active) on public.client_webhooks to authenticated;
