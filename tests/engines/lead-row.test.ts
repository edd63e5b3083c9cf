// Validating and normalising one import row: header aliases, emails, phones, LinkedIn, websites,
// countries, limits and the channel rule; property-based checks for the dedup keys.
import fc from "fast-check";
import { getCountries, getExampleNumber, parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js";
import examples from "libphonenumber-js/mobile/examples";
import { describe, expect, it } from "vitest";
import {
  dedupKeys, fieldForHeader, hasChannelColumn, normalizeCountry, normalizePhone, validateLeadRow, type LeadRowResult,
} from "../../shared/engines/lead-row.ts";

function accepted(r: LeadRowResult) {
  if (!r.ok) throw new Error(`rejected: ${r.reason} (${r.field}): ${r.message}`);
  return r.lead;
}

function rejection(r: LeadRowResult) {
  if (r.ok) throw new Error("accepted");
  return { reason: r.reason, field: r.field };
}

describe("headers", () => {
  it("matches common spellings without case, spaces, dashes or underscores", () => {
    const cases: Array<[string, string]> = [
      ["E-mail", "email"], ["Email Address", "email"], ["email_address", "email"], ["EMAIL", "email"],
      ["First Name", "first_name"], ["firstname", "first_name"], ["first_name", "first_name"],
      ["Last Name", "last_name"], ["Surname", "last_name"], ["Job Title", "title"], ["title", "title"],
      ["Company", "company_name"], ["Organization", "company_name"], ["company_name", "company_name"],
      ["Website", "company_domain"], ["Domain", "company_domain"], ["company_domain", "company_domain"],
      ["LinkedIn", "linkedin_url"], ["LinkedIn URL", "linkedin_url"], ["linkedin_url", "linkedin_url"],
      ["Mobile", "phone"], ["Phone Number", "phone"], ["phone", "phone"],
      ["Country", "country"], ["City", "city"], ["State", "state"], ["Full Name", "full_name"],
    ];
    for (const [header, field] of cases) expect(fieldForHeader(header), header).toBe(field);
    expect(fieldForHeader("favourite colour")).toBeNull();
    expect(hasChannelColumn(["First Name", "Company", "Mobile"])).toBe(true);
    expect(hasChannelColumn(["First Name", "Company"])).toBe(false);
  });
});

describe("validateLeadRow", () => {
  it("normalises a full row from a CRM export", () => {
    const lead = accepted(validateLeadRow({
      "E-mail": "  Sam.Lee@Acme.com.au ", "First Name": " Sam ", "Last Name": "Lee", "Job Title": "Head  of Growth",
      Company: "Acme Pty Ltd", Website: "https://www.acme.com.au/", "LinkedIn URL": "au.linkedin.com/in/Sam-Lee/",
      Mobile: "0412 345 678", Country: "Australia", City: "Sydney", State: "NSW",
    }));
    expect(lead).toEqual({
      email: "Sam.Lee@Acme.com.au", first_name: "Sam", last_name: "Lee", title: "Head of Growth", company_name: "Acme Pty Ltd",
      company_domain: "acme.com.au", linkedin_url: "https://www.linkedin.com/in/sam-lee", linkedin_key: "https://www.linkedin.com/in/sam-lee",
      phone: "0412 345 678", phone_e164: "+61412345678", phone_country: "AU", country: "AU", state: "NSW", city: "Sydney",
    });
    expect(dedupKeys(lead)).toEqual({ email: "sam.lee@acme.com.au", linkedin: "https://www.linkedin.com/in/sam-lee", phone: "+61412345678" });
  });

  it("accepts a row with only one channel, and splits a full name", () => {
    expect(accepted(validateLeadRow({ phone: "+1 (415) 555-2671" })).phone_e164).toBe("+14155552671");
    expect(accepted(validateLeadRow({ linkedin: "https://www.linkedin.com/in/abc" })).linkedin_key).toBe("https://www.linkedin.com/in/abc");
    const named = accepted(validateLeadRow({ email: "a@acme.io", name: "Mary Jane Watson" }));
    expect([named.first_name, named.last_name]).toEqual(["Mary Jane", "Watson"]);
  });

  it("rejects with a stable reason and the field to fix", () => {
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ email: "not-an-email" }, "invalid_email", "email"],
      [{ email: "a@b" }, "invalid_email", "email"],
      [{ email: "a..b@acme.com" }, "invalid_email", "email"],
      [{ email: "\"quoted\"@acme.com" }, "invalid_email", "email"],
      [{ email: "josé@acme.com" }, "invalid_email", "email"],
      [{ email: `${"a".repeat(65)}@acme.com` }, "invalid_email", "email"],
      [{ email: "sam@example.com" }, "placeholder_domain", "email"],
      [{ email: "sam@yourcompany.com" }, "placeholder_domain", "email"],
      [{ email: "sam@acme.test" }, "placeholder_domain", "email"],
      [{ email: "sam@acme.io", phone: "12345", country: "AU" }, "invalid_phone", "phone"],
      [{ email: "sam@acme.io", phone: "0412 345 678" }, "invalid_phone", "phone"],
      [{ email: "sam@acme.io", phone: "call me maybe" }, "invalid_phone", "phone"],
      [{ email: "sam@acme.io", phone: "+49 10 00" }, "invalid_phone", "phone"], // valid in DE, but too short to store
      [{ email: "sam@acme.io", linkedin_url: "https://www.linkedin.com/company/acme" }, "invalid_linkedin_url", "linkedin_url"],
      [{ email: "sam@acme.io", website: "not a website" }, "invalid_website", "company_domain"],
      [{ email: "sam@acme.io", website: "https://example.org" }, "placeholder_domain", "company_domain"],
      [{ email: "sam@acme.io", website: "hugedomains.com" }, "parked_domain", "company_domain"],
      [{ email: "sam@acme.io", country: "Narnia" }, "invalid_country", "country"],
      [{ email: "sam@acme.io", first_name: "x".repeat(101) }, "too_long", "first_name"],
      [{ email: "sam@acme.io", title: "x".repeat(201) }, "too_long", "title"],
      [{ email: "sam@acme.io", first_name: { a: 1 } }, "invalid_value", "first_name"],
      [{ first_name: "Sam", company: "Acme" }, "no_channel", "email"],
      [{ email: "  ", phone: "n/a", linkedin: "-" }, "no_channel", "email"],
      [{}, "no_channel", "email"],
    ];
    for (const [row, reason, field] of cases) expect(rejection(validateLeadRow(row)), JSON.stringify(row)).toEqual({ reason, field });
  });

  it("uses the row's country for national numbers, and recovers a number that lost its +", () => {
    expect(accepted(validateLeadRow({ phone: "(02) 9374 4000", country: "AU" }))).toMatchObject({ phone_e164: "+61293744000", phone_country: "AU" });
    expect(accepted(validateLeadRow({ phone: "020 7946 0958", country: "United Kingdom" }))).toMatchObject({ phone_e164: "+442079460958", country: "GB" });
    expect(accepted(validateLeadRow({ phone: "61412345678" }))).toMatchObject({ phone_e164: "+61412345678", phone_country: "AU" });
    // a number from another country than the row's keeps its own country
    expect(accepted(validateLeadRow({ phone: "+64 21 123 4567", country: "AU" }))).toMatchObject({ phone_e164: "+64211234567", phone_country: "NZ", country: "AU" });
  });

  it("cleans text: control characters, runs of spaces, blank markers", () => {
    const lead = accepted(validateLeadRow({ email: "a@acme.io", first_name: "Ann\u0000a", last_name: "  de   Vries ", city: "N/A", title: "null" }));
    expect([lead.first_name, lead.last_name, lead.city, lead.title]).toEqual(["Ann a", "de Vries", null, null]);
  });

  it("countries: ISO-2 in any case and common names", () => {
    const cases: Array<[string, string | null]> = [
      ["au", "AU"], ["AU", "AU"], ["Australia", "AU"], ["new zealand", "NZ"], ["UK", "GB"], ["United Kingdom", "GB"], ["USA", "US"],
      ["United States", "US"], ["Deutschland", null], ["Germany", "DE"], ["Côte d’Ivoire", "CI"], ["NA", "NA"], ["ZZ", null], ["A", null],
    ];
    for (const [raw, code] of cases) expect(normalizeCountry(raw), raw).toBe(code);
  });
});

