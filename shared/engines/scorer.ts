// The ALS scorer (product.md §3): every rule of the Agency Lead Score written once, as SQL
// fragments that run set-based — pool leads against the agency ICP, assignments against theirs.
//
// Decisions where product.md §3 is silent (what an agency operator would expect):
// - Matching is case-insensitive and by whole words: text is lower-cased, every run of
//   non-alphanumerics becomes one space, and the words a, an, and, at, for, in, of, the, to are
//   dropped ("VP of Marketing" = "VP, Marketing"; "Marketing & Advertising" = "marketing and
//   advertising"). A term matches when the lead's/company's text contains it as a whole word or
//   phrase: title "Senior Growth Marketer" ⊇ target "growth marketer"; industry "Computer
//   Software" ⊇ "software"; technology "HubSpot CRM" ⊇ "hubspot"; the same for hiring roles and
//   buying-signal keywords. (Letters outside ASCII count as letters where the database's locale
//   says so; under the C locale, e.g. PGlite, they separate words — consistently on both sides.)
// - Title: an ICP target title found in it → 25, else seniority by keyword, highest level first:
//   owner/founder/C-level 22 (owner, founder, ceo cto cfo coo cmo cio cro cpo cso ciso cdo, chief,
//   president, managing director/partner, founding partner, proprietor — but not "vice
//   president", "product owner", "process owner"); VP/head/director 18 (vp svp evp, vice
//   president, head, director, general manager); manager 10 (manager, mgr, supervisor, lead,
//   leader — but not "lead generation"); a known title matching none → individual contributor 4;
//   no title → unknown 0. A junior title (assistant, intern, student, receptionist, coordinator)
//   is an individual contributor whatever else it names — "Executive Assistant to the CEO" is
//   not C-level — and also loses 5 (the deduction). A target-title match still gets 25 (the
//   ICP asked for it) and still loses 5 if junior.
// - Industry: the company's industry (else the lead's). An ICP that names no industries accepts
//   any: a known industry 20, an unknown 5.
// - Size: the company's employee count (else the lead's). Bands 1–10 (0 counts here), 11–50,
//   51–200, 201–500, 501–1,000, 1,001–5,000, 5,001–10,000, 10,001+. "Within one band": the
//   lead's band is one of the bands the ICP range touches or next to one (range 51–500: 30 and
//   600 get 8, 5 and 1,500 get 0). A range open at one end is open (min only: min..∞). No range
//   at all: a known size 15, an unknown 5.
// - Technology: 5 per distinct ICP technology found, at most 15. An ICP naming none gives 0:
//   the component counts evidence asked for; likewise hiring roles and buying signals.
// - Intent, 5 each, at most 15, windows inclusive, measured back from `now` (dates in UTC):
//   hiring for an ICP role with hiring_seen_at ≥ now − 60 days; last_funding_at ≥ now − 12
//   months; job_started_at ≥ now − 90 days; an ICP buying signal in companies.signal_keywords.
// - LinkedIn: linkedin_found 4, linkedin_connections ≥ 500 3, linkedin_active_at ≥ now − 30
//   days 3; each counted on its own.
// - Deduction: stored as a signed component (0 or −5) so the columns add up.
// - Gates, one reason recorded, in this order: suppressed (email; the company domain or the
//   email's domain; phone; LinkedIn — global rows, plus the client's own for an assignment),
//   no_channel (no verified/catch-all email, no phone_e164, no linkedin_key), competitor (the
//   company or email domain is in the client's competitor_domains; assignments only),
//   outside_countries (the ICP names countries and the lead's country — lead, else phone, else
//   company HQ, as the sending window does — is known and not among them; an unknown country
//   is not "outside": the send gate still applies that country's rules when it is learnt).
//   Intrinsic reasons first, so the pipeline can mark a no_channel lead invalid knowing it is
//   not merely a client's competitor.
// - A gated lead's total is 0 (tier dead, so no consumer ranking by score can surface it); its
//   components are still stored, so the would-be points stay explainable. An ungated total is
//   the clamped sum of the components, and its tier is always tierFor(total).
// - No agency default ICP yet: pool leads are scored against an empty ICP (scored_icp_id null),
//   so the pipeline keeps moving; the scoring flow rescores them once a default exists.
import type { Tx } from "../db/client.ts";
import { AppError } from "../http/errors.ts";

