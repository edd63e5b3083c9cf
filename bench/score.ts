// Benchmark `score`: rescorePool over N enriched leads in the flow's batches (5,000 per call, each
// its own transaction, as a QStash step), against ONE bare UPDATE setting als_score to the same points.
//
// "Bare" = the same points from the same SQL fragments, over the same rows and the same table
// (so the same row and statement triggers fire), but no components, gate, tier, status change or
// batching. The real work is measured twice: the first pass (enriched → scored, so the status
// trigger writes an events and an outbox row per lead) is `ms`, the number the ratio uses; the
// rescore pass (already scored: no status change) is reported beside it.
import postgres from "postgres";
import {
  COMPANY_JOIN, icpRowsSql, INPUTS_SQL, paramsSql, POINTS_SQL, rescorePool,
} from "../shared/engines/scorer.ts";
import type { Tx } from "../shared/db/client.ts";
import { timed } from "./db.ts";

const BATCH = 5_000;

export type ScoreBench = {
  name: "score";
  ratio: number;
  ms: number;
  baselineMs: number;
  rows: number;
  batch: number;
  firstPassMs: number;
  rescoreMs: number;
  rescoreRatio: number;
};

/** Deterministic leads and companies, written straight as 'enriched' (seeding is not measured). */
async function seed(sql: postgres.Sql, rows: number, tag: string, importId: string): Promise<string> {
  const companies = Math.max(1, Math.ceil(rows / 4));
  // E.164 numbers unique to this run: +7, three digits of the run, nine of the row
  const runDigits = String(Date.now() % 1000).padStart(3, "0");
  let icpId = "";
  await sql.begin(async (tx) => {
    await tx`set local session_replication_role = replica`;
    const [icp] = await tx`
      insert into public.icps (name, target_titles, industries, adjacent_industries, employee_min, employee_max,
                               technologies, hiring_roles, buying_signals, countries)
      values (${`bench ${tag}`}, '{Growth Marketer,Revenue Operations}', '{Computer Software,Marketing & Advertising}',
              '{Internet}', 51, 500, '{HubSpot,Salesforce,Segment,Google Analytics}', '{Account Executive,SDR}',
              '{expansion,new funding}', '{AU,NZ}')
      returning id`;
    icpId = icp.id;
    await tx`
      insert into public.companies (domain, industry, employee_count, country, technologies, hiring_roles, hiring_seen_at,
                                    last_funding_at, signal_keywords)
      select 'b' || ${tag} || '-' || g || '.example',
             (array['Computer Software', 'Marketing & Advertising', 'Internet', 'Retail', 'Logistics', null])[1 + g % 6],
             case when g % 9 = 0 then null else (g * 37) % 12000 end,
             case when g % 10 = 0 then 'GB' else 'AU' end,
             array_remove(array[case when g % 2 = 0 then 'HubSpot' end, case when g % 3 = 0 then 'Salesforce' end,
                                case when g % 5 = 0 then 'Segment' end, 'WordPress'], null),
             case g % 4 when 0 then '{Senior Account Executive}'::text[] when 1 then '{SDR,Plumber}'::text[] else '{}'::text[] end,
             now() - make_interval(days => g % 120),
             current_date - (g % 700),
             case when g % 7 = 0 then '{expansion into apac}'::text[] else '{}'::text[] end
      from generate_series(1, ${companies}) g`;
    await tx`
      insert into public.lead_pool (email, email_status, title, company_domain, phone_e164, linkedin_key, linkedin_found,
                                    linkedin_connections, linkedin_active_at, job_started_at, country, source, import_id,
                                    status)
      select 'l' || g || '@' || d.domain,
             (array['verified', 'catch_all', 'unknown', 'invalid'])[1 + g % 4],
             (array['CEO', 'Vice President of Sales', 'Growth Marketer', 'Marketing Manager', 'Software Engineer',
                    'Executive Assistant', 'Head of Revenue Operations', 'Team Lead', null, 'Lead Generation Specialist'])[1 + g % 10],
             d.domain,
             case when g % 3 = 0 then '+7' || ${runDigits} || lpad(g::text, 9, '0') end,
             case when g % 2 = 0 then 'https://www.linkedin.com/in/' || ${tag} || '-' || g end,
             g % 2 = 0,
             (g * 13) % 1500,
             now() - make_interval(days => g % 60),
             current_date - (g % 200),
             case when g % 17 = 0 then 'US' when g % 5 = 0 then null else 'AU' end,
             'import', ${importId}::uuid, 'enriched'
      from generate_series(1, ${rows}) g
      cross join lateral (select 'b' || ${tag} || '-' || (1 + g % ${companies}) || '.example' as domain) d`;
    // about 1% of people and 0.5% of companies on the global suppression list
    await tx`
      insert into public.suppressions (kind, value, reason)
      select 'email', email_normalized, 'bench' from public.lead_pool
      where import_id = ${importId}::uuid and abs(hashtext(email_normalized)) % 100 = 0`;
    await tx`
      insert into public.suppressions (kind, value, reason)
      select 'domain', 'b' || ${tag} || '-' || g || '.example', 'bench' from generate_series(1, ${companies}) g where g % 200 = 0`;
  });
  await sql`vacuum analyze public.companies`;
  await sql`analyze public.suppressions`;
  return icpId;
}

