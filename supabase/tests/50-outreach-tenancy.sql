-- =====================================================================================
-- Outreach and inbound tenancy: the tables, privileges, functions and invariants added by
-- migrations 20261124001100 (outreach) to 20261124001400 (inbound), by every kind of caller.
--   * client data (campaign_steps, step_variants, senders, campaign_senders, lead_consents,
--     step_runs, sends, gate_refusals, client_spend, replies, meetings, client_webhooks,
--     webhook_deliveries): a client's users read their client's rows only, admins read all;
--     viewers never write; writers write only where a policy and a grant both allow it; the
--     outreach record (step_runs, sends, gate_refusals, client_spend), consent evidence and the
--     webhook delivery log are never written through the API roles, not even by an admin.
--   * agency data (dncr_washes, dncr_wash_requests, dispatch_batches, webhook_events): no API
--     caller reads or writes it, admins included (the flows run as the service).
--   * reference data (public_holidays, holiday_calendars, send_windows): every signed-in user
--     reads it, nobody writes it.
--   * campaigns: status and approval move only through the security-definer functions
--     (submit, approve, pause, resume), each checking the caller's role; the guard trigger
--     refuses an unapproved activation even to the table owner; a sequence change un-approves.
--   * the client's emergency pause, approval decisions on queued messages, the sends' unique
--     indexes and the send gate's execute privilege.
-- Two clients A and B, each with an owner, a member and a viewer; one platform admin; one
-- outsider with no membership; anon. Runs in one transaction and rolls back.
-- Assertions marked "HOLE:" assert the safe behaviour the migrations do not (yet) provide.
-- =====================================================================================
begin;
select plan(789);

-- -------------------------------------------------------------------------------------
-- Helpers (temp objects, gone at rollback)
-- -------------------------------------------------------------------------------------
-- Fixture ids by label, readable from any role.
create temp table fx_ids (label text primary key, id uuid not null);
insert into fx_ids (label, id) values
  ('owner_a',     'a0000000-0000-4000-8000-000000000001'),
  ('member_a',    'a0000000-0000-4000-8000-000000000002'),
  ('viewer_a',    'a0000000-0000-4000-8000-000000000003'),
  ('owner_b',     'b0000000-0000-4000-8000-000000000001'),
  ('member_b',    'b0000000-0000-4000-8000-000000000002'),
  ('viewer_b',    'b0000000-0000-4000-8000-000000000003'),
  ('admin',       'ad000000-0000-4000-8000-000000000001'),
  ('outsider',    '0f000000-0000-4000-8000-000000000001'),
  ('client_a',    'ca000000-0000-4000-8000-00000000000a'),
  ('client_b',    'cb000000-0000-4000-8000-00000000000b'),
  ('client_none', '0f000000-0000-4000-8000-00000000000c'),
  ('icp_a',       'ca000000-0000-4000-8000-0000000001c0'),
  ('icp_b',       'cb000000-0000-4000-8000-0000000001c0'),
  -- camp_x: live (active, approved); camp_a_new / camp_a_adm: drafts for the approval flow;
  -- camp_a_idle: a draft without steps; camp_a_edit: a draft the allowed writes edit
  ('camp_a',      'ca000000-0000-4000-8000-00000000ca00'),
  ('camp_b',      'cb000000-0000-4000-8000-00000000ca00'),
  ('camp_a_new',  'ca000000-0000-4000-8000-00000000ca01'),
  ('camp_a_adm',  'ca000000-0000-4000-8000-00000000ca02'),
  ('camp_a_idle', 'ca000000-0000-4000-8000-00000000ca03'),
  ('camp_a_edit', 'ca000000-0000-4000-8000-00000000ca04'),
  ('step_a1',     'ca000000-0000-4000-8000-0000000057a1'),
  ('step_a2',     'ca000000-0000-4000-8000-0000000057a2'),
  ('step_a3',     'ca000000-0000-4000-8000-0000000057a3'),
  ('step_b1',     'cb000000-0000-4000-8000-0000000057a1'),
  ('step_b2',     'cb000000-0000-4000-8000-0000000057a2'),
  ('step_a_new',  'ca000000-0000-4000-8000-0000000057b1'),
  ('step_a_adm',  'ca000000-0000-4000-8000-0000000057c1'),
  ('var_a1',      'ca000000-0000-4000-8000-0000000000a1'),
  ('var_b1',      'cb000000-0000-4000-8000-0000000000a1'),
  ('var_a_adm',   'ca000000-0000-4000-8000-0000000000c1'),
  ('sender_a1',   'ca000000-0000-4000-8000-000000005e01'),
  ('sender_a2',   'ca000000-0000-4000-8000-000000005e02'),
  ('sender_b1',   'cb000000-0000-4000-8000-000000005e01'),
  ('sender_b2',   'cb000000-0000-4000-8000-000000005e02'),
  ('lead_a1',     'ca000000-0000-4000-8000-000000001ea1'),
  ('lead_b1',     'cb000000-0000-4000-8000-000000001ea1'),
  ('asg_a1',      'ca000000-0000-4000-8000-00000000a5a1'),
  ('asg_b1',      'cb000000-0000-4000-8000-00000000a5a1'),
  ('consent_a1',  'ca000000-0000-4000-8000-00000000c0a1'),
  ('consent_b1',  'cb000000-0000-4000-8000-00000000c0a1'),
  -- run_x1: sent; run_x2: awaiting approval; run_a3: awaiting approval, window closed
  ('run_a1',      'ca000000-0000-4000-8000-000000000e01'),
  ('run_a2',      'ca000000-0000-4000-8000-000000000e02'),
  ('run_a3',      'ca000000-0000-4000-8000-000000000e03'),
  ('run_b1',      'cb000000-0000-4000-8000-000000000e01'),
  ('run_b2',      'cb000000-0000-4000-8000-000000000e02'),
  ('batch_1',     'ac000000-0000-4000-8000-00000000ba01'),
  ('send_a1',     'ca000000-0000-4000-8000-000000005d01'),
  ('send_b1',     'cb000000-0000-4000-8000-000000005d01'),
  ('reply_a1',    'ca000000-0000-4000-8000-0000000000e1'),
  ('reply_b1',    'cb000000-0000-4000-8000-0000000000e1'),
  ('meeting_a1',  'ca000000-0000-4000-8000-00000000ee01'),
  ('meeting_b1',  'cb000000-0000-4000-8000-00000000ee01'),
  ('hook_a',      'ca000000-0000-4000-8000-0000000000f1'),
  ('hook_b',      'cb000000-0000-4000-8000-0000000000f1'),
  ('delivery_a',  'ca000000-0000-4000-8000-0000000000f2'),
  ('delivery_b',  'cb000000-0000-4000-8000-0000000000f2');
grant select on fx_ids to public;

create function pg_temp.id(p_label text) returns uuid
language sql stable
as $$ select id from pg_temp.fx_ids where label = p_label $$;

-- Act as a fixture user ('anon' = the anon role with no JWT, 'postgres' = back to the owner).
create function pg_temp.login(p_label text) returns void
language plpgsql
as $$
begin
  if p_label = 'postgres' then
    perform set_config('role', 'postgres', true);
    perform set_config('request.jwt.claims', '', true);
  elsif p_label = 'anon' then
    perform set_config('role', 'anon', true);
    perform set_config('request.jwt.claims', json_build_object('role', 'anon')::text, true);
  else
    perform set_config('role', 'authenticated', true);
    perform set_config('request.jwt.claims',
      json_build_object('sub', pg_temp.id(p_label), 'role', 'authenticated')::text, true);
  end if;
end;
$$;

-- Rows a statement touched (RLS turns a forbidden update/delete into 0 rows, not an error).
create function pg_temp.affected(p_sql text) returns bigint
language plpgsql
as $$
declare
  n bigint;
begin
  execute p_sql;
  get diagnostics n = row_count;
  return n;
end;
$$;

-- A forbidden write passes when it is denied (42501: no grant, or an RLS check) or touches no
-- row (RLS hides every target). Any other error, or a touched row, fails.
create function pg_temp.refused(p_sql text, p_desc text) returns text
language plpgsql
as $$
declare
  n bigint;
begin
  begin
    execute p_sql;
    get diagnostics n = row_count;
  exception
    when insufficient_privilege then
      return pass(p_desc || ' (denied, 42501)');
    when others then
      return fail(p_desc) || E'\n' || diag(format('unexpected error %s: %s', sqlstate, sqlerrm));
  end;
  if n = 0 then
    return pass(p_desc || ' (no row touched)');
  end if;
  return fail(p_desc) || E'\n' || diag(format('%s row(s) touched', n));
end;
$$;

-- A write the privileges themselves refuse (not merely RLS): "permission denied for table".
-- A statement that gets through is undone (a TRUNCATE would otherwise wipe every fixture) and
-- reported with the rows it touched.
create function pg_temp.denied(p_sql text, p_tbl text, p_desc text) returns text
language plpgsql
as $$
declare
  n bigint;
  v_state text;
  v_msg text;
begin
  begin
    execute p_sql;
    get diagnostics n = row_count;
    raise exception using errcode = 'P0099', message = format('succeeded, row count %s (undone)', n);
  exception when others then
    v_state := sqlstate;
    v_msg := sqlerrm;
  end;
  if v_state = '42501' and v_msg = format('permission denied for table %s', p_tbl) then
    return pass(p_desc);
  end if;
  return fail(p_desc) || E'\n' || diag(format('wanted 42501 permission denied for table %s; got %s: %s', p_tbl, v_state, v_msg));
end;
$$;

-- A row key per table, as the caller sees it.
create function pg_temp.key_expr(p_tbl text) returns text
language sql immutable
as $$
  select case p_tbl
    when 'campaign_senders' then 'campaign_id::text || ''/'' || sender_id::text'
    when 'client_spend' then 'client_id::text || ''/'' || month::text'
    when 'dncr_washes' then 'phone_e164'
    when 'dncr_wash_requests' then 'phone_e164'
    when 'public_holidays' then 'country || ''/'' || region || ''/'' || day::text'
    when 'holiday_calendars' then 'country || ''/'' || year::text'
    when 'send_windows' then 'country || ''/'' || channel || ''/'' || isodow::text'
    else 'id::text'
  end
$$;

create function pg_temp.visible_keys(p_tbl text) returns setof text
language plpgsql
as $$
begin
  return query execute format('select %s from public.%I', pg_temp.key_expr(p_tbl), p_tbl);
