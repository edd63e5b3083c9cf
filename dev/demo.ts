// `npm run demo`: a sandbox agency end to end on the local stack (dev/stack.ts). A client with an
// ICP and an approved five-channel campaign; a few thousand pool leads enriched by the Apollo /
// Apify / Serper / DataForSEO sandboxes, scored and allocated by the real flows over QStash; each
// step's message written (Claude sandbox by tier, templates for Cold), passed through the send gate
// and dispatched to the outreach sandboxes (Salesforge, Twilio, Vapi, Unipile, PostGrid), which post
// their signed status webhooks back by themselves; replies of every class and Cal.com bookings
// posted as signed provider webhooks and handled by flow-inbound and flow-replies; meeting outcomes
// recorded by the closer. Progress goes to stderr, one line per stage; the report (funnel, rates per
// channel and tier, costs, gate refusals, every channel and reply class) to stdout, or as ONE JSON
// object with --json.
//
// Time: the pipeline and the inbound side run in real time. The twelve days of the sequence run on
// a simulated clock: the planner and the gate are given `now` = the next weekday 10:00 in Sydney
// after the real now, plus d days (several ticks a day), and the demo dispatches each tick's batches
// itself at that instant, as the outreach tests do. The campaign's sequence is written and approved
// once the pool is placed, so the real-time outreach tick (kicked by allocation) never plans or
// sends on the wall clock in between.
//
// Process: the stack (functions, QStash emulator, sandboxes) runs in this process; embedded PGlite
// in a child process, so the database has a core of its own. The demo only talks to the sandboxes
// (provider credentials in the environment are ignored) and does not use a Redis cache shared with
// other runs. Exit status: 0, or 1 when a stage failed or the run left a channel without sends or a
// reply class unseen; 2 for bad arguments.
//
//   npm run demo                          2,000 leads on embedded PGlite in memory
//   npm run demo -- --json                the report as one JSON object on stdout
//   npm run demo -- --leads 300 --seed x  a smaller or different agency
//   npm run demo -- --data-dir .local/demo-db   keep the PGlite database on disk
// DATABASE_URL, when set, is used instead of PGlite (the demo's rows are tagged and counted apart;
// use a scratch database: the simulated gate works on every due step it holds).
import process from "node:process";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { startStack, type Stack } from "./stack.ts";
import { resetEnvCache } from "../shared/config/env.ts";
import { PROVIDERS } from "../shared/config/providers.ts";
import { asService, closeDb, db, type Sql } from "../shared/db/client.ts";
import { closeMeeting, recordMeetingOutcome } from "../shared/engines/closer.ts";
import { serperSearch } from "../shared/engines/content.ts";
import { dispatchBatch, type AdapterRegistry } from "../shared/engines/dispatch.ts";
import { washRequestedNumbers } from "../shared/engines/dncr-wash.ts";
import { planSequences, runSendGate, type GateSummary } from "../shared/engines/outreach.ts";
import { writeDueContent } from "../shared/engines/step-content.ts";
import { ensureHolidayCalendars } from "../shared/engines/timing-facts.ts";
import { kick, publishOutbox } from "../shared/flows/outbox.ts";
import { anthropicFromEnv } from "../shared/integrations/anthropic.ts";
import { dncrFromEnv } from "../shared/integrations/dncr.ts";
import { createSerperClient } from "../shared/integrations/serper.ts";
import { signCalCom, signTwilio } from "../shared/webhooks/verify.ts";
import { TWILIO_SANDBOX_DEFAULTS } from "./sandbox/twilio.ts";
import { normaliseLinkedin } from "../shared/engines/suppress.ts";
import { holidayRegionFor, resolveTimezone } from "../shared/engines/timezone.ts";
import { companyFromDomain, seeded, type Rng } from "./sandbox/seeded.ts";
import { collectReport, renderReport, type DemoReport, type DemoScope } from "./demo-report.ts";

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

export interface DemoArgs {
  json: boolean;
  leads: number;
  seed: string;
  dataDir: string | null;
  verbose: boolean;
  days: number;
}

const USAGE = `usage: npm run demo -- [--json] [--leads N] [--seed S] [--data-dir DIR] [--days D] [--verbose]
  --json        print the report as one JSON object on stdout (progress stays on stderr)
  --leads N     pool leads to create (default 2000, 20-20000)
  --seed S      seed of the agency's data (default "demo")
  --data-dir D  keep the embedded PGlite database in D (default: in memory); DATABASE_URL wins when set
  --days D      simulated days of sequence (default 16, at least 15: the sequence spans 12, texts get replies on day 13)
  --verbose     the functions' info logs on stderr`;

export function parseArgs(argv: string[]): DemoArgs {
  const args: DemoArgs = { json: false, leads: 2000, seed: "demo", dataDir: null, verbose: false, days: 16 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    const name = a.split("=")[0];
    if (name === "--json") args.json = true;
    else if (name === "--verbose") args.verbose = true;
    else if (name === "--leads") args.leads = Number(value());
    else if (name === "--seed") args.seed = value();
    else if (name === "--data-dir") args.dataDir = value();
    else if (name === "--days") args.days = Number(value());
    else if (name === "--help" || name === "-h") throw new Error(USAGE);
    else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  if (!Number.isInteger(args.leads) || args.leads < 20 || args.leads > 20_000) throw new Error(`--leads must be a whole number from 20 to 20000\n${USAGE}`);
  if (!Number.isInteger(args.days) || args.days < 15 || args.days > 60) throw new Error(`--days must be a whole number from 15 to 60\n${USAGE}`);
  return args;
}

// ---------------------------------------------------------------------------------------------
// Progress (stderr)
// ---------------------------------------------------------------------------------------------

const started = performance.now();
const secs = () => ((performance.now() - started) / 1000).toFixed(1).padStart(6);

function progress(stage: string, message: string): void {
  process.stderr.write(`[${secs()}s] ${stage.padEnd(9)} ${message}\n`);
}

class StageError extends Error {
  constructor(readonly stage: string, message: string) {
    super(`${stage}: ${message}`);
  }
}

/** Polls until fn returns something truthy; reports every few seconds; fails the stage on timeout. */
async function waitFor<T>(
  stage: string,
  what: string,
  fn: () => Promise<T | false | null | undefined>,
  opts: { timeoutMs: number; everyMs?: number; report?: () => Promise<string>; reportEveryMs?: number },
): Promise<T> {
  const end = Date.now() + opts.timeoutMs;
  let nextReport = Date.now() + (opts.reportEveryMs ?? 4000);
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new StageError(stage, `timed out after ${Math.round(opts.timeoutMs / 1000)} s waiting for ${what}${opts.report ? ` (${await opts.report()})` : ""}`);
    if (opts.report && Date.now() >= nextReport) {
      progress(stage, await opts.report());
      nextReport = Date.now() + (opts.reportEveryMs ?? 4000);
    }
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 250));
  }
}

