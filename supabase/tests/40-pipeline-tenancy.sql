-- =====================================================================================
-- Pipeline tenancy: the tables and columns the lead pipeline added (migrations 20261124000500
-- onwards) by every kind of caller. companies, pool_imports, pool_import_rows, provider_calls,
-- pool_population_runs and lead_allocation are agency data: admins read them, nobody writes them
-- through the API roles (the pipeline runs as the service). suppressions are per client or
-- global (client_id null): a client's users read only their client's (the global list is agency
-- data; the send gate reads it as the service), its writers
-- add their client's own, only admins add global ones or remove any. The pipeline's columns on
-- lead_pool (als_* components, enrichment bookkeeping) and lead_assignments (als_*) stay out of
-- the client users' column grants.
-- Two clients A and B, each with an owner, a member and a viewer; one platform admin; one
-- outsider with no membership; anon. Runs in one transaction and rolls back.
-- =====================================================================================
begin;
select plan(242);

-- -------------------------------------------------------------------------------------
-- Helpers (temp objects, gone at rollback)
-- -------------------------------------------------------------------------------------
-- Fixture ids by label, readable from any role.
create temp table fx_ids (label text primary key, id uuid not null);
insert into fx_ids (label, id) values
  ('owner_a',     'a0000000-0000-4000-8000-000000000001'),
  ('member_a',    'a0000000-0000-4000-8000-000000000002'),
  ('viewer_a',    'a0000000-0000-4000-8000-000000000003'),
  ('owner_b',     'b0000000-0000-4000-8000-000000000001'),
  ('member_b',    'b0000000-0000-4000-8000-000000000002'),
  ('viewer_b',    'b0000000-0000-4000-8000-000000000003'),
  ('admin',       'ad000000-0000-4000-8000-000000000001'),
  ('outsider',    '0f000000-0000-4000-8000-000000000001'),
  ('client_a',    'ca000000-0000-4000-8000-00000000000a'),
  ('client_b',    'cb000000-0000-4000-8000-00000000000b'),
  ('icp_a',       'ca000000-0000-4000-8000-0000000001c0'),
  ('icp_b',       'cb000000-0000-4000-8000-0000000001c0'),
  ('icp_agency',  'ac000000-0000-4000-8000-0000000001c0'),
  ('lead_a1',     'ca000000-0000-4000-8000-000000001ea1'),
  ('lead_a2',     'ca000000-0000-4000-8000-000000001ea2'),
  ('lead_b1',     'cb000000-0000-4000-8000-000000001ea1'),
  ('lead_spare',  'ac000000-0000-4000-8000-000000001ea0'),
  ('asg_a1',      'ca000000-0000-4000-8000-00000000a5a1'),
  ('asg_a2',      'ca000000-0000-4000-8000-00000000a5a2'),
  ('asg_b1',      'cb000000-0000-4000-8000-00000000a5a1'),
  ('sup_global',  'ac000000-0000-4000-8000-000000005b00'),
  ('sup_a',       'ca000000-0000-4000-8000-000000005b00'),
  ('sup_b',       'cb000000-0000-4000-8000-000000005b00'),
  ('import_1',    'ac000000-0000-4000-8000-00000000100a'),
  ('import_2',    'ac000000-0000-4000-8000-00000000100b'),
  ('run_agency',  'ac000000-0000-4000-8000-0000000000e1'),
  ('run_a',       'ca000000-0000-4000-8000-0000000000e1');
grant select on fx_ids to public;

create function pg_temp.id(p_label text) returns uuid
language sql stable
as $$ select id from pg_temp.fx_ids where label = p_label $$;

-- Act as a fixture user ('anon' = the anon role with no JWT, 'postgres' = back to the owner).
create function pg_temp.login(p_label text) returns void
language plpgsql
as $$
begin
  if p_label = 'postgres' then
    perform set_config('role', 'postgres', true);
    perform set_config('request.jwt.claims', '', true);
  elsif p_label = 'anon' then
    perform set_config('role', 'anon', true);
    perform set_config('request.jwt.claims', json_build_object('role', 'anon')::text, true);
  else
    perform set_config('role', 'authenticated', true);
    perform set_config('request.jwt.claims',
      json_build_object('sub', pg_temp.id(p_label), 'role', 'authenticated')::text, true);
  end if;
