// Message Batches in the content tick, against the stack's database and the Anthropic sandbox
// over HTTP (through the official SDK): Warm and Cool steps due in ~10 h go into one batch whose
// requests are exactly the live ones (small model, forced tool, cache_control), the next tick
// writes them at batch prices; Hot, Cold, template-mode steps and steps due within 6 h are written
// live; an errored item and a step that became due within 2 h are written live (and a late result
// never overwrites); a batch answer that fails the checks gets its one retry live, one that no
// longer fits the step (tier changed) is dropped; concurrent ticks submit a step at most once; the per-tick cap continues
// through `more`. The database is shared with other test files: every assertion reads this file's
// own clients' rows.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import type { Stack } from "../../dev/stack.ts";
import { createAnthropicSandbox, type AnthropicSandboxState, type RecordedRequest } from "../../dev/sandbox/anthropic.ts";
import { asService, db } from "../../shared/db/client.ts";
import { costCents, createAnthropicClient, DEFAULT_MODELS, type AnthropicClient, type TokenUsage } from "../../shared/integrations/anthropic.ts";
import { planSequences } from "../../shared/engines/outreach.ts";
import { writeDueContent, type ContentTickOptions } from "../../shared/engines/step-content.ts";
import { outreachFixture, type FixtureOptions, type FixtureStep } from "../helpers/outreach-fixture.ts";
import { getStack } from "../helpers/stack.ts";

interface Sandbox {
  state: AnthropicSandboxState;
  claude: AnthropicClient;
  close(): Promise<void>;
}

/** An Anthropic sandbox on its own port; a batch ends after `batchPollsBeforeEnd` status polls. */
async function startSandbox(batchPollsBeforeEnd: number): Promise<Sandbox> {
  const sandbox = createAnthropicSandbox({ apiKey: "sk-ant-test", batchPollsBeforeEnd });
  const root = new Hono();
  root.route("/sandbox/anthropic", sandbox.app);
  const { server, base } = await new Promise<{ server: ServerType; base: string }>((resolve) => {
    const s = serve({ fetch: root.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) =>
      resolve({ server: s, base: `http://127.0.0.1:${info.port}/sandbox/anthropic` }));
  });
  const claude = createAnthropicClient({
    apiKey: "sk-ant-test", baseUrl: base, maxRetries: 0, timeoutMs: 10_000,
    models: { large: DEFAULT_MODELS.large, small: DEFAULT_MODELS.small },
  });
  return { state: sandbox.state, claude, close: () => new Promise<void>((r) => server.close(() => r())) };
}

let stack: Stack;
/** Batches end at the first status poll: the tick after the submitting one collects them. */
let quick: Sandbox;
/** Batches answer in_progress to the first poll. */
let slow: Sandbox;

beforeAll(async () => {
  stack = await getStack();
  // the tests drive the content tick themselves: no queued flow may write these steps meanwhile
  await stack.qstash.stop();
  quick = await startSandbox(0);
  slow = await startSandbox(1);
});
afterAll(async () => {
  await quick?.close();
  await slow?.close();
  stack?.qstash.start();
});

const HOUR = 3_600_000;

function tick(sandbox: Sandbox, opts: ContentTickOptions = {}) {
  return writeDueContent(db(), { limit: 500, anthropic: sandbox.claude, batch: {}, ...opts });
}

interface Run {
  id: string;
  position: number;
  channel: string;
  subject: string | null;
  body: string | null;
  content_source: string | null;
  content_model: string | null;
  content_tokens: TokenUsage | null;
  content_cost_cents: string;
  content_ready_at: Date | null;
  content_batch_id: string | null;
  content_batch_submitted_at: Date | null;
  content_claimed_until: Date | null;
  status: string;
}

async function runsOf(clientId: string): Promise<Run[]> {
  return await db()<Run[]>`
    select id, position, channel, subject, body, content_source, content_model, content_tokens, content_cost_cents,
           content_ready_at, content_batch_id, content_batch_submitted_at, content_claimed_until, status
    from public.step_runs where client_id = ${clientId} order by position, id`;
}

interface Planned {
  clientId: string;
  clientName: string;
  campaignId: string;
  leadIds: string[];
  runs: Run[];
}

