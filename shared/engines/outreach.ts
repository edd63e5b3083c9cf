// The outreach engine's database side: plan each new assignment's sequence, run the one send gate,
// close finished sequences, and keep the facts the gate reads (recipients' time zones, public
// holiday calendars) in place. The rules themselves live in SQL (migration 001200, the gate) so
// nothing can send around them; this module only calls them and fills their inputs.
import type { Sql, Tx } from "../db/client.ts";
import { DEFAULT_HOLIDAY_COUNTRIES, holidayRows, isHolidayCountry } from "./holidays.ts";
import { holidayRegionFor, resolveTimezone } from "./timezone.ts";

export interface GateSummary {
  /** Due step runs this call looked at. */
  claimed: number;
  /** Sends recorded (grouped into dispatch batches, one QStash message each). */
  sent: number;
  batches: number;
  /** Refusals by reason: each rescheduled, held for approval or skipped, never dropped. */
  refused: Record<string, number>;
}

export interface TickOptions {
  limit?: number;
  /** The instant the rules are evaluated at (tests and the bench pass one). */
  now?: Date;
}

/** Step runs for assignments whose campaign is active; the assignments move to queued. */
export async function planSequences(tx: Tx, opts: TickOptions = {}): Promise<number> {
  const [row] = await tx`select private.plan_step_runs(${opts.limit ?? 1000}, ${opts.now ?? new Date()}) as planned`;
  return Number(row.planned);
}

/** The gate over up to `limit` due step runs, in the caller's transaction. */
export async function runSendGate(tx: Tx, opts: TickOptions & { batchSize?: number } = {}): Promise<GateSummary> {
  const [row] = await tx`
    select private.gate_due_steps(${opts.limit ?? 1000}, ${opts.batchSize ?? 100}, ${opts.now ?? new Date()}) as summary`;
  return row.summary as GateSummary;
}

/** Assignments with nothing left to send and no reply for 3 days become completed. */
export async function completeSequences(tx: Tx, opts: TickOptions = {}): Promise<number> {
  const [row] = await tx`select private.complete_finished_sequences(${opts.limit ?? 1000}, ${opts.now ?? new Date()}) as done`;
  return Number(row.done);
}

/**
 * Resolves the time zone (and holiday region) of leads about to be planned that have none yet:
 * lead location, else phone country, else company HQ, else the client's zone (timezone.ts).
 * A guessed zone is flagged, and the gate then makes no calls or texts on it.
 */
export async function resolveLeadTimezones(tx: Tx, limit = 1000): Promise<number> {
  const rows = await tx`
    select l.id, l.country, l.state, l.city, l.phone_country, l.phone_e164, co.country as company_country,
           c.timezone as client_timezone
    from public.lead_assignments a
    join public.campaigns cp on cp.id = a.campaign_id and cp.status = 'active'
    join public.lead_pool l on l.id = a.lead_id
    join public.clients c on c.id = a.client_id
    left join public.companies co on co.domain = lower(l.company_domain)
    where a.status = 'assigned' and a.ended_at is null and l.timezone is null
    limit ${limit}
    for update of l skip locked`;
  if (rows.length === 0) return 0;
  const resolved = rows.map((r) => {
    const tz = resolveTimezone(
      { country: r.country, state: r.state, city: r.city, phone_country: r.phone_country, phone_e164: r.phone_e164 },
      { country: r.company_country },
      r.client_timezone,
    );
    return {
      id: r.id as string,
      timezone: tz.timezone,
      assumed: tz.assumed,
      region: tz.region ?? holidayRegionFor(tz.country, r.state) ?? null,
    };
  });
  await tx`
    update public.lead_pool l set timezone = r.timezone, timezone_assumed = r.assumed, region_code = r.region
    from (select unnest(${resolved.map((r) => r.id)}::uuid[]) as id,
                 unnest(${resolved.map((r) => r.timezone)}::text[]) as timezone,
                 unnest(${resolved.map((r) => r.assumed)}::boolean[]) as assumed,
                 unnest(${resolved.map((r) => r.region)}::text[]) as region) r
    where l.id = r.id`;
  return resolved.length;
}

/**
 * Loads the public holidays (date-holidays) of every country the pending steps go to, plus the
 * defaults, for this year and the next — once per (country, year). Without a calendar the gate
 * holds calls and texts to that country, so this runs before the gate on each tick.
 */
export async function ensureHolidayCalendars(sql: Sql | Tx, now = new Date()): Promise<number> {
  const year = now.getUTCFullYear();
  const years = [year, year + 1];
  const wanted = await sql`
    select distinct c.country, y.year
    from (select unnest(${[...DEFAULT_HOLIDAY_COUNTRIES]}::text[]) as country
          union select distinct country from public.step_runs where status in ('scheduled', 'approved')) c
    cross join unnest(${years}::int[]) as y (year)
    where not exists (select 1 from public.holiday_calendars h where h.country = c.country and h.year = y.year)`;
  const missing = wanted.filter((w) => isHolidayCountry(w.country as string));
  if (missing.length === 0) return 0;
  let loaded = 0;
  for (const country of new Set(missing.map((m) => m.country as string))) {
    const ys = missing.filter((m) => m.country === country).map((m) => Number(m.year));
    const rows = holidayRows([country], ys);
    await sql`
      insert into public.public_holidays (country, region, day, name)
      select * from unnest(${rows.map((r) => r.country)}::text[], ${rows.map((r) => r.region ?? "")}::text[],
                           ${rows.map((r) => r.day)}::date[], ${rows.map((r) => r.name)}::text[])
      on conflict do nothing`;
    await sql`
      insert into public.holiday_calendars (country, year)
      select ${country}, unnest(${ys}::int[])
      on conflict do nothing`;
    loaded += ys.length;
  }
  return loaded;
}
