// Validates and normalises one import row into lead_pool columns: header aliases, email syntax,
// phones to E.164, LinkedIn and website through url_validator, countries to ISO-2. Pure.
import { isSupportedCountry, parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js";
import { classifyDomain, normalizeLinkedInUrl, normalizeWebsite } from "./url-validator.ts";

export const LEAD_FIELDS = [
  "email", "first_name", "last_name", "title", "company_name", "company_domain", "linkedin_url",
  "phone", "country", "city", "state",
] as const;
export type LeadField = (typeof LEAD_FIELDS)[number];
/** A row's values by lead field, after header aliases; absent or blank = undefined. */
export type LeadFields = Partial<Record<LeadField, string>>;

/** The lead_pool columns an accepted row fills. */
export interface ImportLead {
  email: string | null;
  first_name: string | null;
  last_name: string | null;
  title: string | null;
  company_name: string | null;
  company_domain: string | null;
  linkedin_url: string | null;
  linkedin_key: string | null;
  phone: string | null;
  phone_e164: string | null;
  phone_country: string | null;
  country: string | null;
  state: string | null;
  city: string | null;
}

/** Stable codes for the report; the message says the same for a person. */
export type RejectReason =
  | "invalid_email" | "placeholder_domain" | "parked_domain" | "invalid_phone" | "invalid_linkedin_url"
  | "invalid_website" | "invalid_country" | "invalid_value" | "too_long" | "no_channel";

export type LeadRowResult =
  | { ok: true; lead: ImportLead }
  | { ok: false; reason: RejectReason; field: LeadField; message: string };

// Header spellings seen in CRM and list-vendor exports, compared without case, spaces, "_", "-" or ".".
const ALIASES: Record<string, LeadField | "full_name"> = {
  email: "email", emailaddress: "email", workemail: "email", businessemail: "email", mail: "email",
  firstname: "first_name", first: "first_name", givenname: "first_name", forename: "first_name",
  lastname: "last_name", last: "last_name", surname: "last_name", familyname: "last_name",
  name: "full_name", fullname: "full_name", contactname: "full_name",
  title: "title", jobtitle: "title", position: "title", role: "title",
  companyname: "company_name", company: "company_name", organization: "company_name",
  organisation: "company_name", organizationname: "company_name", employer: "company_name", account: "company_name",
  companydomain: "company_domain", website: "company_domain", domain: "company_domain",
  companywebsite: "company_domain", websiteurl: "company_domain", companyurl: "company_domain", web: "company_domain",
  linkedinurl: "linkedin_url", linkedin: "linkedin_url", linkedinprofile: "linkedin_url",
  linkedinprofileurl: "linkedin_url", personlinkedinurl: "linkedin_url", linkedinurlperson: "linkedin_url",
  phone: "phone", mobile: "phone", phonenumber: "phone", mobilephone: "phone", mobilenumber: "phone",
  cell: "phone", cellphone: "phone", telephone: "phone", tel: "phone", directphone: "phone", workphone: "phone",
  country: "country", countrycode: "country",
  city: "city", town: "city",
  state: "state", region: "state", province: "state", county: "state",
};

const headerCache = new Map<string, LeadField | "full_name" | null>();

/** The lead field a column header means ("E-mail", "First Name", "company" …), or null. */
export function fieldForHeader(header: string): LeadField | "full_name" | null {
  let field = headerCache.get(header);
  if (field === undefined) {
    field = ALIASES[header.trim().toLowerCase().replace(/[\s_.\-]+/g, "")] ?? null;
    if (headerCache.size < 10_000) headerCache.set(header, field);
  }
  return field;
}

/** True when headers can carry at least one channel (email, phone or LinkedIn). */
export function hasChannelColumn(headers: Iterable<string>): boolean {
  for (const h of headers) {
    const f = fieldForHeader(h);
    if (f === "email" || f === "phone" || f === "linkedin_url") return true;
  }
  return false;
}

/**
 * Maps a raw record (CSV row by header, JSON object) to lead fields. A field named twice keeps
 * its first non-blank value; "name" fills first/last name only when those are not given.
 */
export function mapRecord(record: Record<string, unknown>): LeadFields | { invalid: string } {
  const out: LeadFields = {};
  let fullName: string | undefined;
  for (const key in record) {
    const field = fieldForHeader(key);
    if (!field) continue;
    const raw = record[key];
    if (raw === null || raw === undefined) continue;
    let value: string;
    if (typeof raw === "string") value = raw;
    else if (typeof raw === "number" || typeof raw === "bigint" || typeof raw === "boolean") value = String(raw);
    else return { invalid: key };
    if (field === "full_name") fullName ??= value;
    else if (out[field] === undefined || !out[field]!.trim()) out[field] = value;
  }
  if (fullName !== undefined && out.first_name === undefined && out.last_name === undefined) {
    const parts = clean(fullName)?.split(" ");
    if (parts) {
      out.last_name = parts.length > 1 ? parts.pop() : undefined;
      out.first_name = parts.join(" ");
    }
  }
  return out;
}

// What spreadsheets hold in a cell that has nothing: treat as absent, not as a bad value.
// ("na" and "nil" stay: Na is a surname and NA is Namibia.)
const BLANK = new Set(["", "-", "--", "n/a", "none", "null", "undefined", "unknown", "#n/a"]);

// deno-lint-ignore no-control-regex
const NEEDS_CLEANING = /[\u0000-\u001f\u007f]|^\s|\s$|\s\s/;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]+/g;

