// The ALS scorer against the real schema (PGlite, or PostgreSQL with DATABASE_URL): a hand-computed
// table over every rule, gate and tier boundary; rescoring; events; assignments; properties.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { asService, db, type Tx } from "../../shared/db/client.ts";
import {
  COMPONENTS, rescoreAssignments, rescorePool, tierFor, tierSql, TIERS, type Component,
} from "../../shared/engines/scorer.ts";
import { getStack, unique } from "../helpers/stack.ts";

// Every time window is measured back from here.
const NOW = new Date("2026-06-15T12:00:00Z");

beforeAll(async () => {
  await getStack();
});

// -------------------------------------------------------------------------------------
// Fixtures: companies, leads and suppressions from compact specs, set-based
// -------------------------------------------------------------------------------------

interface CompanySpec {
  industry?: string | null;
  employees?: number | null;
  technologies?: string[];
  hiringRoles?: string[];
  hiringSeenAt?: string | null;
  lastFundingAt?: string | null;
  signals?: string[];
  country?: string | null;
}

type SuppressionKind = "email" | "domain" | "email_domain" | "phone" | "linkedin";

interface LeadSpec {
  title?: string | null;
  email?: "verified" | "catch_all" | "unknown" | "invalid" | "none"; // default verified
  emailAtOtherDomain?: boolean;
  phone?: boolean;
  phoneCountry?: string;
  linkedin?: boolean; // linkedin_key known
  linkedinFound?: boolean;
  connections?: number | null;
  activeAt?: string | null;
  jobStartedAt?: string | null;
  country?: string | null; // default AU
  company?: CompanySpec | null; // default Marketing & Advertising, 100 people; null = no company
  suppress?: SuppressionKind[]; // global suppressions
  suppressFor?: Array<{ clientId: string; kind: SuppressionKind }>;
}

interface Seeded {
  id: string;
  email: string | null;
  domain: string | null;
  emailDomain: string;
  phone: string | null;
  linkedinKey: string | null;
}

let phoneSeq = 0;
/** E.164 numbers unique to this run (the pool's phone_e164 is unique). */
function phone(): string {
  phoneSeq += 1;
  return `+8${String(Date.now()).slice(-9)}${String(phoneSeq).padStart(4, "0")}`;
}

const DEFAULT_COMPANY: CompanySpec = { industry: "Marketing & Advertising", employees: 100 };

async function seed(tx: Tx, specs: LeadSpec[], opts: { enriched?: boolean } = {}): Promise<Seeded[]> {
  const seeded: Seeded[] = [];
  const companies: Record<string, unknown>[] = [];
  const leads: Record<string, unknown>[] = [];
  const suppressions: Array<{ client_id: string | null; kind: string; value: string }> = [];
  for (const spec of specs) {
    const company = spec.company === undefined ? DEFAULT_COMPANY : spec.company;
    const domain = company ? `${unique("co")}.example` : null;
    if (company && domain) {
      companies.push({
        domain, industry: company.industry ?? null, employee_count: company.employees ?? null,
        technologies: company.technologies ?? [], hiring_roles: company.hiringRoles ?? [],
        hiring_seen_at: company.hiringSeenAt ?? null, last_funding_at: company.lastFundingAt ?? null,
        signal_keywords: company.signals ?? [], country: company.country ?? null,
      });
    }
    const emailDomain = spec.emailAtOtherDomain || !domain ? `${unique("mail")}.example` : domain;
    const emailStatus = spec.email ?? "verified";
    const s: Seeded = {
      id: crypto.randomUUID(),
      email: emailStatus === "none" ? null : `${unique("p")}@${emailDomain}`,
      domain,
      emailDomain,
      phone: spec.phone ? phone() : null,
      linkedinKey: spec.linkedin ? `https://www.linkedin.com/in/${unique("li")}` : null,
    };
    seeded.push(s);
    leads.push({
      id: s.id, email: s.email, email_status: emailStatus === "none" ? "unknown" : emailStatus,
      title: spec.title === undefined ? null : spec.title, company_domain: domain, phone_e164: s.phone,
      phone_country: spec.phoneCountry ?? null, linkedin_key: s.linkedinKey, linkedin_found: spec.linkedinFound ?? false,
      linkedin_connections: spec.connections ?? null, linkedin_active_at: spec.activeAt ?? null,
      job_started_at: spec.jobStartedAt ?? null, country: spec.country === undefined ? "AU" : spec.country,
    });
    const value = (kind: SuppressionKind) =>
      ({ email: s.email, domain: s.domain, email_domain: s.emailDomain, phone: s.phone, linkedin: s.linkedinKey })[kind]!;
    const kindOf = (kind: SuppressionKind) => (kind === "email_domain" ? "domain" : kind);
    for (const kind of spec.suppress ?? []) suppressions.push({ client_id: null, kind: kindOf(kind), value: value(kind) });
    for (const x of spec.suppressFor ?? []) suppressions.push({ client_id: x.clientId, kind: kindOf(x.kind), value: value(x.kind) });
  }
  if (companies.length) {
    await tx`
      insert into public.companies (domain, industry, employee_count, technologies, hiring_roles, hiring_seen_at,
                                    last_funding_at, signal_keywords, country)
      select * from jsonb_to_recordset(${tx.json(companies as never)}) as x (domain text, industry text,
        employee_count int, technologies text[], hiring_roles text[], hiring_seen_at timestamptz, last_funding_at date,
        signal_keywords text[], country text)`;
  }
  await tx`
    insert into public.lead_pool (id, email, email_status, title, company_domain, phone_e164, phone_country, linkedin_key,
                                  linkedin_found, linkedin_connections, linkedin_active_at, job_started_at, country, source)
    select x.*, 'import' from jsonb_to_recordset(${tx.json(leads as never)}) as x (id uuid, email text, email_status text,
      title text, company_domain text, phone_e164 text, phone_country text, linkedin_key text, linkedin_found boolean,
      linkedin_connections int, linkedin_active_at timestamptz, job_started_at date, country text)`;
  if (suppressions.length) {
    await tx`
      insert into public.suppressions (client_id, kind, value, reason)
      select x.client_id, x.kind, x.value, 'scorer test' from jsonb_to_recordset(${tx.json(suppressions as never)})
        as x (client_id uuid, kind text, value text)`;
  }
  if (opts.enriched ?? true) {
    const ids = seeded.map((s) => s.id);
    await tx`update public.lead_pool set status = 'enriching' where id = any(${ids}::uuid[])`;
    await tx`update public.lead_pool set status = 'enriched' where id = any(${ids}::uuid[])`;
  }
  return seeded;
}

