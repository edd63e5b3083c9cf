// Pool population through QStash against the Apollo sandbox: pages of people search become pool
// leads (deduplicated on the Apollo person id), the run resumes from its page, and it pauses at
// the agency's monthly credit budget.
import { beforeAll, describe, expect, it } from "vitest";
import { asService, db } from "../../shared/db/client.ts";
import { enqueue, publishOutbox } from "../../shared/flows/outbox.ts";
import { getStack, unique } from "../helpers/stack.ts";
import { until } from "../helpers/until.ts";

beforeAll(async () => {
  await getStack();
});


async function startRun(maxPages: number): Promise<string> {
  const sql = db();
  const [icp] = await sql`
    insert into public.icps (name, target_titles, countries, employee_min, employee_max)
    values (${unique("pop")}, ${["Head of Marketing", "CMO"]}, ${["Australia"]}, 11, 200) returning id`;
  const [run] = await sql`insert into public.pool_population_runs (icp_id, max_pages) values (${icp.id}, ${maxPages}) returning id`;
  await asService({ role: "test" }, (tx) => enqueue(tx, "flow.pool-population", { run_id: run.id }));
  await publishOutbox(sql);
  return run.id;
}

describe("pool population", () => {
  it("pages through Apollo search into the pool and completes at max_pages; a second run adds no duplicates", async () => {
    const sql = db();
    const runId = await startRun(3);
    const run = await until("the run to complete", async () => {
      const [r] = await sql`select * from public.pool_population_runs where id = ${runId}`;
      return r.status === "completed" ? r : undefined;
    });
    expect(run.next_page).toBe(4);
    expect(run.people_seen).toBe(300);
    expect(run.people_added).toBeGreaterThan(0);
    expect(run.people_added).toBeLessThanOrEqual(300);
    const [{ n }] = await sql`select count(*)::int as n from public.lead_pool where source = 'apollo' and apollo_person_id is not null`;
    expect(n).toBeGreaterThanOrEqual(run.people_added);

    // the same search again: the sandbox returns the same people, the pool takes none twice
    const again = await startRun(3);
    const second = await until("the second run", async () => {
      const [r] = await sql`select * from public.pool_population_runs where id = ${again}`;
      return r.status === "completed" ? r : undefined;
    });
    expect(second.people_seen).toBe(300);
    expect(second.people_added).toBe(0);
  });

  it("pauses at the agency's credit budget, and resumes from the same page", async () => {
    const sql = db();
    const [{ spent }] = await sql`select coalesce(sum(credits), 0)::float8 as spent from public.provider_calls where created_at >= date_trunc('month', now())`;
    await sql`update public.agency_settings set monthly_enrichment_credit_budget = ${Math.floor(Number(spent))}`;
    try {
      const runId = await startRun(2);
      const paused = await until("the run to pause", async () => {
        const [r] = await sql`select * from public.pool_population_runs where id = ${runId}`;
        return r.status === "paused" ? r : undefined;
      });
      expect(paused).toMatchObject({ stop_reason: "credit_budget_reached", next_page: 1, people_seen: 0 });

      await sql`update public.agency_settings set monthly_enrichment_credit_budget = 1000000`;
      await sql`update public.pool_population_runs set status = 'running', stop_reason = null where id = ${runId}`;
      await asService({ role: "test" }, (tx) => enqueue(tx, "flow.pool-population", { run_id: runId }));
      await publishOutbox(sql);
      const done = await until("the resumed run", async () => {
        const [r] = await sql`select * from public.pool_population_runs where id = ${runId}`;
        return r.status === "completed" ? r : undefined;
      });
      expect(done.next_page).toBe(3);
      expect(done.people_seen).toBe(200);
    } finally {
      await sql`update public.agency_settings set monthly_enrichment_credit_budget = 10000`;
    }
  });
});

describe("population runs through the pool API (admins)", () => {
  it("starts a run for an ICP, reports its progress, refuses an unknown ICP and non-admins", async () => {
    const { makeUser, call } = await import("../helpers/stack.ts");
    const stack = await getStack();
    const admin = await makeUser(stack, { role: "admin" });
    const owner = await makeUser(stack, { client: unique("popc"), role: "owner" });
    const [icp] = await db()`insert into public.icps (name, target_titles, countries) values (${unique("api")}, ${["CEO"]}, ${["Australia"]}) returning id`;

    const bad = await call(stack, "pool/population-runs", { token: admin.token, body: { icp_id: crypto.randomUUID() } });
    expect(bad.status).toBe(404);
    expect(bad.body.error.details[0].field).toBe("icp_id");
    expect((await call(stack, "pool/population-runs", { token: owner.token, body: { icp_id: icp.id } })).status).toBe(403);

    const started = await call(stack, "pool/population-runs", { token: admin.token, body: { icp_id: icp.id, max_pages: 2 } });
    expect(started.status).toBe(201);
    expect(started.body).toMatchObject({ icp_id: icp.id, status: "running", next_page: 1, max_pages: 2 });
    const done = await until("the run to complete", async () => {
      const r = await call(stack, `pool/population-runs/${started.body.id}`, { token: admin.token });
      return r.body.status === "completed" ? r.body : undefined;
    });
    expect(done).toMatchObject({ next_page: 3, people_seen: 200, stop_reason: "all_pages_read" });
    const resume = await call(stack, `pool/population-runs/${started.body.id}/resume`, { token: admin.token, body: {} });
    expect(resume.status).toBe(409);
  });
});
