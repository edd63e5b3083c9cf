-- =====================================================================================
-- The send gate, the sequence planner and the helpers they share.
--
-- private.gate_due_steps() is the ONE place a message is allowed out: it claims due step runs
-- (FOR UPDATE SKIP LOCKED), checks every rule of product.md §6 set-based, and in the same
-- transaction records the sends that pass (grouped into dispatch batches, one outbox row per
-- batch) and a gate_refusals row for every one that doesn't, rescheduling or skipping its step.
-- Each rule is one UPDATE below, in the order the refusal reason is reported.
-- =====================================================================================

-- ---------------------------------------------------------------------------------------
-- Small pure rules. The ones the gate evaluates per row are plain SQL functions WITHOUT a
-- `set search_path` clause: a SET clause stops PostgreSQL from inlining them (measured: 3x
-- slower at 100k rows). They are not security definer and name every object by schema.
-- ---------------------------------------------------------------------------------------

-- product.md §3: which channels each tier may use
create or replace function private.tier_allows(p_tier text, p_channel text) returns boolean
language sql immutable
as $$
  select case p_tier
    when 'hot' then p_channel in ('email', 'linkedin', 'sms', 'voice', 'mail')
    when 'warm' then p_channel in ('email', 'linkedin', 'sms', 'voice')
    when 'cool' then p_channel in ('email', 'linkedin')
    when 'cold' then p_channel = 'email'
    else false
  end
$$;

-- product.md §6.4: a mailbox ramps by warmup_daily_increase a day from warmup_start_cap, never above daily_cap
create or replace function private.sender_daily_cap(
  p_daily_cap integer, p_warmup_started_on date, p_start_cap integer, p_increase integer, p_day date
) returns integer
language sql immutable
as $$
  select case
    when p_warmup_started_on is null then p_daily_cap
    when p_day < p_warmup_started_on then 0
    else least(p_daily_cap, p_start_cap + p_increase * (p_day - p_warmup_started_on))
  end
$$;

-- The windows that apply to a country and channel: its own rows if it has any, else the defaults.
create or replace function private.effective_window(p_channel text, p_country text, p_isodow integer)
returns table (opens time, closes time)
language sql stable
set search_path = ''
as $$
  select w.opens, w.closes from public.send_windows w
  where w.channel = p_channel and w.isodow = p_isodow
    and w.country = case
      when exists (select 1 from public.send_windows x where x.country = p_country and x.channel = p_channel)
      then p_country else '*' end
$$;

-- Calls and texts never go out on a national or the recipient's regional public holiday.
create or replace function private.is_holiday(p_channel text, p_country text, p_region text, p_day date)
returns boolean
language sql stable
set search_path = ''
as $$
  select p_channel in ('sms', 'voice') and exists (
    select 1 from public.public_holidays h
    where h.country = p_country and h.day = p_day and h.region in ('', coalesce(p_region, '')))
$$;

-- Is a send on this channel allowed at this instant in the recipient's local time?
create or replace function private.window_open(p_channel text, p_country text, p_region text, p_tz text, p_at timestamptz)
returns boolean
language sql stable
set search_path = ''
as $$
  select not private.is_holiday(p_channel, p_country, p_region, (p_at at time zone p_tz)::date)
     and exists (
       select 1 from private.effective_window(p_channel, p_country, extract(isodow from (p_at at time zone p_tz))::integer) w
       where (p_at at time zone p_tz)::time >= w.opens and (p_at at time zone p_tz)::time < w.closes)
$$;

-- The next instant at or after p_at when the window is open (null if none within 3 weeks).
-- Walks local calendar days, so daylight-saving changes and holidays fall out of the arithmetic.
create or replace function private.next_window_start(p_channel text, p_country text, p_region text, p_tz text, p_at timestamptz)
returns timestamptz
language plpgsql stable
set search_path = ''
as $$
declare
  v_local timestamp := p_at at time zone p_tz;
  v_day date;
  v_opens time;
  v_closes time;
begin
  for i in 0..21 loop
    v_day := v_local::date + i;
    continue when private.is_holiday(p_channel, p_country, p_region, v_day);
    select w.opens, w.closes into v_opens, v_closes
    from private.effective_window(p_channel, p_country, extract(isodow from v_day)::integer) w;
    continue when v_opens is null;
    if i = 0 then
      continue when v_local::time >= v_closes;
      return (v_day + greatest(v_opens, v_local::time)) at time zone p_tz;
    end if;
    return (v_day + v_opens) at time zone p_tz;
  end loop;
  return null;
end;
$$;

