// Pure checks on a written outreach message, run before anything is queued (the content flow and the
// send gate both call them). They encode the hard rules of product.md §6 and compliance.md as data:
// sender identification (S2), an unsubscribe / opt-out (S3), one SMS segment, LinkedIn note limits,
// the GDPR source notice in the first message to an EU/UK recipient (G3), and the bounds and spam
// words that keep cold messages out of junk folders. A message with any violation must not be sent.
import type { Channel, LinkedInAction } from "../channels/types.ts";

// ---------------------------------------------------------------------------------------------
// Bounds
// ---------------------------------------------------------------------------------------------

/**
 * Length bounds, in characters (UTF-16 units, what JavaScript's .length counts).
 * - Email subject 1–78: RFC 5322's recommended line length, and about what inboxes show.
 * - Email body 40–2,500: a cold email is read on a phone; anything longer is a brochure.
 * - SMS: exactly one segment, counted by smsSegments (160 GSM-7 units / 70 UCS-2 units).
 * - LinkedIn invitation note: 300 on a paid account, 200 on a free one (compliance.md practice
 *   limits; providers.md §7). LinkedIn messages: 1,900, under LinkedIn's own 8,000 with room to read.
 * - Voice opener: what the agent says before the lead answers, ~40 s of speech at most.
 * - Letter: one printed A4 page of body text.
 */
export const CONTENT_BOUNDS = {
  emailSubjectMin: 1,
  emailSubjectMax: 78,
  emailBodyMin: 40,
  emailBodyMax: 2_500,
  smsSingleSegmentGsm7: 160,
  smsSingleSegmentUcs2: 70,
  linkedinNotePaidMax: 300,
  linkedinNoteFreeMax: 200,
  linkedinMessageMin: 10,
  linkedinMessageMax: 1_900,
  voiceScriptMin: 20,
  voiceScriptMax: 600,
  letterBodyMin: 100,
  letterBodyMax: 3_000,
} as const;

/**
 * Spam-trigger words and phrases, matched whole-word and case-insensitively in the subject and body.
 * Drawn from the lists mailbox-deliverability vendors publish (HubSpot, Mailmeteor, Instantly's
 * spam-word guides): money and prize language, pressure, "no risk" promises and the classic scams.
 * Common words that appear on those lists but read naturally in a B2B note ("free" alone as in
 * "feel free", "sales", "offer") are left out on purpose: they would reject honest messages.
 */
export const SPAM_TRIGGER_WORDS = [
  "100% free", "100% satisfied", "act now", "action required", "apply now", "as seen on", "bargain",
  "best price", "big bucks", "buy now", "call now", "cash bonus", "casino", "cheap", "click below",
  "click here", "congratulations", "dear friend", "double your", "earn extra", "earn money",
  "eliminate debt", "exclusive deal", "extra income", "fast cash", "financial freedom", "for free",
  "free gift", "free money", "free trial", "get paid", "get rich", "guarantee", "guaranteed",
  "incredible deal", "limited time", "lottery", "lowest price", "make money", "million dollars",
  "miracle", "no catch", "no cost", "no obligation", "no strings attached", "once in a lifetime",
  "order now", "prize", "pure profit", "risk-free", "risk free", "satisfaction guaranteed",
  "special promotion", "this is not spam", "this isn't spam", "urgent", "viagra", "winner",
  "work from home", "you have been selected", "you're a winner",
] as const;

/** EU member states, the rest of the EEA (IS, LI, NO) and the UK: GDPR / UK GDPR Art 14 applies. */
export const GDPR_NOTICE_COUNTRIES: ReadonlySet<string> = new Set([
  "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU",
  "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO", "GB",
]);

/** The first message to an EU/EEA/UK recipient must carry the data-source notice (compliance G3). */
export function needsDataSourceNotice(recipientCountry: string | null | undefined, isFirstTouch: boolean | undefined): boolean {
  if (!isFirstTouch || !recipientCountry) return false;
  const cc = recipientCountry.trim().toUpperCase();
  return GDPR_NOTICE_COUNTRIES.has(cc === "UK" ? "GB" : cc === "EL" ? "GR" : cc);
}

// ---------------------------------------------------------------------------------------------
// SMS segments
// ---------------------------------------------------------------------------------------------

/** GSM 03.38 basic character set (the escape code 0x1B itself excluded: it is not a character). */
export const GSM7_BASIC =
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/** GSM 03.38 extension table: each costs two septets (escape + code). */
export const GSM7_EXTENSION = "\f^{}\\[~]|€";

const BASIC = new Set(GSM7_BASIC);
const EXTENSION = new Set(GSM7_EXTENSION);

export interface SmsSegments {
  encoding: "GSM-7" | "UCS-2";
  /** GSM-7: septets (extension characters count 2); UCS-2: UTF-16 code units. */
  units: number;
  /** 0 for an empty text. */
  segments: number;
  /** The most units one unsplit message holds in this encoding (160 or 70). */
  singleSegmentLimit: number;
}