describe("properties", () => {
  const local = fc.stringMatching(/^[a-z0-9](?:[a-z0-9._+-]{0,20}[a-z0-9])?$/).filter((s) => !s.includes(".."));
  const domain = fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,12}[a-z0-9]$/), fc.constantFrom("com", "com.au", "io", "co.nz", "org"))
    .map(([l, t]) => `${l}.${t}`)
    .filter((d) => !["domain.com", "company.com", "test.com", "email.com", "none.com", "na.com"].includes(d));
  const casing = (s: string, flips: boolean[]) => [...s].map((ch, i) => (flips[i % flips.length] ? ch.toUpperCase() : ch)).join("");
  const space = fc.constantFrom("", " ", "  ", "\t", " \u00a0");

  it("case and whitespace variants of an email dedupe to the same key", () => {
    fc.assert(
      fc.property(local, domain, fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }), space, space, (l, d, flips, before, after) => {
        const canonical = accepted(validateLeadRow({ email: `${l}@${d}` }));
        const variant = accepted(validateLeadRow({ email: `${before}${casing(`${l}@${d}`, flips)}${after}` }));
        expect(dedupKeys(variant).email).toBe(dedupKeys(canonical).email);
        expect(dedupKeys(variant).email).toBe(`${l}@${d}`);
        expect(variant.email).toBe(variant.email!.trim());
      }),
      { numRuns: 300 },
    );
  });

  it("any valid E.164 number round-trips, whatever format it arrives in", () => {
    const countries = getCountries().filter((c) => getExampleNumber(c, examples)?.isValid());
    fc.assert(
      fc.property(fc.constantFrom(...countries), fc.constantFrom("E.164", "INTERNATIONAL", "NATIONAL", "RFC3966"), (country, format) => {
        const example = getExampleNumber(country as CountryCode, examples)!;
        const written = format === "RFC3966" ? example.format("INTERNATIONAL").replace(/ /g, "-") : example.format(format as "E.164");
        const r = normalizePhone(written, format === "NATIONAL" ? country : null);
        expect(r).toEqual({ e164: example.number, country: expect.any(String) });
        // and the E.164 form is a fixed point
        expect(normalizePhone(example.number, null)).toEqual(r);
      }),
      { numRuns: 400 },
    );
  });

  it("any accepted phone normalises to itself again (E.164 is a fixed point)", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^\+?[0-9 ()-]{6,18}$/), fc.constantFrom<string | null>(null, "AU", "US", "GB", "NZ"), (raw, country) => {
        const r = normalizePhone(raw, country);
        if ("error" in r) return;
        expect(r.e164).toMatch(/^\+[1-9][0-9]{6,14}$/);
        expect(parsePhoneNumberFromString(r.e164)?.number).toBe(r.e164);
        expect(normalizePhone(r.e164, null)).toEqual(r);
      }),
      { numRuns: 500 },
    );
  });

  it("validating is idempotent: an accepted lead validates to itself", () => {
    const row = fc.record({
      email: fc.tuple(local, domain).map(([l, d]) => `${l}@${d}`),
      first_name: fc.string({ maxLength: 20 }),
      last_name: fc.string({ maxLength: 20 }),
      phone: fc.constantFrom("0412 345 678", "+61 2 9374 4000", "(02) 9374-4000", ""),
      linkedin_url: fc.stringMatching(/^[a-z0-9]{3,20}$/).map((s) => `au.linkedin.com/in/${s}/`),
      company_domain: fc.constantFrom("https://www.acme.com.au/", "acme.io", ""),
      country: fc.constantFrom("AU", "australia", ""),
    });
    fc.assert(
      fc.property(row, (r) => {
        const first = validateLeadRow(r);
        if (!first.ok) return;
        const { linkedin_key: _k, phone_e164: _p, phone_country: _c, ...columns } = first.lead;
        const again = validateLeadRow({ ...columns, country: columns.country ?? "AU" });
        expect(again.ok).toBe(true);
        if (again.ok) expect(dedupKeys(again.lead)).toEqual(dedupKeys(first.lead));
      }),
      { numRuns: 300 },
    );
  });

  it("never throws, whatever a row holds", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom("email", "phone", "linkedin", "website", "country", "name", "title", "x"), fc.oneof(fc.string(), fc.integer(), fc.constant(null))), (r) => {
        const out = validateLeadRow(r);
        expect(typeof out.ok).toBe("boolean");
      }),
      { numRuns: 500 },
    );
  });
});