end;
$$;

-- "Sees nothing": without a SELECT grant the read is denied (42501); with one (e.g. Supabase's
-- default privileges) RLS must return no row. Either way nothing leaks.
create function pg_temp.sees_nothing(p_who text, p_tbl text) returns text
language plpgsql
as $$
begin
  if has_table_privilege(current_user, format('public.%I', p_tbl), 'select') then
    return is_empty(format('select * from public.%I', p_tbl),
      format('%s sees no row of %s', p_who, p_tbl));
  end if;
  return throws_ok(format('select * from public.%I', p_tbl), '42501', null,
    format('%s is denied %s (sees nothing)', p_who, p_tbl));
end;
$$;

-- Digest of a whole table, read as postgres (no RLS): detects any change.
create function pg_temp.digest(p_tbl text) returns text
language plpgsql
as $$
declare
  r text;
begin
  execute format(
    'select md5(coalesce(string_agg(t::text, %L order by t::text), %L)) from public.%I t',
    '|', '', p_tbl)
  into r;
  return r;
end;
$$;

-- A campaign's status and whether it is approved, as the caller reads it.
create function pg_temp.campaign_state(p_label text) returns text
language sql stable
as $$
  select status || case when approved_at is null then '/unapproved' else '/approved' end
  from public.campaigns where id = pg_temp.id(p_label)
$$;

-- -------------------------------------------------------------------------------------
-- Fixtures (as postgres)
-- -------------------------------------------------------------------------------------
insert into auth.users (id, email)
select id, label || '@outreach-tenancy.test' from pg_temp.fx_ids
where label in ('owner_a', 'member_a', 'viewer_a', 'owner_b', 'member_b', 'viewer_b', 'admin', 'outsider');

insert into public.clients (id, slug, name, status) values
  (pg_temp.id('client_a'), 'tenant-a', 'Tenant A', 'active'),
  (pg_temp.id('client_b'), 'tenant-b', 'Tenant B', 'active');

insert into public.client_members (client_id, user_id, role) values
  (pg_temp.id('client_a'), pg_temp.id('owner_a'), 'owner'),
  (pg_temp.id('client_a'), pg_temp.id('member_a'), 'member'),
  (pg_temp.id('client_a'), pg_temp.id('viewer_a'), 'viewer'),
  (pg_temp.id('client_b'), pg_temp.id('owner_b'), 'owner'),
  (pg_temp.id('client_b'), pg_temp.id('member_b'), 'member'),
  (pg_temp.id('client_b'), pg_temp.id('viewer_b'), 'viewer');

insert into public.platform_admins (user_id) values (pg_temp.id('admin'));

insert into public.icps (id, client_id, name) values
  (pg_temp.id('icp_a'), pg_temp.id('client_a'), 'ICP A'),
  (pg_temp.id('icp_b'), pg_temp.id('client_b'), 'ICP B');

insert into public.campaigns (id, client_id, icp_id, name) values
  (pg_temp.id('camp_a'), pg_temp.id('client_a'), pg_temp.id('icp_a'), 'Campaign A'),
  (pg_temp.id('camp_b'), pg_temp.id('client_b'), pg_temp.id('icp_b'), 'Campaign B'),
  (pg_temp.id('camp_a_new'), pg_temp.id('client_a'), pg_temp.id('icp_a'), 'A: to submit'),
  (pg_temp.id('camp_a_adm'), pg_temp.id('client_a'), pg_temp.id('icp_a'), 'A: admin approves'),
  (pg_temp.id('camp_a_idle'), pg_temp.id('client_a'), pg_temp.id('icp_a'), 'A: no steps'),
  (pg_temp.id('camp_a_edit'), pg_temp.id('client_a'), pg_temp.id('icp_a'), 'A: edited by writers');

insert into public.campaign_steps (id, campaign_id, client_id, position, day_offset, channel) values
  (pg_temp.id('step_a1'), pg_temp.id('camp_a'), pg_temp.id('client_a'), 1, 0, 'email'),
  (pg_temp.id('step_a2'), pg_temp.id('camp_a'), pg_temp.id('client_a'), 2, 3, 'email'),
  (pg_temp.id('step_a3'), pg_temp.id('camp_a'), pg_temp.id('client_a'), 3, 8, 'email'),
  (pg_temp.id('step_b1'), pg_temp.id('camp_b'), pg_temp.id('client_b'), 1, 0, 'email'),
  (pg_temp.id('step_b2'), pg_temp.id('camp_b'), pg_temp.id('client_b'), 2, 3, 'email'),
  (pg_temp.id('step_a_new'), pg_temp.id('camp_a_new'), pg_temp.id('client_a'), 1, 0, 'email'),
  (pg_temp.id('step_a_adm'), pg_temp.id('camp_a_adm'), pg_temp.id('client_a'), 1, 0, 'email');

insert into public.step_variants (id, step_id, client_id, label, subject_template, body_template) values
  (pg_temp.id('var_a1'), pg_temp.id('step_a1'), pg_temp.id('client_a'), 'A', 'Hi {{first_name}}', 'Hello from A'),
  (pg_temp.id('var_b1'), pg_temp.id('step_b1'), pg_temp.id('client_b'), 'A', 'Hi {{first_name}}', 'Hello from B'),
  (pg_temp.id('var_a_adm'), pg_temp.id('step_a_adm'), pg_temp.id('client_a'), 'A', 'Hi', 'Admin-approved copy');

-- camp_a and camp_b are live: approved and active (as the approval function would leave them)
update public.campaigns set status = 'active', approved_at = now(), approved_by = pg_temp.id('owner_a')
where id = pg_temp.id('camp_a');
update public.campaigns set status = 'active', approved_at = now(), approved_by = pg_temp.id('owner_b')
where id = pg_temp.id('camp_b');

insert into public.senders (id, client_id, channel, provider, address, daily_cap) values
  (pg_temp.id('sender_a1'), pg_temp.id('client_a'), 'email', 'salesforge', 'ada@a-mail.test', 50),
  (pg_temp.id('sender_a2'), pg_temp.id('client_a'), 'sms', 'twilio', '+61400000101', 100),
  (pg_temp.id('sender_b1'), pg_temp.id('client_b'), 'email', 'salesforge', 'bob@b-mail.test', 50),
  (pg_temp.id('sender_b2'), pg_temp.id('client_b'), 'sms', 'twilio', '+61400000201', 100);

insert into public.campaign_senders (campaign_id, sender_id, client_id) values
  (pg_temp.id('camp_a'), pg_temp.id('sender_a1'), pg_temp.id('client_a')),
  (pg_temp.id('camp_b'), pg_temp.id('sender_b1'), pg_temp.id('client_b'));

insert into public.lead_pool (id, email, first_name, company_name, phone) values
  (pg_temp.id('lead_a1'), 'a1@a-one.test', 'Ada', 'A One', '+61400000301'),
  (pg_temp.id('lead_b1'), 'b1@b-one.test', 'Barbara', 'B One', '+61400000302');

insert into public.lead_assignments (id, lead_id, client_id, campaign_id) values
  (pg_temp.id('asg_a1'), pg_temp.id('lead_a1'), pg_temp.id('client_a'), pg_temp.id('camp_a')),
  (pg_temp.id('asg_b1'), pg_temp.id('lead_b1'), pg_temp.id('client_b'), pg_temp.id('camp_b'));

insert into public.lead_consents (id, lead_id, channel, basis, evidence_url, evidence_captured_at) values
  (pg_temp.id('consent_a1'), pg_temp.id('lead_a1'), 'email', 'inferred_publication', 'https://a-one.test/team', now()),
  (pg_temp.id('consent_b1'), pg_temp.id('lead_b1'), 'email', 'express', null, null);

-- due tomorrow, so nothing here is due for the gate
insert into public.step_runs (id, assignment_id, client_id, campaign_id, lead_id, step_id, position, channel,
                              due_at, status, timezone, country, body, approval_expires_at) values
  (pg_temp.id('run_a1'), pg_temp.id('asg_a1'), pg_temp.id('client_a'), pg_temp.id('camp_a'), pg_temp.id('lead_a1'),
   pg_temp.id('step_a1'), 1, 'email', now() + interval '1 day', 'sent', 'Australia/Sydney', 'AU', 'Hello Ada', null),
  (pg_temp.id('run_a2'), pg_temp.id('asg_a1'), pg_temp.id('client_a'), pg_temp.id('camp_a'), pg_temp.id('lead_a1'),
   pg_temp.id('step_a2'), 2, 'email', now() + interval '1 day', 'awaiting_approval', 'Australia/Sydney', 'AU',
   'Following up, Ada', now() + interval '1 day'),
  (pg_temp.id('run_a3'), pg_temp.id('asg_a1'), pg_temp.id('client_a'), pg_temp.id('camp_a'), pg_temp.id('lead_a1'),
   pg_temp.id('step_a3'), 3, 'email', now() + interval '1 day', 'awaiting_approval', 'Australia/Sydney', 'AU',
   'Last note, Ada', now() - interval '1 hour'),
  (pg_temp.id('run_b1'), pg_temp.id('asg_b1'), pg_temp.id('client_b'), pg_temp.id('camp_b'), pg_temp.id('lead_b1'),
   pg_temp.id('step_b1'), 1, 'email', now() + interval '1 day', 'sent', 'Australia/Sydney', 'AU', 'Hello Barbara', null),
  (pg_temp.id('run_b2'), pg_temp.id('asg_b1'), pg_temp.id('client_b'), pg_temp.id('camp_b'), pg_temp.id('lead_b1'),
   pg_temp.id('step_b2'), 2, 'email', now() + interval '1 day', 'awaiting_approval', 'Australia/Sydney', 'AU',
   'Following up, Barbara', now() + interval '1 day');

insert into public.dispatch_batches (id, channel, send_count) values (pg_temp.id('batch_1'), 'email', 2);

