// Queries behind the campaigns function. Each runs in the caller's RLS transaction (tx); status
// and approval changes go through the security-definer functions of migration 001300, which check
// the caller's role.
import type { Tx } from "../client.ts";
import type { Cursor } from "../../http/pagination.ts";
import type { z } from "@hono/zod-openapi";
import type { StepInput } from "../../schemas/campaigns.ts";

const CAMPAIGN_COLUMNS = [
  "id", "client_id", "icp_id", "name", "status", "description", "offer", "sender_name", "daily_new_leads", "source",
  "submitted_at", "approved_at", "approved_by", "paused_at", "pause_reason", "created_at", "updated_at",
];

type Step = z.output<typeof StepInput>;

export function listCampaigns(tx: Tx, p: { limit: number; cursor: Cursor | null; clientId?: string; status?: string }) {
  return tx`
    select ${tx(CAMPAIGN_COLUMNS)} from public.campaigns
    where true
      ${p.clientId ? tx`and client_id = ${p.clientId}` : tx``}
      ${p.status ? tx`and status = ${p.status}` : tx``}
      ${p.cursor ? tx`and (created_at, id) < (${p.cursor.createdAt}::timestamptz, ${p.cursor.id}::uuid)` : tx``}
    order by created_at desc, id desc
    limit ${p.limit + 1}`;
}

export async function getCampaign(tx: Tx, id: string) {
  const [row] = await tx`select ${tx(CAMPAIGN_COLUMNS)} from public.campaigns where id = ${id}`;
  if (!row) return undefined;
  const steps = await tx`
    select s.id, s.position, s.day_offset, s.channel, s.content_mode, s.condition, s.linkedin_action,
           coalesce((select json_agg(json_build_object('id', v.id, 'label', v.label, 'subject_template', v.subject_template,
                                                        'body_template', v.body_template, 'weight', v.weight) order by v.label)
                     from public.step_variants v where v.step_id = s.id), '[]'::json) as variants
    from public.campaign_steps s where s.campaign_id = ${id} order by s.position`;
  const senders = await tx`select sender_id from public.campaign_senders where campaign_id = ${id} order by sender_id`;
  return { ...row, steps, sender_ids: senders.map((s) => s.sender_id as string) };
}

export async function createCampaign(tx: Tx, values: Record<string, unknown>, steps: Step[], source: "manual" | "generated" = "manual") {
  const [row] = await tx`insert into public.campaigns ${tx({ ...values, source })} returning id, client_id`;
  await insertSteps(tx, row.id as string, row.client_id as string, steps);
  return row.id as string;
}

async function insertSteps(tx: Tx, campaignId: string, clientId: string, steps: Step[]) {
  for (const [i, s] of steps.entries()) {
    const [step] = await tx`
      insert into public.campaign_steps (campaign_id, client_id, position, day_offset, channel, content_mode, condition, linkedin_action)
      values (${campaignId}, ${clientId}, ${i + 1}, ${s.day_offset}, ${s.channel}, ${s.content_mode}, ${s.condition},
              ${s.linkedin_action ?? null})
      returning id`;
    for (const v of s.variants) {
      await tx`
        insert into public.step_variants (step_id, client_id, label, subject_template, body_template, weight)
        values (${step.id}, ${clientId}, ${v.label}, ${v.subject_template ?? null}, ${v.body_template}, ${v.weight})`;
    }
  }
}

/** Replaces the sequence. A change to an approved campaign sends it back for approval (trigger). */
export async function replaceSteps(tx: Tx, campaignId: string, steps: Step[]) {
  const [c] = await tx`select client_id from public.campaigns where id = ${campaignId} for update`;
  if (!c) return false;
  await tx`delete from public.campaign_steps where campaign_id = ${campaignId}`;
  await insertSteps(tx, campaignId, c.client_id as string, steps);
  return true;
}

export async function updateCampaign(tx: Tx, id: string, values: Record<string, unknown>) {
  const [row] = await tx`update public.campaigns set ${tx(values)} where id = ${id} returning id`;
  return row?.id as string | undefined;
}

