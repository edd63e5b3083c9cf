-- =====================================================================================
-- Hardening found by the pipeline tenancy tests:
-- 1. Global suppressions (the agency's never-contact list: other clients' unsubscribes,
--    complaints) are agency data: a client user reads only their own client's rows. The send
--    gate reads the global list as the service.
-- 2. A hosted Supabase project grants everything on new public tables to anon and
--    authenticated by default; column grants restrict nothing while a table-level UPDATE exists.
--    Revoke it so client users can change only the contact and status columns granted below.
-- =====================================================================================

drop policy "members read their client's and global suppressions" on public.suppressions;
create policy "members read their client's suppressions" on public.suppressions
  for select to authenticated
  using (client_id in (select private.my_client_ids()) or (select private.is_platform_admin()));

revoke update on public.lead_pool from anon, authenticated;
revoke update on public.lead_assignments from anon, authenticated;
grant update (email, first_name, last_name, title, company_name, company_domain, linkedin_url, phone,
  country, state, city, timezone) on public.lead_pool to authenticated;
grant update (status, campaign_id) on public.lead_assignments to authenticated;

-- The agency tables of the pipeline: nothing for the API roles beyond what the policies use.
revoke all on public.companies, public.pool_imports, public.pool_import_rows, public.provider_calls,
  public.pool_population_runs, public.lead_allocation from anon;
revoke insert, update, delete on public.companies, public.pool_imports, public.pool_import_rows,
  public.provider_calls, public.pool_population_runs, public.lead_allocation from authenticated;
