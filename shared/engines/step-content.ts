// Writes each planned step's message before it is due (content.ts by tier; templates without
// Claude) and stores it on the step run with its tokens and cost. Claude calls run outside any
// transaction: step runs are leased (content_claimed_until) so a redelivered or concurrent tick
// never writes the same step twice, and a crash only delays it until the lease runs out.
import type { Channel, LinkedInAction } from "../channels/types.ts";
import type { Sql } from "../db/client.ts";
import type { AnthropicClient } from "../integrations/anthropic.ts";
import { mapLimit } from "./concurrency.ts";
import { ContentRefusedError, writeStep, type WriteStepDeps } from "./content.ts";
import { DEFAULT_TEMPLATES, stepKindFor, type MessageTemplate } from "./templates.ts";

export interface ContentTickOptions {
  /** Step runs written per call (default 25). */
  limit?: number;
  /** Write steps due within this many hours (default 24). */
  horizonHours?: number;
  /** Claude calls in flight at once (default 4). */
  concurrency?: number;
  anthropic?: AnthropicClient | null;
  search?: WriteStepDeps["search"];
  fetchSite?: WriteStepDeps["fetchSite"];
}

export interface ContentTickResult {
  written: number;
  skipped: number;
  retryLater: number;
  more: boolean;
  bySource: Record<string, number>;
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

/** Leases up to `limit` step runs due soon that have no message yet. */
async function claim(sql: Sql, limit: number, horizonHours: number): Promise<string[]> {
  const rows = await sql`
    update public.step_runs r set content_claimed_until = now() + interval '5 minutes'
    where r.id in (
      select id from public.step_runs
      where status = 'scheduled' and content_ready_at is null
        and due_at <= now() + make_interval(hours => ${horizonHours})
        and (content_claimed_until is null or content_claimed_until < now())
      order by due_at
      limit ${limit}
      for update skip locked)
    returning r.id`;
  return rows.map((r) => r.id as string);
}

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

function templateFor(row: Row, isFirstTouch: boolean): MessageTemplate | undefined {
  if (!row.body_template) return undefined;
  const kind = stepKindFor(row.channel, { isFirstTouch, linkedinAction: row.linkedin_action ?? undefined });
  const base = DEFAULT_TEMPLATES[kind];
  return { ...base, subject: row.subject_template ?? base.subject, main: row.body_template };
}

/** One bounded batch of message writing. */
export async function writeDueContent(sql: Sql, opts: ContentTickOptions = {}): Promise<ContentTickResult> {
  const limit = opts.limit ?? 25;
  const ids = await claim(sql, limit, opts.horizonHours ?? 24);
  const result: ContentTickResult = { written: 0, skipped: 0, retryLater: 0, more: ids.length === limit, bySource: {} };
  if (ids.length === 0) return result;
  const rows = await load(sql, ids);
  // the month's LLM spend per client, updated as this batch spends it
  const spent = new Map<string, number>();
  for (const r of rows) spent.set(r.client_id, Number(r.llm_spent_cents ?? 0));

  await mapLimit(rows, opts.concurrency ?? 4, async (row) => {
    const isFirstTouch = row.position === row.first_position;
    try {
      const written = await writeStep({
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
      }, {
        anthropic: opts.anthropic ?? null,
        search: opts.search,
        fetchSite: opts.fetchSite,
        budget: { spentCents: spent.get(row.client_id) ?? 0, limitCents: row.llm_budget_cents },
        onTransientError: "throw",
      });
      spent.set(row.client_id, (spent.get(row.client_id) ?? 0) + written.costCents);
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
    } catch (err) {
      if (err instanceof ContentRefusedError) {
        // Dead tier or a channel the tier doesn't allow: nothing to write; the gate skips the step
        await sql`update public.step_runs set content_claimed_until = null, content_source = 'none', content_ready_at = now()
                  where id = ${row.id}`;
        result.skipped += 1;
        return;
      }
      // transient (rate limits, overload): the lease runs out and a later tick tries again
      result.retryLater += 1;
    }
  });
  return result;
}
