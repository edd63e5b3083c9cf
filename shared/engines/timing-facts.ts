// The facts the send gate reads about time: each recipient's zone and holiday region (timezone.ts)
// and the public-holiday calendars (date-holidays). Kept apart from the gate's own flow because
// date-holidays carries every country's rules (about 2 MB): only the timing flow loads it.
import type { Sql, Tx } from "../db/client.ts";
import { DEFAULT_HOLIDAY_COUNTRIES, holidayRows, isHolidayCountry } from "./holidays.ts";
import { holidayRegionFor, resolveTimezone } from "./timezone.ts";

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
                 -- as text: postgres.js sends a JS boolean array as one boolean
                 unnest(${resolved.map((r) => String(r.assumed))}::text[])::boolean as assumed,
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