interface IcpSpec {
  clientId?: string | null;
  targetTitles?: string[];
  industries?: string[];
  adjacent?: string[];
  employeeMin?: number | null;
  employeeMax?: number | null;
  technologies?: string[];
  hiringRoles?: string[];
  buyingSignals?: string[];
  countries?: string[];
  approvedAt?: string | null;
  isDefault?: boolean;
}

async function createIcp(tx: Tx, spec: IcpSpec): Promise<string> {
  const [row] = await tx`
    insert into public.icps (client_id, name, target_titles, industries, adjacent_industries, employee_min, employee_max,
                             technologies, hiring_roles, buying_signals, countries, approved_at, is_agency_default)
    values (${spec.clientId ?? null}, ${unique("icp")}, ${spec.targetTitles ?? []}, ${spec.industries ?? []},
            ${spec.adjacent ?? []}, ${spec.employeeMin ?? null}, ${spec.employeeMax ?? null}, ${spec.technologies ?? []},
            ${spec.hiringRoles ?? []}, ${spec.buyingSignals ?? []}, ${spec.countries ?? []}, ${spec.approvedAt ?? null},
            ${spec.isDefault ?? false})
    returning id`;
  return row.id as string;
}

/** The table's ICP: its size range 51–500 covers the bands 51–200 and 201–500. */
const ICP_T: IcpSpec = {
  targetTitles: ["Growth Marketer", "Revenue Operations"],
  industries: ["Marketing & Advertising", "Computer Software"],
  adjacent: ["Internet"],
  employeeMin: 51,
  employeeMax: 500,
  technologies: ["HubSpot", "Salesforce", "Segment", "Google Analytics"],
  hiringRoles: ["Account Executive", "SDR"],
  buyingSignals: ["expansion", "new funding"],
  countries: ["AU", "NZ"],
};

async function createClient(tx: Tx, competitors: string[] = []): Promise<string> {
  const [row] = await tx`
    insert into public.clients (slug, name, competitor_domains) values (${unique("scorer")}, 'Scorer test', ${competitors})
    returning id`;
  return row.id as string;
}

type Scores = Record<Component, number> & { gate: string | null; score: number; tier: string };

async function poolScores(tx: Tx, ids: string[]): Promise<Map<string, Scores & { status: string; scored_icp_id: string | null }>> {
  const rows = await tx`
    select id, status, scored_icp_id, als_title as title, als_industry as industry, als_size as size, als_tech as tech,
           als_intent as intent, als_linkedin as linkedin, als_deduction as deduction, als_gate as gate,
           als_score as score, als_tier as tier
    from public.lead_pool where id = any(${ids}::uuid[])`;
  return new Map(rows.map((r) => [r.id as string, r as never]));
}

/** Runs fn in a transaction that is always rolled back (for the single agency default ICP, say). */
async function rolledBack(fn: (tx: Tx) => Promise<void>): Promise<void> {
  const rollback = new Error("rollback");
  await asService({ role: "test", reason: "scorer test" }, async (tx) => {
    await fn(tx);
    throw rollback;
  }).catch((e) => {
    if (e !== rollback) throw e;
  });
}

const service = <T>(fn: (tx: Tx) => Promise<T>) => asService({ role: "service:scorer", reason: "ALS scored" }, fn);

// -------------------------------------------------------------------------------------
// The hand-computed table. ICP_T, now = 2026-06-15T12:00Z, so the windows start at: hiring
// 2026-04-16T12:00Z (60 days), funding 2025-06-15 (12 months), job change 2026-03-17 (90 days),
// LinkedIn activity 2026-05-16T12:00Z (30 days). Unless a row says otherwise: verified email,
// country AU, company in Marketing & Advertising with 100 people (inside 51–500).
// Columns: title industry size tech intent linkedin deduction | gate | total tier
// -------------------------------------------------------------------------------------

interface Row {
  name: string;
  lead: LeadSpec;
  expect: [number, number, number, number, number, number, number, string | null, number, string];
}

const MA = "Marketing & Advertising";