-- A few seconds to minutes of spread, repeatable per step run and attempt (the timing engine's jitter).
create or replace function private.jitter(p_seed text, p_max_seconds integer) returns interval
language sql immutable
as $$
  select make_interval(secs => abs(hashtext(p_seed)) % greatest(p_max_seconds, 1))
$$;

-- §6.1 Suppression, global or the client's: the channel's own address counts (a bounce is per
-- address; an unsubscribe suppresses every identifier of the person); a letter goes to the person,
-- so any of their identifiers stops it. Used by the gate and again by the dispatcher.
create or replace function private.is_suppressed(
  p_channel text, p_client_id uuid, p_email text, p_company_domain text, p_phone text, p_linkedin text
) returns boolean
language sql stable
as $$
  select exists (
    select 1 from public.suppressions s
    where (s.client_id is null or s.client_id = p_client_id)
      and (
        (p_channel in ('email', 'mail') and s.kind = 'email' and s.value = p_email)
        or (p_channel in ('email', 'mail') and s.kind = 'domain'
            and s.value in (split_part(p_email, '@', 2), p_company_domain))
        or (p_channel in ('sms', 'voice', 'mail') and s.kind = 'phone' and s.value = p_phone)
        or (p_channel in ('linkedin', 'mail') and s.kind = 'linkedin' and s.value = p_linkedin)
      ))
$$;

-- ---------------------------------------------------------------------------------------
-- Consent (compliance S1, D1-D2, G1): the newest valid basis for a lead and channel
-- ---------------------------------------------------------------------------------------
create or replace function private.consent_for(p_lead_id uuid, p_channel text, p_country text, p_now timestamptz)
returns uuid
language sql stable
as $$
  select c.id from public.lead_consents c
  where c.lead_id = p_lead_id and c.channel = p_channel
    and c.withdrawn_at is null
    and (c.expires_at is null or c.expires_at > p_now)
    and case p_channel
      -- calls: express consent only, lapsing after 3 months unless it states its own period (D2)
      when 'voice' then c.basis = 'express' and (c.expires_at is not null or c.recorded_at > p_now - interval '3 months')
      when 'sms' then c.basis in ('express', 'inferred_conduct', 'inferred_publication', 'existing_relationship')
      -- legitimate interest (GDPR 6(1)(f)) is a basis outside Australia only (the Spam Act needs consent)
      else c.basis in ('express', 'inferred_conduct', 'inferred_publication', 'existing_relationship')
        or (c.basis = 'legitimate_interest' and p_country <> 'AU')
    end
  order by c.recorded_at desc
  limit 1
$$;

-- ---------------------------------------------------------------------------------------
-- The planner: an assignment whose campaign is active gets one step run per campaign step
-- ---------------------------------------------------------------------------------------
create or replace function private.plan_step_runs(p_limit integer default 1000, p_now timestamptz default now())
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_planned integer;
begin
  create temp table _plan on commit drop as
  select a.id, a.client_id, a.campaign_id, a.lead_id
  from public.lead_assignments a
  join public.campaigns cp on cp.id = a.campaign_id and cp.status = 'active'
  where a.status = 'assigned' and a.ended_at is null
    and exists (select 1 from public.campaign_steps st where st.campaign_id = a.campaign_id)
    -- the timing flow resolves the recipient's zone first (it always finds one: the client's last)
    and exists (select 1 from public.lead_pool l where l.id = a.lead_id and l.timezone is not null)
  order by a.created_at, a.id
  limit p_limit
  for update of a skip locked;

  insert into public.step_runs (assignment_id, client_id, campaign_id, lead_id, step_id, position, channel,
                                variant_id, due_at, timezone, country, region, timezone_assumed)
  select p.id, p.client_id, p.campaign_id, p.lead_id, st.id, st.position, st.channel, var.id,
         p_now + make_interval(days => st.day_offset),
         -- the recipient's zone (resolved from location, phone or company by the timing engine),
         -- else the client's
         case when l.timezone in (select z.name from private.time_zones z) then l.timezone else c.timezone end,
         coalesce(l.country, l.phone_country, co.country, 'AU'),
         coalesce(l.region_code, upper(l.state), ''),
         l.timezone_assumed
  from _plan p
  join public.campaign_steps st on st.campaign_id = p.campaign_id
  join public.lead_pool l on l.id = p.lead_id
  join public.clients c on c.id = p.client_id
  left join public.companies co on co.domain = lower(l.company_domain)
  -- an A/B variant by weight, repeatable per assignment and step
  left join lateral (
    select v.id from (
      select v.id, sum(v.weight) over (order by v.label) as upto, sum(v.weight) over () as total
      from public.step_variants v where v.step_id = st.id and v.weight > 0
    ) v
    where v.upto > abs(hashtext(p.id::text || st.id::text)) % v.total
    order by v.upto
    limit 1
  ) var on true
  on conflict (assignment_id, step_id) do nothing;

  perform set_config('app.reason', 'sequence planned', true);
  update public.lead_assignments a set status = 'queued' from _plan p where a.id = p.id;
  get diagnostics v_planned = row_count;
  drop table _plan;
  return v_planned;
