-- =====================================================================================
-- Assignment state machine, exclusivity and cool-off (product.md §1, §2), the pairs generated
-- from public.status_transitions: every ordered (from, to) pair over the 'assignment' statuses.
--   legal pair   -> succeeds; stamps status_changed_at; ended_at set on entering a status that
--                   ends the work (kept if already ended), cleared on leaving it; exactly one
--                   events row and one 'assignment.status_changed' outbox row with the client;
--   illegal pair -> AOS01 naming both states, detail {entity, from, to}, nothing written;
--   from = to    -> not a transition: succeeds and writes nothing.
-- Runs in one transaction and rolls back.
-- =====================================================================================
begin;

-- 4 assertions per legal pair, 3 per illegal pair, 2 per same-status pair, plus 26 below.
select plan((
  select (4 * legal.n + 3 * (count(*) * (count(*) - 1) - legal.n) + 2 * count(*) + 27)::int
  from public.lifecycle_statuses s,
       (select count(*) as n from public.status_transitions where entity = 'assignment') as legal
  where s.entity = 'assignment'
  group by legal.n
));

-- -------------------------------------------------------------------------------------
-- Helpers and fixtures
-- -------------------------------------------------------------------------------------
create temp table fx_ids (label text primary key, id uuid not null);
insert into fx_ids values
  ('pipeline', 'ac700000-0000-4000-8000-000000000001'),  -- app.actor_id of a pipeline step
  ('member_a', 'a0000000-0000-4000-8000-000000000002'),
  ('client_a', 'ca000000-0000-4000-8000-00000000000a'),
  ('client_b', 'cb000000-0000-4000-8000-00000000000b'),
  ('camp_a',   'ca000000-0000-4000-8000-00000000ca00'),
  ('camp_b',   'cb000000-0000-4000-8000-00000000ca00');
grant select on fx_ids to public;
create function pg_temp.id(p_label text) returns uuid
language sql stable as $$ select id from pg_temp.fx_ids where label = p_label $$;

-- The JSON detail of the error a statement raises (the SQLSTATE when there is no JSON detail).
create function pg_temp.error_detail(p_sql text) returns jsonb
language plpgsql
as $$
declare
  v_state text;
  v_detail text;
begin
  execute p_sql;
  return null;
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_detail = pg_exception_detail;
  begin
    return v_detail::jsonb;
  exception when others then
    return to_jsonb(v_state);
  end;
end;
$$;

-- Run a statement, swallowing its error (for steps whose outcome is checked afterwards).
create function pg_temp.try(p_sql text) returns void
language plpgsql
as $$
begin
  execute p_sql;
exception when others then
  null;
end;
$$;

create function pg_temp.event_json(e public.events) returns jsonb
language sql stable as $$ select to_jsonb(e) - 'id' - 'occurred_at' $$;
-- The outbox fields the status trigger is responsible for (later columns, e.g. the publisher's
-- dedup_key and destination, are not its business).
create function pg_temp.outbox_json(o public.outbox) returns jsonb
language sql stable as $$
  select jsonb_build_object('topic', o.topic, 'client_id', o.client_id, 'payload', o.payload,
                            'published_at', o.published_at, 'attempts', o.attempts, 'last_error', o.last_error)
$$;

-- Who acts: a JWT subject (p_sub), a pipeline's app.actor_id / app.actor_role, and app.reason.
create function pg_temp.set_actor(p_sub uuid, p_actor uuid, p_role text, p_reason text) returns void
language sql
as $$
  select set_config('request.jwt.claims',
           case when p_sub is null then '' else json_build_object('sub', p_sub, 'role', 'authenticated')::text end, true),
         set_config('app.actor_id', coalesce(p_actor::text, ''), true),
         set_config('app.actor_role', coalesce(p_role, ''), true),
         set_config('app.reason', coalesce(p_reason, ''), true);
$$;

