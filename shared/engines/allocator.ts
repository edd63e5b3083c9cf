// The allocator (pool_assignment flow): gives scored pool leads to active campaigns by ICP fit,
// within each campaign's daily capacity for new leads and its client's monthly quota, fairly
// between clients that want the same leads, and writes why each lead it did not place was left.
// Exclusivity and the cool-off are the database's rules; the allocator avoids proposing what the
// database would refuse, so one bulk insert never fails on a single lead. The SQL finds every
// (lead, campaign) fit set-based; the split between competing campaigns (`draft`) is in memory.
import type { Tx } from "../db/client.ts";
import { matching } from "./scorer.ts";

export interface AllocationResult {
  considered: number;
  assigned: number;
  assignmentIds: string[];
  unassigned: Record<string, number>;
}

/**
 * Campaigns that may take leads now, with their ICP's fit criteria and remaining room:
 * room = min(daily_new_leads − started today, client's monthly quota − assigned this month).
 */
const OPEN_CAMPAIGNS = `
  open_campaigns as materialized (
    select c.id as campaign_id, c.client_id, cl.competitor_domains,
           i.countries, i.employee_min, i.employee_max,
           ${matching.normTerms("i.industries || i.adjacent_industries")} as fit_industries,
           greatest(0, c.daily_new_leads - (select count(*) from public.lead_assignments a
                         where a.campaign_id = c.id and a.created_at >= date_trunc('day', now()))) as campaign_room,
           greatest(0, cl.monthly_lead_quota - (select count(*) from public.lead_assignments a
                         where a.client_id = c.client_id and a.created_at >= date_trunc('month', now()))) as client_room
    from public.campaigns c
    join public.clients cl on cl.id = c.client_id
    join public.icps i on i.id = coalesce(c.icp_id, (select i2.id from public.icps i2
                                 where i2.client_id = c.client_id and i2.approved_at is not null
                                 order by i2.approved_at desc limit 1))
    where c.status = 'active' and cl.status in ('trialing', 'active') and not cl.emergency_paused
  )`;

/**
 * The claimed leads with what fitting needs, those whose cool-off still runs, and the clients
 * that suppressed them: each computed once per batch, then joined to every campaign.
 */
const LEAD_FACTS = `
  leads as (
    select l.id, l.als_score, l.country, l.company_domain,
           ${matching.norm("coalesce(nullif(btrim(co.industry), ''), l.industry)")} as industry,
           coalesce(co.employee_count, l.employee_count) as employee_count,
           l.email_normalized, l.phone_e164, l.linkedin_key
    from public.lead_pool l left join public.companies co on co.domain = l.company_domain
    where l.id = any($1::uuid[])
  ),
  recent_ends as (
    select distinct x.lead_id
    from public.lead_assignments x
    where x.lead_id = any($1::uuid[])
      and x.ended_at > now() - make_interval(days => (select cooloff_days from public.agency_settings where id))
  ),
  client_suppressed as (
    select su.client_id, l.id as lead_id from leads l join public.suppressions su on su.kind = 'email' and su.value = l.email_normalized where su.client_id is not null
    union select su.client_id, l.id from leads l join public.suppressions su on su.kind = 'domain' and su.value = l.company_domain where su.client_id is not null
    union select su.client_id, l.id from leads l join public.suppressions su on su.kind = 'phone' and su.value = l.phone_e164 where su.client_id is not null
    union select su.client_id, l.id from leads l join public.suppressions su on su.kind = 'linkedin' and su.value = l.linkedin_key where su.client_id is not null
  )`;

/**
 * ICP fit of lead l for open campaign oc: country, industry (the ICP's or an adjacent one, matched
 * as the scorer matches), size inside the range, not a competitor, not suppressed by the client.
 */
const FITS = `
  (cardinality(oc.countries) = 0 or l.country = any(oc.countries))
  and (cardinality(oc.fit_industries) = 0 or ${matching.anyTermIn("l.industry", "oc.fit_industries")})
  and (l.employee_count is null or oc.employee_min is null or l.employee_count >= oc.employee_min)
  and (l.employee_count is null or oc.employee_max is null or l.employee_count <= oc.employee_max)
  and (l.company_domain is null or not (l.company_domain = any(oc.competitor_domains)))
  and not exists (select 1 from client_suppressed cs where cs.client_id = oc.client_id and cs.lead_id = l.id)`;

/**
 * An assignment of the lead ended inside the cool-off — any client's, the campaign's own client
 * included. The database forbids only other clients (AOS03: a client user may take a person back
 * on by hand), but automatic placement must not hand a client straight back the person whose
 * sequence just ended (completed, not interested, lost…): they would get the whole sequence again.
 */
const IN_COOLOFF = `(re.lead_id is not null)`;

const TIERS = ["dead", "cold", "cool", "warm", "hot"];

