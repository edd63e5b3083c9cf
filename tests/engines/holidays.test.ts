// The public-holiday rows the send gate reads (shared/engines/holidays.ts): AU national list =
// compliance D4 with substitute days, state extras (Melbourne Cup is VIC only), deduplication,
// types left out, and bad input.
import { beforeAll, describe, expect, it } from "vitest";
import {
  AU_D4_NATIONAL_NAMES, DEFAULT_HOLIDAY_COUNTRIES, holidayRows, holidayStates, type HolidayRow,
} from "../../shared/engines/holidays.ts";

let rows: HolidayRow[];
beforeAll(() => {
  // One computation for the file: date-holidays takes a few ms per state and year.
  rows = holidayRows(DEFAULT_HOLIDAY_COUNTRIES, [2026, 2027]);
});

const of = (country: string, region: string | null) => rows.filter((r) => r.country === country && r.region === region);
const days = (country: string, region: string | null) => of(country, region).map((r) => r.day);
const has = (country: string, region: string | null, day: string) =>
  rows.some((r) => r.country === country && r.region === region && r.day === day);

describe("holidayRows: Australia", () => {
  it("the national list is exactly D4's seven holidays plus their substitute days, 2026 and 2027", () => {
    expect(of("AU", null).map((r) => `${r.day} ${r.name}`)).toEqual([
      "2026-01-01 New Year's Day",
      "2026-01-26 Australia Day",
      "2026-04-03 Good Friday",
      "2026-04-06 Easter Monday",
      "2026-04-25 Anzac Day",
      "2026-12-25 Christmas Day",
      "2026-12-26 Boxing Day",
      "2026-12-28 Boxing Day (substitute day)", // Boxing Day 2026 is a Saturday
      "2027-01-01 New Year's Day",
      "2027-01-26 Australia Day",
      "2027-03-26 Good Friday",
      "2027-03-29 Easter Monday",
      "2027-04-25 Anzac Day",
      "2027-12-25 Christmas Day",
      "2027-12-26 Boxing Day",
      "2027-12-27 Christmas Day (substitute day)", // Christmas 2027 is a Saturday → Monday
      "2027-12-28 Boxing Day (substitute day)", // Boxing Day 2027 is a Sunday → Tuesday
    ]);
    const names = new Set(of("AU", null).map((r) => r.name.replace(" (substitute day)", "")));
    expect([...names].sort()).toEqual([...AU_D4_NATIONAL_NAMES].sort());
  });

  it("a Sunday Christmas moves to the Monday-Tuesday (2022) and a weekend New Year's Day to the Monday", () => {
    const au = holidayRows(["AU"], [2022, 2028]).filter((r) => r.region === null);
    const d = au.map((r) => r.day);
    expect(d).toContain("2022-12-25");
    expect(d).toContain("2022-12-26"); // Boxing Day itself is the Monday
    expect(d).toContain("2022-12-27"); // Christmas substitute on the Tuesday
    expect(d).toContain("2022-01-03"); // 1 Jan 2022 was a Saturday
    expect(d).toContain("2028-01-03"); // 1 Jan 2028 is a Saturday
    expect(d).toContain("2022-09-22"); // the one-off national Day of Mourning stays national
  });

  it("Easter Saturday and Sunday are not national but belong to the states that declare them", () => {
    expect(has("AU", null, "2026-04-04")).toBe(false);
    expect(has("AU", null, "2026-04-05")).toBe(false);
    expect(has("AU", "NSW", "2026-04-04")).toBe(true);
    expect(has("AU", "VIC", "2026-04-04")).toBe(true);
    expect(has("AU", "WA", "2026-04-04")).toBe(false); // WA keeps Easter Sunday, not Saturday
    expect(has("AU", "WA", "2026-04-05")).toBe(true);
    expect(has("AU", "TAS", "2026-04-04")).toBe(false);
  });

  it("Melbourne Cup and the AFL Grand Final Friday are Victorian only", () => {
    expect(has("AU", "VIC", "2026-11-03")).toBe(true);
    expect(has("AU", "VIC", "2027-11-02")).toBe(true);
    expect(of("AU", "VIC").find((r) => r.day === "2026-11-03")?.name).toBe("Melbourne Cup");
    for (const region of [null, "NSW", "WA", "QLD", "SA", "TAS", "NT", "ACT"]) {
      expect(has("AU", region, "2026-11-03"), String(region)).toBe(false);
    }
    expect(days("AU", "VIC")).toContain("2026-09-25");
  });

  it("the King's Birthday is a state holiday on different days (WA September, QLD October)", () => {
    const kings = (region: string) => of("AU", region).filter((r) => r.name === "King's Birthday").map((r) => r.day);
    expect(kings("VIC")).toEqual(["2026-06-08", "2027-06-14"]);
    expect(kings("WA")).toEqual(["2026-09-28", "2027-09-27"]);
    expect(kings("QLD")).toEqual(["2026-10-05", "2027-10-04"]);
    expect(of("AU", null).some((r) => r.name === "King's Birthday")).toBe(false);
  });

  it("has rows for all eight states and territories, and the Anzac Day substitute where a state gives one", () => {
    expect(holidayStates("AU").sort()).toEqual(["ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"]);
    for (const s of holidayStates("AU")) expect(of("AU", s).length, s).toBeGreaterThan(0);
    expect(has("AU", "WA", "2026-04-27")).toBe(true); // Anzac Day 2026 is a Saturday
    expect(has("AU", "VIC", "2026-04-27")).toBe(false);
  });

  it("leaves out bank, optional, school and observance days", () => {
    expect(has("AU", "TAS", "2027-03-30")).toBe(false); // Easter Tuesday (optional)
    expect(has("AU", "NSW", "2027-08-02")).toBe(false); // NSW Bank Holiday (bank)
    expect(rows.some((r) => /Mother|Father|Term \d/.test(r.name))).toBe(false);
    expect(has("DE", null, "2027-12-24")).toBe(false); // Heiliger Abend (bank)
    expect(has("IE", null, "2027-03-26")).toBe(false); // Good Friday is a bank holiday in Ireland
  });
});