// -------------------------------------------------------------------------------------
// The tables the rules are made of
// -------------------------------------------------------------------------------------

/** Tiers from the top: a score belongs to the first tier whose minimum it reaches. */
export const TIERS = [
  { tier: "hot", min: 85 },
  { tier: "warm", min: 60 },
  { tier: "cool", min: 35 },
  { tier: "cold", min: 20 },
  { tier: "dead", min: 0 },
] as const;
export type Tier = (typeof TIERS)[number]["tier"];

/** The tier of a total (anything below every minimum, or not a number, is dead). */
export function tierFor(score: number): Tier {
  for (const t of TIERS) if (score >= t.min) return t.tier;
  return "dead";
}

export const ALS = {
  min: 0,
  max: 100,
  title: { target: 25, cLevel: 22, vp: 18, manager: 10, individual: 4, unknown: 0 },
  industry: { icp: 20, adjacent: 10, unknown: 5, other: 0 },
  size: { inside: 15, oneBand: 8, unknown: 5, other: 0 },
  tech: { each: 5, max: 15 },
  intent: { each: 5, max: 15, hiringDays: 60, fundingMonths: 12, jobChangeDays: 90 },
  linkedin: { found: 4, connections: 3, connectionsMin: 500, active: 3, activeDays: 30 },
  deduction: -5,
} as const;

/** First employee count of each size band after 1–10: 11–50, 51–200, …, 10,001+. */
export const SIZE_BANDS = [11, 51, 201, 501, 1001, 5001, 10001] as const;

/** Why a lead is dead regardless of points, in precedence order. */
export const GATES = ["suppressed", "no_channel", "competitor", "outside_countries"] as const;
export type Gate = (typeof GATES)[number];

export const COMPONENTS = ["title", "industry", "size", "tech", "intent", "linkedin", "deduction"] as const;
export type Component = (typeof COMPONENTS)[number];

/** Seniority levels, highest first; `except` phrases are removed before the level's words are sought. */
const SENIORITY: ReadonlyArray<{ points: number; words: string[]; except?: string[] }> = [
  {
    points: ALS.title.cLevel,
    words: ["owner", "founder", "cofounder", "ceo", "cto", "cfo", "coo", "cmo", "cio", "cro", "cpo", "cso", "ciso",
      "cdo", "chief", "president", "managing director", "managing partner", "founding partner", "proprietor"],
    except: ["vice president", "product owner", "process owner"],
  },
  { points: ALS.title.vp, words: ["vp", "svp", "evp", "vice president", "head", "director", "directors", "general manager"] },
  {
    points: ALS.title.manager,
    words: ["manager", "managers", "mgr", "supervisor", "lead", "leader", "leaders"],
    except: ["lead generation", "lead gen"],
  },
];

/** Junior titles: individual contributor whatever else they name, and the −5 deduction. */
const JUNIOR = ["assistant", "assistants", "intern", "interns", "internship", "student", "students", "receptionist",
  "coordinator", "coordinators", "co ordinator"];

/** Dropped before matching, so "VP of Marketing" matches a target "VP Marketing". */
const STOP_WORDS = ["a", "an", "and", "at", "for", "in", "of", "the", "to"];

// -------------------------------------------------------------------------------------
// SQL building blocks. Aliases every fragment may use: l = lead_pool, c = companies (null when
// the lead has no company row), i = the ICP row (icpRowsSql), n = the lead's normalised inputs
// (INPUTS_SQL), p = the parameters (paramsSql), su = suppressions inside the gate.
// -------------------------------------------------------------------------------------

/** A regex alternation of fixed words; they are ours, but are checked so nothing odd reaches SQL. */
function wordsRe(words: readonly string[]): string {
  for (const w of words) if (!/^[a-z0-9]+( [a-z0-9]+)*$/.test(w)) throw new Error(`scorer keyword ${JSON.stringify(w)}`);
  return ` (?:${words.join("|")})(?= )`;
}