const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString("en-AU")} ${n === 1 ? one : many}`;
const counts = (o: Record<string, number>) =>
  Object.entries(o).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(", ") || "none";

// ---------------------------------------------------------------------------------------------
// The agency's data
// ---------------------------------------------------------------------------------------------

/** The ICP the agency scores its pool against and the client targets (product.md §3). */
export const DEMO_ICP = {
  target_titles: ["Head of Growth", "Head of Marketing", "VP Marketing", "Chief Marketing Officer", "Marketing Director",
    "Head of Sales", "VP Sales"],
  // the sandboxes' industry names (dev/sandbox/seeded.ts INDUSTRIES)
  industries: ["computer software", "information technology & services", "marketing & advertising", "financial services",
    "management consulting", "staffing & recruiting"],
  adjacent_industries: ["accounting", "insurance", "real estate", "logistics & supply chain"],
  employee_min: 11,
  employee_max: 1000,
  technologies: ["HubSpot", "Salesforce", "Segment", "Marketo", "Intercom", "Stripe", "Google Analytics"],
  hiring_roles: ["Growth Marketer", "Marketing Manager", "Head of Marketing", "Sales Development Representative",
    "Account Executive", "Head of Sales"],
  buying_signals: ["expansion", "funding", "new office", "launch", "growth"],
  countries: ["AU"],
  offer: "a done-for-you outbound programme that books qualified sales meetings",
};

/** The default sequence of product.md §5, plus a letter the day after the first email (only Hot leads may get one). */
export const DEMO_STEPS: Array<{ day_offset: number; channel: string; linkedin_action?: string }> = [
  { day_offset: 0, channel: "email" },
  { day_offset: 1, channel: "mail" },
  { day_offset: 3, channel: "voice" },
  { day_offset: 5, channel: "linkedin", linkedin_action: "invitation" },
  { day_offset: 8, channel: "email" },
  { day_offset: 12, channel: "sms" },
];

export const CHANNELS = ["email", "sms", "voice", "linkedin", "mail"] as const;
export type DemoChannel = (typeof CHANNELS)[number];

/** product.md §7, plus bounce. */
export const REPLY_CLASSES = ["interested", "meeting_request", "question", "not_now", "out_of_office", "referral",
  "wrong_person", "not_interested", "unsubscribe", "complaint", "auto_reply", "bounce"] as const;
export type ReplyClass = (typeof REPLY_CLASSES)[number];

export const TIERS = ["hot", "warm", "cool", "cold", "dead"] as const;

// ---------------------------------------------------------------------------------------------
// The pool
// ---------------------------------------------------------------------------------------------

const FIRST = ["Olivia", "Jack", "Charlotte", "Noah", "Amelia", "William", "Isla", "Oliver", "Mia", "Leo", "Ava", "Henry",
  "Grace", "Lucas", "Chloe", "Thomas", "Sophie", "James", "Ruby", "Ethan", "Zara", "Liam", "Priya", "Wei", "Aisha",
  "Mateo", "Hannah", "Samuel", "Ella", "Daniel", "Matilda", "Arjun", "Mei", "Connor", "Freya", "Hamish", "Tahlia",
  "Lachlan", "Imogen", "Kenji", "Fatima", "Nikolai", "Siobhan", "Tariq", "Ngaio", "Rohan", "Lucia", "Declan"];
const LAST = ["Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen", "Johnson", "Martin", "White", "Anderson",
  "Walker", "Thompson", "Harris", "Lee", "Ryan", "Robinson", "Kelly", "King", "Campbell", "Chen", "Patel", "Singh",
  "O'Brien", "Murphy", "Kaur", "Tran", "Russo", "Kowalski", "Papadopoulos", "Okafor", "Tanaka", "MacDonald", "Fraser",
  "Hughes", "Costa", "Haddad", "Ivanova", "Lindqvist", "Moreau"];
const WORDS = ["harbour", "southern", "coastal", "bluegum", "wattle", "ironbark", "granite", "summit", "meridian",
  "pacific", "outback", "kestrel", "banksia", "redgum", "tidal", "lumen", "vertex", "orbit", "kinetic", "pioneer",
  "northstar", "cobalt", "emerald", "sterling", "horizon", "keystone", "brightwater", "cedar", "copperleaf", "anchor"];
const SUFFIXES = ["digital", "labs", "partners", "group", "advisory", "software", "analytics", "systems", "capital",
  "consulting", "media", "cloud", "talent", "finance", "ventures", "studio", "logistics", "works"];

/** Title, weight: about a third on the ICP's titles, the rest the usual spread of a B2B list. */
const TITLES: Array<[string, number]> = [
  ["Head of Growth", 6], ["Head of Marketing", 6], ["VP Marketing", 4], ["Chief Marketing Officer", 4],
  ["Marketing Director", 5], ["Head of Sales", 4], ["VP Sales", 3],
  ["Founder", 5], ["Co-Founder", 3], ["CEO", 5], ["Managing Director", 4], ["Chief Operating Officer", 2], ["CFO", 2],
  ["Director of Operations", 3], ["Head of Partnerships", 2], ["General Manager", 3],
  ["Marketing Manager", 6], ["Sales Manager", 5], ["Growth Lead", 3], ["Product Manager", 3], ["Office Manager", 2],
  ["Account Executive", 4], ["Marketing Coordinator", 3], ["Executive Assistant", 2], ["Business Analyst", 2],
];

/** State, capital, postcode range, weight: where the leads work (WA is three hours behind Sydney). */
const STATES: Array<[string, string, [number, number], number]> = [
  ["NSW", "Sydney", [2000, 2234], 36], ["VIC", "Melbourne", [3000, 3207], 30], ["QLD", "Brisbane", [4000, 4179], 16],
  ["WA", "Perth", [6000, 6199], 10], ["SA", "Adelaide", [5000, 5199], 6], ["ACT", "Canberra", [2600, 2620], 2],
];
const STREETS = ["George St", "Collins St", "Queen St", "King St", "Pitt St", "Bourke St", "Adelaide St", "Hay St",
  "Flinders Ln", "Elizabeth St", "Market St", "Kent St", "Murray St", "Grenfell St", "Eagle St", "Clarence St"];

function weighted<T>(r: Rng, items: Array<[T, number]>): T {
  const total = items.reduce((s, [, w]) => s + w, 0);
  let x = r.next() * total;
  for (const [item, w] of items) {
    x -= w;
    if (x < 0) return item;
  }
  return items[items.length - 1][0];
}

function weighted4<T extends unknown[]>(r: Rng, items: T[]): T {
  return weighted(r, items.map((i) => [i, i[i.length - 1] as number] as [T, number]));
}

export interface DemoCompany {
  name: string;
  domain: string;
  state: string;
  city: string;
  postcode: string;
  street: string;
}

export interface DemoLeadRow {
  email: string;
  first_name: string;
  last_name: string;
  title: string;
  company_name: string;
  company_domain: string;
  phone: string | null;
  phone_e164: string | null;
  phone_country: string | null;
  linkedin_url: string | null;
  linkedin_key: string | null;
  country: string;
  state: string;
  city: string;
  postal_address: Record<string, string> | null;
  source: "import";
}

/** True when the sandboxes' facts about the company (dev/sandbox/seeded.ts) fit the ICP's industries and size. */
function fitsIcp(domain: string): boolean {
  const co = companyFromDomain(domain);
  return [...DEMO_ICP.industries, ...DEMO_ICP.adjacent_industries].includes(co.industry)
    && co.employees >= DEMO_ICP.employee_min && co.employees <= DEMO_ICP.employee_max;
}

/**
 * Companies for `leads` people (about three each). The list was bought for the ICP, so about half
 * the companies fit its industries and size (the enrichment sandboxes derive a company's facts from
 * its domain, so the demo can choose); a few are in New Zealand, outside the ICP's countries.
 */
export function demoCompanies(seed: string, leads: number, tag: string): DemoCompany[] {
  const r = seeded(`demo:companies:${seed}`);
  const n = Math.max(4, Math.ceil(leads / 3));
  const out: DemoCompany[] = [];
  const used = new Set<string>();
  for (let i = 0; out.length < n; i++) {
    const a = r.pick(WORDS);
    const b = r.pick(SUFFIXES);
    const nz = r.chance(0.06);
    const base = `${a}${r.chance(0.5) ? "-" : ""}${b}${r.chance(0.3) ? r.int(2, 99) : ""}`;
    // the run's tag keeps domains apart from earlier runs in a shared database
    const domain = `${base}${tag}.${nz ? "co.nz" : "com.au"}`;
    if (used.has(domain)) continue;
    used.add(domain);
    if (!fitsIcp(domain) && !r.chance(0.35)) continue;
    const [state, city, [lo, hi]] = weighted4(r, STATES);
    const title = (w: string) => w[0].toUpperCase() + w.slice(1);
    out.push({
      name: `${title(a)} ${title(b)}`,
      domain,
      state: nz ? "" : state,
      city: nz ? "Auckland" : city,
      postcode: nz ? "1010" : String(r.int(lo, hi)),
      street: `${r.int(1, 480)} ${r.pick(STREETS)}`,
    });
  }
  return out;
}

/** The pool: people at those companies with a work email, most with a mobile, LinkedIn and an office address. */
export function demoLeads(seed: string, count: number, companies: DemoCompany[], phoneBase: number, tag = ""): DemoLeadRow[] {
  const r = seeded(`demo:leads:${seed}`);
  const out: DemoLeadRow[] = [];
  const emails = new Set<string>();
  for (let i = 0; i < count; i++) {
    const co = companies[Math.floor(r.next() ** 1.15 * companies.length)];
    const first = r.pick(FIRST);
    const last = r.pick(LAST);
    const local = `${first}.${last}`.toLowerCase().replace(/[^a-z.]/g, "");
    let email = `${local}@${co.domain}`;
    if (emails.has(email)) email = `${local}${i}@${co.domain}`;
    emails.add(email);
    const nz = co.domain.endsWith(".nz");
    // unique mobiles: +614 then 8 digits from the run's base (clear of the sandboxes' magic
    // +6140000xxxx numbers); about one in ten ends in 0, which the DNCR sandbox answers "registered"
    const hasPhone = !nz && r.chance(0.9);
    const phone = hasPhone ? `+614${10_000_000 + ((phoneBase + i * 7919) % 90_000_000)}` : null;
    const hasLinkedin = r.chance(0.88);
    const slug = `${local.replace(/\./g, "-")}-${r.hex(6)}${tag}`;
    const linkedin = hasLinkedin ? `https://www.linkedin.com/in/${slug}` : null;
    out.push({
      email,
      first_name: first,
      last_name: last,
      title: weighted(r, TITLES),
      company_name: co.name,
      company_domain: co.domain,
      phone: phone ? `0${phone.slice(3, 6)} ${phone.slice(6, 9)} ${phone.slice(9)}` : null,
      phone_e164: phone,
      phone_country: phone ? "AU" : null,
      linkedin_url: linkedin,
      linkedin_key: normaliseLinkedin(linkedin),
      country: nz ? "NZ" : "AU",
      state: co.state,
      city: co.city,
      postal_address: r.chance(0.92)
        ? { line1: `Level ${r.int(1, 30)}, ${co.street}`, city: co.city, state: co.state || "Auckland", postcode: co.postcode, country: nz ? "NZ" : "AU" }
        : null,
      source: "import",
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Replies: what people write back, by class, in words the keyword rules and the model read as it
// ---------------------------------------------------------------------------------------------

/** What a reply's wording may draw on. */
export interface ReplyContext {
  domain: string;
  email: string;
  /** An out-of-office's return date (YYYY-MM-DD). */
  returnDate: string;
  /** A referral's colleague. */
  referral: { first: string; last: string };
}

export interface ReplyScript {
  class: ReplyClass | "stop";
  subject?: (orig: string) => string;
  body: (ctx: ReplyContext) => string;
}

const re = (s: string) => (s.startsWith("Re:") ? s : `Re: ${s}`);

export const EMAIL_REPLIES: Record<ReplyClass, ReplyScript> = {
  interested: { class: "interested", subject: re, body: () => "Sounds good. Send me a bit more detail on how the programme works and what it costs." },
  meeting_request: { class: "meeting_request", subject: re, body: () => "Happy to talk. Could we book a time for a call on Thursday or Friday?" },
  question: { class: "question", subject: re, body: () => "How does pricing work for a team of our size? Do you work with firms outside Sydney?" },
  not_now: { class: "not_now", subject: re, body: () => "Not right now, we are locked in with a provider until the new financial year. Try me next quarter." },
  out_of_office: {
    class: "out_of_office",
    subject: (s) => `Out of office: ${s}`,
    body: ({ returnDate }) => `I am out of the office until ${returnDate} with limited access to email. For anything urgent please call reception.`,
  },
  referral: {
    class: "referral",
    subject: re,
    body: ({ domain, referral }) =>
      `I'm not the right person for this. Please speak to ${referral.first} ${referral.last}, our Head of Growth, at ${referral.first.toLowerCase()}.${referral.last.toLowerCase().replace(/[^a-z]/g, "")}@${domain}.`,
  },
  wrong_person: { class: "wrong_person", subject: re, body: () => "I'm not the right person for this, sorry." },
  not_interested: { class: "not_interested", subject: re, body: () => "No thanks, we're not interested." },
  unsubscribe: { class: "unsubscribe", subject: re, body: () => "Please remove me from your mailing list." },
  complaint: { class: "complaint", subject: re, body: () => "This is spam. I never agreed to be contacted and I have reported it." },
  auto_reply: {
    class: "auto_reply",
    subject: (s) => `Automatic reply: ${s}`,
    body: () => "Thank you for your email. This is an automated response to confirm we have received your message; a member of our team will be in touch.",
  },
  bounce: {
    class: "bounce",
    subject: () => "Delivery Status Notification (Failure)",
    body: ({ email }) =>
      `Delivery to the following recipient failed permanently:\n\n    ${email}\n\nFinal-Recipient: rfc822; ${email}\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 The email account that you tried to reach does not exist.`,
  },
};

/** Replies per 1,000 people emailed (each class at least one). */
export const EMAIL_REPLY_RATES: Record<ReplyClass, number> = {
  interested: 22, meeting_request: 16, question: 15, not_now: 14, out_of_office: 20, referral: 5, wrong_person: 7,
  not_interested: 25, unsubscribe: 10, complaint: 2, auto_reply: 10, bounce: 5,
};

export const LINKEDIN_REPLIES: ReplyScript[] = [
  { class: "interested", body: () => "Thanks for connecting! Sounds interesting, tell me more." },
  { class: "meeting_request", body: () => "Thanks for reaching out. Happy to catch up, book a time that suits next week." },
  { class: "question", body: () => "What kind of results have you had with companies like ours?" },
  { class: "not_interested", body: () => "Appreciate it, but not for us." },
];
/** LinkedIn replies per 1,000 people invited, by the scripts above. */
export const LINKEDIN_REPLY_RATES = [20, 15, 10, 10];

export const SMS_REPLIES: ReplyScript[] = [
  { class: "stop", body: () => "STOP" },
  { class: "unsubscribe", body: () => "Please remove me from your list" },
  { class: "interested", body: () => "Sounds good, send me more info" },
  { class: "not_now", body: () => "Maybe later, try me next month" },
  { class: "meeting_request", body: () => "Can we do a quick call on Friday?" },
];
/** Text replies per 1,000 people texted, by the scripts above. */
export const SMS_REPLY_RATES = [25, 10, 12, 10, 8];

/** A referred colleague's name, different from the person who referred them. */
export function referralName(r: Rng, not: string): { first: string; last: string } {
  for (;;) {
    const first = r.pick(FIRST);
    if (first !== not) return { first, last: r.pick(LAST) };
  }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

const DAY_MS = 86_400_000;
/**
 * The gate's ticks of each simulated day, Sydney time: the morning run; 40 minutes later, when the
 * calls and texts held for a DNCR wash are due again; and 13:00, when Perth (three hours behind)
 * is inside its windows too.
 */
const TICKS = ["10:00", "10:40", "13:00"];

interface Sender {
  id: string;
  address: string;
  account: string | null;
}

interface World {
  tag: string;
  clientId: string;
  clientName: string;
  campaignId: string;
  senders: Record<DemoChannel, Sender>;
  leadIds: string[];
  /** Simulated day 0: a weekday 10:00 in Sydney, and its local date. */
  base: Date;
  baseDate: string;
}

/** A reply or booking the demo posted, with the class it was written to be. */
export interface Posted {
  provider: "salesforge" | "twilio" | "unipile" | "calcom";
  eventId: string;
  leadId: string;
  channel: DemoChannel | "calendar";
  intended: ReplyClass | "stop" | "booking";
}

interface Ctx {
  args: DemoArgs;
  stack: Stack;
  sql: Sql;
  world: World;
  posted: Posted[];
  adapters: AdapterRegistry;
}

const emptyChannels = (): Record<DemoChannel, number> => ({ email: 0, sms: 0, voice: 0, linkedin: 0, mail: 0 });

/** New leads the campaign takes a day: an eighth of the pool (the rest of the fitting leads wait, capacity_full). */
export function campaignCapacity(leads: number): number {
  return Math.max(60, Math.round(leads / 8));
}

async function setupAgency(sql: Sql, args: DemoArgs, tag: string): Promise<Omit<World, "leadIds" | "base" | "baseDate">> {
  const icp = { ...DEMO_ICP };
  const [{ n }] = await sql`select count(*)::int as n from public.icps where is_agency_default`;
  // the agency's own default (pool leads are scored against it); an existing one is left alone
  if (n === 0) await sql`insert into public.icps ${sql({ ...icp, name: "Agency default ICP (demo)", is_agency_default: true })}`;
  const clientName = "Harbour Growth Co";
  const [client] = await sql`
    insert into public.clients (slug, name, status, plan, permission_mode, monthly_lead_quota, monthly_llm_budget_cents,
                                monthly_provider_budget_cents, timezone, booking_url)
    values (${`harbour-growth${tag ? `-${tag}` : ""}`}, ${clientName}, 'active', 'scale', 'autopilot', ${Math.max(1000, args.leads * 2)},
            ${Math.max(50_000, args.leads * 100)}, ${Math.max(200_000, args.leads * 400)}, 'Australia/Sydney',
            'https://cal.com/harbour-growth/intro')
    returning id`;
  const [clientIcp] = await sql`
    insert into public.icps ${sql({ ...icp, name: "Growth leaders, AU B2B", client_id: client.id, approved_at: new Date() })} returning id`;
  const [campaign] = await sql`
    insert into public.campaigns (client_id, icp_id, name, offer, sender_name, status, approved_at, paused_at, pause_reason, daily_new_leads)
    values (${client.id}, ${clientIcp.id}, 'Growth leaders: outbound meetings', ${icp.offer}, 'Sam Carter', 'paused', now(), now(),
            'launches once the list is scored', ${campaignCapacity(args.leads)})
    returning id`;
  const suffix = tag ? `-${tag}` : "";
  const senderRows: Array<[DemoChannel, string, string, string | null, Record<string, string> | null]> = [
    ["email", "salesforge", `sam${suffix}@harbourgrowth.example`, "mbx_sandbox_1", null],
    ["sms", "twilio", `+6148${String(8_123_456 + (tag ? seeded(tag).int(1, 999_999) : 0)).padStart(7, "0")}`, null, null],
    ["voice", "vapi", `+6129${String(1_234_567 + (tag ? seeded(tag).int(1, 999_999) : 0)).padStart(7, "0")}`, "pn_sandbox", null],
    ["linkedin", "unipile", `acc-harbour-sam${suffix}`, `acc-harbour-sam${suffix}`, null],
    ["mail", "postgrid", `Harbour Growth Co head office${suffix}`, null, { line1: "Level 12, 1 Market St", city: "Sydney", state: "NSW", postcode: "2000", country: "AU" }],
  ];
  const senders = {} as Record<DemoChannel, Sender>;
  for (const [channel, provider, address, account, postal] of senderRows) {
    // caps high enough that the demo's volume is never held back by them (one sender per channel)
    const [s] = await sql`
      insert into public.senders (client_id, channel, provider, address, provider_account_id, daily_cap, postal_address)
      values (${client.id}, ${channel}, ${provider}, ${address}, ${account}, 10000, ${postal ? sql.json(postal) : null})
      returning id`;
    senders[channel] = { id: s.id, address, account };
    await sql`insert into public.campaign_senders (campaign_id, sender_id, client_id) values (${campaign.id}, ${s.id}, ${client.id})`;
  }
  return { tag, clientId: client.id, clientName, campaignId: campaign.id, senders };
}

async function seedPool(sql: Sql, args: DemoArgs, tag: string): Promise<string[]> {
  const companies = demoCompanies(args.seed, args.leads, tag);
  const phoneBase = seeded(`demo:phones:${args.seed}:${tag}`).int(0, 89_999_999);
  const rows = demoLeads(args.seed, args.leads, companies, phoneBase, tag);
  const ids: string[] = [];
  for (let i = 0; i < rows.length; i += 500) {
    const chunk = rows.slice(i, i + 500).map((r) => {
      // the import resolves each person's zone and holiday region from their office's state, with
      // the function flow-timing uses (shared/engines/timezone.ts), so every lead carries its zone
      // before the campaign is planned (flow-timing, kicked by allocation, would race the planning)
      const tz = resolveTimezone({ country: r.country, state: r.state, city: r.city, phone_country: r.phone_country, phone_e164: r.phone_e164 },
        null, "Australia/Sydney");
      return {
        ...r, postal_address: r.postal_address ? sql.json(r.postal_address) : null,
        timezone: tz.timezone, timezone_assumed: tz.assumed, region_code: tz.region ?? holidayRegionFor(tz.country, r.state) ?? null,
      };
    });
    // (in a database an earlier run used, a mobile number may already be taken: that person is left out)
    const inserted = await sql`insert into public.lead_pool ${sql(chunk as never)} on conflict do nothing returning id`;
    ids.push(...inserted.map((r) => r.id as string));
  }
  // consent with its evidence (compliance S1, D1-D2): the team page the work address, mobile and
  // profile were published on; calls need express consent, which nine in ten gave (a webinar form)
  await sql`
    insert into public.lead_consents (lead_id, channel, basis, evidence_url, evidence_captured_at)
    select l.id, c.channel, 'inferred_publication', 'https://' || l.company_domain || '/about/team', now()
    from public.lead_pool l cross join unnest(array['email', 'sms', 'linkedin']) as c (channel)
    where l.id = any(${ids}::uuid[])`;
  const r = seeded(`demo:consent:${args.seed}`);
  const express = ids.filter(() => r.chance(0.9));
  await sql`
    insert into public.lead_consents (lead_id, channel, basis, evidence)
    select id, 'voice', 'express', jsonb_build_object('form', 'webinar registration', 'checkbox', 'Call me about outbound programmes')
    from unnest(${express}::uuid[]) as id`;
  return ids;
}

/**
 * The demo's agency for a long-lived server (`npm start -- --demo-agency`): the client, its ICP,
 * the approved five-channel campaign (active), one sender per channel and the pool, left to the
 * cron-driven flows on the wall clock — enrichment, scoring, allocation, content, the send gate
 * (so sends wait for each recipient's window) and the sandboxes' signed status webhooks. Only on
 * the sandboxes: refused when any provider credential or endpoint is configured, since the pool
 * is made-up people. Idempotent: a database that already holds the demo agency is left alone.
 */
export async function seedDemoAgency(sql: Sql, env: Record<string, string | undefined>, opts: { leads: number; seed?: string }):
  Promise<{ created: boolean; clientId: string; campaignId: string; /** leads seeded (the whole pool when it existed) */ leads: number }> {
  const real = sandboxOnly({ ...env }).filter((n) => !/^(QSTASH|UPSTASH)_/.test(n));
  if (real.length) throw new Error(`--demo-agency runs on the sandboxes only; unset ${real.join(", ")} (the demo's people are made up)`);
  const [existing] = await sql`
    select c.id as client_id, cp.id as campaign_id, (select count(*)::int from public.lead_pool) as leads
    from public.clients c join public.campaigns cp on cp.client_id = c.id
    where c.slug = 'harbour-growth' order by cp.created_at limit 1`;
  if (existing) return { created: false, clientId: existing.client_id, campaignId: existing.campaign_id, leads: existing.leads };
  const args: DemoArgs = { ...parseArgs([]), leads: opts.leads, seed: opts.seed ?? "demo" };
  const world = await setupAgency(sql, args, "");
  for (const [i, st] of DEMO_STEPS.entries()) {
    await sql`
      insert into public.campaign_steps (campaign_id, client_id, position, day_offset, channel, linkedin_action)
      values (${world.campaignId}, ${world.clientId}, ${i + 1}, ${st.day_offset}, ${st.channel}, ${st.linkedin_action ?? null})`;
  }
  // the client owner's approval of the sequence, and the launch
  await sql`update public.campaigns set status = 'active', approved_at = now(), paused_at = null, pause_reason = null
            where id = ${world.campaignId}`;
  const leadIds = await seedPool(sql, args, "");
  return { created: true, clientId: world.clientId, campaignId: world.campaignId, leads: leadIds.length };
}

interface PipelineCounts {
  new: number;
  enriching: number;
  enriched: number;
  scored: number;
  invalid: number;
  placed: number;
  unplaced: number;
}

async function pipelineCounts(sql: Sql, ids: string[]): Promise<PipelineCounts> {
  const [c] = await sql`
    select count(*) filter (where l.status = 'new')::int as new,
           count(*) filter (where l.status = 'enriching')::int as enriching,
           count(*) filter (where l.status = 'enriched')::int as enriched,
           count(*) filter (where l.status = 'scored')::int as scored,
           count(*) filter (where l.status = 'invalid')::int as invalid,
           count(*) filter (where l.status = 'scored' and a.id is not null)::int as placed,
           -- a verdict stands unless a campaign has opened since it was given (the allocator looks again)
           count(*) filter (where l.status = 'scored' and a.id is null and la.lead_id is not null
                              and not (la.reason in ('no_matching_campaign', 'capacity_full')
                                       and la.checked_at < coalesce(s.allocation_reopened_at, '-infinity')))::int as unplaced
    from public.lead_pool l
    cross join public.agency_settings s
    left join public.lead_assignments a on a.lead_id = l.id and a.ended_at is null
    left join public.lead_allocation la on la.lead_id = l.id
    where l.id = any(${ids}::uuid[]) and s.id`;
  return c as unknown as PipelineCounts;
}

/** Enrichment → scoring → allocation, driven by QStash from one kick per chain. */
async function runPipeline(ctx: Ctx): Promise<void> {
  const { sql, world, args } = ctx;
  // a few enrichment chains side by side: each claims its own leads (leased, SKIP LOCKED)
  const chains = Math.min(4, Math.max(1, Math.ceil(args.leads / 500)));
  await asService({ role: "demo", reason: "demo pool imported" }, async (tx) => {
    for (let i = 0; i < chains; i++) await kick(tx, "flow.enrichment", { limit: 50 });
  });
  await publishOutbox(sql);
  progress("pipeline", `flow.enrichment kicked (${plural(chains, "chain")}); enrichment → scoring → allocation run over QStash`);
  const n = world.leadIds.length;
  const describe = (c: PipelineCounts) =>
    `enriched ${c.enriched + c.scored + c.invalid}/${n} · scored ${c.scored} · invalid ${c.invalid} · placed ${c.placed} · not placed ${c.unplaced}`;
  const settled = (what: string) => waitFor("pipeline", what, async () => {
    const c = await pipelineCounts(sql, world.leadIds);
    return c.scored + c.invalid === n && c.placed + c.unplaced === c.scored ? c : false;
  }, { timeoutMs: 120_000 + n * 80, everyMs: 1000, report: async () => describe(await pipelineCounts(sql, world.leadIds)) });
  const scored = await settled("every lead scored (or found invalid) and given the allocator's verdict");
  progress("pipeline", `${describe(scored)}: the campaign is paused until the list is scored`);
  // The launch: the campaign opens, which makes the verdicts of the leads that waited for it
  // stale (a trigger) and queues one allocation step, so the whole scored list is placed
  // best-first — not whichever leads happened to be scored first.
  await sql`update public.campaigns set status = 'active', paused_at = null, pause_reason = null where id = ${world.campaignId}`;
  await publishOutbox(sql);
  const done = await settled("the scored list placed best-first (or given the reason a lead was not)");
  const reasons = await sql`
    select reason, count(*)::int as n from public.lead_allocation where lead_id = any(${world.leadIds}::uuid[]) group by reason`;
  progress("pipeline", `${describe(done)} (${counts(Object.fromEntries(reasons.map((r) => [r.reason, r.n])))})`);
  if (done.placed === 0) throw new StageError("pipeline", "no lead was placed in the campaign");
}

/** Writes the sequence, approves it, resolves zones and calendars, and plans every placed lead from day 0. */
async function approveAndPlan(ctx: Ctx): Promise<void> {
  const { sql, world, stack } = ctx;
  // the flows the pipeline kicked (timing, the outreach tick) have nothing left in flight
  let quiet = 0;
  await waitFor("campaign", "the QStash queue to drain", async () => {
    quiet = stack.qstash.stats().pending === 0 ? quiet + 1 : 0;
    return quiet >= 3;
  }, { timeoutMs: 30_000, everyMs: 200 }).catch(() =>
    progress("campaign", `QStash still holds ${plural(stack.qstash.stats().pending, "message")} (retries of a failing flow?); going on`));
  for (const [i, s] of DEMO_STEPS.entries()) {
    await sql`
      insert into public.campaign_steps (campaign_id, client_id, position, day_offset, channel, linkedin_action)
      values (${world.campaignId}, ${world.clientId}, ${i + 1}, ${s.day_offset}, ${s.channel}, ${s.linkedin_action ?? null})`;
  }
  // a changed sequence goes back for approval; the client owner approves it
  await sql`update public.campaigns set status = 'active', approved_at = now() where id = ${world.campaignId}`;
  // (every pool lead's zone was resolved at import: see seedPool)
  await ensureHolidayCalendars(sql, new Date());
  const [b] = await sql`
    select x.t, x.d::text as d from (
      select ((((now() at time zone 'Australia/Sydney')::date + i) + time '10:00') at time zone 'Australia/Sydney') as t,
             ((now() at time zone 'Australia/Sydney')::date + i) as d
      from generate_series(0, 14) as i) x
    where x.t > now() + interval '2 minutes' and extract(isodow from x.d) between 1 and 5
      and not exists (select 1 from public.public_holidays h where h.country = 'AU' and h.region = '' and h.day = x.d)
    order by x.t limit 1`;
  world.base = b.t as Date;
  world.baseDate = b.d as string;
  await ensureHolidayCalendars(sql, new Date(world.base.getTime() + 40 * DAY_MS));
  let planned = 0;
  for (;;) {
    const n = await asService({ role: "service:outreach", reason: "sequence planned" }, (tx) => planSequences(tx, { now: world.base, limit: 100_000 }));
    planned += n;
    if (n === 0) break;
  }
  const [{ runs }] = await sql`select count(*)::int as runs from public.step_runs where client_id = ${world.clientId}`;
  progress("campaign", `${DEMO_STEPS.length}-step sequence approved (${DEMO_STEPS.map((s) => `${s.channel} d${s.day_offset}`).join(", ")}); `
    + `${plural(planned, "lead")} planned (${plural(runs, "step run")}) from ${fmtSydney(world.base)}`);
}

function fmtSydney(d: Date): string {
  return new Intl.DateTimeFormat("en-AU", {
    timeZone: "Australia/Sydney", weekday: "short", day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit", hour12: false,
  }).format(d) + " Sydney";
}

/** "Wed 25 Nov": the simulated day, in Sydney. */
function sydneyDay(d: Date): string {
  const parts = new Intl.DateTimeFormat("en-AU", { timeZone: "Australia/Sydney", weekday: "short", day: "2-digit", month: "short" }).formatToParts(d);
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  return `${part("weekday")} ${part("day")} ${part("month")}`;
}

async function dayTicks(sql: Sql, baseDate: string, day: number): Promise<Date[]> {
  const rows = await sql`
    select ((${baseDate}::date + ${day}::int) + t::time) at time zone 'Australia/Sydney' as at
    from unnest(${TICKS}::text[]) with ordinality as x (t, n) order by n`;
  return rows.map((r) => r.at as Date);
}

/** Messages for the steps due up to `until` (the content flow's horizon, measured to the simulated instant). */
async function writeContent(ctx: Ctx, until: Date): Promise<Record<string, number>> {
  const anthropic = anthropicFromEnv();
  const search = anthropic ? serperSearch(createSerperClient()) : undefined;
  const horizonHours = Math.max(1, Math.ceil((until.getTime() - Date.now()) / 3_600_000));
  const by: Record<string, number> = {};
  for (;;) {
    const r = await writeDueContent(ctx.sql, { limit: 100, horizonHours, concurrency: 8, anthropic, search });
    for (const [k, v] of Object.entries(r.bySource)) by[k] = (by[k] ?? 0) + v;
    if (r.skipped) by.none = (by.none ?? 0) + r.skipped;
    if (!r.more) break;
  }
  return by;
}

/** The gate at `now`, over everything due (repeated while a call fills its limit). */
async function gate(now: Date): Promise<GateSummary> {
  const total: GateSummary = { claimed: 0, sent: 0, batches: 0, refused: {} };
  const limit = 20_000;
  for (;;) {
    // dispatch batches of 25 (the default is 100): more of them, delivered side by side
    const s = await asService({ role: "service:send-gate", reason: "send gate" }, (tx) => runSendGate(tx, { now, limit, batchSize: 25 }));
    total.claimed += s.claimed;
    total.sent += s.sent;
    total.batches += s.batches;
    for (const [k, v] of Object.entries(s.refused)) total.refused[k] = (total.refused[k] ?? 0) + Number(v);
    if (s.claimed < limit) return total;
  }
}

/** Washes every number the gate asked for against the DNCR sandbox (flow-dncr's work, done inline). */
async function washDncr(sql: Sql): Promise<{ washed: number; registered: number }> {
  const client = dncrFromEnv({ sql });
  let washed = 0;
  const before = new Date();
  for (let i = 0; i < 200; i++) {
    const r = await washRequestedNumbers(sql, client, 500);
    washed += r.washed + r.recovered;
    if (r.failed > 0) throw new StageError("dncr", `${r.failed} numbers could not be washed`);
    const [{ left }] = await sql`select count(*)::int as left from public.dncr_wash_requests where client_reference_id is null`;
    if (left === 0 && r.pending === 0) break;
  }
  const [{ registered }] = await sql`
    select count(*)::int as registered from public.dncr_washes where washed_at >= ${before} and result = 'registered'`;
  return { washed, registered };
}

/** Dispatches every pending batch of the client at `now` (LinkedIn at its paced times). */
async function dispatchPending(ctx: Ctx, now: Date): Promise<Record<DemoChannel, number>> {
  const sent = emptyChannels();
  for (let round = 0; round < 6; round++) {
    const batches = await ctx.sql`
      select s.batch_id, s.channel, max(coalesce(s.next_attempt_at, s.created_at)) as last_due
      from public.sends s
      where s.client_id = ${ctx.world.clientId} and s.status = 'pending' and s.batch_id is not null
      group by s.batch_id, s.channel`;
    if (batches.length === 0) break;
    let claimed = 0;
    // batches side by side, as QStash would deliver them to the dispatch functions
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(4, batches.length) }, async () => {
      while (next < batches.length) {
        const b = batches[next++];
        const channel = b.channel as DemoChannel;
        // one LinkedIn account acts like a person, 8-45 minutes apart: the batch goes out over the
        // simulated hours its pacing spans, so it is dispatched at the last of them
        const at = channel === "linkedin" && (b.last_due as Date) > now ? (b.last_due as Date) : now;
        const r = await dispatchBatch(ctx.sql, b.batch_id as string, ctx.adapters, { now: at, concurrency: 8 });
        sent[channel] += r.sent;
        claimed += r.claimed;
      }
    }));
    if (claimed === 0) break;
  }
  return sent;
}

