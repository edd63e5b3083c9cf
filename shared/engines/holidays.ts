// Public-holiday rows for the send gate (product.md §6 rule 3, compliance.md D4). The gate is SQL;
// it reads `public_holidays(country, region, day, name)` and refuses calls and SMS on a day that is
// a holiday of the recipient's country (region null) or of the recipient's state/region. This
// module computes those rows from the maintained `date-holidays` package so nobody types dates.
//
// Decisions (what an operator would expect; the stricter reading where compliance.md is unsure):
// - Types: "public" only. date-holidays also knows "bank" (DE Silvester, NSW Bank Holiday, IE Good
//   Friday), "optional" (TAS Easter Tuesday), "school" and "observance" (Mother's Day): people work
//   on those, so they don't close the window. One exception: a *substitute day* typed "bank" is
//   kept. date-holidays types Ireland's weekend-substitute Mondays (St Patrick's, St Stephen's) and
//   the US federal Veterans Day substitute "bank", yet those are the days people actually take
//   off; skipping one more day is the stricter reading compliance.md asks for.
// - Substitute days are included: date-holidays reports them as extra entries (usually flagged
//   `substitute: true` and named "… (substitute day)"; AU New Year's Day's Monday is not flagged).
//   AU 2027: Christmas (Sat) → Mon 27 Dec, Boxing Day (Sun) → Tue 28 Dec.
// - National rows (region null) come from date-holidays' country-level list. Region rows come from
//   each state's list and hold only the days that are NOT already a national row of that country:
//   the gate checks "national OR the lead's region", so a region row adds a day, never repeats one.
//   A national day a state happens not to keep (SA/NT keep Christmas 2027 only on the Monday) still
//   blocks that state: stricter.
// - Australia's national list is compliance D4's seven (New Year's Day, Australia Day, Good Friday,
//   Easter Monday, Anzac Day, Christmas Day, Boxing Day) with their substitutes. date-holidays'
//   AU national list also has Easter Saturday and Easter Sunday: those are state-declared (WA and
//   TAS don't keep Easter Saturday), so they are demoted to the states that list them. The King's
//   Birthday is per state in date-holidays (June; WA September; QLD October) and stays a region
//   row. One-off national days (the 2022 National Day of Mourning) stay national.
// - Regions are date-holidays' first-level state codes (AU "VIC", US "TX", GB "SCT", CA "ON",
//   DE "BY", NZ "AUK"). Sub-state regions (DE-BY Augsburg, US-LA New Orleans) are not emitted: a
//   lead's location resolves to a state at most (timezone.ts `holidayRegionFor`).
// - One row per (country, region, day): two holidays on one day become one row, names joined "; ".
// - `day` is the holiday's local calendar date; a holiday date-holidays spans over several days
//   gets one row per day.

import Holidays from "date-holidays";

/** One row of `public_holidays`. */
export interface HolidayRow {
  /** ISO 3166-1 alpha-2, upper case. */
  country: string;
  /** date-holidays state code (e.g. "VIC", "TX"), or null for a national holiday. */
  region: string | null;
  /** Local calendar date, YYYY-MM-DD. */
  day: string;
  name: string;
}

/** Countries filled when the caller names none: the agency's home and its usual markets. */
export const DEFAULT_HOLIDAY_COUNTRIES: readonly string[] = ["AU", "NZ", "US", "GB", "IE", "CA", "DE", "FR", "NL", "SG"];

/** compliance.md D4: the holidays Australia treats as national (with their substitute days). */
export const AU_D4_NATIONAL_NAMES: readonly string[] = [
  "New Year's Day",
  "Australia Day",
  "Good Friday",
  "Easter Monday",
  "Anzac Day",
  "Christmas Day",
  "Boxing Day",
];

// date-holidays rules on AU's national list that D4 leaves to the states.
const AU_DEMOTED_RULES = new Set(["easter -1", "easter"]);

const DAY_MS = 86_400_000;

interface DhHoliday {
  date: string;
  start: Date;
  end: Date;
  name: string;
  type: string;
  rule: string;
  substitute?: boolean;
}

function closesTheWindow(h: DhHoliday): boolean {
  return h.type === "public" || (h.type === "bank" && h.substitute === true);
}

/** Every local calendar day a holiday covers (almost always one). */
function daysOf(h: DhHoliday): string[] {
  const first = h.date.slice(0, 10);
  // start/end are instants in the country's zone; rounding absorbs a DST hour.
  const span = Math.max(1, Math.round((h.end.getTime() - h.start.getTime()) / DAY_MS));
  const out: string[] = [];
  const base = Date.UTC(Number(first.slice(0, 4)), Number(first.slice(5, 7)) - 1, Number(first.slice(8, 10)));
  for (let i = 0; i < span; i++) out.push(new Date(base + i * DAY_MS).toISOString().slice(0, 10));
  return out;
}