/** Normalised text: ' word word ' (padded, so ' term ' inside it is a whole-word match); '  ' when empty. */
function norm(expr: string): string {
  return `(' ' || btrim(regexp_replace(' ' || regexp_replace(lower(coalesce(${expr}, '')), '[^[:alnum:]]+', ' ', 'g') || ' ', '${wordsRe(STOP_WORDS)}', '', 'g')) || ' ')`;
}
const isBlank = (normalised: string) => `(btrim(${normalised}) = '')`;
/** Normalised, non-empty terms of a text[]. */
const normTerms = (arr: string) => `array(select t from (select ${norm("x")} as t from unnest(${arr}) x) q where btrim(t) <> '')`;

/** Some term occurs in the text. */
const anyTermIn = (text: string, terms: string) => `exists (select 1 from unnest(${terms}) t where strpos(${text}, t) > 0)`;

/**
 * The scorer's matching, for other engines that must agree with it (the allocator's ICP fit):
 * normalise a text and a text[] the same way, then test whole-word containment.
 */
export const matching = { norm, normTerms, anyTermIn };
/** Some term occurs in some text of the array. */
const anyTermInAny = (terms: string, texts: string) =>
  `exists (select 1 from unnest(${terms}) t, unnest(${texts}) h where strpos(h, t) > 0)`;
/** How many distinct terms occur in some text of the array. */
const termsFoundIn = (terms: string, texts: string) =>
  `(select count(distinct t) from unnest(${terms}) t where exists (select 1 from unnest(${texts}) h where strpos(h, t) > 0))`;

const ZERO_UUID = "'00000000-0000-0000-0000-000000000000'::uuid";
const BANDS_SQL = `'{${SIZE_BANDS.join(",")}}'::int[]`;
const band = (expr: string) => `width_bucket(${expr}, ${BANDS_SQL})`;
const MAX_INT = 2147483647;

/** `now` and the start of each time window. */
export function paramsSql(nowParam: string): string {
  return `select q.now,
      q.now - make_interval(days => ${ALS.intent.hiringDays}) as hiring_since,
      ((q.now at time zone 'UTC') - make_interval(months => ${ALS.intent.fundingMonths}))::date as funding_since,
      ((q.now at time zone 'UTC') - make_interval(days => ${ALS.intent.jobChangeDays}))::date as job_since,
      q.now - make_interval(days => ${ALS.linkedin.activeDays}) as active_since
    from (select coalesce(${nowParam}::timestamptz, now()) as now) q`;
}

/**
 * One normalised row per ICP id produced by `idsSql` (a query of one uuid column). An id that
 * is null or names no ICP gives the empty ICP — no targets, no restrictions. `key` is the id,
 * or the zero uuid for the empty ICP, so callers can join on it.
 */
export function icpRowsSql(idsSql: string): string {
  return `select coalesce(icp.id, ${ZERO_UUID}) as key, icp.id,
      ${normTerms("icp.target_titles")} as titles,
      ${normTerms("icp.industries")} as industries,
      ${normTerms("icp.adjacent_industries")} as adjacent,
      icp.employee_min, icp.employee_max,
      ${normTerms("icp.technologies")} as technologies,
      ${normTerms("icp.hiring_roles")} as hiring_roles,
      ${normTerms("icp.buying_signals")} as buying_signals,
      array(select upper(btrim(x)) from unnest(icp.countries) x where btrim(x) <> '') as countries
    from (${idsSql}) v (id) left join public.icps icp on icp.id = v.id`;
}

/** The company of lead l (domains are stored lower case in companies). */
export const COMPANY_JOIN = `left join public.companies c on c.domain = lower(btrim(l.company_domain))`;

/** The lead's inputs, normalised once per row: a lateral subquery aliased n. */
export const INPUTS_SQL = `cross join lateral (select
      ${norm("l.title")} as title,
      ${norm("coalesce(nullif(btrim(c.industry), ''), l.industry)")} as industry,
      coalesce(c.employee_count, l.employee_count) as employees,
      array(select ${norm("x")} from unnest(c.technologies) x) as technologies,
      array(select ${norm("x")} from unnest(c.hiring_roles) x) as hiring_roles,
      array(select ${norm("x")} from unnest(c.signal_keywords) x) as signals,
      upper(coalesce(l.country, l.phone_country, c.country)) as country,
      nullif(lower(btrim(l.company_domain)), '') as company_domain,
      nullif(split_part(l.email_normalized, '@', 2), '') as email_domain
      offset 0) n`;

