// The url_validator engine: LinkedIn profile keys, website domains, placeholder and parked
// domains and pages; with property-based checks that normalising is idempotent.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  classifyDomain, classifyPageHtml, normalizeLinkedInUrl, normalizeWebsite,
} from "../../shared/engines/url-validator.ts";

const key = (raw: string) => {
  const r = normalizeLinkedInUrl(raw);
  return "key" in r ? r.key : `error: ${r.error}`;
};

describe("normalizeLinkedInUrl", () => {
  it("gives every common form of a profile URL the same key", () => {
    const forms = [
      "https://www.linkedin.com/in/jane-doe-1a2b3c",
      "http://www.linkedin.com/in/jane-doe-1a2b3c/",
      "https://linkedin.com/in/Jane-Doe-1a2b3c",
      "www.linkedin.com/in/jane-doe-1a2b3c",
      "linkedin.com/in/jane-doe-1a2b3c?trk=public_profile&originalSubdomain=au",
      "https://au.linkedin.com/in/jane-doe-1a2b3c/",
      "https://uk.linkedin.com/in/jane-doe-1a2b3c#experience",
      "HTTPS://WWW.LINKEDIN.COM/IN/JANE-DOE-1A2B3C",
      "  https://www.linkedin.com/in/jane-doe-1a2b3c/details/experience/  ",
      "https://m.linkedin.com/in/jane-doe-1a2b3c",
    ];
    for (const f of forms) expect(key(f), f).toBe("https://www.linkedin.com/in/jane-doe-1a2b3c");
  });

  it("keeps non-Latin profile names, percent-encoded the one way", () => {
    expect(key("https://www.linkedin.com/in/josé-garcía")).toBe("https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa");
    expect(key("https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa/")).toBe("https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa");
    expect(key("https://www.linkedin.com/in/JOS%c3%89-GARC%C3%8DA")).toBe("https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa");
  });

  it("rejects company pages, other paths, other hosts and non-web schemes, with a reason", () => {
    expect(key("https://www.linkedin.com/company/acme-pty-ltd/")).toMatch(/company page/);
    expect(key("https://www.linkedin.com/school/unsw/")).toMatch(/school page/);
    expect(key("https://www.linkedin.com/pub/jane-doe/1/2/3")).toMatch(/\/pub\//);
    expect(key("https://www.linkedin.com/feed/")).toMatch(/not a profile URL/);
    expect(key("https://www.linkedin.com/in/")).toMatch(/missing/);
    expect(key("https://linkedin.com.evil.example/in/jane")).toMatch(/not a linkedin\.com URL/);
    expect(key("https://notlinkedin.com/in/jane")).toMatch(/not a linkedin\.com URL/);
    expect(key("ftp://linkedin.com/in/jane")).toMatch(/not a web URL/);
    expect(key("https://www.linkedin.com/in/jane doe")).toMatch(/not a URL/);
    expect(key("https://www.linkedin.com/in/jane%ZZ")).toMatch(/percent-encoding/);
    expect(key("https://www.linkedin.com/in/<script>")).toMatch(/characters/);
    expect(key("")).toMatch(/empty/);
  });

  it("property: the key of any form of a profile URL is the same, and normalising a key is idempotent", () => {
    const slug = fc.stringMatching(/^[a-z0-9][a-z0-9-]{1,40}[a-z0-9]$/);
    const prefix = fc.constantFrom("https://www.", "http://www.", "https://", "", "www.", "https://au.", "http://de.", "https://m.");
    const suffix = fc.constantFrom("", "/", "?trk=abc", "/?x=1#y", "/details/skills/", "#about");
    fc.assert(
      fc.property(slug, prefix, suffix, fc.boolean(), (s, p, x, upper) => {
        const raw = `${p}linkedin.com/in/${upper ? s.toUpperCase() : s}${x}`;
        const k = key(raw);
        expect(k).toBe(`https://www.linkedin.com/in/${s}`);
        expect(key(k)).toBe(k);
      }),
      { numRuns: 300 },
    );
  });

  it("property: whatever the input, the answer is a key that is a fixed point, or an error — never a throw", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.webUrl(), fc.stringMatching(/^https:\/\/[a-z]{0,3}\.?linkedin\.com\/in\/.{0,20}$/)), (raw) => {
        const r = normalizeLinkedInUrl(raw);
        if ("key" in r) expect(normalizeLinkedInUrl(r.key)).toEqual(r);
        else expect(typeof r.error).toBe("string");
      }),
      { numRuns: 500 },
    );
  });
});