end;
$$;

-- Rows a statement touched (RLS turns a forbidden update/delete into 0 rows, not an error).
create function pg_temp.affected(p_sql text) returns bigint
language plpgsql
as $$
declare
  n bigint;
begin
  execute p_sql;
  get diagnostics n = row_count;
  return n;
end;
$$;

-- A forbidden write passes when it is denied (42501: no grant, or an RLS check) or touches no
-- row (RLS hides every target). Any other error, or a touched row, fails.
create function pg_temp.refused(p_sql text, p_desc text) returns text
language plpgsql
as $$
declare
  n bigint;
begin
  begin
    execute p_sql;
    get diagnostics n = row_count;
  exception
    when insufficient_privilege then
      return pass(p_desc || ' (denied, 42501)');
    when others then
      return fail(p_desc) || E'\n' || diag(format('unexpected error %s: %s', sqlstate, sqlerrm));
  end;
  if n = 0 then
    return pass(p_desc || ' (no row touched)');
  end if;
  return fail(p_desc) || E'\n' || diag(format('%s row(s) touched', n));
end;
$$;

-- A row key per table, as the caller sees it.
create function pg_temp.key_expr(p_tbl text) returns text
language sql immutable
as $$
  select case p_tbl
    when 'companies' then 'domain'
    when 'pool_import_rows' then 'import_id::text || ''/'' || row_number::text'
    when 'lead_allocation' then 'lead_id::text'
    else 'id::text'
  end
$$;

create function pg_temp.visible_keys(p_tbl text) returns setof text
language plpgsql
as $$
begin
  return query execute format('select %s from public.%I', pg_temp.key_expr(p_tbl), p_tbl);
end;
$$;

-- "Sees nothing": without a SELECT grant the read is denied (42501); with one (e.g. Supabase's
-- default privileges) RLS must return no row. Either way nothing leaks.
create function pg_temp.sees_nothing(p_who text, p_tbl text) returns text
language plpgsql
as $$
begin
  if has_table_privilege(current_user, format('public.%I', p_tbl), 'select') then
    return is_empty(format('select * from public.%I', p_tbl),
      format('%s sees no row of %s', p_who, p_tbl));
  end if;
  return throws_ok(format('select * from public.%I', p_tbl), '42501', null,
    format('%s is denied %s (sees nothing)', p_who, p_tbl));
end;
$$;

-- Digest of some columns of a whole table, read as postgres (no RLS): detects any change.
create function pg_temp.digest(p_tbl text, p_cols text) returns text
language plpgsql
as $$
declare
  r text;
begin
  execute format(
    'select md5(coalesce(string_agg(t::text, %L order by t::text), %L)) from (select %s from public.%I) t',
    '|', '', p_cols, p_tbl)
  into r;
  return r;
end;
$$;

-- -------------------------------------------------------------------------------------
-- Fixtures (as postgres)
-- -------------------------------------------------------------------------------------
insert into auth.users (id, email)
select id, label || '@pipeline-tenancy.test' from pg_temp.fx_ids
where label in ('owner_a', 'member_a', 'viewer_a', 'owner_b', 'member_b', 'viewer_b', 'admin', 'outsider');

insert into public.clients (id, slug, name) values
  (pg_temp.id('client_a'), 'tenant-a', 'Tenant A'),
  (pg_temp.id('client_b'), 'tenant-b', 'Tenant B');

insert into public.client_members (client_id, user_id, role) values
  (pg_temp.id('client_a'), pg_temp.id('owner_a'), 'owner'),
  (pg_temp.id('client_a'), pg_temp.id('member_a'), 'member'),
  (pg_temp.id('client_a'), pg_temp.id('viewer_a'), 'viewer'),
  (pg_temp.id('client_b'), pg_temp.id('owner_b'), 'owner'),
  (pg_temp.id('client_b'), pg_temp.id('member_b'), 'member'),
  (pg_temp.id('client_b'), pg_temp.id('viewer_b'), 'viewer');

