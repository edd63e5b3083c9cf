-- =====================================================================================
-- Tenancy matrix: who sees and writes what, table by table (product.md §1).
-- Two clients A and B, each with an owner, a member and a viewer; one platform admin; one
-- outsider with no membership; anon. Every table holding client data is read by every kind of
-- caller, then attacked across tenants and by read-only roles, then written where the policies
-- allow. Plus the service-only tables, the append-only events table and create_manual_lead.
-- Runs in one transaction and rolls back.
-- =====================================================================================
begin;
select plan(200);

-- -------------------------------------------------------------------------------------
-- Helpers (temp objects, gone at rollback)
-- -------------------------------------------------------------------------------------
-- Fixture ids by label, readable from any role.
create temp table fx_ids (label text primary key, id uuid not null);
insert into fx_ids (label, id) values
  ('owner_a',    'a0000000-0000-4000-8000-000000000001'),
  ('member_a',   'a0000000-0000-4000-8000-000000000002'),
  ('viewer_a',   'a0000000-0000-4000-8000-000000000003'),
  ('owner_b',    'b0000000-0000-4000-8000-000000000001'),
  ('member_b',   'b0000000-0000-4000-8000-000000000002'),
  ('viewer_b',   'b0000000-0000-4000-8000-000000000003'),
  ('admin',      'ad000000-0000-4000-8000-000000000001'),
  ('outsider',   '0f000000-0000-4000-8000-000000000001'),
  ('client_a',   'ca000000-0000-4000-8000-00000000000a'),
  ('client_b',   'cb000000-0000-4000-8000-00000000000b'),
  ('icp_a',      'ca000000-0000-4000-8000-0000000001c0'),
  ('icp_b',      'cb000000-0000-4000-8000-0000000001c0'),
  ('icp_agency', 'ac000000-0000-4000-8000-0000000001c0'),
  ('camp_a',     'ca000000-0000-4000-8000-00000000ca00'),
  ('camp_b',     'cb000000-0000-4000-8000-00000000ca00'),
  ('lead_a1',    'ca000000-0000-4000-8000-000000001ea1'),
  ('lead_a2',    'ca000000-0000-4000-8000-000000001ea2'),
  ('lead_b1',    'cb000000-0000-4000-8000-000000001ea1'),
  ('lead_b2',    'cb000000-0000-4000-8000-000000001ea2'),
  ('lead_spare', 'ac000000-0000-4000-8000-000000001ea0'),
  ('asg_a1',     'ca000000-0000-4000-8000-00000000a5a1'),
  ('asg_a2',     'ca000000-0000-4000-8000-00000000a5a2'),
  ('asg_b1',     'cb000000-0000-4000-8000-00000000a5a1'),
  ('asg_b2',     'cb000000-0000-4000-8000-00000000a5a2');
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

-- A row key per table, as the caller sees it.
create function pg_temp.key_expr(p_tbl text) returns text
language sql immutable
as $$
  select case p_tbl
    when 'client_members' then 'client_id::text || ''/'' || user_id::text'
    when 'platform_admins' then 'user_id::text'
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

-- Run a statement, swallowing its error (for steps whose outcome is checked afterwards).
create function pg_temp.try(p_sql text) returns void
language plpgsql
as $$
begin
  execute p_sql;
exception when others then
  null;
end;
$$;

-- Digest of one client's rows in one table, read as postgres (no RLS): detects any change.
create function pg_temp.digest(p_tbl text, p_client uuid) returns text
language plpgsql
as $$
declare
  r text;
begin
  execute format(
    'select md5(coalesce(string_agg(t::text, %L order by t::text), %L)) from public.%I t where %s',
    '|', '', p_tbl,
    case p_tbl
      when 'clients' then 'id = $1'
      when 'lead_pool' then 'id in (select lead_id from public.lead_assignments where client_id = $1)'
      else 'client_id = $1'
    end)
  into r using p_client;
  return r;
