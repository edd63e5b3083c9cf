// Writes each planned step's message before it is due (content.ts by tier; templates without
// Claude) and stores it on the step run with its tokens and cost. Claude calls run outside any
// transaction: step runs are leased (content_claimed_until) so a redelivered or concurrent tick
// never writes the same step twice, and a crash only delays it until the lease runs out.
//
// With `batch` on, a tick has three phases, in this order:
//   collect  batches that have ended: each step's message is written by replaying writeStep with
//            the batch's answer (content-batches.ts) and stored exactly as a live write is; items
//            that errored, expired or were canceled go back to the live writer.
//   submit   Warm and Cool steps (content mode tiered) due in minLeadHours–horizonHours that were
//            never batched: writeStep's first request is recorded and all of them go to Anthropic
//            as ONE message batch (half price; custom_id = the step run id). A step's request is
//            batched at most once: content_batch_submitted_at is set before sending.
//   live     as without batching, but a step waiting on a batch is left to it until it is due
//            within two hours, and a step the submit phase will batch is left to that phase.
// Hot (a research conversation), Cold and template-mode steps are always written live.
import type { Channel, LinkedInAction } from "../channels/types.ts";
import type { Sql } from "../db/client.ts";
import { MAX_BATCH_REQUESTS, type AnthropicClient, type BatchRequest, type BatchResultItem } from "../integrations/anthropic.ts";
import { ProviderError } from "../integrations/provider-http.ts";
import { log } from "../observability/log.ts";
import { BatchResultMismatch, recordStep, replayStep } from "./content-batches.ts";
import { mapLimit } from "./concurrency.ts";
import {
  ContentRefusedError,
  estimateCallCents,
  writeStep,
  type WriteStepDeps,
  type WriteStepInput,
  type WrittenStep,
} from "./content.ts";
import { DEFAULT_TEMPLATES, stepKindFor, type MessageTemplate } from "./templates.ts";

export interface ContentBatchOptions {
  /** Steps due sooner than this are written live, never batched (default 6). */
  minLeadHours?: number;
  /** Steps due within this many hours are pre-generated in a batch (default 48). */
  horizonHours?: number;
  /** Steps sent in the one batch of a tick, and batch results stored per tick (default 500). */
  maxSteps?: number;
}

export interface ContentTickOptions {
  /** Step runs written live per call (default 25). */
  limit?: number;
  /** Write steps due within this many hours (default 24). */
  horizonHours?: number;
  /** Claude calls in flight at once (default 4). */
  concurrency?: number;
  anthropic?: AnthropicClient | null;
  search?: WriteStepDeps["search"];
  fetchSite?: WriteStepDeps["fetchSite"];
  /** Message Batches for steps nobody waits on (default off; needs `anthropic`). */
  batch?: ContentBatchOptions | false;
}

export interface ContentBatchCounts {
  /** Steps whose request went into the batch created this tick. */
  submitted: number;
  /** That batch, if one was created. */
  batchId: string | null;
  /** Steps settled from ended batches this tick (also counted in written or skipped). */
  collected: number;
  /** Batch items that errored, expired, were canceled or no longer fit the step: left to the live writer. */
  returnedToLive: number;
  /** Batches polled this tick that are still running (a later tick collects them). */
  inProgress: number;
}

export interface ContentTickResult {
  written: number;
  skipped: number;
  retryLater: number;
  /** More work is ready now (not: a batch is still running). */
  more: boolean;
  bySource: Record<string, number>;
  batch: ContentBatchCounts;
}

type Tier = "hot" | "warm" | "cool" | "cold" | "dead";

interface Row {
  id: string;
  client_id: string;
  lead_id: string;
  channel: Channel;
  position: number;
  first_position: number;
  linkedin_action: LinkedInAction | null;
  content_mode: "tiered" | "template";
  subject_template: string | null;
  body_template: string | null;
  tier: Tier | null;
  first_name: string | null;
  last_name: string | null;
  title: string | null;
  company_name: string | null;
  company_domain: string | null;
  industry: string | null;
  employee_count: number | null;
  city: string | null;
  country: string | null;
  linkedin_url: string | null;
  client_name: string;
  sender_name: string | null;
  offer: string | null;
  icp_offer: string | null;
  llm_budget_cents: number;
  llm_spent_cents: string | number | null;
}

interface BatchWindow {
  minLeadHours: number;
  horizonHours: number;
  maxSteps: number;
}