insert into public.platform_admins (user_id) values (pg_temp.id('admin'));

insert into public.icps (id, client_id, name, is_agency_default) values
  (pg_temp.id('icp_a'), pg_temp.id('client_a'), 'ICP A', false),
  (pg_temp.id('icp_b'), pg_temp.id('client_b'), 'ICP B', false),
  (pg_temp.id('icp_agency'), null, 'Agency default ICP', true);

insert into public.companies (domain, name, industry, employee_count, country, technologies, website_status, signals_checked_at) values
  ('a-one.test', 'A One', 'software', 40, 'AU', '{hubspot}', 'ok', now()),
  ('b-one.test', 'B One', 'logistics', 400, 'NZ', '{salesforce}', 'ok', now()),
  ('pool-only.test', 'Pool Only', null, null, null, '{}', 'unknown', null);

insert into public.pool_imports (id, format, filename, status, rows_seen, accepted, duplicates, rejected, finished_at) values
  (pg_temp.id('import_1'), 'csv', 'first.csv', 'completed', 3, 2, 0, 1, now()),
  (pg_temp.id('import_2'), 'json', 'second.json', 'running', 1, 0, 1, 0, null);

-- the score and enrichment columns are set here, as the pipeline (service) would
insert into public.lead_pool (id, email, first_name, company_name, company_domain, source, import_id, apollo_person_id,
  enrichment_attempts, next_enrichment_at, als_score, als_tier, als_title, als_industry, als_size, als_tech,
  als_intent, als_linkedin, als_deduction, als_gate, scored_icp_id) values
  (pg_temp.id('lead_a1'), 'a1@a-one.test', 'Ada', 'A One', 'a-one.test', 'import', pg_temp.id('import_1'), 'apollo-a1',
   1, now() + interval '30 days', 73, 'warm', 22, 20, 15, 5, 5, 6, 0, null, pg_temp.id('icp_agency')),
  (pg_temp.id('lead_a2'), 'a2@a-one.test', 'Alan', 'A One', 'a-one.test', 'import', pg_temp.id('import_1'), 'apollo-a2',
   2, now() + interval '1 day', 0, 'dead', 4, 5, 5, 0, 0, 0, -5, 'no_channel', pg_temp.id('icp_agency')),
  (pg_temp.id('lead_b1'), 'b1@b-one.test', 'Barbara', 'B One', 'b-one.test', 'apollo', null, 'apollo-b1',
   1, now() + interval '30 days', 88, 'hot', 25, 20, 15, 10, 10, 8, 0, null, pg_temp.id('icp_agency')),
  (pg_temp.id('lead_spare'), 'pat@pool-only.test', 'Pat', 'Pool Only', 'pool-only.test', 'apollo', null, 'apollo-spare',
   0, now(), null, null, null, null, null, null, null, null, null, null, null);

-- the assignment triggers write the 'created' events and outbox rows
insert into public.lead_assignments (id, lead_id, client_id, als_score, als_tier, als_components, scored_at) values
  (pg_temp.id('asg_a1'), pg_temp.id('lead_a1'), pg_temp.id('client_a'), 80, 'warm', '{"title": 25}', now()),
  (pg_temp.id('asg_a2'), pg_temp.id('lead_a2'), pg_temp.id('client_a'), 10, 'dead', '{"gate": "no_channel"}', now()),
  (pg_temp.id('asg_b1'), pg_temp.id('lead_b1'), pg_temp.id('client_b'), 91, 'hot', '{"title": 25}', now());

