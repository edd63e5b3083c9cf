-- =====================================================================================
-- Lifecycle: the pool-lead and assignment state machines (product.md §2), the append-only
-- events table, the outbox, and lead exclusivity with its cool-off (product.md §1).
-- Rules live here so no code path can bypass them. Stable error codes (SQLSTATE):
--   AOS01 illegal status transition (detail: {"entity","from","to"})
--   AOS03 lead in cool-off after another client's assignment ended
-- Exclusivity itself (one active client per lead) is the unique index
-- lead_assignments_one_active_per_lead: a violation is 23505 naming that index.
--   AOS04 a new row must start in its entity's initial status
--   AOS05 events are append-only
-- =====================================================================================

-- -------------------------------------------------------------------------------------
-- Status catalog and allowed transitions
-- -------------------------------------------------------------------------------------
create table public.lifecycle_statuses (
  entity text not null check (entity in ('lead', 'assignment')),
  status text not null,
  is_initial boolean not null default false,
  ends_work boolean not null default false,
  primary key (entity, status)
);
comment on table public.lifecycle_statuses is 'Every status of each state machine; ends_work marks assignment statuses that end the work and start the cool-off.';

create table public.status_transitions (
  entity text not null,
  from_status text not null,
  to_status text not null,
  primary key (entity, from_status, to_status),
  foreign key (entity, from_status) references public.lifecycle_statuses (entity, status),
  foreign key (entity, to_status) references public.lifecycle_statuses (entity, status)
);
comment on table public.status_transitions is 'The allowed (from, to) pairs; the status trigger rejects every other change.';
grant select on public.lifecycle_statuses, public.status_transitions to authenticated, anon;

insert into public.lifecycle_statuses (entity, status, is_initial, ends_work) values
  ('lead', 'new', true, false),
  ('lead', 'enriching', false, false),
  ('lead', 'enriched', false, false),
  ('lead', 'scored', false, false),
  ('lead', 'invalid', false, false),
  ('assignment', 'assigned', true, false),
  ('assignment', 'queued', false, false),
  ('assignment', 'in_sequence', false, false),
  ('assignment', 'replied', false, false),
  ('assignment', 'interested', false, false),
  ('assignment', 'not_interested', false, true),
  ('assignment', 'meeting_booked', false, false),
  ('assignment', 'meeting_held', false, false),
  ('assignment', 'no_show', false, false),
  ('assignment', 'won', false, true),
  ('assignment', 'lost', false, true),
  ('assignment', 'paused', false, false),
  ('assignment', 'unsubscribed', false, true),
  ('assignment', 'bounced', false, true),
  ('assignment', 'suppressed', false, true),
  ('assignment', 'completed', false, true);

insert into public.status_transitions (entity, from_status, to_status) values
  -- pool: new → enriching → enriched → scored, or invalid when no usable channel remains;
  -- enriching → new releases a lead whose provider failed so it is retried, never lost;
  -- scored/enriched → enriching re-enriches; invalid → new after a correction.
  ('lead', 'new', 'enriching'),
  ('lead', 'new', 'invalid'),
  ('lead', 'enriching', 'enriched'),
  ('lead', 'enriching', 'new'),
  ('lead', 'enriching', 'invalid'),
  ('lead', 'enriched', 'scored'),
  ('lead', 'enriched', 'enriching'),
  ('lead', 'enriched', 'invalid'),
  ('lead', 'scored', 'enriching'),
  ('lead', 'scored', 'invalid'),
  ('lead', 'invalid', 'new'),
  -- assignment: the main line
  ('assignment', 'assigned', 'queued'),
  ('assignment', 'queued', 'in_sequence'),
  ('assignment', 'in_sequence', 'replied'),
  ('assignment', 'replied', 'interested'),
  ('assignment', 'replied', 'not_interested'),
  ('assignment', 'replied', 'meeting_booked'),
  ('assignment', 'interested', 'meeting_booked'),
  ('assignment', 'interested', 'not_interested'),  -- a reply reclassified by the client
  ('assignment', 'not_interested', 'interested'),  -- idem
  ('assignment', 'interested', 'lost'),
  ('assignment', 'not_interested', 'lost'),
  ('assignment', 'meeting_booked', 'meeting_held'),
  ('assignment', 'meeting_booked', 'no_show'),
  ('assignment', 'no_show', 'meeting_booked'),     -- rebooked
  ('assignment', 'meeting_held', 'won'),
  ('assignment', 'meeting_held', 'lost'),
  ('assignment', 'no_show', 'won'),
  ('assignment', 'no_show', 'lost'),
  -- a pause resumes where the sequence can pick up again
  ('assignment', 'paused', 'assigned'),
  ('assignment', 'paused', 'queued'),
  ('assignment', 'paused', 'in_sequence');