/** Trims, turns control characters (NUL breaks Postgres text) into spaces, collapses runs of space. */
function clean(value: string | undefined): string | null {
  if (value === undefined || value === "") return null;
  let v = value;
  // the usual cell needs none of it: one test instead of three rewrites
  if (NEEDS_CLEANING.test(v)) v = v.replace(CONTROL, " ").trim().replace(/\s{2,}/g, " ");
  return v.length <= 9 && BLANK.has(v.toLowerCase()) ? null : v;
}

// Limits match the leads API (UpdateLeadSchema) so an imported lead can be edited as it is.
const MAX: Record<LeadField, number> = {
  email: 254, first_name: 100, last_name: 100, title: 200, company_name: 200, company_domain: 500,
  linkedin_url: 500, phone: 50, country: 100, city: 100, state: 100,
};

// A pragmatic RFC 5322 subset: dot-atom local part (no quoted strings, no comments), a DNS
// domain with a letters-only TLD, ASCII only (so lower() in Postgres and in TS agree on the key).
const EMAIL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})$/;

// ---- countries ---------------------------------------------------------------------------------

// Territories with an ISO code but no phone numbering of their own.
const EXTRA_CODES = new Set(["AQ", "BV", "GS", "HM", "PN", "TF", "UM"]);
// Names people write that Intl's English names do not cover (or that ICU versions spell differently).
const COUNTRY_ALIASES: Record<string, string> = {
  usa: "US", "u.s.": "US", "u.s.a.": "US", "united states of america": "US", america: "US",
  uk: "GB", "u.k.": "GB", "great britain": "GB", britain: "GB", england: "GB", scotland: "GB", wales: "GB",
  "northern ireland": "GB", uae: "AE", holland: "NL", "the netherlands": "NL", "czech republic": "CZ",
  korea: "KR", "republic of korea": "KR", russia: "RU", "russian federation": "RU", turkey: "TR",
  "hong kong": "HK", macau: "MO", macao: "MO", "ivory coast": "CI", vietnam: "VN", "viet nam": "VN",
  taiwan: "TW", palestine: "PS", burma: "MM", myanmar: "MM", "new zealand": "NZ", australia: "AU",
};

