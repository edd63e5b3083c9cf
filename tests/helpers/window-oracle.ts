// Test oracle for the send gate's local-time window (product.md §6 rule 3, compliance.md D4 and
// U2). An independent reference implementation in plain TypeScript so property tests can compare
// the SQL gate against it; it shares no code with the gate or with shared/engines.
//
// The rule, in the recipient's local wall time (Intl.DateTimeFormat, so DST follows the zone):
// - email: Monday–Friday 08:00–17:00.
// - voice and SMS: Monday–Friday 09:00–20:00, Saturday 09:00–17:00; never Sunday, never a public
//   holiday of the recipient's country (national row) or of their region. In the US they must
//   also fall within 08:00–21:00 (TCPA, compliance U2): the two windows are intersected, so the
//   Australian hours, being stricter, are what apply.
// - linkedin and mail: Monday–Friday 08:00–18:00. Our own product choice (no law sets these):
//   office hours, so a connection request or a letter's trigger arrives while people are at work.
// - Holidays close only the voice and SMS windows: that is what D4 and product.md §6 say; email,
//   LinkedIn and mail follow their weekday windows only.
// - Windows are half-open: 08:00:00 is inside, 17:00:00 is outside.
//
// Holiday sets hold keys made by `holidayKey(country, region, day)`: "AU||2026-12-25" is national,
// "AU|VIC|2026-11-03" is Victoria's.

export type Channel = "email" | "sms" | "voice" | "linkedin" | "mail";

export const CHANNELS: readonly Channel[] = ["email", "sms", "voice", "linkedin", "mail"];

/** The key of one holiday in a holiday set. Region null (or "") means national. */
export function holidayKey(country: string, region: string | null, day: string): string {
  return `${country.toUpperCase()}|${region ?? ""}|${day}`;
}

/** A holiday set from public_holidays-shaped rows. */
export function holidaySet(rows: Iterable<{ country: string; region: string | null; day: string }>): Set<string> {
  const set = new Set<string>();
  for (const r of rows) set.add(holidayKey(r.country, r.region, r.day));
  return set;
}

export interface LocalTime {
  /** YYYY-MM-DD */
  date: string;
  /** 0 = Sunday … 6 = Saturday */
  weekday: number;
  /** Minutes since local midnight. */
  minuteOfDay: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      weekday: "short",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

/** Local wall time of an instant in a zone. */
export function localTime(instant: Date, timeZone: string): LocalTime {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(instant)) parts[p.type] = p.value;
  const hour = Number(parts.hour) % 24;
  return {
    date: `${parts.year}-${parts.month}-${parts.day}`,
    weekday: WEEKDAYS[parts.weekday],
    minuteOfDay: hour * 60 + Number(parts.minute),
    second: Number(parts.second),
  };
}

/** An open window in minutes since local midnight, [open, close). */
export interface DayWindow {
  open: number;
  close: number;
}

const H = 60;

/** The window of one local day for a channel, or null when the day is closed. */
export function dayWindow(channel: Channel, country: string, weekday: number, holiday: boolean): DayWindow | null {
  const weekdayOnly = weekday >= 1 && weekday <= 5;
  switch (channel) {
    case "email":
      return weekdayOnly ? { open: 8 * H, close: 17 * H } : null;
    case "linkedin":
    case "mail":
      return weekdayOnly ? { open: 8 * H, close: 18 * H } : null;
    case "voice":
    case "sms": {
      if (holiday || weekday === 0) return null;
      let w: DayWindow = weekday === 6 ? { open: 9 * H, close: 17 * H } : { open: 9 * H, close: 20 * H };
      if (country.toUpperCase() === "US") w = { open: Math.max(w.open, 8 * H), close: Math.min(w.close, 21 * H) };
      return w.open < w.close ? w : null;
    }
  }
}

function isHoliday(holidays: ReadonlySet<string>, country: string, region: string | null, date: string): boolean {
  return holidays.has(holidayKey(country, null, date)) || (region !== null && region !== "" && holidays.has(holidayKey(country, region, date)));
}

