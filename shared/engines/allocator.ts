// The allocator (pool_assignment flow): gives scored pool leads to active campaigns by ICP fit,
// within each campaign's daily capacity for new leads and its client's monthly quota, fairly
// between clients that want the same leads, and writes why each lead it did not place was left.
// Exclusivity and the cool-off are the database's rules; the allocator avoids proposing what the
// database would refuse, so one bulk insert never fails on a single lead.
import type { Tx } from "../db/client.ts";

export interface AllocationResult {
  considered: number;
  assigned: number;
  assignmentIds: string[];
  unassigned: Record<string, number>;
}

const TIER_RANK = `case l.als_tier when 'hot' then 4 when 'warm' then 3 when 'cool' then 2 when 'cold' then 1 else 0 end`;
const MIN_RANK = `case s.min_allocation_tier when 'hot' then 4 when 'warm' then 3 when 'cool' then 2 else 1 end`;

/**
 * Campaigns that may take leads now, with their ICP and remaining room:
 * room = min(daily_new_leads − started today, client's monthly quota − assigned this month).
 */
const OPEN_CAMPAIGNS = `
  open_campaigns as (
    select c.id as campaign_id, c.client_id, cl.competitor_domains,
           coalesce(c.icp_id, (select i.id from public.icps i where i.client_id = c.client_id and i.approved_at is not null
                               order by i.approved_at desc limit 1)) as icp_id,
           greatest(0, c.daily_new_leads - (select count(*) from public.lead_assignments a
                         where a.campaign_id = c.id and a.created_at >= date_trunc('day', now()))) as campaign_room,
           greatest(0, cl.monthly_lead_quota - (select count(*) from public.lead_assignments a
                         where a.client_id = c.client_id and a.created_at >= date_trunc('month', now()))) as client_room
    from public.campaigns c
    join public.clients cl on cl.id = c.client_id
    where c.status = 'active' and cl.status in ('trialing', 'active') and not cl.emergency_paused
  )`;

/** ICP fit of lead l (with company co) for campaign oc joined to its ICP i: country, industry, size. */
const FITS = `
  (cardinality(i.countries) = 0 or l.country = any(i.countries))
  and (cardinality(i.industries) = 0 or lower(co.industry) = any(select lower(x) from unnest(i.industries || i.adjacent_industries) x))
  and (co.employee_count is null or i.employee_min is null or co.employee_count >= i.employee_min)
  and (co.employee_count is null or i.employee_max is null or co.employee_count <= i.employee_max)
  and (l.company_domain is null or not (l.company_domain = any(oc.competitor_domains)))
  and not exists (select 1 from public.suppressions su where su.client_id = oc.client_id and (
        (su.kind = 'email' and su.value = l.email_normalized) or (su.kind = 'domain' and su.value = l.company_domain)
        or (su.kind = 'phone' and su.value = l.phone_e164) or (su.kind = 'linkedin' and su.value = l.linkedin_key)))`;

/** Another client's assignment of the lead ended inside the cool-off. */
const IN_COOLOFF = `
  exists (select 1 from public.lead_assignments x
          where x.lead_id = l.id and x.client_id <> oc.client_id
            and x.ended_at > now() - make_interval(days => s.cooloff_days))`;

/**
 * Claims up to `limit` scored, unplaced leads (SKIP LOCKED: concurrent ticks take disjoint
 * leads; an advisory lock serialises the capacity arithmetic) and places them.
 * Returns null when another allocator holds the lock.
 */