/** A step waiting on a batch is written live once it is due this soon (a late result is then ignored). */
const BATCH_WAIT_HOURS = 2;
/** Batches polled per tick, oldest first (they end roughly in the order they were sent). */
const MAX_BATCHES_POLLED = 50;

// ---------------------------------------------------------------------------------------------
// Claims (leases) and lease bookkeeping
// ---------------------------------------------------------------------------------------------

/** The rows (alias r) the submit phase takes: never batched, Warm/Cool, tiered, due inside the window. */
function batchSubmittable(sql: Sql, w: BatchWindow) {
  return sql`(r.content_batch_submitted_at is null
    and r.due_at > now() + make_interval(secs => ${w.minLeadHours * 3600})
    and r.due_at <= now() + make_interval(secs => ${w.horizonHours * 3600})
    and exists (select 1 from public.lead_assignments a, public.campaign_steps st
                where a.id = r.assignment_id and st.id = r.step_id
                  and a.als_tier in ('warm', 'cool') and st.content_mode = 'tiered'))`;
}

/** A WHERE fragment over step_runs r, built with the same sql. */
type SqlCondition = ReturnType<typeof batchSubmittable>;

/**
 * Leases (five minutes) up to `limit` scheduled step runs that have no message yet, are not leased,
 * and match `where` (alias r), soonest due first: the one claim of the live, submit and collect
 * phases, so concurrent or redelivered ticks never write a step twice.
 */
async function lease(sql: Sql, where: SqlCondition, limit: number): Promise<string[]> {
  const rows = await sql`
    update public.step_runs u set content_claimed_until = now() + interval '5 minutes'
    where u.id in (
      select r.id from public.step_runs r
      where r.status = 'scheduled' and r.content_ready_at is null
        and (r.content_claimed_until is null or r.content_claimed_until < now())
        and ${where}
      order by r.due_at
      limit ${limit}
      for update skip locked)
    returning u.id`;
  return rows.map((r) => r.id as string);
}

/** The live writer's steps: due soon, and neither waiting on a batch nor the submit phase's. */
function claimLive(sql: Sql, limit: number, horizonHours: number, batch: BatchWindow | null): Promise<string[]> {
  return lease(sql, sql`r.due_at <= now() + make_interval(hours => ${horizonHours})
    -- waiting on a batch: its result writes the step, unless the step is due too soon to wait
    and (r.content_batch_id is null or r.due_at <= now() + make_interval(hours => ${BATCH_WAIT_HOURS}))
    ${batch ? sql`and not ${batchSubmittable(sql, batch)}` : sql``}`, limit);
}

/** The steps the submit phase batches this tick. */
function claimForBatch(sql: Sql, w: BatchWindow): Promise<string[]> {
  return lease(sql, batchSubmittable(sql, w), w.maxSteps);
}

/** Batches that still owe messages to scheduled steps, oldest first. */
async function batchesOwingContent(sql: Sql): Promise<string[]> {
  const rows = await sql`
    select content_batch_id as id from public.step_runs
    where content_batch_id is not null and content_ready_at is null and status = 'scheduled'
    group by content_batch_id
    order by min(content_batch_submitted_at)
    limit ${MAX_BATCHES_POLLED}`;
  return rows.map((r) => r.id as string);
}

/** Up to `limit` steps still waiting on this (ended) batch. */
function claimBatchRows(sql: Sql, batchId: string, limit: number): Promise<string[]> {
  return lease(sql, sql`r.content_batch_id = ${batchId}`, limit);
}

async function releaseLeases(sql: Sql, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`update public.step_runs set content_claimed_until = null
            where id = any(${ids}::uuid[]) and content_ready_at is null`;
}

/** The batch will not write these steps: the live writer does (they are never batched again). */
async function returnToLive(sql: Sql, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`update public.step_runs set content_batch_id = null, content_claimed_until = null
            where id = any(${ids}::uuid[]) and content_ready_at is null`;
}

// ---------------------------------------------------------------------------------------------
// Facts in, results out
// ---------------------------------------------------------------------------------------------

