// Timezone resolution (shared/engines/timezone.ts): lead location → phone country → company HQ →
// client, state names normalised to date-holidays' codes, every zone valid under Intl.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { holidayStates } from "../../shared/engines/holidays.ts";
import {
  PRIMARY_ZONES, TimezoneError, countryZone, holidayRegionFor, isValidTimeZone, resolveTimezone,
} from "../../shared/engines/timezone.ts";

const CLIENT = "Australia/Sydney";

/** UTC offset in minutes of a zone at an instant, via Intl. */
function offsetMinutes(zone: string, iso: string): number {
  const f = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "longOffset" });
  const name = f.formatToParts(new Date(iso)).find((p) => p.type === "timeZoneName")!.value; // "GMT+10:00"
  const m = /GMT([+-])(\d\d):(\d\d)/.exec(name);
  if (!m) return 0;
  return (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

describe("holidayRegionFor", () => {
  it("normalises Australian state names, codes and ISO forms to date-holidays' codes", () => {
    for (const s of ["Victoria", "VIC", "vic", "Vic.", " victoria ", "AU-VIC", "au-vic"]) expect(holidayRegionFor("AU", s), s).toBe("VIC");
    expect(holidayRegionFor("AU", "New South Wales")).toBe("NSW");
    expect(holidayRegionFor("AU", "N.S.W.")).toBe("NSW");
    expect(holidayRegionFor("AU", "Western Australia")).toBe("WA");
    expect(holidayRegionFor("AU", "Northern Territory")).toBe("NT");
    expect(holidayRegionFor("AU", "Australian Capital Territory")).toBe("ACT");
    expect(holidayRegionFor("AU", "Tasmania")).toBe("TAS");
    expect(holidayRegionFor("AU", "Queensland")).toBe("QLD");
    expect(holidayRegionFor("AU", "South Australia")).toBe("SA");
  });

  it("handles other countries' names, accents and English names for German states", () => {
    expect(holidayRegionFor("US", "Texas")).toBe("TX");
    expect(holidayRegionFor("US", "us-ny")).toBe("NY");
    expect(holidayRegionFor("US", "District of Columbia")).toBe("DC");
    expect(holidayRegionFor("GB", "Scotland")).toBe("SCT");
    expect(holidayRegionFor("GB", "GB-WLS")).toBe("WLS");
    expect(holidayRegionFor("CA", "Québec")).toBe("QC");
    expect(holidayRegionFor("CA", "Quebec")).toBe("QC");
    expect(holidayRegionFor("DE", "Bayern")).toBe("BY");
    expect(holidayRegionFor("DE", "Bavaria")).toBe("BY");
    expect(holidayRegionFor("DE", "Baden-Württemberg")).toBe("BW");
    expect(holidayRegionFor("DE", "Hamburg")).toBe("HH");
    expect(holidayRegionFor("NZ", "Auckland")).toBe("AUK");
    expect(holidayRegionFor("de", "by")).toBe("BY");
  });

  it("returns null for an unknown state, a state of another country, or no input", () => {
    expect(holidayRegionFor("AU", "Texas")).toBeNull();
    expect(holidayRegionFor("AU", "Greater Sydney")).toBeNull();
    expect(holidayRegionFor("AU", "")).toBeNull();
    expect(holidayRegionFor("AU", "  ")).toBeNull();
    expect(holidayRegionFor("AU", null)).toBeNull();
    expect(holidayRegionFor(null, "VIC")).toBeNull();
    expect(holidayRegionFor("SG", "Central")).toBeNull(); // SG has no states in date-holidays
    expect(holidayRegionFor("Australia", "VIC")).toBeNull();
  });

  it("maps every date-holidays state code to itself (property)", () => {
    const pairs = ["AU", "US", "GB", "CA", "DE", "NZ", "FR", "NL"].flatMap((c) => holidayStates(c).map((s) => [c, s] as const));
    fc.assert(
      fc.property(fc.constantFrom(...pairs), fc.constantFrom("upper", "lower", "iso"), ([c, s], form) => {
        const input = form === "upper" ? s : form === "lower" ? s.toLowerCase() : `${c}-${s}`;
        expect(holidayRegionFor(c, input)).toBe(s);
      }),
    );
  });
});

describe("resolveTimezone: lead location", () => {
  it("maps each Australian state to its capital's zone", () => {
    const expected: Record<string, string> = {
      NSW: "Australia/Sydney", ACT: "Australia/Sydney", VIC: "Australia/Melbourne", QLD: "Australia/Brisbane",
      SA: "Australia/Adelaide", NT: "Australia/Darwin", WA: "Australia/Perth", TAS: "Australia/Hobart",
    };
    for (const [state, zone] of Object.entries(expected)) {
      expect(resolveTimezone({ country: "AU", state }, null, CLIENT)).toEqual({
        timezone: zone, source: "lead_location", region: state, country: "AU", assumed: false,
      });
    }
  });

  it("WA and VIC differ: three hours in the southern summer, two in winter (Perth has no DST)", () => {
    const wa = resolveTimezone({ country: "AU", state: "Western Australia" }, null, CLIENT).timezone;
    const vic = resolveTimezone({ country: "AU", state: "Victoria" }, null, CLIENT).timezone;
    expect(offsetMinutes(vic, "2027-01-15T00:00:00Z") - offsetMinutes(wa, "2027-01-15T00:00:00Z")).toBe(180);
    expect(offsetMinutes(vic, "2027-07-15T00:00:00Z") - offsetMinutes(wa, "2027-07-15T00:00:00Z")).toBe(120);
    expect(offsetMinutes(wa, "2027-01-15T00:00:00Z")).toBe(offsetMinutes(wa, "2027-07-15T00:00:00Z"));
  });

  it("uses the city when the state is missing, and keeps Broken Hill on South Australian time", () => {
    expect(resolveTimezone({ country: "AU", city: "Perth" }, null, CLIENT)).toMatchObject({ timezone: "Australia/Perth", region: "WA" });
    expect(resolveTimezone({ country: "AU", city: "Gold Coast" }, null, CLIENT)).toMatchObject({ timezone: "Australia/Brisbane", region: "QLD" });
    expect(resolveTimezone({ country: "AU", state: "NSW", city: "Broken Hill" }, null, CLIENT))
      .toMatchObject({ timezone: "Australia/Broken_Hill", region: "NSW", assumed: false });
  });

  it("a country without a usable state: its one zone, or its most populous zone flagged as assumed", () => {
    expect(resolveTimezone({ country: "AU" }, null, "Europe/London")).toEqual({
      timezone: "Australia/Sydney", source: "lead_location", region: null, country: "AU", assumed: true,
    });
    expect(resolveTimezone({ country: "AU", state: "Greater Melbourne Area" }, null, CLIENT)).toMatchObject({ timezone: "Australia/Sydney", assumed: true });
    expect(resolveTimezone({ country: "GB", state: "Scotland" }, null, CLIENT)).toMatchObject({ timezone: "Europe/London", region: "SCT", assumed: false });
    expect(resolveTimezone({ country: "SG" }, null, CLIENT)).toMatchObject({ timezone: "Asia/Singapore", assumed: false });
    expect(resolveTimezone({ country: "NL" }, null, CLIENT)).toMatchObject({ timezone: "Europe/Amsterdam", assumed: false });
    expect(resolveTimezone({ country: "DE", state: "Bavaria" }, null, CLIENT)).toMatchObject({ timezone: "Europe/Berlin", region: "BY", assumed: false });
    expect(resolveTimezone({ country: "IE" }, null, CLIENT)).toMatchObject({ timezone: "Europe/Dublin", assumed: false });
  });

  it("US states get their zone (split states: the most populous part)", () => {
    const zone = (state: string) => resolveTimezone({ country: "US", state }, null, CLIENT).timezone;
    expect(zone("California")).toBe("America/Los_Angeles");
    expect(zone("NY")).toBe("America/New_York");
    expect(zone("Texas")).toBe("America/Chicago");
    expect(zone("Arizona")).toBe("America/Phoenix");
    expect(zone("Hawaii")).toBe("Pacific/Honolulu");
    expect(zone("Colorado")).toBe("America/Denver");
    expect(zone("Florida")).toBe("America/New_York");
    expect(zone("Puerto Rico")).toBe("America/Puerto_Rico");
    expect(resolveTimezone({ country: "US", state: "Texas" }, null, CLIENT).region).toBe("TX");
  });

  it("NZ and Canada: Chatham Islands and provinces", () => {
    expect(resolveTimezone({ country: "NZ", state: "Chatham Islands" }, null, CLIENT)).toMatchObject({ timezone: "Pacific/Chatham", assumed: false });
    expect(resolveTimezone({ country: "NZ", state: "Canterbury" }, null, CLIENT)).toMatchObject({ timezone: "Pacific/Auckland", region: "CAN", assumed: false });
    expect(resolveTimezone({ country: "CA", state: "British Columbia" }, null, CLIENT)).toMatchObject({ timezone: "America/Vancouver", region: "BC" });
    expect(resolveTimezone({ country: "CA", state: "Newfoundland and Labrador" }, null, CLIENT)).toMatchObject({ timezone: "America/St_Johns" });
  });

  it("every AU, US and CA state date-holidays knows has a zone of its own (none assumed)", () => {
    for (const country of ["AU", "US", "CA"]) {
      for (const state of holidayStates(country)) {
        const r = resolveTimezone({ country, state }, null, CLIENT);
        expect(r.assumed, `${country}-${state}`).toBe(false);
        expect(r.region).toBe(state);
        expect(isValidTimeZone(r.timezone)).toBe(true);
      }
    }
  });
});

describe("resolveTimezone: fallbacks in order", () => {
  it("lead location beats the phone country and the company", () => {
    const r = resolveTimezone({ country: "AU", state: "WA", phone_country: "GB" }, { country: "US" }, CLIENT);
    expect(r).toMatchObject({ timezone: "Australia/Perth", source: "lead_location" });
  });

  it("no lead country: the phone's country (one zone), or its main zone flagged assumed", () => {
    expect(resolveTimezone({ phone_country: "GB" }, { country: "US" }, CLIENT)).toEqual({
      timezone: "Europe/London", source: "phone_country", region: null, country: "GB", assumed: false,
    });
    expect(resolveTimezone({ phone_country: "AU", state: "Victoria" }, null, "Europe/London")).toMatchObject({
      timezone: "Australia/Sydney", source: "phone_country", assumed: true, region: null,
    });
    expect(resolveTimezone({ phone_country: "US" }, null, CLIENT)).toMatchObject({ timezone: "America/New_York", assumed: true });
  });

  it("reads the country from phone_e164 when phone_country is empty", () => {
    expect(resolveTimezone({ phone_e164: "+442071234567" }, null, CLIENT)).toMatchObject({ timezone: "Europe/London", source: "phone_country", country: "GB" });
    expect(resolveTimezone({ phone_e164: "+6421123456" }, null, CLIENT)).toMatchObject({ timezone: "Pacific/Auckland", country: "NZ" });
    // Not a number: falls through to the client.
    expect(resolveTimezone({ phone_e164: "+0000" }, null, CLIENT)).toMatchObject({ source: "client" });
  });

  it("no lead location or phone: the company HQ", () => {
    expect(resolveTimezone({}, { country: "SG" }, CLIENT)).toEqual({
      timezone: "Asia/Singapore", source: "company_hq", region: null, country: "SG", assumed: false,
    });
    expect(resolveTimezone({ country: null }, { country: "AU", state: "Queensland" }, CLIENT)).toMatchObject({
      timezone: "Australia/Brisbane", source: "company_hq", region: "QLD",
    });
  });

  it("nothing known: the client's timezone", () => {
    expect(resolveTimezone({}, null, "Australia/Perth")).toEqual({
      timezone: "Australia/Perth", source: "client", region: null, country: null, assumed: false,
    });
    expect(resolveTimezone({ country: "", state: "VIC", phone_country: "" }, {}, "Australia/Adelaide")).toMatchObject({ source: "client" });
  });

  it("bad codes are skipped, not trusted", () => {
    // Lower-case and padded codes are normalised; nonsense falls through.
    expect(resolveTimezone({ country: " au ", state: "vic" }, null, CLIENT)).toMatchObject({ timezone: "Australia/Melbourne" });
    expect(resolveTimezone({ country: "Australia" }, { country: "XX" }, "Asia/Tokyo")).toMatchObject({ source: "client", timezone: "Asia/Tokyo" });
    expect(resolveTimezone({ phone_country: "ZZ" }, null, CLIENT)).toMatchObject({ source: "client" });
  });

  it("throws when it must fall back to a client timezone that is not a zone", () => {
    expect(() => resolveTimezone({}, null, "Mars/Olympus_Mons")).toThrow(TimezoneError);
    expect(() => resolveTimezone({}, null, "")).toThrow(TimezoneError);
    // A good lead location never looks at the client's zone.
    expect(resolveTimezone({ country: "AU", state: "SA" }, null, "Mars/Olympus_Mons").timezone).toBe("Australia/Adelaide");
  });
});

describe("zones are valid", () => {
  it("isValidTimeZone accepts IANA zones and rejects junk", () => {
    expect(isValidTimeZone("Australia/Sydney")).toBe(true);
    expect(isValidTimeZone("UTC")).toBe(true);
    expect(isValidTimeZone("Australia/Sidney")).toBe(false);
    expect(isValidTimeZone("")).toBe(false);
  });

  it("every primary zone is valid and every country's zone resolves to a valid zone", () => {
    for (const [c, z] of Object.entries(PRIMARY_ZONES)) expect(isValidTimeZone(z), `${c} ${z}`).toBe(true);
    fc.assert(
      fc.property(fc.constantFrom("AU", "NZ", "US", "GB", "IE", "CA", "DE", "FR", "NL", "SG", "BR", "MX", "RU", "ID", "IN", "JP", "ZA", "ES", "PT"), (c) => {
        const z = countryZone(c);
        expect(z).not.toBeNull();
        expect(isValidTimeZone(z!.zone)).toBe(true);
      }),
    );
  });

  it("whatever the input, the result is a valid zone with a known source (property)", () => {
    const code = fc.oneof(fc.constantFrom("AU", "US", "GB", "NZ", "CA", "XX", "", "au"), fc.string({ maxLength: 3 }));
    const text = fc.option(fc.oneof(fc.constantFrom("VIC", "Texas", "Perth", "Broken Hill", "Scotland"), fc.string({ maxLength: 12 })));
    fc.assert(
      fc.property(code, text, text, fc.option(code), fc.option(code), (country, state, city, phone, hq) => {
        const r = resolveTimezone({ country, state, city, phone_country: phone }, { country: hq }, CLIENT);
        expect(isValidTimeZone(r.timezone)).toBe(true);
        expect(["lead_location", "phone_country", "company_hq", "client"]).toContain(r.source);
        if (r.source === "client") expect(r.timezone).toBe(CLIENT);
        if (r.region !== null) expect(r.region).toBe(holidayRegionFor(r.country, r.region));
      }),
      { numRuns: 300 },
    );
  });
});
