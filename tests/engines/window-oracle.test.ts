// The sending-window oracle (tests/helpers/window-oracle.ts) that property tests of the SQL gate
// compare against: worked examples (Friday night → Saturday, Saturday evening → Monday, a Monday
// holiday → Tuesday, Christmas substitutes, Melbourne Cup in VIC only, DST changes in Sydney and
// New York, Perth without DST) and properties (the next start is permitted and nothing permitted
// comes before it, checked minute by minute).
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { holidayRows } from "../../shared/engines/holidays.ts";
import {
  CHANNELS, type Channel, dayWindow, holidayKey, holidaySet, isPermitted, localTime, nextPermittedStart, wallTimeToInstant,
} from "../helpers/window-oracle.ts";

let holidays: Set<string>;
beforeAll(() => {
  holidays = holidaySet(holidayRows(["AU", "US", "GB", "NZ"], [2026, 2027]));
});

const at = (iso: string) => new Date(iso);
const next = (channel: Channel, country: string, region: string | null, zone: string, iso: string) =>
  nextPermittedStart(channel, country, region, zone, at(iso), holidays).toISOString();
const ok = (channel: Channel, country: string, region: string | null, zone: string, iso: string) =>
  isPermitted(channel, country, region, zone, at(iso), holidays);

describe("localTime and wallTimeToInstant", () => {
  it("reads local wall time with DST from Intl", () => {
    expect(localTime(at("2026-11-27T10:00:00Z"), "Australia/Sydney")).toEqual({ date: "2026-11-27", weekday: 5, minuteOfDay: 21 * 60, second: 0 });
    expect(localTime(at("2026-07-01T10:00:00Z"), "Australia/Sydney").minuteOfDay).toBe(20 * 60); // AEST, +10
    expect(localTime(at("2026-07-01T10:00:00Z"), "Australia/Perth").minuteOfDay).toBe(18 * 60);
    expect(localTime(at("2026-07-01T10:00:00Z"), "Australia/Adelaide").minuteOfDay).toBe(19 * 60 + 30);
  });

  it("turns local wall time into the instant, on both sides of a DST change", () => {
    expect(wallTimeToInstant("2026-10-03", 9 * 60, "Australia/Sydney").toISOString()).toBe("2026-10-02T23:00:00.000Z"); // AEST
    expect(wallTimeToInstant("2026-10-05", 9 * 60, "Australia/Sydney").toISOString()).toBe("2026-10-04T22:00:00.000Z"); // AEDT
    expect(wallTimeToInstant("2026-03-06", 8 * 60, "America/New_York").toISOString()).toBe("2026-03-06T13:00:00.000Z"); // EST
    expect(wallTimeToInstant("2026-03-09", 8 * 60, "America/New_York").toISOString()).toBe("2026-03-09T12:00:00.000Z"); // EDT
    // 02:30 doesn't exist in Sydney on 4 Oct 2026 (02:00 → 03:00): pushed forward by the jump.
    expect(wallTimeToInstant("2026-10-04", 2 * 60 + 30, "Australia/Sydney").toISOString()).toBe("2026-10-03T16:30:00.000Z");
    // 02:30 happens twice on 5 Apr 2026 (03:00 → 02:00): either instant shows 02:30.
    const twice = wallTimeToInstant("2026-04-05", 2 * 60 + 30, "Australia/Sydney");
    expect(localTime(twice, "Australia/Sydney")).toMatchObject({ date: "2026-04-05", minuteOfDay: 150 });
  });
});