/** A client with an approved campaign, its sequences planned now, every step due in `dueInHours`. */
async function planned(opts: FixtureOptions & { steps: FixtureStep[] }, dueInHours: number): Promise<Planned> {
  const f = await outreachFixture({ holidays: false, ...opts });
  await asService({ role: "test" }, (tx) => planSequences(tx, { now: new Date(), limit: 100_000 }));
  await db()`update public.step_runs set due_at = now() + make_interval(secs => ${dueInHours * 3600})
             where client_id = ${f.clientId}`;
  const [c] = await db()`select name from public.clients where id = ${f.clientId}`;
  const runs = await runsOf(f.clientId);
  expect(runs.length).toBe(opts.steps.length * (opts.leads ?? 1));
  return { clientId: f.clientId, clientName: c.name, campaignId: f.campaignId, leadIds: f.leadIds, runs };
}

async function setDue(ids: string[], hours: number) {
  await db()`update public.step_runs set due_at = now() + make_interval(secs => ${hours * 3600}) where id = any(${ids}::uuid[])`;
}

async function spendOf(clientId: string): Promise<number> {
  const [r] = await db()`select coalesce(sum(llm_cents), 0)::float8 as cents from public.client_spend where client_id = ${clientId}`;
  return Number(r.cents);
}

type BatchBody = {
  requests: Array<{
    custom_id: string;
    params: {
      model: string;
      system: Array<{ text: string; cache_control?: { type: string } }>;
      tool_choice: { type: string; name?: string };
    };
  }>;
};

function batchPosts(s: Sandbox): RecordedRequest[] {
  return s.state.requests.filter((r) => r.method === "POST" && /\/v1\/messages\/batches$/.test(r.path) && r.status === 200);
}

/** The batch requests (across every batch sent) for these step runs. */
function batchedRequests(s: Sandbox, ids: string[]) {
  return batchPosts(s).flatMap((r) => (r.body as BatchBody).requests.filter((q) => ids.includes(q.custom_id)));
}

/** The live /v1/messages calls made for this client (its name is in the cached client block). */
function liveCallsFor(s: Sandbox, clientName: string): RecordedRequest[] {
  return s.state.messageRequests().filter((r) => JSON.stringify(r.body).includes(clientName));
}

const sum = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) * 10_000) / 10_000;

const TWO_STEPS: FixtureStep[] = [
  { day_offset: 0, channel: "email" },
  { day_offset: 1, channel: "linkedin", linkedin_action: "invitation" },
];