insert into public.pool_import_rows (import_id, row_number, outcome, lead_id, reason, field) values
  (pg_temp.id('import_1'), 1, 'accepted', pg_temp.id('lead_a1'), null, null),
  (pg_temp.id('import_1'), 2, 'accepted', pg_temp.id('lead_a2'), null, null),
  (pg_temp.id('import_1'), 3, 'rejected', null, 'invalid email', 'email'),
  (pg_temp.id('import_2'), 1, 'duplicate', pg_temp.id('lead_b1'), 'email', null);

insert into public.provider_calls (provider, operation, cached, status, credits, cost_cents, lead_id, client_id) values
  ('apollo', 'people_match', false, 200, 1, 2.5, pg_temp.id('lead_a1'), pg_temp.id('client_a')),
  ('apollo', 'people_match', false, 200, 1, 2.5, pg_temp.id('lead_b1'), pg_temp.id('client_b')),
  ('apollo', 'people_search', true, 200, 0, 0, null, null);

insert into public.pool_population_runs (id, icp_id, status, next_page, people_seen, people_added) values
  (pg_temp.id('run_agency'), pg_temp.id('icp_agency'), 'paused', 7, 600, 420),
  (pg_temp.id('run_a'), pg_temp.id('icp_a'), 'completed', 3, 200, 150);

-- lead_a2 has no verdict yet: the forbidden inserts below aim at it
insert into public.lead_allocation (lead_id, reason) values
  (pg_temp.id('lead_a1'), null),
  (pg_temp.id('lead_b1'), null),
  (pg_temp.id('lead_spare'), 'no_matching_campaign');

insert into public.suppressions (id, client_id, kind, value, reason, source) values
  (pg_temp.id('sup_global'), null, 'email', 'never@global.test', 'unsubscribed', 'fixture'),
  (pg_temp.id('sup_a'), pg_temp.id('client_a'), 'domain', 'competitor-of-a.test', 'competitor', 'fixture'),
  (pg_temp.id('sup_b'), pg_temp.id('client_b'), 'email', 'ex-customer@b-side.test', 'customer', 'fixture');

-- What exists, by client (null = agency-wide or global), read as postgres.
create temp table fx_rows (tbl text not null, cid uuid, k text not null);
insert into fx_rows (tbl, cid, k)
select 'companies', null, domain from public.companies
union all select 'suppressions', client_id, id::text from public.suppressions
union all select 'pool_imports', null, id::text from public.pool_imports
union all select 'pool_import_rows', null, import_id::text || '/' || row_number::text from public.pool_import_rows
union all select 'provider_calls', client_id, id::text from public.provider_calls
union all select 'pool_population_runs', null, id::text from public.pool_population_runs
union all select 'lead_allocation', null, lead_id::text from public.lead_allocation;
grant select on fx_rows to public;

create temp table fx_agency_tables (tbl text primary key);
insert into fx_agency_tables values
  ('companies'), ('pool_imports'), ('pool_import_rows'), ('provider_calls'), ('pool_population_runs'), ('lead_allocation');
grant select on fx_agency_tables to public;

-- Digests of everything the forbidden writes below aim at.
create temp table fx_snap (what text primary key, tbl text not null, cols text not null, digest text);
insert into fx_snap (what, tbl, cols)
select tbl, tbl, '*' from fx_agency_tables
union all select 'suppressions', 'suppressions', '*'
union all select 'lead_pool score and enrichment columns', 'lead_pool',
  'id, als_score, als_tier, als_title, als_industry, als_size, als_tech, als_intent, als_linkedin, als_deduction, '
  'als_gate, scored_at, scored_icp_id, enrichment_attempts, enrichment_claimed_at, next_enrichment_at, '
  'enrichment_error, enriched_at, apollo_person_id, import_id, status'
union all select 'lead_assignments score columns', 'lead_assignments',
  'id, als_score, als_tier, als_components, scored_at, status, ended_at';
update fx_snap set digest = pg_temp.digest(tbl, cols);