function fold(name: string): string {
  return name.normalize("NFD").replace(/\p{M}/gu, "").replace(/[’`]/g, "'").toLowerCase().trim();
}

let countryNames: Map<string, string> | undefined;

/** English country names → ISO-2, built once from Intl (when the runtime has it) and the aliases. */
function countryByName(): Map<string, string> {
  if (countryNames) return countryNames;
  const names = new Map<string, string>(Object.entries(COUNTRY_ALIASES));
  try {
    const display = new Intl.DisplayNames(["en"], { type: "region", fallback: "none" });
    for (let a = 65; a <= 90; a++) {
      for (let b = 65; b <= 90; b++) {
        const code = String.fromCharCode(a, b);
        if (!isCountryCode(code)) continue;
        const name = display.of(code);
        if (name) {
          names.set(fold(name), code);
          // "Hong Kong SAR China", "Myanmar (Burma)": also the short form before the qualifier
          const short = fold(name.replace(/\s*\(.*\)$/, "").replace(/\s+SAR China$/, ""));
          if (!names.has(short)) names.set(short, code);
        }
      }
    }
  } catch {
    // no Intl.DisplayNames: ISO codes and the aliases still work
  }
  countryNames = names;
  return names;
}

function isCountryCode(code: string): boolean {
  return isSupportedCountry(code) || EXTRA_CODES.has(code);
}

const countryMemo = new Map<string, string | null>();

/** "au", "AU", "Australia", "United Kingdom", "UK" → ISO-2; null when not recognised. */
export function normalizeCountry(raw: string): string | null {
  // a file repeats a handful of spellings thousands of times
  let code = countryMemo.get(raw);
  if (code === undefined) {
    code = countryOf(raw);
    if (countryMemo.size < 1_000) countryMemo.set(raw, code);
  }
  return code;
}

function countryOf(raw: string): string | null {
  const v = raw.trim();
  if (/^[A-Za-z]{2}$/.test(v)) {
    const code = v.toUpperCase();
    if (code === "UK") return "GB";
    return isCountryCode(code) ? code : null;
  }
  return countryByName().get(fold(v)) ?? null;
}

// ---- phones ------------------------------------------------------------------------------------

const E164 = /^\+[1-9][0-9]{6,14}$/;

/** A phone in any common format → E.164 and its country, using the row's country as default. */
export function normalizePhone(raw: string, country: string | null): { e164: string; country: string | null } | { error: string } {
  const defaultCountry = country && isSupportedCountry(country) ? (country as CountryCode) : undefined;
  // Parsing the whole text as the number is much cheaper than searching the text for one; only
  // when that fails (a label around it, say) search.
  let parsed = parsePhoneNumberFromString(raw, { defaultCountry, extract: false }) ?? parsePhoneNumberFromString(raw, defaultCountry);
  let valid = parsed?.isValid() ?? false;
  if (!valid) {
    // Spreadsheets drop the "+": "61412345678" is +61 412 345 678 when it is not a national number.
    const digits = raw.replace(/[\s().-]/g, "");
    if (/^[1-9][0-9]{7,14}$/.test(digits)) {
      const international = parsePhoneNumberFromString(`+${digits}`);
      if (international?.isValid()) [parsed, valid] = [international, true];
    }
  }
  if (!parsed) {
    return { error: !defaultCountry && !raw.trim().startsWith("+") ? "no country code: write it as +<code> … or give the row a country" : "not a phone number" };
  }
  if (!valid) return { error: `not a valid ${parsed.country ?? "+" + parsed.countryCallingCode} phone number` };
  // Valid short numbers (a 4-digit German extension, say) are not a number to call, and the pool
  // only takes full ones (lead_pool.phone_e164: + and 7 to 15 digits).
  if (!E164.test(parsed.number)) return { error: "too short for a full international number" };
  return { e164: parsed.number, country: parsed.country ?? null };
}

// ---- the row -----------------------------------------------------------------------------------

function reject(reason: RejectReason, field: LeadField, message: string): LeadRowResult {
  return { ok: false, reason, field, message };
}

/** Validates lead fields already mapped from headers (the importer's hot path). */
export function normalizeLeadFields(f: LeadFields): LeadRowResult {
  const v: Record<LeadField, string | null> = {
    email: clean(f.email), first_name: clean(f.first_name), last_name: clean(f.last_name), title: clean(f.title),
    company_name: clean(f.company_name), company_domain: clean(f.company_domain), linkedin_url: clean(f.linkedin_url),
    phone: clean(f.phone), country: clean(f.country), city: clean(f.city), state: clean(f.state),
  };
  for (const field of LEAD_FIELDS) {
    const value = v[field];
    if (value !== null && value.length > MAX[field]) {
      return reject("too_long", field, `${field} is longer than ${MAX[field]} characters`);
    }
  }

  let country: string | null = null;
  if (v.country) {
    country = normalizeCountry(v.country);
    if (!country) return reject("invalid_country", "country", `"${v.country}" is not a country name or ISO 3166 code`);
  }

  const email = v.email ?? null;
  if (email) {
    const m = EMAIL.exec(email);
    if (!m || email.indexOf("@") > 64) return reject("invalid_email", "email", "not an email address");
    const domain = m[1].toLowerCase();
    if (classifyDomain(domain) === "placeholder") {
      return reject("placeholder_domain", "email", `${domain} is a placeholder, not a real mailbox domain`);
    }
  }

  let phoneE164: string | null = null;
  let phoneCountry: string | null = null;
  if (v.phone) {
    const p = normalizePhone(v.phone, country);
    if ("error" in p) return reject("invalid_phone", "phone", p.error);
    phoneE164 = p.e164;
    phoneCountry = p.country;
  }

  let linkedinKey: string | null = null;
  if (v.linkedin_url) {
    const l = normalizeLinkedInUrl(v.linkedin_url);
    if ("error" in l) return reject("invalid_linkedin_url", "linkedin_url", l.error);
    linkedinKey = l.key;
  }

  let domain: string | null = null;
  if (v.company_domain) {
    const w = normalizeWebsite(v.company_domain);
    if ("error" in w) return reject("invalid_website", "company_domain", w.error);
    const kind = classifyDomain(w.domain);
    if (kind === "placeholder") return reject("placeholder_domain", "company_domain", `${w.domain} is a placeholder domain`);
    if (kind === "parked") return reject("parked_domain", "company_domain", `${w.domain} is a domain parking or for-sale host`);
    domain = w.domain;
  }

  if (!email && !phoneE164 && !linkedinKey) {
    return reject("no_channel", "email", "no usable channel: give an email, a phone or a LinkedIn profile URL");
  }

  return {
    ok: true,
    lead: {
      email,
      first_name: v.first_name ?? null,
      last_name: v.last_name ?? null,
      title: v.title ?? null,
      company_name: v.company_name ?? null,
      company_domain: domain,
      // The canonical URL: every import stores the same form for the same profile.
      linkedin_url: linkedinKey,
      linkedin_key: linkedinKey,
      phone: v.phone ?? null,
      phone_e164: phoneE164,
      phone_country: phoneCountry,
      country,
      state: v.state ?? null,
      city: v.city ?? null,
    },
  };
}

/** Validates one raw row (keys are column headers or JSON keys, matched through the aliases). */
export function validateLeadRow(record: Record<string, unknown>): LeadRowResult {
  const mapped = mapRecord(record);
  if ("invalid" in mapped) {
    const field = fieldForHeader(mapped.invalid);
    return reject("invalid_value", field === "full_name" || !field ? "first_name" : field, `${mapped.invalid} must be text, not a list or an object`);
  }
  return normalizeLeadFields(mapped);
}

/** The dedup keys of an accepted lead, as the database computes them (email_normalized = lower(btrim(email))). */
export function dedupKeys(lead: ImportLead): { email: string | null; linkedin: string | null; phone: string | null } {
  return { email: lead.email ? lead.email.toLowerCase() : null, linkedin: lead.linkedin_key, phone: lead.phone_e164 };
}