export async function allocate(
  tx: Tx,
  opts: { limit: number; leadIds?: string[] },
): Promise<AllocationResult | null> {
  const [{ locked }] = await tx`select pg_try_advisory_xact_lock(hashtext('agency-os:allocator')) as locked`;
  if (!locked) return null;

  const claimed = await tx`
    select l.id from public.lead_pool l
    where l.status = 'scored'
      and (l.allocation_checked_at is null or l.allocation_checked_at < now() - interval '1 day')
      and not exists (select 1 from public.lead_assignments a where a.lead_id = l.id and a.ended_at is null)
      ${opts.leadIds ? tx`and l.id = any(${opts.leadIds}::uuid[])` : tx``}
    order by l.als_score desc nulls last, l.id
    limit ${opts.limit}
    for update skip locked`;
  const ids = claimed.map((r) => r.id as string);
  if (ids.length === 0) return { considered: 0, assigned: 0, assignmentIds: [], unassigned: {} };

  // Every (lead, campaign) pair the database would accept, best leads first.
  const pairs = await tx.unsafe(`
    with s as (select cooloff_days, min_allocation_tier from public.agency_settings where id),
    ${OPEN_CAMPAIGNS}
    select l.id as lead_id, oc.campaign_id, oc.client_id, oc.campaign_room::int, oc.client_room::int
    from public.lead_pool l
    cross join s
    left join public.companies co on co.domain = l.company_domain
    join open_campaigns oc on oc.campaign_room > 0 and oc.client_room > 0
    join public.icps i on i.id = oc.icp_id
    where l.id = any($1::uuid[])
      and l.als_gate is null and ${TIER_RANK} >= ${MIN_RANK}
      and ${FITS}
      and not ${IN_COOLOFF}
    order by l.als_score desc, l.id, oc.campaign_id`, [ids]);

  const chosen = draft(pairs as unknown as Pair[], Math.floor(Date.now() / 60_000));
  const inserted = chosen.length === 0 ? [] : await tx`
    insert into public.lead_assignments (lead_id, client_id, campaign_id)
    select * from unnest(${chosen.map((c) => c.lead_id)}::uuid[], ${chosen.map((c) => c.client_id)}::uuid[],
                         ${chosen.map((c) => c.campaign_id)}::uuid[])
    returning id`;
  const assignmentIds = inserted.map((r) => r.id as string);

  // Why each claimed lead that is still unplaced was left.
  const reasons = await tx.unsafe(`
    with s as (select cooloff_days, min_allocation_tier from public.agency_settings where id),
    ${OPEN_CAMPAIGNS},
    judged as (
      select l.id,
        case
          when exists (select 1 from public.lead_assignments a where a.lead_id = l.id and a.ended_at is null) then null
          when l.als_gate is not null then 'gated:' || l.als_gate
          when ${TIER_RANK} < ${MIN_RANK} then 'below_min_tier'
          when not exists (select 1 from open_campaigns oc join public.icps i on i.id = oc.icp_id where ${FITS}) then 'no_matching_campaign'
          when not exists (select 1 from open_campaigns oc join public.icps i on i.id = oc.icp_id where ${FITS} and not ${IN_COOLOFF}) then 'in_cooloff'
          else 'capacity_full'
        end as reason
      from public.lead_pool l
      cross join s
      left join public.companies co on co.domain = l.company_domain
      where l.id = any($1::uuid[])
    )
    update public.lead_pool l set unassigned_reason = j.reason, allocation_checked_at = now()
    from judged j where l.id = j.id
    returning j.reason`, [ids]);
  const unassigned: Record<string, number> = {};
  for (const r of reasons) if (r.reason) unassigned[r.reason as string] = (unassigned[r.reason as string] ?? 0) + 1;

  return { considered: ids.length, assigned: assignmentIds.length, assignmentIds, unassigned };
}

interface Pair {
  lead_id: string;
  campaign_id: string;
  client_id: string;
  campaign_room: number;
  client_room: number;
}

/**
 * Walks the leads best-first and gives each to the eligible campaign that is least full
 * relative to its room (ties rotate with `seed`), so competing clients alternate over the best
 * leads instead of the first one taking them all; stops each campaign and client at its room.
 */
export function draft(pairs: Pair[], seed: number): Array<Pick<Pair, "lead_id" | "campaign_id" | "client_id">> {
  const taken = new Map<string, number>(); // campaign → leads given
  const clientTaken = new Map<string, number>();
  const order = [...new Set(pairs.map((p) => p.campaign_id))].sort();
  const rotation = new Map(order.map((id, i) => [id, (i + seed) % Math.max(order.length, 1)]));
  const out: Array<Pick<Pair, "lead_id" | "campaign_id" | "client_id">> = [];
  for (let i = 0; i < pairs.length;) {
    const lead = pairs[i].lead_id;
    let best: Pair | undefined;
    let bestFill = Infinity;
    for (; i < pairs.length && pairs[i].lead_id === lead; i++) {
      const p = pairs[i];
      const given = taken.get(p.campaign_id) ?? 0;
      if (given >= p.campaign_room || (clientTaken.get(p.client_id) ?? 0) >= p.client_room) continue;
      const fill = given / p.campaign_room;
      if (fill < bestFill || (fill === bestFill && rotation.get(p.campaign_id)! < rotation.get(best!.campaign_id)!)) {
        best = p;
        bestFill = fill;
      }
    }
    if (!best) continue;
    taken.set(best.campaign_id, (taken.get(best.campaign_id) ?? 0) + 1);
    clientTaken.set(best.client_id, (clientTaken.get(best.client_id) ?? 0) + 1);
    out.push({ lead_id: best.lead_id, campaign_id: best.campaign_id, client_id: best.client_id });
  }
  return out;
}