create function pg_temp.max_event() returns bigint
language sql stable as $$ select coalesce(max(id), 0) from public.events $$;
create function pg_temp.max_outbox() returns bigint
language sql stable as $$ select coalesce(max(id), 0) from public.outbox $$;

-- the cool-off tests below assume the default 90 days
update public.agency_settings set cooloff_days = 90;
insert into auth.users (id, email) values (pg_temp.id('member_a'), 'member-a@assignments.test');
insert into public.clients (id, slug, name) values
  (pg_temp.id('client_a'), 'assign-a', 'Assign A'),
  (pg_temp.id('client_b'), 'assign-b', 'Assign B');
insert into public.client_members (client_id, user_id, role)
values (pg_temp.id('client_a'), pg_temp.id('member_a'), 'member');
insert into public.campaigns (id, client_id, name) values
  (pg_temp.id('camp_a'), pg_temp.id('client_a'), 'Campaign A'),
  (pg_temp.id('camp_b'), pg_temp.id('client_b'), 'Campaign B');

-- -------------------------------------------------------------------------------------
-- One lead and one A assignment per ordered pair, placed in its from-status (the initial-
-- status trigger is off for the placement only), with an old status_changed_at and, for a
-- status that ends the work, an old ended_at, so that stamps and their keeping are visible.
-- -------------------------------------------------------------------------------------
create temp table fx_pairs as
select f.status as from_status, t.status as to_status,
       f.ends_work as from_ends, t.ends_work as to_ends,
       exists (select 1 from public.status_transitions st
               where st.entity = 'assignment' and st.from_status = f.status and st.to_status = t.status) as legal,
       gen_random_uuid() as lead_id,
       gen_random_uuid() as assignment_id
from public.lifecycle_statuses f
cross join public.lifecycle_statuses t
where f.entity = 'assignment' and t.entity = 'assignment';

insert into public.lead_pool (id, email)
select lead_id, format('%s-to-%s@pairs.test', from_status, to_status) from fx_pairs;

alter table public.lead_assignments disable trigger lead_assignments_initial_status;
insert into public.lead_assignments (id, lead_id, client_id, campaign_id, status, status_changed_at, ended_at)
select assignment_id, lead_id, pg_temp.id('client_a'), pg_temp.id('camp_a'), from_status,
       '2000-01-01T00:00:00Z', case when from_ends then timestamptz '2001-01-01T00:00:00Z' end
from fx_pairs;
alter table public.lead_assignments enable trigger lead_assignments_initial_status;

create function pg_temp.check_pair(p pg_temp.fx_pairs) returns setof text
language plpgsql
as $$
declare
  v_sql text := format('update public.lead_assignments set status = %L where id = %L', p.to_status, p.assignment_id);
  v_reason text := format('pair %s -> %s', p.from_status, p.to_status);
  v_pair text := format('assignment %s -> %s', p.from_status, p.to_status);
  v_old_ended timestamptz := case when p.from_ends then timestamptz '2001-01-01T00:00:00Z' end;
  v_events bigint := pg_temp.max_event();
  v_outbox bigint := pg_temp.max_outbox();
  v_nothing_written text := format(
    $q$select exists (select 1 from public.lead_assignments where id = %L and status = %L
                         and status_changed_at = '2000-01-01T00:00:00Z' and ended_at is not distinct from %L)
           and not exists (select 1 from public.events where id > %s)
           and not exists (select 1 from public.outbox where id > %s)$q$,
    p.assignment_id, p.from_status, v_old_ended, v_events, v_outbox);
  v_ok boolean;