const JUNIOR_SQL = `(n.title ~ '${wordsRe(JUNIOR)}')`;

function seniorityLevel(level: (typeof SENIORITY)[number]): string {
  const text = level.except ? `regexp_replace(n.title, '${wordsRe(level.except)}', '', 'g')` : "n.title";
  return `when ${text} ~ '${wordsRe(level.words)}' then ${level.points}`;
}

/** Each component as one SQL expression over l, c, i, n, p. The only place each rule is written. */
export const COMPONENT_SQL: Record<Component, string> = {
  title: `case
      when ${isBlank("n.title")} then ${ALS.title.unknown}
      when ${anyTermIn("n.title", "i.titles")} then ${ALS.title.target}
      when ${JUNIOR_SQL} then ${ALS.title.individual}
      ${SENIORITY.map(seniorityLevel).join("\n      ")}
      else ${ALS.title.individual} end`,
  industry: `case
      when ${isBlank("n.industry")} then ${ALS.industry.unknown}
      when cardinality(i.industries) = 0 or ${anyTermIn("n.industry", "i.industries")} then ${ALS.industry.icp}
      when ${anyTermIn("n.industry", "i.adjacent")} then ${ALS.industry.adjacent}
      else ${ALS.industry.other} end`,
  size: `case
      when n.employees is null then ${ALS.size.unknown}
      when i.employee_min is null and i.employee_max is null then ${ALS.size.inside}
      when n.employees between coalesce(i.employee_min, 0) and coalesce(i.employee_max, ${MAX_INT}) then ${ALS.size.inside}
      when ${band("n.employees")} between ${band("coalesce(i.employee_min, 0)")} - 1
                                    and ${band(`coalesce(i.employee_max, ${MAX_INT})`)} + 1 then ${ALS.size.oneBand}
      else ${ALS.size.other} end`,
  tech: `least(${ALS.tech.max}, ${ALS.tech.each} * ${termsFoundIn("i.technologies", "n.technologies")})::int`,
  intent: `least(${ALS.intent.max}, ${ALS.intent.each} * (
        (case when c.hiring_seen_at >= p.hiring_since and ${anyTermInAny("i.hiring_roles", "n.hiring_roles")} then 1 else 0 end)
      + (case when c.last_funding_at >= p.funding_since then 1 else 0 end)
      + (case when l.job_started_at >= p.job_since then 1 else 0 end)
      + (case when ${anyTermInAny("i.buying_signals", "n.signals")} then 1 else 0 end)))`,
  linkedin: `(case when l.linkedin_found then ${ALS.linkedin.found} else 0 end)
      + (case when l.linkedin_connections >= ${ALS.linkedin.connectionsMin} then ${ALS.linkedin.connections} else 0 end)
      + (case when l.linkedin_active_at >= p.active_since then ${ALS.linkedin.active} else 0 end)`,
  deduction: `case when ${JUNIOR_SQL} then ${ALS.deduction} else 0 end`,
};

/** Who may be contacted about this lead (suppressions in `scope`, a condition on su) at all. */
function suppressedSql(scope: string): string {
  // One index probe (kind, value) per identifier; OR-ed probes would make the planner scan.
  const probe = (kind: string, value: string) =>
    `exists (select 1 from public.suppressions su where su.kind = '${kind}' and su.value = ${value} and (${scope}))`;
  return `(${[
    probe("email", "l.email_normalized"),
    probe("domain", "n.company_domain"),
    probe("domain", "n.email_domain"),
    probe("phone", "l.phone_e164"),
    probe("linkedin", "lower(l.linkedin_key)"),
  ].join("\n      or ")})`;
}

const HAS_CHANNEL = `((coalesce(l.email_normalized, '') <> '' and l.email_status in ('verified', 'catch_all'))
      or l.phone_e164 is not null or l.linkedin_key is not null)`;