const TABLE: Row[] = [
  {
    name: "R01 every cap reached (tech 4×5, intent 4×5): 100, hot",
    lead: {
      title: "Senior Growth Marketer", linkedin: true, linkedinFound: true, connections: 800, activeAt: "2026-06-10T09:00:00Z",
      jobStartedAt: "2026-05-16",
      company: {
        industry: "marketing & advertising", employees: 120,
        technologies: ["HubSpot", "Salesforce", "Segment", "Google Analytics", "WordPress"],
        hiringRoles: ["Senior Account Executive"], hiringSeenAt: "2026-06-05T00:00:00Z", lastFundingAt: "2026-04-01",
        signals: ["Expansion into APAC"],
      },
    },
    expect: [25, 20, 15, 15, 15, 10, 0, null, 100, "hot"],
  },
  {
    name: "R02 target title beats 'head'; size at the range's top; hiring and funding on their windows' first moment: 85, hot",
    lead: {
      title: "Head of Revenue Operations",
      company: {
        industry: "Computer Software", employees: 500, technologies: ["hubspot", "salesforce", "segment"],
        hiringRoles: ["SDR"], hiringSeenAt: "2026-04-16T12:00:00Z", lastFundingAt: "2025-06-15",
      },
    },
    expect: [25, 20, 15, 15, 10, 0, 0, null, 85, "hot"],
  },
  {
    name: "R03 C-level; 'and' = '&'; size at the range's bottom; job change on day 90; exactly 500 connections: 84, warm",
    lead: {
      title: "CEO & Founder", jobStartedAt: "2026-03-17", linkedinFound: true, connections: 500,
      company: { industry: "Marketing and Advertising", employees: 51, technologies: ["Segment", "google analytics"], signals: ["new funding"] },
    },
    expect: [22, 20, 15, 10, 10, 7, 0, null, 84, "warm"],
  },
  {
    name: "R04 vice president is VP, not president; one band below the range; tech case-insensitive; hiring: 60, warm",
    lead: {
      title: "Vice President, Sales", linkedinFound: true,
      company: { industry: "Computer Software", employees: 30, technologies: ["HUBSPOT"], hiringRoles: ["Account Executive"], hiringSeenAt: "2026-05-01T00:00:00Z" },
    },
    expect: [18, 20, 8, 5, 5, 4, 0, null, 60, "warm"],
  },
  {
    name: "R05 manager; tech as a phrase ('HubSpot CRM'); hiring 1 s and funding 1 day too old; 499 connections: 59, cool",
    lead: {
      title: "Marketing Manager", linkedinFound: true, connections: 499,
      company: {
        industry: MA, employees: 200, technologies: ["Salesforce", "HubSpot CRM"], hiringRoles: ["Account Executive"],
        hiringSeenAt: "2026-04-16T11:59:59Z", lastFundingAt: "2025-06-14",
      },
    },
    expect: [10, 20, 15, 10, 0, 4, 0, null, 59, "cool"],
  },
  {
    name: "R06 'lead' is manager level; adjacent industry; hiring a role the ICP doesn't name; job change day 91; non-ICP signal; activity 1 s too old: 35, cool",
    lead: {
      title: "Team Lead, Partnerships", jobStartedAt: "2026-03-16", activeAt: "2026-05-16T11:59:59Z",
      company: { industry: "Internet", employees: 201, hiringRoles: ["Warehouse Operative"], hiringSeenAt: "2026-06-01T00:00:00Z", signals: ["rebrand"] },
    },
    expect: [10, 10, 15, 0, 0, 0, 0, null, 35, "cool"],
  },
  {
    name: "R07 individual contributor; unknown industry and size; LinkedIn active on day 30: 34, cold",
    lead: {
      title: "Software Engineer", jobStartedAt: "2026-05-01", linkedinFound: true, connections: 1200, activeAt: "2026-05-16T12:00:00Z",
      company: { industry: null, employees: null, technologies: ["Segment"] },
    },
    expect: [4, 5, 5, 5, 5, 10, 0, null, 34, "cold"],
  },
  {
    name: "R08 no title (unknown 0); two bands below the range: 20, cold",
    lead: { title: null, company: { industry: "Computer Software", employees: 5 } },
    expect: [0, 20, 0, 0, 0, 0, 0, null, 20, "cold"],
  },
  {
    name: "R09 'lead generation' is not a lead; other industry; one band above the range: 19, dead",
    lead: { title: "Lead Generation Specialist", linkedinFound: true, connections: 500, company: { industry: "Retail", employees: 600 } },
    expect: [4, 0, 8, 0, 0, 7, 0, null, 19, "dead"],
  },
  {
    name: "R10 coordinator: the deduction takes 39 to 34, cold",
    lead: { title: "Marketing Coordinator" },
    expect: [4, 20, 15, 0, 0, 0, -5, null, 34, "cold"],
  },
  {
    name: "R11 'Executive Assistant to the CEO' is a junior title, not C-level: 43, cool",
    lead: { title: "Executive Assistant to the CEO", linkedinFound: true, company: { industry: MA, employees: 100, technologies: ["Salesforce"] } },
    expect: [4, 20, 15, 5, 0, 4, -5, null, 43, "cool"],
  },
  {
    name: "R12 4 − 5 clamps at 0, dead (no gate)",
    lead: { title: "Student", company: { industry: "Agriculture", employees: 20000 } },
    expect: [4, 0, 0, 0, 0, 0, -5, null, 0, "dead"],
  },
  {
    name: "R13 no deliverable channel: dead, gate no_channel, components kept",
    lead: { title: "Chief Marketing Officer", email: "unknown" },
    expect: [22, 20, 15, 0, 0, 0, 0, "no_channel", 0, "dead"],
  },
  {
    name: "R14 a catch-all email is a channel: 57, cool",
    lead: { title: "Co-Founder", email: "catch_all", company: { industry: MA, employees: 300 } },
    expect: [22, 20, 15, 0, 0, 0, 0, null, 57, "cool"],
  },
  {
    name: "R15 an invalid email but a phone: 53, cool",
    lead: { title: "Director of Marketing", email: "invalid", phone: true, company: { industry: MA, employees: 300 } },
    expect: [18, 20, 15, 0, 0, 0, 0, null, 53, "cool"],
  },
  {
    name: "R16 no email, a LinkedIn profile only: 61, warm",
    lead: { title: "Owner", email: "none", linkedin: true, linkedinFound: true, company: { industry: "Computer Software", employees: 60 } },
    expect: [22, 20, 15, 0, 0, 4, 0, null, 61, "warm"],
  },
  { name: "R17 globally suppressed email", lead: { title: "CEO", suppress: ["email"] }, expect: [22, 20, 15, 0, 0, 0, 0, "suppressed", 0, "dead"] },
  { name: "R18 suppressed company domain", lead: { title: "CEO", suppress: ["domain"] }, expect: [22, 20, 15, 0, 0, 0, 0, "suppressed", 0, "dead"] },
  { name: "R19 suppressed phone", lead: { title: "CEO", phone: true, suppress: ["phone"] }, expect: [22, 20, 15, 0, 0, 0, 0, "suppressed", 0, "dead"] },
  { name: "R20 suppressed LinkedIn profile", lead: { title: "CEO", linkedin: true, suppress: ["linkedin"] }, expect: [22, 20, 15, 0, 0, 0, 0, "suppressed", 0, "dead"] },
  {
    name: "R21 suppressed email domain (not the company's)",
    lead: { title: "CEO", emailAtOtherDomain: true, suppress: ["email_domain"] },
    expect: [22, 20, 15, 0, 0, 0, 0, "suppressed", 0, "dead"],
  },
  {
    name: "R22 suppressed and without a channel: suppressed comes first",
    lead: { title: "CEO", email: "unknown", suppress: ["email"] },
    expect: [22, 20, 15, 0, 0, 0, 0, "suppressed", 0, "dead"],
  },
  { name: "R23 outside the ICP's countries", lead: { title: "CEO", country: "US" }, expect: [22, 20, 15, 0, 0, 0, 0, "outside_countries", 0, "dead"] },
  {
    name: "R24 lead country unknown: the company's HQ (GB) decides",
    lead: { title: "CEO", country: null, company: { industry: MA, employees: 100, country: "GB" } },
    expect: [22, 20, 15, 0, 0, 0, 0, "outside_countries", 0, "dead"],
  },
  {
    name: "R25 lead country unknown: the phone's country (NZ) comes before the company's (US)",
    lead: { title: "CTO", country: null, phone: true, phoneCountry: "NZ", company: { industry: MA, employees: 100, country: "US" } },
    expect: [22, 20, 15, 0, 0, 0, 0, null, 57, "cool"],
  },
  {
    name: "R26 no country known anywhere is not 'outside'",
    lead: { title: "President", country: null, company: { industry: MA, employees: 100, country: null } },
    expect: [22, 20, 15, 0, 0, 0, 0, null, 57, "cool"],
  },
  {
    name: "R27 a client's own suppression does not touch the pool score",
    lead: { title: "CEO" }, // suppressFor is added in beforeAll (needs a client)
    expect: [22, 20, 15, 0, 0, 0, 0, null, 57, "cool"],
  },
  {
    name: "R28 no channel outranks outside_countries",
    lead: { title: "CEO", country: "US", email: "unknown" },
    expect: [22, 20, 15, 0, 0, 0, 0, "no_channel", 0, "dead"],
  },
  {
    name: "R29 no company row: industry and size unknown: 32, cold",
    lead: { title: "Founder", company: null },
    expect: [22, 5, 5, 0, 0, 0, 0, null, 32, "cold"],
  },
];