async function load(sql: Sql, ids: string[]): Promise<Row[]> {
  return await sql<Row[]>`
    select r.id, r.client_id, r.lead_id, r.channel, r.position,
           (select min(x.position) from public.step_runs x where x.assignment_id = r.assignment_id) as first_position,
           st.linkedin_action, st.content_mode, v.subject_template, v.body_template,
           a.als_tier as tier,
           l.first_name, l.last_name, l.title, l.company_name, l.company_domain, l.industry, l.employee_count, l.city, l.country,
           l.linkedin_url,
           c.name as client_name, cp.sender_name, cp.offer, i.offer as icp_offer,
           c.monthly_llm_budget_cents as llm_budget_cents,
           (select sp.llm_cents from public.client_spend sp
            where sp.client_id = r.client_id and sp.month = date_trunc('month', now())::date) as llm_spent_cents
    from public.step_runs r
    join public.campaign_steps st on st.id = r.step_id
    left join public.step_variants v on v.id = r.variant_id
    join public.lead_assignments a on a.id = r.assignment_id
    join public.lead_pool l on l.id = r.lead_id
    join public.clients c on c.id = r.client_id
    join public.campaigns cp on cp.id = r.campaign_id
    left join public.icps i on i.id = cp.icp_id
    where r.id = any(${ids}::uuid[])`;
}

/** Warm and Cool steps in tiered mode: one forced call each, so one batch request each. */
function isBatchable(row: Row): boolean {
  return (row.tier === "warm" || row.tier === "cool") && row.content_mode === "tiered";
}

function templateFor(row: Row, isFirstTouch: boolean): MessageTemplate | undefined {
  if (!row.body_template) return undefined;
  const kind = stepKindFor(row.channel, { isFirstTouch, linkedinAction: row.linkedin_action ?? undefined });
  const base = DEFAULT_TEMPLATES[kind];
  return { ...base, subject: row.subject_template ?? base.subject, main: row.body_template };
}

function stepInput(row: Row): WriteStepInput {
  const isFirstTouch = row.position === row.first_position;
  return {
    tier: row.tier ?? "dead",
    channel: row.channel,
    stepNumber: row.position,
    isFirstTouch,
    linkedinAction: row.linkedin_action ?? undefined,
    lead: {
      id: row.lead_id, firstName: row.first_name, lastName: row.last_name, title: row.title,
      company: row.company_name, companyDomain: row.company_domain, industry: row.industry,
      employees: row.employee_count, city: row.city, country: row.country, linkedinUrl: row.linkedin_url,
    },
    client: {
      id: row.client_id,
      name: row.client_name,
      senderName: row.sender_name ?? row.client_name,
      offer: row.offer ?? row.icp_offer ?? "outbound lead generation",
    },
    template: templateFor(row, isFirstTouch),
    contentMode: row.content_mode,
  };
}

/** The month's LLM spend per client, updated as a phase spends (or reserves) it. */
class SpendTracker {
  private readonly cents = new Map<string, number>();
  constructor(rows: Row[]) {
    for (const r of rows) this.cents.set(r.client_id, Number(r.llm_spent_cents ?? 0));
  }
  of(clientId: string): number {
    return this.cents.get(clientId) ?? 0;
  }
  add(clientId: string, cents: number): void {
    this.cents.set(clientId, this.of(clientId) + cents);
  }
}

function stepDeps(row: Row, anthropic: AnthropicClient | null, opts: ContentTickOptions, spent: SpendTracker): WriteStepDeps {
  return {
    anthropic,
    search: opts.search,
    fetchSite: opts.fetchSite,
    budget: { spentCents: spent.of(row.client_id), limitCents: row.llm_budget_cents },
    onTransientError: "throw",
  };
}

/** Stores a written step (the one store of the live and the batch paths) and counts it. */
async function storeWritten(sql: Sql, row: Row, written: WrittenStep, spent: SpendTracker, result: ContentTickResult): Promise<void> {
  spent.add(row.client_id, written.costCents);
  if (written.violations.length > 0) {
    // a message that fails the checks is never queued: the step is skipped with the reason
    await sql`
      update public.step_runs set status = 'skipped', last_refusal = 'content_violations',
             content_source = ${written.source}, content_claimed_until = null
      where id = ${row.id} and content_ready_at is null`;
    await sql`
      insert into public.gate_refusals (step_run_id, client_id, channel, reason, outcome)
      values (${row.id}, ${row.client_id}, ${row.channel}, ${"content_violations: " + written.violations.map((v) => v.code).join(",")}, 'skipped')`;
    result.skipped += 1;
    return;
  }
  const body = written.voiceKnowledgeBase ? `${written.body}\n\n---\n${written.voiceKnowledgeBase}` : written.body;
  await sql.begin(async (tx) => {
    await tx`
      update public.step_runs set subject = ${written.subject}, body = ${body}, content_source = ${written.source},
             content_model = ${written.model}, content_tokens = ${tx.json(written.usage as never)},
             content_cost_cents = ${written.costCents}, content_ready_at = now(), content_claimed_until = null
      where id = ${row.id} and content_ready_at is null`;
    if (written.costCents > 0) {
      await tx`
        insert into public.client_spend as sp (client_id, month, llm_cents)
        values (${row.client_id}, date_trunc('month', now())::date, ${written.costCents})
        on conflict (client_id, month) do update set llm_cents = sp.llm_cents + excluded.llm_cents`;
    }
  });
  result.written += 1;
  result.bySource[written.source] = (result.bySource[written.source] ?? 0) + 1;
}

