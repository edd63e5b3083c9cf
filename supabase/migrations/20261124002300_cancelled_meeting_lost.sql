-- =====================================================================================
-- A booked lead whose meeting was cancelled can be closed lost. Until now meeting_booked led only
-- to meeting_held or no_show, so a lead who called the meeting off stayed "meeting booked" in
-- every report. The closer (shared/engines/closer.ts) takes this step only for a cancelled
-- meeting; won still needs a held meeting or a no-show.
-- =====================================================================================
insert into public.status_transitions (entity, from_status, to_status)
values ('assignment', 'meeting_booked', 'lost')
on conflict do nothing;