describe("the hand-computed table (pool leads, explicit ICP)", () => {
  let icpId: string;
  let seeded: Seeded[];
  let scored: number;
  let first: Awaited<ReturnType<typeof poolScores>>;

  beforeAll(async () => {
    await service(async (tx) => {
      icpId = await createIcp(tx, ICP_T);
      const clientId = await createClient(tx);
      const specs = TABLE.map((r) => (r.name.startsWith("R27") ? { ...r.lead, suppressFor: [{ clientId, kind: "email" as const }] } : r.lead));
      seeded = await seed(tx, specs);
    });
    scored = (await service((tx) => rescorePool(tx, { leadIds: seeded.map((s) => s.id), icpId, now: NOW }))).scored;
    first = await poolScores(db() as unknown as Tx, seeded.map((s) => s.id));
  });

  it("covers every tier boundary, both clamps and every gate", () => {
    const totals = new Set(TABLE.map((r) => r.expect[8]));
    for (const t of [100, 85, 84, 60, 59, 35, 34, 20, 19, 0]) expect(totals.has(t)).toBe(true);
    const gates = new Set(TABLE.map((r) => r.expect[7]));
    for (const g of ["suppressed", "no_channel", "outside_countries"]) expect(gates.has(g)).toBe(true);
    expect(TABLE.length).toBeGreaterThanOrEqual(20);
    expect(scored).toBe(TABLE.length);
  });

  it.each(TABLE.map((r, i) => [r.name, i] as const))("%s", (_name, i) => {
    const row = TABLE[i];
    const got = first.get(seeded[i].id)!;
    const [title, industry, size, tech, intent, linkedin, deduction, gate, score, tier] = row.expect;
    expect({ ...got }).toEqual({
      id: seeded[i].id, status: "scored", scored_icp_id: icpId,
      title, industry, size, tech, intent, linkedin, deduction, gate, score, tier,
    });
  });

  it("enriched → scored wrote one event and one outbox row per lead; a rescore writes none and keeps the status", async () => {
    const ids = seeded.map((s) => s.id);
    const count = async () => {
      const [e] = await db()`
        select count(*)::int as n, count(distinct entity_id)::int as leads from public.events
        where entity_type = 'lead' and kind = 'status_changed' and to_status = 'scored' and entity_id = any(${ids}::uuid[])`;
      const [o] = await db()`
        select count(*)::int as n from public.outbox
        where topic = 'lead.status_changed' and payload ->> 'to' = 'scored' and payload ->> 'id' = any(${ids}::text[])`;
      return { events: e.n, leads: e.leads, outbox: o.n };
    };
    expect(await count()).toEqual({ events: ids.length, leads: ids.length, outbox: ids.length });
    const [actor] = await db()`
      select distinct actor_role, reason, from_status from public.events
      where entity_type = 'lead' and to_status = 'scored' and entity_id = any(${ids}::uuid[])`;
    expect(actor).toEqual({ actor_role: "service:scorer", reason: "ALS scored", from_status: "enriched" });

    expect(await service((tx) => rescorePool(tx, { leadIds: ids, icpId, now: NOW }))).toEqual({ scored: ids.length });
    expect(await count()).toEqual({ events: ids.length, leads: ids.length, outbox: ids.length });
    const again = await poolScores(db() as unknown as Tx, ids);
    for (const id of ids) expect(again.get(id)).toEqual(first.get(id));
    const [stamp] = await db()`select min(scored_at) as min, max(scored_at) as max from public.lead_pool where id = any(${ids}::uuid[])`;
    expect([stamp.min.toISOString(), stamp.max.toISOString()]).toEqual([NOW.toISOString(), NOW.toISOString()]);

    // one second later R02's hiring signal (seen exactly 60 days before NOW) has left its window
    const r02 = seeded[TABLE.findIndex((r) => r.name.startsWith("R02"))].id;
    await service((tx) => rescorePool(tx, { leadIds: [r02], icpId, now: new Date(NOW.getTime() + 1000) }));
    expect((await poolScores(db() as unknown as Tx, [r02])).get(r02)).toMatchObject({ intent: 5, score: 80, tier: "warm", status: "scored" });
  });
});