insert into public.sends (id, step_run_id, assignment_id, step_id, channel, attempt, client_id, campaign_id, lead_id,
                          sender_id, consent_id, touch_day, batch_id, status, provider, provider_message_id) values
  (pg_temp.id('send_a1'), pg_temp.id('run_a1'), pg_temp.id('asg_a1'), pg_temp.id('step_a1'), 'email', 1,
   pg_temp.id('client_a'), pg_temp.id('camp_a'), pg_temp.id('lead_a1'), pg_temp.id('sender_a1'),
   pg_temp.id('consent_a1'), current_date, pg_temp.id('batch_1'), 'sent', 'salesforge', 'sf-a1'),
  (pg_temp.id('send_b1'), pg_temp.id('run_b1'), pg_temp.id('asg_b1'), pg_temp.id('step_b1'), 'email', 1,
   pg_temp.id('client_b'), pg_temp.id('camp_b'), pg_temp.id('lead_b1'), pg_temp.id('sender_b1'),
   pg_temp.id('consent_b1'), current_date, pg_temp.id('batch_1'), 'sent', 'salesforge', 'sf-b1');

insert into public.gate_refusals (step_run_id, client_id, channel, reason, outcome, retry_at) values
  (pg_temp.id('run_a1'), pg_temp.id('client_a'), 'email', 'outside_window', 'rescheduled', now() + interval '1 hour'),
  (pg_temp.id('run_b1'), pg_temp.id('client_b'), 'email', 'sender_cap', 'rescheduled', now() + interval '1 day');

insert into public.client_spend (client_id, month, llm_cents, provider_cents, first_touches) values
  (pg_temp.id('client_a'), date_trunc('month', now())::date, 120, 300, 1),
  (pg_temp.id('client_b'), date_trunc('month', now())::date, 80, 200, 1);

insert into public.webhook_events (provider, event_id, event_type, payload) values
  ('salesforge', 'sf-evt-1', 'email.replied', '{"thread": "a1"}'),
  ('twilio', 'SM-evt-1', 'message.received', '{"from": "+61400000302"}');

insert into public.replies (id, client_id, lead_id, assignment_id, send_id, channel, provider, provider_message_id,
                            from_address, body, class, class_source, classified_at) values
  (pg_temp.id('reply_a1'), pg_temp.id('client_a'), pg_temp.id('lead_a1'), pg_temp.id('asg_a1'), pg_temp.id('send_a1'),
   'email', 'salesforge', 'sf-reply-a1', 'a1@a-one.test', 'What does it cost?', 'question', 'llm', now()),
  (pg_temp.id('reply_b1'), pg_temp.id('client_b'), pg_temp.id('lead_b1'), pg_temp.id('asg_b1'), pg_temp.id('send_b1'),
   'email', 'salesforge', 'sf-reply-b1', 'b1@b-one.test', 'Not now, thanks', 'not_now', 'llm', now());

insert into public.meetings (id, client_id, lead_id, assignment_id, source, external_id, starts_at) values
  (pg_temp.id('meeting_a1'), pg_temp.id('client_a'), pg_temp.id('lead_a1'), pg_temp.id('asg_a1'), 'calcom', 'cal-a1',
   now() + interval '2 days'),
  (pg_temp.id('meeting_b1'), pg_temp.id('client_b'), pg_temp.id('lead_b1'), pg_temp.id('asg_b1'), 'calendly', 'cly-b1',
   now() + interval '3 days');

insert into public.client_webhooks (id, client_id, url, events, secret) values
  (pg_temp.id('hook_a'), pg_temp.id('client_a'), 'https://a.test/hooks', '{lead.replied}', 'whsec_a_secret'),
  (pg_temp.id('hook_b'), pg_temp.id('client_b'), 'https://b.test/hooks', '{meeting.booked}', 'whsec_b_secret');

insert into public.webhook_deliveries (id, webhook_id, client_id, event_type, event_id, payload, status, attempts) values
  (pg_temp.id('delivery_a'), pg_temp.id('hook_a'), pg_temp.id('client_a'), 'lead.replied', 'evt-a1', '{}', 'delivered', 1),
  (pg_temp.id('delivery_b'), pg_temp.id('hook_b'), pg_temp.id('client_b'), 'meeting.booked', 'evt-b1', '{}', 'failed', 3);

insert into public.dncr_washes (phone_e164, result, washed_at, client_reference_id) values
  ('+61400000301', 'not_registered', now() - interval '2 days', 'wash-1'),
  ('+61400000302', 'registered', now() - interval '2 days', 'wash-1');
insert into public.dncr_wash_requests (phone_e164, client_reference_id) values ('+61400000303', 'wash-2');

insert into public.public_holidays (country, region, day, name) values
  ('AU', '', date '2026-12-25', 'Christmas Day'),
  ('AU', 'VIC', date '2026-11-03', 'Melbourne Cup');
insert into public.holiday_calendars (country, year) values ('AU', 2026);

-- What exists, by client (null = agency or reference data), read as postgres.
create temp table fx_rows (tbl text not null, cid uuid, k text not null);
insert into fx_rows (tbl, cid, k)
select 'campaign_steps', client_id, id::text from public.campaign_steps
union all select 'step_variants', client_id, id::text from public.step_variants
union all select 'senders', client_id, id::text from public.senders
union all select 'campaign_senders', client_id, campaign_id::text || '/' || sender_id::text from public.campaign_senders
union all select 'lead_consents', a.client_id, c.id::text
  from public.lead_consents c join public.lead_assignments a on a.lead_id = c.lead_id
union all select 'step_runs', client_id, id::text from public.step_runs
union all select 'sends', client_id, id::text from public.sends
union all select 'gate_refusals', client_id, id::text from public.gate_refusals
union all select 'client_spend', client_id, client_id::text || '/' || month::text from public.client_spend
union all select 'replies', client_id, id::text from public.replies
union all select 'meetings', client_id, id::text from public.meetings
union all select 'client_webhooks', client_id, id::text from public.client_webhooks
union all select 'webhook_deliveries', client_id, id::text from public.webhook_deliveries
union all select 'public_holidays', null, country || '/' || region || '/' || day::text from public.public_holidays
union all select 'holiday_calendars', null, country || '/' || year::text from public.holiday_calendars
union all select 'send_windows', null, country || '/' || channel || '/' || isodow::text from public.send_windows;
grant select on fx_rows to public;

create temp table fx_client_tables (tbl text primary key);
insert into fx_client_tables values
  ('campaign_steps'), ('step_variants'), ('senders'), ('campaign_senders'), ('lead_consents'), ('step_runs'),
  ('sends'), ('gate_refusals'), ('client_spend'), ('replies'), ('meetings'), ('client_webhooks'),
  ('webhook_deliveries');
grant select on fx_client_tables to public;

create temp table fx_agency_tables (tbl text primary key);
insert into fx_agency_tables values ('dncr_washes'), ('dncr_wash_requests'), ('dispatch_batches'), ('webhook_events');
grant select on fx_agency_tables to public;

create temp table fx_reference_tables (tbl text primary key);
insert into fx_reference_tables values ('public_holidays'), ('holiday_calendars'), ('send_windows');
grant select on fx_reference_tables to public;

-- Digests of every table the forbidden writes below aim at.
create temp table fx_snap as
select tbl, pg_temp.digest(tbl) as digest from (
  select tbl from fx_client_tables union all select tbl from fx_agency_tables
  union all select tbl from fx_reference_tables union all select 'campaigns'
) t;

select is(
  (select count(distinct (t.tbl, r.cid)) from fx_client_tables t
   join fx_rows r on r.tbl = t.tbl and r.cid in (pg_temp.id('client_a'), pg_temp.id('client_b'))),
  26::bigint,
  'fixtures: every outreach and inbound client table holds rows of both A and B');
select ok(
  (select count(*) from public.dncr_washes) > 0 and (select count(*) from public.dncr_wash_requests) > 0
  and (select count(*) from public.dispatch_batches) > 0 and (select count(*) from public.webhook_events) > 0
  and (select count(*) from public.public_holidays) > 0 and (select count(*) from public.holiday_calendars) > 0
  and (select count(*) from public.send_windows) > 0,
  'fixtures: every agency and reference table holds rows');

-- -------------------------------------------------------------------------------------
-- Reads: the whole matrix, 20 assertions per caller
-- -------------------------------------------------------------------------------------
create function pg_temp.read_matrix(p_label text, p_client text) returns setof text
language plpgsql
as $$
declare
  t text;
begin
  perform pg_temp.login(p_label);
  for t in select tbl from pg_temp.fx_client_tables order by tbl loop
    if p_client is null and p_label <> 'admin' then
      return next pg_temp.sees_nothing(p_label, t);
    elsif p_label = 'admin' then
      return next set_eq(
        format('select pg_temp.visible_keys(%L)', t),
        format('select k from pg_temp.fx_rows where tbl = %L', t),
        format('admin reads every row of %s', t));
    else
      return next set_eq(
        format('select pg_temp.visible_keys(%L)', t),
        format('select k from pg_temp.fx_rows where tbl = %L and cid = pg_temp.id(%L)', t, p_client),
        format('%s sees exactly %s''s rows of %s', p_label, p_client, t));
    end if;
  end loop;
  -- agency data: nobody reads it through the API roles, not even an admin
  for t in select tbl from pg_temp.fx_agency_tables order by tbl loop
    return next pg_temp.sees_nothing(p_label, t);
  end loop;
  -- reference data: every signed-in user reads all of it
  for t in select tbl from pg_temp.fx_reference_tables order by tbl loop
    if p_label = 'anon' then
      return next pg_temp.sees_nothing(p_label, t);
    else
      return next set_eq(
        format('select pg_temp.visible_keys(%L)', t),
        format('select k from pg_temp.fx_rows where tbl = %L', t),
        format('%s reads every row of %s', p_label, t));
    end if;
  end loop;
  perform pg_temp.login('postgres');
end;
$$;

select * from pg_temp.read_matrix('anon', null);
select * from pg_temp.read_matrix('outsider', null);
select * from pg_temp.read_matrix('owner_a', 'client_a');
select * from pg_temp.read_matrix('member_a', 'client_a');
select * from pg_temp.read_matrix('viewer_a', 'client_a');
select * from pg_temp.read_matrix('owner_b', 'client_b');
select * from pg_temp.read_matrix('member_b', 'client_b');
select * from pg_temp.read_matrix('viewer_b', 'client_b');
select * from pg_temp.read_matrix('admin', null);

-- -------------------------------------------------------------------------------------
-- Forbidden writes: 60 attempts per caller (insert, update, delete on every table). %1$s is
-- the target client's letter.
-- -------------------------------------------------------------------------------------
create temp table fx_writes (kind text not null, tbl text not null, op text not null, stmt text not null,
  primary key (tbl, op));
