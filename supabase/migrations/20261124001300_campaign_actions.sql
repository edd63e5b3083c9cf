-- =====================================================================================
-- Campaign and approval actions. Client users cannot write campaign status or approval columns
-- (see 001100); these security-definer functions are the only way, and each checks the
-- caller's role on the campaign's client:
--   submit, pause, resume       owner or member (writers)
--   approve                     owner or platform admin (product.md §5)
--   emergency pause / resume    owner or platform admin
--   decide a queued message     owner or member, before its approval window closes
-- Changing an approved campaign's sequence sends it back for approval (trigger below).
-- State errors raise AOS07 (409); a caller without the role gets 42501 (403).
-- =====================================================================================

create or replace function private.assert_role(p_client_id uuid, p_need text) returns void
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if private.is_platform_admin() then return; end if;
  if p_need = 'owner' and p_client_id in (select private.my_owned_client_ids()) then return; end if;
  if p_need = 'writer' and p_client_id in (select private.my_writable_client_ids()) then return; end if;
  raise exception using errcode = '42501',
    message = case p_need when 'owner' then 'only a client owner or an admin may do this'
                          else 'only a client owner or member may do this' end;
end;
$$;

create or replace function private.campaign_for_action(p_id uuid) returns public.campaigns
language plpgsql security definer
set search_path = ''
as $$
declare
  v public.campaigns;
begin
  select * into v from public.campaigns where id = p_id for update;
  -- a campaign the caller cannot read does not exist for them
  if not found or not (private.is_platform_admin() or v.client_id in (select private.my_client_ids())) then
    raise exception using errcode = 'AOS06', message = 'campaign not found';
  end if;
  return v;
end;
$$;

create or replace function public.campaign_submit(p_id uuid) returns public.campaigns
language plpgsql security definer
set search_path = ''
as $$
declare
  v public.campaigns := private.campaign_for_action(p_id);
begin
  perform private.assert_role(v.client_id, 'writer');
  if v.status not in ('draft', 'paused', 'pending_approval') then
    raise exception using errcode = 'AOS07', message = format('a %s campaign cannot be submitted for approval', v.status);
  end if;
  if not exists (select 1 from public.campaign_steps s where s.campaign_id = p_id) then
    raise exception using errcode = 'AOS07', message = 'a campaign needs at least one step before it is submitted';
  end if;
  update public.campaigns set status = 'pending_approval', submitted_at = now(), submitted_by = auth.uid()
  where id = p_id returning * into v;
  return v;
end;
$$;

create or replace function public.campaign_approve(p_id uuid) returns public.campaigns
language plpgsql security definer
set search_path = ''
as $$
declare
  v public.campaigns := private.campaign_for_action(p_id);
begin
  perform private.assert_role(v.client_id, 'owner');
  if v.status <> 'pending_approval' then
    raise exception using errcode = 'AOS07', message = format('only a campaign pending approval can be approved (this one is %s)', v.status);
  end if;
  update public.campaigns set status = 'active', approved_at = now(), approved_by = auth.uid(),
         paused_at = null, pause_reason = null
  where id = p_id returning * into v;
  return v;
end;
$$;

create or replace function public.campaign_pause(p_id uuid, p_reason text) returns public.campaigns
language plpgsql security definer
set search_path = ''
as $$
declare
  v public.campaigns := private.campaign_for_action(p_id);
begin
  perform private.assert_role(v.client_id, 'writer');
  if v.status <> 'active' then
    raise exception using errcode = 'AOS07', message = format('only an active campaign can be paused (this one is %s)', v.status);
  end if;
  update public.campaigns set status = 'paused', paused_at = now(), pause_reason = p_reason
  where id = p_id returning * into v;
  return v;
end;
$$;

create or replace function public.campaign_resume(p_id uuid) returns public.campaigns
language plpgsql security definer
set search_path = ''
as $$
declare
  v public.campaigns := private.campaign_for_action(p_id);
begin
  perform private.assert_role(v.client_id, 'writer');
  if v.status <> 'paused' then
    raise exception using errcode = 'AOS07', message = format('only a paused campaign can be resumed (this one is %s)', v.status);
  end if;
  if v.approved_at is null then
    raise exception using errcode = 'AOS07', message = 'the campaign changed while paused; submit it for approval again';
  end if;
  update public.campaigns set status = 'active', paused_at = null, pause_reason = null
  where id = p_id returning * into v;
  return v;