export async function campaignAction(tx: Tx, id: string, action: "submit" | "approve" | "pause" | "resume", reason?: string) {
  if (action === "pause") await tx`select public.campaign_pause(${id}, ${reason ?? null})`;
  else if (action === "submit") await tx`select public.campaign_submit(${id})`;
  else if (action === "approve") await tx`select public.campaign_approve(${id})`;
  else await tx`select public.campaign_resume(${id})`;
}

export async function setEmergencyPause(tx: Tx, clientId: string, paused: boolean, reason: string | null) {
  const [row] = await tx`
    select (c).id, (c).emergency_paused, (c).emergency_paused_at, (c).emergency_pause_reason
    from (select public.set_emergency_pause(${clientId}, ${paused}, ${reason}) as c) x`;
  return row;
}

// ---------------------------------------------------------------------------------------------
// Senders
// ---------------------------------------------------------------------------------------------

const SENDER_SELECT = (tx: Tx) => tx`
  select s.id, s.client_id, s.channel, s.provider, s.address, s.display_name, s.provider_account_id, s.daily_cap,
         s.weekly_cap, s.warmup_started_on::text as warmup_started_on, s.warmup_start_cap, s.warmup_daily_increase,
         s.sender_id_registered, s.active, s.created_at,
         private.sender_daily_cap(s.daily_cap, s.warmup_started_on, s.warmup_start_cap, s.warmup_daily_increase,
                                  (now() at time zone c.timezone)::date) as today_cap
  from public.senders s join public.clients c on c.id = s.client_id`;

export function listSenders(tx: Tx, clientId?: string) {
  return tx`${SENDER_SELECT(tx)} ${clientId ? tx`where s.client_id = ${clientId}` : tx``} order by s.channel, s.address`;
}

export async function getSender(tx: Tx, id: string) {
  const [row] = await tx`${SENDER_SELECT(tx)} where s.id = ${id}`;
  return row;
}

export async function createSender(tx: Tx, values: Record<string, unknown>) {
  const defaults: Record<string, number> = { email: 30, sms: 200, voice: 100, linkedin: 20, mail: 500 };
  const channel = values.channel as string;
  const row: Record<string, unknown> = {
    ...values,
    daily_cap: values.daily_cap ?? defaults[channel],
    // LinkedIn: 100 invitations a week unless set (product.md §6.4)
    weekly_cap: values.weekly_cap ?? (channel === "linkedin" ? 100 : null),
  };
  const [created] = await tx`insert into public.senders ${tx(row as Record<string, never>)} returning id`;
  return getSender(tx, created.id as string);
}

export async function updateSender(tx: Tx, id: string, values: Record<string, unknown>) {
  const [row] = await tx`update public.senders set ${tx(values)} where id = ${id} returning id`;
  return row ? getSender(tx, id) : undefined;
}

