// Apollo.io sandbox for local runs and tests: People API Search, People Enrichment, Organization
// Enrichment and Job Postings on Apollo's paths and wire format, answering with deterministic data
// derived from the request (seeded.ts). Mount at /sandbox/apollo; APOLLO_BASE_URL=<that>/api/v1.
import { Hono } from "hono";
import type { Context } from "hono";
import {
  BoundedMap,
  companyFromDomain,
  DAY_MS,
  delay,
  domainForSeed,
  failureNow,
  FIRST_NAMES,
  fraction,
  idFor,
  isoDate,
  LAST_NAMES,
  magicIn,
  MALFORMED_BODY,
  OnceOnly,
  SANDBOX_EPOCH,
  type SandboxCompany,
  type SandboxOptions,
  seeded,
  stableStringify,
  TITLES,
} from "./seeded.ts";

const FREEMAIL = /^(gmail|googlemail|yahoo|hotmail|outlook|live|icloud|me|aol|proton|protonmail|bigpond)\./;

interface Employment {
  title: string;
  organization_name: string;
  start_date: string;
  end_date: string | null;
  current: boolean;
}

interface SandboxPerson {
  id: string;
  firstName: string;
  lastName: string;
  title: string;
  seniority: string;
  email: string | null;
  emailStatus: string;
  linkedinUrl: string | null;
  city: string;
  state: string;
  country: string;
  company: SandboxCompany;
  employment: Employment[];
}

interface Hints {
  id?: string;
  email?: string;
  linkedinUrl?: string;
  firstName?: string;
  lastName?: string;
  domain?: string;
  organizationName?: string;
}

function cap(s: string): string {
  return s ? s[0].toUpperCase() + s.slice(1).toLowerCase() : s;
}

function slugOf(linkedinUrl: string): string | null {
  const m = /linkedin\.com\/in\/([^/?#]+)/i.exec(linkedinUrl);
  return m ? decodeURIComponent(m[1]).toLowerCase() : null;
}

function emailLocal(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, "");
}

// Apollo's People Search sends person_titles[]=… in query form and person_titles in JSON: accept both.
async function readParams(c: Context): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const url = new URL(c.req.url);
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    if (key.endsWith("[]")) out[key.slice(0, -2)] = values;
    else out[key] = values[values.length - 1];
  }
  if (c.req.method !== "GET") {
    const text = await c.req.text();
    if (text.trim()) {
      const body = JSON.parse(text);
      if (body && typeof body === "object" && !Array.isArray(body)) Object.assign(out, body);
    }
  }
  return out;
}

const asString = (v: unknown): string | undefined => (typeof v === "string" && v.trim() ? v.trim() : undefined);
const asStrings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string" && x.trim() !== "") : typeof v === "string" && v ? [v] : [];

