// Deterministic pseudo-random data for the provider sandboxes: the same seed string always yields the
// same numbers, so a domain or a person looks the same in every sandbox, every run. Also the shared
// failure simulation (magic values) and the catalogues the fake companies and people are drawn from.

/** Dates are relative to this fixed "now" unless a sandbox is given another epoch: 2026-11-24. */
export const SANDBOX_EPOCH = Date.UTC(2026, 10, 24);

export interface SandboxOptions {
  /** "Now" for generated dates, ms since 1970 (default SANDBOX_EPOCH). */
  epoch?: number;
  /** Fraction of lookups that find nothing (default 0.15 for people, 0.1 for companies). */
  noMatchRate?: number;
  /** How long a "slow" magic value stalls (default 2000 ms). */
  slowMs?: number;
  /** Retry-After on a simulated 429 (default 1 s). */
  retryAfterSeconds?: number;
}

/** FNV-1a, 32 bits. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** [0, 1) from a seed, for one-off decisions (is this lookup a "no match"?). */
export function fraction(seed: string): number {
  return seeded(seed).next();
}

export interface Rng {
  next(): number;
  /** Integer in [min, max]. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
  /** n distinct items, in a seeded order. */
  sample<T>(items: readonly T[], n: number): T[];
  hex(length: number): string;
}

/** mulberry32 seeded from the string's hash. */
export function seeded(seed: string): Rng {
  let a = hash32(seed) || 0x9e3779b9;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rng: Rng = {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)],
    chance: (p) => next() < p,
    sample: (items, n) => {
      const copy = [...items];
      for (let i = copy.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [copy[i], copy[j]] = [copy[j], copy[i]];
      }
      return copy.slice(0, Math.max(0, Math.min(n, copy.length)));
    },
    hex: (length) => {
      let out = "";
      while (out.length < length) out += Math.floor(next() * 0x100000000).toString(16).padStart(8, "0");
      return out.slice(0, length);
    },
  };
  return rng;
}

/** An Apollo-style 24-hex id for a seed. */
export function idFor(seed: string): string {
  return seeded(`id:${seed}`).hex(24);
}

export const DAY_MS = 86_400_000;

export function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Stable JSON (sorted keys) so equivalent filter objects give the same seed. */
export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableStringify((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v ?? null);
}

// ---------------------------------------------------------------------------------------------
// Failure simulation: a magic word anywhere in the looked-up value (email, domain, URL, query)
// ---------------------------------------------------------------------------------------------

export type Magic = "ratelimit" | "servererror" | "malformed" | "slow" | "nomatch" | "runtimeout";

/**
 * ratelimit → 429 with Retry-After on the first request for that value, then normal;
 * servererror → 500 once, then normal; malformed → a broken body every time;
 * slow → answers after slowMs; nomatch → never found; runtimeout → Apify's 408.
 */
export function magicIn(value: string | undefined | null): Magic | null {
  const v = (value ?? "").toLowerCase();
  for (const m of ["ratelimit", "servererror", "malformed", "runtimeout", "nomatch", "slow"] as const) {
    if (v.includes(m)) return m;
  }
  return null;
}

/** Remembers which once-only failures were already served (the only state failure simulation keeps). */
export class OnceOnly {
  private seen = new Set<string>();
  /** True the first time a key is asked about. */
  first(key: string): boolean {
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }
}

/** Which failure to serve now for this value, if any (nomatch is the caller's business). */
export function failureNow(value: string, once: OnceOnly, scope: string): "ratelimit" | "servererror" | "malformed" | "slow" | "runtimeout" | null {
  const m = magicIn(value);
  if (m === "ratelimit" || m === "servererror") return once.first(`${scope}:${m}:${value.toLowerCase()}`) ? m : null;
  if (m === "malformed" || m === "slow" || m === "runtimeout") return m;
  return null;
}

export const MALFORMED_BODY = '{"status":"ok","data":[{"id":1,"name":"truncated';

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A bounded map: the sandboxes remember what they showed (search results by id) without growing forever. */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly cap: number) {
    super();
  }
  override set(key: K, value: V): this {
    if (!this.has(key) && this.size >= this.cap) {
      const oldest = this.keys().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    return super.set(key, value);
  }
}

// ---------------------------------------------------------------------------------------------
// Catalogues
// ---------------------------------------------------------------------------------------------

export const FIRST_NAMES = [
  "Ada", "Alex", "Amelia", "Ana", "Ben", "Chloe", "Daniel", "Emily", "Ethan", "Grace", "Hannah", "Isaac", "Jack",
  "James", "Jessica", "Liam", "Lucy", "Mia", "Noah", "Olivia", "Priya", "Ravi", "Sam", "Sarah", "Sofia", "Tom",
  "Wei", "Zoe", "Oliver", "Charlotte", "Harper", "Leo", "Mateo", "Aisha", "Kenji", "Fatima",
] as const;

