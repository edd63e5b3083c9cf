// Apollo.io client (providers.md §9): People API Search (0 credits), People Enrichment and
// Organization Enrichment (credits, cached per person key / per domain), Organization Job Postings.
import { z } from "zod";
import { readEnv } from "../config/env.ts";
import {
  isLocalUrl,
  lenient,
  linkedinKey,
  normalizeDomain,
  normalizeEmail,
  ProviderError,
  providerFetch,
  rateLimitFromEnv,
  tolerantArray,
  type CacheSpec,
  type ProviderCallContext,
  type ProviderSpec,
  type RateLimitSpec,
  type RecordCall,
  type RetrySpec,
  type SqlTag,
} from "./provider-http.ts";
import type { Redis } from "@upstash/redis";

export const APOLLO_DEFAULT_BASE_URL = "https://api.apollo.io/api/v1";

// Cache lifetimes: a person or company changes slowly, and each re-enrichment costs a credit.
export const APOLLO_TTL = {
  personSeconds: 30 * 86_400,
  organizationSeconds: 30 * 86_400,
  // "No match" may become a match as Apollo's data grows: retry a week later.
  noMatchSeconds: 7 * 86_400,
  // Job postings are a 60-day intent signal; a day old is fresh enough.
  jobPostingsSeconds: 86_400,
};

export interface ApolloConfig {
  apiKey?: string;
  baseUrl?: string;
  /** Default 100 calls/min shared (APOLLO_RATE_LIMIT overrides): half the paid plans' 200/min search limit. */
  rateLimit?: RateLimitSpec | false;
  retry?: RetrySpec;
  timeoutMs?: number;
  redis?: Redis | null;
  record?: RecordCall;
  sql?: SqlTag;
  /** What one Apollo credit costs you, for provider_calls.cost_cents (depends on the plan; default 0). */
  centsPerCredit?: number;
  fetch?: typeof fetch;
}

// ---------------------------------------------------------------------------------------------
// Shapes (camelCase, nulls for anything Apollo left out)
// ---------------------------------------------------------------------------------------------

export interface ApolloSearchParams {
  page?: number;
  /** ≤ 100 (Apollo's cap). */
  perPage?: number;
  personTitles?: string[];
  /** owner, founder, c_suite, partner, vp, head, director, manager, senior, entry, intern */
  personSeniorities?: string[];
  personLocations?: string[];
  organizationLocations?: string[];
  /** e.g. "11,50" */
  organizationNumEmployeesRanges?: string[];
  qKeywords?: string;
  includeSimilarTitles?: boolean;
  qOrganizationDomains?: string[];
}

export interface ApolloSearchPerson {
  id: string;
  firstName: string | null;
  lastNameObfuscated: string | null;
  title: string | null;
  hasEmail: boolean;
  hasDirectPhone: boolean | null;
  organization: { name: string | null; primaryDomain: string | null } | null;
}

export interface ApolloSearchResult {
  totalEntries: number;
  people: ApolloSearchPerson[];
}

export interface ApolloOrganization {
  id: string | null;
  name: string | null;
  websiteUrl: string | null;
  linkedinUrl: string | null;
  primaryDomain: string | null;
  industry: string | null;
  estimatedNumEmployees: number | null;
  annualRevenue: number | null;
  foundedYear: number | null;
  city: string | null;
  state: string | null;
  country: string | null;
  technologyNames: string[];
  keywords: string[];
  latestFundingRoundDate: string | null;
  latestFundingStage: string | null;
  totalFunding: number | null;
  shortDescription: string | null;
}

export interface ApolloEmployment {
  title: string | null;
  organizationName: string | null;
  startDate: string | null;
  endDate: string | null;
  current: boolean;
}

export interface ApolloPerson {
  id: string;
  firstName: string | null;
  lastName: string | null;
  name: string | null;
  title: string | null;
  headline: string | null;
  seniority: string | null;
  email: string | null;
  /** verified, unverified, likely to engage, unavailable, … */
  emailStatus: string | null;
  linkedinUrl: string | null;
  city: string | null;
  state: string | null;
  country: string | null;
  organizationId: string | null;
  organization: ApolloOrganization | null;
  employmentHistory: ApolloEmployment[];
}

export interface ApolloMatchParams {
  id?: string;
  email?: string;
  linkedinUrl?: string;
  firstName?: string;
  lastName?: string;
  /** The employer's domain. */
  domain?: string;
  organizationName?: string;
}