async function allAdapters(): Promise<AdapterRegistry> {
  const [{ emailAdapters }, { smsAdapters }, { voiceAdapters }, { linkedinAdapters }, { mailAdapters }] = await Promise.all([
    import("../shared/channels/email.ts"), import("../shared/channels/sms.ts"), import("../shared/channels/voice.ts"),
    import("../shared/channels/linkedin.ts"), import("../shared/channels/mail.ts"),
  ]);
  return { ...emailAdapters(), ...smsAdapters(), ...voiceAdapters(), ...linkedinAdapters(), ...mailAdapters() };
}

/** One simulated day: content for the day's steps, then the gate, DNCR washes and dispatch at each tick. */
async function runDay(ctx: Ctx, day: number): Promise<void> {
  const t0 = performance.now();
  const ticks = await dayTicks(ctx.sql, ctx.world.baseDate, day);
  const written = await writeContent(ctx, new Date(ticks[ticks.length - 1].getTime() + 3_600_000));
  const tContent = performance.now();
  let tGate = 0, tWash = 0, tDispatch = 0;
  const sent = emptyChannels();
  const refused: Record<string, number> = {};
  let washed = 0;
  let registered = 0;
  for (const now of ticks) {
    let t = performance.now();
    const g = await gate(now);
    tGate += performance.now() - t; t = performance.now();
    if ((g.refused.dncr_unwashed ?? 0) > 0) {
      // the gate held calls and texts to unwashed numbers and asked for a wash; what it finds
      // clean goes out on the next tick (the held steps are due again 30 minutes later)
      const w = await washDncr(ctx.sql);
      washed += w.washed;
      registered += w.registered;
    }
    for (const [k, v] of Object.entries(g.refused)) refused[k] = (refused[k] ?? 0) + v;
    tWash += performance.now() - t; t = performance.now();
    const d = await dispatchPending(ctx, now);
    tDispatch += performance.now() - t;
    for (const c of CHANNELS) sent[c] += d[c];
  }
  const wrote = Object.values(written).reduce((a, b) => a + b, 0);
  progress(`day ${String(day).padStart(2)}`, `${sydneyDay(ticks[0])} · sent ${counts(sent)}`
    + ` · held/refused ${counts(refused)}${wrote ? ` · wrote ${wrote} messages (${counts(written)})` : ""}`
    + `${washed ? ` · DNCR washed ${washed} (${registered} registered)` : ""}`
    + (ctx.args.verbose ? ` [s: content ${((tContent - t0) / 1000).toFixed(1)}, gate ${(tGate / 1000).toFixed(1)}, DNCR ${(tWash / 1000).toFixed(1)}, dispatch ${(tDispatch / 1000).toFixed(1)}]` : ""));
}