export interface GateContext {
  /** Condition on su (suppressions) selecting the lists that apply. */
  suppressionScope: string;
  /** A text[] of lower-case competitor domains, or null where no client is involved. */
  competitors: string | null;
}

/** The gate reason (null when none), in GATES order. */
export function gateSql(ctx: GateContext): string {
  const arms: Record<Gate, string | null> = {
    suppressed: suppressedSql(ctx.suppressionScope),
    no_channel: `not ${HAS_CHANNEL}`,
    competitor: ctx.competitors && `(n.company_domain = any(${ctx.competitors}) or n.email_domain = any(${ctx.competitors}))`,
    outside_countries: `cardinality(i.countries) > 0 and n.country is not null and not (n.country = any(i.countries))`,
  };
  const whens = GATES.filter((g) => arms[g]).map((g) => `when ${arms[g]} then '${g}'`);
  return `case ${whens.join("\n      ")} end`;
}

/** Sum of the components, clamped. */
export const POINTS_SQL = `greatest(${ALS.min}, least(${ALS.max}, ${COMPONENTS.map((k) => `(${COMPONENT_SQL[k]})`).join("\n    + ")}))`;

/** The tier of a total, from TIERS. */
export function tierSql(score: string): string {
  return `case ${TIERS.filter((t) => t.min > 0).map((t) => `when ${score} >= ${t.min} then '${t.tier}'`).join(" ")} else 'dead' end`;
}

export interface ScoreSource extends GateContext {
  /** FROM … WHERE body exposing l, c (via COMPANY_JOIN), i and p; INPUTS_SQL is appended after `from`. */
  from: string;
  where: string;
  /** The id of the row to update. */
  key: string;
}

/**
 * Rows (id, each component, gate, icp_id, score) for a source. Components are computed once per
 * row in the inner select; the total is the clamped sum unless a gate applies (then 0).
 */
export function scoreSql(src: ScoreSource): string {
  return `select x.*,
      case when x.gate is null
           then greatest(${ALS.min}, least(${ALS.max}, ${COMPONENTS.map((k) => `x.${k}`).join(" + ")}))
           else 0 end as score
    from (
      select ${src.key} as id, i.id as icp_id,
        ${COMPONENTS.map((k) => `(${COMPONENT_SQL[k]}) as ${k}`).join(",\n        ")},
        ${gateSql(src)} as gate
      from ${src.from}
      ${INPUTS_SQL}
      where ${src.where}
      offset 0) x`;
}

// -------------------------------------------------------------------------------------
// The two entry points
// -------------------------------------------------------------------------------------

const SCORED_STATUSES = "('enriched', 'scored')";

/**
 * Runs one scoring statement with JIT off, restoring the caller's setting after: JIT compiles the
 * statement's hundred-odd expressions for about a second per call, more than the work itself
 * takes for a 5,000-lead batch.
 */
async function withoutJit<T>(tx: Tx, fn: () => Promise<T>): Promise<T> {
  const [{ prev }] = await tx`select current_setting('jit') as prev, set_config('jit', 'off', true)`;
  const result = await fn();
  if (prev !== "off") await tx`select set_config('jit', ${prev as string}, true)`;
  return result;
}

/**
 * Scores pool leads against the ICP given, else the agency default ICP, in ONE UPDATE: every
 * component, the gate, total, tier, scored_at (= now) and scored_icp_id; enriched leads move to
 * scored (the status trigger writes their events and outbox rows), others keep their status.
 * leadIds scores exactly those leads whatever their status (enrichment asks for a
 * pre-enrichment score); without it every enriched or scored lead. The caller batches.
 */