-- exits from every active state: paused, unsubscribed, bounced, suppressed
insert into public.status_transitions (entity, from_status, to_status)
select 'assignment', f.status, t.status
from public.lifecycle_statuses f
cross join (values ('paused'), ('unsubscribed'), ('bounced'), ('suppressed')) as t (status)
where f.entity = 'assignment' and not f.ends_work and f.status <> t.status
on conflict do nothing;
-- completed (the sequence finished without a reply) only from states before any reply
insert into public.status_transitions (entity, from_status, to_status) values
  ('assignment', 'assigned', 'completed'),
  ('assignment', 'queued', 'completed'),
  ('assignment', 'in_sequence', 'completed'),
  ('assignment', 'paused', 'completed');

-- -------------------------------------------------------------------------------------
-- Events: append-only audit of everything that changed, by whom and why
-- -------------------------------------------------------------------------------------
create table public.events (
  id bigint generated always as identity primary key,
  occurred_at timestamptz not null default now(),
  -- no foreign key: the audit trail outlives a deleted client, and append-only rows can't be nulled
  client_id uuid,
  entity_type text not null,
  entity_id uuid,
  kind text not null,
  from_status text,
  to_status text,
  actor_id uuid,
  actor_role text not null,
  reason text,
  data jsonb not null default '{}'::jsonb
);
comment on table public.events is 'Append-only audit trail: status changes (who, when, from, to, why) and other facts. Never updated or deleted.';
create index events_client_id_occurred_at_idx on public.events (client_id, occurred_at desc);
create index events_entity_idx on public.events (entity_type, entity_id, occurred_at desc);

create or replace function private.reject_event_change() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception using errcode = 'AOS05', message = 'events are append-only';
end;
$$;
create trigger events_append_only before update or delete on public.events
  for each row execute function private.reject_event_change();

alter table public.events enable row level security;
grant select on public.events to authenticated;
create policy "members read their client's events" on public.events
  for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));

-- -------------------------------------------------------------------------------------
-- Outbox: messages to publish to QStash, written in the same transaction as the change
-- -------------------------------------------------------------------------------------
create table public.outbox (
  id bigint generated always as identity primary key,
  topic text not null,
  client_id uuid,
  payload jsonb not null,
  created_at timestamptz not null default now(),
  available_at timestamptz not null default now(),
  published_at timestamptz,
  attempts integer not null default 0,
  last_error text
);
comment on table public.outbox is 'Work to publish to QStash. The publisher uses the id as deduplication id, so rolled-back work never publishes and committed work always does.';
create index outbox_unpublished_idx on public.outbox (available_at, id) where published_at is null;
-- service only: RLS on, no policy, no grant
alter table public.outbox enable row level security;

-- -------------------------------------------------------------------------------------
-- Who is acting: the JWT subject for portal users, or app.actor_id/app.actor_role set by a
-- pipeline step. The reason comes from app.reason (set_config(..., true) per transaction).
-- -------------------------------------------------------------------------------------
create or replace function private.current_actor_id() returns uuid
language sql stable
set search_path = ''
as $$
  select coalesce(auth.uid(), nullif(current_setting('app.actor_id', true), '')::uuid)
$$;

create or replace function private.current_actor_role() returns text
language sql stable
set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('app.actor_role', true), ''),
    case when auth.uid() is not null then 'user' end,
    'service'
  )
$$;

-- -------------------------------------------------------------------------------------
-- Status triggers
-- -------------------------------------------------------------------------------------
create or replace function private.check_initial_status() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_entity text := tg_argv[0];
begin
  if not exists (
    select 1 from public.lifecycle_statuses s
    where s.entity = v_entity and s.status = new.status and s.is_initial
  ) then
    raise exception using
      errcode = 'AOS04',
      message = format('a new %s must start in its initial status, not %s', v_entity, new.status),
      detail = json_build_object('entity', v_entity, 'to', new.status)::text;
  end if;
  return new;
end;
$$;
comment on function private.check_initial_status() is 'BEFORE INSERT: a new row starts in its state machine''s initial status.';

create or replace function private.check_status_transition() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_entity text := tg_argv[0];
begin
  if new.status is distinct from old.status then
    if not exists (
      select 1 from public.status_transitions t
      where t.entity = v_entity
        and t.from_status = old.status and t.to_status = new.status
    ) then
      raise exception using
        errcode = 'AOS01',
        message = format('illegal %s status transition from %s to %s', v_entity, old.status, new.status),
        detail = json_build_object('entity', v_entity, 'from', old.status, 'to', new.status)::text;
    end if;
    new.status_changed_at := now();
    if v_entity = 'assignment' then
      new.ended_at := case
        when (select s.ends_work from public.lifecycle_statuses s
              where s.entity = 'assignment' and s.status = new.status) then coalesce(old.ended_at, now())
        else null
      end;
      -- An ended assignment brought back (a reply reclassified) must respect another client's
      -- cool-off just as a new assignment does; the unique index covers an active one.
      if old.ended_at is not null and new.ended_at is null and exists (
        select 1 from public.lead_assignments a
        where a.lead_id = new.lead_id and a.id <> new.id and a.client_id <> new.client_id
          and a.ended_at > now() - make_interval(days => (select cooloff_days from public.agency_settings where id))
      ) then
        raise exception using
          errcode = 'AOS03',
          message = 'lead is in its cool-off period after another client''s assignment ended',
          detail = json_build_object('lead_id', new.lead_id)::text;
      end if;
    end if;
  end if;
  return new;