begin
  perform pg_temp.set_actor(null, pg_temp.id('pipeline'), 'pipeline:test', v_reason);

  if p.from_status = p.to_status then
    return next lives_ok(v_sql, v_pair || ' (same status): update succeeds');
    execute v_nothing_written into v_ok;
    return next ok(v_ok, v_pair || ' (same status): no stamp, no events row, no outbox row');

  elsif p.legal then
    return next lives_ok(v_sql, v_pair || ': legal, succeeds');
    return next ok(
      exists (select 1 from public.lead_assignments a
              where a.id = p.assignment_id and a.status = p.to_status and a.status_changed_at = now()
                and a.ended_at is not distinct from (case when p.to_ends then coalesce(v_old_ended, now()) end)),
      v_pair || case
        when p.to_ends and p.from_ends then ': status stamped, ended_at kept'
        when p.to_ends then ': status stamped, ended_at set'
        when p.from_ends then ': status stamped, ended_at cleared'
        else ': status stamped, ended_at still null' end);
    return next is(
      (select jsonb_agg(pg_temp.event_json(e)) from public.events e where e.id > v_events),
      jsonb_build_array(jsonb_build_object(
        'client_id', pg_temp.id('client_a'), 'entity_type', 'assignment', 'entity_id', p.assignment_id,
        'kind', 'status_changed', 'from_status', p.from_status, 'to_status', p.to_status,
        'actor_id', pg_temp.id('pipeline'), 'actor_role', 'pipeline:test', 'reason', v_reason,
        'data', '{}'::jsonb)),
      v_pair || ': exactly one events row (client, who, from, to, why)');
    return next is(
      (select jsonb_agg(pg_temp.outbox_json(o)) from public.outbox o where o.id > v_outbox),
      jsonb_build_array(jsonb_build_object(
        'topic', 'assignment.status_changed', 'client_id', pg_temp.id('client_a'),
        'payload', jsonb_build_object('id', p.assignment_id, 'lead_id', p.lead_id,
                                      'client_id', pg_temp.id('client_a'),
                                      'from', p.from_status, 'to', p.to_status, 'reason', v_reason),
        'published_at', null, 'attempts', 0, 'last_error', null)),
      v_pair || ': exactly one assignment.status_changed outbox row with the client');

  else
    return next throws_ok(v_sql, 'AOS01',
      format('illegal assignment status transition from %s to %s', p.from_status, p.to_status),
      v_pair || ': illegal, AOS01 naming both states');
    return next is(pg_temp.error_detail(v_sql),
      jsonb_build_object('entity', 'assignment', 'from', p.from_status, 'to', p.to_status),
      v_pair || ': error detail is {entity, from, to}');
    execute v_nothing_written into v_ok;
    return next ok(v_ok, v_pair || ': nothing written (status, stamps, events, outbox)');
  end if;
end;
$$;

select pg_temp.check_pair(p) from fx_pairs p order by p.from_status, p.to_status;

-- -------------------------------------------------------------------------------------
-- Scenario leads
-- -------------------------------------------------------------------------------------
create temp table fx_leads as
select label, gen_random_uuid() as id
from (values ('created'), ('born_queued'), ('walk'), ('taken'), ('pair_insert'), ('reactivate'),
             ('cool'), ('cool_edge'), ('cool_zero'), ('revive'), ('by_user'), ('quiet'), ('bulk1'), ('bulk2'),
             ('bulk3'), ('mixed1'), ('mixed2'), ('cool_campaign')) as v (label);
grant select on fx_leads to public;
insert into public.lead_pool (id, email) select id, label || '@scenarios.test' from fx_leads;
create function pg_temp.lead(p_label text) returns uuid
language sql stable as $$ select id from pg_temp.fx_leads where label = p_label $$;

-- Assign a scenario lead to a client (as the pipeline) and return the assignment id.
create function pg_temp.assign(p_lead text, p_client text) returns uuid
language sql
as $$
  insert into public.lead_assignments (lead_id, client_id)
  values (pg_temp.lead(p_lead), pg_temp.id(p_client))
  returning id
$$;
-- Walk an assignment to not_interested (a status that ends the work).
create function pg_temp.end_work(p_assignment uuid) returns void
language plpgsql
as $$
declare
  s text;
begin
  foreach s in array array['queued', 'in_sequence', 'replied', 'not_interested'] loop
    update public.lead_assignments set status = s where id = p_assignment;
  end loop;
end;
$$;

create temp table fx_asg (label text primary key, id uuid);