end;
$$;

-- -------------------------------------------------------------------------------------
-- Fixtures (as postgres)
-- -------------------------------------------------------------------------------------
insert into auth.users (id, email)
select id, label || '@tenancy.test' from pg_temp.fx_ids
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

insert into public.icps (id, client_id, name) values
  (pg_temp.id('icp_a'), pg_temp.id('client_a'), 'ICP A'),
  (pg_temp.id('icp_b'), pg_temp.id('client_b'), 'ICP B'),
  (pg_temp.id('icp_agency'), null, 'Agency default ICP');

insert into public.campaigns (id, client_id, icp_id, name) values
  (pg_temp.id('camp_a'), pg_temp.id('client_a'), pg_temp.id('icp_a'), 'Campaign A'),
  (pg_temp.id('camp_b'), pg_temp.id('client_b'), pg_temp.id('icp_b'), 'Campaign B');

insert into public.lead_pool (id, email, first_name, company_name) values
  (pg_temp.id('lead_a1'), 'a1@tenant-a-leads.test', 'Ada', 'A One'),
  (pg_temp.id('lead_a2'), 'a2@tenant-a-leads.test', 'Alan', 'A Two'),
  (pg_temp.id('lead_b1'), 'b1@tenant-b-leads.test', 'Barbara', 'B One'),
  (pg_temp.id('lead_b2'), 'b2@tenant-b-leads.test', 'Bjarne', 'B Two'),
  (pg_temp.id('lead_spare'), 'pool@unassigned.test', 'Pat', 'Pool Only');

-- the assignment triggers write the 'created' events and outbox rows
insert into public.lead_assignments (id, lead_id, client_id, campaign_id) values
  (pg_temp.id('asg_a1'), pg_temp.id('lead_a1'), pg_temp.id('client_a'), pg_temp.id('camp_a')),
  (pg_temp.id('asg_a2'), pg_temp.id('lead_a2'), pg_temp.id('client_a'), null),
  (pg_temp.id('asg_b1'), pg_temp.id('lead_b1'), pg_temp.id('client_b'), pg_temp.id('camp_b')),
  (pg_temp.id('asg_b2'), pg_temp.id('lead_b2'), pg_temp.id('client_b'), null);
-- a status change per client ('status_changed' events with a client_id) ...
update public.lead_assignments set status = 'queued' where id in (pg_temp.id('asg_a1'), pg_temp.id('asg_b1'));
-- ... and a pool-lead status change (an agency-wide event, client_id null)
update public.lead_pool set status = 'enriching' where id = pg_temp.id('lead_spare');

insert into public.idempotency_keys (user_id, key, function_name, request_hash, status_code, response)
values (pg_temp.id('member_a'), 'k-1', 'leads-create', 'h', 201, '{}');

-- What exists, by client (null = agency-wide), read as postgres.
create temp table fx_rows (tbl text not null, cid uuid, k text not null);
insert into fx_rows (tbl, cid, k)
select 'clients', id, id::text from public.clients
union all select 'client_members', client_id, client_id::text || '/' || user_id::text from public.client_members
union all select 'icps', client_id, id::text from public.icps
union all select 'campaigns', client_id, id::text from public.campaigns
union all select 'lead_assignments', client_id, id::text from public.lead_assignments
union all select 'events', client_id, id::text from public.events
union all select 'lead_pool', a.client_id, l.id::text
  from public.lead_pool l left join public.lead_assignments a on a.lead_id = l.id
union all select 'platform_admins', null, user_id::text from public.platform_admins
union all select 'agency_settings', null, id::text from public.agency_settings;
grant select on fx_rows to public;

create temp table fx_client_tables (tbl text primary key);
insert into fx_client_tables values
  ('clients'), ('client_members'), ('icps'), ('lead_pool'), ('campaigns'), ('lead_assignments'), ('events');
grant select on fx_client_tables to public;