describe("windows", () => {
  it("email: weekdays 08:00–17:00, half-open", () => {
    const z = "Australia/Sydney"; // November: AEDT, UTC+11
    expect(ok("email", "AU", "NSW", z, "2026-11-23T20:59:59Z")).toBe(false); // Tue 07:59:59
    expect(ok("email", "AU", "NSW", z, "2026-11-23T21:00:00Z")).toBe(true); // Tue 08:00
    expect(ok("email", "AU", "NSW", z, "2026-11-24T05:59:59Z")).toBe(true); // Tue 16:59:59
    expect(ok("email", "AU", "NSW", z, "2026-11-24T06:00:00Z")).toBe(false); // Tue 17:00
    expect(ok("email", "AU", "NSW", z, "2026-11-27T23:00:00Z")).toBe(false); // Sat 10:00
  });

  it("voice and SMS: weekdays 09:00–20:00, Saturday 09:00–17:00, never Sunday", () => {
    const z = "Australia/Sydney";
    for (const ch of ["voice", "sms"] as const) {
      expect(ok(ch, "AU", "NSW", z, "2026-11-23T21:59:00Z"), ch).toBe(false); // Tue 08:59
      expect(ok(ch, "AU", "NSW", z, "2026-11-23T22:00:00Z"), ch).toBe(true); // Tue 09:00
      expect(ok(ch, "AU", "NSW", z, "2026-11-24T08:59:00Z"), ch).toBe(true); // Tue 19:59
      expect(ok(ch, "AU", "NSW", z, "2026-11-24T09:00:00Z"), ch).toBe(false); // Tue 20:00
      expect(ok(ch, "AU", "NSW", z, "2026-11-28T05:59:00Z"), ch).toBe(true); // Sat 16:59
      expect(ok(ch, "AU", "NSW", z, "2026-11-28T06:00:00Z"), ch).toBe(false); // Sat 17:00
      expect(ok(ch, "AU", "NSW", z, "2026-11-28T23:00:00Z"), ch).toBe(false); // Sun 10:00
    }
  });

  it("LinkedIn and mail: weekdays 08:00–18:00 only", () => {
    const z = "Europe/London"; // November: GMT
    for (const ch of ["linkedin", "mail"] as const) {
      expect(ok(ch, "GB", "ENG", z, "2026-11-24T17:59:00Z"), ch).toBe(true);
      expect(ok(ch, "GB", "ENG", z, "2026-11-24T18:00:00Z"), ch).toBe(false);
      expect(ok(ch, "GB", "ENG", z, "2026-11-28T12:00:00Z"), ch).toBe(false); // Saturday
    }
  });

  it("US calls and SMS: the stricter of AU hours and TCPA 08:00–21:00, so 09:00–20:00 applies", () => {
    expect(dayWindow("voice", "US", 2, false)).toEqual({ open: 540, close: 1200 });
    expect(dayWindow("sms", "US", 6, false)).toEqual({ open: 540, close: 1020 });
    expect(dayWindow("voice", "US", 0, false)).toBeNull();
    const z = "America/New_York"; // November: EST, UTC−5
    expect(ok("voice", "US", "NY", z, "2026-11-24T13:30:00Z")).toBe(false); // 08:30, TCPA would allow, AU doesn't
    expect(ok("voice", "US", "NY", z, "2026-11-25T01:30:00Z")).toBe(false); // 20:30
    expect(ok("voice", "US", "NY", z, "2026-11-26T15:00:00Z")).toBe(false); // Thanksgiving 10:00
    expect(ok("email", "US", "NY", z, "2026-11-26T15:00:00Z")).toBe(true); // holidays close calls/SMS only
  });

  it("holidays: national for everyone, regional only for that region", () => {
    // Tuesday 3 Nov 2026, 10:00 AEDT: Melbourne Cup.
    expect(ok("voice", "AU", "VIC", "Australia/Melbourne", "2026-11-02T23:00:00Z")).toBe(false);
    expect(ok("voice", "AU", "NSW", "Australia/Sydney", "2026-11-02T23:00:00Z")).toBe(true);
    expect(ok("voice", "AU", null, "Australia/Melbourne", "2026-11-02T23:00:00Z")).toBe(true); // region unknown
    expect(next("voice", "AU", "VIC", "Australia/Melbourne", "2026-11-02T23:00:00Z")).toBe("2026-11-03T22:00:00.000Z");
    // Anzac Day (national, a Saturday in 2026) blocks WA and VIC alike; the Monday substitute
    // only the states that give one (WA does, VIC doesn't).
    expect(ok("sms", "AU", "WA", "Australia/Perth", "2026-04-25T02:00:00Z")).toBe(false);
    expect(ok("sms", "AU", "VIC", "Australia/Melbourne", "2026-04-25T00:00:00Z")).toBe(false);
    expect(ok("sms", "AU", "WA", "Australia/Perth", "2026-04-27T02:00:00Z")).toBe(false);
    expect(ok("sms", "AU", "VIC", "Australia/Melbourne", "2026-04-27T00:00:00Z")).toBe(true);
    expect(holidays.has(holidayKey("AU", null, "2026-12-25"))).toBe(true);
  });
});

