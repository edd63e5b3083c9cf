// The demo agency's data (`npm run demo`, dev/demo.ts): the ICP, the client, its campaign and
// senders, a pool of realistic Australian B2B leads, and the replies people send back, each in
// words the classifier reads as its class. Everything is derived from one seed, so two runs with
// the same --seed and --leads build the same agency.
import { normaliseLinkedin } from "../shared/engines/suppress.ts";
import { seeded, type Rng } from "./sandbox/seeded.ts";

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

/** The default sequence of product.md §5, plus a letter on day 10 (only Hot leads may get one). */
export const DEMO_STEPS: Array<{ day_offset: number; channel: string; linkedin_action?: string }> = [
  { day_offset: 0, channel: "email" },
  { day_offset: 3, channel: "voice" },
  { day_offset: 5, channel: "linkedin", linkedin_action: "invitation" },
  { day_offset: 8, channel: "email" },
  { day_offset: 10, channel: "mail" },
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

/** Companies for `leads` people (about 2.2 people each); a few in New Zealand, outside the ICP. */
export function demoCompanies(seed: string, leads: number, tag: string): DemoCompany[] {
  const r = seeded(`demo:companies:${seed}`);
  const n = Math.max(4, Math.ceil(leads / 2.2));
  const out: DemoCompany[] = [];
  const used = new Set<string>();
  for (let i = 0; out.length < n; i++) {
    const a = r.pick(WORDS);
    const b = r.pick(SUFFIXES);
    const nz = r.chance(0.06);
    const base = `${a}${r.chance(0.5) ? "-" : ""}${b}${r.chance(0.15) ? r.int(2, 9) : ""}`;
    // the run's tag keeps domains apart from earlier runs in a shared database
    const domain = `${base}${tag}.${nz ? "co.nz" : "com.au"}`;
    if (used.has(domain)) continue;
    used.add(domain);
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
export function demoLeads(seed: string, count: number, companies: DemoCompany[], phoneBase: number): DemoLeadRow[] {
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
    // unique mobiles: +614 then 8 digits from the run's base; about one in ten ends in 0, which the
    // DNCR sandbox answers "registered"
    const hasPhone = !nz && r.chance(0.9);
    const phone = hasPhone ? `+614${String((phoneBase + i * 7919) % 100_000_000).padStart(8, "0")}` : null;
    const hasLinkedin = r.chance(0.88);
    const slug = `${local.replace(/\./g, "-")}-${r.hex(6)}`;
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

export interface ReplyScript {
  class: ReplyClass | "stop";
  subject?: (orig: string) => string;
  body: (ctx: { firstName: string; domain: string; email: string; returnDate: string; referral: { first: string; last: string } }) => string;
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