create temp table fx_snap as
select t.tbl, c.label, pg_temp.digest(t.tbl, pg_temp.id(c.label)) as digest
from fx_client_tables t cross join (values ('client_a'), ('client_b')) as c (label);

select is(
  (select count(distinct (t.tbl, r.cid)) from fx_client_tables t
   join fx_rows r on r.tbl = t.tbl and r.cid in (pg_temp.id('client_a'), pg_temp.id('client_b'))),
  14::bigint,
  'fixtures: every client-data table holds rows of both A and B'
);

-- -------------------------------------------------------------------------------------
-- Reads: the whole matrix, 11 assertions per caller
-- -------------------------------------------------------------------------------------
create function pg_temp.read_matrix(p_label text, p_client text) returns setof text
language plpgsql
as $$
declare
  t text;
begin
  perform pg_temp.login(p_label);
  for t in select tbl from pg_temp.fx_client_tables order by tbl loop
    if p_client is null and p_label <> 'admin' then
      return next pg_temp.sees_nothing(p_label, t);
    elsif p_label = 'admin' then
      return next set_eq(
        format('select pg_temp.visible_keys(%L)', t),
        format('select k from pg_temp.fx_rows where tbl = %L', t),
        format('admin reads every row of %s', t));
    else
      return next set_eq(
        format('select pg_temp.visible_keys(%L)', t),
        format('select k from pg_temp.fx_rows where tbl = %L and cid = pg_temp.id(%L)', t, p_client),
        format('%s sees exactly %s''s rows of %s', p_label, p_client, t));
    end if;
  end loop;
  foreach t in array array['platform_admins', 'agency_settings'] loop
    if p_label = 'admin' then
      return next set_eq(
        format('select pg_temp.visible_keys(%L)', t),
        format('select k from pg_temp.fx_rows where tbl = %L', t),
        format('admin reads every row of %s', t));
    else
      return next pg_temp.sees_nothing(p_label, t);
    end if;
  end loop;
  -- service only: not even an admin reaches these through the API roles
  return next pg_temp.sees_nothing(p_label, 'outbox');
  return next pg_temp.sees_nothing(p_label, 'idempotency_keys');
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
-- Cross-tenant writes: a member of A against B's rows
-- -------------------------------------------------------------------------------------
select pg_temp.login('member_a');

select throws_ok(
  $$insert into clients (slug, name) values ('sneaky', 'Sneaky')$$,
  '42501', 'new row violates row-level security policy for table "clients"',
  'member of A cannot create a client');
select is(pg_temp.affected($$update clients set name = 'hacked' where id = pg_temp.id('client_b')$$), 0::bigint,
  'member of A cannot update client B');
select is(pg_temp.affected($$delete from clients where id = pg_temp.id('client_b')$$), 0::bigint,
  'member of A cannot delete client B');

select throws_ok(
  $$insert into client_members (client_id, user_id, role) values (pg_temp.id('client_b'), pg_temp.id('outsider'), 'member')$$,
  '42501', 'new row violates row-level security policy for table "client_members"',
  'member of A cannot add a member to B');
select is(pg_temp.affected($$update client_members set role = 'viewer' where client_id = pg_temp.id('client_b')$$), 0::bigint,
  'member of A cannot change B''s members');
select is(pg_temp.affected($$delete from client_members where client_id = pg_temp.id('client_b')$$), 0::bigint,
  'member of A cannot remove B''s members');

select throws_ok(
  $$insert into icps (client_id, name) values (pg_temp.id('client_b'), 'planted')$$,
  '42501', 'new row violates row-level security policy for table "icps"',
  'member of A cannot create an ICP for B');
select is(pg_temp.affected($$update icps set name = 'hacked' where client_id = pg_temp.id('client_b')$$), 0::bigint,
  'member of A cannot update B''s ICPs');
select is(pg_temp.affected($$delete from icps where client_id = pg_temp.id('client_b')$$), 0::bigint,
  'member of A cannot delete B''s ICPs');