export function createApolloSandbox(opts: SandboxOptions = {}): Hono {
  const epoch = opts.epoch ?? SANDBOX_EPOCH;
  const personMiss = opts.noMatchRate ?? 0.15;
  const orgMiss = opts.noMatchRate ?? 0.1;
  const once = new OnceOnly();
  // What search showed, so matching a search result by id returns the same person (bounded).
  const people = new BoundedMap<string, SandboxPerson>(100_000);
  const byEmail = new BoundedMap<string, string>(100_000);
  const byLinkedin = new BoundedMap<string, string>(100_000);
  const orgDomains = new BoundedMap<string, string>(100_000);

  function company(domain: string): SandboxCompany {
    const co = companyFromDomain(domain, epoch);
    orgDomains.set(co.id, co.domain);
    return co;
  }

  function remember(p: SandboxPerson): SandboxPerson {
    people.set(p.id, p);
    if (p.email) byEmail.set(p.email.toLowerCase(), p.id);
    const slug = p.linkedinUrl ? slugOf(p.linkedinUrl) : null;
    if (slug) byLinkedin.set(slug, p.id);
    return p;
  }

  /** A person from whatever the caller knows; everything not given is derived from the strongest key. */
  function personFrom(h: Hints, overrides: Partial<Pick<SandboxPerson, "title" | "seniority">> = {}): SandboxPerson {
    const email = h.email?.toLowerCase();
    const slug = h.linkedinUrl ? slugOf(h.linkedinUrl) : null;
    const seed = h.id ?? email ?? (slug ? `li:${slug}` : `${h.firstName}|${h.lastName}|${h.domain ?? h.organizationName}`);
    const r = seeded(`person:${seed}`);
    const emailDomain = email?.split("@")[1];
    const domain = (emailDomain && !FREEMAIL.test(emailDomain) ? emailDomain : undefined) ??
      h.domain?.toLowerCase().replace(/^www\./, "") ??
      (h.organizationName ? `${h.organizationName.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "")}.com.au` : undefined) ??
      domainForSeed(seed);
    const co = company(domain);
    const fromEmail = email?.split("@")[0].split(/[._-]/).filter((p) => /^[a-z]{2,}$/.test(p));
    const fromSlug = slug?.split("-").filter((p) => /^[a-z]{2,}$/.test(p));
    const firstName = h.firstName ?? (fromEmail?.[0] ? cap(fromEmail[0]) : fromSlug?.[0] ? cap(fromSlug[0]) : r.pick(FIRST_NAMES));
    const lastName = h.lastName ?? (fromEmail?.[1] ? cap(fromEmail[1]) : fromSlug?.[1] ? cap(fromSlug[1]) : r.pick(LAST_NAMES));
    const [title, seniority] = overrides.title ? [overrides.title, overrides.seniority ?? "manager"] : r.pick(TITLES);
    const roll = r.next();
    const emailStatus = roll < 0.65 ? "verified" : roll < 0.8 ? "unverified" : roll < 0.9 ? "likely to engage" : "unavailable";
    const started = epoch - r.int(20, 2600) * DAY_MS;
    const employment: Employment[] = [{ title, organization_name: co.name, start_date: isoDate(started), end_date: null, current: true }];
    let end = started;
    for (let i = r.int(0, 2); i > 0; i--) {
      const prev = companyFromDomain(domainForSeed(`${seed}:prev:${i}`), epoch);
      const begin = end - r.int(300, 1800) * DAY_MS;
      employment.push({ title: r.pick(TITLES)[0], organization_name: prev.name, start_date: isoDate(begin), end_date: isoDate(end), current: false });
      end = begin;
    }
    const id = h.id ?? idFor(`person:${seed}`);
    const linkedinUrl = h.linkedinUrl ? `http://www.linkedin.com/in/${slug}` :
      r.chance(0.85) ? `http://www.linkedin.com/in/${emailLocal(firstName)}-${emailLocal(lastName)}-${id.slice(0, 6)}` : null;
    return {
      id,
      firstName,
      lastName,
      title,
      seniority,
      email: emailStatus === "unavailable" && !email ? null : email ?? `${emailLocal(firstName)}.${emailLocal(lastName)}@${co.domain}`,
      emailStatus,
      linkedinUrl,
      city: co.city,
      state: co.state,
      country: co.country,
      company: co,
      employment,
    };
  }

  function orgJson(co: SandboxCompany) {
    return {
      id: co.id,
      name: co.name,
      website_url: co.websiteUrl,
      linkedin_url: co.linkedinUrl,
      primary_domain: co.domain,
      industry: co.industry,
      estimated_num_employees: co.employees,
      annual_revenue: co.annualRevenue,
      founded_year: co.foundedYear,
      city: co.city,
      state: co.state,
      country: co.country,
      technology_names: co.technologies,
      current_technologies: co.technologies.map((name) => ({ uid: name.toLowerCase().replace(/\W+/g, "_"), name })),
      keywords: co.keywords,
      latest_funding_round_date: co.fundingDate ? `${co.fundingDate}T00:00:00.000+00:00` : null,
      latest_funding_stage: co.fundingStage,
      total_funding: co.totalFunding,
      short_description: co.description,
    };
  }

  function personJson(p: SandboxPerson) {
    return {
      id: p.id,
      first_name: p.firstName,
      last_name: p.lastName,
      name: `${p.firstName} ${p.lastName}`,
      title: p.title,
      headline: `${p.title} at ${p.company.name}`,
      seniority: p.seniority,
      email: p.email,
      email_status: p.emailStatus,
      linkedin_url: p.linkedinUrl,
      city: p.city,
      state: p.state,
      country: p.country,
      organization_id: p.company.id,
      organization: orgJson(p.company),
      employment_history: p.employment.map((e, i) => ({ id: idFor(`${p.id}:job:${i}`), ...e })),
    };
  }

  /** The failure a magic value asks for, in Apollo's shapes; null to answer normally. */
  async function simulate(c: Context, value: string, scope: string): Promise<Response | null> {
    const f = failureNow(value, once, scope);
    if (f === "ratelimit") {
      c.header("retry-after", String(opts.retryAfterSeconds ?? 1));
      return c.json({ message: `The maximum number of api calls allowed for api/v1/${scope} is 200 times per minute.` }, 429);
    }
    if (f === "servererror") return c.json({ error: "Internal Server Error" }, 500);
    if (f === "malformed") return c.body(MALFORMED_BODY, 200, { "content-type": "application/json" });
    if (f === "slow") await delay(opts.slowMs ?? 2000);
    return null;
  }

  const app = new Hono().basePath("/api/v1");

  // Any non-empty key is accepted (x-api-key, or api_key in the query as older clients send it).
  app.use("*", async (c, next) => {
    const key = c.req.header("x-api-key") ?? new URL(c.req.url).searchParams.get("api_key");
    if (!key?.trim()) {
      return c.json({ error: "Invalid access credentials.", error_code: "INVALID_API_KEY" }, 401);
    }
    await next();
  });

  app.onError((err, c) => c.json({ error: err instanceof SyntaxError ? `Invalid JSON: ${err.message}` : "Internal Server Error" }, err instanceof SyntaxError ? 422 : 500));

  app.post("/mixed_people/api_search", async (c) => {
    const p = await readParams(c);
    const page = Math.max(1, Number(p.page ?? 1) || 1);
    const perPage = Number(p.per_page ?? 10) || 10;
    if (perPage < 1 || perPage > 100) return c.json({ error: "per_page must be between 1 and 100" }, 422);
    const filters = {
      person_titles: asStrings(p.person_titles),
      person_seniorities: asStrings(p.person_seniorities),
      person_locations: asStrings(p.person_locations),
      organization_locations: asStrings(p.organization_locations),
      organization_num_employees_ranges: asStrings(p.organization_num_employees_ranges),
      q_organization_domains_list: asStrings(p.q_organization_domains_list),
      q_keywords: asString(p.q_keywords),
      include_similar_titles: p.include_similar_titles === false || p.include_similar_titles === "false" ? false : undefined,
    };
    const filterSeed = stableStringify(filters);
    const failure = await simulate(c, filterSeed, "mixed_people/api_search");
    if (failure) return failure;

    const r = seeded(`search:${filterSeed}`);
    const narrow = filters.person_titles.length + filters.person_seniorities.length + filters.person_locations.length +
      filters.organization_locations.length + filters.organization_num_employees_ranges.length + (filters.q_keywords ? 2 : 0);
    const total = magicIn(filterSeed) === "nomatch" ? 0
      : filters.q_organization_domains_list.length ? filters.q_organization_domains_list.length * r.int(1, 6)
      : Math.round(r.int(200, 60_000) / (1 + narrow));
    const shown = Math.min(total, 50_000); // Apollo displays 50,000 at most (500 pages of 100)
    const ranges = filters.organization_num_employees_ranges
      .map((s) => s.split(",").map(Number)).filter(([lo, hi]) => Number.isFinite(lo) && Number.isFinite(hi));
    const seniorTitles = filters.person_seniorities.length
      ? TITLES.filter(([, s]) => filters.person_seniorities.includes(s))
      : [];

    const out = [];
    for (let i = (page - 1) * perPage; i < Math.min(shown, page * perPage); i++) {
      // Each result is a function of (filters, index) only, so pages are stable and never overlap.
      const seed = `${filterSeed}#${i}`;
      const pr = seeded(`row:${seed}`);
      let co: SandboxCompany | undefined;
      if (filters.q_organization_domains_list.length) {
        co = company(filters.q_organization_domains_list[i % filters.q_organization_domains_list.length]);
      } else {
        // Pick a domain whose (fixed) size and country satisfy the filters, so every sandbox agrees on it.
        for (let k = 0; k < 400 && !co; k++) {
          const candidate = companyFromDomain(domainForSeed(`${seed}:${k}`), epoch);
          const sizeOk = !ranges.length || ranges.some(([lo, hi]) => candidate.employees >= lo && candidate.employees <= hi);
          const placeOk = !filters.organization_locations.length ||
            filters.organization_locations.some((l) => [candidate.country, candidate.city, candidate.state].some((x) => x.toLowerCase() === l.toLowerCase()));
          if ((sizeOk && placeOk) || k === 399) co = company(candidate.domain);
        }
      }
      const [title, seniority] = filters.person_titles.length
        ? [pr.pick(filters.person_titles), seniorTitles.length ? pr.pick(seniorTitles)[1] : "manager"]
        : seniorTitles.length ? pr.pick(seniorTitles) : pr.pick(TITLES);
      const person = personFrom({ id: idFor(`search:${seed}`), domain: co!.domain }, { title, seniority });
      if (filters.person_locations.length) {
        const where = pr.pick(filters.person_locations);
        person.city = where;
      }
      remember(person);
      out.push({
        id: person.id,
        first_name: person.firstName,
        last_name_obfuscated: `${person.lastName[0]}***${person.lastName.slice(-1)}`,
        title: person.title,
        last_refreshed_at: new Date(epoch - pr.int(1, 90) * DAY_MS).toISOString(),
        has_email: person.email !== null,
        has_city: true,
        has_state: true,
        has_country: true,
        has_direct_phone: pr.chance(0.4) ? "Yes" : "Maybe: please request direct dial via people/bulk_match",
        organization: {
          name: person.company.name,
          primary_domain: person.company.domain,
          has_industry: true,
          has_phone: pr.chance(0.7),
          has_city: true,
          has_state: true,
          has_country: true,
          has_zip_code: pr.chance(0.6),
          has_revenue: true,
          has_employee_count: true,
        },
      });
    }
    return c.json({
      total_entries: total,
      pagination: { page, per_page: perPage, total_entries: total, total_pages: Math.ceil(shown / perPage) },
      people: out,
    });
  });

  app.post("/people/match", async (c) => {
    const p = await readParams(c);
    const h: Hints = {
      id: asString(p.id),
      email: asString(p.email)?.toLowerCase(),
      linkedinUrl: asString(p.linkedin_url),
      firstName: asString(p.first_name),
      lastName: asString(p.last_name),
      domain: asString(p.domain),
      organizationName: asString(p.organization_name),
    };
    if (!h.id && !h.email && !h.linkedinUrl && !(h.firstName && h.lastName) && !asString(p.name)) {
      return c.json({ error: "Please provide at least one of: id, email, linkedin_url, or name with domain/organization_name" }, 422);
    }
    const probe = [h.id, h.email, h.linkedinUrl, h.firstName, h.lastName, h.domain, h.organizationName].filter(Boolean).join("|");
    const failure = await simulate(c, probe, "people/match");
    if (failure) return failure;

    const slug = h.linkedinUrl ? slugOf(h.linkedinUrl) : null;
    const knownId = (h.id && people.has(h.id) ? h.id : undefined) ??
      (h.email ? byEmail.get(h.email) : undefined) ?? (slug ? byLinkedin.get(slug) : undefined);
    if (knownId) return c.json({ person: personJson(people.get(knownId)!) });
    const seed = h.id ?? h.email ?? slug ?? probe;
    if (magicIn(probe) === "nomatch" || fraction(`match:${seed}`) < personMiss) return c.json({ person: null });
    return c.json({ person: personJson(remember(personFrom(h))) });
  });

  app.get("/organizations/enrich", async (c) => {
    const domain = (c.req.query("domain") ?? "").trim().toLowerCase().replace(/^https?:\/\//, "").replace(/^www\./, "").replace(/\/.*$/, "");
    if (!/^[a-z0-9.-]+\.[a-z]{2,63}$/.test(domain)) return c.json({ error: "Invalid domain" }, 422);
    const failure = await simulate(c, domain, "organizations/enrich");
    if (failure) return failure;
    if (magicIn(domain) === "nomatch" || fraction(`org:${domain}`) < orgMiss) return c.json({});
    return c.json({ organization: orgJson(company(domain)) });
  });

  app.get("/organizations/:id/job_postings", async (c) => {
    const id = c.req.param("id");
    const failure = await simulate(c, id, "organizations/job_postings");
    if (failure) return failure;
    const domain = orgDomains.get(id);
    const roles = domain ? company(domain).hiringRoles : [];
    return c.json({
      organization_job_postings: roles.map((role, i) => ({
        id: idFor(`${id}:posting:${i}`),
        title: role.title,
        url: `https://jobs.example.com/${id}/${i}`,
        city: domain ? company(domain).city : null,
        state: domain ? company(domain).state : null,
        country: domain ? company(domain).country : null,
        last_seen_at: new Date(epoch).toISOString(),
        posted_at: `${role.postedAt}T00:00:00.000Z`,
      })),
      pagination: { page: 1, per_page: 25, total_entries: roles.length, total_pages: 1 },
    });
  });

  return app;
}