select ok(
  (select count(distinct tbl) from fx_rows) = 7
  and (select count(*) from fx_rows where tbl = 'suppressions' and cid is null) = 1
  and (select count(*) from fx_rows where tbl = 'suppressions' and cid = pg_temp.id('client_a')) = 1
  and (select count(*) from fx_rows where tbl = 'suppressions' and cid = pg_temp.id('client_b')) = 1
  and (select count(*) from fx_rows where tbl = 'provider_calls' and cid = pg_temp.id('client_b')) = 1,
  'fixtures: every pipeline table holds rows; suppressions of A, B and a global one');

-- -------------------------------------------------------------------------------------
-- Reads: the whole matrix, 7 assertions per caller
-- -------------------------------------------------------------------------------------
create function pg_temp.read_matrix(p_label text, p_client text) returns setof text
language plpgsql
as $$
declare
  t text;
begin
  perform pg_temp.login(p_label);
  for t in select tbl from pg_temp.fx_agency_tables order by tbl loop
    if p_label = 'admin' then
      return next set_eq(
        format('select pg_temp.visible_keys(%L)', t),
        format('select k from pg_temp.fx_rows where tbl = %L', t),
        format('admin reads every row of %s', t));
    else
      -- agency data: not even the client whose id a row carries (provider_calls) reads it
      return next pg_temp.sees_nothing(p_label, t);
    end if;
  end loop;
  if p_label = 'admin' then
    return next set_eq(
      $q$select pg_temp.visible_keys('suppressions')$q$,
      $q$select k from pg_temp.fx_rows where tbl = 'suppressions'$q$,
      'admin reads every row of suppressions');
  elsif p_client is null then
    return next pg_temp.sees_nothing(p_label, 'suppressions');
  else
    return next set_eq(
      $q$select pg_temp.visible_keys('suppressions')$q$,
      format('select k from pg_temp.fx_rows where tbl = %L and cid = pg_temp.id(%L)',
        'suppressions', p_client),
      format('%s sees exactly %s''s suppressions (the global list is agency data)', p_label, p_client));
  end if;
  perform pg_temp.login('postgres');
end;
$$;

select * from pg_temp.read_matrix('anon', null);
select * from pg_temp.read_matrix('outsider', null);
select * from pg_temp.read_matrix('owner_a', 'client_a');
select * from pg_temp.read_matrix('member_a', 'client_a');
select * from pg_temp.read_matrix('viewer_a', 'client_a');
select * from pg_temp.read_matrix('owner_b', 'client_b');
select * from pg_temp.read_matrix('member_b', 'client_b');
select * from pg_temp.read_matrix('viewer_b', 'client_b');
select * from pg_temp.read_matrix('admin', null);

-- -------------------------------------------------------------------------------------
-- Agency tables: nobody below admin writes them (18 attempts per caller)
-- -------------------------------------------------------------------------------------
create temp table fx_agency_writes (tbl text not null, op text not null, stmt text not null, primary key (tbl, op));
insert into fx_agency_writes (tbl, op, stmt) values
  ('companies', 'insert', $$insert into companies (domain, name) values ('planted.test', 'Planted')$$),
  ('companies', 'update', $$update companies set name = 'hacked', technologies = '{}'$$),
  ('companies', 'delete', $$delete from companies$$),
  ('pool_imports', 'insert', $$insert into pool_imports (format, filename) values ('csv', 'planted.csv')$$),
  ('pool_imports', 'update', $$update pool_imports set status = 'failed', error = 'hacked'$$),
  ('pool_imports', 'delete', $$delete from pool_imports$$),
  ('pool_import_rows', 'insert',
    $$insert into pool_import_rows (import_id, row_number, outcome, lead_id) values (pg_temp.id('import_1'), 999, 'accepted', pg_temp.id('lead_b1'))$$),
  ('pool_import_rows', 'update', $$update pool_import_rows set outcome = 'rejected', reason = 'hacked'$$),
  ('pool_import_rows', 'delete', $$delete from pool_import_rows$$),
  ('provider_calls', 'insert',
    $$insert into provider_calls (provider, operation, credits, client_id) values ('apollo', 'people_match', -100, pg_temp.id('client_a'))$$),
  ('provider_calls', 'update', $$update provider_calls set credits = 0, cost_cents = 0$$),
  ('provider_calls', 'delete', $$delete from provider_calls$$),
  ('pool_population_runs', 'insert', $$insert into pool_population_runs (icp_id) values (pg_temp.id('icp_a'))$$),
  ('pool_population_runs', 'update', $$update pool_population_runs set status = 'running', next_page = 1$$),
  ('pool_population_runs', 'delete', $$delete from pool_population_runs$$),
  ('lead_allocation', 'insert', $$insert into lead_allocation (lead_id, reason) values (pg_temp.id('lead_a2'), null)$$),
  ('lead_allocation', 'update', $$update lead_allocation set reason = null, checked_at = now()$$),
  ('lead_allocation', 'delete', $$delete from lead_allocation$$);