export interface ApolloJobPosting {
  id: string | null;
  title: string;
  url: string | null;
  city: string | null;
  state: string | null;
  country: string | null;
  postedAt: string | null;
  lastSeenAt: string | null;
}

export interface ApolloClient {
  searchPeople(params: ApolloSearchParams, ctx?: ProviderCallContext): Promise<ApolloSearchResult>;
  matchPerson(params: ApolloMatchParams, ctx?: ProviderCallContext): Promise<ApolloPerson | null>;
  enrichOrganization(domain: string, ctx?: ProviderCallContext): Promise<ApolloOrganization | null>;
  organizationJobPostings(organizationId: string, ctx?: ProviderCallContext): Promise<ApolloJobPosting[]>;
}

// ---------------------------------------------------------------------------------------------
// Wire schemas (snake_case in, camelCase out)
// ---------------------------------------------------------------------------------------------

function domainOf(url: string | null): string | null {
  return url ? normalizeDomain(url) : null;
}

const OrganizationWire = z.object({
  id: lenient.string,
  name: lenient.string,
  website_url: lenient.string,
  linkedin_url: lenient.string,
  primary_domain: lenient.string,
  industry: lenient.string,
  estimated_num_employees: lenient.number,
  annual_revenue: lenient.number,
  founded_year: lenient.number,
  city: lenient.string,
  state: lenient.string,
  country: lenient.string,
  technology_names: lenient.strings,
  current_technologies: z.unknown().optional(),
  keywords: lenient.strings,
  latest_funding_round_date: lenient.string,
  latest_funding_stage: lenient.string,
  total_funding: lenient.number,
  short_description: lenient.string,
}).transform((o): ApolloOrganization => {
  // Some plans return current_technologies [{name, category}] instead of technology_names.
  const fromCurrent = Array.isArray(o.current_technologies)
    ? o.current_technologies.flatMap((t) => (t && typeof t === "object" && typeof (t as { name?: unknown }).name === "string" ? [(t as { name: string }).name] : []))
    : [];
  return {
    id: o.id,
    name: o.name,
    websiteUrl: o.website_url,
    linkedinUrl: o.linkedin_url,
    primaryDomain: o.primary_domain ? normalizeDomain(o.primary_domain) : domainOf(o.website_url),
    industry: o.industry,
    estimatedNumEmployees: o.estimated_num_employees,
    annualRevenue: o.annual_revenue,
    foundedYear: o.founded_year,
    city: o.city,
    state: o.state,
    country: o.country,
    technologyNames: o.technology_names.length ? o.technology_names : fromCurrent,
    keywords: o.keywords,
    latestFundingRoundDate: o.latest_funding_round_date,
    latestFundingStage: o.latest_funding_stage,
    totalFunding: o.total_funding,
    shortDescription: o.short_description,
  };
});

const EmploymentWire = z.object({
  title: lenient.string,
  organization_name: lenient.string,
  start_date: lenient.string,
  end_date: lenient.string,
  current: lenient.boolean,
}).transform((e): ApolloEmployment => ({
  title: e.title,
  organizationName: e.organization_name,
  startDate: e.start_date,
  endDate: e.end_date,
  current: e.current ?? e.end_date === null,
}));

const PersonWire = z.object({
  id: z.string().min(1),
  first_name: lenient.string,
  last_name: lenient.string,
  name: lenient.string,
  title: lenient.string,
  headline: lenient.string,
  seniority: lenient.string,
  email: lenient.string,
  email_status: lenient.string,
  linkedin_url: lenient.string,
  city: lenient.string,
  state: lenient.string,
  country: lenient.string,
  organization_id: lenient.string,
  organization: OrganizationWire.nullish().catch(null),
  employment_history: tolerantArray(EmploymentWire).nullish().catch(null),
}).transform((p): ApolloPerson => ({
  id: p.id,
  firstName: p.first_name,
  lastName: p.last_name,
  name: p.name ?? ([p.first_name, p.last_name].filter(Boolean).join(" ") || null),
  title: p.title,
  headline: p.headline,
  seniority: p.seniority,
  // Apollo masks unrevealed emails as "email_not_unlocked@domain.com".
  email: p.email && !/^email_not_unlocked@/i.test(p.email) ? p.email : null,
  emailStatus: p.email_status,
  linkedinUrl: p.linkedin_url,
  city: p.city,
  state: p.state,
  country: p.country,
  organizationId: p.organization_id ?? p.organization?.id ?? null,
  organization: p.organization ?? null,
  employmentHistory: p.employment_history ?? [],
}));