describe("normalizeWebsite", () => {
  it("reduces URLs and bare domains to the lower-case host without www", () => {
    expect(normalizeWebsite("https://WWW.Acme.com.au/about?x=1")).toEqual({ domain: "acme.com.au" });
    expect(normalizeWebsite("acme.io")).toEqual({ domain: "acme.io" });
    expect(normalizeWebsite("www.acme.io/")).toEqual({ domain: "acme.io" });
    expect(normalizeWebsite("http://shop.acme.co.nz:8080/")).toEqual({ domain: "shop.acme.co.nz" });
    expect(normalizeWebsite("https://acme.com.")).toEqual({ domain: "acme.com" });
  });

  it("rejects what is not a public domain", () => {
    for (const bad of ["", "localhost", "http://10.0.0.1", "acme", "sam@acme.com", "mailto:sam@acme.com", "ftp://acme.com", "acme .com", "-acme.com", "acme.c0m"]) {
      expect("error" in normalizeWebsite(bad), bad).toBe(true);
    }
  });

  it("property: normalising a normalised domain changes nothing", () => {
    const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?$/);
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 3 }), fc.constantFrom("com", "com.au", "io", "co.uk"),
        fc.constantFrom("", "www.", "https://", "http://www.", "HTTPS://WWW."), fc.constantFrom("", "/", "/a/b?c=d"), (labels, tld, pre, post) => {
          const r = normalizeWebsite(`${pre}${labels.join(".")}.${tld}${post}`);
          if ("error" in r) return; // "www" as the only label, say
          expect(normalizeWebsite(r.domain)).toEqual(r);
          expect(r.domain).toBe(r.domain.toLowerCase());
          expect(r.domain.startsWith("www.")).toBe(false);
        }),
      { numRuns: 300 },
    );
  });
});

describe("classifyDomain", () => {
  it("placeholder: reserved names and the usual fillers", () => {
    for (const d of ["example.com", "example.org", "example.net", "mail.example.com", "acme.test", "acme.invalid", "x.localhost",
      "acme.example", "domain.com", "company.com", "yourcompany.com", "email.com", "test.com", "none.com", "noemail.com", "na.com", "NoEmail.com"]) {
      expect(classifyDomain(d), d).toBe("placeholder");
    }
  });

  it("parked: domains on parking and for-sale hosts", () => {
    for (const d of ["sedoparking.com", "parkingcrew.net", "bodis.com", "dan.com", "afternic.com", "hugedomains.com", "acme.sedoparking.com"]) {
      expect(classifyDomain(d), d).toBe("parked");
    }
  });

  it("ok: real-looking domains, including look-alikes of the lists", () => {
    for (const d of ["acme.com.au", "example.com.au", "myexample.com", "testing.com", "sedo-parking-fans.org", "domain.com.au"]) {
      expect(classifyDomain(d), d).toBe("ok");
    }
  });
});

describe("classifyPageHtml", () => {
  it("recognises parked and for-sale pages", () => {
    const pages = [
      "<html><head><title>acme.com</title></head><body><h1>This domain is for sale!</h1><a>Make an offer</a></body></html>",
      "<p>The domain   acme.com   may be for sale. Buy this domain today.</p>",
      "<div>This web page is parked FREE, courtesy of GoDaddy.com.</div>",
      "<script src=\"//www.sedoparking.com/frmpark/acme.com/IONOSParkingDE/park.js\"></script>",
      "<script>window.location.href = '/lander';</script>",
      "<a href=\"https://www.hugedomains.com/domain_profile.cfm?d=acme.com\">acme.com is available</a>",
    ];
    for (const p of pages) expect(classifyPageHtml(p), p).toBe("parked");
  });

  it("leaves ordinary company pages alone", () => {
    expect(classifyPageHtml("<html><body><h1>Acme Widgets</h1><p>We sell widgets across Australia. Contact sales.</p></body></html>")).toBe("ok");
    expect(classifyPageHtml("<p>Our parking app helps you find a space</p>")).toBe("ok");
  });
});