grant select on fx_agency_writes to public;

create function pg_temp.agency_write_matrix(p_label text) returns setof text
language plpgsql
as $$
declare
  w record;
begin
  perform pg_temp.login(p_label);
  for w in select * from pg_temp.fx_agency_writes order by tbl, op loop
    return next pg_temp.refused(w.stmt, format('%s cannot %s %s', p_label, w.op, w.tbl));
  end loop;
  perform pg_temp.login('postgres');
end;
$$;

select * from pg_temp.agency_write_matrix('anon');
select * from pg_temp.agency_write_matrix('outsider');
select * from pg_temp.agency_write_matrix('viewer_a');
select * from pg_temp.agency_write_matrix('member_a');
select * from pg_temp.agency_write_matrix('owner_a');

-- -------------------------------------------------------------------------------------
-- Suppressions: forbidden writes
-- -------------------------------------------------------------------------------------
select pg_temp.login('member_a');
select throws_ok(
  $$insert into suppressions (client_id, kind, value, reason) values (pg_temp.id('client_b'), 'email', 'planted@b-side.test', 'sabotage')$$,
  '42501', 'new row violates row-level security policy for table "suppressions"',
  'member of A cannot add a suppression for B');
select throws_ok(
  $$insert into suppressions (client_id, kind, value, reason) values (null, 'domain', 'b-one.test', 'sabotage')$$,
  '42501', 'new row violates row-level security policy for table "suppressions"',
  'member of A cannot add a global suppression');
select is(pg_temp.affected($$delete from suppressions where id = pg_temp.id('sup_a')$$), 0::bigint,
  'member of A cannot remove A''s suppression (admins only)');
select is(pg_temp.affected($$delete from suppressions where id = pg_temp.id('sup_global')$$), 0::bigint,
  'member of A cannot remove a global suppression');
select is(pg_temp.affected($$delete from suppressions where id = pg_temp.id('sup_b')$$), 0::bigint,
  'member of A cannot remove B''s suppression');
select pg_temp.refused($$update suppressions set value = 'lifted@global.test', client_id = pg_temp.id('client_a')$$,
  'member of A cannot rewrite suppressions');

select pg_temp.login('owner_a');
select throws_ok(
  $$insert into suppressions (client_id, kind, value, reason) values (pg_temp.id('client_b'), 'email', 'planted@b-side.test', 'sabotage')$$,
  '42501', 'new row violates row-level security policy for table "suppressions"',
  'owner of A cannot add a suppression for B');
select throws_ok(
  $$insert into suppressions (client_id, kind, value, reason) values (null, 'domain', 'b-one.test', 'sabotage')$$,
  '42501', 'new row violates row-level security policy for table "suppressions"',
  'owner of A cannot add a global suppression');
select is(pg_temp.affected($$delete from suppressions$$), 0::bigint,
  'owner of A cannot remove any suppression, not even A''s');

select pg_temp.login('viewer_a');
select throws_ok(
  $$insert into suppressions (client_id, kind, value, reason) values (pg_temp.id('client_a'), 'email', 'viewer@a-side.test', 'by viewer')$$,
  '42501', 'new row violates row-level security policy for table "suppressions"',
  'viewer of A cannot add an A suppression');