/** Adds `name` to the row for `day`, joining names when two holidays share a day. */
function addName(byDay: Map<string, string[]>, day: string, name: string): void {
  const names = byDay.get(day);
  if (!names) byDay.set(day, [name]);
  else if (!names.includes(name)) names.push(name);
}

// Names come in the country's own first language (date-holidays' default): "Labor Day" in the
// US, "Tag der Deutschen Einheit" in DE.
function holidaysOf(country: string, state: string | null, years: readonly number[]): DhHoliday[] {
  const hd = state ? new Holidays(country, state) : new Holidays(country);
  return years.flatMap((year) => hd.getHolidays(year) as DhHoliday[]);
}

function nationalDays(country: string, years: readonly number[]): Map<string, string[]> {
  const byDay = new Map<string, string[]>();
  for (const h of holidaysOf(country, null, years)) {
    if (!closesTheWindow(h)) continue;
    if (country === "AU" && AU_DEMOTED_RULES.has(h.rule)) continue;
    for (const day of daysOf(h)) addName(byDay, day, h.name);
  }
  return byDay;
}

function regionDays(country: string, state: string, years: readonly number[], national: Map<string, string[]>) {
  const byDay = new Map<string, string[]>();
  for (const h of holidaysOf(country, state, years)) {
    if (!closesTheWindow(h)) continue;
    for (const day of daysOf(h)) if (!national.has(day)) addName(byDay, day, h.name);
  }
  return byDay;
}

// One uninitialised instance answers the catalogue queries (countries, states).
let catalogue: Holidays | null = null;
function holidayCatalogue(): Holidays {
  catalogue ??= new Holidays();
  return catalogue;
}

/** date-holidays' first-level state codes for a country ([] when it has none). */
export function holidayStates(country: string): string[] {
  const states = holidayCatalogue().getStates(country) as Record<string, string> | undefined;
  return states ? Object.keys(states) : [];
}

/** date-holidays' state names for a country, code → name, in the given language (default: the country's). */
export function holidayStateNames(country: string, lang?: string): Record<string, string> {
  return (holidayCatalogue().getStates(country, lang) as Record<string, string> | undefined) ?? {};
}

/** Whether date-holidays knows the country at all. */
export function isHolidayCountry(country: string): boolean {
  const countries = holidayCatalogue().getCountries() as Record<string, string>;
  return Object.hasOwn(countries, country);
}

function toRows(country: string, region: string | null, byDay: Map<string, string[]>): HolidayRow[] {
  return [...byDay.entries()].map(([day, names]) => ({ country, region, day, name: names.join("; ") }));
}

/**
 * Public-holiday rows for `countries` (default DEFAULT_HOLIDAY_COUNTRIES) over `years`: national
 * rows (region null) and, per state date-holidays knows, the extra days of that state. Sorted by
 * country, region (national first), day; unique per (country, region, day).
 * Throws RangeError on a country date-holidays doesn't know or a year outside 1970–2200.
 */
export function holidayRows(
  countries: readonly string[] = DEFAULT_HOLIDAY_COUNTRIES,
  years: readonly number[],
): HolidayRow[] {
  const uniqueYears = [...new Set(years)];
  for (const y of uniqueYears) {
    if (!Number.isInteger(y) || y < 1970 || y > 2200) throw new RangeError(`holidayRows: bad year ${y}`);
  }
  const rows: HolidayRow[] = [];
  for (const raw of new Set(countries.map((c) => c.trim().toUpperCase()))) {
    if (!/^[A-Z]{2}$/.test(raw) || !isHolidayCountry(raw)) {
      throw new RangeError(`holidayRows: date-holidays has no country "${raw}"`);
    }
    const national = nationalDays(raw, uniqueYears);
    rows.push(...toRows(raw, null, national));
    for (const state of holidayStates(raw)) rows.push(...toRows(raw, state, regionDays(raw, state, uniqueYears, national)));
  }
  return rows.sort(compareRows);
}

function compareRows(a: HolidayRow, b: HolidayRow): number {
  if (a.country !== b.country) return a.country < b.country ? -1 : 1;
  const ra = a.region ?? "", rb = b.region ?? "";
  if (ra !== rb) return ra < rb ? -1 : 1;
  return a.day < b.day ? -1 : a.day > b.day ? 1 : 0;
}