export async function rescorePool(
  tx: Tx,
  opts: { leadIds?: string[]; icpId?: string; now?: Date } = {},
): Promise<{ scored: number }> {
  if (opts.leadIds && opts.leadIds.length === 0) return { scored: 0 };
  if (opts.icpId) {
    const [found] = await tx`select 1 from public.icps where id = ${opts.icpId}`;
    if (!found) throw new AppError("not_found", "ICP not found", { icp_id: opts.icpId });
  }
  const where = opts.leadIds ? "l.id = any($3::uuid[])" : `l.status in ${SCORED_STATUSES}`;
  const text = `
    with p as materialized (${paramsSql("$1")}),
    i as materialized (${icpRowsSql("select coalesce($2::uuid, (select d.id from public.icps d where d.is_agency_default))")}),
    scored as (${scoreSql({
      from: `public.lead_pool l ${COMPANY_JOIN} cross join i cross join p`,
      where,
      key: "l.id",
      suppressionScope: "su.client_id is null",
      competitors: null,
    })})
    update public.lead_pool l set
      als_title = s.title, als_industry = s.industry, als_size = s.size, als_tech = s.tech,
      als_intent = s.intent, als_linkedin = s.linkedin, als_deduction = s.deduction, als_gate = s.gate,
      als_score = s.score, als_tier = ${tierSql("s.score")}, scored_at = p.now, scored_icp_id = s.icp_id,
      status = case when l.status = 'enriched' then 'scored' else l.status end
    from scored s, p
    where l.id = s.id`;
  const params = [opts.now?.toISOString() ?? null, opts.icpId ?? null, ...(opts.leadIds ? [opts.leadIds] : [])];
  const res = await withoutJit(tx, () => tx.unsafe(text, params as never[]));
  return { scored: res.count };
}

/**
 * Scores assignments in ONE UPDATE against each one's ICP — the campaign's, else the client's
 * most recently approved, else the agency default (else the empty ICP) — with the client's
 * competitor list and the client's plus the global suppressions. Writes als_score, als_tier,
 * als_components (every component, gate and icp_id) and scored_at. assignmentIds scores exactly
 * those; otherwise the active (not ended) assignments, of clientId when given.
 */
export async function rescoreAssignments(
  tx: Tx,
  opts: { assignmentIds?: string[]; clientId?: string; now?: Date } = {},
): Promise<{ scored: number }> {
  if (opts.assignmentIds && opts.assignmentIds.length === 0) return { scored: 0 };
  // Placeholders are numbered as they are used: an unused one would have no type.
  const params: unknown[] = [opts.now?.toISOString() ?? null];
  const param = (v: unknown) => `$${params.push(v)}`;
  const where = [
    opts.assignmentIds ? `a.id = any(${param(opts.assignmentIds)}::uuid[])` : "a.ended_at is null",
    opts.clientId ? `a.client_id = ${param(opts.clientId)}::uuid` : null,
  ].filter(Boolean).join(" and ");
  const text = `
    with p as materialized (${paramsSql("$1")}),
    t as materialized (
      select a.id, a.lead_id, a.client_id,
             coalesce(cp.icp_id, ap.id, (select d.id from public.icps d where d.is_agency_default)) as icp_id
      from public.lead_assignments a
      left join public.campaigns cp on cp.id = a.campaign_id
      left join (select distinct on (x.client_id) x.client_id, x.id from public.icps x
                 where x.client_id is not null and x.approved_at is not null
                 order by x.client_id, x.approved_at desc, x.created_at desc, x.id) ap on ap.client_id = a.client_id
      where ${where}
    ),
    i as materialized (${icpRowsSql("select distinct icp_id from t")}),
    k as materialized (select cl.id, array(select lower(btrim(x)) from unnest(cl.competitor_domains) x) as competitors
          from public.clients cl where cl.id in (select client_id from t)),
    scored as (${scoreSql({
      from: `t join public.lead_pool l on l.id = t.lead_id ${COMPANY_JOIN}
        join i on i.key = coalesce(t.icp_id, ${ZERO_UUID}) join k on k.id = t.client_id cross join p`,
      where: "true",
      key: "t.id",
      suppressionScope: "su.client_id is null or su.client_id = t.client_id",
      competitors: "k.competitors",
    })})
    update public.lead_assignments a set
      als_score = s.score, als_tier = ${tierSql("s.score")}, scored_at = p.now,
      als_components = jsonb_build_object(${COMPONENTS.map((k) => `'${k}', s.${k}`).join(", ")}, 'gate', s.gate, 'icp_id', s.icp_id)
    from scored s, p
    where a.id = s.id`;
  const res = await withoutJit(tx, () => tx.unsafe(text, params as never[]));
  return { scored: res.count };
}