describe("content batches", () => {
  it("Warm and Cool steps due in ~10 h go into one batch; the next tick writes them at batch prices", async () => {
    const warm = await planned({ tier: "warm", steps: TWO_STEPS }, 10);
    const cool = await planned({ tier: "cool", steps: TWO_STEPS }, 10);
    const ids = [...warm.runs, ...cool.runs].map((r) => r.id);
    const postsBefore = batchPosts(quick).length;

    const first = await tick(quick);
    // one batch, holding every one of these steps once, keyed by the step run id
    const posts = batchPosts(quick).slice(postsBefore);
    expect(posts).toHaveLength(1);
    const requests = batchedRequests(quick, ids);
    expect(requests.map((q) => q.custom_id).sort()).toEqual([...ids].sort());
    expect(first.batch.submitted).toBeGreaterThanOrEqual(4);
    expect(first.batch.batchId).toMatch(/^msgbatch_/);
    for (const q of requests) {
      expect(q.params.model).toBe(DEFAULT_MODELS.small);
      expect(q.params.system.length).toBeGreaterThanOrEqual(2);
      for (const block of q.params.system) expect(block.cache_control).toEqual({ type: "ephemeral" });
    }
    const toolOf = (id: string) => requests.find((q) => q.custom_id === id)!.params.tool_choice;
    for (const r of warm.runs) expect(toolOf(r.id)).toEqual({ type: "tool", name: "write_message" });
    for (const r of cool.runs) expect(toolOf(r.id)).toEqual({ type: "tool", name: "write_first_line" });
    // nothing written or called live yet; the steps wait on the batch, unleased
    expect(liveCallsFor(quick, warm.clientName)).toHaveLength(0);
    expect(liveCallsFor(quick, cool.clientName)).toHaveLength(0);
    for (const r of [...await runsOf(warm.clientId), ...await runsOf(cool.clientId)]) {
      expect(r.content_ready_at).toBeNull();
      expect(r.content_batch_id).toBe(first.batch.batchId);
      expect(r.content_batch_submitted_at).not.toBeNull();
      expect(r.content_claimed_until).toBeNull();
    }
    expect(await spendOf(warm.clientId)).toBe(0);

    const second = await tick(quick);
    expect(second.batch.collected).toBeGreaterThanOrEqual(4);
    expect(batchPosts(quick).length).toBe(postsBefore + 1); // nothing batched again
    for (const p of [warm, cool]) {
      const runs = await runsOf(p.clientId);
      for (const r of runs) {
        expect(r.status).toBe("scheduled");
        expect(r.content_ready_at).not.toBeNull();
        expect(r.content_source).toBe("claude"); // as a live write says
        expect(r.content_model).toBe(DEFAULT_MODELS.small);
        expect(r.content_batch_id).toBe(first.batch.batchId);
        // one call, at the batch price: half the live price for input and output
        const cost = Number(r.content_cost_cents);
        expect(cost).toBeGreaterThan(0);
        expect(cost).toBe(costCents(DEFAULT_MODELS.small, r.content_tokens!, { batch: true }));
        expect(cost).toBeLessThan(costCents(DEFAULT_MODELS.small, r.content_tokens!));
      }
      // the client's month spend grew by exactly what its steps cost
      expect(await spendOf(p.clientId)).toBe(sum(runs.map((r) => Number(r.content_cost_cents))));
      expect(liveCallsFor(quick, p.clientName)).toHaveLength(0);
    }
    const [warmEmail] = await runsOf(warm.clientId);
    expect(warmEmail.subject).toBeTruthy();
    expect(warmEmail.body).toMatch(/^Hi Pat,/);
    const [coolEmail] = await runsOf(cool.clientId);
    expect(coolEmail.body).toContain("I came across Prospect Co"); // Cool: Claude's first line, then the template
  });

  it("Hot, Cold and template-mode steps, steps due within 6 h and a spent budget never go to a batch", async () => {
    const hot = await planned({ tier: "hot", steps: TWO_STEPS }, 10);
    const cold = await planned({ tier: "cold", steps: [{ day_offset: 0, channel: "email" }] }, 10);
    const templated = await planned({ tier: "warm", steps: [{ day_offset: 0, channel: "email" }] }, 10);
    await db()`update public.campaign_steps set content_mode = 'template' where campaign_id = ${templated.campaignId}`;
    const soon = await planned({ tier: "warm", steps: TWO_STEPS }, 3);
    const broke = await planned({ tier: "warm", steps: [{ day_offset: 0, channel: "email" }] }, 10);
    await db()`update public.clients set monthly_llm_budget_cents = 0 where id = ${broke.clientId}`;
    const all = [hot, cold, templated, soon, broke];

    const result = await tick(quick);
    expect(batchedRequests(quick, all.flatMap((p) => p.runs.map((r) => r.id)))).toEqual([]);
    expect(result.written).toBeGreaterThanOrEqual(7);
    for (const p of all) {
      for (const r of await runsOf(p.clientId)) {
        expect(r.content_ready_at).not.toBeNull();
        expect(r.content_batch_id).toBeNull();
        expect(r.content_batch_submitted_at).toBeNull();
      }
    }
    for (const r of await runsOf(hot.clientId)) {
      expect(r.content_source).toBe("claude");
      expect(r.content_model).toBe(DEFAULT_MODELS.large);
    }
    expect((await runsOf(cold.clientId)).map((r) => r.content_source)).toEqual(["template"]);
    expect((await runsOf(templated.clientId)).map((r) => r.content_source)).toEqual(["template"]);
    expect((await runsOf(broke.clientId)).map((r) => r.content_source)).toEqual(["template_budget"]);
    // due within 6 h: written live, at the live price
    for (const r of await runsOf(soon.clientId)) {
      expect(r.content_source).toBe("claude");
      expect(Number(r.content_cost_cents)).toBe(costCents(DEFAULT_MODELS.small, r.content_tokens!));
    }
    expect(liveCallsFor(quick, soon.clientName)).toHaveLength(2);
    expect(liveCallsFor(quick, hot.clientName)).toHaveLength(2);
  });

  it("an errored batch item goes back to the live writer, which writes it once", async () => {
    const p = await planned({ tier: "warm", steps: [{ day_offset: 0, channel: "email" }] }, 10);
    const [run] = p.runs;
    // "overloaded" in the lead's prompt makes the sandbox's batch item error (529)
    await db()`update public.lead_pool set company_name = 'Overloaded Co' where id = ${p.leadIds[0]}`;
    const submitted = await tick(quick);
    expect(batchedRequests(quick, [run.id])).toHaveLength(1);
    expect(submitted.batch.batchId).toBeTruthy();
    await db()`update public.lead_pool set company_name = 'Prospect Co' where id = ${p.leadIds[0]}`;

    const collected = await tick(quick);
    expect(collected.batch.returnedToLive).toBeGreaterThanOrEqual(1);
    const [after] = await runsOf(p.clientId);
    // the live phase of the same tick wrote it, at the live price; it is not batched again
    expect(after.content_ready_at).not.toBeNull();
    expect(after.content_source).toBe("claude");
    expect(after.body).toContain("Prospect Co");
    expect(after.content_batch_id).toBeNull();
    expect(after.content_batch_submitted_at).not.toBeNull();
    expect(Number(after.content_cost_cents)).toBe(costCents(DEFAULT_MODELS.small, after.content_tokens!));
    expect(liveCallsFor(quick, p.clientName)).toHaveLength(1);
    expect(batchedRequests(quick, [run.id])).toHaveLength(1);
    expect(await spendOf(p.clientId)).toBe(Number(after.content_cost_cents));

    await tick(quick);
    expect(batchedRequests(quick, [run.id])).toHaveLength(1);
    expect(liveCallsFor(quick, p.clientName)).toHaveLength(1);
  });

  it("a batch answer that no longer fits the step (the lead's tier changed) is dropped and the step written live", async () => {
    const p = await planned({ tier: "warm", steps: [{ day_offset: 0, channel: "email" }], leads: 2 }, 10);
    const submitted = await tick(quick);
    expect(batchedRequests(quick, p.runs.map((r) => r.id))).toHaveLength(2);
    expect(submitted.batch.batchId).toBeTruthy();
    // rescored while the batch ran: one lead is now Cool (a first line, not a whole message), one Hot
    await db()`update public.lead_assignments set als_tier = 'cool' where lead_id = ${p.leadIds[0]} and client_id = ${p.clientId}`;
    await db()`update public.lead_assignments set als_tier = 'hot' where lead_id = ${p.leadIds[1]} and client_id = ${p.clientId}`;

    const collected = await tick(quick);
    expect(collected.batch.returnedToLive).toBeGreaterThanOrEqual(2);
    const runs = await db()<Array<Run & { tier: string }>>`
      select a.als_tier as tier, r.content_source, r.content_model, r.content_batch_id, r.content_ready_at, r.body,
             r.content_cost_cents, r.content_tokens
      from public.step_runs r join public.lead_assignments a on a.id = r.assignment_id
      where r.client_id = ${p.clientId}`;
    const byTier = Object.fromEntries(runs.map((r) => [r.tier, r]));
    expect(byTier.cool.content_model).toBe(DEFAULT_MODELS.small);
    expect(byTier.cool.body).toContain("I came across Prospect Co");
    expect(byTier.hot.content_model).toBe(DEFAULT_MODELS.large);
    for (const r of runs) {
      expect(r.content_ready_at).not.toBeNull();
      expect(r.content_source).toBe("claude");
      expect(r.content_batch_id).toBeNull();
      expect(Number(r.content_cost_cents)).toBe(costCents(r.content_model!, r.content_tokens!));
    }
    expect(liveCallsFor(quick, p.clientName)).toHaveLength(2);
  });

  it("a batch answer that fails the checks gets the one retry live, with the problems fed back", async () => {
    const p = await planned({ tier: "warm", steps: [{ day_offset: 0, channel: "email" }] }, 10);
    // "spammy" in the lead's prompt: the sandbox writes spam-trigger words until it sees an error tool_result
    await db()`update public.lead_pool set company_name = 'Spammy Co' where id = ${p.leadIds[0]}`;
    await tick(quick);
    expect(batchedRequests(quick, p.runs.map((r) => r.id))).toHaveLength(1);

    const collected = await tick(quick);
    expect(collected.batch.collected).toBeGreaterThanOrEqual(1);
    const [run] = await runsOf(p.clientId);
    expect(run.content_source).toBe("claude");
    expect(run.body).not.toMatch(/limited time/i);
    const retries = liveCallsFor(quick, p.clientName);
    expect(retries).toHaveLength(1);
    expect(JSON.stringify(retries[0].body)).toContain('"is_error":true');
    // the batch answer at the batch price plus the retry at the live price
    const cost = Number(run.content_cost_cents);
    expect(cost).toBeGreaterThan(costCents(DEFAULT_MODELS.small, run.content_tokens!, { batch: true }));
    expect(cost).toBeLessThan(costCents(DEFAULT_MODELS.small, run.content_tokens!));
    expect(await spendOf(p.clientId)).toBe(cost);
  });

  it("a step waiting on a batch that becomes due within 2 h is written live; the late result does not overwrite it", async () => {
    const p = await planned({ tier: "warm", steps: TWO_STEPS }, 10);
    const [urgent, patient] = p.runs;
    const submitted = await tick(slow);
    expect(batchedRequests(slow, [urgent.id, patient.id])).toHaveLength(2);
    const batchId = submitted.batch.batchId;

    await setDue([urgent.id], 1);
    const meanwhile = await tick(slow);
    // the batch is still running: it is polled, not waited for, and it asks for no further tick
    expect(meanwhile.batch.inProgress).toBeGreaterThanOrEqual(1);
    expect(meanwhile.more).toBe(false);
    const [live, waiting] = await runsOf(p.clientId);
    expect(live.content_ready_at).not.toBeNull();
    expect(live.content_source).toBe("claude");
    expect(Number(live.content_cost_cents)).toBe(costCents(DEFAULT_MODELS.small, live.content_tokens!));
    expect(waiting.content_ready_at).toBeNull();
    expect(waiting.content_batch_id).toBe(batchId);
    expect(liveCallsFor(slow, p.clientName)).toHaveLength(1);

    const ended = await tick(slow);
    expect(ended.batch.collected).toBeGreaterThanOrEqual(1);
    expect(slow.state.batches.get(batchId!)?.results?.map((r) => r.custom_id).sort()).toEqual([urgent.id, patient.id].sort());
    const [liveAfter, collected] = await runsOf(p.clientId);
    // the batch's answer for the step written live was dropped: same text, time, price
    expect(liveAfter).toEqual(live);
    expect(collected.content_ready_at).not.toBeNull();
    expect(Number(collected.content_cost_cents)).toBe(costCents(DEFAULT_MODELS.small, collected.content_tokens!, { batch: true }));
    expect(await spendOf(p.clientId)).toBe(sum([Number(live.content_cost_cents), Number(collected.content_cost_cents)]));
    expect(liveCallsFor(slow, p.clientName)).toHaveLength(1);
  });

  it("two ticks at once submit each step at most once, and collect each result once", async () => {
    const p = await planned({ tier: "warm", steps: TWO_STEPS, leads: 3 }, 10);
    const ids = p.runs.map((r) => r.id);

    const [a, b] = await Promise.all([tick(quick), tick(quick)]);
    expect(a.batch.submitted + b.batch.submitted).toBeGreaterThanOrEqual(6);
    const requests = batchedRequests(quick, ids);
    expect(requests.map((q) => q.custom_id).sort()).toEqual([...ids].sort());
    const waiting = await runsOf(p.clientId);
    expect(waiting.every((r) => r.content_batch_id !== null && r.content_ready_at === null)).toBe(true);

    // the next two ticks at once both poll the ended batch(es); each step is stored by one of them
    const [c, d] = await Promise.all([tick(quick), tick(quick)]);
    expect(c.batch.collected + d.batch.collected).toBeGreaterThanOrEqual(6);
    const runs = await runsOf(p.clientId);
    expect(runs.every((r) => r.content_ready_at !== null && r.content_source === "claude")).toBe(true);
    expect(await spendOf(p.clientId)).toBe(sum(runs.map((r) => Number(r.content_cost_cents))));
    expect(liveCallsFor(quick, p.clientName)).toHaveLength(0);

    // a redelivered tick finds nothing left to batch or collect
    await tick(quick);
    expect(batchedRequests(quick, ids)).toHaveLength(6);
    expect(await runsOf(p.clientId)).toEqual(runs);
  });

  it("caps the steps per batch and continues through `more`", async () => {
    const p = await planned({ tier: "cool", steps: [{ day_offset: 0, channel: "email" }], leads: 3 }, 20);
    const ids = p.runs.map((r) => r.id);
    const postsBefore = batchPosts(quick).length;

    const first = await tick(quick, { batch: { maxSteps: 2 } });
    expect(first.batch.submitted).toBe(2);
    expect(first.more).toBe(true);
    const second = await tick(quick, { batch: { maxSteps: 2 } });
    expect(second.batch.submitted).toBeGreaterThanOrEqual(1);
    expect(batchPosts(quick).length).toBe(postsBefore + 2);
    expect(batchedRequests(quick, ids).map((q) => q.custom_id).sort()).toEqual([...ids].sort());
  });
});