const MatchWire = z.object({ person: PersonWire.nullish() }).transform((b) => b.person ?? null);

const SearchPersonWire = z.object({
  id: z.string().min(1),
  first_name: lenient.string,
  last_name_obfuscated: lenient.string,
  title: lenient.string,
  has_email: lenient.boolean,
  has_direct_phone: z.unknown().optional(),
  organization: z.object({ name: lenient.string, primary_domain: lenient.string, website_url: lenient.string }).nullish().catch(null),
}).transform((p): ApolloSearchPerson => ({
  id: p.id,
  firstName: p.first_name,
  lastNameObfuscated: p.last_name_obfuscated,
  title: p.title,
  hasEmail: p.has_email ?? false,
  // Documented as a boolean; seen as "Yes"/"Maybe: please request…" strings too.
  hasDirectPhone: typeof p.has_direct_phone === "boolean" ? p.has_direct_phone
    : typeof p.has_direct_phone === "string" ? /^yes/i.test(p.has_direct_phone) : null,
  organization: p.organization
    ? {
      name: p.organization.name,
      primaryDomain: p.organization.primary_domain ? normalizeDomain(p.organization.primary_domain) : domainOf(p.organization.website_url),
    }
    : null,
}));

const SearchWire = z.object({
  total_entries: lenient.number,
  pagination: z.object({ total_entries: lenient.number }).nullish().catch(null),
  people: tolerantArray(SearchPersonWire),
}).transform((b): ApolloSearchResult => ({
  totalEntries: b.total_entries ?? b.pagination?.total_entries ?? b.people.length,
  people: b.people,
}));

const EnrichWire = z.object({ organization: OrganizationWire.nullish() })
  .transform((b) => (b.organization && (b.organization.id || b.organization.name) ? b.organization : null));

const JobPostingWire = z.object({
  id: lenient.string,
  title: z.string().min(1),
  url: lenient.string,
  city: lenient.string,
  state: lenient.string,
  country: lenient.string,
  posted_at: lenient.string,
  last_seen_at: lenient.string,
}).transform((j): ApolloJobPosting => ({
  id: j.id, title: j.title, url: j.url, city: j.city, state: j.state, country: j.country,
  postedAt: j.posted_at, lastSeenAt: j.last_seen_at,
}));

const JobPostingsWire = z.object({ organization_job_postings: tolerantArray(JobPostingWire).nullish() })
  .transform((b) => b.organization_job_postings ?? []);

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

function invalid(operation: string, message: string): ProviderError {
  return new ProviderError({ provider: "apollo", operation, code: "invalid_request", retryable: false, message });
}

/** The cache entry for a match: the strongest key the caller gave (Apollo id, email, LinkedIn). */
function personCacheKey(p: ApolloMatchParams): Pick<CacheSpec, "kind" | "key"> | null {
  if (p.id?.trim()) return { kind: "person:id", key: p.id.trim() };
  if (p.email?.trim()) return { kind: "person:email", key: normalizeEmail(p.email) };
  const li = p.linkedinUrl ? linkedinKey(p.linkedinUrl) : null;
  if (li) return { kind: "person:linkedin", key: li };
  return null; // name + employer only: too weak a key to cache on
}