// ---------------------------------------------------------------------------------------------
// Inbound: replies and bookings as signed provider webhooks
// ---------------------------------------------------------------------------------------------

async function postWebhook(ctx: Ctx, fn: string, body: string, headers: Record<string, string>, query = ""): Promise<void> {
  const res = await fetch(`${ctx.stack.url}/functions/v1/${fn}${query}`, { method: "POST", headers, body });
  const text = await res.text();
  if (res.status !== 200) throw new StageError("replies", `${fn} answered ${res.status}: ${text.slice(0, 300)}`);
}

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new StageError("replies", `${name} is not set (the local stack sets it)`);
  return v;
}

/** Leads to reply from: contacted on `channel` (sends in these statuses), still in sequence, not replied yet. */
async function candidates(ctx: Ctx, channel: DemoChannel, statuses: string[], opts: { action?: string } = {}) {
  const rows = await ctx.sql`
    select distinct on (s.lead_id) s.lead_id, s.id as send_id, l.email, l.first_name, l.last_name, l.company_domain,
           l.phone_e164, l.linkedin_url
    from public.sends s
    join public.lead_pool l on l.id = s.lead_id
    join public.lead_assignments a on a.id = s.assignment_id
    where s.client_id = ${ctx.world.clientId} and s.channel = ${channel} and s.status = any(${statuses}::text[])
      and a.status in ('queued', 'in_sequence') and a.ended_at is null
      ${opts.action ? ctx.sql`and s.action = ${opts.action}` : ctx.sql``}
      and not exists (select 1 from public.replies r where r.lead_id = s.lead_id)
    order by s.lead_id, s.created_at`;
  const taken = new Set(ctx.posted.map((p) => p.leadId));
  // a seeded order, so the same people answer in a run with the same seed
  const order = (r: Record<string, unknown>) => hashSeed(`${ctx.args.seed}:${channel}:${r.email}`);
  return rows.filter((r) => !taken.has(r.lead_id as string)).sort((a, b) => order(a) - order(b));
}

