// Queries behind the customers function. Each runs in the caller's RLS transaction (tx).
import type { Sql, Tx } from "../client.ts";
import type { Cursor } from "../../http/pagination.ts";

const CLIENT_COLUMNS = [
  "id", "slug", "name", "plan", "monthly_lead_quota", "monthly_enrichment_credits",
  "monthly_llm_budget_cents", "monthly_provider_budget_cents", "status", "emergency_paused",
  "emergency_paused_at", "emergency_pause_reason", "permission_mode", "timezone",
  "competitor_domains", "created_at", "updated_at",
];

export function listClients(tx: Tx, p: { limit: number; cursor: Cursor | null; status?: string }) {
  return tx`
    select ${tx(CLIENT_COLUMNS)} from public.clients
    where true
      ${p.status ? tx`and status = ${p.status}` : tx``}
      ${p.cursor ? tx`and (created_at, id) < (${p.cursor.createdAt}::timestamptz, ${p.cursor.id}::uuid)` : tx``}
    order by created_at desc, id desc
    limit ${p.limit + 1}`;
}

export async function getClient(tx: Tx, id: string) {
  const [row] = await tx`select ${tx(CLIENT_COLUMNS)} from public.clients where id = ${id}`;
  return row;
}

export async function createClient(tx: Tx, values: Record<string, unknown>) {
  const [row] = await tx`insert into public.clients ${tx(values)} returning ${tx(CLIENT_COLUMNS)}`;
  return row;
}

export async function updateClient(tx: Tx, id: string, values: Record<string, unknown>) {
  const patch = { ...values };
  if ("emergency_paused" in patch) {
    // The pause time is derived here so it can't disagree with the flag.
    patch.emergency_paused_at = patch.emergency_paused ? new Date() : null;
    if (!patch.emergency_paused) patch.emergency_pause_reason = null;
  }
  const [row] = await tx`update public.clients set ${tx(patch)} where id = ${id} returning ${tx(CLIENT_COLUMNS)}`;
  return row;
}

export function listMembers(tx: Tx, clientId: string) {
  return tx`
    select client_id, user_id, role, created_at from public.client_members
    where client_id = ${clientId}
    order by created_at, user_id`;
}

// auth.users is not readable by the authenticated role (as on Supabase), so user lookups run as
// the service, keyed by what the caller already proved they may see.
export async function findUserIdByEmail(sql: Sql, email: string): Promise<string | undefined> {
  const [row] = await sql`select id from auth.users where lower(email) = lower(${email})`;
  return row?.id;
}

export async function emailsByUserId(sql: Sql, userIds: string[]): Promise<Map<string, string | null>> {
  if (userIds.length === 0) return new Map();
  const rows = await sql`select id, email from auth.users where id = any(${userIds}::uuid[])`;
  return new Map(rows.map((r) => [r.id as string, r.email as string | null]));
}

export async function upsertMember(tx: Tx, clientId: string, userId: string, role: string) {
  const [row] = await tx`
    insert into public.client_members (client_id, user_id, role) values (${clientId}, ${userId}, ${role})
    on conflict (client_id, user_id) do update set role = excluded.role
    returning client_id, user_id, role, created_at`;
  return row;
}

export async function updateMemberRole(tx: Tx, clientId: string, userId: string, role: string) {
  const [row] = await tx`
    update public.client_members set role = ${role}
    where client_id = ${clientId} and user_id = ${userId}
    returning client_id, user_id, role, created_at`;
  return row;
}

export async function removeMember(tx: Tx, clientId: string, userId: string): Promise<boolean> {
  const rows = await tx`delete from public.client_members where client_id = ${clientId} and user_id = ${userId} returning user_id`;
  return rows.length > 0;
}