/**
 * Leads one allocation step considers: the fit query and the draft for 20,000 leads take about a
 * second of database time and a few MB in memory, well inside one Edge Function invocation.
 */
export const ALLOCATION_BATCH = 20_000;

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

  const [settings] = await tx`select min_allocation_tier, allocation_reopened_at from public.agency_settings where id`;
  // the fit query sorts leads × campaigns; keep that sort in memory
  await tx`set local work_mem = '64MB'`;
  const claimed = await tx`
    select l.id, l.als_gate, l.als_tier from public.lead_pool l
    left join public.lead_allocation la on la.lead_id = l.id
    where l.status = 'scored'
      and (la.checked_at is null or la.checked_at < now() - interval '1 day'
           -- a campaign opened or grew since this lead was turned away for want of room
           -- (trigger campaigns_reopen_leads_waiting_for_room, …002000)
           or (la.reason in ('no_matching_campaign', 'capacity_full') and la.checked_at < ${settings.allocation_reopened_at ?? null}::timestamptz))
      and not exists (select 1 from public.lead_assignments a where a.lead_id = l.id and a.ended_at is null)
      ${opts.leadIds ? tx`and l.id = any(${opts.leadIds}::uuid[])` : tx``}
    order by l.als_score desc nulls last, l.id
    limit ${opts.limit}
    for update of l skip locked`;
  if (claimed.length === 0) return { considered: 0, assigned: 0, assignmentIds: [], unassigned: {} };

  // A lead's own gate or tier rules it out for every campaign; the rest are matched to campaigns.
  const reasonOf = new Map<string, string | null>();
  const minRank = TIERS.indexOf(settings.min_allocation_tier);
  const open: string[] = [];
  for (const l of claimed) {
    if (l.als_gate) reasonOf.set(l.id, `gated:${l.als_gate}`);
    else if (TIERS.indexOf(l.als_tier ?? "dead") < minRank) reasonOf.set(l.id, "below_min_tier");
    else open.push(l.id);
  }

  // Every (lead, campaign) ICP fit, best leads first, flagged when the cool-off forbids it.
  const fits = open.length === 0 ? [] : await tx.unsafe(`
    with ${OPEN_CAMPAIGNS}, ${LEAD_FACTS}
    select l.id as lead_id, oc.campaign_id, oc.client_id, oc.campaign_room::int, oc.client_room::int,
           ${IN_COOLOFF} as cooling
    from leads l
    join open_campaigns oc on ${FITS}
    left join recent_ends re on re.lead_id = l.id
    order by l.als_score desc, l.id, oc.campaign_id`, [open]) as unknown as Array<Pair & { cooling: boolean }>;

  const chosen = draft(fits.filter((f) => !f.cooling), Math.floor(Date.now() / 60_000));
  const inserted = chosen.length === 0 ? [] : await tx`
    insert into public.lead_assignments (lead_id, client_id, campaign_id)
    select * from unnest(${chosen.map((c) => c.lead_id)}::uuid[], ${chosen.map((c) => c.client_id)}::uuid[],
                         ${chosen.map((c) => c.campaign_id)}::uuid[])
    returning id`;
  const assignmentIds = inserted.map((r) => r.id as string);

  // Why each lead left unplaced was left: no campaign fits it, every fit is in its cool-off, or
  // the campaigns it fits are full.
  const placed = new Set(chosen.map((c) => c.lead_id));
  const fitsOf = new Map<string, boolean[]>();
  for (const f of fits) fitsOf.set(f.lead_id, [...(fitsOf.get(f.lead_id) ?? []), f.cooling]);
  for (const id of open) {
    if (placed.has(id)) reasonOf.set(id, null);
    else if (!fitsOf.has(id)) reasonOf.set(id, "no_matching_campaign");
    else if (fitsOf.get(id)!.every((cooling) => cooling)) reasonOf.set(id, "in_cooloff");
    else reasonOf.set(id, "capacity_full");
  }
  // Placed leads need no verdict row: their active assignment says it, and keeps them unclaimed.
  const left = [...reasonOf].filter(([, reason]) => reason !== null);
  await tx`
    insert into public.lead_allocation (lead_id, checked_at, reason)
    select id, now(), reason from unnest(${left.map(([id]) => id)}::uuid[], ${left.map(([, r]) => r)}::text[]) as r (id, reason)
    on conflict (lead_id) do update set checked_at = excluded.checked_at, reason = excluded.reason`;
  if (placed.size > 0) await tx`delete from public.lead_allocation where lead_id = any(${[...placed]}::uuid[])`;

  const unassigned: Record<string, number> = {};
  for (const reason of reasonOf.values()) if (reason) unassigned[reason] = (unassigned[reason] ?? 0) + 1;
  return { considered: claimed.length, assigned: assignmentIds.length, assignmentIds, unassigned };
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
