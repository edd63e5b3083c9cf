// Washes the Australian numbers the send gate found unwashed or stale (dncr_wash_requests) against
// the Do Not Call Register, and stores each result with its time (valid 30 days, compliance D1).
// The ClientReferenceId is persisted BEFORE the call: a wash that timed out is recovered with
// getWashResult under the same reference on a later tick, never resubmitted (that charges twice).
import type { Sql } from "../db/client.ts";
import { type DncrClient, DncrWashError, type DncrWashResult } from "../integrations/dncr.ts";

export interface WashTickResult {
  washed: number;
  recovered: number;
  pending: number;
  failed: number;
}

async function store(sql: Sql, results: DncrWashResult[], ref: string): Promise<void> {
  if (results.length === 0) return;
  await sql`
    insert into public.dncr_washes (phone_e164, result, washed_at, client_reference_id)
    select unnest(${results.map((r) => r.phoneE164)}::text[]), unnest(${results.map((r) => r.result)}::text[]), now(), ${ref}
    on conflict (phone_e164) do update set result = excluded.result, washed_at = excluded.washed_at,
      client_reference_id = excluded.client_reference_id`;
  await sql`delete from public.dncr_wash_requests where phone_e164 = any(${results.map((r) => r.phoneE164)}::text[])`;
}

/** One bounded wash: first recover washes left pending, then wash new requests under a fresh reference. */
export async function washRequestedNumbers(sql: Sql, client: DncrClient, limit = 200): Promise<WashTickResult> {
  const out: WashTickResult = { washed: 0, recovered: 0, pending: 0, failed: 0 };
  // 1. washes that timed out earlier: ask for their result under the same reference
  const pendingRefs = await sql`
    select distinct client_reference_id from public.dncr_wash_requests
    where client_reference_id is not null and requested_at < now() - interval '30 seconds'
    limit 5`;
  for (const { client_reference_id: ref } of pendingRefs) {
    const outcome = await client.getWashResult(ref as string).catch(() => null);
    if (outcome?.state === "complete") {
      await store(sql, outcome.results, ref as string);
      out.recovered += outcome.results.length;
    } else if (outcome?.state === "unknown_reference") {
      // ACMA never received it: it is safe to wash these numbers under a new reference
      await sql`update public.dncr_wash_requests set client_reference_id = null where client_reference_id = ${ref}`;
    } else {
      out.pending += 1;
    }
  }
  // 2. new requests: claim them by writing the reference first
  const ref = `aos-${crypto.randomUUID()}`;
  const claimed = await sql`
    update public.dncr_wash_requests set client_reference_id = ${ref}, attempts = attempts + 1, requested_at = now()
    where phone_e164 in (select phone_e164 from public.dncr_wash_requests
                         where client_reference_id is null order by requested_at limit ${limit} for update skip locked)
    returning phone_e164`;
  if (claimed.length === 0) return out;
  const numbers = claimed.map((r) => r.phone_e164 as string);
  try {
    const results = await client.washNumbers(numbers, ref);
    await store(sql, results, ref);
    out.washed += results.length;
  } catch (err) {
    if (err instanceof DncrWashError) {
      await store(sql, err.completed, ref);
      out.washed += err.completed.length;
      if (!err.pending) {
        // nothing was washed under this reference: release the rest for a later tick
        await sql`update public.dncr_wash_requests set client_reference_id = null, last_error = ${err.message}
                  where client_reference_id = ${ref}`;
        out.failed += numbers.length - err.completed.length;
      } else {
        out.pending += 1;
      }
    } else {
      await sql`update public.dncr_wash_requests set client_reference_id = null,
                last_error = ${err instanceof Error ? err.message : String(err)} where client_reference_id = ${ref}`;
      out.failed += numbers.length;
    }
  }
  return out;
}