/** Sets the campaign's sender pool (senders of the same client; one campaign per sender). */
export async function setSenderPool(tx: Tx, campaignId: string, senderIds: string[]) {
  const [c] = await tx`select client_id from public.campaigns where id = ${campaignId}`;
  if (!c) return false;
  await tx`delete from public.campaign_senders where campaign_id = ${campaignId}`;
  if (senderIds.length > 0) {
    await tx`
      insert into public.campaign_senders (campaign_id, sender_id, client_id)
      select ${campaignId}, unnest(${senderIds}::uuid[]), ${c.client_id}`;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Capacity planner (product.md §6): the campaign's real daily capacity is the lowest of its caps
// ---------------------------------------------------------------------------------------------

export async function campaignCapacity(tx: Tx, campaignId: string) {
  const [c] = await tx`
    select cp.id, cp.daily_new_leads, cl.monthly_lead_quota, cl.timezone,
           coalesce((select sp.first_touches from public.client_spend sp
                     where sp.client_id = cp.client_id and sp.month = date_trunc('month', now())::date), 0) as touched,
           (date_trunc('month', now() at time zone cl.timezone) + interval '1 month')::date
             - (now() at time zone cl.timezone)::date as days_left
    from public.campaigns cp join public.clients cl on cl.id = cp.client_id
    where cp.id = ${campaignId}`;
  if (!c) return undefined;
  // per channel: today's sender capacity (warm-up applied) over the sends each new lead needs there
  const channels = await tx`
    select st.channel, count(*)::int as steps,
           count(*) filter (where st.linkedin_action = 'invitation')::int as invitations,
           coalesce((select sum(private.sender_daily_cap(s.daily_cap, s.warmup_started_on, s.warmup_start_cap,
                                                         s.warmup_daily_increase, (now() at time zone ${c.timezone})::date))
                     from public.campaign_senders cs join public.senders s on s.id = cs.sender_id and s.active
                     where cs.campaign_id = ${campaignId} and s.channel = st.channel), 0)::int as sender_cap,
           coalesce((select sum(s.weekly_cap) from public.campaign_senders cs join public.senders s on s.id = cs.sender_id and s.active
                     where cs.campaign_id = ${campaignId} and s.channel = 'linkedin'), 0)::int as weekly_invites,
           count(*) filter (where exists (select 1 from public.campaign_senders cs join public.senders s on s.id = cs.sender_id
                                          where cs.campaign_id = ${campaignId} and s.channel = st.channel and s.active))::int as with_sender
    from public.campaign_steps st where st.campaign_id = ${campaignId}
    group by st.channel order by st.channel`;
  const caps: Array<{ name: string; daily_leads: number; detail: string }> = [
    { name: "campaign daily new leads", daily_leads: Number(c.daily_new_leads), detail: "campaigns.daily_new_leads" },
  ];
  const remaining = Math.max(0, Number(c.monthly_lead_quota) - Number(c.touched));
  const daysLeft = Math.max(1, Number(c.days_left));
  caps.push({
    name: "client monthly lead quota",
    daily_leads: Math.floor(remaining / daysLeft),
    detail: `${remaining} of ${c.monthly_lead_quota} leads left this month over ${daysLeft} days`,
  });
  for (const ch of channels) {
    caps.push({
      name: `${ch.channel} senders`,
      daily_leads: Math.floor(Number(ch.sender_cap) / Math.max(1, Number(ch.steps))),
      detail: Number(ch.with_sender) === 0
        ? `no active ${ch.channel} sender in the pool`
        : `${ch.sender_cap} sends a day today (warm-up applied) for ${ch.steps} ${ch.channel} step(s) per lead`,
    });
    if (ch.channel === "linkedin" && Number(ch.invitations) > 0) {
      caps.push({
        name: "linkedin weekly invitations",
        daily_leads: Math.floor(Number(ch.weekly_invites) / 7 / Number(ch.invitations)),
        detail: `${ch.weekly_invites} invitations a week across the pool`,
      });
    }
  }
  const binding = caps.reduce((min, cap) => (cap.daily_leads < min.daily_leads ? cap : min), caps[0]);
  return { campaign_id: campaignId, daily_capacity: binding.daily_leads, binding: binding.name, caps };
}

// ---------------------------------------------------------------------------------------------
// Approval queue (co-pilot and manual modes)
// ---------------------------------------------------------------------------------------------

export function listApprovals(tx: Tx, p: { clientId?: string; campaignId?: string; limit: number }) {
  return tx`
    select r.id, r.client_id, r.campaign_id, r.lead_id, r.channel, r.position, r.due_at, r.approval_expires_at,
           r.subject, r.body, r.content_source,
           nullif(concat_ws(' ', l.first_name, l.last_name), '') as lead_name, l.company_name, a.als_tier as tier
    from public.step_runs r
    join public.lead_pool l on l.id = r.lead_id
    join public.lead_assignments a on a.id = r.assignment_id
    where r.status = 'awaiting_approval' and r.approval_expires_at > now()
      ${p.clientId ? tx`and r.client_id = ${p.clientId}` : tx``}
      ${p.campaignId ? tx`and r.campaign_id = ${p.campaignId}` : tx``}
    order by r.approval_expires_at, r.id
    limit ${p.limit}`;
}

export async function decideApproval(tx: Tx, id: string, approve: boolean, subject?: string, body?: string) {
  const [row] = await tx`
    select (r).id, (r).status, (r).last_refusal
    from (select public.decide_step_run(${id}, ${approve}, ${subject ?? null}, ${body ?? null}) as r) x`;
  return row;
}

export async function refusalSummary(tx: Tx, campaignId: string) {
  return tx`
    select g.reason, g.outcome, count(*)::int as count, max(g.decided_at) as last_at
    from public.gate_refusals g join public.step_runs r on r.id = g.step_run_id
    where r.campaign_id = ${campaignId}
    group by g.reason, g.outcome order by count desc`;
}
