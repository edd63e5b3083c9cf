-- =====================================================================================
-- Enrichment bookkeeping: when a company's website signals were last looked at (the
-- waterfall's last step runs at most once per domain per 30 days).
-- =====================================================================================

alter table public.companies add column signals_checked_at timestamptz;
comment on column public.companies.signals_checked_at is 'When technologies, news and the site were last checked for this domain.';
