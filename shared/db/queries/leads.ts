// Queries behind the leads function. Each runs in the caller's RLS transaction: a client user
// sees a pool lead only through an assignment to their client.
import type { Tx } from "../client.ts";
import type { Cursor } from "../../http/pagination.ts";

const LEAD = ["id", "email", "email_status", "first_name", "last_name", "title", "company_name",
  "company_domain", "linkedin_url", "phone", "country", "state", "city", "timezone", "status",
  "als_score", "als_tier", "created_at", "updated_at"];

function leadColumns(tx: Tx, alias: string) {
  return tx.unsafe(LEAD.map((c) => `${alias}.${c}`).join(", "));
}

const ASSIGNMENT_JSON = `json_build_object('id', a.id, 'client_id', a.client_id, 'campaign_id', a.campaign_id,
  'status', a.status, 'status_changed_at', a.status_changed_at, 'ended_at', a.ended_at, 'created_at', a.created_at)`;

export interface ListLeadsParams {
  limit: number;
  cursor: Cursor | null;
  status?: string;
  clientId?: string;
  campaignId?: string;
}

/** The caller's assigned leads, newest assignment first (keyset on the assignment). */
export function listAssignedLeads(tx: Tx, p: ListLeadsParams) {
  return tx`
    select ${leadColumns(tx, "l")}, ${tx.unsafe(ASSIGNMENT_JSON)} as assignment,
           a.created_at as page_created_at, a.id as page_id
    from public.lead_assignments a
    join public.lead_pool l on l.id = a.lead_id
    where true
      ${p.status ? tx`and a.status = ${p.status}` : tx``}
      ${p.clientId ? tx`and a.client_id = ${p.clientId}` : tx``}
      ${p.campaignId ? tx`and a.campaign_id = ${p.campaignId}` : tx``}
      ${p.cursor ? tx`and (a.created_at, a.id) < (${p.cursor.createdAt}::timestamptz, ${p.cursor.id}::uuid)` : tx``}
    order by a.created_at desc, a.id desc
    limit ${p.limit + 1}`;
}

/** One lead with the caller's active (else latest) assignment; undefined when not visible. */
export async function getLead(tx: Tx, id: string) {
  const [row] = await tx`
    select ${leadColumns(tx, "l")},
           (select ${tx.unsafe(ASSIGNMENT_JSON)} from public.lead_assignments a
            where a.lead_id = l.id
            order by (a.ended_at is null) desc, a.created_at desc limit 1) as assignment
    from public.lead_pool l where l.id = ${id}`;
  return row;
}

/** Contact fields only; RLS lets writers of an active assignment (and admins) through. */
export async function updateLead(tx: Tx, id: string, values: Record<string, unknown>) {
  const [row] = await tx`update public.lead_pool set ${tx(values)} where id = ${id} returning id`;
  return row;
}

/** The caller's active assignment of a lead, optionally for one client. */
export async function activeAssignment(tx: Tx, leadId: string, clientId?: string) {
  const [row] = await tx`
    select id, client_id, status from public.lead_assignments
    where lead_id = ${leadId} and ended_at is null
      ${clientId ? tx`and client_id = ${clientId}` : tx``}
    limit 1`;
  return row as { id: string; client_id: string; status: string } | undefined;
}

/** Moves an assignment; the database trigger rejects an illegal transition (AOS01). */
export async function setAssignmentStatus(tx: Tx, assignmentId: string, status: string) {
  const [row] = await tx`update public.lead_assignments set status = ${status} where id = ${assignmentId} returning id`;
  return row;
}

export async function createManualLead(tx: Tx, clientId: string, campaignId: string | null, lead: Record<string, unknown>) {
  const [row] = await tx`select lead_id, assignment_id, created from public.create_manual_lead(${clientId}, ${campaignId}, ${tx.json(lead as never)})`;
  return row as { lead_id: string; assignment_id: string; created: boolean };
}

export interface PoolParams {
  limit: number;
  cursor: Cursor | null;
  status?: string;
  tier?: string;
  q?: string;
}

/** The whole pool, for admins (RLS shows non-admins only their own leads anyway). */
export function listPool(tx: Tx, p: PoolParams) {
  const like = p.q ? `%${p.q.replace(/[\\%_]/g, (m) => `\\${m}`)}%` : undefined;
  return tx`
    select ${leadColumns(tx, "l")},
           (select a.client_id from public.lead_assignments a where a.lead_id = l.id and a.ended_at is null) as active_client_id
    from public.lead_pool l
    where true
      ${p.status ? tx`and l.status = ${p.status}` : tx``}
      ${p.tier ? tx`and l.als_tier = ${p.tier}` : tx``}
      ${like ? tx`and (l.email_normalized like lower(${like}) or l.company_name ilike ${like} or (l.first_name || ' ' || l.last_name) ilike ${like})` : tx``}
      ${p.cursor ? tx`and (l.created_at, l.id) < (${p.cursor.createdAt}::timestamptz, ${p.cursor.id}::uuid)` : tx``}
    order by l.created_at desc, l.id desc
    limit ${p.limit + 1}`;
}
