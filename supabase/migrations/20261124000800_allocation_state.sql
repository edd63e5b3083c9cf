-- =====================================================================================
-- The allocator's verdict per pool lead lives in its own narrow table: writing it for a batch
-- of leads then costs no lead_pool triggers (status check, history over transition tables).
-- =====================================================================================

alter table public.lead_pool drop column unassigned_reason, drop column allocation_checked_at;

create table public.lead_allocation (
  lead_id uuid primary key references public.lead_pool (id) on delete cascade,
  checked_at timestamptz not null default now(),
  reason text
);
comment on table public.lead_allocation is 'Why the allocator left a scored lead unplaced at its last look, and when; a placed lead has no row (its active assignment says it).';
comment on column public.lead_allocation.reason is 'gated:<gate>, below_min_tier, no_matching_campaign, in_cooloff or capacity_full.';
create index lead_allocation_checked_at_idx on public.lead_allocation (checked_at);
alter table public.lead_allocation enable row level security;
grant select on public.lead_allocation to authenticated;
create policy "admins read allocation verdicts" on public.lead_allocation
  for select to authenticated using ((select private.is_platform_admin()));
