// Merge-field templates for outreach steps: the Cold tier's whole message, the Cool tier's message
// after its Claude-written first line, and the fallback whenever Claude can't write (no key, budget,
// invalid output). Also the fixed frame every step gets whoever wrote it — the signature, the
// unsubscribe / opt-out line and the GDPR source notice — so compliance never depends on a model.
//
// Syntax: {{field}} or {{field|fallback}} (fallback may be empty: {{sender_title|}}). An unknown
// field, a missing value without fallback, or a stray "{{" throws TemplateError: a literal "{{" must
// never reach a recipient. A line holding nothing but a field that renders empty is dropped, so an
// optional signature line leaves no blank line behind.
import type { Channel, LinkedInAction } from "../channels/types.ts";
import { UNSUBSCRIBE_PLACEHOLDER } from "./content-checks.ts";

// ---------------------------------------------------------------------------------------------
// Merge fields and rendering
// ---------------------------------------------------------------------------------------------

export const MERGE_FIELDS = [
  "first_name",
  "last_name",
  "company",
  "title",
  "sender_name",
  "sender_title",
  "client_name",
  /** A noun phrase for what the client sells: "outbound lead generation for accounting firms". */
  "offer",
  /** Where the lead's details came from (GDPR Art 14 notice): "LinkedIn", "Apollo.io". */
  "data_source",
  "privacy_url",
  /** Postal address of the sender (CAN-SPAM; letters). */
  "sender_address",
  "unsubscribe_url",
] as const;
export type MergeField = (typeof MERGE_FIELDS)[number];
export type MergeFields = Partial<Record<MergeField, string | null | undefined>>;

const KNOWN = new Set<string>(MERGE_FIELDS);

export type TemplateErrorCode = "unknown_field" | "missing_field" | "syntax";

export class TemplateError extends Error {
  readonly code: TemplateErrorCode;
  readonly field?: string;
  constructor(code: TemplateErrorCode, message: string, field?: string) {
    super(message);
    this.name = "TemplateError";
    this.code = code;
    this.field = field;
  }
}

export interface RenderOptions {
  /** Fields left as their literal placeholder when no value is given (the sender fills them per send). */
  keep?: readonly MergeField[];
  /** Escape values and fallbacks for HTML (the template text itself is trusted markup). */
  html?: boolean;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_]+)\s*(?:\|([^{}|]*))?\}\}/g;
const WHOLE_LINE_PLACEHOLDER = /^\s*\{\{\s*[A-Za-z0-9_]+\s*(?:\|[^{}|]*)?\}\}\s*$/;

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

/** A value as it may appear in a message: one line, trimmed, and unable to smuggle in a placeholder. */
function cleanValue(v: string | null | undefined): string {
  if (v === null || v === undefined) return "";
  return String(v).replace(/\{\{|\}\}/g, "").replace(/\s*[\r\n]+\s*/g, " ").trim();
}

/** The merge fields a template uses (validating names and syntax, without values). */
export function templateFields(template: string): MergeField[] {
  const found = new Set<MergeField>();
  for (const m of template.matchAll(PLACEHOLDER)) {
    if (!KNOWN.has(m[1])) throw new TemplateError("unknown_field", `unknown merge field {{${m[1]}}}`, m[1]);
    found.add(m[1] as MergeField);
  }
  // Left-over double braces, or a triple brace around a field ("{{{first_name}}}"), are typos.
  if (/\{\{|\}\}/.test(template.replace(PLACEHOLDER, "")) || /\{\{\{|\}\}\}/.test(template)) {
    throw new TemplateError("syntax", "a \"{{\" or \"}}\" that is not a well-formed merge field");
  }
  return [...found];
}

/**
 * Fills {{field}} / {{field|fallback}} from fields. Throws TemplateError on an unknown field, a
 * missing value with no fallback (unless the field is in opts.keep), or broken braces.
 */
export function renderTemplate(template: string, fields: MergeFields, opts: RenderOptions = {}): string {
  templateFields(template); // names and syntax first, so an error never depends on which values are set
  const keep = new Set<string>(opts.keep ?? []);
  const enc = opts.html ? escapeHtml : (s: string) => s;
  const lines: string[] = [];
  for (const line of template.split("\n")) {
    let emptied = false;
    const rendered = line.replace(PLACEHOLDER, (whole, name: string, fallback: string | undefined) => {
      const value = cleanValue(fields[name as MergeField]);
      if (value) return enc(value);
      if (fallback !== undefined) {
        const fb = cleanValue(fallback);
        if (!fb) emptied = true;
        return enc(fb);
      }
      if (keep.has(name)) return whole.replace(/\s+/g, "");
      throw new TemplateError("missing_field", `no value for {{${name}}} and no fallback`, name);
    });
    // An optional line that came out empty leaves no gap.
    if (emptied && WHOLE_LINE_PLACEHOLDER.test(line) && !rendered.trim()) continue;
    lines.push(rendered.replace(/[ \t]+$/, ""));
  }
  return lines.join("\n");
}