-- -------------------------------------------------------------------------------------
-- New rows
-- -------------------------------------------------------------------------------------
select results_eq(
  $$select status from public.lifecycle_statuses where entity = 'assignment' and is_initial$$,
  $$values ('assigned'::text)$$,
  'the assignment machine has exactly one initial status: assigned');

select pg_temp.set_actor(null, pg_temp.id('pipeline'), 'pipeline:assign', 'matched the ICP');
create temp table fx_mark as select pg_temp.max_event() as events, pg_temp.max_outbox() as outbox;
with i as (
  insert into public.lead_assignments (lead_id, client_id, campaign_id)
  values (pg_temp.lead('created'), pg_temp.id('client_a'), pg_temp.id('camp_a'))
  returning id)
insert into fx_asg select 'created', id from i;
select is(
  (select jsonb_agg(pg_temp.event_json(e)) from public.events e where e.id > (select events from fx_mark)),
  jsonb_build_array(jsonb_build_object(
    'client_id', pg_temp.id('client_a'), 'entity_type', 'assignment',
    'entity_id', (select id from fx_asg where label = 'created'), 'kind', 'created',
    'from_status', null, 'to_status', 'assigned', 'actor_id', pg_temp.id('pipeline'),
    'actor_role', 'pipeline:assign', 'reason', 'matched the ICP', 'data', '{}'::jsonb)),
  'inserting an assignment writes exactly one created events row');
select is(
  (select jsonb_agg(pg_temp.outbox_json(o)) from public.outbox o where o.id > (select outbox from fx_mark)),
  jsonb_build_array(jsonb_build_object(
    'topic', 'assignment.created', 'client_id', pg_temp.id('client_a'),
    'payload', jsonb_build_object('id', (select id from fx_asg where label = 'created'),
                                  'lead_id', pg_temp.lead('created'), 'client_id', pg_temp.id('client_a'),
                                  'campaign_id', pg_temp.id('camp_a'), 'status', 'assigned'),
    'published_at', null, 'attempts', 0, 'last_error', null)),
  'inserting an assignment writes exactly one assignment.created outbox row');

update fx_mark set events = pg_temp.max_event(), outbox = pg_temp.max_outbox();
select throws_ok(
  $$insert into public.lead_assignments (lead_id, client_id, status)
    values (pg_temp.lead('born_queued'), pg_temp.id('client_a'), 'queued')$$,
  'AOS04', 'a new assignment must start in its initial status, not queued',
  'an assignment cannot be inserted in a non-initial status (AOS04)');
select ok(
  not exists (select 1 from public.lead_assignments where lead_id = pg_temp.lead('born_queued'))
  and pg_temp.max_event() = (select events from fx_mark) and pg_temp.max_outbox() = (select outbox from fx_mark),
  'and nothing was written');

-- -------------------------------------------------------------------------------------
-- ended_at, walked: set on entering a status that ends the work, kept while it stays ended,
-- cleared on leaving it
-- -------------------------------------------------------------------------------------
insert into fx_asg values ('walk', pg_temp.assign('walk', 'client_a'));
select pg_temp.end_work((select id from fx_asg where label = 'walk'));
select ok(
  (select ended_at = now() and status = 'not_interested' from public.lead_assignments
   where id = (select id from fx_asg where label = 'walk')),
  'assigned -> ... -> not_interested sets ended_at');
update public.lead_assignments set status = 'interested' where id = (select id from fx_asg where label = 'walk');
select ok(
  (select ended_at is null from public.lead_assignments where id = (select id from fx_asg where label = 'walk')),
  'not_interested -> interested (reclassified) clears ended_at');
update public.lead_assignments set status = 'not_interested' where id = (select id from fx_asg where label = 'walk');
-- back-date the end (no status change: the triggers leave ended_at alone)
update public.lead_assignments set ended_at = now() - interval '3 days'
where id = (select id from fx_asg where label = 'walk');
update public.lead_assignments set status = 'lost' where id = (select id from fx_asg where label = 'walk');
select ok(
  (select ended_at = now() - interval '3 days' and status = 'lost' from public.lead_assignments
   where id = (select id from fx_asg where label = 'walk')),
  'not_interested -> lost keeps the first ended_at');