/** Same starting line for each measured phase: dead rows reclaimed, statistics fresh, no checkpoint due. */
async function settle(sql: postgres.Sql): Promise<void> {
  await sql`vacuum analyze public.lead_pool`;
  await sql`checkpoint`.catch(() => {}); // needs superuser or pg_checkpoint; only steadies the numbers
}

/** The baseline: one UPDATE of every bench lead's als_score to the same points, nothing else. */
async function bare(sql: postgres.Sql, icpId: string, importId: string): Promise<void> {
  await sql.unsafe(`
    with p as (${paramsSql("null")}),
    i as (${icpRowsSql("select $1::uuid")})
    update public.lead_pool t set als_score = ${POINTS_SQL}
    from public.lead_pool l ${COMPANY_JOIN} cross join i cross join p
    ${INPUTS_SQL}
    where t.id = l.id and l.import_id = $2::uuid`, [icpId, importId]);
}

/** Every bench lead through rescorePool, BATCH per transaction, as the scoring flow claims them. */
async function pass(sql: postgres.Sql, icpId: string, importId: string): Promise<number> {
  let last = "00000000-0000-0000-0000-000000000000";
  let scored = 0;
  for (;;) {
    const n = await sql.begin(async (tx) => {
      await tx`select set_config('app.actor_role', 'service:scorer', true), set_config('app.reason', 'ALS scored', true)`;
      const claimed = await tx`
        select id from public.lead_pool where id > ${last}::uuid and import_id = ${importId}::uuid
        order by id limit ${BATCH} for update skip locked`;
      if (claimed.length === 0) return 0;
      last = claimed[claimed.length - 1].id as string;
      const r = await rescorePool(tx as unknown as Tx, { leadIds: claimed.map((c) => c.id as string), icpId });
      return r.scored;
    });
    if (n === 0) return scored;
    scored += n;
  }
}

export async function benchScore(opts: { databaseUrl: string; rows: number }): Promise<ScoreBench> {
  // JIT off for the baseline too, as rescorePool runs its statements: the same engine on both sides.
  const sql = postgres(opts.databaseUrl, { max: 1, prepare: false, onnotice: () => {}, connection: { jit: "off" } });
  const tag = Date.now().toString(36);
  const importId = crypto.randomUUID();
  try {
    const icpId = await seed(sql, opts.rows, tag, importId);
    await settle(sql);
    const baselineMs = await timed(() => bare(sql, icpId, importId));
    await settle(sql);
    let scored = 0;
    const firstPassMs = await timed(async () => {
      scored = await pass(sql, icpId, importId);
    });
    if (scored !== opts.rows) throw new Error(`score bench: scored ${scored} of ${opts.rows}`);
    const [check] = await sql`select count(*)::int as n from public.lead_pool where import_id = ${importId}::uuid and status = 'scored'`;
    if (check.n !== opts.rows) throw new Error(`score bench: ${check.n} of ${opts.rows} leads reached scored`);
    await settle(sql);
    const rescoreMs = await timed(() => pass(sql, icpId, importId));
    return {
      name: "score", ratio: baselineMs / firstPassMs, ms: firstPassMs, baselineMs, rows: opts.rows, batch: BATCH,
      firstPassMs, rescoreMs, rescoreRatio: baselineMs / rescoreMs,
    };
  } finally {
    await sql.end();
  }
}