select throws_ok(
  $$update icps set client_id = pg_temp.id('client_b') where id = pg_temp.id('icp_a')$$,
  '42501', 'new row violates row-level security policy for table "icps"',
  'member of A cannot move A''s ICP to B');

select throws_ok(
  $$insert into campaigns (client_id, name) values (pg_temp.id('client_b'), 'planted')$$,
  '42501', 'new row violates row-level security policy for table "campaigns"',
  'member of A cannot create a campaign for B');
select is(pg_temp.affected($$update campaigns set name = 'hacked' where client_id = pg_temp.id('client_b')$$), 0::bigint,
  'member of A cannot update B''s campaigns');
select is(pg_temp.affected($$delete from campaigns where client_id = pg_temp.id('client_b')$$), 0::bigint,
  'member of A cannot delete B''s campaigns');
select throws_ok(
  $$update campaigns set client_id = pg_temp.id('client_b') where id = pg_temp.id('camp_a')$$,
  '42501', 'permission denied for table campaigns',
  'member of A cannot move A''s campaign to B (client_id is not writable at all)');

select throws_ok(
  $$insert into lead_pool (email) values ('planted@pool.test')$$,
  '42501', 'new row violates row-level security policy for table "lead_pool"',
  'member of A cannot insert into the pool');
select is(pg_temp.affected($$update lead_pool set first_name = 'hacked' where id in (pg_temp.id('lead_b1'), pg_temp.id('lead_b2'), pg_temp.id('lead_spare'))$$), 0::bigint,
  'member of A cannot update B''s leads or unassigned pool leads');
select is(pg_temp.affected($$delete from lead_pool where id in (pg_temp.id('lead_b1'), pg_temp.id('lead_b2'), pg_temp.id('lead_spare'))$$), 0::bigint,
  'member of A cannot delete B''s leads or unassigned pool leads');

select throws_ok(
  $$insert into lead_assignments (lead_id, client_id) values (pg_temp.id('lead_spare'), pg_temp.id('client_b'))$$,
  '42501', 'new row violates row-level security policy for table "lead_assignments"',
  'member of A cannot assign a lead to B');
select is(pg_temp.affected($$update lead_assignments set status = 'in_sequence' where id = pg_temp.id('asg_b1')$$), 0::bigint,
  'member of A cannot move B''s assignment');
select is(pg_temp.affected($$update lead_assignments set campaign_id = null where client_id = pg_temp.id('client_b')$$), 0::bigint,
  'member of A cannot change B''s assignment campaign');
select is(pg_temp.affected($$delete from lead_assignments where client_id = pg_temp.id('client_b')$$), 0::bigint,
  'member of A cannot delete B''s assignments');

select throws_ok(
  $$insert into events (client_id, entity_type, kind, actor_role) values (pg_temp.id('client_b'), 'x', 'forged', 'user')$$,
  '42501', null, 'member of A cannot write events');
select throws_ok($$update events set reason = 'rewritten'$$, '42501', null, 'member of A cannot update events');
select throws_ok($$delete from events$$, '42501', null, 'member of A cannot delete events');

-- an owner of A against B's membership
select pg_temp.login('owner_a');
select throws_ok(
  $$insert into client_members (client_id, user_id, role) values (pg_temp.id('client_b'), pg_temp.id('owner_a'), 'owner')$$,
  '42501', 'new row violates row-level security policy for table "client_members"',
  'owner of A cannot make themselves owner of B');
select is(pg_temp.affected($$update client_members set role = 'viewer' where client_id = pg_temp.id('client_b')$$), 0::bigint,
  'owner of A cannot change B''s members');
select is(pg_temp.affected($$delete from client_members where client_id = pg_temp.id('client_b')$$), 0::bigint,
  'owner of A cannot remove B''s members');