end;
$$;
comment on function private.check_status_transition() is 'BEFORE UPDATE: rejects any status change not in status_transitions (AOS01), stamps status_changed_at and ended_at.';

-- Statement-level, over transition tables, so a bulk update of 100k rows writes its history
-- and outbox rows in two set-based inserts rather than 200k single-row ones.
create or replace function private.record_status_changes() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  entity text := tg_argv[0];
  actor uuid := private.current_actor_id();
  actor_role text := private.current_actor_role();
  reason text := nullif(current_setting('app.reason', true), '');
begin
  if tg_op = 'INSERT' then
    insert into public.events (client_id, entity_type, entity_id, kind, to_status, actor_id, actor_role, reason)
    select n.client_id, entity, n.id, 'created', n.status, actor, actor_role, reason
    from new_rows n;
    insert into public.outbox (topic, client_id, payload)
    select entity || '.created', n.client_id,
           jsonb_build_object('id', n.id, 'lead_id', n.lead_id, 'client_id', n.client_id,
                              'campaign_id', n.campaign_id, 'status', n.status)
    from new_rows n;
    return null;
  end if;

  if entity = 'assignment' then
    insert into public.events (client_id, entity_type, entity_id, kind, from_status, to_status, actor_id, actor_role, reason)
    select n.client_id, entity, n.id, 'status_changed', o.status, n.status, actor, actor_role, reason
    from new_rows n join old_rows o using (id)
    where n.status is distinct from o.status;
    insert into public.outbox (topic, client_id, payload)
    select 'assignment.status_changed', n.client_id,
           jsonb_build_object('id', n.id, 'lead_id', n.lead_id, 'client_id', n.client_id,
                              'from', o.status, 'to', n.status, 'reason', reason)
    from new_rows n join old_rows o using (id)
    where n.status is distinct from o.status;
  else
    insert into public.events (client_id, entity_type, entity_id, kind, from_status, to_status, actor_id, actor_role, reason)
    select null, entity, n.id, 'status_changed', o.status, n.status, actor, actor_role, reason
    from new_rows n join old_rows o using (id)
    where n.status is distinct from o.status;
    insert into public.outbox (topic, payload)
    select 'lead.status_changed',
           jsonb_build_object('id', n.id, 'from', o.status, 'to', n.status, 'reason', reason)
    from new_rows n join old_rows o using (id)
    where n.status is distinct from o.status;
  end if;
  return null;
end;
$$;
comment on function private.record_status_changes() is 'AFTER statement: one events row (who, when, from, to, why) and one outbox row per status change.';

create trigger lead_pool_initial_status before insert on public.lead_pool
  for each row execute function private.check_initial_status('lead');
create trigger lead_pool_status_transition before update on public.lead_pool
  for each row execute function private.check_status_transition('lead');
create trigger lead_pool_status_history after update on public.lead_pool
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.record_status_changes('lead');

create trigger lead_assignments_initial_status before insert on public.lead_assignments
  for each row execute function private.check_initial_status('assignment');
create trigger lead_assignments_status_transition before update on public.lead_assignments
  for each row execute function private.check_status_transition('assignment');
create trigger lead_assignments_status_history after update on public.lead_assignments
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.record_status_changes('assignment');
create trigger lead_assignments_created_history after insert on public.lead_assignments
  referencing new table as new_rows
  for each statement execute function private.record_status_changes('assignment');

-- -------------------------------------------------------------------------------------
-- Cool-off. Exclusivity is the partial unique index lead_assignments_one_active_per_lead (the
-- hard guarantee under concurrency); this statement-level check refuses a new assignment while
-- another client's ended assignment of the lead is inside the cool-off.
-- -------------------------------------------------------------------------------------
create or replace function private.enforce_lead_exclusivity() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  cooloff interval := make_interval(days => (select cooloff_days from public.agency_settings where id));
  clash record;
begin
  select n.lead_id into clash
  from new_rows n
  join public.lead_assignments a
    on a.lead_id = n.lead_id and a.id <> n.id and a.client_id <> n.client_id
   and a.ended_at > now() - cooloff
  limit 1;
  if found then
    raise exception using
      errcode = 'AOS03',
      message = 'lead is in its cool-off period after another client''s assignment ended',
      detail = json_build_object('lead_id', clash.lead_id)::text;
  end if;
  return null;
end;
$$;
comment on function private.enforce_lead_exclusivity() is 'AFTER INSERT statement: the cool-off after another client''s assignment ended (AOS03).';

create trigger lead_assignments_exclusivity after insert on public.lead_assignments
  referencing new table as new_rows
  for each statement execute function private.enforce_lead_exclusivity();