export const LAST_NAMES = [
  "Anderson", "Brown", "Chen", "Clarke", "Davies", "Evans", "Garcia", "Hughes", "Jones", "Kelly", "Khan", "Lee",
  "Martin", "Nguyen", "Patel", "Roberts", "Smith", "Taylor", "Thompson", "Walker", "White", "Williams", "Wilson",
  "Wright", "Young", "Murphy", "Singh", "Kim", "Rossi", "Novak", "Okafor", "Tanaka",
] as const;

/** Title, Apollo seniority. */
export const TITLES: ReadonlyArray<readonly [string, string]> = [
  ["Founder", "founder"], ["Co-Founder", "founder"], ["Owner", "owner"], ["Managing Director", "c_suite"],
  ["CEO", "c_suite"], ["Chief Operating Officer", "c_suite"], ["CFO", "c_suite"], ["CTO", "c_suite"],
  ["Chief Marketing Officer", "c_suite"], ["Partner", "partner"], ["VP Sales", "vp"], ["VP Marketing", "vp"],
  ["VP Engineering", "vp"], ["Head of Growth", "head"], ["Head of Marketing", "head"], ["Head of Sales", "head"],
  ["Head of Operations", "head"], ["Director of Sales", "director"], ["Marketing Director", "director"],
  ["Operations Director", "director"], ["Sales Manager", "manager"], ["Marketing Manager", "manager"],
  ["Office Manager", "manager"], ["Senior Account Executive", "senior"], ["Senior Software Engineer", "senior"],
  ["Account Executive", "entry"], ["Marketing Coordinator", "entry"], ["Executive Assistant", "entry"],
  ["Sales Development Representative", "entry"], ["Marketing Intern", "intern"],
];

export const INDUSTRIES = [
  "information technology & services", "computer software", "marketing & advertising", "financial services",
  "real estate", "construction", "logistics & supply chain", "hospital & health care", "accounting",
  "management consulting", "retail", "legal services", "education management", "staffing & recruiting",
  "renewables & environment", "insurance", "architecture & planning", "food & beverages",
] as const;

/** Technology, DataForSEO group, DataForSEO category. */
export const TECHNOLOGIES: ReadonlyArray<readonly [string, string, string]> = [
  ["WordPress", "content", "cms"], ["Shopify", "sales", "ecommerce"], ["WooCommerce", "sales", "ecommerce"],
  ["HubSpot", "marketing", "marketing_automation"], ["Salesforce", "business_tools", "crm"],
  ["Google Analytics", "marketing", "analytics"], ["Google Tag Manager", "marketing", "tag_managers"],
  ["Hotjar", "marketing", "analytics"], ["Intercom", "communication", "live_chat"],
  ["Zendesk", "communication", "live_chat"], ["Cloudflare", "servers", "cdn"], ["AWS", "servers", "paas"],
  ["React", "web_development", "javascript_frameworks"], ["Next.js", "web_development", "web_frameworks"],
  ["jQuery", "web_development", "javascript_libraries"], ["PHP", "web_development", "programming_languages"],
  ["Mailchimp", "marketing", "email"], ["Stripe", "sales", "payment_processors"], ["Xero", "business_tools", "accounting"],
  ["Microsoft 365", "business_tools", "email"], ["Google Workspace", "business_tools", "email"],
  ["Webflow", "content", "cms"], ["Squarespace", "content", "cms"], ["Calendly", "business_tools", "scheduling"],
  ["Segment", "marketing", "customer_data_platform"], ["Marketo", "marketing", "marketing_automation"],
];

export const HIRING_ROLES = [
  "Sales Development Representative", "Account Executive", "Head of Sales", "Marketing Manager", "Growth Marketer",
  "Customer Success Manager", "Software Engineer", "Operations Manager", "Finance Manager", "Product Manager",
  "Head of Marketing", "Business Development Manager", "Office Administrator",
] as const;

export const SIGNAL_KEYWORDS = [
  "expansion", "new office", "hiring", "funding", "partnership", "launch", "acquisition", "growth", "rebrand",
  "award", "tender", "digital transformation",
] as const;

export const FUNDING_STAGES = ["Seed", "Series A", "Series B", "Series C", "Venture (Round not Specified)", "Debt Financing"] as const;

const NAME_WORDS = [
  "acme", "atlas", "blue", "bright", "cedar", "coastal", "core", "delta", "ember", "harbour", "iron", "kinetic",
  "lumen", "maple", "north", "nova", "orbit", "peak", "pioneer", "quantum", "river", "summit", "true", "vertex",
];
const NAME_SUFFIXES = ["logistics", "digital", "labs", "partners", "group", "health", "build", "finance", "studio", "systems", "legal", "energy"];

/** Country name (as Apollo writes it), ISO code, cities. */
const COUNTRIES: ReadonlyArray<readonly [string, string, readonly string[], readonly string[]]> = [
  ["Australia", "AU", ["Sydney", "Melbourne", "Brisbane", "Perth", "Adelaide"], ["New South Wales", "Victoria", "Queensland", "Western Australia", "South Australia"]],
  ["New Zealand", "NZ", ["Auckland", "Wellington", "Christchurch"], ["Auckland", "Wellington", "Canterbury"]],
  ["United Kingdom", "GB", ["London", "Manchester", "Leeds"], ["England", "England", "England"]],
  ["United States", "US", ["Austin", "Denver", "Chicago", "Boston"], ["Texas", "Colorado", "Illinois", "Massachusetts"]],
  ["Canada", "CA", ["Toronto", "Vancouver"], ["Ontario", "British Columbia"]],
];