-- -------------------------------------------------------------------------------------
-- Exclusivity: one active assignment per lead, enforced by the partial unique index
-- lead_assignments_one_active_per_lead: the caller gets 23505 (mapped to lead_unavailable by
-- shared/db/errors.ts).
-- -------------------------------------------------------------------------------------
insert into fx_asg values ('taken', pg_temp.assign('taken', 'client_a'));
update fx_mark set events = pg_temp.max_event(), outbox = pg_temp.max_outbox();
select throws_ok(
  $$insert into public.lead_assignments (lead_id, client_id) values (pg_temp.lead('taken'), pg_temp.id('client_b'))$$,
  '23505', 'duplicate key value violates unique constraint "lead_assignments_one_active_per_lead"',
  'a second active assignment of a lead to another client is refused');
select throws_ok(
  $$insert into public.lead_assignments (lead_id, client_id) values (pg_temp.lead('taken'), pg_temp.id('client_a'))$$,
  '23505', 'duplicate key value violates unique constraint "lead_assignments_one_active_per_lead"',
  'a second active assignment of a lead to the same client is refused');
select ok(
  (select count(*) from public.lead_assignments where lead_id = pg_temp.lead('taken')) = 1
  and pg_temp.max_event() = (select events from fx_mark) and pg_temp.max_outbox() = (select outbox from fx_mark),
  'and nothing was written');
select throws_ok(
  $$insert into public.lead_assignments (lead_id, client_id)
    values (pg_temp.lead('pair_insert'), pg_temp.id('client_a')), (pg_temp.lead('pair_insert'), pg_temp.id('client_b'))$$,
  '23505', 'duplicate key value violates unique constraint "lead_assignments_one_active_per_lead"',
  'one statement cannot assign the same lead twice');

-- An ended assignment cannot come back to an active status while another client works the lead.
update public.agency_settings set cooloff_days = 0;
insert into fx_asg values ('reactivate_a', pg_temp.assign('reactivate', 'client_a'));
select pg_temp.end_work((select id from fx_asg where label = 'reactivate_a'));
insert into fx_asg values ('reactivate_b', pg_temp.assign('reactivate', 'client_b'));
select throws_ok(
  $$update public.lead_assignments set status = 'interested' where id = (select id from fx_asg where label = 'reactivate_a')$$,
  '23505', 'duplicate key value violates unique constraint "lead_assignments_one_active_per_lead"',
  'an ended assignment cannot be reactivated while another client works the lead');
update public.agency_settings set cooloff_days = 90;

-- -------------------------------------------------------------------------------------
-- Cool-off (agency_settings.cooloff_days after an assignment ends)
-- -------------------------------------------------------------------------------------
insert into fx_asg values ('cool_a', pg_temp.assign('cool', 'client_a'));
select pg_temp.end_work((select id from fx_asg where label = 'cool_a'));
update fx_mark set events = pg_temp.max_event(), outbox = pg_temp.max_outbox();
select throws_ok(
  $$insert into public.lead_assignments (lead_id, client_id) values (pg_temp.lead('cool'), pg_temp.id('client_b'))$$,
  'AOS03', 'lead is in its cool-off period after another client''s assignment ended',
  'another client cannot take a lead that just ended (AOS03)');
select ok(
  not exists (select 1 from public.lead_assignments where lead_id = pg_temp.lead('cool') and client_id = pg_temp.id('client_b'))
  and pg_temp.max_event() = (select events from fx_mark) and pg_temp.max_outbox() = (select outbox from fx_mark),
  'and nothing was written');
select lives_ok(
  $$insert into public.lead_assignments (lead_id, client_id) values (pg_temp.lead('cool'), pg_temp.id('client_a'))$$,
  'the client whose assignment ended can take the lead again at once');

