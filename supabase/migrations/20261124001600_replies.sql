-- =====================================================================================
-- Replies: what the reply engine (shared/engines/reply-actions.ts) needs beyond 001400.
--
--   * not-now follow-ups. A "not now" reply stops the sequence (assignment → replied) and plans
--     ONE follow-up at the date the person gave (else +90 days). The gate sends steps only while
--     the assignment is assigned|queued|in_sequence, so at the follow-up date the flow moves the
--     assignment replied → in_sequence and reschedules the follow-up step in one transaction
--     (never before: a step left 'scheduled' under a replied assignment would be cancelled by the
--     gate). reply_follow_ups holds the plan until then.
--   * the cursors of the reply-recovery flow (what each provider account was polled up to).
--   * the client's booking link, which a meeting request's suggested answer carries.
-- =====================================================================================

-- a not-now reply's follow-up resumes the sequence for that one step
insert into public.status_transitions (entity, from_status, to_status) values
  ('assignment', 'replied', 'in_sequence')
on conflict do nothing;

alter table public.clients add column booking_url text check (booking_url is null or booking_url ~ '^https?://');
comment on column public.clients.booking_url is 'Where prospects book a meeting (Cal.com / Calendly page); put in the suggested answer to a meeting request.';

create table public.reply_follow_ups (
  id uuid primary key default gen_random_uuid(),
  -- one plan per reply: reclassifying the reply replaces or cancels it
  reply_id uuid not null unique references public.replies (id) on delete cascade,
  assignment_id uuid not null references public.lead_assignments (id) on delete cascade,
  client_id uuid not null references public.clients (id) on delete cascade,
  -- the campaign step that is sent again at due_at (the first one not sent); null: none left, a
  -- person follows up by hand (an events row says so when it is due)
  step_run_id uuid references public.step_runs (id) on delete set null,
  due_at timestamptz not null,
  status text not null default 'scheduled' check (status in ('scheduled', 'resumed', 'manual', 'cancelled')),
  outcome text,
  created_at timestamptz not null default now(),
  resolved_at timestamptz
);
comment on table public.reply_follow_ups is 'The follow-up a not-now reply asked for (product.md §7): at due_at the assignment goes replied → in_sequence and step_run_id is rescheduled, unless the person replied otherwise since (then cancelled).';
create index reply_follow_ups_due_idx on public.reply_follow_ups (due_at) where status = 'scheduled';
create index reply_follow_ups_assignment_idx on public.reply_follow_ups (assignment_id);
create index reply_follow_ups_client_idx on public.reply_follow_ups (client_id);

create table public.reply_recovery_cursors (
  -- 'salesforge' or 'unipile:<account id>'
  source text primary key,
  -- keyset of what has been read: threads / chats ordered by (last activity, id) up to and
  -- including (watermark, watermark_id)
  watermark timestamptz not null,
  watermark_id text not null default '',
  polled_at timestamptz not null default now(),
  found integer not null default 0,
  last_error text
);
comment on table public.reply_recovery_cursors is 'How far the reply-recovery flow has read each provider account: threads or chats after (watermark, watermark_id) in (last activity, id) order are read; new activity moves a thread past the cursor again.';

alter table public.reply_follow_ups enable row level security;
alter table public.reply_recovery_cursors enable row level security;
revoke all on public.reply_follow_ups, public.reply_recovery_cursors from anon, authenticated;
grant select on public.reply_follow_ups to authenticated;
create policy "members read follow-ups" on public.reply_follow_ups for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
-- reply_recovery_cursors: service only (RLS on, no policy, no grant)

-- the unified inbox groups a client's replies by thread (assignment, else lead)
create index replies_client_thread_idx on public.replies (client_id, (coalesce(assignment_id, lead_id, id)), received_at desc);
create index replies_unacted_idx on public.replies (received_at) where acted_at is null;