/** renderTemplate for HTML (letters): values and fallbacks are escaped; the template is markup. */
export function renderTemplateHtml(template: string, fields: MergeFields, opts: Omit<RenderOptions, "html"> = {}): string {
  return renderTemplate(template, fields, { ...opts, html: true });
}

// ---------------------------------------------------------------------------------------------
// Step kinds, frames and default templates
// ---------------------------------------------------------------------------------------------

export const STEP_KINDS = [
  "email_first",
  "email_followup",
  "voice_opener",
  "linkedin_note",
  "linkedin_message",
  "sms",
  "letter",
] as const;
export type StepKind = (typeof STEP_KINDS)[number];

export const STEP_KIND_CHANNEL: Record<StepKind, Channel> = {
  email_first: "email",
  email_followup: "email",
  voice_opener: "voice",
  linkedin_note: "linkedin",
  linkedin_message: "linkedin",
  sms: "sms",
  letter: "mail",
};

/** The kind of a step from its channel: email by first touch, LinkedIn by action (default message). */
export function stepKindFor(channel: Channel, opts: { isFirstTouch?: boolean; linkedinAction?: LinkedInAction } = {}): StepKind {
  switch (channel) {
    case "email":
      return opts.isFirstTouch === false ? "email_followup" : "email_first";
    case "linkedin":
      return opts.linkedinAction === "invitation" ? "linkedin_note" : "linkedin_message";
    case "voice":
      return "voice_opener";
    case "sms":
      return "sms";
    case "mail":
      return "letter";
  }
}

/** The LinkedIn action a step kind performs (for checkContent's note limits). */
export function linkedinActionFor(kind: StepKind): LinkedInAction | undefined {
  return kind === "linkedin_note" ? "invitation" : kind === "linkedin_message" ? "message" : undefined;
}

/**
 * A step's writable part. greeting and opener are separate so the Cool tier can swap in a
 * Claude-written first line (the opener) and keep the rest.
 */
export interface MessageTemplate {
  /** Email only. */
  subject?: string;
  greeting?: string;
  opener: string;
  main: string;
}

/**
 * What is around the writable part, for every tier: prefix (the voice introduction D5 requires),
 * suffix (signature, unsubscribe / opt-out), the separator between parts, and which source notice
 * fits the channel (short where characters are scarce).
 */
export interface StepFrame {
  prefix?: string;
  suffix: string;
  joiner: "\n\n" | " ";
  notice: "long" | "short";
}

export const STEP_FRAMES: Record<StepKind, StepFrame> = {
  email_first: {
    suffix: "\n\n{{sender_name}}\n{{sender_title|}}\n{{client_name}}\n{{sender_address|}}\n\n" +
      `Not relevant? Unsubscribe here: ${UNSUBSCRIBE_PLACEHOLDER}`,
    joiner: "\n\n",
    notice: "long",
  },
  email_followup: {
    suffix: "\n\n{{sender_name}}\n{{sender_title|}}\n{{client_name}}\n{{sender_address|}}\n\n" +
      `Not relevant? Unsubscribe here: ${UNSUBSCRIBE_PLACEHOLDER}`,
    joiner: "\n\n",
    notice: "long",
  },
  voice_opener: {
    prefix: "Hi {{first_name|there}}, this is {{sender_name}} calling from {{client_name}}.",
    suffix: "",
    joiner: " ",
    notice: "short",
  },
  linkedin_note: { suffix: " - {{sender_name}}", joiner: " ", notice: "short" },
  linkedin_message: {
    suffix: "\n\n{{sender_name}}, {{client_name}}\nIf this isn't relevant, reply \"stop\" and I won't message you again.",
    joiner: "\n\n",
    notice: "long",
  },
  sms: { suffix: " - {{sender_name}}, {{client_name}}. Reply STOP to opt out", joiner: " ", notice: "short" },
  letter: {
    suffix: "\n\nKind regards,\n\n{{sender_name}}\n{{sender_title|}}\n{{client_name}}\n{{sender_address|}}",
    joiner: "\n\n",
    notice: "long",
  },
};

const OFFER = "{{offer|outbound lead generation}}";

/**
 * The defaults used when a campaign step has no template of its own. Each passes checkContent for
 * an ordinary lead once framed (tests/engines/templates.test.ts renders every one). No spam words,
 * no claims about the lead that a merge field can't back.
 */