insert into fx_writes (kind, tbl, op, stmt) values
  ('client', 'campaign_steps', 'insert',
   $q$insert into campaign_steps (campaign_id, client_id, position, day_offset, channel) values (pg_temp.id('camp_%1$s'), pg_temp.id('client_%1$s'), 40, 1, 'email')$q$),
  ('client', 'campaign_steps', 'update', $q$update campaign_steps set day_offset = 99 where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'campaign_steps', 'delete', $q$delete from campaign_steps where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'step_variants', 'insert',
   $q$insert into step_variants (step_id, client_id, label, body_template) values (pg_temp.id('step_%1$s1'), pg_temp.id('client_%1$s'), 'Z', 'planted copy')$q$),
  ('client', 'step_variants', 'update', $q$update step_variants set body_template = 'hacked', weight = 100 where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'step_variants', 'delete', $q$delete from step_variants where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'senders', 'insert',
   $q$insert into senders (client_id, channel, provider, address, daily_cap) values (pg_temp.id('client_%1$s'), 'email', 'salesforge', 'planted@sender.test', 500)$q$),
  ('client', 'senders', 'update', $q$update senders set daily_cap = 10000, active = false where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'senders', 'delete', $q$delete from senders where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'campaign_senders', 'insert',
   $q$insert into campaign_senders (campaign_id, sender_id, client_id) values (pg_temp.id('camp_%1$s'), pg_temp.id('sender_%1$s2'), pg_temp.id('client_%1$s'))$q$),
  ('client', 'campaign_senders', 'update', $q$update campaign_senders set created_at = now() - interval '1 year' where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'campaign_senders', 'delete', $q$delete from campaign_senders where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'lead_consents', 'insert',
   $q$insert into lead_consents (lead_id, channel, basis) values (pg_temp.id('lead_%1$s1'), 'voice', 'express')$q$),
  ('client', 'lead_consents', 'update', $q$update lead_consents set withdrawn_at = now() where lead_id = pg_temp.id('lead_%1$s1')$q$),
  ('client', 'lead_consents', 'delete', $q$delete from lead_consents where lead_id = pg_temp.id('lead_%1$s1')$q$),
  ('client', 'step_runs', 'insert',
   $q$insert into step_runs (assignment_id, client_id, campaign_id, lead_id, step_id, position, channel, due_at, timezone, country) values (pg_temp.id('asg_%1$s1'), pg_temp.id('client_%1$s'), pg_temp.id('camp_%1$s'), pg_temp.id('lead_%1$s1'), pg_temp.id('step_%1$s1'), 1, 'email', now(), 'UTC', 'AU')$q$),
  ('client', 'step_runs', 'update', $q$update step_runs set status = 'approved', due_at = now() where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'step_runs', 'delete', $q$delete from step_runs where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'sends', 'insert',
   $q$insert into sends (step_run_id, assignment_id, step_id, channel, client_id, campaign_id, lead_id, touch_day) values (pg_temp.id('run_%1$s1'), pg_temp.id('asg_%1$s1'), pg_temp.id('step_%1$s2'), 'email', pg_temp.id('client_%1$s'), pg_temp.id('camp_%1$s'), pg_temp.id('lead_%1$s1'), current_date + 7)$q$),
  ('client', 'sends', 'update', $q$update sends set status = 'delivered', cost_cents = 0 where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'sends', 'delete', $q$delete from sends where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'gate_refusals', 'insert',
   $q$insert into gate_refusals (step_run_id, client_id, channel, reason, outcome) values (pg_temp.id('run_%1$s1'), pg_temp.id('client_%1$s'), 'email', 'forged', 'skipped')$q$),
  ('client', 'gate_refusals', 'update', $q$update gate_refusals set reason = 'forged' where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'gate_refusals', 'delete', $q$delete from gate_refusals where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'client_spend', 'insert',
   $q$insert into client_spend (client_id, month) values (pg_temp.id('client_%1$s'), date '2020-01-01')$q$),
  ('client', 'client_spend', 'update', $q$update client_spend set llm_cents = 0, provider_cents = 0, first_touches = 0 where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'client_spend', 'delete', $q$delete from client_spend where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'replies', 'insert',
   $q$insert into replies (client_id, channel, provider, provider_message_id, body) values (pg_temp.id('client_%1$s'), 'email', 'salesforge', 'planted-1', 'planted')$q$),
  ('client', 'replies', 'update', $q$update replies set class = 'unsubscribe', class_source = 'user' where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'replies', 'delete', $q$delete from replies where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'meetings', 'insert',
   $q$insert into meetings (client_id, source, starts_at) values (pg_temp.id('client_%1$s'), 'manual', now() + interval '1 day')$q$),
  ('client', 'meetings', 'update', $q$update meetings set status = 'cancelled' where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'meetings', 'delete', $q$delete from meetings where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'client_webhooks', 'insert',
   $q$insert into client_webhooks (client_id, url, events, secret) values (pg_temp.id('client_%1$s'), 'https://evil.test/hook', '{lead.replied}', 'whsec_planted')$q$),
  ('client', 'client_webhooks', 'update', $q$update client_webhooks set url = 'https://evil.test/hook' where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'client_webhooks', 'delete', $q$delete from client_webhooks where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'webhook_deliveries', 'insert',
   $q$insert into webhook_deliveries (webhook_id, client_id, event_type, event_id, payload) values (pg_temp.id('hook_%1$s'), pg_temp.id('client_%1$s'), 'lead.replied', 'planted-1', '{}')$q$),
  ('client', 'webhook_deliveries', 'update', $q$update webhook_deliveries set status = 'delivered', last_error = null where client_id = pg_temp.id('client_%1$s')$q$),
  ('client', 'webhook_deliveries', 'delete', $q$delete from webhook_deliveries where client_id = pg_temp.id('client_%1$s')$q$),
  ('agency', 'dncr_washes', 'insert',
   $q$insert into dncr_washes (phone_e164, result, washed_at, client_reference_id) values ('+61400000309', 'not_registered', now(), 'forged')$q$),
  ('agency', 'dncr_washes', 'update', $q$update dncr_washes set result = 'not_registered', washed_at = now()$q$),
  ('agency', 'dncr_washes', 'delete', $q$delete from dncr_washes$q$),
  ('agency', 'dncr_wash_requests', 'insert', $q$insert into dncr_wash_requests (phone_e164) values ('+61400000308')$q$),
  ('agency', 'dncr_wash_requests', 'update', $q$update dncr_wash_requests set attempts = 0, last_error = null$q$),
  ('agency', 'dncr_wash_requests', 'delete', $q$delete from dncr_wash_requests$q$),
  ('agency', 'dispatch_batches', 'insert', $q$insert into dispatch_batches (channel, send_count) values ('email', 1)$q$),
  ('agency', 'dispatch_batches', 'update', $q$update dispatch_batches set finished_at = now()$q$),
  ('agency', 'dispatch_batches', 'delete', $q$delete from dispatch_batches$q$),
  ('agency', 'webhook_events', 'insert',
   $q$insert into webhook_events (provider, event_id, event_type, payload) values ('twilio', 'forged-1', 'message.received', '{}')$q$),
  ('agency', 'webhook_events', 'update', $q$update webhook_events set processed_at = now(), error = null$q$),
  ('agency', 'webhook_events', 'delete', $q$delete from webhook_events$q$),
  ('reference', 'public_holidays', 'insert',
   $q$insert into public_holidays (country, region, day, name) values ('AU', '', date '2026-06-01', 'Planted')$q$),
  ('reference', 'public_holidays', 'update', $q$update public_holidays set name = 'renamed'$q$),
  ('reference', 'public_holidays', 'delete', $q$delete from public_holidays$q$),
  ('reference', 'holiday_calendars', 'insert', $q$insert into holiday_calendars (country, year) values ('NZ', 2030)$q$),
  ('reference', 'holiday_calendars', 'update', $q$update holiday_calendars set loaded_at = now() - interval '1 year'$q$),
  ('reference', 'holiday_calendars', 'delete', $q$delete from holiday_calendars$q$),
  ('reference', 'send_windows', 'insert',
   $q$insert into send_windows (country, channel, isodow, opens, closes) values ('NZ', 'voice', 7, '00:00', '23:59')$q$),
  ('reference', 'send_windows', 'update', $q$update send_windows set opens = '00:00', closes = '23:59'$q$),
  ('reference', 'send_windows', 'delete', $q$delete from send_windows$q$);
grant select on fx_writes to public;

create function pg_temp.write_matrix(p_label text, p_target text, p_kinds text[]) returns setof text
language plpgsql
as $$
declare
  w record;
begin
  perform pg_temp.login(p_label);
  for w in select * from pg_temp.fx_writes where kind = any(p_kinds) order by kind, tbl, op loop
    return next pg_temp.refused(format(w.stmt, p_target),
      format('%s cannot %s %s%s', p_label, w.op, w.tbl,
             case when w.kind = 'client' then format(' (client %s)', upper(p_target)) else '' end));
  end loop;
  perform pg_temp.login('postgres');
end;
$$;

-- read-only and foreign callers against A
select * from pg_temp.write_matrix('anon', 'a', array['client', 'agency', 'reference']);
select * from pg_temp.write_matrix('outsider', 'a', array['client', 'agency', 'reference']);
select * from pg_temp.write_matrix('viewer_a', 'a', array['client', 'agency', 'reference']);
-- A's writers against B
select * from pg_temp.write_matrix('member_a', 'b', array['client', 'agency', 'reference']);
select * from pg_temp.write_matrix('owner_a', 'b', array['client', 'agency', 'reference']);
-- an admin writes client data by policy, but never agency or reference data
select * from pg_temp.write_matrix('admin', 'a', array['agency', 'reference']);

-- -------------------------------------------------------------------------------------
-- The outreach record, consent evidence and delivery log: not even the client's own writers
-- (nor an admin) write them; the privileges themselves refuse (not only RLS). Plus the columns
-- outside the writers' column grants.
-- HOLE (hosted Supabase only): with the platform's default table-level grants these writes get
-- past the privileges; RLS still stops most of them, but not the column writes on rows the
-- writer may update (senders.sender_id_registered/address, replies.body/lead_id, meetings.crm_id,
-- client_webhooks.secret) nor TRUNCATE, which RLS never sees.
-- -------------------------------------------------------------------------------------
create temp table fx_own_denied (tbl text not null, what text not null, stmt text not null, primary key (tbl, what));
insert into fx_own_denied (tbl, what, stmt)
select tbl, op, format(stmt, 'a') from fx_writes
where tbl in ('step_runs', 'sends', 'gate_refusals', 'client_spend', 'lead_consents', 'webhook_deliveries')
   or (tbl = 'replies' and op in ('insert', 'delete'))
   or (tbl = 'meetings' and op = 'delete');