/** Dead tier or a channel the tier doesn't allow: nothing to write; the gate skips the step. */
async function storeRefused(sql: Sql, row: Row, result: ContentTickResult): Promise<void> {
  await sql`update public.step_runs set content_claimed_until = null, content_source = 'none', content_ready_at = now()
            where id = ${row.id}`;
  result.skipped += 1;
}

// ---------------------------------------------------------------------------------------------
// The phases
// ---------------------------------------------------------------------------------------------

async function writeLive(sql: Sql, opts: ContentTickOptions, batch: BatchWindow | null, result: ContentTickResult): Promise<void> {
  const limit = opts.limit ?? 25;
  const ids = await claimLive(sql, limit, opts.horizonHours ?? 24, batch);
  if (ids.length === limit) result.more = true;
  if (ids.length === 0) return;
  const rows = await load(sql, ids);
  const spent = new SpendTracker(rows);
  await mapLimit(rows, opts.concurrency ?? 4, async (row) => {
    try {
      const written = await writeStep(stepInput(row), stepDeps(row, opts.anthropic ?? null, opts, spent));
      await storeWritten(sql, row, written, spent, result);
    } catch (err) {
      if (err instanceof ContentRefusedError) return await storeRefused(sql, row, result);
      // transient (rate limits, overload): the lease runs out and a later tick tries again
      result.retryLater += 1;
    }
  });
}

/** Records the first request of each submittable step and sends them all as one batch. */
async function submitBatch(
  sql: Sql,
  anthropic: AnthropicClient,
  w: BatchWindow,
  opts: ContentTickOptions,
  result: ContentTickResult,
): Promise<void> {
  const ids = await claimForBatch(sql, w);
  if (ids.length === w.maxSteps) result.more = true;
  if (ids.length === 0) return;
  const rows = await load(sql, ids);
  const spent = new SpendTracker(rows);
  const requests: BatchRequest[] = [];
  const unrecorded: string[] = [];
  for (const row of rows) {
    // the lead's tier may have changed since the claim: such a step is the live writer's
    if (!isBatchable(row)) {
      unrecorded.push(row.id);
      continue;
    }
    try {
      const recorded = await recordStep(stepInput(row), { ...stepDeps(row, anthropic, opts, spent), anthropic });
      if (recorded.kind === "written") {
        // no Claude needed (template, budget, no room): stored now, as the live writer would
        await storeWritten(sql, row, recorded.written, spent, result);
        continue;
      }
      requests.push({ custom_id: row.id, params: recorded.params });
      // held against the budget until the result's real cost is known, so one batch cannot overspend it
      spent.add(row.client_id, estimateCallCents(recorded.params));
    } catch (err) {
      if (err instanceof ContentRefusedError) {
        await storeRefused(sql, row, result);
        continue;
      }
      log("warn", "content step not recorded for a batch", { step_run_id: row.id, error: err instanceof Error ? err.message : String(err) });
      unrecorded.push(row.id);
    }
  }
  await releaseLeases(sql, unrecorded);
  if (requests.length > 0) await sendBatch(sql, anthropic, requests, result);
}

async function sendBatch(sql: Sql, anthropic: AnthropicClient, requests: BatchRequest[], result: ContentTickResult): Promise<void> {
  const ids = requests.map((r) => r.custom_id);
  // Marked before sending: should this tick die after Anthropic accepted the batch, no later tick
  // sends these requests again (the live writer takes the steps instead).
  await sql`update public.step_runs set content_batch_submitted_at = now() where id = any(${ids}::uuid[])`;
  let batchId: string;
  try {
    batchId = (await anthropic.submitBatch(requests)).id;
  } catch (err) {
    // Nothing lost: a transient failure leaves the steps to the next tick's batch; any other
    // failure would repeat, so the live writer takes them.
    const retryable = err instanceof ProviderError && err.retryable;
    log("warn", "content batch not submitted", { steps: ids.length, retryable, error: err instanceof Error ? err.message : String(err) });
    await sql`update public.step_runs set content_claimed_until = null
                ${retryable ? sql`, content_batch_submitted_at = null` : sql``}
              where id = any(${ids}::uuid[]) and content_ready_at is null`;
    return;
  }
  await sql`update public.step_runs set content_batch_id = ${batchId}, content_claimed_until = null
            where id = any(${ids}::uuid[])`;
  result.batch.submitted += ids.length;
  result.batch.batchId = batchId;
}