insert into fx_asg values ('cool_edge_a', pg_temp.assign('cool_edge', 'client_a'));
select pg_temp.end_work((select id from fx_asg where label = 'cool_edge_a'));
update public.lead_assignments
set ended_at = now() - make_interval(days => (select cooloff_days from public.agency_settings)) + interval '1 hour'
where id = (select id from fx_asg where label = 'cool_edge_a');
select throws_ok(
  $$insert into public.lead_assignments (lead_id, client_id) values (pg_temp.lead('cool_edge'), pg_temp.id('client_b'))$$,
  'AOS03', 'lead is in its cool-off period after another client''s assignment ended',
  'another client cannot take the lead an hour before the cool-off ends');
update public.lead_assignments
set ended_at = now() - make_interval(days => (select cooloff_days from public.agency_settings)) - interval '1 hour'
where id = (select id from fx_asg where label = 'cool_edge_a');
select lives_ok(
  $$insert into public.lead_assignments (lead_id, client_id) values (pg_temp.lead('cool_edge'), pg_temp.id('client_b'))$$,
  'another client can take the lead once the end is older than the cool-off');

-- The cool-off survives the deletion of the campaign the ended assignment was in (the delete is
-- either refused or keeps the assignment row; it must not erase the history by cascade).
insert into public.campaigns (id, client_id, name)
values ('ca000000-0000-4000-8000-00000000ca99', pg_temp.id('client_a'), 'A, soon deleted');
insert into fx_asg values ('cool_campaign_a', pg_temp.assign('cool_campaign', 'client_a'));
update public.lead_assignments set campaign_id = 'ca000000-0000-4000-8000-00000000ca99'
where id = (select id from fx_asg where label = 'cool_campaign_a');
select pg_temp.end_work((select id from fx_asg where label = 'cool_campaign_a'));
select pg_temp.try($$delete from public.campaigns where id = 'ca000000-0000-4000-8000-00000000ca99'$$);
select throws_ok(
  $$insert into public.lead_assignments (lead_id, client_id) values (pg_temp.lead('cool_campaign'), pg_temp.id('client_b'))$$,
  'AOS03', 'lead is in its cool-off period after another client''s assignment ended',
  'deleting the campaign of an ended assignment does not lift the cool-off');

-- An ended assignment brought back (a reply reclassified) respects another client's cool-off:
-- A ended long ago, B worked the lead since and just ended; A may not revive its old assignment.
insert into fx_asg values ('revive_a', pg_temp.assign('revive', 'client_a'));
update public.lead_assignments set status = 'queued' where id = (select id from fx_asg where label = 'revive_a');
update public.lead_assignments set status = 'in_sequence' where id = (select id from fx_asg where label = 'revive_a');
update public.lead_assignments set status = 'replied' where id = (select id from fx_asg where label = 'revive_a');
update public.lead_assignments set status = 'not_interested' where id = (select id from fx_asg where label = 'revive_a');
update public.lead_assignments set ended_at = now() - interval '200 days' where id = (select id from fx_asg where label = 'revive_a');
insert into fx_asg values ('revive_b', pg_temp.assign('revive', 'client_b'));
select pg_temp.end_work((select id from fx_asg where label = 'revive_b'));
select throws_ok(
  $$update public.lead_assignments set status = 'interested' where id = (select id from fx_asg where label = 'revive_a')$$,
  'AOS03', 'lead is in its cool-off period after another client''s assignment ended',
  'an ended assignment cannot be revived inside another client''s cool-off');

update public.agency_settings set cooloff_days = 0;
insert into fx_asg values ('cool_zero_a', pg_temp.assign('cool_zero', 'client_a'));
select pg_temp.end_work((select id from fx_asg where label = 'cool_zero_a'));
select lives_ok(
  $$insert into public.lead_assignments (lead_id, client_id) values (pg_temp.lead('cool_zero'), pg_temp.id('client_b'))$$,
  'with cooloff_days = 0 another client can take the lead as soon as it ends');