select throws_ok(
  $$update client_members set client_id = pg_temp.id('client_b') where user_id = pg_temp.id('viewer_a')$$,
  '42501', 'new row violates row-level security policy for table "client_members"',
  'owner of A cannot move a membership to B');

-- the outsider
select pg_temp.login('outsider');
select throws_ok(
  $$insert into campaigns (client_id, name) values (pg_temp.id('client_a'), 'planted')$$,
  '42501', 'new row violates row-level security policy for table "campaigns"',
  'outsider cannot create a campaign for A');
select is(pg_temp.affected($$update campaigns set name = 'hacked'$$), 0::bigint, 'outsider updates no campaign');
select is(pg_temp.affected($$update lead_assignments set campaign_id = null$$), 0::bigint, 'outsider updates no assignment');

-- -------------------------------------------------------------------------------------
-- Read-only roles: a viewer of A against A's own rows; a member of A against A's membership
-- -------------------------------------------------------------------------------------
select pg_temp.login('viewer_a');
select is(pg_temp.affected($$update clients set name = 'renamed' where id = pg_temp.id('client_a')$$), 0::bigint,
  'viewer of A cannot update client A');
select throws_ok(
  $$insert into client_members (client_id, user_id, role) values (pg_temp.id('client_a'), pg_temp.id('outsider'), 'owner')$$,
  '42501', 'new row violates row-level security policy for table "client_members"',
  'viewer of A cannot add members');
select is(pg_temp.affected($$update client_members set role = 'owner' where client_id = pg_temp.id('client_a')$$), 0::bigint,
  'viewer of A cannot promote anyone (themselves included)');
select is(pg_temp.affected($$delete from client_members where client_id = pg_temp.id('client_a')$$), 0::bigint,
  'viewer of A cannot remove members');
select throws_ok(
  $$insert into icps (client_id, name) values (pg_temp.id('client_a'), 'by viewer')$$,
  '42501', 'new row violates row-level security policy for table "icps"',
  'viewer of A cannot create an ICP');
select is(pg_temp.affected($$update icps set name = 'by viewer' where client_id = pg_temp.id('client_a')$$), 0::bigint,
  'viewer of A cannot update ICPs');
select is(pg_temp.affected($$delete from icps where client_id = pg_temp.id('client_a')$$), 0::bigint,
  'viewer of A cannot delete ICPs');
select throws_ok(
  $$insert into campaigns (client_id, name) values (pg_temp.id('client_a'), 'by viewer')$$,
  '42501', 'new row violates row-level security policy for table "campaigns"',
  'viewer of A cannot create a campaign');
select is(pg_temp.affected($$update campaigns set name = 'renamed' where client_id = pg_temp.id('client_a')$$), 0::bigint,
  'viewer of A cannot update campaigns');
select is(pg_temp.affected($$delete from campaigns where client_id = pg_temp.id('client_a')$$), 0::bigint,
  'viewer of A cannot delete campaigns');
select is(pg_temp.affected($$update lead_pool set first_name = 'by viewer'$$), 0::bigint,
  'viewer of A cannot update A''s leads');
select throws_ok(
  $$insert into lead_assignments (lead_id, client_id) values (pg_temp.id('lead_spare'), pg_temp.id('client_a'))$$,
  '42501', 'new row violates row-level security policy for table "lead_assignments"',
  'viewer of A cannot create an assignment');
select is(pg_temp.affected($$update lead_assignments set campaign_id = pg_temp.id('camp_a') where id = pg_temp.id('asg_a2')$$), 0::bigint,
  'viewer of A cannot change an assignment''s campaign');
select is(pg_temp.affected($$update lead_assignments set status = 'in_sequence' where id = pg_temp.id('asg_a1')$$), 0::bigint,
  'viewer of A cannot move an assignment');
select is(pg_temp.affected($$delete from lead_assignments where client_id = pg_temp.id('client_a')$$), 0::bigint,
  'viewer of A cannot delete assignments');