/**
 * How a text travels as SMS: GSM-7 when every character is in the GSM 03.38 basic or extension
 * table, else UCS-2. One message holds 160 septets / 70 UTF-16 units; a longer one is split into
 * parts of 153 / 67 (the rest is the concatenation header), and a part never splits an escape pair
 * or a surrogate pair, so the count packs characters into parts rather than dividing.
 */
export function smsSegments(text: string): SmsSegments {
  const chars = Array.from(text); // code points: a surrogate pair stays one item
  const gsm = chars.every((c) => BASIC.has(c) || EXTENSION.has(c));
  const cost = (c: string) => (gsm ? (EXTENSION.has(c) ? 2 : 1) : c.length);
  const units = chars.reduce((n, c) => n + cost(c), 0);
  const single = gsm ? CONTENT_BOUNDS.smsSingleSegmentGsm7 : CONTENT_BOUNDS.smsSingleSegmentUcs2;
  const encoding = gsm ? "GSM-7" : "UCS-2";
  if (units === 0) return { encoding, units, segments: 0, singleSegmentLimit: single };
  if (units <= single) return { encoding, units, segments: 1, singleSegmentLimit: single };
  const part = gsm ? 153 : 67;
  let segments = 1;
  let used = 0;
  for (const c of chars) {
    const n = cost(c);
    if (used + n > part) {
      segments++;
      used = 0;
    }
    used += n;
  }
  return { encoding, units, segments, singleSegmentLimit: single };
}

// ---------------------------------------------------------------------------------------------
// Wording detectors
// ---------------------------------------------------------------------------------------------

