// Which timezone a send is timed in (product.md §6 rule 3): the lead's location, else the phone
// number's country, else the company's HQ, else the client's timezone. The send gate (SQL) reads
// the result from lead_pool.timezone; the region code picks the lead's public_holidays rows.
//
// Rules (decisions where product.md is silent):
// - A location (lead's or company's) resolves in this order: a state/region code or name →
//   that state's zone (tables below for AU, US, CA, NZ, ES; the most populous zone where a state
//   spans two, e.g. TX → Chicago, FL → New_York); a known city when the state is missing or
//   unknown (AU capitals and large cities only); a country with one zone → that zone; a country
//   with several zones → its most populous zone (`assumed: true`). Broken Hill (NSW) keeps
//   South Australian time.
// - A known lead country always wins over the phone: "lead location, else phone" is read as
//   "the lead's stated country outranks the country their number was issued in". The phone is
//   used only when the lead has no (usable) country; likewise the company HQ only when neither.
// - Phone country: lead_pool.phone_country, else the country libphonenumber-js reads from
//   phone_e164. A country whose zones all share one offset rule (GB, NL, DE, SG, …) → that
//   zone; a multi-zone country → its most populous zone, flagged `assumed: true`. The number
//   itself is not geocoded: an AU mobile says nothing about the state.
//   Risk: an assumed zone can be hours off (AU: Perth is 2–3 h behind Sydney), so 09:00 Sydney
//   is 06:00–07:00 in Perth. The gate may want to refuse calls/SMS when `assumed` is true.
//   Within a US state the error is at most one hour, and the 09:00–20:00 window already sits an
//   hour inside the TCPA's 08:00–21:00, so a split state (FL panhandle, west TX) stays legal.
// - Every zone returned is checked with Intl.DateTimeFormat; a zone the runtime rejects is
//   skipped as if unknown. The client's timezone is the last resort: an invalid one throws.
// - lead_pool.timezone is this function's output, so it is not an input.

import ct from "countries-and-timezones";
import { parsePhoneNumberFromString } from "libphonenumber-js";
import { holidayStateNames } from "./holidays.ts";

export type TimezoneSource = "lead_location" | "phone_country" | "company_hq" | "client";

export interface LeadLocation {
  /** ISO 3166-1 alpha-2 (lead_pool.country). */
  country?: string | null;
  /** State/region as a code or a name ("VIC", "Victoria", "AU-VIC"). */
  state?: string | null;
  city?: string | null;
  /** ISO country of phone_e164 (lead_pool.phone_country). */
  phone_country?: string | null;
  /** lead_pool.phone_e164; its country is used when phone_country is empty. */
  phone_e164?: string | null;
}

export interface CompanyLocation {
  /** companies.country (the HQ). */
  country?: string | null;
  /** Not a column yet; honoured when a caller has it. */
  state?: string | null;
  city?: string | null;
}

export interface ResolvedTimezone {
  /** IANA zone, accepted by Intl. */
  timezone: string;
  source: TimezoneSource;
  /** Holiday region code (date-holidays, e.g. "VIC"), or null when unknown. */
  region: string | null;
  /** The country whose holidays apply, or null (client fallback). */
  country: string | null;
  /** True when the zone is a guess: the most populous zone of a multi-zone country. */
  assumed: boolean;
}

export class TimezoneError extends Error {
  override name = "TimezoneError";
}

