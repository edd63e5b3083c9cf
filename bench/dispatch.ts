// Benchmark `dispatch`: N due steps (100k by default) through the send gate — every rule checked,
// sends recorded in dispatch batches, one outbox row per batch — in the batches the outreach flow
// uses, against a bare INSERT … SELECT of the very same sends into the same table (same indexes,
// same foreign keys) in the same run, rolled back. Also reports the QStash messages per 1,000
// sends: one per dispatch batch plus one per gate tick (the flow's own continuation).
import postgres from "postgres";
import { runSendGate } from "../shared/engines/outreach.ts";
import { timed } from "./db.ts";

/** The outreach flow's gate batch (functions/flow-outreach GATE_BATCH). */
export const GATE_BATCH = 50_000;
const SENDERS = 12;

async function seed(sql: postgres.Sql, rows: number) {
  await sql.begin(async (tx) => {
    const [client] = await tx`
      insert into public.clients (slug, name, status, permission_mode, monthly_lead_quota, monthly_llm_budget_cents,
                                  monthly_provider_budget_cents, timezone)
      values ('bench', 'Bench', 'active', 'autopilot', ${rows * 2}, 1000000, 1000000, 'Australia/Sydney') returning id`;
    const [campaign] = await tx`insert into public.campaigns (client_id, name) values (${client.id}, 'Bench') returning id`;
    await tx`insert into public.campaign_steps (campaign_id, client_id, position, day_offset, channel)
             values (${campaign.id}, ${client.id}, 1, 0, 'email')`;
    await tx`update public.campaigns set status = 'active', approved_at = now() where id = ${campaign.id}`;
    await tx`
      insert into public.senders (client_id, channel, provider, address, daily_cap)
      select ${client.id}, 'email', 'salesforge', 'mailbox' || g || '@bench.example', ${Math.ceil(rows / SENDERS) + 10}
      from generate_series(1, ${SENDERS}) g`;
    await tx`insert into public.campaign_senders (campaign_id, sender_id, client_id)
             select ${campaign.id}, id, client_id from public.senders`;
    // seeding is not measured: triggers off so rows are written straight in their final state
    await tx`set local session_replication_role = replica`;
    await tx`
      insert into public.lead_pool (email, email_status, first_name, company_domain, country, state, timezone, status, als_score, als_tier)
      select 'lead' || g || '@co' || (g % 5000) || '.example.com.au', 'verified', 'Lead', 'co' || (g % 5000) || '.example.com.au',
             'AU', 'NSW', 'Australia/Sydney', 'scored', 70, 'warm'
      from generate_series(1, ${rows}) g`;
    await tx`
      insert into public.lead_consents (lead_id, channel, basis, evidence_url, evidence_captured_at)
      select id, 'email', 'inferred_publication', 'https://bench.example/team', now() from public.lead_pool`;
    await tx`
      insert into public.suppressions (client_id, kind, value, reason)
      select null, 'email', 'nobody' || g || '@elsewhere.example', 'bench' from generate_series(1, 5000) g`;
    await tx`
      insert into public.lead_assignments (lead_id, client_id, campaign_id, als_tier, als_score)
      select id, ${client.id}, ${campaign.id}, 'warm', 70 from public.lead_pool`;
  });
  // Tuesday 10:00 in Sydney: inside the email window
  await sql`select private.plan_step_runs(${rows}, '2026-12-01T10:00:00+11:00')`;
  await sql`update public.step_runs set body = 'Hello', content_ready_at = now()`;
  await sql`vacuum analyze`;
}

export async function benchDispatch(opts: { databaseUrl: string; rows: number; batch?: number }) {
  const sql = postgres(opts.databaseUrl, { max: 1, prepare: false, onnotice: () => {} });
  const batch = opts.batch ?? GATE_BATCH;
  const now = new Date("2026-12-01T10:05:00+11:00");
  try {
    await seed(sql, opts.rows);
    const [dummy] = await sql`insert into public.dispatch_batches (channel, send_count) values ('email', 0) returning id`;
    // the baseline: the same sends (sender spread, consent, batch) written by one bare statement
    let baselineMs = 0;
    await sql.begin(async (tx) => {
      baselineMs = await timed(() => tx`
        insert into public.sends (step_run_id, assignment_id, step_id, channel, attempt, client_id, campaign_id, lead_id,
                                  sender_id, consent_id, touch_day, batch_id, created_at)
        select r.id, r.assignment_id, r.step_id, r.channel, 1, r.client_id, r.campaign_id, r.lead_id,
               (array(select id from public.senders order by id))[1 + abs(hashtext(r.id::text)) % ${SENDERS}],
               c.id, (${now} at time zone r.timezone)::date, ${dummy.id}, ${now}
        from public.step_runs r join public.lead_consents c on c.lead_id = r.lead_id`);
      throw new Error("rollback"); // undo: the gate records the same sends next
    }).catch((err) => {
      if ((err as Error).message !== "rollback") throw err;
    });
    await sql`delete from public.dispatch_batches where id = ${dummy.id}`;
    await sql`vacuum analyze`;

    let sent = 0;
    let ticks = 0;
    let batches = 0;
    const ms = await timed(async () => {
      for (;;) {
        const r = await sql.begin((tx) => runSendGate(tx as never, { now, limit: batch, batchSize: 100 }));
        ticks += 1;
        sent += r.sent;
        batches += r.batches;
        if (r.claimed < batch) break;
      }
    });
    const [check] = await sql`select count(*)::int as n, count(distinct step_run_id)::int as runs from public.sends`;
    if (check.n !== opts.rows || check.runs !== opts.rows || sent !== opts.rows) {
      throw new Error(`dispatch bench: expected ${opts.rows} sends, recorded ${check.n} (${check.runs} step runs)`);
    }
    const [outbox] = await sql`select count(*)::int as n from public.outbox where topic like 'flow.dispatch.%'`;
    const messagesPer1000 = ((outbox.n + ticks) / sent) * 1000;
    return {
      name: "dispatch" as const, ratio: baselineMs / ms, ms, baselineMs, steps: opts.rows, sent, ticks, batches,
      qstash_per_1000_sends: messagesPer1000,
    };
  } finally {
    await sql.end();
  }
}