end;
$$;

-- A sequence with nothing left to send, whose last send is 3 days old without a reply, is completed.
create or replace function private.complete_finished_sequences(p_limit integer default 1000, p_now timestamptz default now())
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_done integer;
begin
  perform set_config('app.reason', 'sequence finished without a reply', true);
  update public.lead_assignments a set status = 'completed'
  where a.id in (
    select a2.id from public.lead_assignments a2
    where a2.status in ('queued', 'in_sequence')
      and not exists (select 1 from public.step_runs r
                      where r.assignment_id = a2.id and r.status in ('scheduled', 'awaiting_approval', 'approved'))
      and exists (select 1 from public.step_runs r where r.assignment_id = a2.id)
      and not exists (select 1 from public.sends s where s.assignment_id = a2.id and s.created_at > p_now - interval '3 days')
    limit p_limit
    for update skip locked);
  get diagnostics v_done = row_count;
  return v_done;
end;
$$;

-- ---------------------------------------------------------------------------------------
-- The gate
-- ---------------------------------------------------------------------------------------
create or replace function private.gate_due_steps(
  p_limit integer default 1000,
  p_batch_size integer default 100,
  p_now timestamptz default now()
) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_claimed integer;
  v_sent integer;
  v_batches integer;
  v_refused jsonb;