/** Whether this runtime's Intl knows the zone (IANA names and links). */
export function isValidTimeZone(zone: string): boolean {
  if (!zone || typeof zone !== "string") return false;
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Tables: state → zone (keys are date-holidays' state codes), city → state, country → main zone
// ---------------------------------------------------------------------------------------------

const AU_STATE_ZONES: Record<string, string> = {
  ACT: "Australia/Sydney",
  NSW: "Australia/Sydney",
  NT: "Australia/Darwin",
  QLD: "Australia/Brisbane",
  SA: "Australia/Adelaide",
  TAS: "Australia/Hobart",
  VIC: "Australia/Melbourne",
  WA: "Australia/Perth",
};

// Split states get the zone most of their people live in.
const US_STATE_ZONES: Record<string, string> = {
  AL: "America/Chicago", AK: "America/Anchorage", AZ: "America/Phoenix", AR: "America/Chicago",
  CA: "America/Los_Angeles", CO: "America/Denver", CT: "America/New_York", DE: "America/New_York",
  DC: "America/New_York", FL: "America/New_York", GA: "America/New_York", HI: "Pacific/Honolulu",
  ID: "America/Boise", IL: "America/Chicago", IN: "America/Indiana/Indianapolis", IA: "America/Chicago",
  KS: "America/Chicago", KY: "America/New_York", LA: "America/Chicago", ME: "America/New_York",
  MD: "America/New_York", MA: "America/New_York", MI: "America/Detroit", MN: "America/Chicago",
  MS: "America/Chicago", MO: "America/Chicago", MT: "America/Denver", NE: "America/Chicago",
  NV: "America/Los_Angeles", NH: "America/New_York", NJ: "America/New_York", NM: "America/Denver",
  NY: "America/New_York", NC: "America/New_York", ND: "America/Chicago", OH: "America/New_York",
  OK: "America/Chicago", OR: "America/Los_Angeles", PA: "America/New_York", RI: "America/New_York",
  SC: "America/New_York", SD: "America/Chicago", TN: "America/Chicago", TX: "America/Chicago",
  UT: "America/Denver", VT: "America/New_York", VA: "America/New_York", WA: "America/Los_Angeles",
  WV: "America/New_York", WI: "America/Chicago", WY: "America/Denver",
};

// US territories are their own countries in date-holidays, but leads often say "US, Puerto Rico".
const US_TERRITORY_ZONES: Record<string, string> = {
  pr: "America/Puerto_Rico", puertorico: "America/Puerto_Rico",
  gu: "Pacific/Guam", guam: "Pacific/Guam",
  vi: "America/St_Thomas", usvirginislands: "America/St_Thomas", virginislands: "America/St_Thomas",
  as: "Pacific/Pago_Pago", americansamoa: "Pacific/Pago_Pago",
  mp: "Pacific/Saipan", northernmarianaislands: "Pacific/Saipan",
};

const CA_PROVINCE_ZONES: Record<string, string> = {
  AB: "America/Edmonton", BC: "America/Vancouver", MB: "America/Winnipeg", NB: "America/Moncton",
  NL: "America/St_Johns", NS: "America/Halifax", NT: "America/Edmonton", NU: "America/Iqaluit",
  ON: "America/Toronto", PE: "America/Halifax", QC: "America/Toronto", SK: "America/Regina",
  YT: "America/Whitehorse",
};

const STATE_ZONES: Record<string, Record<string, string>> = {
  AU: AU_STATE_ZONES,
  US: US_STATE_ZONES,
  CA: CA_PROVINCE_ZONES,
  NZ: { CIT: "Pacific/Chatham" },
  ES: { CN: "Atlantic/Canary" },
};

// City → state, for a lead whose state is missing; and cities that keep another state's time.
const AU_CITY_STATES: Record<string, string> = {
  sydney: "NSW", newcastle: "NSW", wollongong: "NSW", centralcoast: "NSW", brokenhill: "NSW",
  canberra: "ACT", melbourne: "VIC", geelong: "VIC", ballarat: "VIC", bendigo: "VIC",
  brisbane: "QLD", goldcoast: "QLD", sunshinecoast: "QLD", townsville: "QLD", cairns: "QLD",
  toowoomba: "QLD", adelaide: "SA", perth: "WA", fremantle: "WA", hobart: "TAS",
  launceston: "TAS", darwin: "NT", alicesprings: "NT",
};
const CITY_STATES: Record<string, Record<string, string>> = { AU: AU_CITY_STATES };
const CITY_ZONES: Record<string, Record<string, string>> = { AU: { brokenhill: "Australia/Broken_Hill" } };

/**
 * The most populous zone of each country countries-and-timezones lists with several zones, plus a
 * few single-rule countries whose merged tz name would read oddly (NL → Europe/Brussels).
 */
export const PRIMARY_ZONES: Readonly<Record<string, string>> = {
  AQ: "Antarctica/McMurdo", AR: "America/Argentina/Buenos_Aires", AU: "Australia/Sydney",
  BR: "America/Sao_Paulo", CA: "America/Toronto", CD: "Africa/Kinshasa", CL: "America/Santiago",
  CN: "Asia/Shanghai", CY: "Asia/Nicosia", DE: "Europe/Berlin", EC: "America/Guayaquil",
  ES: "Europe/Madrid", FM: "Pacific/Chuuk", GL: "America/Nuuk", ID: "Asia/Jakarta",
  KI: "Pacific/Tarawa", KZ: "Asia/Almaty", MH: "Pacific/Majuro", MN: "Asia/Ulaanbaatar",
  MX: "America/Mexico_City", MY: "Asia/Kuala_Lumpur", NZ: "Pacific/Auckland", PF: "Pacific/Tahiti",
  PG: "Pacific/Port_Moresby", PS: "Asia/Gaza", PT: "Europe/Lisbon", RU: "Europe/Moscow",
  TF: "Indian/Kerguelen", UA: "Europe/Kyiv", UM: "Pacific/Midway", US: "America/New_York",
  UZ: "Asia/Tashkent", VN: "Asia/Ho_Chi_Minh",
  NL: "Europe/Amsterdam", LU: "Europe/Luxembourg", BE: "Europe/Brussels", GB: "Europe/London",
  IE: "Europe/Dublin", SG: "Asia/Singapore", FR: "Europe/Paris", CH: "Europe/Zurich",
  AT: "Europe/Vienna", SE: "Europe/Stockholm", NO: "Europe/Oslo", DK: "Europe/Copenhagen",
  IT: "Europe/Rome", IN: "Asia/Kolkata", JP: "Asia/Tokyo", HK: "Asia/Hong_Kong",
};

// ---------------------------------------------------------------------------------------------
// Normalisation
// ---------------------------------------------------------------------------------------------

/** Lower case, accents and everything but letters and digits removed: "Québec" → "quebec". */
function squash(s: string): string {
  return s.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase().replace(/[^a-z0-9]/g, "");
}

function countryCode(raw: string | null | undefined): string | null {
  if (!raw) return null;
  const c = raw.trim().toUpperCase();
  return /^[A-Z]{2}$/.test(c) ? c : null;
}

// Names leads use that date-holidays doesn't (its German states are in German, NZ's end in
// "Province"). Keys are squashed names; values are date-holidays codes.
const STATE_ALIASES: Record<string, Record<string, string>> = {
  AU: { tassie: "TAS", canberra: "ACT" },
  US: { washingtondc: "DC", districtofcolumbia: "DC" },
  GB: { cymru: "WLS", ulster: "NIR" },
  DE: {
    bavaria: "BY", lowersaxony: "NI", northrhinewestphalia: "NW", saxony: "SN", saxonyanhalt: "ST",
    thuringia: "TH", hesse: "HE", rhinelandpalatinate: "RP", bremen: "HB", hamburg: "HH",
    mecklenburgwesternpomerania: "MV", badenwuerttemberg: "BW",
  },
  NZ: { auckland: "AUK", wellington: "WGN", otago: "OTA", hawkesbay: "HKB", manawatuwhanganui: "MWT" },
  ES: { canaryislands: "CN", canarias: "CN" },
};

const stateIndexCache = new Map<string, Map<string, string>>();

/** squashed code/name → date-holidays code, for one country. */
function stateIndex(country: string): Map<string, string> {
  const cached = stateIndexCache.get(country);
  if (cached) return cached;
  const index = new Map<string, string>();
  for (const lang of [undefined, "en"]) {
    for (const [code, name] of Object.entries(holidayStateNames(country, lang))) {
      index.set(squash(code), code);
      index.set(squash(name), code);
      // "Auckland Province", "Hansestadt Bremen", "Département Moselle" → also the bare name.
      const bare = name.replace(/\b(province|region|state)\b|^hansestadt\s+|^département\s+/giu, "");
      if (squash(bare)) index.set(squash(bare), code);
    }
  }
  for (const [alias, code] of Object.entries(STATE_ALIASES[country] ?? {})) index.set(alias, code);
  stateIndexCache.set(country, index);
  return index;
}

/**
 * The date-holidays region code for a lead's state ("Victoria", "VIC", "vic", "AU-VIC" → "VIC"),
 * or null when the country has no such state. Country is ISO alpha-2, any case.
 */
export function holidayRegionFor(country: string | null | undefined, state: string | null | undefined): string | null {
  const c = countryCode(country);
  if (!c || !state) return null;
  let s = state.trim();
  // ISO 3166-2 form: "AU-VIC", "US-TX", "GB-SCT".
  if (s.toUpperCase().startsWith(`${c}-`)) s = s.slice(3);
  const key = squash(s);
  if (!key) return null;
  return stateIndex(c).get(key) ?? null;
}

// ---------------------------------------------------------------------------------------------
// Country zones
// ---------------------------------------------------------------------------------------------

interface CountryZone {
  zone: string;
  assumed: boolean;
}

/**
 * The zone for a whole country: the one zone (or one offset rule) it has, else its most populous
 * zone with `assumed: true`; null for a country nobody knows.
 */
export function countryZone(country: string | null | undefined): CountryZone | null {
  const c = countryCode(country);
  if (!c) return null;
  const info = ct.getCountry(c as Parameters<typeof ct.getCountry>[0]);
  const zones = info?.timezones ?? [];
  const preferred = PRIMARY_ZONES[c];
  if (zones.length === 0) return preferred && isValidTimeZone(preferred) ? { zone: preferred, assumed: false } : null;
  const single = zones.length === 1 || sharesOneRule(zones);
  const zone = preferred ?? (single ? zones[0] : null);
  if (!zone || !isValidTimeZone(zone)) return null;
  return { zone, assumed: !single };
}

/** Whether every zone has the same standard and daylight offsets (DE: Berlin and Büsingen). */
function sharesOneRule(zones: string[]): boolean {
  const first = ct.getTimezone(zones[0]);
  if (!first) return false;
  return zones.every((z) => {
    const tz = ct.getTimezone(z);
    return tz !== null && tz.utcOffset === first.utcOffset && tz.dstOffset === first.dstOffset;
  });
}

// ---------------------------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------------------------

interface Located {
  timezone: string;
  region: string | null;
  country: string;
  assumed: boolean;
}

function stateZone(country: string, region: string | null, rawState: string | null | undefined): string | null {
  // A table lists every state of AU/US/CA and only the exceptions of NZ/ES (Chatham, Canaries):
  // any other known state of those keeps the country's main zone.
  const table = STATE_ZONES[country];
  if (region && table) return table[region] ?? PRIMARY_ZONES[country] ?? null;
  if (country === "US" && rawState) {
    let s = rawState.trim();
    if (s.toUpperCase().startsWith("US-")) s = s.slice(3);
    return US_TERRITORY_ZONES[squash(s)] ?? null;
  }
  return null;
}

function locate(place: { country?: string | null; state?: string | null; city?: string | null } | null | undefined): Located | null {
  if (!place) return null;
  const country = countryCode(place.country);
  if (!country) return null;
  const city = place.city ? squash(place.city) : "";
  let region = holidayRegionFor(country, place.state);
  if (!region && city) region = CITY_STATES[country]?.[city] ?? null;

  const candidates = [CITY_ZONES[country]?.[city], stateZone(country, region, place.state)];
  for (const zone of candidates) {
    if (zone && isValidTimeZone(zone)) return { timezone: zone, region, country, assumed: false };
  }
  const whole = countryZone(country);
  if (!whole) return null;
  return { timezone: whole.zone, region, country, assumed: whole.assumed };
}

/** The country an E.164 number was issued in (libphonenumber-js), or null. */
function countryOfNumber(e164: string | null | undefined): string | null {
  if (!e164) return null;
  return parsePhoneNumberFromString(e164.trim())?.country ?? null;
}

/**
 * The timezone a lead's sends are timed in (product.md §6): lead location, else phone country,
 * else company HQ, else the client's timezone. Throws TimezoneError when it comes to the client's
 * timezone and that is not a zone Intl knows.
 */
export function resolveTimezone(
  lead: LeadLocation,
  company: CompanyLocation | null | undefined,
  clientTimezone: string,
): ResolvedTimezone {
  const fromLead = locate(lead);
  if (fromLead) return { ...fromLead, source: "lead_location" };

  const phoneCountry = countryCode(lead.phone_country) ?? countryOfNumber(lead.phone_e164);
  const fromPhone = countryZone(phoneCountry);
  if (phoneCountry && fromPhone) {
    return { timezone: fromPhone.zone, source: "phone_country", region: null, country: phoneCountry, assumed: fromPhone.assumed };
  }

  const fromCompany = locate(company);
  if (fromCompany) return { ...fromCompany, source: "company_hq" };

  if (!isValidTimeZone(clientTimezone)) {
    throw new TimezoneError(`client timezone "${clientTimezone}" is not a valid IANA zone`);
  }
  return { timezone: clientTimezone, source: "client", region: null, country: null, assumed: false };
}
