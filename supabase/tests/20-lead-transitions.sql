-- =====================================================================================
-- Pool-lead state machine (product.md §2), generated from public.status_transitions:
-- every ordered (from, to) pair over the 'lead' statuses is tried once.
--   legal pair   -> the update succeeds, stamps status_changed_at, and writes exactly one
--                   events row (who, from, to, why) and one 'lead.status_changed' outbox row;
--   illegal pair -> AOS01 naming both states, detail {entity, from, to}, nothing written;
--   from = to    -> not a transition: succeeds and writes nothing.
-- Runs in one transaction and rolls back.
-- =====================================================================================
begin;

-- 4 assertions per legal pair, 3 per illegal pair, 2 per same-status pair, plus 11 below.
select plan((
  select (4 * legal.n + 3 * (count(*) * (count(*) - 1) - legal.n) + 2 * count(*) + 11)::int
  from public.lifecycle_statuses s,
       (select count(*) as n from public.status_transitions where entity = 'lead') as legal
  where s.entity = 'lead'
  group by legal.n
));

-- -------------------------------------------------------------------------------------
-- Helpers
-- -------------------------------------------------------------------------------------
create temp table fx_ids (label text primary key, id uuid not null);
insert into fx_ids values
  ('pipeline', 'ac700000-0000-4000-8000-000000000001'),  -- app.actor_id of a pipeline step
  ('user',     'ac700000-0000-4000-8000-000000000002');  -- a JWT subject
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

-- An events row / outbox row without its generated columns.
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

-- -------------------------------------------------------------------------------------
-- One lead per ordered pair, placed in its from-status (the initial-status trigger is off for
-- the placement only), with an old status_changed_at so a transition's stamp is visible.
-- -------------------------------------------------------------------------------------
create temp table fx_pairs as
select f.status as from_status, t.status as to_status,
       exists (select 1 from public.status_transitions st
               where st.entity = 'lead' and st.from_status = f.status and st.to_status = t.status) as legal,
       gen_random_uuid() as lead_id
from public.lifecycle_statuses f
cross join public.lifecycle_statuses t
where f.entity = 'lead' and t.entity = 'lead';

alter table public.lead_pool disable trigger lead_pool_initial_status;
insert into public.lead_pool (id, email, status, status_changed_at)
select lead_id, format('%s-to-%s@pairs.test', from_status, to_status), from_status, '2000-01-01T00:00:00Z'
from fx_pairs;
alter table public.lead_pool enable trigger lead_pool_initial_status;

create function pg_temp.check_pair(p_from text, p_to text, p_legal boolean, p_lead uuid) returns setof text
language plpgsql
as $$
declare
  v_sql text := format('update public.lead_pool set status = %L where id = %L', p_to, p_lead);
  v_reason text := format('pair %s -> %s', p_from, p_to);
  v_events bigint := (select coalesce(max(id), 0) from public.events);
  v_outbox bigint := (select coalesce(max(id), 0) from public.outbox);
  v_nothing_written text := format(
    $q$select exists (select 1 from public.lead_pool where id = %L and status = %L
                         and status_changed_at = '2000-01-01T00:00:00Z')
           and not exists (select 1 from public.events where id > %s)
           and not exists (select 1 from public.outbox where id > %s)$q$,
    p_lead, p_from, v_events, v_outbox);
  v_ok boolean;