function hashSeed(s: string): number {
  return seeded(s).next();
}

/** How many of each script, at `rates` per 1,000 of `base`: each at least one, never more than there are people. */
function allot(base: number, rates: number[], available: number): number[] {
  const want = rates.map((r) => Math.max(1, Math.round((base * r) / 1000)));
  const out: number[] = [];
  let left = available;
  for (const w of want) {
    const n = Math.min(w, left);
    out.push(n);
    left -= n;
  }
  return out;
}

const hex = (r: Rng, n: number) => r.hex(n);

function replyContext(p: Record<string, unknown>, r: Rng): ReplyContext {
  return {
    domain: p.company_domain as string,
    email: p.email as string,
    returnDate: new Date(Date.now() + r.int(3, 9) * DAY_MS).toISOString().slice(0, 10),
    referral: referralName(r, p.first_name as string),
  };
}

/** Email replies of every class (and a bounce notice), as Salesforge email_replied events. */
async function emailReplies(ctx: Ctx, r: Rng): Promise<number> {
  const sf = ctx.stack.sandboxes.salesforge;
  const sequenceEmails = new Map(sf.emails().filter((e) => e.kind === "sequence" && e.sendId).map((e) => [e.sendId!, e]));
  const people = (await candidates(ctx, "email", ["sent", "delivered"])).filter((p) => sequenceEmails.has(p.send_id as string));
  const [{ emailed }] = await ctx.sql`
    select count(distinct lead_id)::int as emailed from public.sends
    where client_id = ${ctx.world.clientId} and channel = 'email' and status in ('sent', 'delivered')`;
  const plan = allot(emailed, REPLY_CLASSES.map((c) => EMAIL_REPLY_RATES[c]), people.length);
  const token = env("SALESFORGE_WEBHOOK_TOKEN");
  let k = 0;
  let posted = 0;
  for (const [i, cls] of REPLY_CLASSES.entries()) {
    for (let j = 0; j < plan[i]; j++) {
      const p = people[k++];
      const email = sequenceEmails.get(p.send_id as string)!;
      const contact = sf.contactByEmail(p.email as string);
      const script = EMAIL_REPLIES[cls];
      const body = script.body(replyContext(p, r));
      const eventId = `evt_${hex(r, 20)}`;
      const payload = {
        type: "email_replied", eventId, occurredAt: new Date().toISOString(), workspaceId: process.env.SALESFORGE_WORKSPACE_ID ?? "ws_sandbox",
        sequenceId: email.sequenceId, mailboxId: email.mailboxId, emailId: `eml_${hex(r, 20)}`, threadId: email.threadId,
        replyToEmailId: email.id, subject: script.subject ? script.subject(email.subject) : `Re: ${email.subject}`, content: body,
        contact: {
          id: contact?.id ?? email.contactId, email: p.email, firstName: p.first_name, lastName: p.last_name,
          customVars: { ...(contact?.customVars ?? {}), aos_send_id: p.send_id },
        },
      };
      await postWebhook(ctx, "webhook-salesforge", JSON.stringify(payload), { "content-type": "application/json" }, `?token=${encodeURIComponent(token)}`);
      ctx.posted.push({ provider: "salesforge", eventId, leadId: p.lead_id as string, channel: "email", intended: cls });
      posted++;
    }
  }
  return posted;
}