begin
  -- Unapproved messages are never sent late: when their approval window closes they are skipped.
  with expired as (
    update public.step_runs r set status = 'skipped', last_refusal = 'approval_expired'
    where r.status = 'awaiting_approval' and r.approval_expires_at <= p_now
    returning r.id, r.client_id, r.channel
  )
  insert into public.gate_refusals (step_run_id, client_id, channel, reason, outcome, decided_at)
  select id, client_id, channel, 'approval_expired', 'skipped', p_now from expired;

  -- 1. claim the due step runs; a concurrent tick skips them
  create temp table _g on commit drop as
  with due as (
    select sr.id from public.step_runs sr
    where sr.status in ('scheduled', 'approved') and sr.due_at <= p_now
    -- due_at alone, so the partial index serves the order and the limit (no sort of every due row)
    order by sr.due_at
    limit p_limit
    for update skip locked
  )
  select sr.id, sr.assignment_id, sr.client_id, sr.campaign_id, sr.lead_id, sr.step_id, sr.position,
         sr.channel, sr.status as run_status, sr.timezone, sr.country, sr.region, sr.timezone_assumed, sr.due_at,
         sr.body is not null as content_ready, sr.approval_expires_at, sr.refusals, sr.voice_attempts,
         (p_now at time zone sr.timezone) as local_ts,
         a.status as a_status, a.als_tier as tier,
         c.status as c_status, c.emergency_paused, c.permission_mode, c.timezone as client_tz,
         c.monthly_lead_quota, c.monthly_llm_budget_cents + c.monthly_provider_budget_cents as budget_cents,
         cp.status as cp_status, st.condition, st.linkedin_action,
         l.email_normalized as email, l.email_status, l.phone_e164, l.linkedin_key, l.postal_address,
         nullif(lower(l.company_domain), '') as company_domain,
         not exists (select 1 from public.sends s where s.assignment_id = sr.assignment_id) as first_touch,
         null::text as reason,
         null::timestamptz as retry_at,
         -- §6.7 the consent basis with its evidence (letters need none)
         case when sr.channel <> 'mail' then private.consent_for(sr.lead_id, sr.channel, sr.country, p_now) end as consent_id
  from due d
  join public.step_runs sr on sr.id = d.id
  join public.lead_assignments a on a.id = sr.assignment_id
  join public.clients c on c.id = sr.client_id
  join public.campaigns cp on cp.id = sr.campaign_id
  join public.campaign_steps st on st.id = sr.step_id
  join public.lead_pool l on l.id = sr.lead_id;
  get diagnostics v_claimed = row_count;
  create index on _g (id);
  -- temp tables have no statistics until analysed: without them the self-joins below go quadratic
  analyze _g;

  -- 2. the rules, each one statement; the first that fails names the refusal

  -- the person is no longer being worked (replied, unsubscribed, bounced, completed…)
  update _g set reason = 'assignment_inactive'
  where reason is null and a_status not in ('assigned', 'queued', 'in_sequence');
  -- paused or unapproved campaigns, inactive clients and the client's emergency pause hold the step
  update _g set reason = 'campaign_inactive' where reason is null and cp_status <> 'active';
  update _g set reason = 'client_inactive' where reason is null and c_status not in ('trialing', 'active');
  update _g set reason = 'emergency_pause' where reason is null and emergency_paused;
  -- the lead's tier must allow the channel (product.md §3); a tier change re-plans unsent steps here
  update _g set reason = 'tier_channel' where reason is null and not private.tier_allows(tier, channel);
  -- a usable address for the channel
  update _g set reason = 'no_address' where reason is null and case channel
    when 'email' then email is null or email_status = 'invalid'
    when 'sms' then phone_e164 is null
    when 'voice' then phone_e164 is null
    when 'linkedin' then linkedin_key is null
    when 'mail' then postal_address is null
  end;
  -- calls and texts keep to the recipient's hours: a guessed zone (a multi-zone country without
  -- the state) could put 09:00 Sydney at 06:00 in Perth
  update _g set reason = 'timezone_uncertain'
  where reason is null and channel in ('sms', 'voice') and timezone_assumed;
  -- §6.1 suppression, global or the client's
  update _g g set reason = 'suppressed'
  where g.reason is null
    and private.is_suppressed(g.channel, g.client_id, g.email, g.company_domain, g.phone_e164, g.linkedin_key);
  -- the step's condition (product.md §5); most steps are 'no_reply', which the status check covers
  if exists (select 1 from _g where reason is null and condition <> 'no_reply') then
  update _g g set reason = 'condition_not_met' where g.reason is null and g.condition <> 'no_reply' and case g.condition
    when 'no_reply' then false
    when 'linkedin_accepted' then not exists (
      select 1 from public.sends s where s.assignment_id = g.assignment_id and s.action = 'invitation'
        and s.status = 'delivered')
    when 'email_opened' then not exists (
      select 1 from public.sends s where s.assignment_id = g.assignment_id and s.channel = 'email'
        and s.opened_at is not null)
    when 'phone_valid' then g.phone_e164 is null or exists (
      select 1 from public.dncr_washes w where w.phone_e164 = g.phone_e164 and w.result = 'invalid')
  end;
  end if;
  -- §6.7 consent basis with evidence; letters need none
  update _g set reason = 'no_consent' where reason is null and channel <> 'mail' and consent_id is null;
  -- §6.2 DNCR before any call or text to an Australian number; a wash is good for the 30 days
  -- ending on the day of the call (Australian date); a missing or stale wash holds the step
  update _g g set reason = case w.result when 'registered' then 'dncr_registered' else 'dncr_invalid' end
  from public.dncr_washes w
  where g.reason is null and g.channel in ('sms', 'voice') and g.phone_e164 like '+61%'
    and w.phone_e164 = g.phone_e164 and w.result <> 'not_registered'
    and (w.washed_at at time zone 'Australia/Sydney')::date >= (p_now at time zone 'Australia/Sydney')::date - 30;
  update _g g set reason = 'dncr_unwashed'
  where g.reason is null and g.channel in ('sms', 'voice') and g.phone_e164 like '+61%'
    and not exists (
      select 1 from public.dncr_washes w
      where w.phone_e164 = g.phone_e164 and w.result = 'not_registered'
        and (w.washed_at at time zone 'Australia/Sydney')::date >= (p_now at time zone 'Australia/Sydney')::date - 30);
  insert into public.dncr_wash_requests (phone_e164)
  select distinct phone_e164 from _g where reason = 'dncr_unwashed'
  on conflict (phone_e164) do nothing;
  -- §6.3 the recipient's local window, weekday and holidays. Rows in the same zone, country, region
  -- and channel share the answer, so it is computed once per distinct zone (a handful, not per row).
  create temp table _zone on commit drop as
  select channel, country, region, timezone,
         -- calls and texts need the country's holiday calendar for the year: unknown holidays hold them
         channel not in ('sms', 'voice') or exists (
           select 1 from public.holiday_calendars hc
           where hc.country = z.country and hc.year = extract(year from (p_now at time zone z.timezone))::smallint
         ) as calendar_loaded,
         private.window_open(channel, country, region, timezone, p_now) as open,
         private.next_window_start(channel, country, region, timezone, p_now) as next_open,
         private.next_window_start(channel, country, region, timezone,
           (((p_now at time zone timezone)::date + 1)::timestamp at time zone timezone)) as next_day_open
  from (select distinct channel, country, region, timezone from _g) z;
  update _g g set reason = 'holiday_calendar_missing'
  from _zone z
  where g.reason is null and not z.calendar_loaded
    and z.channel = g.channel and z.country = g.country and z.region = g.region and z.timezone = g.timezone;
  update _g g set reason = 'outside_window'
  from _zone z
  where g.reason is null and not z.open
    and z.channel = g.channel and z.country = g.country and z.region = g.region and z.timezone = g.timezone;
  -- §6.8 contact pressure: the company is paused after a negative reply or an unsubscribe there…
  update _g g set reason = 'company_paused', retry_at = co.outreach_paused_until
  from public.companies co
  where g.reason is null and co.domain = g.company_domain and co.outreach_paused_until > p_now;
  -- …and one touch per person per local day, across all clients (also a unique index on sends)
  update _g g set reason = 'contact_pressure'
  where g.reason is null and exists (
    select 1 from public.sends s where s.lead_id = g.lead_id and s.touch_day = g.local_ts::date and s.attempt = 1);
  update _g g set reason = 'contact_pressure'
  from (select id, row_number() over (partition by lead_id order by position, id) as n
        from _g where reason is null) d
  where g.id = d.id and d.n > 1;
  -- the message must be written before it can go (or be approved)
  update _g set reason = 'content_pending' where reason is null and not content_ready;
  -- §1 approval: every message in manual mode, first touches of Hot and Warm leads in co-pilot
  update _g set reason = case
      when approval_expires_at is not null and approval_expires_at <= p_now then 'approval_expired'
      else 'awaiting_approval' end
  where reason is null and run_status <> 'approved'
    and (permission_mode = 'manual' or (permission_mode = 'co_pilot' and first_touch and tier in ('hot', 'warm')));
  -- §6.5 the client's monthly budget (LLM + provider spend) and lead quota (first touches)
  update _g g set reason = 'budget_exhausted'
  from public.client_spend sp
  where g.reason is null and sp.client_id = g.client_id and sp.month = date_trunc('month', p_now)::date
    and sp.llm_cents + sp.provider_cents >= g.budget_cents;
  update _g g set reason = 'lead_quota'
  from (
    select g2.id, row_number() over (partition by g2.client_id order by g2.due_at, g2.id) as n,
           g2.monthly_lead_quota - coalesce(sp.first_touches, 0) as remaining
    from _g g2
    left join public.client_spend sp on sp.client_id = g2.client_id and sp.month = date_trunc('month', p_now)::date
    where g2.reason is null and g2.first_touch
  ) q
  where g.id = q.id and q.n > q.remaining;

  -- §6.4 sender caps. Lock the pools' senders so concurrent ticks count each other's sends, then
  -- hand out each sender's remaining capacity for its day, interleaved across the pool.
  perform 1 from public.senders s
  where s.id in (select cs.sender_id from public.campaign_senders cs
                 where cs.campaign_id in (select distinct campaign_id from _g where reason is null))
  order by s.id
  for update;
  create temp table _cap on commit drop as
  select cs.campaign_id, s.id as sender_id, s.channel,
         greatest(0, least(
           private.sender_daily_cap(s.daily_cap, s.warmup_started_on, s.warmup_start_cap, s.warmup_daily_increase,
                                    (p_now at time zone c.timezone)::date)
             - (select count(*) from public.sends x
                where x.sender_id = s.id
                  and x.created_at >= (date_trunc('day', p_now at time zone c.timezone) at time zone c.timezone)),
           -- LinkedIn: the weekly invitation cap (conservatively stops the account's actions when spent)
           coalesce(s.weekly_cap - (select count(*) from public.sends x
                                    where x.sender_id = s.id and x.action = 'invitation'
                                      and x.created_at > p_now - interval '7 days'), 2147483647)
         ))::integer as remaining
  from public.campaign_senders cs
  join public.senders s on s.id = cs.sender_id and s.active
  join public.clients c on c.id = s.client_id
  where cs.campaign_id in (select distinct campaign_id from _g where reason is null)
    -- compliance S5: an alphanumeric SMS sender id must be registered
    and (s.channel <> 'sms' or s.address like '+%' or s.sender_id_registered);
  analyze _cap;
  -- the passing rows, each with its sender and its dispatch batch: p_batch_size per channel, in
  -- sender order (LinkedIn batches hold one account's actions, so one batch paces one person)
  create temp table _pass on commit drop as
  with needed as (
    select campaign_id, channel, count(*)::integer as n from _g where reason is null group by campaign_id, channel
  ), pool as (
    select c.campaign_id, c.channel, c.sender_id, c.remaining,
           row_number() over (partition by c.campaign_id, c.channel order by c.sender_id) as ord,
           count(*) over (partition by c.campaign_id, c.channel) as m,
           min(c.remaining) over (partition by c.campaign_id, c.channel) as min_remaining
    from _cap c where c.remaining > 0
  ), roomy as (
    -- every sender has room for its even share: plain round-robin, no slots to number
    select distinct p.campaign_id, p.channel from pool p
    join needed n on n.campaign_id = p.campaign_id and n.channel = p.channel
    where n.n <= p.m * p.min_remaining
  ), slots as (
    -- caps bind: each sender's remaining sends as numbered slots (no more than the rows need),
    -- interleaved, so the fuller senders take the rest
    select p.campaign_id, p.channel, p.sender_id,
           row_number() over (partition by p.campaign_id, p.channel order by slot, p.sender_id) as k
    from pool p
    join needed n on n.campaign_id = p.campaign_id and n.channel = p.channel,
    generate_series(1, least(p.remaining, n.n)) as slot
    where not exists (select 1 from roomy r where r.campaign_id = p.campaign_id and r.channel = p.channel)
  ), rows as (
    select id, campaign_id, channel,
           row_number() over (partition by campaign_id, channel order by due_at, id) as k
    from _g where reason is null
  ), matched as (
    select r.id, r.channel, p.sender_id
    from rows r
    join roomy y on y.campaign_id = r.campaign_id and y.channel = r.channel
    join pool p on p.campaign_id = r.campaign_id and p.channel = r.channel and p.ord = (r.k - 1) % p.m + 1
    union all
    select r.id, r.channel, s.sender_id
    from rows r join slots s on s.campaign_id = r.campaign_id and s.channel = r.channel and s.k = r.k
  )
  select id, channel, sender_id,
         md5(txid_current()::text || ':' || channel || ':'
             || (row_number() over (partition by channel order by sender_id, id) - 1) / p_batch_size)::uuid as batch_id,
         null::timestamptz as not_before
  from matched;
  create index on _pass (id);
  analyze _pass;
  update _g g set reason = 'sender_cap'
  where g.reason is null and not exists (select 1 from _pass p where p.id = g.id);

  -- LinkedIn is paced like a person: 8–45 minutes between one account's actions (so never more
  -- than 8 an hour), continuing after the account's last action
  update _pass p set not_before = greatest(p_now, coalesce(last.at, p_now - interval '1 hour') + interval '8 minutes')
    + coalesce(pace.before, interval '0')
  from (
    select id, sender_id, sum(make_interval(mins => 8 + abs(hashtext(id::text)) % 38))
             over (partition by sender_id order by id rows between unbounded preceding and 1 preceding) as before
    from _pass where channel = 'linkedin'
  ) pace
  left join lateral (
    select max(coalesce(x.next_attempt_at, x.created_at)) as at from public.sends x
    where x.sender_id = pace.sender_id and x.channel = 'linkedin'
  ) last on true
  where p.id = pace.id;

  -- 3. record what passed
  create temp table _bid on commit drop as
  select channel, batch_id as id, count(*)::integer as cnt, min(not_before) as not_before
  from _pass group by channel, batch_id;
  insert into public.dispatch_batches (id, channel, send_count, created_at)
  select id, channel, cnt, p_now from _bid;

  -- The common case is a plain insert. Only when a concurrent tick won a race for the same person's
  -- touch of the day (the unique index) does it fall back, in a subtransaction, to skipping the
  -- conflicting rows: ON CONFLICT on every row costs a third more (bench/dispatch.ts).
  begin
    insert into public.sends (step_run_id, assignment_id, step_id, channel, attempt, client_id, campaign_id,
                              lead_id, sender_id, consent_id, touch_day, action, batch_id, next_attempt_at, created_at)
    select g.id, g.assignment_id, g.step_id, g.channel,
           case when g.channel = 'voice' then g.voice_attempts + 1 else 1 end,
           g.client_id, g.campaign_id, g.lead_id, p.sender_id, g.consent_id, g.local_ts::date, g.linkedin_action,
           p.batch_id, p.not_before, p_now
    from _g g join _pass p on p.id = g.id
    where g.reason is null;
    create temp table _ins on commit drop as select g.id from _g g where g.reason is null;
  exception when unique_violation then
    create temp table _ins on commit drop as
    with ins as (
      insert into public.sends (step_run_id, assignment_id, step_id, channel, attempt, client_id, campaign_id,
                                lead_id, sender_id, consent_id, touch_day, action, batch_id, next_attempt_at, created_at)
      select g.id, g.assignment_id, g.step_id, g.channel,
             case when g.channel = 'voice' then g.voice_attempts + 1 else 1 end,
             g.client_id, g.campaign_id, g.lead_id, p.sender_id, g.consent_id, g.local_ts::date, g.linkedin_action,
             p.batch_id, p.not_before, p_now
      from _g g join _pass p on p.id = g.id
      where g.reason is null
      on conflict do nothing
      returning step_run_id
    )
    select step_run_id as id from ins;
  end;
  select count(*) into v_sent from _ins;
  analyze _ins;
  -- lost a race for the person's touch of the day (the unique index decided)
  update _g g set reason = 'contact_pressure'
  where g.reason is null and not exists (select 1 from _ins i where i.id = g.id);

  update public.step_runs r set status = 'sent',
         voice_attempts = r.voice_attempts + (r.channel = 'voice')::integer
  from _ins i where r.id = i.id;

  -- 4. every refusal: recorded with its reason; the step rescheduled, held for approval or skipped
  update _g g set retry_at = case g.reason
      -- the next opening of the recipient's window, spread by up to 15 minutes (the timing engine's jitter)
      when 'outside_window' then coalesce(z.next_open + private.jitter(g.id::text || g.refusals, 900), p_now + interval '1 day')
      -- the person's next local day, or the sender's next day
      when 'contact_pressure' then coalesce(z.next_day_open + private.jitter(g.id::text || g.refusals, 900), p_now + interval '1 day')
      when 'sender_cap' then coalesce(z.next_day_open + private.jitter(g.id::text || g.refusals, 900), p_now + interval '1 day')
      when 'company_paused' then g.retry_at
      when 'content_pending' then p_now + interval '10 minutes'
      when 'dncr_unwashed' then p_now + interval '30 minutes'
      when 'holiday_calendar_missing' then p_now + interval '6 hours'
      when 'budget_exhausted' then (date_trunc('month', p_now) + interval '1 month')
      when 'lead_quota' then (date_trunc('month', p_now) + interval '1 month')
      when 'campaign_inactive' then p_now + interval '1 hour'
      when 'client_inactive' then p_now + interval '1 hour'
      when 'emergency_pause' then p_now + interval '1 hour'
    end
  from _zone z
  where g.reason is not null
    and z.channel = g.channel and z.country = g.country and z.region = g.region and z.timezone = g.timezone;

  update public.step_runs r set
    status = case
      when g.reason = 'awaiting_approval' then 'awaiting_approval'
      when g.reason = 'assignment_inactive' then 'cancelled'
      when g.retry_at is null then 'skipped'
      else 'scheduled' end,
    due_at = coalesce(g.retry_at, r.due_at),
    approval_expires_at = case when g.reason = 'awaiting_approval'
      then coalesce(r.approval_expires_at, p_now + interval '48 hours') else r.approval_expires_at end,
    refusals = r.refusals + 1,
    last_refusal = g.reason
  from _g g
  where r.id = g.id and g.reason is not null;

  insert into public.gate_refusals (step_run_id, client_id, channel, reason, outcome, retry_at, decided_at)
  select id, client_id, channel, reason,
         case when reason = 'awaiting_approval' then 'awaiting_approval'
              when retry_at is null then 'skipped' else 'rescheduled' end,
         retry_at, p_now
  from _g where reason is not null;

  -- 5. the client's first touches count against the month's quota (the assignment moves to
  -- in_sequence when the dispatcher has actually sent its first message)
  insert into public.client_spend as sp (client_id, month, first_touches)
  select g.client_id, date_trunc('month', p_now)::date, count(*)
  from _g g join _ins i on i.id = g.id
  where g.first_touch
  group by g.client_id
  on conflict (client_id, month) do update set first_touches = sp.first_touches + excluded.first_touches;

  -- 6. one QStash message per batch (published after commit by the outbox publisher)
  insert into public.outbox (topic, client_id, payload, dedup_key, available_at)
  select 'flow.dispatch.' || b.channel, null, jsonb_build_object('batch_id', b.id), 'dispatch-' || b.id,
         coalesce(b.not_before, p_now)
  from _bid b
  where exists (select 1 from _pass p join _ins i on i.id = p.id where p.batch_id = b.id);
  get diagnostics v_batches = row_count;

  select coalesce(jsonb_object_agg(reason, n), '{}'::jsonb) into v_refused
  from (select reason, count(*) as n from _g where reason is not null group by reason) r;

  drop table _g, _zone, _cap, _pass, _bid, _ins;
  return jsonb_build_object('claimed', v_claimed, 'sent', v_sent, 'batches', v_batches, 'refused', v_refused);