describe("nextPermittedStart: examples", () => {
  const SYD = "Australia/Sydney";

  it("SMS at 21:00 Friday → Saturday 09:00", () => {
    expect(next("sms", "AU", "NSW", SYD, "2026-11-27T10:00:00Z")).toBe("2026-11-27T22:00:00.000Z");
  });

  it("SMS at 17:30 Saturday → Monday 09:00", () => {
    expect(next("sms", "AU", "NSW", SYD, "2026-11-28T06:30:00Z")).toBe("2026-11-29T22:00:00.000Z");
  });

  it("already inside a window → the same instant", () => {
    expect(next("sms", "AU", "NSW", SYD, "2026-11-24T01:23:45.678Z")).toBe("2026-11-24T01:23:45.678Z");
  });

  it("Saturday 17:30 before a Monday holiday → Tuesday 09:00, across Sydney's DST start", () => {
    // Sat 3 Oct 2026 17:30 AEST; clocks go forward Sun 4 Oct; Mon 5 Oct is Labour Day in NSW.
    expect(next("sms", "AU", "NSW", SYD, "2026-10-03T07:30:00Z")).toBe("2026-10-05T22:00:00.000Z"); // Tue 09:00 AEDT
    // Victoria has no holiday that Monday.
    expect(next("sms", "AU", "VIC", "Australia/Melbourne", "2026-10-03T07:30:00Z")).toBe("2026-10-04T22:00:00.000Z"); // Mon 09:00 AEDT
  });

  it("Perth has no DST: the same Saturday evening opens Monday 09:00 AWST (UTC+8)", () => {
    expect(next("sms", "AU", "WA", "Australia/Perth", "2026-10-03T09:30:00Z")).toBe("2026-10-05T01:00:00.000Z");
    expect(next("sms", "AU", "WA", "Australia/Perth", "2027-01-08T13:00:00Z")).toBe("2027-01-09T01:00:00.000Z"); // Fri 21:00 → Sat 09:00, summer too
  });

  it("Christmas 2027: Friday evening → Wednesday 29th (Sat Christmas, Sun, Mon and Tue substitutes)", () => {
    // Fri 24 Dec 2027 20:30 AEDT.
    expect(next("voice", "AU", "NSW", SYD, "2027-12-24T09:30:00Z")).toBe("2027-12-28T22:00:00.000Z");
    // Email ignores holidays: Monday 27th 08:00.
    expect(next("email", "AU", "NSW", SYD, "2027-12-24T09:30:00Z")).toBe("2027-12-26T21:00:00.000Z");
  });

  it("New York email across DST: spring forward in March, fall back in November", () => {
    const NY = "America/New_York";
    expect(next("email", "US", "NY", NY, "2026-03-06T22:00:00Z")).toBe("2026-03-09T12:00:00.000Z"); // Fri 17:00 EST → Mon 08:00 EDT
    expect(next("email", "US", "NY", NY, "2026-10-30T21:00:00Z")).toBe("2026-11-02T13:00:00.000Z"); // Fri 17:00 EDT → Mon 08:00 EST
    expect(next("voice", "US", "NY", NY, "2026-11-25T01:00:00Z")).toBe("2026-11-25T14:00:00.000Z"); // Tue 20:00 → Wed 09:00 EST
    expect(next("voice", "US", "NY", NY, "2026-11-26T01:00:00Z")).toBe("2026-11-27T14:00:00.000Z"); // Wed 20:00 → Fri (Thanksgiving Thu)
  });

  it("half-hour zones: Adelaide opens at 09:00 ACDT = 22:30 UTC", () => {
    expect(next("sms", "AU", "SA", "Australia/Adelaide", "2026-11-24T10:00:00Z")).toBe("2026-11-24T22:30:00.000Z");
  });

  it("rejects an invalid date and gives up after maxDays with no window", () => {
    expect(() => nextPermittedStart("sms", "AU", "NSW", SYD, new Date("x"), holidays)).toThrow(RangeError);
    const allHolidays = new Set<string>();
    for (let d = 0; d < 10; d++) allHolidays.add(holidayKey("AU", null, new Date(Date.UTC(2026, 10, 24 + d)).toISOString().slice(0, 10)));
    expect(() => nextPermittedStart("sms", "AU", "NSW", SYD, at("2026-11-24T00:00:00Z"), allHolidays, 5)).toThrow(/no sms window/);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

const PLACES = [
  { country: "AU", region: "NSW", zone: "Australia/Sydney" },
  { country: "AU", region: "VIC", zone: "Australia/Melbourne" },
  { country: "AU", region: "WA", zone: "Australia/Perth" },
  { country: "AU", region: "SA", zone: "Australia/Adelaide" },
  { country: "AU", region: "QLD", zone: "Australia/Brisbane" },
  { country: "AU", region: "NSW", zone: "Australia/Lord_Howe" }, // 30-minute DST
  { country: "AU", region: null, zone: "Australia/Darwin" },
  { country: "US", region: "NY", zone: "America/New_York" },
  { country: "US", region: "CA", zone: "America/Los_Angeles" },
  { country: "GB", region: "SCT", zone: "Europe/London" },
  { country: "NZ", region: "AUK", zone: "Pacific/Auckland" },
  { country: "NZ", region: "CIT", zone: "Pacific/Chatham" }, // +12:45 / +13:45
  { country: "NP", region: null, zone: "Asia/Kathmandu" }, // +05:45
];

// DST changes in 2026–2027 for the zones above, so instants cluster where bugs live.
const DST_EDGES = [
  "2026-04-05T03:00:00+11:00", "2026-10-04T02:00:00+10:00", "2027-04-04T03:00:00+11:00", "2027-10-03T02:00:00+10:00",
  "2026-03-08T02:00:00-05:00", "2026-11-01T02:00:00-04:00", "2027-03-14T02:00:00-05:00", "2027-11-07T02:00:00-04:00",
  "2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z", "2026-04-05T03:00:00+13:00", "2026-09-27T02:00:00+12:00",
].map((s) => Date.parse(s));

const FROM = Date.parse("2026-01-01T00:00:00Z");
const TO = Date.parse("2027-12-20T00:00:00Z");
const MIN = 60_000;
const DAY = 86_400_000;

const instant = fc.oneof(
  fc.integer({ min: FROM, max: TO }),
  fc.tuple(fc.constantFrom(...DST_EDGES), fc.integer({ min: -4 * DAY, max: 4 * DAY })).map(([edge, d]) => edge + d),
  // Whole minutes too: window edges are whole minutes.
  fc.integer({ min: FROM / MIN, max: TO / MIN }).map((m) => m * MIN),
);

describe("nextPermittedStart: properties", () => {
  it("the result is permitted, not before the input, and no permitted minute lies between them", () => {
    fc.assert(
      fc.property(fc.constantFrom(...CHANNELS), fc.constantFrom(...PLACES), instant, (channel, place, fromMs) => {
        const { country, region, zone } = place;
        const from = new Date(fromMs);
        const start = nextPermittedStart(channel, country, region, zone, from, holidays).getTime();
        expect(start).toBeGreaterThanOrEqual(fromMs);
        expect(isPermitted(channel, country, region, zone, new Date(start), holidays)).toBe(true);
        if (start > fromMs) {
          // Windows open and close on whole minutes, so checking the input and every whole minute
          // after it finds any permitted moment in between.
          expect(isPermitted(channel, country, region, zone, from, holidays)).toBe(false);
          const permittedBefore: string[] = [];
          for (let t = Math.ceil(fromMs / MIN) * MIN; t < start; t += MIN) {
            if (isPermitted(channel, country, region, zone, new Date(t), holidays)) permittedBefore.push(new Date(t).toISOString());
          }
          expect(permittedBefore).toEqual([]);
          // And it is a window's opening: the minute before is closed.
          expect(isPermitted(channel, country, region, zone, new Date(start - MIN), holidays)).toBe(false);
        }
      }),
      { numRuns: 250 },
    );
  });

  it("a permitted instant is its own next start; a closed one never is", () => {
    fc.assert(
      fc.property(fc.constantFrom(...CHANNELS), fc.constantFrom(...PLACES), instant, (channel, place, fromMs) => {
        const { country, region, zone } = place;
        const from = new Date(fromMs);
        const start = nextPermittedStart(channel, country, region, zone, from, holidays).getTime();
        expect(start === fromMs).toBe(isPermitted(channel, country, region, zone, from, holidays));
      }),
      { numRuns: 400 },
    );
  });

  it("opens at the channel's local opening hour, whatever the zone or season", () => {
    const opening: Record<Channel, number[]> = { email: [480], linkedin: [480], mail: [480], sms: [540], voice: [540] };
    fc.assert(
      fc.property(fc.constantFrom(...CHANNELS), fc.constantFrom(...PLACES), instant, (channel, place, fromMs) => {
        const { country, region, zone } = place;
        if (isPermitted(channel, country, region, zone, new Date(fromMs), holidays)) return;
        const start = nextPermittedStart(channel, country, region, zone, new Date(fromMs), holidays);
        const local = localTime(start, zone);
        expect(opening[channel]).toContain(local.minuteOfDay);
        expect(local.second).toBe(0);
        expect(local.weekday).not.toBe(0);
        if (channel === "voice" || channel === "sms") {
          expect(holidays.has(holidayKey(country, null, local.date))).toBe(false);
          if (region) expect(holidays.has(holidayKey(country, region, local.date))).toBe(false);
        }
      }),
      { numRuns: 400 },
    );
  });

  it("a local day has exactly the window's minutes permitted (DST days included)", () => {
    // Count permitted minutes over whole local days around Sydney's and New York's changes.
    const count = (channel: Channel, country: string, region: string, zone: string, date: string) => {
      const startMs = wallTimeToInstant(date, 0, zone).getTime();
      let n = 0;
      for (let t = startMs; t < startMs + 26 * 60 * MIN; t += MIN) {
        if (localTime(new Date(t), zone).date !== date) continue;
        if (isPermitted(channel, country, region, zone, new Date(t), holidays)) n++;
      }
      return n;
    };
    expect(count("sms", "AU", "NSW", "Australia/Sydney", "2026-10-03")).toBe(8 * 60); // Saturday before DST
    expect(count("sms", "AU", "NSW", "Australia/Sydney", "2026-10-04")).toBe(0); // Sunday, DST starts
    expect(count("sms", "AU", "NSW", "Australia/Sydney", "2026-10-05")).toBe(0); // Labour Day (NSW)
    expect(count("sms", "AU", "NSW", "Australia/Sydney", "2026-10-06")).toBe(11 * 60);
    expect(count("email", "US", "NY", "America/New_York", "2026-03-09")).toBe(9 * 60); // Monday after spring forward
    expect(count("linkedin", "US", "NY", "America/New_York", "2026-11-02")).toBe(10 * 60);
  });
});