/** LinkedIn messages from people who accepted the invitation, as Unipile message_received events. */
async function linkedinReplies(ctx: Ctx, r: Rng): Promise<number> {
  let people = await candidates(ctx, "linkedin", ["delivered"], { action: "invitation" });
  const [{ invited }] = await ctx.sql`
    select count(distinct lead_id)::int as invited from public.sends
    where client_id = ${ctx.world.clientId} and channel = 'linkedin' and status in ('sent', 'delivered')`;
  // few acceptances yet (a small run): people may also answer the invitation's note
  if (people.length < LINKEDIN_REPLIES.length) people = [...people, ...await candidates(ctx, "linkedin", ["sent"], { action: "invitation" })];
  const plan = allot(invited, LINKEDIN_REPLY_RATES, people.length);
  const secret = env("UNIPILE_WEBHOOK_SECRET");
  const account = ctx.world.senders.linkedin.account!;
  let k = 0;
  for (const [i, script] of LINKEDIN_REPLIES.entries()) {
    for (let j = 0; j < plan[i]; j++) {
      const p = people[k++];
      const messageId = `msg_${hex(r, 18)}`;
      const payload = {
        event: "message_received", account_id: account, account_type: "LINKEDIN",
        account_info: { type: "LINKEDIN", feature: "classic", user_id: `ACoAAdemoSender${ctx.world.tag}` },
        chat_id: `chat_${hex(r, 18)}`, message_id: messageId, message: script.body(replyContext(p, r)), timestamp: new Date().toISOString(),
        sender: { attendee_provider_id: `ACoAA${hex(r, 16)}`, attendee_name: `${p.first_name} ${p.last_name}`, attendee_profile_url: p.linkedin_url },
      };
      await postWebhook(ctx, "webhook-unipile", JSON.stringify(payload), { "content-type": "application/json", "unipile-auth": secret });
      ctx.posted.push({ provider: "unipile", eventId: `message_received:${messageId}`, leadId: p.lead_id as string, channel: "linkedin", intended: script.class });
    }
  }
  return k;
}

/** Text replies (STOP among them) as Twilio inbound messages, signed over the public URL. */
async function smsReplies(ctx: Ctx, r: Rng): Promise<number> {
  const people = await candidates(ctx, "sms", ["sent", "delivered"]);
  const [{ texted }] = await ctx.sql`
    select count(distinct lead_id)::int as texted from public.sends
    where client_id = ${ctx.world.clientId} and channel = 'sms' and status in ('sent', 'delivered')`;
  const plan = allot(texted, SMS_REPLY_RATES, people.length);
  const authToken = env("TWILIO_AUTH_TOKEN");
  const url = `${env("PUBLIC_FUNCTIONS_BASE_URL")}/webhook-twilio`;
  let k = 0;
  for (const [i, script] of SMS_REPLIES.entries()) {
    for (let j = 0; j < plan[i]; j++) {
      const p = people[k++];
      const sid = `SM${hex(r, 32)}`;
      const params = new URLSearchParams({
        ToCountry: "AU", SmsMessageSid: sid, NumMedia: "0", SmsSid: sid, SmsStatus: "received", Body: script.body(replyContext(p, r)),
        To: ctx.world.senders.sms.address, NumSegments: "1", MessageSid: sid, AccountSid: process.env.TWILIO_ACCOUNT_SID ?? TWILIO_SANDBOX_DEFAULTS.accountSid,
        From: p.phone_e164 as string, FromCountry: "AU", ApiVersion: "2010-04-01",
      });
      const raw = params.toString();
      const signature = await signTwilio(url, new URLSearchParams(raw), authToken);
      await postWebhook(ctx, "webhook-twilio", raw, { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature });
      ctx.posted.push({ provider: "twilio", eventId: `${sid}:received`, leadId: p.lead_id as string, channel: "sms", intended: script.class });
    }
  }
  return k;
}