describe("titles", () => {
  // [title, als_title, als_deduction] against ICP_T (targets "Growth Marketer", "Revenue Operations")
  const TITLES: Array<[string | null, number, number]> = [
    ["Founder", 22, 0], ["Co-founder & CEO", 22, 0], ["Chief Revenue Officer", 22, 0], ["President", 22, 0],
    ["Managing Director", 22, 0], ["Managing Partner", 22, 0], ["Business Owner", 22, 0], ["Product Owner", 4, 0],
    ["Vice President", 18, 0], ["SVP Engineering", 18, 0], ["Head of People", 18, 0], ["Creative Director", 18, 0],
    ["General Manager", 18, 0], ["Sales Manager", 10, 0], ["Supervisor", 10, 0], ["Tech Lead", 10, 0],
    ["Team Leader", 10, 0], ["Lead Generation Manager", 10, 0], ["Head of Lead Generation", 18, 0],
    ["Lead Generation Specialist", 4, 0], ["Account Executive", 4, 0], ["Growth Marketing", 4, 0],
    ["GROWTH MARKETER", 25, 0], ["Growth-Marketer (Contract)", 25, 0], ["Head of Revenue & Operations", 25, 0],
    ["Growth Marketer Intern", 25, -5], ["Growth Marketing Intern", 4, -5], ["Internal Auditor", 4, 0],
    ["Intern", 4, -5], ["Co-ordinator, Events", 4, -5], ["Assistant Director", 4, -5], ["Receptionist", 4, -5],
    ["PhD Student", 4, -5], ["Assistant to the Chief Executive", 4, -5], [null, 0, 0], ["", 0, 0], [" -- ", 0, 0],
  ];

  it("classifies by whole words, highest seniority first, junior titles capped", async () => {
    await rolledBack(async (tx) => {
      const icpId = await createIcp(tx, ICP_T);
      const seeded = await seed(tx, TITLES.map(([title]) => ({ title })));
      await rescorePool(tx, { leadIds: seeded.map((s) => s.id), icpId, now: NOW });
      const got = await poolScores(tx, seeded.map((s) => s.id));
      const actual = TITLES.map(([title], i) => [title, got.get(seeded[i].id)!.title, got.get(seeded[i].id)!.deduction]);
      expect(actual).toEqual(TITLES);
    });
  });
});

