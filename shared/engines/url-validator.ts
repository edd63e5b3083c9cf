// The url_validator engine: LinkedIn profile URLs to their dedup key, websites to a bare domain,
// and whether a domain (or a fetched page) is a placeholder or a parked/for-sale site. Pure.

export type LinkedInResult = { key: string } | { error: string };
export type WebsiteResult = { domain: string } | { error: string };
export type DomainClass = "ok" | "placeholder" | "parked";

const LINKEDIN_PREFIX = "https://www.linkedin.com/in/";
// www, the mobile site, and the two-letter country/language subdomains (au., uk., de. …).
const LINKEDIN_HOST = /^(?:(?:www|m|[a-z]{2})\.)?linkedin\.com$/;
// LinkedIn's custom profile URLs are letters, digits and hyphens (3–100 long); older and
// generated ones also carry underscores, dots and non-Latin letters, so allow those and 2 chars.
const LINKEDIN_SLUG = /^[\p{L}\p{N}_.-]{2,100}$/u;
const ASCII_SLUG = /^[a-z0-9_.-]{2,100}$/; // what encodeURIComponent leaves as it is
// A DNS name whose top-level label is letters only (as the companies.domain check insists).
const DOMAIN = /^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

/** Splits "scheme://host/path" by hand: faster than URL and never "fixes" what it is given. */
function splitUrl(raw: string): { scheme: string; host: string; path: string } | null {
  const m = /^(?:([a-z][a-z0-9+.-]*):\/\/)?([^/?#\s]*)([^?#\s]*)(?:[?#]\S*)?$/i.exec(raw);
  if (!m) return null;
  return { scheme: (m[1] ?? "https").toLowerCase(), host: m[2].toLowerCase(), path: m[3] };
}

/**
 * A LinkedIn person profile URL in any common form (http/https, with or without www or a country
 * subdomain, trailing slash, query string, /in/<slug>/details/…) → its dedup key
 * `https://www.linkedin.com/in/<slug>` (slug lower-cased; non-ASCII slugs percent-encoded).
 */
export function normalizeLinkedInUrl(raw: string): LinkedInResult {
  const text = raw.trim();
  if (!text) return { error: "empty" };
  const url = splitUrl(text);
  if (!url) return { error: "not a URL" };
  if (url.scheme !== "http" && url.scheme !== "https") return { error: `not a web URL (${url.scheme}:)` };
  const host = url.host.replace(/:\d+$/, "").replace(/\.$/, "");
  if (!LINKEDIN_HOST.test(host)) return { error: "not a linkedin.com URL" };
  const segments = url.path.split("/").filter(Boolean);
  const kind = segments[0]?.toLowerCase();
  if (kind !== "in") {
    if (kind === "company" || kind === "school" || kind === "showcase") return { error: `a ${kind} page, not a person's profile` };
    if (kind === "pub") return { error: "an old /pub/ profile URL; use the /in/ URL from the profile" };
    return { error: "not a profile URL (/in/<name>)" };
  }
  if (!segments[1]) return { error: "the profile name is missing after /in/" };
  let slug = segments[1].toLowerCase();
  if (ASCII_SLUG.test(slug)) return { key: LINKEDIN_PREFIX + slug }; // the usual case, nothing to decode
  try {
    slug = decodeURIComponent(slug).toLowerCase();
  } catch {
    return { error: "the profile name is not valid percent-encoding" };
  }
  if (!LINKEDIN_SLUG.test(slug)) return { error: "the profile name has characters LinkedIn does not use" };
  return { key: LINKEDIN_PREFIX + encodeURIComponent(slug) };
}

/** A website URL or a bare domain → its lower-case host without "www." ({ domain }), or { error }. */
export function normalizeWebsite(raw: string): WebsiteResult {
  const text = raw.trim();
  if (!text) return { error: "empty" };
  const url = splitUrl(text);
  if (!url) return { error: "not a URL or domain" };
  if (url.scheme !== "http" && url.scheme !== "https") return { error: `not a web URL (${url.scheme}:)` };
  if (url.host.includes("@")) return { error: "looks like an email address, not a website" };
  const domain = url.host.replace(/:\d+$/, "").replace(/\.$/, "").replace(/^www\./, "");
  if (!DOMAIN.test(domain)) return { error: "not a domain name" };
  return { domain };
}

// Reserved for documentation and testing (RFC 2606, RFC 6761): never a real company.
const RESERVED_TLDS = new Set(["test", "invalid", "localhost", "example"]);
const RESERVED_DOMAINS = new Set(["example.com", "example.org", "example.net"]);
// What people type into a required form field when they have nothing real to give. Small on
// purpose: every entry is a domain where a B2B lead's address is, in practice, never genuine
// (email.com is a real mailbox provider, but in imported lead data it is the classic filler).
const FILLER_DOMAINS = new Set([
  "domain.com", "company.com", "yourcompany.com", "mycompany.com", "yourdomain.com", "email.com",
  "test.com", "none.com", "noemail.com", "nomail.com", "na.com", "noreply.com", "sample.com",
]);
// Hosts of domain parking and for-sale marketplaces: a lead's "company site" on one of these is
// a parked domain, not a business.
const PARKING_HOSTS = new Set([
  "sedoparking.com", "parkingcrew.net", "bodis.com", "dan.com", "afternic.com", "hugedomains.com",
  "above.com", "parklogic.com", "undeveloped.com", "domainmarket.com", "buydomains.com",
]);

/** Whether a domain is usable, a placeholder, or a parking host (subdomains count as their parent). */
export function classifyDomain(domain: string): DomainClass {
  // the callers' domains are normalised already; anything else is normalised here
  const d = /[A-Z\s]|\.$/.test(domain) ? domain.trim().toLowerCase().replace(/\.$/, "") : domain;
  const lastDot = d.lastIndexOf(".");
  if (lastDot < 0 || RESERVED_TLDS.has(d.slice(lastDot + 1))) return "placeholder";
  if (FILLER_DOMAINS.has(d.startsWith("www.") ? d.slice(4) : d)) return "placeholder";
  // the domain and each parent of it: a.b.example.com, b.example.com, example.com
  for (let from = 0; from < lastDot; from = d.indexOf(".", from) + 1) {
    const suffix = from === 0 ? d : d.slice(from);
    if (RESERVED_DOMAINS.has(suffix)) return "placeholder";
    if (PARKING_HOSTS.has(suffix)) return "parked";
  }
  return "ok";
}

// Phrases parked and for-sale pages carry (registrar landers, marketplaces, ad-link farms).
const PARKED_PAGE = [
  /\bthis domain (?:name )?(?:is|may be) for sale\b/,
  /\bdomain (?:name )?is for sale\b/,
  /\bbuy (?:this|the) domain\b/,
  /\bmake an offer on this domain\b/,
  /\bthis (?:domain|web ?page|site) (?:is|has been) parked\b/,
  /\bparked (?:free|domain)\b/,
  /\bdomain parking\b/,
  /\bcourtesy of godaddy\b/,
  /\bthis domain has expired\b/,
  /\b(?:sedoparking|parkingcrew|bodis|hugedomains|afternic|above\.com|parklogic)\b/,
  /\bdan\.com\/buy-domain\b/,
  /window\.location\.href\s*=\s*["']\/lander["']/,
];

/** "parked" for a parked or for-sale landing page (looks at the first 100 kB), else "ok". */
export function classifyPageHtml(html: string): "parked" | "ok" {
  const text = html.slice(0, 100_000).toLowerCase().replace(/\s+/g, " ");
  return PARKED_PAGE.some((re) => re.test(text)) ? "parked" : "ok";
}
