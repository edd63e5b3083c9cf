-- =====================================================================================
-- Outreach: campaigns' sequences and sender pools, the facts the send gate needs (consent,
-- DNCR washes, public holidays, sending windows, spend), the scheduled steps of each
-- assignment, the sends themselves and every gate refusal.
--
-- Invariants held here rather than in TypeScript:
--   * one (assignment, step, channel, attempt) is sent at most once            sends unique index
--   * at most one touch per person per local day (first attempts)              sends unique index
--   * a campaign becomes active only once approved by a client owner or admin  campaigns trigger
--   * a client user cannot approve, activate or change send results            column privileges
-- The gate itself (which rules, in which order) is in the next migration.
-- =====================================================================================

-- ---------------------------------------------------------------------------------------
-- Campaigns: approval, pause, offer; steps and A/B variants
-- ---------------------------------------------------------------------------------------
alter table public.campaigns
  add column description text,
  add column offer text,
  add column sender_name text,
  add column submitted_at timestamptz,
  add column submitted_by uuid references auth.users (id) on delete set null,
  add column paused_at timestamptz,
  add column pause_reason text,
  add column source text not null default 'manual' check (source in ('manual', 'generated')),
  add column generation jsonb;
comment on column public.campaigns.generation is 'When drafted by Claude: model, tokens, cost and the prompt inputs.';

create or replace function private.guard_campaign_status() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.status = 'active' and new.approved_at is null then
    raise exception using errcode = 'AOS07',
      message = 'a campaign must be approved by a client owner or an admin before it is activated';
  end if;
  -- editing the sequence of an approved campaign is done through private functions that
  -- clear approved_at; nothing else may un-approve silently
  return new;
end;
$$;
create trigger campaigns_guard_status before insert or update on public.campaigns
  for each row execute function private.guard_campaign_status();

-- Client users change campaigns through the campaigns function; status and approval columns are
-- written only by security-definer functions that check the caller's role.
revoke update on public.campaigns from anon, authenticated;
grant update (name, icp_id, description, offer, sender_name, daily_new_leads) on public.campaigns to authenticated;

create table public.campaign_steps (
  id uuid primary key default gen_random_uuid(),
  campaign_id uuid not null,
  client_id uuid not null,
  position smallint not null check (position between 1 and 50),
  day_offset smallint not null check (day_offset between 0 and 365),
  channel text not null check (channel in ('email', 'sms', 'voice', 'linkedin', 'mail')),
  content_mode text not null default 'tiered' check (content_mode in ('tiered', 'template')),
  condition text not null default 'no_reply'
    check (condition in ('no_reply', 'linkedin_accepted', 'email_opened', 'phone_valid')),
  linkedin_action text check (linkedin_action in ('profile_view', 'invitation', 'message')),
  created_at timestamptz not null default now(),
  unique (campaign_id, position),
  unique (id, client_id),
  foreign key (campaign_id, client_id) references public.campaigns (id, client_id) on delete cascade,
  check ((channel = 'linkedin') = (linkedin_action is not null))
);
comment on table public.campaign_steps is 'A campaign''s sequence: {day offset, channel, content mode, condition}. tiered: content by the lead''s tier (product.md §3); template: the variant''s template for every tier.';
create index campaign_steps_client_id_idx on public.campaign_steps (client_id);

create table public.step_variants (
  id uuid primary key default gen_random_uuid(),
  step_id uuid not null,
  client_id uuid not null,
  label text not null check (label ~ '^[A-Z]$'),
  subject_template text,
  body_template text not null check (length(body_template) between 1 and 20000),
  weight smallint not null default 1 check (weight between 0 and 100),
  created_at timestamptz not null default now(),
  unique (step_id, label),
  foreign key (step_id, client_id) references public.campaign_steps (id, client_id) on delete cascade
);
comment on table public.step_variants is 'A/B variants of a step: the template (merge fields) and its traffic weight.';
create index step_variants_client_id_idx on public.step_variants (client_id);