insert into fx_own_denied (tbl, what, stmt) values
  ('replies', 'update body', $q$update replies set body = 'rewritten' where id = pg_temp.id('reply_a1')$q$),
  ('replies', 'update lead_id', $q$update replies set lead_id = null, assignment_id = null where id = pg_temp.id('reply_a1')$q$),
  ('replies', 'update client_id', $q$update replies set client_id = pg_temp.id('client_b') where id = pg_temp.id('reply_a1')$q$),
  ('meetings', 'update crm_id', $q$update meetings set crm_id = 'forged', crm_synced_at = now() where id = pg_temp.id('meeting_a1')$q$),
  ('meetings', 'update client_id', $q$update meetings set client_id = pg_temp.id('client_b') where id = pg_temp.id('meeting_a1')$q$),
  ('senders', 'update sender_id_registered',
   $q$update senders set sender_id_registered = true where id = pg_temp.id('sender_a2')$q$),
  ('senders', 'update address', $q$update senders set address = 'ACMEBANK', provider = 'clicksend' where id = pg_temp.id('sender_a2')$q$),
  ('senders', 'update client_id', $q$update senders set client_id = pg_temp.id('client_b') where id = pg_temp.id('sender_a1')$q$),
  ('client_webhooks', 'update secret', $q$update client_webhooks set secret = 'whsec_known' where id = pg_temp.id('hook_a')$q$),
  ('client_webhooks', 'update client_id', $q$update client_webhooks set client_id = pg_temp.id('client_b') where id = pg_temp.id('hook_a')$q$),
  ('campaign_steps', 'truncate', $q$truncate campaign_steps cascade$q$),
  ('senders', 'truncate', $q$truncate senders cascade$q$);
grant select on fx_own_denied to public;

create function pg_temp.own_denied_matrix(p_label text) returns setof text
language plpgsql
as $$
declare
  w record;
begin
  perform pg_temp.login(p_label);
  for w in select * from pg_temp.fx_own_denied order by tbl, what loop
    return next pg_temp.denied(w.stmt, w.tbl, format('%s: %s on %s is denied (no privilege)', p_label, w.what, w.tbl));
  end loop;
  perform pg_temp.login('postgres');
end;
$$;

select * from pg_temp.own_denied_matrix('member_a');
select * from pg_temp.own_denied_matrix('owner_a');
select * from pg_temp.own_denied_matrix('admin');

-- campaign status and approval columns: written only by the campaign functions
create temp table fx_campaign_cols (col text primary key, val text not null);
insert into fx_campaign_cols (col, val) values
  ('status', $q$'active'$q$),
  ('approved_at', 'now()'),
  ('approved_by', $q$pg_temp.id('owner_a')$q$),
  ('submitted_at', 'now()'),
  ('submitted_by', $q$pg_temp.id('member_a')$q$),
  ('paused_at', 'now()'),
  ('pause_reason', $q$'forged'$q$),
  ('client_id', $q$pg_temp.id('client_b')$q$);
grant select on fx_campaign_cols to public;

create function pg_temp.campaign_column_matrix(p_label text) returns setof text
language plpgsql
as $$
declare
  c record;
begin
  perform pg_temp.login(p_label);
  for c in select * from pg_temp.fx_campaign_cols order by col loop
    return next pg_temp.denied(
      format('update campaigns set %I = %s where id = pg_temp.id(%L)', c.col, c.val, 'camp_a_new'),
      'campaigns', format('%s cannot set campaigns.%s directly (column privilege)', p_label, c.col));
  end loop;
  perform pg_temp.login('postgres');
end;
$$;

select * from pg_temp.campaign_column_matrix('owner_a');
select * from pg_temp.campaign_column_matrix('member_a');
select * from pg_temp.campaign_column_matrix('admin');

-- -------------------------------------------------------------------------------------
-- Nothing above changed anything
-- -------------------------------------------------------------------------------------
select is(pg_temp.digest(s.tbl), s.digest, format('%s unchanged by the forbidden writes', s.tbl))
from pg_temp.fx_snap s order by s.tbl;