describe("ICPs", () => {
  it("an ICP without industries, size range or technologies: known 20/15, unknown 5/5, technology 0, no country gate", async () => {
    await rolledBack(async (tx) => {
      const icpId = await createIcp(tx, {});
      const [known, unknownFacts] = await seed(tx, [
        { title: "CEO", country: "US", company: { industry: "Retail", employees: 20000, technologies: ["HubSpot"] } },
        { title: "CEO", company: { industry: null, employees: null } },
      ]);
      await rescorePool(tx, { leadIds: [known.id, unknownFacts.id], icpId, now: NOW });
      const got = await poolScores(tx, [known.id, unknownFacts.id]);
      expect(got.get(known.id)).toMatchObject({ title: 22, industry: 20, size: 15, tech: 0, gate: null, score: 57, tier: "cool" });
      expect(got.get(unknownFacts.id)).toMatchObject({ industry: 5, size: 5, score: 32, tier: "cold" });
    });
  });

  it("a size range open at one end: one band next to the bands it touches gets 8", async () => {
    await rolledBack(async (tx) => {
      const minOnly = await createIcp(tx, { employeeMin: 1000 }); // bands 501–1,000 … 10,001+
      const maxOnly = await createIcp(tx, { employeeMax: 50 }); // bands 1–10, 11–50
      const sizes = [20000, 1000, 600, 400, 150, 0, 50, 120, 300];
      const seeded = await seed(tx, sizes.map((employees) => ({ title: "CEO", company: { industry: "Retail", employees } })));
      const ids = seeded.map((s) => s.id);
      await rescorePool(tx, { leadIds: ids, icpId: minOnly, now: NOW });
      const a = await poolScores(tx, ids);
      expect(ids.map((id) => a.get(id)!.size)).toEqual([15, 15, 8, 8, 0, 0, 0, 0, 8]);
      await rescorePool(tx, { leadIds: ids, icpId: maxOnly, now: NOW });
      const b = await poolScores(tx, ids);
      expect(ids.map((id) => b.get(id)!.size)).toEqual([0, 0, 0, 0, 8, 15, 15, 8, 0]);
    });
  });

  it("rescoring after an ICP change changes the scores (and writes no events)", async () => {
    await rolledBack(async (tx) => {
      const icpId = await createIcp(tx, ICP_T);
      const [lead] = await seed(tx, [{ title: "Growth Marketer", company: { industry: "Retail", employees: 8, technologies: ["Shopify"] } }]);
      await rescorePool(tx, { leadIds: [lead.id], icpId, now: NOW });
      expect((await poolScores(tx, [lead.id])).get(lead.id)).toMatchObject({ title: 25, industry: 0, size: 0, tech: 0, score: 25, tier: "cold" });
      const [{ n: before }] = await tx`select count(*)::int as n from public.events where entity_id = ${lead.id}`;

      await tx`update public.icps set industries = '{Retail}', employee_min = 1, employee_max = 10, technologies = '{shopify}',
                 target_titles = '{}', countries = '{}' where id = ${icpId}`;
      await rescorePool(tx, { leadIds: [lead.id], icpId, now: NOW });
      expect((await poolScores(tx, [lead.id])).get(lead.id)).toMatchObject({
        status: "scored", title: 4, industry: 20, size: 15, tech: 5, score: 44, tier: "cool",
      });
      const [{ n: after }] = await tx`select count(*)::int as n from public.events where entity_id = ${lead.id}`;
      expect(after).toBe(before);
    });
  });

  it("without an ICP it uses the agency default; with none it scores against the empty ICP", async () => {
    await rolledBack(async (tx) => {
      const [existing] = await tx`select id from public.icps where is_agency_default`;
      const defaultId = existing?.id ?? (await createIcp(tx, { isDefault: true }));
      await tx`update public.icps set target_titles = '{Growth Marketer}', industries = '{Retail}', adjacent_industries = '{}',
                 employee_min = null, employee_max = null, technologies = '{}', hiring_roles = '{}', buying_signals = '{}',
                 countries = '{}' where id = ${defaultId}`;
      const [lead] = await seed(tx, [{ title: "Growth Marketer", company: { industry: "Computer Software", employees: 40 } }]);
      await rescorePool(tx, { leadIds: [lead.id], now: NOW });
      expect((await poolScores(tx, [lead.id])).get(lead.id)).toMatchObject({ scored_icp_id: defaultId, title: 25, industry: 0, size: 15, score: 40 });

      await tx`update public.icps set is_agency_default = false where id = ${defaultId}`;
      await rescorePool(tx, { leadIds: [lead.id], now: NOW });
      expect((await poolScores(tx, [lead.id])).get(lead.id)).toMatchObject({ scored_icp_id: null, title: 4, industry: 20, size: 15, score: 39 });
    });
  });

  it("an unknown explicit ICP is an error, not a silent empty ICP", async () => {
    await expect(service((tx) => rescorePool(tx, { leadIds: [crypto.randomUUID()], icpId: crypto.randomUUID() })))
      .rejects.toMatchObject({ code: "not_found" });
  });
});

describe("rescorePool without leadIds", () => {
  it("scores every enriched or scored lead and nothing else", async () => {
    await rolledBack(async (tx) => {
      const icpId = await createIcp(tx, ICP_T);
      const [enriched, scored] = await seed(tx, [{ title: "CEO" }, { title: "CTO" }]);
      const [fresh] = await seed(tx, [{ title: "CFO" }], { enriched: false });
      await tx`update public.lead_pool set status = 'scored' where id = ${scored.id}`;
      const { scored: n } = await rescorePool(tx, { icpId, now: NOW });
      const [{ pool }] = await tx`select count(*)::int as pool from public.lead_pool where status in ('enriched', 'scored')`;
      expect(n).toBe(pool);
      const got = await poolScores(tx, [enriched.id, scored.id, fresh.id]);
      expect(got.get(enriched.id)).toMatchObject({ status: "scored", score: 57 });
      expect(got.get(scored.id)).toMatchObject({ status: "scored", score: 57 });
      expect(got.get(fresh.id)).toMatchObject({ status: "new", score: null, tier: null });
    });
  });
});

// -------------------------------------------------------------------------------------
// Assignments: the client's ICP, competitors and suppressions
// -------------------------------------------------------------------------------------