end;
$$;

-- The client's emergency stop: the gate refuses every send of a paused client, and the dispatcher
-- withdraws the ones already batched, so nothing more goes out from the next tick on.
create or replace function public.set_emergency_pause(p_client_id uuid, p_paused boolean, p_reason text)
returns public.clients
language plpgsql security definer
set search_path = ''
as $$
declare
  v public.clients;
begin
  perform private.assert_role(p_client_id, 'owner');
  update public.clients set
    emergency_paused = p_paused,
    emergency_paused_at = case when p_paused then now() else emergency_paused_at end,
    emergency_pause_reason = case when p_paused then p_reason else emergency_pause_reason end
  where id = p_client_id returning * into v;
  if not found then
    raise exception using errcode = 'AOS06', message = 'client not found';
  end if;
  insert into public.events (client_id, entity_type, entity_id, kind, actor_id, actor_role, reason)
  values (p_client_id, 'client', p_client_id, case when p_paused then 'emergency_paused' else 'emergency_resumed' end,
          auth.uid(), private.current_actor_role(), p_reason);
  return v;
end;
$$;

-- Co-pilot and manual modes: a client user approves (optionally editing) or rejects a queued
-- message. An approval after its window closed is refused: the message is skipped, never sent late.
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
    update public.step_runs set status = 'skipped', last_refusal = 'approval_expired' where id = p_id;
    insert into public.gate_refusals (step_run_id, client_id, channel, reason, outcome)
    values (p_id, v.client_id, v.channel, 'approval_expired', 'skipped');
    raise exception using errcode = 'AOS07', message = 'the approval window of this message has closed; it was skipped';
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

-- An approved campaign whose sequence or variants change goes back to pending approval.
create or replace function private.unapprove_on_step_change() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_ids uuid[];
begin
  if tg_op = 'DELETE' then
    select array_agg(distinct campaign_id) into v_ids from old_rows;
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
  else
    select array_agg(distinct st.campaign_id) into v_ids from new_rows n join public.campaign_steps st on st.id = n.step_id;
  end if;
  update public.campaigns c set approved_at = null, approved_by = null,
    status = case when c.status = 'active' then 'pending_approval' else c.status end
  where c.id = any(v_ids) and c.approved_at is not null;
  return null;
end;
$$;

create trigger campaign_steps_unapprove_ins after insert on public.campaign_steps
  referencing new table as new_rows for each statement execute function private.unapprove_on_step_change();
create trigger campaign_steps_unapprove_upd after update on public.campaign_steps
  referencing new table as new_rows for each statement execute function private.unapprove_on_step_change();
create trigger campaign_steps_unapprove_del after delete on public.campaign_steps
  referencing old table as old_rows for each statement execute function private.unapprove_on_step_change();
create trigger step_variants_unapprove_ins after insert on public.step_variants
  referencing new table as new_rows for each statement execute function private.unapprove_on_variant_change();
create trigger step_variants_unapprove_upd after update on public.step_variants
  referencing new table as new_rows for each statement execute function private.unapprove_on_variant_change();
create trigger step_variants_unapprove_del after delete on public.step_variants
  referencing old table as old_rows for each statement execute function private.unapprove_on_variant_change();

revoke all on function public.campaign_submit(uuid), public.campaign_approve(uuid), public.campaign_pause(uuid, text),
  public.campaign_resume(uuid), public.set_emergency_pause(uuid, boolean, text),
  public.decide_step_run(uuid, boolean, text, text) from public, anon;
grant execute on function public.campaign_submit(uuid), public.campaign_approve(uuid), public.campaign_pause(uuid, text),
  public.campaign_resume(uuid), public.set_emergency_pause(uuid, boolean, text),
  public.decide_step_run(uuid, boolean, text, text) to authenticated, service_role;
revoke all on function private.assert_role(uuid, text), private.campaign_for_action(uuid) from public;
grant execute on function private.assert_role(uuid, text), private.campaign_for_action(uuid) to authenticated, service_role;