end;
$$;
comment on function private.gate_due_steps(integer, integer, timestamptz) is
  'The one send gate: claims due step runs, checks every sending rule (product.md §6) and records sends, dispatch batches and refusals in the caller''s transaction.';

-- ---------------------------------------------------------------------------------------
-- The dispatcher's claim: first withdraw the batched sends that must no longer go (the client's
-- emergency pause, an inactive client or campaign, a reply or unsubscribe since the gate ran),
-- then lease the ones due. A send whose lease ran out was maybe accepted by the provider before a
-- crash: it comes back flagged for reconciliation, never for a blind resend.
-- ---------------------------------------------------------------------------------------
create or replace function private.claim_dispatch_batch(
  p_batch_id uuid, p_limit integer, p_lease_seconds integer, p_now timestamptz default now()
) returns table (send_id uuid, reconcile boolean)
language plpgsql
set search_path = ''
as $$
begin
  create temp table _stop on commit drop as
  select s.id, s.step_run_id, s.client_id, s.channel, s.assignment_id, s.attempt,
    case
      when c.emergency_paused then 'emergency_pause'
      when c.status not in ('trialing', 'active') then 'client_inactive'
      when cp.status <> 'active' then 'campaign_inactive'
      when a.status not in ('assigned', 'queued', 'in_sequence') then 'assignment_inactive'
      when private.is_suppressed(s.channel, s.client_id, l.email_normalized, nullif(lower(l.company_domain), ''),
                                 l.phone_e164, l.linkedin_key) then 'suppressed'
    end as reason
  from public.sends s
  join public.clients c on c.id = s.client_id
  join public.campaigns cp on cp.id = s.campaign_id
  join public.lead_assignments a on a.id = s.assignment_id
  join public.lead_pool l on l.id = s.lead_id
  where s.batch_id = p_batch_id and s.status = 'pending'
  for update of s skip locked;
  delete from _stop where reason is null;

  delete from public.sends s using _stop t where s.id = t.id;
  update public.step_runs r set
    status = case when t.reason in ('emergency_pause', 'client_inactive', 'campaign_inactive') then 'scheduled'
                  when t.reason = 'assignment_inactive' then 'cancelled' else 'skipped' end,
    due_at = case when t.reason in ('emergency_pause', 'client_inactive', 'campaign_inactive')
                  then p_now + interval '1 hour' else r.due_at end,
    voice_attempts = greatest(0, r.voice_attempts - (r.channel = 'voice')::integer),
    refusals = r.refusals + 1,
    last_refusal = t.reason
  from _stop t where r.id = t.step_run_id;
  insert into public.gate_refusals (step_run_id, client_id, channel, reason, outcome, retry_at, decided_at)
  select step_run_id, client_id, channel, reason,
         case when reason in ('emergency_pause', 'client_inactive', 'campaign_inactive') then 'rescheduled' else 'skipped' end,
         case when reason in ('emergency_pause', 'client_inactive', 'campaign_inactive') then p_now + interval '1 hour' end,
         p_now
  from _stop;
  -- a withdrawn first touch no longer counts against the month's quota
  update public.client_spend sp set first_touches = greatest(0, sp.first_touches - w.n)
  from (select t.client_id, count(*) as n from _stop t
        where t.attempt = 1 and not exists (select 1 from public.sends x where x.assignment_id = t.assignment_id)
        group by t.client_id) w
  where sp.client_id = w.client_id and sp.month = date_trunc('month', p_now)::date;
  drop table _stop;

  return query
  with c as (
    select s.id, s.status = 'dispatching' as reconcile from public.sends s
    where s.batch_id = p_batch_id and (
      (s.status = 'pending' and coalesce(s.next_attempt_at, p_now) <= p_now)
      or (s.status = 'dispatching' and s.lease_until < p_now))
    order by coalesce(s.next_attempt_at, s.created_at), s.id
    limit p_limit
    for update of s skip locked
  )
  update public.sends s set status = 'dispatching', lease_until = p_now + make_interval(secs => p_lease_seconds),
         dispatch_attempts = s.dispatch_attempts + 1
  from c where s.id = c.id
  returning s.id, c.reconcile;
end;
$$;

revoke all on function private.gate_due_steps(integer, integer, timestamptz), private.plan_step_runs(integer, timestamptz),
  private.complete_finished_sequences(integer, timestamptz),
  private.claim_dispatch_batch(uuid, integer, integer, timestamptz) from public;