select pg_temp.login('member_a');
select throws_ok(
  $$insert into client_members (client_id, user_id, role) values (pg_temp.id('client_a'), pg_temp.id('outsider'), 'viewer')$$,
  '42501', 'new row violates row-level security policy for table "client_members"',
  'member (not owner) of A cannot add members');
select is(pg_temp.affected($$update client_members set role = 'owner' where client_id = pg_temp.id('client_a')$$), 0::bigint,
  'member (not owner) of A cannot change roles');
select is(pg_temp.affected($$delete from client_members where client_id = pg_temp.id('client_a')$$), 0::bigint,
  'member (not owner) of A cannot remove members');

-- Nothing above changed anything, in A or in B.
select pg_temp.login('postgres');
select is(pg_temp.digest(s.tbl, pg_temp.id(s.label)), s.digest,
  format('%s of %s unchanged by the forbidden writes', s.tbl, s.label))
from pg_temp.fx_snap s order by s.label, s.tbl;

-- -------------------------------------------------------------------------------------
-- Allowed writes
-- -------------------------------------------------------------------------------------
select pg_temp.login('member_a');
select lives_ok(
  $$insert into campaigns (client_id, icp_id, name, created_by) values (pg_temp.id('client_a'), pg_temp.id('icp_a'), 'A spring', pg_temp.id('member_a'))$$,
  'member of A creates an A campaign');
select results_eq(
  $$select client_id, name from campaigns where name = 'A spring'$$,
  $$values (pg_temp.id('client_a'), 'A spring'::text)$$,
  'the new campaign is A''s and visible to its creator');
select is(pg_temp.affected($$update icps set offer = 'Better offer' where id = pg_temp.id('icp_a')$$), 1::bigint,
  'member of A updates A''s ICP');
select is(pg_temp.affected($$update lead_assignments set campaign_id = pg_temp.id('camp_a') where id = pg_temp.id('asg_a2')$$), 1::bigint,
  'member of A sets an A assignment''s campaign');
select throws_ok(
  $$update lead_assignments set campaign_id = pg_temp.id('camp_b') where id = pg_temp.id('asg_a2')$$,
  '23503', null,
  'member of A cannot attach an A assignment to B''s campaign (same-client foreign key)');
select is(pg_temp.affected($$update lead_assignments set status = 'queued' where id = pg_temp.id('asg_a2')$$), 1::bigint,
  'member of A moves an A assignment along a legal transition');
select is(pg_temp.affected($$update lead_pool set first_name = 'Adeline', title = 'CTO' where id = pg_temp.id('lead_a1')$$), 1::bigint,
  'member of A corrects contact details of an actively assigned A lead');
select throws_ok(
  $$update lead_pool set status = 'invalid' where id = pg_temp.id('lead_a1')$$,
  '42501', 'permission denied for table lead_pool',
  'member of A cannot set lead_pool.status (column privilege)');
select throws_ok(
  $$update lead_pool set als_score = 99 where id = pg_temp.id('lead_a1')$$,
  '42501', 'permission denied for table lead_pool',
  'member of A cannot set lead_pool.als_score (column privilege)');
select throws_ok(
  $$update lead_assignments set ended_at = now() where id = pg_temp.id('asg_a1')$$,
  '42501', 'permission denied for table lead_assignments',
  'member of A cannot set lead_assignments.ended_at (column privilege)');
select is(pg_temp.affected($$delete from campaigns where name = 'A spring'$$), 1::bigint,
  'member of A deletes an A campaign');

select pg_temp.login('owner_a');
select throws_ok(
  $$insert into lead_pool (email) values ('owner-planted@pool.test')$$,
  '42501', 'new row violates row-level security policy for table "lead_pool"',
  'owner of A cannot insert into lead_pool directly');
select throws_ok(
  $$insert into lead_assignments (lead_id, client_id) values (pg_temp.id('lead_spare'), pg_temp.id('client_a'))$$,
  '42501', 'new row violates row-level security policy for table "lead_assignments"',
  'owner of A cannot insert into lead_assignments directly (not even for A)');
