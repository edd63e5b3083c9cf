// The scout: the enrichment waterfall of product.md §4 for one batch of pool leads, in order —
// (cache inside each client) → Apollo person match → Apollo organisation (+ job postings) →
// Apify LinkedIn profile (only with a LinkedIn URL and a pre-enrichment tier of Cool or better)
// → website signals (DataForSEO technologies, Serper news, the company site). Each step only
// fills what is still missing, so a lead stops as soon as its fields are filled. Pure
// orchestration: it reads nothing from and writes nothing to the database itself.
import type { ApifyClient } from "../integrations/apify.ts";
import type { ApolloClient, ApolloOrganization, ApolloPerson } from "../integrations/apollo.ts";
import type { DataForSeoClient } from "../integrations/dataforseo.ts";
import { ProviderError } from "../integrations/provider-http.ts";
import type { SerperClient } from "../integrations/serper.ts";
import { normalizeCountry } from "./lead-row.ts";
import { classifyPageHtml, normalizeLinkedInUrl, normalizeWebsite } from "./url-validator.ts";
import { mapLimit } from "./concurrency.ts";

export interface ScoutLead {
  id: string;
  email: string | null;
  email_status: string;
  first_name: string | null;
  last_name: string | null;
  title: string | null;
  company_name: string | null;
  company_domain: string | null;
  linkedin_url: string | null;
  linkedin_key: string | null;
  country: string | null;
  apollo_person_id: string | null;
  linkedin_found: boolean;
  enriched_at: Date | null;
}

export interface ScoutCompany {
  domain: string;
  enriched_at: Date | null;
  signals_checked_at?: Date | null;
}

/** Columns of lead_pool the scout may set (only those it learned). */
export type LeadPatch = Partial<{
  email: string;
  email_status: "verified" | "catch_all" | "invalid" | "unknown";
  title: string;
  seniority: string;
  linkedin_url: string;
  linkedin_key: string;
  city: string;
  state: string;
  country: string;
  company_name: string;
  company_domain: string;
  job_started_at: string;
  apollo_person_id: string;
  linkedin_found: boolean;
  linkedin_connections: number | null;
  linkedin_active_at: string | null;
}>;

/** Columns of companies the scout may set. */
export type CompanyPatch = Partial<{
  name: string;
  industry: string;
  employee_count: number;
  country: string;
  linkedin_url: string;
  technologies: string[];
  hiring_roles: string[];
  hiring_seen_at: string;
  last_funding_at: string;
  signal_keywords: string[];
  website_status: "ok" | "parked" | "placeholder" | "unreachable";
  apollo_organization_id: string;
  enriched: boolean;
  signals_checked: boolean;
}>;

export interface ScoutClients {
  apollo: ApolloClient;
  apify: ApifyClient;
  serper: SerperClient;
  dataforseo: DataForSeoClient;
  /** Fetches a company's home page HTML; undefined turns the site step off. */
  fetchSite?: (domain: string) => Promise<string | null>;
}

export interface StepFailure {
  leadId: string | null;
  domain: string | null;
  step: string;
  retryable: boolean;
  message: string;
}

const COMPANY_FRESH_DAYS = 30;

// Apollo's email statuses, reduced to what the send gate distinguishes.
function emailStatus(apollo: string | null): LeadPatch["email_status"] | undefined {
  switch ((apollo ?? "").toLowerCase()) {
    case "verified":
      return "verified";
    case "catchall":
    case "catch_all":
    case "accept_all":
      return "catch_all";
    case "unavailable":
    case "bounced":
    case "invalid":
      return "invalid";
    default:
      return undefined;
  }
}

function isoDate(v: string | null | undefined): string | undefined {
  if (!v) return undefined;
  const t = Date.parse(v.length === 7 ? `${v}-01` : v);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString().slice(0, 10);
}

function failure(step: string, err: unknown, leadId: string | null, domain: string | null): StepFailure {
  if (err instanceof ProviderError) return { leadId, domain, step, retryable: err.retryable, message: err.message };
  return { leadId, domain, step, retryable: true, message: err instanceof Error ? err.message : String(err) };
}