/** Polls the batches that owe messages and stores what the ended ones wrote. */
async function collectBatches(
  sql: Sql,
  anthropic: AnthropicClient,
  w: BatchWindow,
  opts: ContentTickOptions,
  result: ContentTickResult,
): Promise<void> {
  let room = w.maxSteps;
  for (const batchId of await batchesOwingContent(sql)) {
    if (room === 0) break;
    const status = await pollBatch(sql, anthropic, batchId);
    if (status === "in_progress") result.batch.inProgress += 1;
    if (status !== "ended") continue;
    const ids = await claimBatchRows(sql, batchId, room);
    if (ids.length === room) result.more = true;
    room -= ids.length;
    if (ids.length > 0) await storeBatchResults(sql, anthropic, batchId, ids, opts, result);
  }
}

/** The batch's state; a batch Anthropic no longer knows hands its steps back to the live writer. */
async function pollBatch(sql: Sql, anthropic: AnthropicClient, batchId: string): Promise<"ended" | "in_progress" | "unknown"> {
  try {
    return (await anthropic.batchStatus(batchId)).status === "ended" ? "ended" : "in_progress";
  } catch (err) {
    log("warn", "content batch status failed", { batch_id: batchId, error: err instanceof Error ? err.message : String(err) });
    if (err instanceof ProviderError && err.status === 404) {
      await sql`update public.step_runs set content_batch_id = null
                where content_batch_id = ${batchId} and content_ready_at is null`;
    }
    return "unknown";
  }
}

async function storeBatchResults(
  sql: Sql,
  anthropic: AnthropicClient,
  batchId: string,
  ids: string[],
  opts: ContentTickOptions,
  result: ContentTickResult,
): Promise<void> {
  let items: BatchResultItem[];
  try {
    items = await anthropic.batchResults(batchId);
  } catch (err) {
    log("warn", "content batch results failed", { batch_id: batchId, error: err instanceof Error ? err.message : String(err) });
    await releaseLeases(sql, ids);
    return;
  }
  const byStep = new Map(items.map((i) => [i.customId, i]));
  const rows = await load(sql, ids);
  const spent = new SpendTracker(rows);
  const toLive: string[] = [];
  await mapLimit(rows, opts.concurrency ?? 4, async (row) => {
    const item = byStep.get(row.id);
    // errored, expired, canceled (or a step that is no longer Warm/Cool): the live writer takes it
    if (!item || item.type !== "succeeded" || !isBatchable(row)) return void toLive.push(row.id);
    try {
      const written = await replayStep(stepInput(row), { ...stepDeps(row, anthropic, opts, spent), anthropic }, item);
      await storeWritten(sql, row, written, spent, result);
      result.batch.collected += 1;
    } catch (err) {
      if (err instanceof ContentRefusedError) return await storeRefused(sql, row, result);
      if (err instanceof BatchResultMismatch) return void toLive.push(row.id);
      // the live retry failed transiently: the lease runs out and a later tick replays the same result
      result.retryLater += 1;
    }
  });
  await returnToLive(sql, toLive);
  result.batch.returnedToLive += toLive.length;
}

function batchWindow(opts: ContentTickOptions): BatchWindow | null {
  if (!opts.batch || !opts.anthropic) return null;
  return {
    minLeadHours: opts.batch.minLeadHours ?? 6,
    horizonHours: opts.batch.horizonHours ?? 48,
    maxSteps: Math.min(Math.max(1, opts.batch.maxSteps ?? 500), MAX_BATCH_REQUESTS),
  };
}

/** One bounded tick of message writing: batches collected and submitted (when on), then live writes. */
export async function writeDueContent(sql: Sql, opts: ContentTickOptions = {}): Promise<ContentTickResult> {
  const result: ContentTickResult = {
    written: 0, skipped: 0, retryLater: 0, more: false, bySource: {},
    batch: { submitted: 0, batchId: null, collected: 0, returnedToLive: 0, inProgress: 0 },
  };
  const batch = batchWindow(opts);
  if (batch && opts.anthropic) {
    await collectBatches(sql, opts.anthropic, batch, opts, result);
    await submitBatch(sql, opts.anthropic, batch, opts, result);
  }
  await writeLive(sql, opts, batch, result);
  return result;
}