select lives_ok(
  $$insert into client_members (client_id, user_id, role) values (pg_temp.id('client_a'), pg_temp.id('outsider'), 'viewer')$$,
  'owner of A adds a viewer to A');
select is(pg_temp.affected($$update client_members set role = 'member' where client_id = pg_temp.id('client_a') and user_id = pg_temp.id('outsider')$$), 1::bigint,
  'owner of A changes a role in A');
select is(pg_temp.affected($$delete from client_members where client_id = pg_temp.id('client_a') and user_id = pg_temp.id('outsider')$$), 1::bigint,
  'owner of A removes a member of A');
select is(pg_temp.affected($$update agency_settings set cooloff_days = 1$$), 0::bigint,
  'owner of A cannot change agency settings');

select pg_temp.login('admin');
select lives_ok($$insert into clients (slug, name) values ('tenant-c', 'Tenant C')$$, 'admin creates a client');
select is(pg_temp.affected($$update clients set plan = 'growth' where id = pg_temp.id('client_b')$$), 1::bigint,
  'admin updates client B');
select is(pg_temp.affected($$update agency_settings set cooloff_days = 60$$), 1::bigint,
  'admin changes agency settings');
select lives_ok(
  $$insert into lead_assignments (lead_id, client_id, campaign_id) values (pg_temp.id('lead_spare'), pg_temp.id('client_b'), pg_temp.id('camp_b'))$$,
  'admin assigns a pool lead to B');
select throws_ok($$update events set reason = 'rewritten'$$, '42501', null, 'admin cannot update events through the API role');

-- -------------------------------------------------------------------------------------
-- create_manual_lead
-- -------------------------------------------------------------------------------------
select pg_temp.login('postgres');
create temp table fx_cml (call text primary key, lead_id uuid, assignment_id uuid, created boolean);
grant select, insert on fx_cml to public;

select pg_temp.login('member_a');
insert into pg_temp.fx_cml
select 'first', * from public.create_manual_lead(pg_temp.id('client_a'), pg_temp.id('camp_a'),
  '{"email": "New.Person@Example.com", "first_name": "New", "last_name": "Person", "company_name": "Example"}');
select is((select created from pg_temp.fx_cml where call = 'first'), true,
  'create_manual_lead: a member of A adds a new lead for A (created = true)');
select results_eq(
  $$select l.email_normalized, l.source, l.status, a.client_id, a.campaign_id, a.status, a.created_by
    from pg_temp.fx_cml c join lead_pool l on l.id = c.lead_id join lead_assignments a on a.id = c.assignment_id
    where c.call = 'first'$$,
  $$values ('new.person@example.com', 'manual', 'new', pg_temp.id('client_a'), pg_temp.id('camp_a'), 'assigned', pg_temp.id('member_a'))$$,
  'create_manual_lead: the member sees the pool lead and its A assignment in the A campaign');
insert into pg_temp.fx_cml
select 'again', * from public.create_manual_lead(pg_temp.id('client_a'), null, '{"email": "  new.person@EXAMPLE.com "}');
select results_eq(
  $$select lead_id, assignment_id, created from pg_temp.fx_cml where call = 'again'$$,
  $$select lead_id, assignment_id, false from pg_temp.fx_cml where call = 'first'$$,
  'create_manual_lead: the same email again answers the same lead and assignment, created = false');
select throws_ok(
  $$select * from create_manual_lead(pg_temp.id('client_b'), null, '{"email": "x@b-side.test"}')$$,
  '42501', 'not allowed to add leads for this client',
  'create_manual_lead: a member of A cannot add a lead for B');
select throws_ok(
  $$select * from create_manual_lead(pg_temp.id('client_a'), pg_temp.id('camp_b'), '{"email": "x@a-side.test"}')$$,
  'AOS06', 'campaign not found for this client',
  'create_manual_lead: a campaign of another client is refused (AOS06)');