describe("rescoreAssignments", () => {
  it("uses the campaign's ICP, else the client's latest approved one; the client's competitors and suppressions", async () => {
    await rolledBack(async (tx) => {
      const clientA = await createClient(tx, ["Rival.example "]);
      const clientB = await createClient(tx);
      const icpT = await createIcp(tx, ICP_T);
      await createIcp(tx, { clientId: clientA, industries: ["Retail"], approvedAt: "2026-01-01T00:00:00Z" });
      const icpANew = await createIcp(tx, {
        clientId: clientA, industries: ["Logistics"], targetTitles: ["Operations Director"], countries: ["GB"], approvedAt: "2026-03-01T00:00:00Z",
      });
      await createIcp(tx, { clientId: clientA, industries: ["Mining"] }); // newer, never approved
      const [campaignA1] = await tx`insert into public.campaigns (client_id, name) values (${clientA}, 'No ICP') returning id`;
      const [campaignA2] = await tx`insert into public.campaigns (client_id, icp_id, name) values (${clientA}, ${icpT}, 'ICP T') returning id`;
      await tx`insert into public.companies (domain, industry, employee_count) values ('rival.example', 'Logistics', 100)
               on conflict (domain) do nothing`;

      const logistics = { industry: "Logistics", employees: 100 };
      const leads = await seed(tx, [
        /* 0 */ { title: "Operations Director", country: "GB", company: logistics },
        /* 1 */ { title: "Operations Director", country: "GB", company: logistics, emailAtOtherDomain: true },
        /* 2 */ { title: "CEO", country: "GB", company: logistics, suppressFor: [{ clientId: clientA, kind: "email" }] },
        /* 3 */ { title: "CEO", country: "GB", company: logistics, phone: true, suppress: ["phone"] },
        /* 4 */ { title: "CEO", country: "GB", company: logistics, suppressFor: [{ clientId: clientB, kind: "email" }] },
        /* 5 */ { title: "Growth Marketer", country: "AU", company: { industry: MA, employees: 100 } },
        /* 6 */ { title: "CEO", country: "GB", company: logistics },
        /* 7 */ { title: "CEO", country: "AU", company: logistics },
      ]);
      // lead 1 works at the competitor: its company domain is rival.example
      await tx`update public.lead_pool set company_domain = 'rival.example' where id = ${leads[1].id}`;
      const assign = async (lead: Seeded, clientId: string, campaignId: string | null) => {
        const [a] = await tx`insert into public.lead_assignments (lead_id, client_id, campaign_id) values (${lead.id}, ${clientId}, ${campaignId}) returning id`;
        return a.id as string;
      };
      const a = [
        await assign(leads[0], clientA, campaignA1.id),
        await assign(leads[1], clientA, campaignA1.id),
        await assign(leads[2], clientA, campaignA1.id),
        await assign(leads[3], clientA, null),
        await assign(leads[4], clientA, campaignA1.id),
        await assign(leads[5], clientA, campaignA2.id),
        await assign(leads[6], clientB, null),
        await assign(leads[7], clientA, campaignA1.id),
      ];
      await tx`update public.lead_assignments set status = 'completed' where id = ${a[7]}`; // ended

      const { scored } = await rescoreAssignments(tx, { clientId: clientA, now: NOW });
      expect(scored).toBe(6); // A's active assignments only
      const rows = await tx`select id, als_score, als_tier, als_components, scored_at from public.lead_assignments where id = any(${a}::uuid[])`;
      const by = new Map(rows.map((r) => [r.id as string, r]));
      const comp = (i: number) => by.get(a[i])!.als_components;

      // A-new: no size range (15), Logistics 20, target title 25; AU would be outside its GB
      expect(comp(0)).toEqual({ title: 25, industry: 20, size: 15, tech: 0, intent: 0, linkedin: 0, deduction: 0, gate: null, icp_id: icpANew });
      expect(by.get(a[0])).toMatchObject({ als_score: 60, als_tier: "warm" });
      expect(by.get(a[0])!.scored_at.toISOString()).toBe(NOW.toISOString());
      expect(comp(1)).toMatchObject({ gate: "competitor", title: 25 });
      expect(by.get(a[1])).toMatchObject({ als_score: 0, als_tier: "dead" });
      expect(comp(2)).toMatchObject({ gate: "suppressed" });
      expect(comp(3)).toMatchObject({ gate: "suppressed", icp_id: icpANew });
      expect(comp(4)).toMatchObject({ gate: null, title: 22 }); // another client's suppression
      expect(by.get(a[4])).toMatchObject({ als_score: 57, als_tier: "cool" });
      // the campaign's own ICP (T): target title 25, MA 20, 100 people 15
      expect(comp(5)).toMatchObject({ icp_id: icpT, title: 25, industry: 20, size: 15, gate: null });
      expect(by.get(a[5])).toMatchObject({ als_score: 60 });
      expect(by.get(a[6])).toMatchObject({ als_score: null, als_components: null }); // client B: not asked
      expect(by.get(a[7])).toMatchObject({ als_score: null }); // ended

      // the pool score of lead 2 ignores client A's suppression
      await rescorePool(tx, { leadIds: [leads[2].id], icpId: icpANew, now: NOW });
      expect((await poolScores(tx, [leads[2].id])).get(leads[2].id)).toMatchObject({ gate: null, score: 57 });

      // client B has no ICP: the agency default (or the empty ICP when there is none); ended ones by id
      const [def] = await tx`select id from public.icps where is_agency_default`;
      expect(await rescoreAssignments(tx, { assignmentIds: [a[6], a[7]], now: NOW })).toEqual({ scored: 2 });
      const [b6] = await tx`select als_components from public.lead_assignments where id = ${a[6]}`;
      expect(b6.als_components.icp_id).toBe(def?.id ?? null);
      const [b7] = await tx`select als_components, als_score from public.lead_assignments where id = ${a[7]}`;
      expect(b7.als_components).toMatchObject({ icp_id: icpANew, gate: "outside_countries" });
      expect(b7.als_score).toBe(0);
    });
  });
});

