-- =====================================================================================
-- Inbound: provider webhook events (stored once per provider event id), replies and their
-- classification, meetings, and the clients' own outbound webhooks with their delivery log.
-- =====================================================================================

create table public.webhook_events (
  id bigint generated always as identity primary key,
  provider text not null check (provider in ('salesforge', 'twilio', 'clicksend', 'vapi', 'unipile', 'postgrid',
                                             'calcom', 'calendly', 'recovery')),
  event_id text not null check (length(event_id) between 1 and 500),
  event_type text not null,
  received_at timestamptz not null default now(),
  payload jsonb not null,
  processed_at timestamptz,
  attempts integer not null default 0,
  error text,
  unique (provider, event_id)
);
comment on table public.webhook_events is 'Every verified provider webhook, once (unique on the provider''s event id), processed asynchronously through QStash. Unverified requests are never stored.';
create index webhook_events_unprocessed_idx on public.webhook_events (received_at) where processed_at is null;

create table public.replies (
  id uuid primary key default gen_random_uuid(),
  client_id uuid references public.clients (id) on delete cascade,
  lead_id uuid references public.lead_pool (id) on delete set null,
  assignment_id uuid references public.lead_assignments (id) on delete set null,
  send_id uuid references public.sends (id) on delete set null,
  channel text not null check (channel in ('email', 'sms', 'voice', 'linkedin', 'mail')),
  provider text not null,
  provider_message_id text not null,
  from_address text,
  subject text,
  body text not null default '',
  received_at timestamptz not null default now(),
  webhook_event_id bigint references public.webhook_events (id) on delete set null,
  class text check (class in ('interested', 'meeting_request', 'question', 'not_now', 'out_of_office', 'referral',
                              'wrong_person', 'not_interested', 'unsubscribe', 'complaint', 'auto_reply', 'bounce')),
  class_source text check (class_source in ('keyword', 'llm', 'user', 'fallback')),
  confidence numeric(4, 3),
  details jsonb not null default '{}'::jsonb,
  suggested_answer text,
  classified_at timestamptz,
  acted_at timestamptz,
  reclassified_by uuid references auth.users (id) on delete set null,
  reclassified_at timestamptz,
  created_at timestamptz not null default now(),
  unique (provider, provider_message_id)
);
comment on table public.replies is 'Messages from people on any channel (email replies, texts, LinkedIn messages, call transcripts), matched to the lead and assignment, classified (product.md §7) and acted on. details: return date, follow-up date, referred person.';
create index replies_client_received_idx on public.replies (client_id, received_at desc, id desc);
create index replies_assignment_idx on public.replies (assignment_id);
create index replies_unclassified_idx on public.replies (received_at) where classified_at is null;

create table public.meetings (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.clients (id) on delete cascade,
  lead_id uuid references public.lead_pool (id) on delete set null,
  assignment_id uuid references public.lead_assignments (id) on delete set null,
  source text not null check (source in ('calcom', 'calendly', 'manual')),
  external_id text,
  status text not null default 'booked' check (status in ('booked', 'held', 'no_show', 'rescheduled', 'cancelled')),
  starts_at timestamptz not null,
  ends_at timestamptz,
  attendee_email text,
  attendee_name text,
  title text,
  join_url text,
  notes text,
  outcome_at timestamptz,
  crm_id text,
  crm_synced_at timestamptz,
  created_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (source, external_id)
);
comment on table public.meetings is 'Meetings booked from Cal.com / Calendly webhooks or by hand; outcomes move the assignment (closer engine) and go to the client''s CRM.';
create index meetings_client_starts_idx on public.meetings (client_id, starts_at desc);
create index meetings_assignment_idx on public.meetings (assignment_id);
create trigger meetings_touch before update on public.meetings
  for each row execute function private.touch_updated_at();

create table public.client_webhooks (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.clients (id) on delete cascade,
  url text not null check (url ~ '^https?://'),
  events text[] not null check (cardinality(events) > 0),
  -- Standard Webhooks secret (whsec_…); shown to the client once, at creation
  secret text not null,
  active boolean not null default true,
  created_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now()
);
comment on table public.client_webhooks is 'URLs a client registered for events (lead.replied, meeting.booked, …); deliveries are signed per Standard Webhooks.';
create index client_webhooks_client_idx on public.client_webhooks (client_id);

create table public.webhook_deliveries (
  id uuid primary key default gen_random_uuid(),
  webhook_id uuid not null references public.client_webhooks (id) on delete cascade,
  client_id uuid not null references public.clients (id) on delete cascade,
  event_type text not null,
  event_id text not null,
  payload jsonb not null,
  status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
  attempts integer not null default 0,
  last_status integer,
  last_error text,
  created_at timestamptz not null default now(),
  delivered_at timestamptz,
  unique (webhook_id, event_id)
);
comment on table public.webhook_deliveries is 'One row per (client webhook, event): attempts, last answer, replayable by hand.';
create index webhook_deliveries_client_idx on public.webhook_deliveries (client_id, created_at desc);

alter table public.webhook_events enable row level security;
alter table public.replies enable row level security;
alter table public.meetings enable row level security;
alter table public.client_webhooks enable row level security;
alter table public.webhook_deliveries enable row level security;

revoke all on public.webhook_events from anon, authenticated;
revoke all on public.replies, public.meetings, public.client_webhooks, public.webhook_deliveries from anon;

-- replies: members read; writers reclassify (through the replies function, column grants)
grant select on public.replies to authenticated;
grant update (class, class_source, reclassified_by, reclassified_at) on public.replies to authenticated;
create policy "members read replies" on public.replies for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
create policy "writers reclassify replies" on public.replies for update to authenticated
  using (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()))
  with check (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()));

-- meetings: members read; writers book by hand and record outcomes
grant select, insert on public.meetings to authenticated;
grant update (status, starts_at, ends_at, notes, outcome_at, title, join_url) on public.meetings to authenticated;
create policy "members read meetings" on public.meetings for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
create policy "writers book meetings" on public.meetings for insert to authenticated
  with check (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()));
create policy "writers update meetings" on public.meetings for update to authenticated
  using (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()))
  with check (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()));

-- client webhooks: owners and members manage theirs; the secret column is readable (the API
-- shows it once and lists without it)
grant select, insert, delete on public.client_webhooks to authenticated;
grant update (url, events, active) on public.client_webhooks to authenticated;
create policy "members read webhooks" on public.client_webhooks for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
create policy "writers manage webhooks" on public.client_webhooks for all to authenticated
  using (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()))
  with check (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()));
grant select on public.webhook_deliveries to authenticated;
create policy "members read deliveries" on public.webhook_deliveries for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
