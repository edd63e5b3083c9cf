// `npm run demo` (dev/demo.ts) end to end: a 300-lead sandbox agency run as a child process on
// embedded PGlite, its one JSON object checked — every channel sent, every reply class classified,
// a funnel that never widens, costs and gate refusals recorded — and the text report rendered from
// the same object. Also the command line's refusals and the sandbox-only environment.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CHANNEL_NAMES, REPLY_CLASS_NAMES, renderReport, type DemoReport } from "../../dev/demo-report.ts";
import { campaignCapacity, parseArgs, sandboxOnly, seedDemoAgency } from "../../dev/demo.ts";
import { db, type Sql } from "../../shared/db/client.ts";
import { getStack } from "../helpers/stack.ts";

const root = join(import.meta.dirname, "../..");

function runDemo(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // embedded PGlite whatever the test run uses: the demo's gate would otherwise work on a shared database
  const env = { ...process.env };
  delete env.DATABASE_URL;
  delete env.SUPABASE_DB_URL;
  return new Promise((resolve, reject) => {
    const child = spawn("npx", ["tsx", "dev/demo.ts", ...args], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the demo did not finish in ${timeoutMs / 1000} s\n${stderr.slice(-3000)}`));
    }, timeoutMs);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("npm run demo", () => {
  it("runs a 300-lead agency to the end: every channel, every reply class, a funnel that never widens", { timeout: 170_000 }, async () => {
    const run = await runDemo(["--json", "--leads", "300"], 165_000);
    expect(run.code, run.stderr.slice(-3000)).toBe(0);

    // stdout is exactly one JSON object; the progress went to stderr, one line per stage
    const lines = run.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const report = JSON.parse(lines[0]) as DemoReport;
    for (const stage of ["stack", "pool", "pipeline", "campaign", "day  0", "day 12", "replies", "bookings", "outcomes", "report"]) {
      expect(run.stderr, stage).toMatch(new RegExp(`\\] ${stage}\\s`));
    }
    expect(report.problems).toEqual([]);
    expect(report.run.leads).toBe(300);
    expect(report.run.database).toMatch(/PGlite/);

    // every channel sent, to people who got it
    for (const ch of CHANNEL_NAMES) {
      expect(report.channels[ch].sends, ch).toBeGreaterThan(0);
      expect(report.channels[ch].leads_messaged, ch).toBeGreaterThan(0);
    }
    // every reply class of product.md §7 (and a bounce), each classified as the demo wrote it
    for (const c of REPLY_CLASS_NAMES) expect(report.replies.by_class[c], c).toBeGreaterThan(0);
    expect(report.replies.classified_as_written).toBe(report.replies.posted);
    expect(report.replies.sms_stop_opt_outs).toBeGreaterThan(0);

    // the funnel: pool → contacted → replied → positive → meeting → won, never widening
    expect(report.funnel.map((f) => f.stage)).toEqual(["pool", "contacted", "replied", "positive", "meeting", "won"]);
    expect(report.funnel[0].count).toBe(300);
    for (let i = 1; i < report.funnel.length; i++) {
      expect(report.funnel[i].count, report.funnel[i].stage).toBeLessThanOrEqual(report.funnel[i - 1].count);
    }
    expect(report.funnel[5].count).toBeGreaterThan(0);
    // the campaign took no more new leads than its daily capacity
    expect(report.pipeline.placed).toBeLessThanOrEqual(campaignCapacity(300) + 5);
    // the campaign opened on the scored list, so it took the list best-first: the Hot leads
    // (the only ones a letter may go to) are in it, whichever order they were scored in
    expect(report.pipeline.placed_tiers.hot).toBeGreaterThan(0);
    expect(report.pipeline.not_placed.capacity_full).toBeGreaterThan(0);

    // meetings with outcomes, costs, refusals by reason, inbound applied
    expect(report.meetings.by_status.held).toBeGreaterThan(0);
    expect(report.meetings.by_status.no_show).toBeGreaterThan(0);
    expect(report.meetings.lost).toBeGreaterThan(0);
    expect(report.costs.total_cents).toBeGreaterThan(0);
    expect(report.costs.per_lead_contacted_cents).toBeCloseTo(report.costs.total_cents / report.funnel[1].count, 2);
    expect(report.gate_refusals.total).toBeGreaterThan(0);
    for (const reason of ["tier_channel", "dncr_unwashed"]) expect(report.gate_refusals.by_reason[reason], reason).toBeGreaterThan(0);
    expect(report.inbound.not_applied).toBe(0);
    for (const p of ["salesforge", "twilio", "vapi", "unipile", "postgrid", "calcom"]) expect(report.inbound.webhook_events[p], p).toBeGreaterThan(0);

    // the text report says the same
    const text = renderReport(report);
    for (const f of report.funnel) expect(text).toMatch(new RegExp(`\\n  ${f.stage}\\s+${f.count.toLocaleString("en-AU")}\\s`));
    for (const c of REPLY_CLASS_NAMES) expect(text).toContain(c);
  });

  it("refuses bad arguments with the usage and exit code 2, before starting anything", async () => {
    const bad = await runDemo(["--leads", "5"], 60_000);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toMatch(/--leads must be a whole number from 20 to 20000/);
    expect(bad.stderr).toMatch(/usage: npm run demo/);

    expect(() => parseArgs(["--bogus"])).toThrow(/unknown argument --bogus/);
    expect(() => parseArgs(["--leads"])).toThrow(/--leads needs a value/);
    expect(() => parseArgs(["--days", "5"])).toThrow(/--days must be/);
    expect(parseArgs([])).toMatchObject({ json: false, leads: 2000, seed: "demo", dataDir: null, days: 16 });
    expect(parseArgs(["--json", "--leads=300", "--seed", "x"])).toMatchObject({ json: true, leads: 300, seed: "x" });
  });

  it("npm start -- --demo-agency: the same agency, approved and launched, seeded once, on the sandboxes only", async () => {
    await getStack();
    // refused with a real provider credential, before anything is written
    await expect(seedDemoAgency(db(), { SALESFORGE_API_KEY: "live", QSTASH_TOKEN: "q" }, { leads: 40 }))
      .rejects.toThrow(/sandboxes only; unset SALESFORGE_API_KEY \(/);
    expect(await db()`select 1 from public.clients where slug = 'harbour-growth'`).toHaveLength(0);

    // in a transaction rolled back at the end: the shared test database keeps nothing
    const rollback = new Error("rollback");
    await db().begin(async (tx) => {
      const sql = tx as unknown as Sql;
      const first = await seedDemoAgency(sql, {}, { leads: 40 });
      expect(first.created).toBe(true);
      expect(first.leads).toBe(40);
      const [campaign] = await sql`select status, approved_at from public.campaigns where id = ${first.campaignId}`;
      expect(campaign).toMatchObject({ status: "active", approved_at: expect.any(Date) });
      const steps = await sql`select channel from public.campaign_steps where campaign_id = ${first.campaignId} order by position`;
      expect(steps.map((st) => st.channel)).toEqual(["email", "mail", "voice", "linkedin", "email", "sms"]);
      const senders = await sql`select distinct s.channel from public.campaign_senders cs join public.senders s on s.id = cs.sender_id
                                where cs.campaign_id = ${first.campaignId}`;
      expect(senders.map((x) => x.channel).sort()).toEqual(["email", "linkedin", "mail", "sms", "voice"]);
      // the pool this transaction wrote (now() is its start): new, with consent evidence, for the flows
      const [pool] = await sql`
        select count(*)::int as leads, count(*) filter (where status = 'new')::int as fresh,
               count(*) filter (where exists (select 1 from public.lead_consents c where c.lead_id = l.id))::int as with_consent
        from public.lead_pool l where l.created_at = now()`;
      expect(pool).toEqual({ leads: 40, fresh: 40, with_consent: 40 });
      // a restart with the same data directory leaves it alone
      const again = await seedDemoAgency(sql, {}, { leads: 40 });
      expect(again).toMatchObject({ created: false, campaignId: first.campaignId, clientId: first.clientId });
      throw rollback;
    }).catch((err) => {
      if (err !== rollback) throw err;
    });
  });

  it("drops real provider credentials and endpoints so the demo can only reach the sandboxes", () => {
    const env: Record<string, string | undefined> = {
      SALESFORGE_API_KEY: "live", TWILIO_ACCOUNT_SID: "AC1", TWILIO_BASE_URL: "https://api.twilio.com", QSTASH_TOKEN: "q",
      ANTHROPIC_API_KEY: "sk", DNCR_TELEMARKETER_ID: "123", LOG_LEVEL: "info",
    };
    expect(sandboxOnly(env).sort()).toEqual(["ANTHROPIC_API_KEY", "DNCR_TELEMARKETER_ID", "QSTASH_TOKEN", "SALESFORGE_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_BASE_URL"]);
    expect(env).toEqual({ LOG_LEVEL: "info" });
  });
});
