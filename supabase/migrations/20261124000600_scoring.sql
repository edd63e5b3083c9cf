-- =====================================================================================
-- ALS scoring (product.md §3): what the score columns hold. The rules themselves live in one
-- place, shared/engines/scorer.ts; this only documents the stored shape for readers of the schema.
-- =====================================================================================

comment on column public.lead_pool.als_score is 'ALS 0–100 against the agency default ICP (scored_icp_id): the clamped sum of the als_* components, or 0 when als_gate is set.';
comment on column public.lead_pool.als_tier is 'hot 85–100, warm 60–84, cool 35–59, cold 20–34, dead < 20 (always the tier of als_score).';
comment on column public.lead_pool.als_title is 'Title/seniority 0–25: ICP target title 25, owner/founder/C-level 22, VP/head/director 18, manager/lead 10, other known title 4, none 0.';
comment on column public.lead_pool.als_industry is 'Industry 0–20: ICP industry 20, adjacent 10, unknown 5, other 0.';
comment on column public.lead_pool.als_size is 'Company size 0–15: inside the ICP range 15, within one band 8, unknown 5, other 0.';
comment on column public.lead_pool.als_tech is 'Technology 0–15: 5 per ICP technology found on the company.';
comment on column public.lead_pool.als_intent is 'Intent 0–15: 5 each for hiring an ICP role (60 days), funding (12 months), job change (90 days), an ICP buying signal.';
comment on column public.lead_pool.als_linkedin is 'LinkedIn 0–10: profile found 4, 500+ connections 3, active in the last 30 days 3.';
comment on column public.lead_pool.als_deduction is 'Signed: −5 for an assistant, intern, student, receptionist or coordinator title, else 0.';
comment on column public.lead_pool.scored_icp_id is 'The ICP the score was computed against (null: no agency default ICP existed, scored against the empty ICP).';
comment on column public.lead_assignments.als_components is 'The components of als_score against the assignment''s ICP: {title, industry, size, tech, intent, linkedin, deduction, gate, icp_id}.';