// -------------------------------------------------------------------------------------
// Properties
// -------------------------------------------------------------------------------------

describe("properties", () => {
  it("tierFor and the SQL tier agree with the tier table on every score", async () => {
    const rows = await db().unsafe(`select s, ${tierSql("s")} as tier from generate_series(-5, 105) s`);
    for (const r of rows) expect([r.s, r.tier]).toEqual([r.s, tierFor(r.s as number)]);
    expect(TIERS.map((t) => [t.tier, tierFor(t.min), tierFor(t.min - 1)])).toEqual([
      ["hot", "hot", "warm"], ["warm", "warm", "cool"], ["cool", "cool", "cold"], ["cold", "cold", "dead"], ["dead", "dead", "dead"],
    ]);
  });

  const day = 86_400_000;
  const ago = (days: number | null) => (days === null ? null : new Date(NOW.getTime() - days * day).toISOString());
  const dateAgo = (days: number | null) => ago(days)?.slice(0, 10) ?? null;
  const pick = <T>(xs: readonly T[]) => fc.subarray([...xs]);

  const leadArb: fc.Arbitrary<LeadSpec> = fc.record({
    title: fc.oneof(
      fc.constantFrom(null, "", "CEO", "Vice President Sales", "Growth Marketer", "Intern", "Marketing Coordinator",
        "Head of Growth", "Engineer", "Team Lead", "Assistant to the CFO", "Revenue Operations Manager"),
      fc.string({ maxLength: 30 }),
    ),
    email: fc.constantFrom("verified", "catch_all", "unknown", "invalid", "none"),
    phone: fc.boolean(),
    linkedin: fc.boolean(),
    linkedinFound: fc.boolean(),
    connections: fc.option(fc.integer({ min: 0, max: 3000 })),
    activeAt: fc.option(fc.integer({ min: -3, max: 90 })).map(ago),
    jobStartedAt: fc.option(fc.integer({ min: -3, max: 400 })).map(dateAgo),
    country: fc.constantFrom(null, "AU", "NZ", "US"),
    company: fc.option(fc.record({
      industry: fc.constantFrom(null, "Computer Software", "Internet", "Retail", "marketing and advertising", ""),
      employees: fc.option(fc.integer({ min: 0, max: 20000 })),
      technologies: pick(["HubSpot", "salesforce", "Segment", "Google Analytics", "Shopify"]),
      hiringRoles: pick(["Account Executive", "SDR", "Plumber"]),
      hiringSeenAt: fc.option(fc.integer({ min: -3, max: 120 })).map(ago),
      lastFundingAt: fc.option(fc.integer({ min: -3, max: 800 })).map(dateAgo),
      signals: pick(["expansion", "new funding", "rebrand"]),
      country: fc.constantFrom(null, "AU", "GB"),
    })),
    suppress: pick(["email", "domain", "phone", "linkedin"] as const).map((kinds) => kinds as SuppressionKind[]),
  });

  const ALLOWED: Record<Component, number[]> = {
    title: [0, 4, 10, 18, 22, 25], industry: [0, 5, 10, 20], size: [0, 5, 8, 15], tech: [0, 5, 10, 15],
    intent: [0, 5, 10, 15], linkedin: [0, 3, 4, 6, 7, 10], deduction: [0, -5],
  };

  it("score in 0–100, tier = tierFor(score), components add up (clamped) unless gated, gated → dead", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(leadArb, { minLength: 1, maxLength: 12 }), async (specs) => {
        // suppression values must exist: drop kinds the generated lead has no value for
        const fixed = specs.map((s) => ({
          ...s,
          suppress: (s.suppress ?? []).filter((k) =>
            (k === "email" && s.email !== "none") || (k === "domain" && s.company) || (k === "phone" && s.phone) || (k === "linkedin" && s.linkedin)),
        }));
        await rolledBack(async (tx) => {
          const icpId = await createIcp(tx, ICP_T);
          const seeded = await seed(tx, fixed, { enriched: false });
          const { scored } = await rescorePool(tx, { leadIds: seeded.map((s) => s.id), icpId, now: NOW });
          expect(scored).toBe(seeded.length);
          const got = await poolScores(tx, seeded.map((s) => s.id));
          fixed.forEach((spec, i) => {
            const r = got.get(seeded[i].id)!;
            expect(r.score).toBeGreaterThanOrEqual(0);
            expect(r.score).toBeLessThanOrEqual(100);
            expect(r.tier).toBe(tierFor(r.score));
            for (const k of COMPONENTS) expect(ALLOWED[k]).toContain(r[k]);
            const sum = COMPONENTS.reduce((acc, k) => acc + r[k], 0);
            if (r.gate === null) expect(r.score).toBe(Math.max(0, Math.min(100, sum)));
            else expect([r.score, r.tier]).toEqual([0, "dead"]);
            if (spec.suppress.length > 0) expect(r.gate).toBe("suppressed");
            const channel = ["verified", "catch_all"].includes(spec.email ?? "verified") || spec.phone || spec.linkedin;
            if (spec.suppress.length === 0 && !channel) expect(r.gate).toBe("no_channel");
          });
        });
      }),
      { numRuns: 40 },
    );
  });
});