function personPatch(lead: ScoutLead, p: ApolloPerson): LeadPatch {
  const patch: LeadPatch = { apollo_person_id: p.id };
  if (!lead.email && p.email) patch.email = p.email;
  const status = emailStatus(p.emailStatus);
  if (status && (lead.email_status === "unknown" || !lead.email)) patch.email_status = status;
  if (!lead.title && p.title) patch.title = p.title;
  if (p.seniority) patch.seniority = p.seniority;
  if (!lead.linkedin_key && p.linkedinUrl) {
    const li = normalizeLinkedInUrl(p.linkedinUrl);
    if ("key" in li) Object.assign(patch, { linkedin_url: p.linkedinUrl, linkedin_key: li.key });
  }
  if (p.city) patch.city = p.city;
  if (p.state) patch.state = p.state;
  if (!lead.country && p.country) {
    const cc = normalizeCountry(p.country);
    if (cc) patch.country = cc;
  }
  if (!lead.company_name && p.organization?.name) patch.company_name = p.organization.name;
  if (!lead.company_domain) {
    const site = p.organization?.primaryDomain ?? p.organization?.websiteUrl;
    const w = site ? normalizeWebsite(site) : null;
    if (w && "domain" in w) patch.company_domain = w.domain;
  }
  const current = p.employmentHistory.find((e) => e.current);
  const started = isoDate(current?.startDate);
  if (started) patch.job_started_at = started;
  return patch;
}

function organizationPatch(o: ApolloOrganization): CompanyPatch {
  const patch: CompanyPatch = { enriched: true };
  if (o.name) patch.name = o.name;
  if (o.industry) patch.industry = o.industry.toLowerCase();
  if (o.estimatedNumEmployees != null) patch.employee_count = o.estimatedNumEmployees;
  if (o.country) {
    const cc = normalizeCountry(o.country);
    if (cc) patch.country = cc;
  }
  if (o.linkedinUrl) patch.linkedin_url = o.linkedinUrl;
  if (o.technologyNames.length) patch.technologies = o.technologyNames.map((t) => t.toLowerCase());
  const funded = isoDate(o.latestFundingRoundDate);
  if (funded) patch.last_funding_at = funded;
  if (o.id) patch.apollo_organization_id = o.id;
  return patch;
}

function needsPerson(l: ScoutLead): boolean {
  return !l.enriched_at || l.email_status === "unknown" || !l.title || !l.linkedin_key;
}

function companyStale(c: ScoutCompany | undefined, now: number): boolean {
  return !c?.enriched_at || now - c.enriched_at.getTime() > COMPANY_FRESH_DAYS * 86_400_000;
}

/** Keywords (lower case) from `wanted` that appear in the text. */
function keywordsIn(text: string, wanted: string[]): string[] {
  const hay = text.toLowerCase();
  return wanted.filter((k) => k && hay.includes(k));
}

export interface ScoutInput {
  leads: ScoutLead[];
  companies: Map<string, ScoutCompany>;
  /** Buying-signal keywords any ICP looks for (lower case). */
  signalKeywords: string[];
  /** After the Apollo steps: each lead's tier on what is known so far (the pre-enrichment score). */
  preScoreTiers: (patches: Map<string, LeadPatch>, companies: Map<string, CompanyPatch>) => Promise<Map<string, string>>;
  now?: number;
}

export interface ScoutOutput {
  leads: Map<string, LeadPatch>;
  companies: Map<string, CompanyPatch>;
  failures: StepFailure[];
  steps: Record<string, number>;
}