/** Waits until flow-inbound has applied every event posted so far and flow-replies has acted on every reply. */
async function waitInbound(ctx: Ctx, stage: string): Promise<void> {
  const keys = ctx.posted.map((p) => `${p.provider}:${p.eventId}`);
  const state = async () => {
    const [e] = await ctx.sql`
      select count(*)::int as n, count(*) filter (where processed_at is null)::int as open,
             max(error) filter (where processed_at is null) as error
      from public.webhook_events where provider || ':' || event_id = any(${keys}::text[])`;
    const [r] = await ctx.sql`
      select count(*)::int as n, count(*) filter (where acted_at is null)::int as open
      from public.replies r join public.webhook_events e on e.id = r.webhook_event_id
      where e.provider || ':' || e.event_id = any(${keys}::text[])`;
    return { events: e.n as number, eventsOpen: e.open as number, error: e.error as string | null, replies: r.n as number, repliesOpen: r.open as number };
  };
  await waitFor(stage, "the inbound and replies flows", async () => {
    const s = await state();
    return s.events === keys.length && s.eventsOpen === 0 && s.repliesOpen === 0;
  }, {
    timeoutMs: 90_000, everyMs: 400,
    report: async () => {
      const s = await state();
      return `events applied ${s.events - s.eventsOpen}/${keys.length} · replies acted ${s.replies - s.repliesOpen}/${s.replies}${s.error ? ` · last error: ${s.error}` : ""}`;
    },
  });
}

/** Cal.com bookings by people who answered positively, signed like Cal.com (x-cal-signature-256). */
async function bookings(ctx: Ctx, r: Rng): Promise<number> {
  const rows = await ctx.sql`
    select distinct on (rp.lead_id) rp.lead_id, rp.class, l.email, l.first_name, l.last_name, l.company_name
    from public.replies rp
    join public.lead_pool l on l.id = rp.lead_id
    join public.lead_assignments a on a.lead_id = rp.lead_id and a.client_id = rp.client_id and a.ended_at is null
    where rp.client_id = ${ctx.world.clientId} and rp.class in ('meeting_request', 'interested', 'question')
      and a.status = 'interested'
      and not exists (select 1 from public.meetings m where m.lead_id = rp.lead_id)
    order by rp.lead_id, rp.received_at`;
  const rank: Record<string, number> = { meeting_request: 0, interested: 1, question: 2 };
  const sorted = [...rows].sort((a, b) => rank[a.class as string] - rank[b.class as string]
    || hashSeed(`${ctx.args.seed}:book:${a.email}`) - hashSeed(`${ctx.args.seed}:book:${b.email}`));
  // everyone who asked for a meeting books one, about a third of the interested and a few who had
  // a question, and enough people overall for every outcome to happen
  const chosen = sorted.filter((p) => p.class === "meeting_request" || (p.class === "interested" && r.chance(0.3)) || (p.class === "question" && r.chance(0.1)));
  for (const p of sorted) if (chosen.length < 4 && !chosen.includes(p)) chosen.push(p);
  const secret = env("CALCOM_WEBHOOK_SECRET");
  for (const p of chosen) {
    const uid = `bk${hex(r, 22)}`;
    const start = new Date(Math.ceil((Date.now() + r.int(1, 6) * DAY_MS) / 3_600_000) * 3_600_000);
    const body = JSON.stringify({
      triggerEvent: "BOOKING_CREATED", createdAt: new Date().toISOString(),
      payload: {
        type: "intro-call", title: `Intro call: ${ctx.world.clientName} <> ${p.company_name}`, uid, status: "ACCEPTED",
        startTime: start.toISOString(), endTime: new Date(start.getTime() + 30 * 60_000).toISOString(),
        organizer: { name: "Sam Carter", email: ctx.world.senders.email.address, timeZone: "Australia/Sydney" },
        attendees: [{ email: p.email, name: `${p.first_name} ${p.last_name}`, timeZone: "Australia/Sydney" }],
        location: "integrations:daily", metadata: { videoCallUrl: `https://app.cal.com/video/${uid}` },
      },
    });
    await postWebhook(ctx, "webhook-calcom", body, { "content-type": "application/json", "x-cal-signature-256": await signCalCom(body, secret) });
    ctx.posted.push({ provider: "calcom", eventId: `${uid}:BOOKING_CREATED:${start.toISOString()}`, leadId: p.lead_id as string, channel: "calendar", intended: "booking" });
  }
  return chosen.length;
}

/** The account manager records how each meeting went, and closes the held ones (the closer engine). */
async function outcomes(ctx: Ctx, r: Rng): Promise<Record<string, number>> {
  const meetings = await ctx.sql`
    select id, attendee_email from public.meetings where client_id = ${ctx.world.clientId} and status = 'booked' order by starts_at, id`;
  const n = meetings.length;
  const out: Record<string, number> = { held: 0, no_show: 0, won: 0, lost: 0 };
  if (n === 0) return out;
  const noShows = Math.min(n - 1, Math.max(1, Math.round(n * 0.2)));
  const held = n - noShows;
  const won = Math.max(1, Math.round(held * 0.35));
  for (const [i, m] of meetings.entries()) {
    const outcome = i < held ? "held" : "no_show";
    await asService({ role: "demo:account-manager", reason: `meeting ${outcome}` }, async (tx) => {
      await recordMeetingOutcome(tx, m.id as string, { outcome, notes: outcome === "held" ? "Discovery call done; proposal requested." : null });
      out[outcome]++;
      if (outcome === "held") {
        const result = i < won ? "won" : "lost";
        await closeMeeting(tx, m.id as string, { result, reason: result === "won" ? "signed a 6-month retainer" : r.pick(["budget frozen", "went with an in-house SDR", "timing"]) });
        out[result]++;
      }
    });
  }
  return out;
}