/** Employee bands as Apollo's organization_num_employees_ranges write them. */
export const SIZE_BANDS: ReadonlyArray<readonly [number, number]> = [
  [1, 10], [11, 50], [51, 200], [201, 500], [501, 1000], [1001, 5000], [5001, 10000],
];

// ---------------------------------------------------------------------------------------------
// Companies, by domain: the one definition every sandbox agrees on
// ---------------------------------------------------------------------------------------------

export interface SandboxCompany {
  domain: string;
  id: string;
  name: string;
  industry: string;
  employees: number;
  country: string;
  countryCode: string;
  city: string;
  state: string;
  foundedYear: number;
  annualRevenue: number;
  technologies: string[];
  hiringRoles: Array<{ title: string; postedAt: string }>;
  fundingDate: string | null;
  fundingStage: string | null;
  totalFunding: number | null;
  keywords: string[];
  signalKeywords: string[];
  linkedinUrl: string;
  websiteUrl: string;
  description: string;
}

function titleCase(s: string): string {
  return s.split(/[-_.\s]+/).filter(Boolean).map((w) => w[0].toUpperCase() + w.slice(1)).join(" ");
}

/** "acme-logistics.com.au" → "Acme Logistics". */
export function companyNameFromDomain(domain: string): string {
  const label = domain.replace(/^www\./, "").split(".")[0] ?? domain;
  return titleCase(label.replace(/\d+/g, " ").trim() || label);
}

export function companyFromDomain(domainInput: string, epoch = SANDBOX_EPOCH): SandboxCompany {
  const domain = domainInput.trim().toLowerCase().replace(/^www\./, "");
  const r = seeded(`company:${domain}`);
  const tld = domain.split(".").slice(1).join(".");
  const byTld = tld.endsWith("au") ? 0 : tld.endsWith("nz") ? 1 : tld.endsWith("uk") ? 2 : tld.endsWith("ca") ? 4 : -1;
  const [country, countryCode, cities, states] = COUNTRIES[byTld >= 0 ? byTld : r.pick([0, 0, 0, 1, 2, 3, 4])];
  const cityIndex = r.int(0, cities.length - 1);
  const band = SIZE_BANDS[Math.min(SIZE_BANDS.length - 1, Math.floor(r.next() ** 1.6 * SIZE_BANDS.length))];
  const employees = r.int(band[0], band[1]);
  const techCount = r.int(3, 9);
  const technologies = r.sample(TECHNOLOGIES, techCount).map(([n]) => n).sort();
  const hiringRoles = r.chance(0.55)
    ? r.sample(HIRING_ROLES, r.int(1, 4)).map((title) => ({ title, postedAt: isoDate(epoch - r.int(1, 120) * DAY_MS) }))
    : [];
  const funded = r.chance(0.35);
  const fundingDate = funded ? isoDate(epoch - r.int(10, 900) * DAY_MS) : null;
  const name = companyNameFromDomain(domain);
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return {
    domain,
    id: idFor(`org:${domain}`),
    name,
    industry: r.pick(INDUSTRIES),
    employees,
    country,
    countryCode,
    city: cities[cityIndex],
    state: states[cityIndex] ?? states[0],
    foundedYear: r.int(1975, 2024),
    annualRevenue: employees * r.int(80, 400) * 1000,
    technologies,
    hiringRoles,
    fundingDate,
    fundingStage: funded ? r.pick(FUNDING_STAGES) : null,
    totalFunding: funded ? r.int(5, 400) * 100_000 : null,
    keywords: r.sample(["b2b", "saas", "consulting", "services", "platform", "marketplace", "agency", "manufacturing"], 3),
    signalKeywords: r.sample(SIGNAL_KEYWORDS, r.int(0, 3)),
    linkedinUrl: `http://www.linkedin.com/company/${slug}`,
    websiteUrl: `http://www.${domain}`,
    description: `${name} is a ${band[0]}-${band[1]} person ${r.pick(INDUSTRIES)} business based in ${cities[cityIndex]}.`,
  };
}

/** A plausible company domain for a seed ("harbour-logistics.com.au"). */
export function domainForSeed(seed: string): string {
  const r = seeded(`domain:${seed}`);
  const tld = r.pick(["com.au", "com.au", "com.au", "com", "co.nz", "co.uk", "io"]);
  return `${r.pick(NAME_WORDS)}-${r.pick(NAME_SUFFIXES)}${r.chance(0.3) ? r.int(2, 99) : ""}.${tld}`;
}

/** The size band an employee count falls in, as "11,50". */
export function sizeRangeOf(employees: number): string {
  const band = SIZE_BANDS.find(([lo, hi]) => employees >= lo && employees <= hi) ?? [10001, 100000];
  return `${band[0]},${band[1]}`;
}