begin
  perform pg_temp.set_actor(null, pg_temp.id('pipeline'), 'pipeline:test', v_reason);

  if p_from = p_to then
    return next lives_ok(v_sql, format('lead %s -> %s (same status): update succeeds', p_from, p_to));
    execute v_nothing_written into v_ok;
    return next ok(v_ok, format('lead %s -> %s (same status): no stamp, no events row, no outbox row', p_from, p_to));

  elsif p_legal then
    return next lives_ok(v_sql, format('lead %s -> %s: legal, succeeds', p_from, p_to));
    return next ok(
      exists (select 1 from public.lead_pool where id = p_lead and status = p_to and status_changed_at = now()),
      format('lead %s -> %s: status set and status_changed_at stamped', p_from, p_to));
    return next is(
      (select jsonb_agg(pg_temp.event_json(e)) from public.events e where e.id > v_events),
      jsonb_build_array(jsonb_build_object(
        'client_id', null, 'entity_type', 'lead', 'entity_id', p_lead, 'kind', 'status_changed',
        'from_status', p_from, 'to_status', p_to, 'actor_id', pg_temp.id('pipeline'),
        'actor_role', 'pipeline:test', 'reason', v_reason, 'data', '{}'::jsonb)),
      format('lead %s -> %s: exactly one events row (who, from, to, why)', p_from, p_to));
    return next is(
      (select jsonb_agg(pg_temp.outbox_json(o)) from public.outbox o where o.id > v_outbox),
      jsonb_build_array(jsonb_build_object(
        'topic', 'lead.status_changed', 'client_id', null,
        'payload', jsonb_build_object('id', p_lead, 'from', p_from, 'to', p_to, 'reason', v_reason),
        'published_at', null, 'attempts', 0, 'last_error', null)),
      format('lead %s -> %s: exactly one lead.status_changed outbox row', p_from, p_to));

  else
    return next throws_ok(v_sql, 'AOS01',
      format('illegal lead status transition from %s to %s', p_from, p_to),
      format('lead %s -> %s: illegal, AOS01 naming both states', p_from, p_to));
    return next is(pg_temp.error_detail(v_sql),
      jsonb_build_object('entity', 'lead', 'from', p_from, 'to', p_to),
      format('lead %s -> %s: error detail is {entity, from, to}', p_from, p_to));
    execute v_nothing_written into v_ok;
    return next ok(v_ok, format('lead %s -> %s: nothing written (status, stamp, events, outbox)', p_from, p_to));
  end if;
end;
$$;

select pg_temp.check_pair(from_status, to_status, legal, lead_id)
from fx_pairs
order by from_status, to_status;

-- -------------------------------------------------------------------------------------
-- The catalog and new rows
-- -------------------------------------------------------------------------------------
select results_eq(
  $$select status from public.lifecycle_statuses where entity = 'lead' and is_initial$$,
  $$values ('new'::text)$$,
  'the lead machine has exactly one initial status: new');

select throws_ok(
  $$insert into public.lead_pool (email, status) values ('born-enriched@leads.test', 'enriched')$$,
  'AOS04', 'a new lead must start in its initial status, not enriched',
  'a lead cannot be inserted in a non-initial status (AOS04)');

select results_eq(
  $$insert into public.lead_pool (email) values ('born-new@leads.test') returning status$$,
  $$values ('new'::text)$$,
  'a new lead starts as new');

-- -------------------------------------------------------------------------------------
-- Who and why
-- -------------------------------------------------------------------------------------
create temp table fx_leads as
select label, gen_random_uuid() as id from (values ('jwt'), ('anonymous'), ('bulk1'), ('bulk2'), ('bulk3'),
  ('quiet'), ('mixed_ok'), ('mixed_bad'), ('walk')) as v (label);
insert into public.lead_pool (id, email) select id, label || '@actors.test' from fx_leads;
create function pg_temp.lead(p_label text) returns uuid
language sql stable as $$ select id from pg_temp.fx_leads where label = p_label $$;

-- A JWT subject is the actor, even over app.actor_id; its role is 'user' unless app.actor_role says.
select pg_temp.set_actor(pg_temp.id('user'), pg_temp.id('pipeline'), null, 'corrected by hand');
update public.lead_pool set status = 'invalid' where id = pg_temp.lead('jwt');
select results_eq(
  $$select actor_id, actor_role, reason from public.events where entity_id = pg_temp.lead('jwt')$$,
  $$values (pg_temp.id('user'), 'user'::text, 'corrected by hand'::text)$$,
  'with a JWT the actor is its sub (role user), and the reason comes from app.reason');