function windowOn(channel: Channel, country: string, region: string | null, date: string, weekday: number, holidays: ReadonlySet<string>) {
  const holiday = (channel === "voice" || channel === "sms") && isHoliday(holidays, country, region, date);
  return dayWindow(channel, country, weekday, holiday);
}

/** Whether a send on `channel` at `instant` falls inside the recipient's window. */
export function isPermitted(
  channel: Channel,
  country: string,
  region: string | null,
  timeZone: string,
  instant: Date,
  holidays: ReadonlySet<string>,
): boolean {
  const local = localTime(instant, timeZone);
  const w = windowOn(channel, country, region, local.date, local.weekday, holidays);
  return w !== null && local.minuteOfDay >= w.open && local.minuteOfDay < w.close;
}

// ---------------------------------------------------------------------------------------------
// Local wall time → instant, with Intl only
// ---------------------------------------------------------------------------------------------

/** The zone's offset from UTC at an instant, in ms (wall time read as UTC minus the instant). */
function offsetAt(ms: number, timeZone: string): number {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(ms))) parts[p.type] = p.value;
  const asUtc = Date.UTC(
    Number(parts.year),
    Number(parts.month) - 1,
    Number(parts.day),
    Number(parts.hour) % 24,
    Number(parts.minute),
    Number(parts.second),
  );
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/**
 * The instant at which the local wall clock in `timeZone` shows `date` at `minuteOfDay`. A wall
 * time skipped by a DST jump is pushed forward by the jump (02:30 on a 02:00→03:00 night → 03:30),
 * like most libraries; no window opens or closes in those night hours anyway.
 */
export function wallTimeToInstant(date: string, minuteOfDay: number, timeZone: string): Date {
  const [y, m, d] = date.split("-").map(Number);
  const wallAsUtc = Date.UTC(y, m - 1, d, 0, minuteOfDay);
  // Two passes settle on the offset in force at the answer (the first guess may be across a DST
  // change from it).
  const first = wallAsUtc - offsetAt(wallAsUtc, timeZone);
  const second = wallAsUtc - offsetAt(first, timeZone);
  for (const t of [second, first]) {
    const lt = localTime(new Date(t), timeZone);
    if (lt.date === date && lt.minuteOfDay === minuteOfDay) return new Date(t);
  }
  // Skipped wall time: the later candidate is the wall time read with the pre-jump offset.
  return new Date(Math.max(first, second));
}

function addDays(date: string, n: number): { date: string; weekday: number } {
  const [y, m, d] = date.split("-").map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + n));
  return { date: t.toISOString().slice(0, 10), weekday: t.getUTCDay() };
}

/**
 * The first instant at or after `from` when a send on `channel` is permitted: `from` itself when
 * it is inside a window, else the next window's opening. Walks local days forward, so DST
 * changes are handled by the zone's own offsets. Throws when nothing opens within `maxDays`.
 */
export function nextPermittedStart(
  channel: Channel,
  country: string,
  region: string | null,
  timeZone: string,
  from: Date,
  holidays: ReadonlySet<string>,
  maxDays = 60,
): Date {
  const fromMs = from.getTime();
  if (!Number.isFinite(fromMs)) throw new RangeError("nextPermittedStart: invalid date");
  const startDate = localTime(from, timeZone).date;
  for (let i = 0; i <= maxDays; i++) {
    const { date, weekday } = addDays(startDate, i);
    const w = windowOn(channel, country, region, date, weekday, holidays);
    if (!w) continue;
    const open = wallTimeToInstant(date, w.open, timeZone).getTime();
    const close = wallTimeToInstant(date, w.close, timeZone).getTime();
    if (fromMs < close) return new Date(Math.max(fromMs, open));
  }
  throw new Error(`nextPermittedStart: no ${channel} window within ${maxDays} days of ${from.toISOString()}`);
}