export const DEFAULT_TEMPLATES: Record<StepKind, MessageTemplate> = {
  email_first: {
    subject: "Quick question, {{first_name|there}}",
    greeting: "Hi {{first_name|there}},",
    opener: "I'm reaching out because {{company|your team}} looks like the kind of business we work with.",
    main: `{{client_name}} works on ${OFFER}. Would a 15-minute call next week be useful to see whether it fits?`,
  },
  email_followup: {
    subject: "Re: Quick question, {{first_name|there}}",
    greeting: "Hi {{first_name|there}},",
    opener: "Following up on my note from last week.",
    main: `If ${OFFER} isn't a priority for {{company|your team}} right now, just say so and I'll close the loop. Otherwise, is a short call next week worth it?`,
  },
  voice_opener: {
    opener: "I'm calling because we work on {{offer|outbound lead generation}} with businesses like {{company|yours}}.",
    main: "Have you got two minutes, or is there a better time to call back?",
  },
  linkedin_note: {
    greeting: "Hi {{first_name|there}},",
    opener: "I work with teams like {{company|yours}} on {{offer|outbound growth}}.",
    main: "Would be good to connect.",
  },
  linkedin_message: {
    greeting: "Hi {{first_name|there}},",
    opener: "Thanks for connecting.",
    main: `At {{client_name}} we work on ${OFFER}. Open to a quick chat about whether it could help {{company|your team}}?`,
  },
  sms: {
    greeting: "Hi {{first_name|there}},",
    opener: "worth a quick chat about new client growth",
    main: "at {{company|your company}}?",
  },
  letter: {
    greeting: "Dear {{first_name|Sir or Madam}},",
    opener: "I'm writing because {{company|your business}} looks like the kind of company we work with.",
    main: `{{client_name}} works on ${OFFER}. If it would help to talk it through, reply to this letter or get in touch at a time that suits you; I would be glad to arrange a short call.`,
  },
};

// ---------------------------------------------------------------------------------------------
// Source notice and composition
// ---------------------------------------------------------------------------------------------

/**
 * The GDPR Art 14 notice for an EU/UK first message (compliance G3): where the details came from,
 * the purpose and the legitimate-interest basis, and the right to object.
 */
export function dataSourceNotice(style: "long" | "short", fields: MergeFields): string {
  const source = cleanValue(fields.data_source) || "public business sources";
  const client = cleanValue(fields.client_name) || "we";
  const privacy = cleanValue(fields.privacy_url);
  if (style === "short") return `(Got your details via ${source}; contacting you on legitimate interest.)`;
  return `Why you're hearing from me: I found your business contact details via ${source}. ${client} contacts ` +
    `professionals on the basis of legitimate interest, to offer services relevant to their role. You can object at ` +
    `any time and we will stop contacting you.${privacy ? ` Privacy notice: ${privacy}` : ""}`;
}

export interface ComposeOptions {
  /** Add the data-source notice (EU/UK first touch). */
  notice?: boolean;
  /** Fields kept as placeholders when unset (default: unsubscribe_url, filled per send). */
  keep?: readonly MergeField[];
}

export interface ComposedMessage {
  subject: string | null;
  body: string;
}

function tidy(text: string): string {
  return text.replace(/[ \t]+\n/g, "\n").replace(/\n{3,}/g, "\n\n").replace(/ {2,}/g, " ").trim();
}

/**
 * The final message: the frame's prefix, the writable core (already rendered text, from a template
 * or from Claude), the source notice when required, and the frame's suffix — all rendered.
 */
export function composeMessage(
  kind: StepKind,
  core: { subject?: string | null; body: string },
  fields: MergeFields,
  opts: ComposeOptions = {},
): ComposedMessage {
  const frame = STEP_FRAMES[kind];
  const keep = opts.keep ?? ["unsubscribe_url"];
  const parts: string[] = [];
  if (frame.prefix) parts.push(renderTemplate(frame.prefix, fields, { keep }));
  parts.push(core.body.trim());
  if (opts.notice) parts.push(dataSourceNotice(frame.notice, fields));
  const body = tidy(parts.filter(Boolean).join(frame.joiner) + renderTemplate(frame.suffix, fields, { keep }));
  const subject = STEP_KIND_CHANNEL[kind] === "email" ? (core.subject ?? "").replace(/\s+/g, " ").trim() : null;
  return { subject, body };
}

/** The writable core of a template, rendered; firstLine (Cool tier) replaces the template's opener. */
export function renderCore(
  kind: StepKind,
  template: MessageTemplate,
  fields: MergeFields,
  opts: { firstLine?: string; keep?: readonly MergeField[] } = {},
): { subject: string | null; body: string } {
  const keep = opts.keep ?? ["unsubscribe_url"];
  const frame = STEP_FRAMES[kind];
  const opener = opts.firstLine?.trim() || renderTemplate(template.opener, fields, { keep });
  const pieces = [
    template.greeting ? renderTemplate(template.greeting, fields, { keep }) : "",
    opener,
    renderTemplate(template.main, fields, { keep }),
  ].filter((p) => p.trim());
  const subject = STEP_KIND_CHANNEL[kind] === "email" && template.subject ? renderTemplate(template.subject, fields, { keep }) : null;
  return { subject, body: pieces.join(frame.joiner) };
}

/** A template step, start to finish: core (optionally with a first line) inside the frame. */
export function renderStep(
  kind: StepKind,
  fields: MergeFields,
  opts: ComposeOptions & { template?: MessageTemplate; firstLine?: string } = {},
): ComposedMessage {
  const core = renderCore(kind, opts.template ?? DEFAULT_TEMPLATES[kind], fields, { firstLine: opts.firstLine, keep: opts.keep });
  return composeMessage(kind, core, fields, opts);
}
