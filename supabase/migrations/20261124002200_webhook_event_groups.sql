-- =====================================================================================
-- Verified provider webhooks are stored in groups: the deliveries a webhook function receives
-- at the same moment share one statement and one commit (shared/webhooks/event-store.ts), and
-- the group's new events share one 'flow.inbound' {event_ids} message.
--
-- A plpgsql function rather than the statement itself: its two INSERTs are planned once per
-- connection and reused (functions run without prepared statements behind the transaction
-- pooler, so a plain statement is planned on every call), which is most of a small group's cost.
-- =====================================================================================

create or replace function private.store_webhook_events(p_events jsonb)
returns table (id bigint, provider text, event_id text)
language plpgsql
set search_path = ''
as $$
begin
  -- p_events: [{p: provider, e: event id, t: event type, d: payload}], one element per event id
  return query
  with stored as (
    -- in key order: two groups holding the same event ids (a retry racing its original) then
    -- take the unique index's locks in the same order, so one waits for the other instead of
    -- both deadlocking
    insert into public.webhook_events as w (provider, event_id, event_type, payload)
    select x.p, x.e, x.t, x.d from jsonb_to_recordset(p_events) as x (p text, e text, t text, d jsonb)
    order by x.p, x.e
    on conflict on constraint webhook_events_provider_event_id_key do nothing
    returning w.id, w.provider, w.event_id
  ), queued as (
    -- ids are never reused, so the group's smallest id names its message
    insert into public.outbox (topic, payload, dedup_key)
    select 'flow.inbound', jsonb_build_object('event_ids', jsonb_agg(s.id order by s.id)), 'flow.inbound:' || min(s.id)
    from stored s
    having count(*) > 0
  )
  select s.id, s.provider, s.event_id from stored s;
end
$$;
comment on function private.store_webhook_events(jsonb) is
  'Stores a group of verified webhook events once each (ON CONFLICT on provider + event id) and queues one flow.inbound {event_ids} message for the new ones; returns the new rows.';
revoke all on function private.store_webhook_events(jsonb) from public, anon, authenticated;