-- ---------------------------------------------------------------------------------------
-- Senders: mailboxes, LinkedIn accounts, phone numbers, return addresses; caps and warm-up
-- ---------------------------------------------------------------------------------------
create table public.senders (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.clients (id) on delete cascade,
  channel text not null check (channel in ('email', 'sms', 'voice', 'linkedin', 'mail')),
  provider text not null check (provider in ('salesforge', 'twilio', 'clicksend', 'vapi', 'unipile', 'postgrid')),
  address text not null check (length(address) between 1 and 320),
  display_name text,
  provider_account_id text,
  daily_cap integer not null check (daily_cap between 0 and 10000),
  weekly_cap integer check (weekly_cap between 0 and 100000),
  warmup_started_on date,
  warmup_start_cap integer not null default 10 check (warmup_start_cap >= 0),
  warmup_daily_increase integer not null default 2 check (warmup_daily_increase >= 0),
  -- compliance S5: an alphanumeric SMS sender id must be on the ACMA Sender ID Register
  sender_id_registered boolean not null default false,
  postal_address jsonb,
  active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (id, client_id),
  unique (client_id, channel, address)
);
comment on table public.senders is 'A client''s sending identities. daily_cap: mailbox sends, LinkedIn messages, texts or calls per day; weekly_cap: LinkedIn invitations per week. During warm-up the day''s cap is warmup_start_cap + warmup_daily_increase per day since warmup_started_on, never above daily_cap.';
create trigger senders_touch before update on public.senders
  for each row execute function private.touch_updated_at();

create table public.campaign_senders (
  campaign_id uuid not null,
  sender_id uuid not null,
  client_id uuid not null,
  created_at timestamptz not null default now(),
  primary key (campaign_id, sender_id),
  foreign key (campaign_id, client_id) references public.campaigns (id, client_id) on delete cascade,
  foreign key (sender_id, client_id) references public.senders (id, client_id) on delete cascade
);
comment on table public.campaign_senders is 'A campaign''s sender pool. A sender serves one campaign at a time, so its caps are counted in one place.';
create unique index campaign_senders_one_campaign on public.campaign_senders (sender_id);
create index campaign_senders_client_id_idx on public.campaign_senders (client_id);

-- ---------------------------------------------------------------------------------------
-- Compliance facts: consent, DNCR washes, holidays, windows, company pauses
-- ---------------------------------------------------------------------------------------
create table public.lead_consents (
  id uuid primary key default gen_random_uuid(),
  lead_id uuid not null references public.lead_pool (id) on delete cascade,
  channel text not null check (channel in ('email', 'sms', 'voice', 'linkedin', 'mail')),
  basis text not null check (basis in ('express', 'inferred_conduct', 'inferred_publication',
                                       'existing_relationship', 'legitimate_interest')),
  evidence_url text,
  evidence_captured_at timestamptz,
  evidence jsonb not null default '{}'::jsonb,
  recorded_at timestamptz not null default now(),
  expires_at timestamptz,
  withdrawn_at timestamptz,
  -- compliance S1: inferred consent needs its evidence (where it was published, and when)
  check (basis in ('express', 'existing_relationship') or (evidence_url is not null and evidence_captured_at is not null))
);
comment on table public.lead_consents is 'The consent basis for contacting a person on a channel, with its evidence (compliance S1, D1-D2, G1). The gate accepts a basis per channel: calls need express consent under 3 months old unless it states its own expiry.';
create index lead_consents_lead_idx on public.lead_consents (lead_id, channel);

create table public.dncr_washes (
  phone_e164 text primary key check (phone_e164 ~ '^\+61[0-9]{8,10}$'),
  result text not null check (result in ('registered', 'not_registered', 'invalid')),
  washed_at timestamptz not null,
  client_reference_id text not null
);
comment on table public.dncr_washes is 'The latest Do Not Call Register wash of each Australian number. Valid for the 30 days ending on the day of the call (compliance D1); a missing or stale wash blocks calls and texts.';