update public.agency_settings set cooloff_days = 90;

-- -------------------------------------------------------------------------------------
-- Who, and statements that change several rows or none
-- -------------------------------------------------------------------------------------
insert into fx_asg values ('by_user', pg_temp.assign('by_user', 'client_a'));
grant select on fx_asg to public;
select pg_temp.set_actor(pg_temp.id('member_a'), pg_temp.id('pipeline'), null, 'client moved it');
set local role authenticated;
update public.lead_assignments set status = 'queued' where id = (select id from fx_asg where label = 'by_user');
reset role;
select results_eq(
  $$select e.actor_id, e.actor_role, e.reason, e.client_id, o.client_id
    from public.events e join public.outbox o on o.payload ->> 'id' = e.entity_id::text and o.topic = 'assignment.status_changed'
    where e.entity_id = (select id from fx_asg where label = 'by_user') and e.kind = 'status_changed'$$,
  $$values (pg_temp.id('member_a'), 'user'::text, 'client moved it'::text, pg_temp.id('client_a'), pg_temp.id('client_a'))$$,
  'a member''s transition is recorded with the member as actor (role user), and its outbox row carries the client');

select pg_temp.set_actor(null, pg_temp.id('pipeline'), 'pipeline:test', 'quiet');
insert into fx_asg values ('quiet', pg_temp.assign('quiet', 'client_a'));
update fx_mark set events = pg_temp.max_event(), outbox = pg_temp.max_outbox();
update public.lead_assignments set campaign_id = pg_temp.id('camp_a'), status = 'assigned'
where id = (select id from fx_asg where label = 'quiet');
select ok(
  pg_temp.max_event() = (select events from fx_mark) and pg_temp.max_outbox() = (select outbox from fx_mark),
  'an update without a status change writes no events row and no outbox row');

insert into fx_asg values ('bulk1', pg_temp.assign('bulk1', 'client_a')), ('bulk2', pg_temp.assign('bulk2', 'client_a')),
  ('bulk3', pg_temp.assign('bulk3', 'client_b'));
select pg_temp.set_actor(null, pg_temp.id('pipeline'), 'pipeline:test', 'batch');
update public.lead_assignments set status = 'queued'
where id in (select id from fx_asg where label in ('bulk1', 'bulk2', 'bulk3'));
select set_eq(
  $$select entity_id, client_id from public.events where kind = 'status_changed' and reason = 'batch'$$,
  $$select a.id, a.client_id from public.lead_assignments a join fx_asg f on f.id = a.id and f.label like 'bulk%'$$,
  'a three-row update writes one events row per assignment, each with its own client');
select bag_eq(
  $$select (payload ->> 'id')::uuid, client_id from public.outbox where topic = 'assignment.status_changed' and payload ->> 'reason' = 'batch'$$,
  $$select a.id, a.client_id from public.lead_assignments a join fx_asg f on f.id = a.id and f.label like 'bulk%'$$,
  'a three-row update writes one outbox row per assignment, each with its own client');

insert into fx_asg values ('mixed1', pg_temp.assign('mixed1', 'client_a')), ('mixed2', pg_temp.assign('mixed2', 'client_a'));
update fx_mark set events = pg_temp.max_event(), outbox = pg_temp.max_outbox();
select throws_ok(
  $$update public.lead_assignments
    set status = case when id = (select id from fx_asg where label = 'mixed1') then 'queued' else 'won' end
    where id in (select id from fx_asg where label in ('mixed1', 'mixed2'))$$,
  'AOS01', 'illegal assignment status transition from assigned to won',
  'a statement with one illegal transition fails with AOS01');
select ok(
  (select bool_and(status = 'assigned' and ended_at is null) from public.lead_assignments
   where id in (select id from fx_asg where label in ('mixed1', 'mixed2')))
  and pg_temp.max_event() = (select events from fx_mark) and pg_temp.max_outbox() = (select outbox from fx_mark),
  'and neither row changed nor any history was written');

select * from finish();
rollback;