/** Enriches a batch; a failed step is reported per lead/domain and never throws the batch away. */
export async function scout(input: ScoutInput, clients: ScoutClients): Promise<ScoutOutput> {
  const now = input.now ?? Date.now();
  const leads = new Map<string, LeadPatch>(input.leads.map((l) => [l.id, {}]));
  const companies = new Map<string, CompanyPatch>();
  const failures: StepFailure[] = [];
  const steps: Record<string, number> = { apollo_person: 0, apollo_organization: 0, apify_linkedin: 0, website_signals: 0 };
  const domainOf = (l: ScoutLead) => leads.get(l.id)!.company_domain ?? l.company_domain;

  // 1. Apollo person match
  await mapLimit(input.leads.filter(needsPerson), 5, async (l) => {
    try {
      steps.apollo_person++;
      const p = await clients.apollo.matchPerson({
        id: l.apollo_person_id ?? undefined,
        email: l.email ?? undefined,
        linkedinUrl: l.linkedin_key ?? l.linkedin_url ?? undefined,
        firstName: l.first_name ?? undefined,
        lastName: l.last_name ?? undefined,
        domain: l.company_domain ?? undefined,
        organizationName: l.company_name ?? undefined,
      }, { leadId: l.id });
      if (p) Object.assign(leads.get(l.id)!, personPatch(l, p));
    } catch (err) {
      failures.push(failure("apollo_person", err, l.id, null));
    }
  });

  // 2. Apollo organisation, once per stale domain, with its open roles
  const domains = [...new Set(input.leads.map(domainOf).filter((d): d is string => !!d))]
    .filter((d) => companyStale(input.companies.get(d), now));
  await mapLimit(domains, 5, async (domain) => {
    try {
      steps.apollo_organization++;
      const org = await clients.apollo.enrichOrganization(domain);
      const patch: CompanyPatch = org ? organizationPatch(org) : { enriched: true };
      if (org?.id) {
        const postings = await clients.apollo.organizationJobPostings(org.id);
        if (postings.length) {
          patch.hiring_roles = [...new Set(postings.map((j) => j.title.toLowerCase()))];
          patch.hiring_seen_at = new Date(now).toISOString();
        }
      }
      companies.set(domain, patch);
    } catch (err) {
      failures.push(failure("apollo_organization", err, null, domain));
    }
  });

  // 3. Apify LinkedIn profile: only for leads with a profile URL that are Cool or better so far
  const tiers = await input.preScoreTiers(leads, companies);
  const linkedinWorthy = input.leads.filter((l) => {
    const key = leads.get(l.id)!.linkedin_key ?? l.linkedin_key;
    return key && !l.linkedin_found && ["hot", "warm", "cool"].includes(tiers.get(l.id) ?? "dead");
  });
  await mapLimit(linkedinWorthy, 3, async (l) => {
    try {
      steps.apify_linkedin++;
      const key = leads.get(l.id)!.linkedin_key ?? l.linkedin_key!;
      const profile = await clients.apify.linkedinProfile(key, { leadId: l.id });
      const patch = leads.get(l.id)!;
      patch.linkedin_found = profile !== null;
      if (profile) {
        patch.linkedin_connections = profile.connections;
        patch.linkedin_active_at = profile.lastActivityAt;
        if (!patch.job_started_at) {
          const started = isoDate(profile.jobStartedOn);
          if (started) patch.job_started_at = started;
        }
      }
    } catch (err) {
      failures.push(failure("apify_linkedin", err, l.id, null));
    }
  });

  // 4. Website signals, once per domain not checked recently
  const signalDomains = [...new Set(input.leads.map(domainOf).filter((d): d is string => !!d))].filter((d) => {
    const c = input.companies.get(d);
    return !c?.signals_checked_at || now - c.signals_checked_at.getTime() > COMPANY_FRESH_DAYS * 86_400_000;
  });
  await mapLimit(signalDomains, 3, async (domain) => {
    steps.website_signals++;
    const patch = companies.get(domain) ?? {};
    const found = new Set<string>();
    try {
      const tech = await clients.dataforseo.domainTechnologies(domain);
      if (tech.length) patch.technologies = [...new Set([...(patch.technologies ?? []), ...tech.map((t) => t.toLowerCase())])];
      const name = patch.name ?? input.leads.find((l) => domainOf(l) === domain)?.company_name ?? domain;
      const news = await clients.serper.news(`"${name}"`, { num: 10 });
      for (const n of news.news) for (const k of keywordsIn(`${n.title} ${n.snippet ?? ""}`, input.signalKeywords)) found.add(k);
      if (clients.fetchSite) {
        const html = await clients.fetchSite(domain).catch(() => null);
        patch.website_status = html === null ? "unreachable" : classifyPageHtml(html) === "parked" ? "parked" : "ok";
        if (html) for (const k of keywordsIn(html, input.signalKeywords)) found.add(k);
      }
      patch.signal_keywords = [...found];
      patch.signals_checked = true;
      companies.set(domain, patch);
    } catch (err) {
      if (Object.keys(patch).length) companies.set(domain, patch);
      failures.push(failure("website_signals", err, null, domain));
    }
  });

  return { leads, companies, failures, steps };
}