create table public.dncr_wash_requests (
  phone_e164 text primary key check (phone_e164 ~ '^\+61[0-9]{8,10}$'),
  requested_at timestamptz not null default now(),
  client_reference_id text,
  attempts integer not null default 0,
  last_error text
);
comment on table public.dncr_wash_requests is 'Numbers the gate found unwashed or stale; the DNCR flow washes them (ClientReferenceId persisted before the call, so a timeout is recovered and never resubmitted).';

create table public.public_holidays (
  country text not null check (country ~ '^[A-Z]{2}$'),
  region text not null default '',
  day date not null,
  name text not null,
  primary key (country, day, region)
);
comment on table public.public_holidays is 'Public holidays from the date-holidays library. region '''' is national; a state''s own holidays carry its code. Calls and texts are never made on either.';

create table public.holiday_calendars (
  country text not null check (country ~ '^[A-Z]{2}$'),
  year smallint not null,
  loaded_at timestamptz not null default now(),
  primary key (country, year)
);
comment on table public.holiday_calendars is 'Which (country, year) calendars are loaded. Without one, the gate holds calls and texts to that country: an unknown holiday must not let a call through.';

create table public.send_windows (
  country text not null default '*' check (country = '*' or country ~ '^[A-Z]{2}$'),
  channel text not null check (channel in ('email', 'sms', 'voice', 'linkedin', 'mail')),
  isodow smallint not null check (isodow between 1 and 7),
  opens time not null,
  closes time not null check (closes > opens),
  primary key (country, channel, isodow)
);
comment on table public.send_windows is 'Local sending hours per channel and ISO weekday (1 = Monday). Country rows replace the default (*) rows for that country and channel, and must be at least as strict. A day without a row is closed.';

insert into public.send_windows (country, channel, isodow, opens, closes)
select '*', 'email', d, time '08:00', time '17:00' from generate_series(1, 5) d
union all select '*', c, d, time '09:00', time '20:00' from unnest(array['sms', 'voice']) c, generate_series(1, 5) d
union all select '*', c, 6, time '09:00', time '17:00' from unnest(array['sms', 'voice']) c
-- our own choice: LinkedIn actions and letters go out in office hours on weekdays
union all select '*', c, d, time '08:00', time '18:00' from unnest(array['linkedin', 'mail']) c, generate_series(1, 5) d;

alter table public.companies add column outreach_paused_until timestamptz;
alter table public.lead_pool add column postal_address jsonb,
  add column timezone_assumed boolean not null default false,
  add column region_code text;
comment on column public.lead_pool.region_code is 'The state/region code whose public holidays apply (date-holidays codes, e.g. VIC), set with the zone by the timing engine.';
comment on column public.lead_pool.timezone_assumed is 'The zone is a guess (a multi-zone country known without its state): calls and texts are not made on a guess.';
comment on column public.lead_pool.postal_address is 'Where a letter reaches the person (usually the office): {line1, line2, city, state, postcode, country}.';

-- Every zone name PostgreSQL knows, so planning can check a lead's zone without reading the
-- (slow) pg_timezone_names view per row.
create table private.time_zones (name text primary key);
insert into private.time_zones select name from pg_timezone_names on conflict do nothing;
comment on column public.companies.outreach_paused_until is 'Contact pressure: nobody at this company is contacted until then (14 days after a negative reply or an unsubscribe from anyone there).';

-- ---------------------------------------------------------------------------------------
-- Scheduled steps (one per assignment and campaign step), sends, refusals, batches, spend
-- ---------------------------------------------------------------------------------------
create table public.step_runs (
  id uuid primary key default gen_random_uuid(),
  assignment_id uuid not null references public.lead_assignments (id) on delete cascade,
  client_id uuid not null references public.clients (id) on delete cascade,
  campaign_id uuid not null,
  lead_id uuid not null,
  step_id uuid not null references public.campaign_steps (id) on delete cascade,
  position smallint not null,
  channel text not null,
  variant_id uuid references public.step_variants (id) on delete set null,
  due_at timestamptz not null,
  status text not null default 'scheduled'
    check (status in ('scheduled', 'awaiting_approval', 'approved', 'sent', 'skipped', 'cancelled')),
  -- the recipient's time zone, country and region (state), fixed when the step is planned
  timezone text not null,
  country text not null check (country ~ '^[A-Z]{2}$'),
  region text not null default '',
  timezone_assumed boolean not null default false,
  -- content, written by the content flow before the step is due
  subject text,
  body text,
  content_source text,
  content_model text,
  content_tokens jsonb,
  content_cost_cents numeric(12, 4) not null default 0,
  content_ready_at timestamptz,
  -- the content flow's lease while it writes (Claude calls run outside any transaction)
  content_claimed_until timestamptz,
  -- approval (co-pilot and manual modes)
  approval_expires_at timestamptz,
  decided_by uuid references auth.users (id) on delete set null,
  decided_at timestamptz,
  -- gate bookkeeping
  refusals integer not null default 0,
  last_refusal text,
  voice_attempts smallint not null default 0,
  created_at timestamptz not null default now(),
  -- no updated_at trigger: the gate rewrites 100k rows a tick and a row trigger doubles that cost;
  -- refusals, decisions and sends carry their own timestamps
  unique (assignment_id, step_id)
);
comment on table public.step_runs is 'Each assignment''s planned steps. The outreach flow gates the due ones; a refusal reschedules or skips a step with its reason, never drops it.';
create index step_runs_due_idx on public.step_runs (due_at) where status in ('scheduled', 'approved');
create index step_runs_content_idx on public.step_runs (due_at) where content_ready_at is null and status = 'scheduled';
create index step_runs_client_idx on public.step_runs (client_id, status, due_at);

create table public.dispatch_batches (
  id uuid primary key default gen_random_uuid(),
  channel text not null,
  send_count integer not null,
  created_at timestamptz not null default now(),
  finished_at timestamptz
);
comment on table public.dispatch_batches is 'Sends grouped for one QStash message each (one message per batch, not per send).';

create table public.sends (
  id uuid primary key default gen_random_uuid(),
  step_run_id uuid not null references public.step_runs (id) on delete cascade,
  assignment_id uuid not null,
  step_id uuid not null,
  channel text not null,
  attempt smallint not null default 1 check (attempt between 1 and 3),
  client_id uuid not null references public.clients (id) on delete cascade,
  campaign_id uuid not null,
  lead_id uuid not null,
  sender_id uuid references public.senders (id) on delete set null,
  consent_id uuid references public.lead_consents (id) on delete set null,
  touch_day date not null,
  -- LinkedIn: profile_view | invitation | message (the weekly invitation cap counts invitations)
  action text,
  batch_id uuid references public.dispatch_batches (id) on delete set null,
  status text not null default 'pending'
    check (status in ('pending', 'dispatching', 'sent', 'delivered', 'failed', 'bounced', 'unknown')),
  provider text,
  provider_message_id text,
  thread_ref text,
  cost_cents numeric(12, 4) not null default 0,
  error text,
  dispatch_attempts smallint not null default 0,
  lease_until timestamptz,
  next_attempt_at timestamptz,
  created_at timestamptz not null default now(),
  dispatched_at timestamptz,
  delivered_at timestamptz,
  opened_at timestamptz
);
comment on table public.sends is 'Every message the gate let through, recorded in the gate''s transaction. status: pending (batched) -> dispatching (leased) -> sent -> delivered | bounced; failed; unknown (the provider may have it: never resent blindly).';
create unique index sends_once_per_step on public.sends (assignment_id, step_id, channel, attempt);
create unique index sends_one_touch_per_day on public.sends (lead_id, touch_day) where attempt = 1;
create index sends_batch_idx on public.sends (batch_id) where status in ('pending', 'dispatching');
create index sends_client_created_idx on public.sends (client_id, created_at desc);
create index sends_sender_created_idx on public.sends (sender_id, created_at);
create index sends_provider_message_idx on public.sends (provider, provider_message_id) where provider_message_id is not null;

create table public.gate_refusals (
  id bigint generated always as identity primary key,
  step_run_id uuid not null references public.step_runs (id) on delete cascade,
  client_id uuid not null,
  channel text not null,
  reason text not null,
  outcome text not null check (outcome in ('rescheduled', 'skipped', 'awaiting_approval')),
  retry_at timestamptz,
  decided_at timestamptz not null default now()
);
comment on table public.gate_refusals is 'Every send the gate held back, with its reason and what became of the step.';
create index gate_refusals_client_idx on public.gate_refusals (client_id, decided_at desc);
create index gate_refusals_step_idx on public.gate_refusals (step_run_id);

create table public.client_spend (
  client_id uuid not null references public.clients (id) on delete cascade,
  month date not null check (extract(day from month) = 1),
  llm_cents numeric(14, 4) not null default 0,
  provider_cents numeric(14, 4) not null default 0,
  first_touches integer not null default 0,
  primary key (client_id, month)
);
comment on table public.client_spend is 'Running monthly totals the gate checks against the client''s plan: LLM and provider spend, and leads first contacted (the lead quota).';

-- ---------------------------------------------------------------------------------------
-- Row-level security
-- ---------------------------------------------------------------------------------------
alter table public.campaign_steps enable row level security;
alter table public.step_variants enable row level security;
alter table public.senders enable row level security;
alter table public.campaign_senders enable row level security;
alter table public.lead_consents enable row level security;
alter table public.dncr_washes enable row level security;
alter table public.dncr_wash_requests enable row level security;
alter table public.public_holidays enable row level security;
alter table public.holiday_calendars enable row level security;
alter table public.send_windows enable row level security;
alter table public.step_runs enable row level security;
alter table public.dispatch_batches enable row level security;
alter table public.sends enable row level security;
alter table public.gate_refusals enable row level security;
alter table public.client_spend enable row level security;

revoke all on public.dncr_washes, public.dncr_wash_requests, public.dispatch_batches from anon, authenticated;
revoke all on public.campaign_steps, public.step_variants, public.senders, public.campaign_senders,
  public.lead_consents, public.public_holidays, public.holiday_calendars, public.send_windows,
  public.step_runs, public.sends, public.gate_refusals, public.client_spend from anon;

-- sequences and sender pools: members read, writers edit (the campaigns function re-submits
-- an edited campaign for approval)
grant select, insert, update, delete on public.campaign_steps, public.step_variants, public.campaign_senders to authenticated;
grant select, insert, delete on public.senders to authenticated;
grant update (display_name, daily_cap, weekly_cap, warmup_started_on, warmup_start_cap, warmup_daily_increase,
  postal_address, active) on public.senders to authenticated;
create policy "members read steps" on public.campaign_steps for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
create policy "writers change steps" on public.campaign_steps for all to authenticated
  using (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()))
  with check (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()));
create policy "members read variants" on public.step_variants for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
create policy "writers change variants" on public.step_variants for all to authenticated
  using (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()))
  with check (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()));
create policy "members read senders" on public.senders for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
create policy "writers change senders" on public.senders for all to authenticated
  using (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()))
  with check (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()));
create policy "members read sender pools" on public.campaign_senders for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
create policy "writers change sender pools" on public.campaign_senders for all to authenticated
  using (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()))
  with check (client_id in (select private.my_writable_client_ids()) or (select private.is_platform_admin()));

-- consent evidence: readable for the client's own leads, recorded by the agency
grant select on public.lead_consents to authenticated;
create policy "members read consent of their leads" on public.lead_consents for select to authenticated
  using (lead_id in (select private.my_lead_ids()) or (select private.is_platform_admin()));

-- reference data everyone may read
grant select on public.public_holidays, public.holiday_calendars, public.send_windows to authenticated;
create policy "everyone reads holidays" on public.public_holidays for select to authenticated using (true);
create policy "everyone reads calendars" on public.holiday_calendars for select to authenticated using (true);
create policy "everyone reads windows" on public.send_windows for select to authenticated using (true);

-- the outreach record: read-only for client users; approval decisions go through a function
grant select on public.step_runs, public.sends, public.gate_refusals, public.client_spend to authenticated;
create policy "members read step runs" on public.step_runs for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
create policy "members read sends" on public.sends for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
create policy "members read refusals" on public.gate_refusals for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
create policy "members read spend" on public.client_spend for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));