/** "Reply STOP to opt out", "Text STOP to unsubscribe", "STOP to end" and the like. */
const SMS_OPT_OUT = [
  /\b(?:reply|text|send|sms)\s+["'“‘]?stop["'”’]?(?![\p{L}\p{N}])/iu,
  /\bstop\s+to\s+(?:opt[\s-]?out|unsubscribe|end|cancel|quit)\b/iu,
];

/** A LinkedIn message's way out: "reply stop", "unsubscribe", "I won't message you again". */
const MESSAGE_OPT_OUT = [
  /\breply\b[^.\n]{0,40}\b(?:stop|no thanks|not interested|unsubscribe)\b/iu,
  /\bunsubscribe\b/iu,
  /\bopt[\s-]?out\b/iu,
  /\bwon['’]?t\s+(?:message|contact|write to)\s+(?:you\s+)?again\b/iu,
];

/**
 * The Art 14 notice: where the details came from and the legitimate-interest basis. Detected by
 * both parts being named, in any wording: "found your details on LinkedIn … legitimate interest".
 */
const NOTICE_SOURCE = /\b(?:found|obtained|got|sourced|collected|came across)\b/iu;
const NOTICE_BASIS = /\blegitimate[\s-]+interests?\b/iu;

export function hasDataSourceNotice(text: string): boolean {
  return NOTICE_SOURCE.test(text) && NOTICE_BASIS.test(text);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// Letters and digits on either side end a word; "cheap" does not match "cheaper" nor "cheapside".
const SPAM_PATTERNS = SPAM_TRIGGER_WORDS.map((w) => ({
  word: w,
  re: new RegExp(`(?<![\\p{L}\\p{N}])${escapeRegExp(w).replace(/\s+/g, "\\s+").replace(/'/g, "['’]")}(?![\\p{L}\\p{N}])`, "iu"),
}));

/** The spam-trigger words found in a text, each once, in list order. */
export function findSpamWords(text: string): string[] {
  return SPAM_PATTERNS.filter((p) => p.re.test(text)).map((p) => p.word);
}

function normalise(s: string): string {
  return s.toLowerCase().replace(/\s+/g, " ").trim();
}

// ---------------------------------------------------------------------------------------------
// checkContent
// ---------------------------------------------------------------------------------------------

export type ViolationCode =
  | "subject_missing"
  | "subject_too_long"
  | "subject_multiline"
  | "body_empty"
  | "body_too_short"
  | "body_too_long"
  | "spam_word"
  | "sender_missing"
  | "unsubscribe_missing"
  | "opt_out_missing"
  | "sms_segments"
  | "linkedin_note_too_long"
  | "data_source_notice_missing"
  | "merge_field_unrendered";

export interface Violation {
  code: ViolationCode;
  message: string;
}

export interface ContentCheckContext {
  /** The person the message is from; it or clientName must appear (S2). */
  senderName?: string | null;
  /** The client (organisation) the message is sent for. */
  clientName?: string | null;
  /** ISO 3166-1 alpha-2 of the recipient. */
  recipientCountry?: string | null;
  /** The first message this person receives from this client (G3). */
  isFirstTouch?: boolean;
  /** LinkedIn: the note limit is 200 characters on a free account. */
  linkedinFreeAccount?: boolean;
  /** LinkedIn: an invitation note (default: a message). */
  linkedinAction?: LinkedInAction;
  /** Email: the rendered unsubscribe URL, when it is already in the body instead of the placeholder. */
  unsubscribeUrl?: string | null;
}

export interface ContentToCheck {
  subject?: string | null;
  body: string;
}

/** The placeholder the sender replaces with the per-send unsubscribe link. */
export const UNSUBSCRIBE_PLACEHOLDER = "{{unsubscribe_url}}";

/** Every rule a message breaks, in a stable order; an empty list means it may be queued. */
export function checkContent(channel: Channel, content: ContentToCheck, ctx: ContentCheckContext = {}): Violation[] {
  const out: Violation[] = [];
  const add = (code: ViolationCode, message: string) => out.push({ code, message });
  const body = content.body ?? "";
  const subject = content.subject ?? "";
  const B = CONTENT_BOUNDS;

  if (!body.trim()) add("body_empty", "the body is empty");

  // Subject (email only; other channels have none and any given is ignored).
  if (channel === "email") {
    const s = subject.trim();
    if (s.length < B.emailSubjectMin) add("subject_missing", "an email needs a subject");
    if (s.length > B.emailSubjectMax) add("subject_too_long", `the subject is ${s.length} characters; at most ${B.emailSubjectMax}`);
    if (/[\r\n]/.test(subject)) add("subject_multiline", "the subject must be one line");
  }

  // Length per channel.
  const len = body.length;
  const bounds = (min: number, max: number, what: string) => {
    if (body.trim() && len < min) add("body_too_short", `the ${what} is ${len} characters; at least ${min}`);
    if (len > max) add("body_too_long", `the ${what} is ${len} characters; at most ${max}`);
  };
  switch (channel) {
    case "email":
      bounds(B.emailBodyMin, B.emailBodyMax, "email body");
      break;
    case "sms": {
      const seg = smsSegments(body);
      if (seg.segments > 1) {
        add("sms_segments",
          `the SMS is ${seg.units} ${seg.encoding} units = ${seg.segments} segments; it must fit one (${seg.singleSegmentLimit} in ${seg.encoding}), opt-out wording included`);
      }
      break;
    }
    case "linkedin":
      if (ctx.linkedinAction === "invitation") {
        const max = ctx.linkedinFreeAccount ? B.linkedinNoteFreeMax : B.linkedinNotePaidMax;
        if (len > max) {
          add("linkedin_note_too_long", `the invitation note is ${len} characters; at most ${max} on a ${ctx.linkedinFreeAccount ? "free" : "paid"} account`);
        }
      } else {
        bounds(B.linkedinMessageMin, B.linkedinMessageMax, "LinkedIn message");
      }
      break;
    case "voice":
      bounds(B.voiceScriptMin, B.voiceScriptMax, "voice opener");
      break;
    case "mail":
      bounds(B.letterBodyMin, B.letterBodyMax, "letter");
      break;
  }

  // A literal "{{" means a merge field was never filled — except the unsubscribe placeholder,
  // which the sender fills per send.
  const leftover = `${subject}\n${body}`.split(UNSUBSCRIBE_PLACEHOLDER).join("");
  if (/\{\{|\}\}/.test(leftover)) add("merge_field_unrendered", "a merge field was left unfilled (\"{{…}}\")");

  const spam = findSpamWords(`${subject}\n${body}`);
  if (spam.length) add("spam_word", `spam-trigger wording: ${spam.map((w) => `"${w}"`).join(", ")}`);

  // S2: who it is from.
  const names = [ctx.senderName, ctx.clientName].filter((n): n is string => !!n && !!n.trim()).map(normalise);
  const hay = normalise(body);
  if (!names.length) add("sender_missing", "no sender or client name is known, so the message cannot identify its sender");
  else if (!names.some((n) => hay.includes(n))) add("sender_missing", `the message must name its sender (${names.join(" or ")})`);

  // S3: a way out.
  if (channel === "email") {
    const hasLink = body.includes(UNSUBSCRIBE_PLACEHOLDER) || (!!ctx.unsubscribeUrl && body.includes(ctx.unsubscribeUrl));
    if (!hasLink || !/\b(?:unsubscribe|opt[\s-]?out)\b/i.test(body)) {
      add("unsubscribe_missing", `an email needs unsubscribe wording with the link (${UNSUBSCRIBE_PLACEHOLDER})`);
    }
  } else if (channel === "sms") {
    if (!SMS_OPT_OUT.some((re) => re.test(body))) add("opt_out_missing", "an SMS needs opt-out wording such as \"Reply STOP to opt out\"");
  } else if (channel === "linkedin" && ctx.linkedinAction !== "invitation") {
    if (!MESSAGE_OPT_OUT.some((re) => re.test(body))) add("opt_out_missing", "a LinkedIn message needs a way to opt out (e.g. reply \"stop\")");
  }

  // G3: the source notice, at the latest in the first message.
  if (needsDataSourceNotice(ctx.recipientCountry, ctx.isFirstTouch) && !hasDataSourceNotice(body)) {
    add("data_source_notice_missing",
      `the first message to a recipient in ${ctx.recipientCountry!.toUpperCase()} must say where their details came from and the legitimate-interest basis`);
  }

  return out;
}