-- -------------------------------------------------------------------------------------
-- The grants themselves: whatever default privileges a platform adds (a hosted Supabase
-- project grants ALL on new public tables to anon and authenticated), the API roles hold only
-- what the policies use.
-- -------------------------------------------------------------------------------------
-- HOLE (hosted Supabase only): 20261124001100/001400 grant SELECT on these tables but never
-- revoke the platform's default INSERT/UPDATE/DELETE/TRUNCATE from authenticated; only RLS
-- would then stop the writes. Fails on a database with Supabase's default privileges.
select is_empty(
  $$select r.rolname, t.tbl, p.priv
    from (values ('anon'), ('authenticated')) as r (rolname)
    cross join (values ('step_runs'), ('sends'), ('gate_refusals'), ('client_spend'), ('lead_consents'),
                       ('webhook_deliveries'), ('dncr_washes'), ('dncr_wash_requests'), ('dispatch_batches'),
                       ('webhook_events'), ('public_holidays'), ('holiday_calendars'), ('send_windows')) as t (tbl)
    cross join (values ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE')) as p (priv)
    where has_table_privilege(r.rolname, format('public.%I', t.tbl), p.priv)
       or (p.priv in ('INSERT', 'UPDATE') and has_any_column_privilege(r.rolname, format('public.%I', t.tbl), p.priv))$$,
  'the API roles hold no write privilege on the outreach record, consents, the delivery log, agency or reference tables');
select is_empty(
  $$select r.rolname, t.tbl, p.priv
    from (values ('anon'), ('authenticated')) as r (rolname)
    cross join (values ('dncr_washes'), ('dncr_wash_requests'), ('dispatch_batches'), ('webhook_events')) as t (tbl)
    cross join (values ('SELECT'), ('REFERENCES'), ('TRIGGER')) as p (priv)
    where has_table_privilege(r.rolname, format('public.%I', t.tbl), p.priv)
       or (p.priv in ('SELECT', 'REFERENCES') and has_any_column_privilege(r.rolname, format('public.%I', t.tbl), p.priv))$$,
  'the API roles cannot even read the agency tables');
select is_empty(
  $$select t.tbl, p.priv
    from (select tbl from pg_temp.fx_client_tables union all select tbl from pg_temp.fx_reference_tables) as t (tbl)
    cross join (values ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) as p (priv)
    where has_table_privilege('anon', format('public.%I', t.tbl), p.priv)
       or (p.priv in ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES') and has_any_column_privilege('anon', format('public.%I', t.tbl), p.priv))$$,
  'anon holds no privilege on any outreach, inbound or reference table');

-- Column grants restrict nothing while a table-level UPDATE exists.
create function pg_temp.update_columns(p_tbl text) returns setof text
language sql stable
as $$
  select a.attname::text from pg_attribute a
  where a.attrelid = format('public.%I', p_tbl)::regclass and a.attnum > 0 and not a.attisdropped
    and has_column_privilege('authenticated', a.attrelid, a.attnum, 'UPDATE')
$$;
select set_eq($$select pg_temp.update_columns('campaigns')$$,
  array['name', 'icp_id', 'description', 'offer', 'sender_name', 'daily_new_leads'],
  'authenticated may update only the editable columns of campaigns (not status, approval or pause)');
-- HOLE (hosted Supabase only): senders, replies, meetings and client_webhooks keep the
-- platform's default table-level UPDATE, which overrides the column grants below.
select set_eq($$select pg_temp.update_columns('senders')$$,
  array['display_name', 'daily_cap', 'weekly_cap', 'warmup_started_on', 'warmup_start_cap', 'warmup_daily_increase',
        'postal_address', 'active'],
  'authenticated may update only caps, warm-up, display name, postal address and active of senders');
select set_eq($$select pg_temp.update_columns('replies')$$,
  array['class', 'class_source', 'reclassified_by', 'reclassified_at'],
  'authenticated may update only the classification columns of replies');
select set_eq($$select pg_temp.update_columns('meetings')$$,
  array['status', 'starts_at', 'ends_at', 'notes', 'outcome_at', 'title', 'join_url'],
  'authenticated may update only the booking and outcome columns of meetings');
select set_eq($$select pg_temp.update_columns('client_webhooks')$$,
  array['url', 'events', 'active'],
  'authenticated may update only url, events and active of client webhooks (never the secret)');

-- HOLE: 20261124000200 grants table-level INSERT on campaigns to authenticated and 001100 only
-- revokes UPDATE, so a writer can create a campaign that is already active and "approved".
select is_empty(
  $$select a.attname from pg_attribute a
    where a.attrelid = 'public.campaigns'::regclass
      and a.attname in ('status', 'approved_at', 'approved_by', 'submitted_at', 'submitted_by', 'paused_at', 'pause_reason')
      and has_column_privilege('authenticated', a.attrelid, a.attnum, 'INSERT')$$,
  'authenticated cannot insert campaign status, approval, submission or pause columns');
-- HOLE: senders has table-level INSERT, so a writer can self-certify an SMS sender id as
-- registered with ACMA (compliance S5), although the column is kept out of the UPDATE grant.
select is_empty(
  $$select a.attname from pg_attribute a
    where a.attrelid = 'public.senders'::regclass and a.attname = 'sender_id_registered'
      and has_column_privilege('authenticated', a.attrelid, a.attnum, 'INSERT')$$,
  'authenticated cannot insert senders.sender_id_registered');

select pg_temp.login('member_a');
-- HOLE: see above; today this insert succeeds (a member creates an active, "owner-approved" campaign).
select throws_ok(
  $$insert into campaigns (client_id, icp_id, name, status, approved_at, approved_by)
    values (pg_temp.id('client_a'), pg_temp.id('icp_a'), 'Forged approval', 'active', now(), pg_temp.id('owner_a'))$$,
  '42501', 'permission denied for table campaigns',
  'member of A cannot create a campaign that is already active and approved');
-- HOLE: see above; today this insert succeeds (an unregistered alphanumeric SMS sender id passes the gate).
select throws_ok(
  $$insert into senders (client_id, channel, provider, address, daily_cap, sender_id_registered)
    values (pg_temp.id('client_a'), 'sms', 'clicksend', 'ACMEBANK', 100, true)$$,
  '42501', 'permission denied for table senders',
  'member of A cannot flag an SMS sender id as ACMA-registered');
select pg_temp.login('postgres');

-- -------------------------------------------------------------------------------------
-- Allowed writes: writers edit their client's sequences, senders, pools, meetings, webhooks
-- and reply classes; an admin edits any client's
-- -------------------------------------------------------------------------------------
select pg_temp.login('member_a');
select lives_ok(
  $$insert into campaign_steps (campaign_id, client_id, position, day_offset, channel, linkedin_action)
    values (pg_temp.id('camp_a_edit'), pg_temp.id('client_a'), 1, 0, 'linkedin', 'invitation')$$,
  'member of A adds a step to an A campaign');
select is(pg_temp.affected($$update campaign_steps set day_offset = 2 where campaign_id = pg_temp.id('camp_a_edit')$$), 1::bigint,
  'member of A changes the step');
select lives_ok(
  $$insert into step_variants (step_id, client_id, label, body_template)
    select id, client_id, 'A', 'Hi {{first_name}}, connecting.' from campaign_steps where campaign_id = pg_temp.id('camp_a_edit')$$,
  'member of A adds a variant');
select is(pg_temp.affected($$update step_variants set weight = 3 where step_id in (select id from campaign_steps where campaign_id = pg_temp.id('camp_a_edit'))$$), 1::bigint,
  'member of A reweights the variant');
select is(pg_temp.affected($$delete from step_variants where step_id in (select id from campaign_steps where campaign_id = pg_temp.id('camp_a_edit'))$$), 1::bigint,
  'member of A removes the variant');
select is(pg_temp.affected($$delete from campaign_steps where campaign_id = pg_temp.id('camp_a_edit')$$), 1::bigint,
  'member of A removes the step');
select lives_ok(
  $$insert into senders (client_id, channel, provider, address, daily_cap, warmup_started_on)
    values (pg_temp.id('client_a'), 'email', 'salesforge', 'alan@a-mail.test', 40, current_date)$$,
  'member of A adds a mailbox');
select is(pg_temp.affected($$update senders set daily_cap = 60, warmup_daily_increase = 3 where address = 'alan@a-mail.test'$$), 1::bigint,
  'member of A changes the mailbox''s caps');
select lives_ok(
  $$insert into campaign_senders (campaign_id, sender_id, client_id)
    select pg_temp.id('camp_a_edit'), id, client_id from senders where address = 'alan@a-mail.test'$$,
  'member of A puts the mailbox in a campaign''s pool');
select is(pg_temp.affected($$delete from campaign_senders where campaign_id = pg_temp.id('camp_a_edit')$$), 1::bigint,
  'member of A takes it out of the pool');
select is(pg_temp.affected($$delete from senders where address = 'alan@a-mail.test'$$), 1::bigint,
  'member of A removes the mailbox');
select lives_ok(
  $$insert into meetings (client_id, lead_id, source, starts_at, title)
    values (pg_temp.id('client_a'), pg_temp.id('lead_a1'), 'manual', now() + interval '4 days', 'Booked by phone')$$,
  'member of A books a meeting by hand');
select is(pg_temp.affected($$update meetings set status = 'held', outcome_at = now(), notes = 'went well' where id = pg_temp.id('meeting_a1')$$), 1::bigint,
  'member of A records a meeting outcome');
select is(pg_temp.affected($$update replies set class = 'interested', class_source = 'user', reclassified_by = auth.uid(), reclassified_at = now() where id = pg_temp.id('reply_a1')$$), 1::bigint,
  'member of A reclassifies A''s reply');
select lives_ok(
  $$insert into client_webhooks (client_id, url, events, secret)
    values (pg_temp.id('client_a'), 'https://a.test/crm', '{meeting.booked}', 'whsec_a_crm')$$,
  'member of A registers a webhook');
select is(pg_temp.affected($$update client_webhooks set active = false, events = '{meeting.booked,lead.replied}' where url = 'https://a.test/crm'$$), 1::bigint,
  'member of A changes the webhook');
select is(pg_temp.affected($$delete from client_webhooks where url = 'https://a.test/crm'$$), 1::bigint,
  'member of A removes the webhook');

select pg_temp.login('owner_a');
select lives_ok(
  $$insert into senders (client_id, channel, provider, address, daily_cap, weekly_cap)
    values (pg_temp.id('client_a'), 'linkedin', 'unipile', 'linkedin:owner-a', 40, 100)$$,
  'owner of A adds a LinkedIn account');
select lives_ok(
  $$insert into client_webhooks (client_id, url, events, secret)
    values (pg_temp.id('client_a'), 'https://a.test/owner', '{lead.replied}', 'whsec_a_owner')$$,
  'owner of A registers a webhook');

select pg_temp.login('member_b');
select is_empty($$select * from meetings where title = 'Booked by phone'
                  union all select * from meetings where id = pg_temp.id('meeting_a1')$$,
  'a member of B does not read A''s new meeting');
select is_empty($$select * from senders where address = 'linkedin:owner-a'$$,
  'a member of B does not read A''s new sender');

select pg_temp.login('viewer_a');
select is(
  (select count(*) from meetings where title = 'Booked by phone' or status = 'held'), 2::bigint,
  'a viewer of A reads the meeting booked and the outcome recorded by A''s member');
select is((select class from replies where id = pg_temp.id('reply_a1')), 'interested',
  'a viewer of A reads the reclassification');

select pg_temp.login('admin');
select is(pg_temp.affected($$update senders set daily_cap = 20 where id = pg_temp.id('sender_b1')$$), 1::bigint,
  'admin changes B''s sender caps');
select lives_ok(
  $$insert into meetings (client_id, lead_id, source, starts_at) values (pg_temp.id('client_b'), pg_temp.id('lead_b1'), 'manual', now() + interval '5 days')$$,
  'admin books a meeting for B');
select is(pg_temp.affected($$update replies set class = 'referral', class_source = 'user' where id = pg_temp.id('reply_b1')$$), 1::bigint,
  'admin reclassifies B''s reply');
select pg_temp.login('postgres');

-- -------------------------------------------------------------------------------------
-- Campaigns: submit, approve, the guard trigger, un-approval on sequence changes, pause
-- -------------------------------------------------------------------------------------
select pg_temp.login('member_a');
select is(pg_temp.affected($$update campaigns set name = 'A: submitted by member', offer = 'Free audit' where id = pg_temp.id('camp_a_new')$$), 1::bigint,
  'member of A edits a campaign''s name and offer (the row is writable, the status columns are not)');

-- submit: writers only, and only their client's campaigns
select pg_temp.login('viewer_a');
select throws_ok($$select public.campaign_submit(pg_temp.id('camp_a_new'))$$, '42501',
  'only a client owner or member may do this', 'viewer of A cannot submit an A campaign');
select pg_temp.login('member_b');
select throws_ok($$select public.campaign_submit(pg_temp.id('camp_a_new'))$$, 'AOS06',
  'campaign not found', 'member of B cannot submit an A campaign (not found)');
select pg_temp.login('outsider');
select throws_ok($$select public.campaign_submit(pg_temp.id('camp_a_new'))$$, 'AOS06',
  'campaign not found', 'outsider cannot submit an A campaign (not found)');
select pg_temp.login('anon');
select throws_ok($$select public.campaign_submit(pg_temp.id('camp_a_new'))$$, '42501', null,
  'anon cannot call campaign_submit');
select pg_temp.login('member_a');
select throws_ok($$select public.campaign_submit(pg_temp.id('camp_b'))$$, 'AOS06',
  'campaign not found', 'member of A cannot submit B''s campaign (not found)');
select throws_ok($$select public.campaign_submit(pg_temp.id('camp_a_idle'))$$, 'AOS07',
  'a campaign needs at least one step before it is submitted', 'a campaign without steps cannot be submitted');
select throws_ok($$select public.campaign_submit(pg_temp.id('camp_a'))$$, 'AOS07',
  'a active campaign cannot be submitted for approval', 'an active campaign cannot be submitted');
select lives_ok($$select public.campaign_submit(pg_temp.id('camp_a_new'))$$, 'member of A submits an A campaign');
select is(
  (select status || '/' || coalesce(submitted_by::text, '-') || '/' || (approved_at is null)::text
   from campaigns where id = pg_temp.id('camp_a_new')),
  'pending_approval/' || pg_temp.id('member_a')::text || '/true',
  'the campaign is pending approval, submitted by the member, not approved');

-- approve: owners and admins only
select throws_ok($$select public.campaign_approve(pg_temp.id('camp_a_new'))$$, '42501',
  'only a client owner or an admin may do this', 'member of A cannot approve');
select pg_temp.login('viewer_a');
select throws_ok($$select public.campaign_approve(pg_temp.id('camp_a_new'))$$, '42501',
  'only a client owner or an admin may do this', 'viewer of A cannot approve');
select pg_temp.login('owner_b');
select throws_ok($$select public.campaign_approve(pg_temp.id('camp_a_new'))$$, 'AOS06',
  'campaign not found', 'owner of B cannot approve an A campaign (not found)');
select pg_temp.login('owner_a');
select lives_ok($$select public.campaign_approve(pg_temp.id('camp_a_new'))$$, 'owner of A approves');
select is(
  (select status || '/' || coalesce(approved_by::text, '-') || '/' || (approved_at is not null)::text
   from campaigns where id = pg_temp.id('camp_a_new')),
  'active/' || pg_temp.id('owner_a')::text || '/true',
  'the campaign is active, approved by the owner');
select throws_ok($$select public.campaign_approve(pg_temp.id('camp_a_new'))$$, 'AOS07',
  'only a campaign pending approval can be approved (this one is active)', 'an active campaign cannot be approved again');

select pg_temp.login('member_a');
select lives_ok($$select public.campaign_submit(pg_temp.id('camp_a_adm'))$$, 'member of A submits a second campaign');
select pg_temp.login('admin');
select lives_ok($$select public.campaign_approve(pg_temp.id('camp_a_adm'))$$, 'admin approves an A campaign');
select is(
  (select status || '/' || coalesce(approved_by::text, '-') from campaigns where id = pg_temp.id('camp_a_adm')),
  'active/' || pg_temp.id('admin')::text,
  'the campaign is active, approved by the admin');
select pg_temp.login('postgres');

-- the guard trigger holds even for the table owner
select throws_ok($$update public.campaigns set status = 'active' where id = pg_temp.id('camp_a_idle')$$, 'AOS07',
  'a campaign must be approved by a client owner or an admin before it is activated',
  'not even the table owner activates an unapproved campaign');
select throws_ok(
  $$insert into public.campaigns (client_id, name, status) values (pg_temp.id('client_a'), 'Born active', 'active')$$, 'AOS07',
  'a campaign must be approved by a client owner or an admin before it is activated',
  'a campaign cannot be created active without approval');
select throws_ok($$update public.campaigns set approved_at = null where id = pg_temp.id('camp_a')$$, 'AOS07',
  'a campaign must be approved by a client owner or an admin before it is activated',
  'an active campaign cannot lose its approval and stay active');

-- a change to the sequence of an approved campaign sends it back for approval
create function pg_temp.reapprove(p_label text) returns text
language plpgsql
as $$
begin
  perform pg_temp.login('owner_a');
  perform public.campaign_approve(pg_temp.id(p_label));
  return is(pg_temp.campaign_state(p_label), 'active/approved', format('owner of A re-approves %s', p_label));
end;
$$;

select pg_temp.login('member_a');
select lives_ok(
  $$insert into campaign_steps (campaign_id, client_id, position, day_offset, channel)
    values (pg_temp.id('camp_a_new'), pg_temp.id('client_a'), 2, 4, 'email')$$,
  'member of A adds a step to an active campaign');
select is(pg_temp.campaign_state('camp_a_new'), 'pending_approval/unapproved', 'adding a step un-approves the campaign');
select pg_temp.reapprove('camp_a_new');
select pg_temp.login('member_a');
select is(pg_temp.affected($$update campaign_steps set day_offset = 5 where campaign_id = pg_temp.id('camp_a_new') and position = 2$$), 1::bigint,
  'member of A changes a step of an active campaign');
select is(pg_temp.campaign_state('camp_a_new'), 'pending_approval/unapproved', 'changing a step un-approves the campaign');
select pg_temp.reapprove('camp_a_new');
select pg_temp.login('member_a');
select is(pg_temp.affected($$delete from campaign_steps where campaign_id = pg_temp.id('camp_a_new') and position = 2$$), 1::bigint,
  'member of A removes a step of an active campaign');
select is(pg_temp.campaign_state('camp_a_new'), 'pending_approval/unapproved', 'removing a step un-approves the campaign');
select pg_temp.reapprove('camp_a_new');
select pg_temp.login('member_a');
select lives_ok(
  $$insert into step_variants (step_id, client_id, label, body_template)
    values (pg_temp.id('step_a_new'), pg_temp.id('client_a'), 'B', 'A second opinion')$$,
  'member of A adds a variant to an active campaign');
select is(pg_temp.campaign_state('camp_a_new'), 'pending_approval/unapproved', 'adding a variant un-approves the campaign');
select pg_temp.reapprove('camp_a_new');
select pg_temp.login('member_a');
select is(pg_temp.affected($$update step_variants set body_template = 'A sharper opinion' where step_id = pg_temp.id('step_a_new')$$), 1::bigint,
  'member of A rewrites a variant of an active campaign');
select is(pg_temp.campaign_state('camp_a_new'), 'pending_approval/unapproved', 'rewriting a variant un-approves the campaign');
select pg_temp.reapprove('camp_a_new');
select pg_temp.login('member_a');
select is(pg_temp.affected($$delete from step_variants where step_id = pg_temp.id('step_a_new')$$), 1::bigint,
  'member of A removes a variant of an active campaign');
select is(pg_temp.campaign_state('camp_a_new'), 'pending_approval/unapproved', 'removing a variant un-approves the campaign');
select pg_temp.reapprove('camp_a_new');

-- pause and resume: writers only
select pg_temp.login('viewer_a');
select throws_ok($$select public.campaign_pause(pg_temp.id('camp_a_new'), 'viewer says stop')$$, '42501',
  'only a client owner or member may do this', 'viewer of A cannot pause');
select pg_temp.login('member_b');
select throws_ok($$select public.campaign_pause(pg_temp.id('camp_a_new'), 'sabotage')$$, 'AOS06',
  'campaign not found', 'member of B cannot pause an A campaign (not found)');
select pg_temp.login('member_a');
select lives_ok($$select public.campaign_pause(pg_temp.id('camp_a_new'), 'client on holiday')$$, 'member of A pauses');
select is(
  (select status || '/' || pause_reason || '/' || (paused_at is not null)::text from campaigns where id = pg_temp.id('camp_a_new')),
  'paused/client on holiday/true', 'the campaign is paused with its reason');
select throws_ok($$select public.campaign_pause(pg_temp.id('camp_a_new'), 'again')$$, 'AOS07',
  'only an active campaign can be paused (this one is paused)', 'a paused campaign cannot be paused again');
select pg_temp.login('viewer_a');
select throws_ok($$select public.campaign_resume(pg_temp.id('camp_a_new'))$$, '42501',
  'only a client owner or member may do this', 'viewer of A cannot resume');
select pg_temp.login('member_a');
select lives_ok($$select public.campaign_resume(pg_temp.id('camp_a_new'))$$, 'member of A resumes');
select is(
  (select status || '/' || (paused_at is null)::text || '/' || (pause_reason is null)::text from campaigns where id = pg_temp.id('camp_a_new')),
  'active/true/true', 'the campaign is active again, pause cleared');
select throws_ok($$select public.campaign_resume(pg_temp.id('camp_a_new'))$$, 'AOS07',
  'only a paused campaign can be resumed (this one is active)', 'an active campaign cannot be resumed');
-- a campaign changed while paused needs a new approval before it runs again
select lives_ok($$select public.campaign_pause(pg_temp.id('camp_a_new'), 'rewriting')$$, 'member of A pauses to edit');
select lives_ok(
  $$insert into campaign_steps (campaign_id, client_id, position, day_offset, channel)
    values (pg_temp.id('camp_a_new'), pg_temp.id('client_a'), 2, 6, 'email')$$,
  'member of A adds a step while paused');
select is(pg_temp.campaign_state('camp_a_new'), 'paused/unapproved', 'the paused campaign lost its approval');
select throws_ok($$select public.campaign_resume(pg_temp.id('camp_a_new'))$$, 'AOS07',
  'the campaign changed while paused; submit it for approval again', 'a campaign changed while paused cannot be resumed');
select lives_ok($$select public.campaign_submit(pg_temp.id('camp_a_new'))$$, 'member of A re-submits the paused campaign');
select pg_temp.reapprove('camp_a_new');

-- moving a step or a variant out of an approved campaign changes its sequence too
select pg_temp.login('member_a');
select is(pg_temp.affected($$update campaign_steps set campaign_id = pg_temp.id('camp_a_idle') where campaign_id = pg_temp.id('camp_a_new') and position = 2$$), 1::bigint,
  'member of A moves a step from an active campaign to a draft');
-- HOLE: the update trigger on campaign_steps reads only the NEW rows, so the campaign the step
-- left keeps its approval and stays active with a sequence nobody approved.
select is(pg_temp.campaign_state('camp_a_new'), 'pending_approval/unapproved', 'moving a step out un-approves the campaign it left');
select is(pg_temp.affected($$update step_variants set step_id = pg_temp.id('step_a_new') where id = pg_temp.id('var_a_adm')$$), 1::bigint,
  'member of A moves a variant from an active campaign to another campaign');
-- HOLE: same for step_variants: the campaign the variant left keeps its approval.
select is(pg_temp.campaign_state('camp_a_adm'), 'pending_approval/unapproved', 'moving a variant out un-approves the campaign it left');
select pg_temp.login('postgres');

-- -------------------------------------------------------------------------------------
-- Emergency pause: owners and admins only
-- -------------------------------------------------------------------------------------
select pg_temp.login('member_a');
select throws_ok($$select public.set_emergency_pause(pg_temp.id('client_a'), true, 'member panic')$$, '42501',
  'only a client owner or an admin may do this', 'member of A cannot pull the emergency pause');
select pg_temp.login('viewer_a');
select throws_ok($$select public.set_emergency_pause(pg_temp.id('client_a'), true, 'viewer panic')$$, '42501',
  'only a client owner or an admin may do this', 'viewer of A cannot pull the emergency pause');
select pg_temp.login('owner_b');
select throws_ok($$select public.set_emergency_pause(pg_temp.id('client_a'), true, 'sabotage')$$, '42501',
  'only a client owner or an admin may do this', 'owner of B cannot pause A');
select pg_temp.login('outsider');
select throws_ok($$select public.set_emergency_pause(pg_temp.id('client_a'), true, 'sabotage')$$, '42501',
  'only a client owner or an admin may do this', 'outsider cannot pause A');
select pg_temp.login('anon');
select throws_ok($$select public.set_emergency_pause(pg_temp.id('client_a'), true, 'sabotage')$$, '42501', null,
  'anon cannot call set_emergency_pause');
select pg_temp.login('postgres');
select is((select emergency_paused from public.clients where id = pg_temp.id('client_a')), false,
  'the refused calls left A running');

select pg_temp.login('owner_a');
select lives_ok($$select public.set_emergency_pause(pg_temp.id('client_a'), true, 'wrong list uploaded')$$,
  'owner of A pulls the emergency pause');
select is(
  (select emergency_paused::text || '/' || emergency_pause_reason from clients where id = pg_temp.id('client_a')),
  'true/wrong list uploaded', 'client A is paused with its reason');
select pg_temp.login('postgres');
select is(
  (select count(*) from public.events
   where client_id = pg_temp.id('client_a') and kind = 'emergency_paused' and actor_id = pg_temp.id('owner_a')),
  1::bigint, 'the pause is in the audit trail with its actor');
select is((select emergency_paused from public.clients where id = pg_temp.id('client_b')), false,
  'B is not paused by A''s pause');
select pg_temp.login('admin');
select lives_ok($$select public.set_emergency_pause(pg_temp.id('client_a'), false, null)$$, 'admin lifts A''s pause');
select is((select emergency_paused from clients where id = pg_temp.id('client_a')), false, 'client A runs again');
select throws_ok($$select public.set_emergency_pause(pg_temp.id('client_none'), true, 'x')$$, 'AOS06',
  'client not found', 'admin pausing an unknown client gets not found');
select pg_temp.login('postgres');

-- -------------------------------------------------------------------------------------
-- Approval decisions on queued messages
-- -------------------------------------------------------------------------------------
select pg_temp.login('viewer_a');
select throws_ok($$select public.decide_step_run(pg_temp.id('run_a2'), true, null, null)$$, '42501',
  'only a client owner or member may do this', 'viewer of A cannot approve a queued message');
select pg_temp.login('member_b');
select throws_ok($$select public.decide_step_run(pg_temp.id('run_a2'), true, null, null)$$, 'AOS06',
  'queued message not found', 'member of B cannot approve A''s message (not found)');
select pg_temp.login('outsider');
select throws_ok($$select public.decide_step_run(pg_temp.id('run_a2'), true, null, null)$$, 'AOS06',
  'queued message not found', 'outsider cannot approve A''s message (not found)');
select pg_temp.login('anon');
select throws_ok($$select public.decide_step_run(pg_temp.id('run_a2'), true, null, null)$$, '42501', null,
  'anon cannot call decide_step_run');
select pg_temp.login('member_a');
select throws_ok($$select public.decide_step_run(pg_temp.id('run_b2'), true, null, null)$$, 'AOS06',
  'queued message not found', 'member of A cannot approve B''s message (not found)');
select is((select status from step_runs where id = pg_temp.id('run_a2')), 'awaiting_approval',
  'the refused decisions left the message waiting');

select lives_ok($$select public.decide_step_run(pg_temp.id('run_a2'), true, null, 'Following up, Ada (edited)')$$,
  'member of A approves a queued message, editing it');
select is(
  (select status || '/' || decided_by::text || '/' || body || '/' || content_source from step_runs where id = pg_temp.id('run_a2')),
  'approved/' || pg_temp.id('member_a')::text || '/Following up, Ada (edited)/edited',
  'the message is approved by the member with the edited body');
select throws_ok($$select public.decide_step_run(pg_temp.id('run_a2'), true, null, null)$$, 'AOS07',
  'this message is not waiting for approval (it is approved)', 'an approved message cannot be decided again');

-- Approving after the window closed is refused: today by raising AOS07; once the skip below is
-- made to stick, by returning the message skipped (the API answers 409 either way).
create function pg_temp.decide_expired(p_label text) returns text
language plpgsql
as $$
declare
  v public.step_runs;
begin
  begin
    v := public.decide_step_run(pg_temp.id(p_label), true, null, null);
  exception when sqlstate 'AOS07' then
    return pass('approving after the window closed is refused (AOS07)');
  end;
  return is(v.status || '/' || coalesce(v.last_refusal, '-'), 'skipped/approval_expired',
    'approving after the window closed is refused (the message comes back skipped)');
end;
$$;
select pg_temp.decide_expired('run_a3');
select pg_temp.login('postgres');
-- HOLE: decide_step_run skips the expired message and records the refusal, then RAISEs, which
-- rolls both writes back (in PostgREST the whole request's transaction): the skip and the
-- approval_expired refusal are never stored by the call. The message stays awaiting_approval
-- until the gate's next tick skips it (checked below).
select is(
  (select status || '/' || coalesce(last_refusal, '-') from public.step_runs where id = pg_temp.id('run_a3')),
  'skipped/approval_expired', 'the expired message is skipped');
select is(
  (select count(*) from public.gate_refusals
   where step_run_id = pg_temp.id('run_a3') and reason = 'approval_expired' and outcome = 'skipped'),
  1::bigint, 'the expired message has its approval_expired refusal');
-- whatever the function did, the gate never sends it late: its next tick skips it
select lives_ok($$select private.gate_due_steps()$$, 'the gate runs (as the service)');
select is(
  (select status || '/' || coalesce(last_refusal, '-') from public.step_runs where id = pg_temp.id('run_a3')),
  'skipped/approval_expired', 'after the gate''s tick the expired message is skipped');
select ok(
  (select count(*) from public.gate_refusals
   where step_run_id = pg_temp.id('run_a3') and reason = 'approval_expired' and outcome = 'skipped') >= 1
  and not exists (select 1 from public.sends where step_run_id = pg_temp.id('run_a3')),
  'the expired message has an approval_expired refusal and no send');

select pg_temp.login('owner_b');
select lives_ok($$select public.decide_step_run(pg_temp.id('run_b2'), false, null, null)$$,
  'owner of B rejects a queued message');
select is(
  (select status || '/' || last_refusal || '/' || decided_by::text from step_runs where id = pg_temp.id('run_b2')),
  'skipped/rejected_by_client/' || pg_temp.id('owner_b')::text, 'the rejected message is skipped, decided by the owner');
select is(
  (select count(*) from gate_refusals where step_run_id = pg_temp.id('run_b2') and reason = 'rejected_by_client'),
  1::bigint, 'the rejection is recorded as a refusal, readable by B');
select pg_temp.login('member_a');
select is_empty($$select * from gate_refusals where step_run_id = pg_temp.id('run_b2')$$,
  'a member of A does not read B''s new refusal');
select pg_temp.login('postgres');

-- -------------------------------------------------------------------------------------
-- Sends: once per (assignment, step, channel, attempt); one first-attempt touch per person a day
-- -------------------------------------------------------------------------------------
select throws_ok(
  $$insert into public.sends (step_run_id, assignment_id, step_id, channel, attempt, client_id, campaign_id, lead_id, touch_day)
    values (pg_temp.id('run_a1'), pg_temp.id('asg_a1'), pg_temp.id('step_a1'), 'email', 1, pg_temp.id('client_a'),
            pg_temp.id('camp_a'), pg_temp.id('lead_a1'), current_date + 1)$$,
  '23505', 'duplicate key value violates unique constraint "sends_once_per_step"',
  'a step is sent at most once per channel and attempt');
select throws_ok(
  $$insert into public.sends (step_run_id, assignment_id, step_id, channel, attempt, client_id, campaign_id, lead_id, touch_day)
    values (pg_temp.id('run_a2'), pg_temp.id('asg_a1'), pg_temp.id('step_a2'), 'email', 1, pg_temp.id('client_a'),
            pg_temp.id('camp_a'), pg_temp.id('lead_a1'), current_date)$$,
  '23505', 'duplicate key value violates unique constraint "sends_one_touch_per_day"',
  'a person gets at most one first-attempt touch a day');
select lives_ok(
  $$insert into public.sends (step_run_id, assignment_id, step_id, channel, attempt, client_id, campaign_id, lead_id, touch_day)
    values (pg_temp.id('run_a2'), pg_temp.id('asg_a1'), pg_temp.id('step_a2'), 'voice', 2, pg_temp.id('client_a'),
            pg_temp.id('camp_a'), pg_temp.id('lead_a1'), current_date)$$,
  'a retry (attempt 2) the same day is not a new touch');
select lives_ok(
  $$insert into public.sends (step_run_id, assignment_id, step_id, channel, attempt, client_id, campaign_id, lead_id, touch_day)
    values (pg_temp.id('run_a2'), pg_temp.id('asg_a1'), pg_temp.id('step_a2'), 'email', 1, pg_temp.id('client_a'),
            pg_temp.id('camp_a'), pg_temp.id('lead_a1'), current_date + 1)$$,
  'the next step goes out on the person''s next day');
select throws_ok(
  $$insert into public.sends (step_run_id, assignment_id, step_id, channel, attempt, client_id, campaign_id, lead_id, touch_day)
    values (pg_temp.id('run_a2'), pg_temp.id('asg_a1'), pg_temp.id('step_a2'), 'email', 4, pg_temp.id('client_a'),
            pg_temp.id('camp_a'), pg_temp.id('lead_a1'), current_date + 2)$$,
  '23514', null, 'at most 3 attempts per step');

-- -------------------------------------------------------------------------------------
-- The gate, the planner and the dispatcher's claim are the service's alone
-- -------------------------------------------------------------------------------------
select is_empty(
  $$select r.rolname, f.sig
    from (values ('anon'), ('authenticated'), ('public')) as r (rolname)
    cross join (values ('private.gate_due_steps(integer, integer, timestamptz)'),
                       ('private.plan_step_runs(integer, timestamptz)'),
                       ('private.complete_finished_sequences(integer, timestamptz)'),
                       ('private.claim_dispatch_batch(uuid, integer, integer, timestamptz)')) as f (sig)
    where case when r.rolname = 'public'
            then exists (select 1 from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                         where p.oid = f.sig::regprocedure and a.grantee = 0 and a.privilege_type = 'EXECUTE')
            else has_function_privilege(r.rolname, f.sig, 'EXECUTE') end$$,
  'neither anon, authenticated nor PUBLIC may execute the gate, the planner, the finisher or the dispatch claim');
select is_empty(
  $$select f.sig from (values ('public.campaign_submit(uuid)'), ('public.campaign_approve(uuid)'),
                               ('public.campaign_pause(uuid, text)'), ('public.campaign_resume(uuid)'),
                               ('public.set_emergency_pause(uuid, boolean, text)'),
                               ('public.decide_step_run(uuid, boolean, text, text)')) as f (sig)
    where has_function_privilege('anon', f.sig, 'EXECUTE')$$,
  'anon may execute none of the campaign and approval functions');

select pg_temp.login('member_a');
select throws_ok($$select private.gate_due_steps()$$, '42501', 'permission denied for function gate_due_steps',
  'authenticated cannot run the send gate');
select throws_ok($$select private.plan_step_runs()$$, '42501', 'permission denied for function plan_step_runs',
  'authenticated cannot run the planner');
select throws_ok($$select private.complete_finished_sequences()$$, '42501',
  'permission denied for function complete_finished_sequences', 'authenticated cannot complete sequences');
select throws_ok($$select * from private.claim_dispatch_batch(pg_temp.id('batch_1'), 10, 60)$$, '42501',
  'permission denied for function claim_dispatch_batch', 'authenticated cannot claim a dispatch batch');
select pg_temp.login('admin');
select throws_ok($$select private.gate_due_steps()$$, '42501', 'permission denied for function gate_due_steps',
  'not even an admin runs the send gate through the API roles');
select pg_temp.login('anon');
select throws_ok($$select private.gate_due_steps()$$, '42501', null, 'anon cannot run the send gate');
select pg_temp.login('postgres');

select * from finish();
rollback;
