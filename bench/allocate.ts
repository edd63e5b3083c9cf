// Benchmark `allocate`: the allocator placing N scored leads (100k by default) into campaigns of
// competing clients, against a bare INSERT … SELECT of the very same assignments into the same
// table (same triggers) in the same run.
import postgres from "postgres";
import { allocate, ALLOCATION_BATCH } from "../shared/engines/allocator.ts";
import { timed } from "./db.ts";

const INDUSTRIES = ["software", "fintech", "health", "retail", "logistics"];

export async function seed(sql: postgres.Sql, rows: number) {
  // Seeding is not measured: triggers off so leads can be written straight in their final state.
  await sql.begin(async (tx) => {
    await tx`set local session_replication_role = replica`;
    await tx`
      insert into public.companies (domain, industry, employee_count, country)
      select 'co' || g || '.example.com.au', (${INDUSTRIES}::text[])[1 + g % 5], 5 + (g * 37) % 4000, 'AU'
      from generate_series(1, 2000) g`;
    await tx`
      insert into public.lead_pool (email, company_domain, country, status, als_score, als_tier, source)
      select 'lead' || g || '@co' || (1 + g % 2000) || '.example.com.au', 'co' || (1 + g % 2000) || '.example.com.au',
             case when g % 10 = 0 then 'NZ' else 'AU' end, 'scored', s, 
             case when s >= 85 then 'hot' when s >= 60 then 'warm' when s >= 35 then 'cool' when s >= 20 then 'cold' else 'dead' end,
             'import'
      from generate_series(1, ${rows}) g, lateral (select (g * 7919) % 101 as s) x`;
    // five clients, two campaigns each, wanting overlapping industries: they compete for leads
    for (let c = 0; c < 5; c++) {
      const [client] = await tx`
        insert into public.clients (slug, name, status, monthly_lead_quota)
        values (${`bench-${c}`}, ${`Bench ${c}`}, 'active', ${Math.ceil(rows / 6)}) returning id`;
      for (let k = 0; k < 2; k++) {
        const [icp] = await tx`
          insert into public.icps (client_id, name, industries, countries, employee_min, employee_max, approved_at)
          values (${client.id}, 'ICP', ${[INDUSTRIES[c], INDUSTRIES[(c + 1 + k) % 5]]}, ${["AU"]}, 1, 3000, now()) returning id`;
        await tx`
          insert into public.campaigns (client_id, icp_id, name, status, approved_at, daily_new_leads)
          values (${client.id}, ${icp.id}, ${`Campaign ${k}`}, 'active', now(), ${Math.ceil(rows / 12)})`;
      }
    }
  });
  await sql`analyze`;
}

export async function reset(sql: postgres.Sql) {
  await sql.begin(async (tx) => {
    await tx`set local session_replication_role = replica`;
    // cascade: the outreach tables (step_runs, sends, replies, meetings…) reference the assignments
    await tx`truncate public.lead_assignments, public.events, public.outbox, public.lead_allocation cascade`;
  });
  await sql`vacuum analyze public.lead_pool`;
}

async function runAllocator(sql: postgres.Sql, batch: number): Promise<number> {
  let assigned = 0;
  for (;;) {
    const r = await sql.begin((tx) => allocate(tx, { limit: batch }));
    if (!r || r.considered === 0) return assigned;
    assigned += r.assigned;
  }
}

export async function benchAllocate(opts: { databaseUrl: string; rows: number; batch?: number }) {
  const sql = postgres(opts.databaseUrl, { max: 1, prepare: false, onnotice: () => {} });
  const batch = opts.batch ?? ALLOCATION_BATCH; // as the flow runs it
  try {
    await seed(sql, opts.rows);
    await runAllocator(sql, batch); // warm-up, and the assignments the baseline will insert
    await sql`create table bench_pairs as select lead_id, client_id, campaign_id from public.lead_assignments`;
    await reset(sql);
    const baselineMs = await timed(() =>
      sql`insert into public.lead_assignments (lead_id, client_id, campaign_id) select lead_id, client_id, campaign_id from bench_pairs`);
    await reset(sql);
    let assigned = 0;
    const ms = await timed(async () => {
      assigned = await runAllocator(sql, batch);
    });
    return { name: "allocate" as const, ratio: baselineMs / ms, ms, baselineMs, leads: opts.rows, assigned };
  } finally {
    await sql.end();
  }
}