/** Everything the sandboxes still have in flight, then every stored webhook event applied. */
async function settle(ctx: Ctx, stage: string, since: Date): Promise<void> {
  const s = ctx.stack.sandboxes;
  await Promise.race([
    Promise.all([s.salesforge.settled(), s.twilio.settled(), s.vapi.settled(), s.unipile.settled(), s.postgrid.settled(), s.clicksend.settled()]),
    new Promise((r) => setTimeout(r, 30_000)),
  ]);
  const open = async () => {
    const [e] = await ctx.sql`
      select count(*) filter (where processed_at is null)::int as open, count(*)::int as n,
             max(error) filter (where processed_at is null) as error
      from public.webhook_events where received_at >= ${since}`;
    const [rp] = await ctx.sql`select count(*)::int as open from public.replies where client_id = ${ctx.world.clientId} and acted_at is null`;
    const stuck = e.open > 0 && e.open < 5
      ? (await ctx.sql`
          select provider, event_type, attempts, left(error, 160) as error from public.webhook_events
          where received_at >= ${since} and processed_at is null`).map((x) => `${x.provider} ${x.event_type} ×${x.attempts}${x.error ? `: ${x.error}` : ""}`).join("; ")
      : null;
    return { open: e.open as number, n: e.n as number, error: stuck ?? (e.error as string | null), replies: rp.open as number };
  };
  let sweepAt = Date.now() + 3000;
  await waitFor(stage, "every webhook event applied and every reply acted on", async () => {
    const o = await open();
    if (o.open === 0 && o.replies === 0) return true;
    if (Date.now() >= sweepAt) {
      // what the cron does: flow-inbound and flow-replies sweep what their messages left behind
      // (an event retried while its send was still being recorded, a reply whose message was lost)
      await asService({ role: "demo:cron" }, async (tx) => {
        await kick(tx, "flow.inbound", { limit: 100 });
        await kick(tx, "flow.replies", {});
      });
      await publishOutbox(ctx.sql);
      sweepAt = Date.now() + 5000;
    }
    return false;
  }, {
    timeoutMs: 120_000, everyMs: 500,
    report: async () => {
      const o = await open();
      return `webhook events applied ${o.n - o.open}/${o.n}, replies waiting ${o.replies}${o.error ? ` (last error: ${o.error})` : ""}`;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------

/**
 * The demo only ever talks to the sandboxes and the local QStash emulator: provider credentials
 * and base URLs in the environment are dropped, so a developer's real keys can never send a message
 * to the demo's made-up people.
 */
export function sandboxOnly(env: Record<string, string | undefined>): string[] {
  const names = [
    ...Object.values(PROVIDERS).flatMap((p) => [p.key, p.baseUrl]),
    "DNCR_TELEMARKETER_ID", "DNCR_WASH_ONLY_USER_ID", "CLICKSEND_API_KEY", "TWILIO_AUTH_TOKEN",
    "QSTASH_URL", "QSTASH_TOKEN", "QSTASH_CURRENT_SIGNING_KEY", "QSTASH_NEXT_SIGNING_KEY",
    "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN",
  ];
  const dropped = names.filter((n) => env[n]);
  for (const n of names) delete env[n];
  return dropped;
}

export async function runDemo(args: DemoArgs): Promise<{ report: DemoReport | null; error: Error | null }> {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const dropped = sandboxOnly(process.env);
  if (dropped.length) progress("demo", `ignoring ${dropped.join(", ")}: the demo runs on the sandboxes only`);
  const stateDir = await mkdtemp(join(tmpdir(), "agency-os-demo-"));
  const external = Boolean(process.env.DATABASE_URL);
  // Embedded PGlite runs in a child process, so the database has a core of its own (in-process it
  // would share one thread with every function, sandbox and the QStash emulator).
  const child = external ? null : await startDatabaseChild(root, args.dataDir ?? "memory://");
  const stack = await startStack({
    root, port: 0, databaseUrl: child?.url, dataDir: args.dataDir ?? "memory://", stateDir, schedules: false,
    // retries (a status that beat its send's dispatch record) come back in tens of milliseconds
    qstashBackoffScale: 0.02,
  }).catch(async (err) => {
    await child?.stop();
    throw err;
  });
  if (child) {
    // one PGlite serves one session: the functions share a pool of one connection, as in-process
    process.env.DB_POOL_MAX = "1";
    await closeDb();
  }
  // A Redis shared with other runs would answer this run's provider calls from their cache (the
  // sandboxes are deterministic, so the same seed asks the same questions): the demo calls the
  // providers itself, so its calls and costs are its own. DEMO_PROVIDER_CACHE=1 keeps the cache.
  if (!process.env.DEMO_PROVIDER_CACHE) delete process.env.UPSTASH_REDIS_REST_URL;
  resetEnvCache();
  const database = child ? child.describe : stack.database.describe;
  if (!child) progress("stack", "DATABASE_URL is set: the demo writes to that database, and its send gate runs over every due step in it");
  progress("stack", `up at ${stack.url}: ${database}, ${stack.functions.length} functions, sandboxes for every provider`);
  const sql = db();
  const since = new Date();
  let report: DemoReport | null = null;
  let error: Error | null = null;
  try {
    // a database someone else uses may hold an earlier run: tag this run's rows apart
    const [{ n: earlier }] = await sql`select count(*)::int as n from public.clients where slug like 'harbour-growth%'`;
    const tag = external || earlier > 0 || args.dataDir ? seeded(`${Date.now()}:${Math.random()}`).hex(5) : "";
    if (earlier > 0) {
      // an earlier run's campaign would compete for this run's leads: it is paused
      const paused = await sql`
        update public.campaigns set status = 'paused', paused_at = now(), pause_reason = 'a later demo run'
        where status = 'active' and client_id in (select id from public.clients where slug like 'harbour-growth%')
        returning id`;
      if (paused.length) progress("agency", `paused ${plural(paused.length, "campaign")} of an earlier demo run in this database`);
    }
    const world = { ...(await setupAgency(sql, args, tag)), leadIds: [], base: new Date(0), baseDate: "" } as World;
    progress("agency", `client ${world.clientName} (autopilot): ICP "Growth leaders, AU B2B", an approved campaign (paused until the list is scored), one sender per channel`);
    world.leadIds = await seedPool(sql, args, tag);
    progress("pool", `${plural(world.leadIds.length, "lead")} imported (status new) with consent evidence; ${plural(new Set((await sql`select company_domain from public.lead_pool where id = any(${world.leadIds}::uuid[])`).map((r) => r.company_domain)).size, "company", "companies")}`);
    const ctx: Ctx = { args, stack, sql, world, posted: [], adapters: await allAdapters() };
    await runPipeline(ctx);
    await approveAndPlan(ctx);

    const r = seeded(`demo:inbound:${args.seed}`);
    for (let day = 0; day < args.days; day++) {
      await runDay(ctx, day);
      if (day === 6 || day === 13) {
        // replies arrive: after the first email, call and invitation (day 6), and after the texts (day 13)
        await settle(ctx, "replies", since);
        const e = day === 6 ? await emailReplies(ctx, r) : 0;
        const l = day === 6 ? await linkedinReplies(ctx, r) : 0;
        const t = day === 13 ? await smsReplies(ctx, r) : 0;
        progress("replies", `posted ${[e && `${e} email (Salesforge)`, l && `${l} LinkedIn (Unipile)`, t && `${t} text (Twilio)`].filter(Boolean).join(", ")} as signed webhooks`);
        await waitInbound(ctx, "replies");
        const classes = await sql`
          select class, count(*)::int as n from public.replies where client_id = ${world.clientId} group by class`;
        progress("replies", `classified and acted on: ${counts(Object.fromEntries(classes.map((c) => [c.class ?? "unclassified", c.n])))}`);
        const b = await bookings(ctx, r);
        await waitInbound(ctx, "bookings");
        const [{ m }] = await sql`select count(*)::int as m from public.meetings where client_id = ${world.clientId}`;
        progress("bookings", `${plural(b, "Cal.com booking")} posted (BOOKING_CREATED, signed); ${plural(m, "meeting")} on the books`);
      }
    }
    const o = await outcomes(ctx, r);
    progress("outcomes", `held ${o.held} (won ${o.won}, lost ${o.lost}), no-show ${o.no_show}`);
    await settle(ctx, "settle", since);
    const scope: DemoScope = {
      clientId: world.clientId, campaignId: world.campaignId, leadIds: world.leadIds, since, base: world.base, days: args.days,
      posted: ctx.posted, seed: args.seed, database,
    };
    report = await collectReport(sql, scope);
    report.run.duration_seconds = Math.round((performance.now() - started) / 100) / 10;
    progress("report", `funnel ${report.funnel.map((f) => `${f.stage} ${f.count}`).join(" → ")}`);
  } catch (err) {
    error = err instanceof Error ? err : new Error(String(err));
  } finally {
    await stack.stop().catch(() => {});
    await child?.stop().catch(() => {});
    await rm(stateDir, { recursive: true, force: true }).catch(() => {});
  }
  return { report, error };
}

interface DatabaseChild {
  url: string;
  describe: string;
  stop(): Promise<void>;
}

/**
 * Starts PGlite with the migrations applied (dev/database.ts) in a child process, served on a local
 * port; it lives until its stdin closes (this process ending, or stop()).
 */
async function startDatabaseChild(root: string, dataDir: string): Promise<DatabaseChild> {
  const code = `
    import { openDatabase } from ${JSON.stringify(pathToFileURL(join(root, "dev/database.ts")).href)};
    const database = await openDatabase({ root: ${JSON.stringify(root)}, dataDir: ${JSON.stringify(dataDir)} });
    process.stdout.write(JSON.stringify({ url: database.url, describe: database.describe }) + "\\n");
    process.stdin.resume();
    process.stdin.once("end", () => database.close().finally(() => process.exit(0)));`;
  // the same loader this process runs under (tsx), so the child imports TypeScript too
  const proc = spawn(process.execPath, [...process.execArgv, "--input-type=module", "-e", code], {
    cwd: root, stdio: ["pipe", "pipe", "inherit"],
  });
  const first = await new Promise<string>((resolve, reject) => {
    let buf = "";
    proc.stdout!.on("data", (chunk: Buffer) => {
      buf += chunk.toString("utf8");
      if (buf.includes("\n")) resolve(buf.slice(0, buf.indexOf("\n")));
    });
    proc.once("exit", (code) => reject(new StageError("stack", `the database process exited (${code}) before it was ready`)));
    proc.once("error", reject);
  });
  const info = JSON.parse(first) as { url: string; describe: string };
  return {
    url: info.url,
    describe: `${info.describe.replace(/ on 127\.0\.0\.1:\d+$/, "")} in its own process`,
    stop: () => new Promise<void>((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.once("exit", () => resolve());
      proc.stdin!.end();
      setTimeout(() => proc.kill("SIGKILL"), 10_000).unref();
    }),
  };
}

async function main(): Promise<number> {
  let args: DemoArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  // stdout carries the report only: whatever else writes to console.log goes to stderr
  const out = process.stdout.write.bind(process.stdout);
  console.log = (...a: unknown[]) => console.error(...a);
  if (!process.env.LOG_LEVEL) process.env.LOG_LEVEL = args.verbose ? "info" : "silent";
  progress("demo", `${plural(args.leads, "lead")}, seed "${args.seed}", ${args.days} simulated days of sequence`);
  const { report, error } = await runDemo(args);
  if (error) progress("failed", error.stack ?? error.message);
  if (report) {
    for (const p of report.problems) progress("problem", p);
    out(args.json ? `${JSON.stringify(report)}\n` : renderReport(report));
  }
  progress("done", error ? "failed" : report && report.problems.length ? `finished with ${plural(report.problems.length, "problem")}` : "ok");
  return error || !report || report.problems.length ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("demo.ts")) {
  main().then(
    (code) => process.stdout.write("", () => process.exit(code)),
    (err) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