-- Nobody named: actor null, role 'service', no reason.
select pg_temp.set_actor(null, null, null, null);
update public.lead_pool set status = 'enriching' where id = pg_temp.lead('anonymous');
select results_eq(
  $$select actor_id, actor_role, reason from public.events where entity_id = pg_temp.lead('anonymous')$$,
  $$values (null::uuid, 'service'::text, null::text)$$,
  'without JWT or app.actor_id the actor is null, its role service, and the reason null');

-- One statement, many rows: one events row and one outbox row per lead.
select pg_temp.set_actor(null, pg_temp.id('pipeline'), 'pipeline:enrich', 'batch');
update public.lead_pool set status = 'enriching'
where id in (pg_temp.lead('bulk1'), pg_temp.lead('bulk2'), pg_temp.lead('bulk3'));
select set_eq(
  $$select entity_id from public.events
    where kind = 'status_changed' and from_status = 'new' and to_status = 'enriching' and reason = 'batch'$$,
  $$values (pg_temp.lead('bulk1')), (pg_temp.lead('bulk2')), (pg_temp.lead('bulk3'))$$,
  'a three-row update writes three events rows, one per lead');
select bag_eq(
  $$select (payload ->> 'id')::uuid from public.outbox where topic = 'lead.status_changed' and payload ->> 'reason' = 'batch'$$,
  $$values (pg_temp.lead('bulk1')), (pg_temp.lead('bulk2')), (pg_temp.lead('bulk3'))$$,
  'a three-row update writes three outbox rows, one per lead');

-- An update that does not change the status writes no history.
update public.lead_pool set first_name = 'Quinn', status = 'new' where id = pg_temp.lead('quiet');
select ok(
  not exists (select 1 from public.events where entity_id = pg_temp.lead('quiet'))
  and not exists (select 1 from public.outbox where payload ->> 'id' = pg_temp.lead('quiet')::text),
  'an update without a status change writes no events row and no outbox row');

-- One illegal row fails the whole statement: the legal row beside it is not applied either.
select throws_ok(
  $$update public.lead_pool
    set status = case when id = pg_temp.lead('mixed_ok') then 'enriching' else 'scored' end
    where id in (pg_temp.lead('mixed_ok'), pg_temp.lead('mixed_bad'))$$,
  'AOS01', 'illegal lead status transition from new to scored',
  'a statement with one illegal transition fails with AOS01');
select ok(
  (select bool_and(status = 'new') from public.lead_pool
   where id in (pg_temp.lead('mixed_ok'), pg_temp.lead('mixed_bad')))
  and not exists (select 1 from public.events
                  where entity_id in (pg_temp.lead('mixed_ok'), pg_temp.lead('mixed_bad'))),
  'and neither row changed nor any history was written');

-- The main line, walked, reads back as an ordered history.
select pg_temp.set_actor(null, pg_temp.id('pipeline'), 'pipeline:test', null);
update public.lead_pool set status = 'enriching' where id = pg_temp.lead('walk');
update public.lead_pool set status = 'enriched' where id = pg_temp.lead('walk');
update public.lead_pool set status = 'scored' where id = pg_temp.lead('walk');
update public.lead_pool set status = 'invalid' where id = pg_temp.lead('walk');
update public.lead_pool set status = 'new' where id = pg_temp.lead('walk');
select results_eq(
  $$select from_status, to_status from public.events where entity_id = pg_temp.lead('walk') order by id$$,
  $$values ('new'::text, 'enriching'::text), ('enriching', 'enriched'), ('enriched', 'scored'),
           ('scored', 'invalid'), ('invalid', 'new')$$,
  'new -> enriching -> enriched -> scored -> invalid -> new leaves five ordered events rows');

select * from finish();
rollback;