select is(pg_temp.affected($$delete from suppressions$$), 0::bigint,
  'viewer of A cannot remove suppressions');

select pg_temp.login('outsider');
select throws_ok(
  $$insert into suppressions (client_id, kind, value, reason) values (pg_temp.id('client_a'), 'email', 'outsider@a-side.test', 'sabotage')$$,
  '42501', 'new row violates row-level security policy for table "suppressions"',
  'outsider cannot add a suppression for A');
select throws_ok(
  $$insert into suppressions (client_id, kind, value, reason) values (null, 'domain', 'a-one.test', 'sabotage')$$,
  '42501', 'new row violates row-level security policy for table "suppressions"',
  'outsider cannot add a global suppression');
select is(pg_temp.affected($$delete from suppressions$$), 0::bigint,
  'outsider cannot remove suppressions');

select pg_temp.login('anon');
select throws_ok(
  $$insert into suppressions (client_id, kind, value, reason) values (null, 'domain', 'a-one.test', 'sabotage')$$,
  '42501', null,
  'anon cannot add a suppression');
select pg_temp.login('postgres');

-- -------------------------------------------------------------------------------------
-- Score and enrichment columns: client users may not set them, even on their own active lead
-- -------------------------------------------------------------------------------------
create temp table fx_protected_cols (tbl text not null, col text not null, val text not null, primary key (tbl, col));
insert into fx_protected_cols (tbl, col, val) values
  ('lead_pool', 'als_score', '100'),
  ('lead_pool', 'als_tier', $$'hot'$$),
  ('lead_pool', 'als_title', '25'),
  ('lead_pool', 'als_industry', '20'),
  ('lead_pool', 'als_size', '15'),
  ('lead_pool', 'als_tech', '15'),
  ('lead_pool', 'als_intent', '15'),
  ('lead_pool', 'als_linkedin', '10'),
  ('lead_pool', 'als_deduction', '0'),
  ('lead_pool', 'als_gate', 'null'),
  ('lead_pool', 'enrichment_attempts', '0'),
  ('lead_pool', 'next_enrichment_at', $$now() - interval '1 day'$$),
  ('lead_pool', 'apollo_person_id', $$'apollo-b1'$$),
  ('lead_assignments', 'als_score', '100'),
  ('lead_assignments', 'als_tier', $$'hot'$$),
  ('lead_assignments', 'als_components', $$'{}'$$),
  ('lead_assignments', 'scored_at', 'now()');
grant select on fx_protected_cols to public;

create function pg_temp.column_matrix(p_label text) returns setof text
language plpgsql
as $$
declare
  c record;
begin
  perform pg_temp.login(p_label);
  for c in select * from pg_temp.fx_protected_cols order by tbl, col loop
    return next throws_ok(
      format('update %I set %I = %s where id = pg_temp.id(%L)', c.tbl, c.col, c.val,
        case c.tbl when 'lead_pool' then 'lead_a1' else 'asg_a1' end),
      '42501', format('permission denied for table %s', c.tbl),
      format('%s cannot set %s.%s (column privilege)', p_label, c.tbl, c.col));
  end loop;
  perform pg_temp.login('postgres');
end;
$$;

-- the row itself is writable to a member of A, so the refusals are about the columns
select pg_temp.login('member_a');
select is(pg_temp.affected($$update lead_pool set title = 'CTO' where id = pg_temp.id('lead_a1')$$), 1::bigint,
  'member of A may correct contact details of its active lead (the row is writable)');
select is(pg_temp.affected($$update lead_assignments set campaign_id = campaign_id where id = pg_temp.id('asg_a1')$$), 1::bigint,
  'member of A may update its assignment''s campaign (the row is writable)');
select pg_temp.login('postgres');

select * from pg_temp.column_matrix('owner_a');
select * from pg_temp.column_matrix('member_a');
select * from pg_temp.column_matrix('viewer_a');

