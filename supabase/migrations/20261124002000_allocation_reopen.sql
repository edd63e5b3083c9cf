-- =====================================================================================
-- A campaign that gains room re-opens the leads that were waiting for room.
--
-- The allocator leaves a scored lead it could not place with a verdict (lead_allocation) and
-- looks at it again a day later. When the reason was "no campaign was open for it" or "every
-- fitting campaign was full", that day is too long once a campaign opens (activated, resumed)
-- or raises its daily_new_leads: the client would wait a day for leads sitting in the pool, and
-- the leads scored after the room filled would never be weighed against those placed before.
-- So the change itself forgets those verdicts and queues one allocation step in the same
-- transaction: the allocator then takes every waiting lead best-first (by ALS score).
--
-- The rule is a trigger so every path that opens a campaign (campaign_approve, campaign_resume,
-- the service, the demo) gets it. Only a campaign with room left today re-opens anything. Verdicts that do not depend on room (a gate, the agency's
-- minimum tier, the cool-off) are kept.
-- =====================================================================================

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
    delete from public.lead_allocation where reason in ('no_matching_campaign', 'capacity_full');
    if found then
      insert into public.outbox (topic, payload) values ('flow.allocation', '{}'::jsonb);
    end if;
  end if;
  return null;
end
$$;
comment on function private.reopen_leads_waiting_for_room() is
  'After a campaign becomes active or raises daily_new_leads: forgets the allocator''s no_matching_campaign and capacity_full verdicts and queues flow.allocation, so waiting leads are placed now, best first.';
revoke all on function private.reopen_leads_waiting_for_room() from public, anon, authenticated;

create trigger campaigns_reopen_leads_waiting_for_room
  after update of status, daily_new_leads on public.campaigns
  for each row execute function private.reopen_leads_waiting_for_room();