describe("holidayRows: other countries", () => {
  it("covers the default countries, with US states and GB nations as regions", () => {
    expect(new Set(rows.map((r) => r.country))).toEqual(new Set(DEFAULT_HOLIDAY_COUNTRIES));
    expect(holidayStates("US")).toHaveLength(51);
    for (const s of ["TX", "CA", "NY"]) expect(of("US", s).length, s).toBeGreaterThan(0);
    expect(has("GB", "SCT", "2026-11-30")).toBe(true); // St Andrew's Day
    expect(has("GB", "ENG", "2026-11-30")).toBe(false);
    expect(has("GB", "SCT", "2027-01-04")).toBe(true); // 2 January (Sat) → Monday 4th
    expect(of("SG", null).length).toBeGreaterThan(8);
  });

  it("US federal substitutes: Christmas 2027 (Sat) is observed Friday 24th, New Year 2028 on Friday 31st", () => {
    expect(has("US", null, "2027-12-24")).toBe(true);
    expect(has("US", null, "2027-12-31")).toBe(true);
    expect(has("US", null, "2027-07-05")).toBe(true);
  });

  it("keeps Ireland's weekend substitute days though date-holidays types them 'bank'", () => {
    expect(has("IE", null, "2027-12-27")).toBe(true); // St Stephen's Day (Sun) → Monday
    expect(has("IE", null, "2026-12-28")).toBe(true); // St Stephen's Day (Sat) → Monday
  });
});

describe("holidayRows: shape", () => {
  it("has one row per (country, region, day), sorted, national first", () => {
    const keys = rows.map((r) => `${r.country}|${r.region ?? ""}|${r.day}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (let i = 1; i < rows.length; i++) {
      const a = rows[i - 1], b = rows[i];
      const order = [a.country.localeCompare(b.country), (a.region ?? "").localeCompare(b.region ?? ""), a.day.localeCompare(b.day)];
      const first = order.find((o) => o !== 0) ?? 0;
      expect(first, `${keys[i - 1]} before ${keys[i]}`).toBeLessThan(0);
    }
    expect(rows[0]).toMatchObject({ country: "AU", region: null });
  });

  it("never repeats a national day as a region row", () => {
    const national = new Set(rows.filter((r) => r.region === null).map((r) => `${r.country}|${r.day}`));
    const repeats = rows.filter((r) => r.region !== null && national.has(`${r.country}|${r.day}`));
    expect(repeats).toEqual([]);
  });

  it("every day is a real date in the asked years and every row has a name", () => {
    for (const r of rows) {
      expect(r.day).toMatch(/^(2026|2027)-\d\d-\d\d$/);
      expect(new Date(`${r.day}T00:00:00Z`).toISOString().slice(0, 10)).toBe(r.day);
      expect(r.name.length).toBeGreaterThan(0);
      expect(r.country).toMatch(/^[A-Z]{2}$/);
    }
  });

  it("joins two holidays on one day into one row", () => {
    // Anzac Day and Easter Monday fell together in 2011.
    const au = holidayRows(["AU"], [2011]).filter((r) => r.region === null && r.day === "2011-04-25");
    expect(au).toHaveLength(1);
    expect(au[0].name).toContain("Anzac Day");
    expect(au[0].name).toContain("Easter Monday");
  });

  it("accepts lower-case codes and repeated years, and is the same every time", () => {
    expect(holidayRows(["au", "AU"], [2026, 2026])).toEqual(holidayRows(["AU"], [2026]));
  });

  it("rejects an unknown country and a bad year", () => {
    expect(() => holidayRows(["XX"], [2026])).toThrow(RangeError);
    expect(() => holidayRows(["Australia"], [2026])).toThrow(RangeError);
    expect(() => holidayRows(["AU"], [2026.5])).toThrow(RangeError);
    expect(() => holidayRows(["AU"], [1900])).toThrow(RangeError);
  });

  it("returns nothing for no years", () => {
    expect(holidayRows(["AU"], [])).toEqual([]);
  });
});