select pg_temp.login('viewer_a');
select throws_ok(
  $$select * from create_manual_lead(pg_temp.id('client_a'), null, '{"email": "viewer@a-side.test"}')$$,
  '42501', 'not allowed to add leads for this client',
  'create_manual_lead: a viewer of A cannot add a lead');
select pg_temp.login('outsider');
select throws_ok(
  $$select * from create_manual_lead(pg_temp.id('client_a'), null, '{"email": "outsider@a-side.test"}')$$,
  '42501', 'not allowed to add leads for this client',
  'create_manual_lead: an outsider cannot add a lead');
select pg_temp.login('anon');
select throws_ok(
  $$select * from create_manual_lead(pg_temp.id('client_a'), null, '{"email": "anon@a-side.test"}')$$,
  '42501', null,
  'create_manual_lead: anon cannot call it');

-- Exclusivity: the lead is worked by A. The insert inside the function hits the partial unique
-- index lead_assignments_one_active_per_lead (23505); shared/db/errors.ts maps it to lead_unavailable.
select pg_temp.login('member_b');
select throws_ok(
  $$select * from create_manual_lead(pg_temp.id('client_b'), null, '{"email": "new.person@example.com"}')$$,
  '23505', 'duplicate key value violates unique constraint "lead_assignments_one_active_per_lead"',
  'create_manual_lead: a lead worked by A cannot be added by B');
select pg_temp.login('postgres');
select results_eq(
  $$select a.client_id from lead_assignments a join pg_temp.fx_cml c on c.lead_id = a.lead_id and c.call = 'first'$$,
  $$values (pg_temp.id('client_a'))$$,
  'create_manual_lead: the lead still has exactly one assignment, A''s');

-- -------------------------------------------------------------------------------------
-- events are append-only, even for the table owner
-- -------------------------------------------------------------------------------------
select throws_ok($$update public.events set reason = 'rewritten'$$, 'AOS05', 'events are append-only',
  'events cannot be updated, even by the table owner (AOS05)');
select throws_ok($$delete from public.events$$, 'AOS05', 'events are append-only',
  'events cannot be deleted, even by the table owner (AOS05)');

-- -------------------------------------------------------------------------------------
-- Deleting a campaign must not delete its assignments: client users may not delete assignments
-- (only admins may), and an assignment row is the lead's exclusivity and cool-off history.
-- Either outcome is fine: the delete is refused, or the assignments stay (campaign_id null).
-- -------------------------------------------------------------------------------------
select pg_temp.login('member_a');
select pg_temp.try($$delete from campaigns where id = pg_temp.id('camp_a')$$);
select pg_temp.login('postgres');
select ok(
  exists (select 1 from public.lead_assignments where id = pg_temp.id('asg_a1')),
  'a member of A deleting an A campaign does not delete its assignments (no delete by cascade)');

-- -------------------------------------------------------------------------------------
-- An admin deletes a client: its assignments go (cascade), its audit history stays.
-- events.client_id references clients ON DELETE SET NULL; that referential UPDATE must not be
-- refused by the append-only trigger.
-- -------------------------------------------------------------------------------------
create temp table fx_b_history as
select e.id from public.events e
where e.entity_id in (select id from public.lead_assignments where client_id = pg_temp.id('client_b'));
select pg_temp.login('admin');
select lives_ok($$delete from clients where id = pg_temp.id('client_b')$$,
  'admin deletes client B although it has history');
select pg_temp.login('postgres');
select ok(
  not exists (select 1 from public.clients where id = pg_temp.id('client_b'))
  and (select count(*) from public.events where id in (select id from pg_temp.fx_b_history))
      = (select count(*) from pg_temp.fx_b_history)
  and (select count(*) from pg_temp.fx_b_history) > 0,
  'client B is gone and every events row about its assignments is kept');

select * from finish();
rollback;