export function createApolloClient(config: ApolloConfig = {}): ApolloClient {
  const baseUrl = config.baseUrl ?? readEnv("APOLLO_BASE_URL") ?? APOLLO_DEFAULT_BASE_URL;
  const apiKey = config.apiKey ?? readEnv("APOLLO_API_KEY") ?? (isLocalUrl(baseUrl) ? "sandbox" : undefined);
  const centsPerCredit = config.centsPerCredit ?? 0;
  const spec: ProviderSpec = {
    provider: "apollo",
    baseUrl,
    headers: { "x-api-key": apiKey ?? "", "cache-control": "no-cache" },
    missingCredentials: apiKey ? undefined : "APOLLO_API_KEY is not set",
    rateLimit: config.rateLimit ?? rateLimitFromEnv("APOLLO_RATE_LIMIT", { limit: 100, window: "1 m" }),
    retry: config.retry,
    timeoutMs: config.timeoutMs ?? 20_000,
    redis: config.redis,
    record: config.record,
    sql: config.sql,
    fetch: config.fetch,
  };
  const cost = (_: unknown, credits: number) => credits * centsPerCredit;

  return {
    async searchPeople(params, ctx) {
      const perPage = params.perPage ?? 25;
      const page = params.page ?? 1;
      if (!Number.isInteger(perPage) || perPage < 1 || perPage > 100) throw invalid("people.search", "perPage must be 1–100");
      if (!Number.isInteger(page) || page < 1 || page > 500) throw invalid("people.search", "page must be 1–500 (Apollo shows 50,000 records at most)");
      const body = {
        page,
        per_page: perPage,
        person_titles: params.personTitles,
        person_seniorities: params.personSeniorities,
        person_locations: params.personLocations,
        organization_locations: params.organizationLocations,
        organization_num_employees_ranges: params.organizationNumEmployeesRanges,
        q_organization_domains_list: params.qOrganizationDomains,
        q_keywords: params.qKeywords,
        include_similar_titles: params.includeSimilarTitles,
      };
      // Not cached: pages are walked once per population run and cost nothing.
      const res = await providerFetch(spec, {
        operation: "people.search", method: "POST", path: "/mixed_people/api_search", body, schema: SearchWire,
      }, ctx);
      return res.data;
    },

    async matchPerson(params, ctx) {
      const hasKey = params.id || params.email || params.linkedinUrl;
      const hasName = params.firstName && params.lastName && (params.domain || params.organizationName);
      if (!hasKey && !hasName) {
        throw invalid("people.match", "give an Apollo id, an email, a LinkedIn URL, or a first and last name with a domain or organisation");
      }
      const key = personCacheKey(params);
      const res = await providerFetch(spec, {
        operation: "people.match",
        method: "POST",
        path: "/people/match",
        body: {
          id: params.id,
          email: params.email?.trim(),
          linkedin_url: params.linkedinUrl,
          first_name: params.firstName,
          last_name: params.lastName,
          domain: params.domain ? normalizeDomain(params.domain) ?? params.domain : undefined,
          organization_name: params.organizationName,
          // Phones arrive asynchronously at a webhook and cost 8 credits; emails are what we need here.
          reveal_personal_emails: false,
          reveal_phone_number: false,
        },
        schema: MatchWire,
        cache: key ? { ...key, ttlSeconds: APOLLO_TTL.personSeconds, nullTtlSeconds: APOLLO_TTL.noMatchSeconds } : undefined,
        // 1 credit when Apollo found the person, 0 when it didn't (providers.md §9).
        credits: (p) => (p ? 1 : 0),
        costCents: cost,
      }, ctx);
      return res.data;
    },

    async enrichOrganization(domain, ctx) {
      const d = normalizeDomain(domain);
      if (!d) throw invalid("organizations.enrich", `"${domain}" is not a domain`);
      const res = await providerFetch(spec, {
        operation: "organizations.enrich",
        method: "GET",
        path: "/organizations/enrich",
        query: { domain: d },
        schema: EnrichWire,
        onStatus: { 404: () => null },
        // Company data is keyed by domain, never under a person's key.
        cache: { kind: "org:domain", key: d, ttlSeconds: APOLLO_TTL.organizationSeconds, nullTtlSeconds: APOLLO_TTL.noMatchSeconds },
        credits: (o) => (o ? 1 : 0),
        costCents: cost,
      }, ctx);
      return res.data;
    },

    async organizationJobPostings(organizationId, ctx) {
      const id = organizationId.trim();
      if (!/^[A-Za-z0-9_-]+$/.test(id)) throw invalid("organizations.job_postings", "organizationId must be an Apollo id");
      const res = await providerFetch(spec, {
        operation: "organizations.job_postings",
        method: "GET",
        path: `/organizations/${encodeURIComponent(id)}/job_postings`,
        schema: JobPostingsWire,
        onStatus: { 404: () => [] },
        cache: { kind: "org:jobs", key: id, ttlSeconds: APOLLO_TTL.jobPostingsSeconds },
        // 1 credit per page [I: integration docs, not Apollo's reference].
        credits: 1,
        costCents: cost,
      }, ctx);
      return res.data;
    },
  };
}