-- The grants themselves: whatever default privileges a platform adds, the API roles may update
-- only the contact columns of lead_pool and status/campaign_id of lead_assignments.
select set_eq(
  $$select a.attname::text from pg_attribute a
    where a.attrelid = 'public.lead_pool'::regclass and a.attnum > 0 and not a.attisdropped
      and has_column_privilege('authenticated', a.attrelid, a.attnum, 'UPDATE')$$,
  array['email', 'first_name', 'last_name', 'title', 'company_name', 'company_domain', 'linkedin_url', 'phone',
    'country', 'state', 'city', 'timezone'],
  'authenticated may update only the contact columns of lead_pool');
select set_eq(
  $$select a.attname::text from pg_attribute a
    where a.attrelid = 'public.lead_assignments'::regclass and a.attnum > 0 and not a.attisdropped
      and has_column_privilege('authenticated', a.attrelid, a.attnum, 'UPDATE')$$,
  array['status', 'campaign_id'],
  'authenticated may update only status and campaign_id of lead_assignments');
select ok(
  not has_any_column_privilege('anon', 'public.lead_pool', 'UPDATE')
  and not has_any_column_privilege('anon', 'public.lead_assignments', 'UPDATE'),
  'anon may update no column of lead_pool or lead_assignments');
select is_empty(
  $$select r.rolname, t.tbl, p.priv
    from (values ('anon'), ('authenticated')) as r (rolname)
    cross join (select tbl from pg_temp.fx_agency_tables union all select 'suppressions') as t (tbl)
    cross join (values ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE')) as p (priv)
    where (has_table_privilege(r.rolname, format('public.%I', t.tbl), p.priv)
           or (p.priv in ('INSERT', 'UPDATE') and has_any_column_privilege(r.rolname, format('public.%I', t.tbl), p.priv)))
      and not (r.rolname = 'authenticated' and t.tbl = 'suppressions' and p.priv in ('INSERT', 'DELETE'))$$,
  'the API roles hold no write privilege on the agency tables, and only INSERT/DELETE (to authenticated) on suppressions');

-- -------------------------------------------------------------------------------------
-- Nothing above changed anything
-- -------------------------------------------------------------------------------------
select is(pg_temp.digest(s.tbl, s.cols), s.digest, format('%s unchanged by the forbidden writes', s.what))
from pg_temp.fx_snap s order by s.what;

-- -------------------------------------------------------------------------------------
-- Allowed writes: writers add their client's suppressions, admins add global ones and remove any
-- -------------------------------------------------------------------------------------
select pg_temp.login('member_a');
select lives_ok(
  $$insert into suppressions (client_id, kind, value, reason, source) values (pg_temp.id('client_a'), 'email', 'do-not-call@a-one.test', 'asked', 'portal')$$,
  'member of A adds an A suppression');
select pg_temp.login('owner_a');
select lives_ok(
  $$insert into suppressions (client_id, kind, value, reason, source) values (pg_temp.id('client_a'), 'linkedin', 'https://www.linkedin.com/in/someone', 'asked', 'portal')$$,
  'owner of A adds an A suppression');
select pg_temp.login('viewer_a');
select set_eq(
  $$select value from suppressions where source = 'portal'$$,
  array['do-not-call@a-one.test', 'https://www.linkedin.com/in/someone'],
  'the new A suppressions are A''s own: a viewer of A reads them');
select pg_temp.login('member_b');
select is_empty($$select * from suppressions where source = 'portal'$$,
  'a member of B does not read A''s new suppressions');

select pg_temp.login('admin');
select lives_ok(
  $$insert into suppressions (client_id, kind, value, reason, source) values (null, 'domain', 'spamtrap.test', 'spam trap', 'admin')$$,
  'admin adds a global suppression');
select is(pg_temp.affected($$delete from suppressions where id in (pg_temp.id('sup_a'), pg_temp.id('sup_b'))$$), 2::bigint,
  'admin removes A''s and B''s suppressions');
select pg_temp.login('member_b');
select is_empty($$select value from suppressions$$,
  'a member of B reads no global suppression and, A''s and B''s being gone, none at all');
select pg_temp.login('postgres');

select * from finish();
rollback;
