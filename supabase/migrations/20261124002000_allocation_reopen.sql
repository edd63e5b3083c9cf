-- =====================================================================================
-- A campaign that gains room re-opens the leads that were waiting for room.
--
-- The allocator leaves a scored lead it could not place with a verdict (lead_allocation) and
-- looks at it again a day later. When the reason was "no campaign was open for it" or "every
-- fitting campaign was full", that day is too long once a campaign opens (activated, resumed)
-- or raises its daily_new_leads: the client would wait a day for leads sitting in the pool, and
-- the leads scored after the room filled would never be weighed against those placed before.
--
-- So the change stamps agency_settings.allocation_reopened_at and queues one allocation step in
-- the same transaction. The allocator treats no_matching_campaign / capacity_full verdicts older
-- than the stamp as stale (shared/engines/allocator.ts): the whole waiting pool is weighed again,
-- best first, and opening a campaign costs one row update however large the pool is. Verdicts
-- that do not depend on room (a gate, the agency's minimum tier, the cool-off) keep their day.
--
-- The trigger takes the allocator's advisory lock first: an allocation step already running
-- finishes before the stamp (its verdicts are then older than it), and none starts until this
-- transaction ends (the allocator only tries the lock, and looks again in a few seconds), so no
-- verdict written without seeing the open campaign can pass for a fresh one.
--
-- A trigger, so every path that opens a campaign (campaign_approve, campaign_resume, the service,
-- the demo) gets it. Only a campaign with room left today re-opens anything.
-- =====================================================================================

alter table public.agency_settings add column allocation_reopened_at timestamptz;
comment on column public.agency_settings.allocation_reopened_at is
  'When a campaign last opened or grew its daily_new_leads: the allocator''s no_matching_campaign / capacity_full verdicts older than this are looked at again at once.';

create or replace function private.reopen_leads_waiting_for_room() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.status = 'active'
     and (old.status is distinct from 'active' or new.daily_new_leads > old.daily_new_leads)
     -- room today, counted as the allocator counts it (a campaign that already started its
     -- daily_new_leads today re-opens nothing: the leads would only be turned away again)
     and new.daily_new_leads > (select count(*) from public.lead_assignments a
                                where a.campaign_id = new.id and a.created_at >= date_trunc('day', now())) then
    perform pg_advisory_xact_lock(hashtext('agency-os:allocator'));
    update public.agency_settings set allocation_reopened_at = clock_timestamp() where id;
    insert into public.outbox (topic, payload) values ('flow.allocation', '{}'::jsonb);
  end if;
  return null;
end
$$;
comment on function private.reopen_leads_waiting_for_room() is
  'After a campaign becomes active or raises daily_new_leads with room left today: stamps agency_settings.allocation_reopened_at (waiting verdicts before it are stale) and queues flow.allocation.';
revoke all on function private.reopen_leads_waiting_for_room() from public, anon, authenticated;

create trigger campaigns_reopen_leads_waiting_for_room
  after update of status, daily_new_leads on public.campaigns
  for each row execute function private.reopen_leads_waiting_for_room();
