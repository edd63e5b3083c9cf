// The content engine: writes one outreach step for one lead, by the lead's tier (product.md §3).
//   Hot  — the large model researches the company with tools (web_search through Serper,
//          fetch_company_site), then a forced write_message call writes the step; voice steps also
//          get a knowledge base for the voice agent.
//   Warm — the small model writes every step (forced write_message, no research).
//   Cool — the small model writes only the first line (forced write_first_line); the rest is the template.
//   Cold — the template, merge fields filled.
//   Dead — nothing: ContentRefusedError.
// Whoever writes the core, the frame around it (signature, unsubscribe / opt-out, the EU/UK source
// notice) comes from templates.ts, and checkContent runs on the result. Invalid tool output or
// violations get one retry with the problems fed back, then the template (source says so). No key →
// the template for every tier; a client budget that can't cover the next call → the template.
//
// Pure engine: no tables. Everything the caller persists per lead and step — text, source, model,
// tokens, cost, violations — is in the return value. A transient provider failure (429/529/5xx
// after the SDK's retries) throws ContentWriteError (a retryable ProviderError carrying the tokens
// already spent) so the caller reschedules; other provider failures fall back to the template.
//
// Prompt caching: cache_control on the shared system block and on the client-context block, so
// per client only the lead's own block is uncached input.
import type Anthropic from "@anthropic-ai/sdk";
import { z } from "zod";
import type { Channel, LinkedInAction } from "../channels/types.ts";
import {
  addUsage,
  priceFor,
  roundCents,
  ZERO_USAGE,
  type AnthropicClient,
  type ClaudeMessage,
  type MessageParams,
  type TokenUsage,
} from "../integrations/anthropic.ts";
import { ProviderError } from "../integrations/provider-http.ts";
import type { SerperClient } from "../integrations/serper.ts";
import {
  checkContent,
  CONTENT_BOUNDS,
  needsDataSourceNotice,
  smsSegments,
  SPAM_TRIGGER_WORDS,
  type ContentCheckContext,
  type Violation,
} from "./content-checks.ts";
import type { Tier } from "./scorer.ts";
import {
  composeMessage,
  DEFAULT_TEMPLATES,
  linkedinActionFor,
  renderCore,
  renderStep,
  renderTemplate,
  STEP_KIND_CHANNEL,
  stepKindFor,
  TemplateError,
  type ComposedMessage,
  type MergeFields,
  type MessageTemplate,
  type StepKind,
} from "./templates.ts";

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/** Channels each tier may use (product.md §3). */
export const TIER_CHANNELS: Record<Tier, readonly Channel[]> = {
  hot: ["email", "linkedin", "sms", "voice", "mail"],
  warm: ["email", "linkedin", "sms", "voice"],
  cool: ["email", "linkedin"],
  cold: ["email"],
  dead: [],
};

export type ContentSource =
  | "claude" // Claude wrote it (Cool: the first line, the rest is the template)
  | "template" // by design: Cold tier, or a step whose content mode is "template"
  | "template_no_key" // Claude is not configured
  | "template_budget" // the client's monthly budget can't cover the call
  | "template_fallback" // Claude's output was invalid or broke a rule twice, was refused, or had no room
  | "template_error"; // a provider error that waiting won't fix (spend cap, bad request, auth)

export interface LeadFacts {
  id?: string | null;
  firstName?: string | null;
  lastName?: string | null;
  title?: string | null;
  company?: string | null;
  /** The company's web domain: research reads only this site. */
  companyDomain?: string | null;
  industry?: string | null;
  employees?: number | null;
  city?: string | null;
  /** ISO 3166-1 alpha-2. */
  country?: string | null;
  linkedinUrl?: string | null;
  /** Buying signals already known (hiring, funding, job change, keywords found). */
  signals?: string[];
  notes?: string | null;
}

export interface ClientContext {
  id?: string | null;
  /** The client (organisation) the message is sent for. */
  name: string;
  senderName: string;
  senderTitle?: string | null;
  /** A noun phrase: "outbound lead generation for accounting firms". */
  offer: string;
  valueProposition?: string | null;
  icpSummary?: string | null;
  callToAction?: string | null;
  tone?: string | null;
  proofPoints?: string[];
  /** Where lead details come from, for the EU/UK notice (e.g. "LinkedIn and Apollo.io"). */
  dataSource?: string | null;
  privacyUrl?: string | null;
  senderAddress?: string | null;
}

export interface PreviousMessage {
  channel: Channel;
  subject?: string | null;
  body: string;
}

export interface WriteStepInput {
  tier: Tier;
  channel: Channel;
  /** Default from the channel: email by isFirstTouch, LinkedIn by linkedinAction. */
  kind?: StepKind;
  stepNumber?: number;
  /** The first message this person gets from this client (EU/UK notice; first vs follow-up email). */
  isFirstTouch: boolean;
  linkedinAction?: LinkedInAction;
  linkedinFreeAccount?: boolean;
  /** Default: lead.country. */
  recipientCountry?: string | null;
  lead: LeadFacts;
  client: ClientContext;
  /** When already known; otherwise the body keeps {{unsubscribe_url}} for the sender to fill. */
  unsubscribeUrl?: string | null;
  /** The step variant's template (default DEFAULT_TEMPLATES[kind]). */
  template?: MessageTemplate;
  /** "template": the template for every tier (campaign_steps.content_mode). */
  contentMode?: "tiered" | "template";
  previousMessages?: PreviousMessage[];
}

export interface SearchHit {
  title: string;
  link: string;
  snippet?: string | null;
  date?: string | null;
  source?: string | null;
}
export type SearchFn = (query: string, opts: { kind: "web" | "news" }) => Promise<SearchHit[]>;
/** Fetches a page of the lead's company site and returns its readable text. */
export type FetchSiteFn = (url: string) => Promise<string>;

export interface Budget {
  /** LLM spend this month for the client, cents. */
  spentCents: number;
  limitCents: number;
}

export interface WriteStepDeps {
  /** null/undefined: Claude is not configured → templates (source template_no_key). */
  anthropic?: AnthropicClient | null;
  search?: SearchFn;
  fetchSite?: FetchSiteFn;
  budget?: Budget | null;
  /** Hot research rounds before the forced write (default 3). */
  maxResearchRounds?: number;
  /** "template": on a transient provider failure, use the template instead of throwing. */
  onTransientError?: "throw" | "template";
  signal?: AbortSignal;
}

export interface WrittenStep {
  subject: string | null;
  body: string;
  source: ContentSource;
  /** The model called, when one was (also on a fallback after spending tokens). */
  model: string | null;
  tier: Tier;
  channel: Channel;
  kind: StepKind;
  /** All calls for this step added up, retries and research included. */
  usage: TokenUsage;
  costCents: number;
  calls: number;
  /** checkContent on the returned message; non-empty means it must not be queued. */
  violations: Violation[];
  /** Hot voice steps: the voice agent's knowledge base. */
  voiceKnowledgeBase?: string;
  /** Why a fallback happened, and what the retry fixed. */
  notes: string[];
  /** The provider error behind template_error. */
  error?: string;
  research?: { rounds: number; queries: string[]; pages: string[] };
}

export type RefusalReason = "dead_tier" | "channel_not_allowed";

/** The step must not be written at all (Dead tier, or a channel the tier doesn't allow). */
export class ContentRefusedError extends Error {
  readonly reason: RefusalReason;
  constructor(reason: RefusalReason, message: string) {
    super(message);
    this.name = "ContentRefusedError";
    this.reason = reason;
  }
}

/** A transient provider failure, with what the step had already spent before it. */
export class ContentWriteError extends ProviderError {
  readonly usage: TokenUsage;
  readonly costCents: number;
  readonly model: string | null;
  constructor(e: ProviderError, spent: { usage: TokenUsage; costCents: number; model: string | null }) {
    super({
      provider: e.provider, operation: e.operation, code: e.code, status: e.status, retryable: e.retryable,
      retryAfterMs: e.retryAfterMs, cause: e, message: e.message.replace(`${e.provider} ${e.operation}: `, ""),
    });
    this.name = "ContentWriteError";
    this.usage = spent.usage;
    this.costCents = spent.costCents;
    this.model = spent.model;
  }
}

// ---------------------------------------------------------------------------------------------
// Tools and output schemas
// ---------------------------------------------------------------------------------------------

export const WRITE_MESSAGE_TOOL = {
  name: "write_message",
  description:
    "Submit the finished message for this step. Call it exactly once, with the subject (email only) and the body " +
    "exactly as the recipient should read it, without signature, unsubscribe or opt-out lines (they are added for you).",
  input_schema: {
    type: "object" as const,
    properties: {
      subject: { type: "string", description: "Email subject, at most the step's subject_max_chars; empty string for other channels." },
      body: { type: "string", description: "The message text, within the step's max_chars." },
      voice_knowledge_base: {
        type: "string",
        description: "Voice steps of Hot leads only: a briefing for the voice agent (facts found, likely objections and answers). Empty otherwise.",
      },
    },
    required: ["subject", "body"],
  },
} satisfies Anthropic.Messages.Tool;

export const WRITE_FIRST_LINE_TOOL = {
  name: "write_first_line",
  description: "Submit the personalised first line that opens the message; the rest of the message is the template shown in the step.",
  input_schema: {
    type: "object" as const,
    properties: { first_line: { type: "string", description: "One sentence, within the step's max_chars, that flows into template_rest." } },
    required: ["first_line"],
  },
} satisfies Anthropic.Messages.Tool;

export const WEB_SEARCH_TOOL = {
  name: "web_search",
  description: "Search the web (Google via Serper) for the lead's company, its recent news, hiring or announcements. Returns titles, links and snippets.",
  input_schema: {
    type: "object" as const,
    properties: {
      query: { type: "string", description: "The search query, e.g. the company name and what you want to know." },
      kind: { type: "string", enum: ["web", "news"], description: "news for recent coverage; web otherwise (default)." },
    },
    required: ["query"],
  },
} satisfies Anthropic.Messages.Tool;

export const FETCH_COMPANY_SITE_TOOL = {
  name: "fetch_company_site",
  description: "Read a page of the lead's company website (only that site). Returns the page text.",
  input_schema: {
    type: "object" as const,
    properties: { path: { type: "string", description: "Path on the company's site, e.g. \"/\", \"/about\", \"/news\"." } },
    required: ["path"],
  },
} satisfies Anthropic.Messages.Tool;

const WriteMessageOutput = z.object({
  subject: z.string().nullish(),
  body: z.string().trim().min(1, "body is empty").max(6_000),
  voice_knowledge_base: z.string().max(20_000).nullish(),
});
const FirstLineOutput = z.object({ first_line: z.string().trim().min(1, "first_line is empty").max(600) });
const WebSearchInput = z.object({ query: z.string().trim().min(1).max(300), kind: z.enum(["web", "news"]).optional() });
const FetchSiteInput = z.object({ path: z.string().trim().max(300).optional() });

// ---------------------------------------------------------------------------------------------
// Prompts
// ---------------------------------------------------------------------------------------------

/**
 * The shared instructions: identical for every client and lead, so it is cached (with the tools
 * before it) across the whole agency.
 */
export const SYSTEM_PROMPT = `You write B2B outreach for Agency OS, an outbound agency that runs campaigns for its clients.
Each request gives you the client (in <client>), one lead (in <lead>), the step to write (in <step>) and sometimes the earlier messages of the sequence.

How to write
- Write as the sender named in <client>, to one person, in plain conversational language. Short sentences. No marketing jargon, no hype, no exclamation marks.
- Open with something specific to this person or company when the data gives you something true to say (their role, their company's industry or location, a signal such as hiring, funding, a launch, or what research found). Never invent facts: if a detail is not in <lead>, <research> or the tool results, do not state it.
- Connect that to the client's offer in one or two sentences, then make one low-effort ask (the client's call_to_action if given, otherwise a short call).
- Follow-ups refer back briefly to the earlier message and add one new reason to reply; never guilt-trip ("just bumping this", "did you see my email").
- Respect the step's limits: max_chars is a hard limit for the text you write; subject_max_chars for the subject. target_words is the length to aim for.
- gsm_only: true means an SMS where you must use only plain ASCII letters, digits and basic punctuation (no emoji, no curly quotes, no dashes other than "-").
- Do NOT add a signature, the sender's contact details, an unsubscribe line, opt-out wording ("Reply STOP"), a privacy notice or merge fields like {{first_name}}: the system adds the signature and every compliance line itself, and a duplicate looks broken.
- Avoid words that spam filters flag, including: ${SPAM_TRIGGER_WORDS.join(", ")}.
- Never use deceptive subjects ("Re:" on a first email, fake urgency) and never pretend a prior relationship that does not exist.
- Use the spelling of the lead's country (Australian/British English unless the lead is in the United States).

Channels
- email: a subject (specific, lowercase-friendly, under the limit, no clickbait) and a body starting with a greeting such as "Hi Ada,". Two to four short paragraphs.
- linkedin_note: an invitation note, one or two sentences, greeting included; no pitch beyond a reason to connect.
- linkedin_message: a message after the invitation was accepted; greeting, a reason, one question.
- sms: one short sentence or two, greeting included, must fit max_chars.
- voice_opener: what the caller says right after "Hi <name>, this is <sender> calling from <client>." (that introduction is added for you): the reason for the call in one or two sentences, then ask whether now is a good time. Spoken language, no lists, no URLs.
- letter: a printed letter body starting with "Dear <first name>,", three or four paragraphs, no signature.

Research (only when tools are offered)
- Use web_search and fetch_company_site to find one or two concrete, recent, verifiable facts about the company (news, hiring, launches, expansion) that make the message relevant. Two or three tool calls are usually enough; stop when you have something useful or after the rounds allowed.
- When you are done researching, reply with a few lines of notes on what you found (facts with their source). You will then be asked to write.

Output
- Always answer by calling the tool named in the request. Put only the message text in it: no commentary, no placeholders, no quotation marks around the message.
- For a voice step of a Hot lead also fill voice_knowledge_base: a briefing for the voice agent with the facts found (with sources), why the offer fits, three likely objections with short honest answers, and what to do if the person is busy or not interested.`;

function clientBlock(client: ClientContext): string {
  const ctx = {
    client_name: client.name,
    sender_name: client.senderName,
    sender_title: client.senderTitle ?? null,
    offer: client.offer,
    value_proposition: client.valueProposition ?? null,
    ideal_customer: client.icpSummary ?? null,
    call_to_action: client.callToAction ?? null,
    tone: client.tone ?? null,
    proof_points: client.proofPoints ?? [],
  };
  return `<client>\n${JSON.stringify(ctx, null, 2)}\n</client>`;
}

function leadJson(lead: LeadFacts): Record<string, unknown> {
  // Only what writing needs: no email address or phone number goes to the model.
  return {
    first_name: lead.firstName ?? null,
    last_name: lead.lastName ?? null,
    title: lead.title ?? null,
    company: lead.company ?? null,
    company_domain: lead.companyDomain ?? null,
    industry: lead.industry ?? null,
    employees: lead.employees ?? null,
    city: lead.city ?? null,
    country: lead.country ?? null,
    linkedin_url: lead.linkedinUrl ?? null,
    signals: lead.signals ?? [],
    notes: lead.notes ?? null,
  };
}

const TARGET_WORDS: Record<StepKind, string> = {
  email_first: "60-120",
  email_followup: "40-80",
  voice_opener: "20-45",
  linkedin_note: "15-40",
  linkedin_message: "40-90",
  sms: "12-25",
  letter: "150-250",
};

interface StepSpec {
  channel: Channel;
  kind: StepKind;
  tier: Tier;
  step_number: number | null;
  is_first_touch: boolean;
  write: "message" | "first_line";
  max_chars: number;
  subject_max_chars?: number;
  target_words?: string;
  gsm_only?: boolean;
  template_rest?: string;
  voice_knowledge_base?: boolean;
}

function leadPrompt(input: WriteStepInput, step: StepSpec, extra: string): string {
  const parts = [
    `<lead>\n${JSON.stringify(leadJson(input.lead), null, 2)}\n</lead>`,
    `<step>\n${JSON.stringify(step, null, 2)}\n</step>`,
  ];
  if (input.previousMessages?.length) {
    const prev = input.previousMessages.slice(-4).map((m) => ({ channel: m.channel, subject: m.subject ?? null, body: m.body.slice(0, 1_500) }));
    parts.push(`<previous_messages>\n${JSON.stringify(prev, null, 2)}\n</previous_messages>`);
  }
  parts.push(extra);
  return parts.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Budget
// ---------------------------------------------------------------------------------------------

/** Characters per token assumed for estimates: the 5.x tokenizer yields ~30 % more tokens than 4.x (~4 chars). */
const CHARS_PER_TOKEN = 3;

/**
 * A pessimistic cost of calls before making them: every input token at the dearer of the input and
 * cache-write prices (as if nothing were cached yet) and every call using all of max_tokens.
 */
export function estimateCostCents(
  model: string,
  est: { inputTokens?: number; inputChars?: number; outputTokens: number; calls?: number },
): number {
  const p = priceFor(model);
  const input = est.inputTokens ?? Math.ceil((est.inputChars ?? 0) / CHARS_PER_TOKEN);
  const calls = est.calls ?? 1;
  const usd = (calls * (input * Math.max(p.input, p.cacheWrite5m) + est.outputTokens * p.output)) / 1_000_000;
  return roundCents(usd * 100);
}

/** estimateCostCents for one request as it would be sent (system, messages and tools as input; all of max_tokens out). */
export function estimateCallCents(params: MessageParams): number {
  const chars = JSON.stringify(params.system ?? "").length + JSON.stringify(params.messages).length + JSON.stringify(params.tools ?? []).length;
  return estimateCostCents(params.model, { inputChars: chars, outputTokens: params.max_tokens });
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function mergeFieldsFor(input: WriteStepInput): MergeFields {
  return {
    first_name: input.lead.firstName,
    last_name: input.lead.lastName,
    company: input.lead.company,
    title: input.lead.title,
    sender_name: input.client.senderName,
    sender_title: input.client.senderTitle,
    client_name: input.client.name,
    offer: input.client.offer,
    data_source: input.client.dataSource,
    privacy_url: input.client.privacyUrl,
    sender_address: input.client.senderAddress,
    unsubscribe_url: input.unsubscribeUrl,
  };
}

/** Typography a model likes and GSM-7 lacks, mapped to what GSM-7 has (keeps an SMS at 160). */
function gsmFriendly(text: string): string {
  return text
    .replace(/[‘’‚′]/g, "'")
    .replace(/[“”„″]/g, '"')
    .replace(/[–—‒−]/g, "-")
    .replace(/…/g, "...")
    .replace(/\u00a0/g, " ");
}

function cleanModelText(text: string, kind: StepKind): string {
  const t = text.replace(/\r\n?/g, "\n").replace(/[ \t]+\n/g, "\n").replace(/\n{3,}/g, "\n\n").trim();
  return kind === "sms" ? gsmFriendly(t) : t;
}

function zodProblems(err: z.ZodError): string[] {
  return err.issues.map((i) => `${i.path.join(".") || "input"}: ${i.message}`);
}

type ParamBlock = Anthropic.Messages.ContentBlockParam;

/** The assistant's reply as request blocks, to send back in the conversation. */
function assistantBlocks(message: ClaudeMessage): ParamBlock[] {
  const out: ParamBlock[] = [];
  for (const b of message.content) {
    if (b.type === "text" && b.text.trim()) out.push({ type: "text", text: b.text });
    else if (b.type === "tool_use") out.push({ type: "tool_use", id: b.id, name: b.name, input: b.input });
  }
  return out;
}

function toolUses(message: ClaudeMessage): Array<{ id: string; name: string; input: unknown }> {
  return message.content.flatMap((b) => (b.type === "tool_use" ? [{ id: b.id, name: b.name, input: b.input }] : []));
}

function asBlocks(content: Anthropic.Messages.MessageParam["content"]): ParamBlock[] {
  return typeof content === "string" ? [{ type: "text", text: content }] : [...content];
}

const TOOL_RESULT_MAX_CHARS = 3_000;

// ---------------------------------------------------------------------------------------------
// writeStep
// ---------------------------------------------------------------------------------------------

interface Spend {
  usage: TokenUsage;
  costCents: number;
  calls: number;
  model: string | null;
}

class BudgetStop extends Error {}
class Refused extends Error {}

export async function writeStep(input: WriteStepInput, deps: WriteStepDeps = {}): Promise<WrittenStep> {
  const { tier, channel } = input;
  if (tier === "dead") throw new ContentRefusedError("dead_tier", "a Dead lead gets no content");
  if (!TIER_CHANNELS[tier].includes(channel)) {
    throw new ContentRefusedError("channel_not_allowed", `a ${tier} lead is not contacted by ${channel} (allowed: ${TIER_CHANNELS[tier].join(", ")})`);
  }
  const kind = input.kind ?? stepKindFor(channel, { isFirstTouch: input.isFirstTouch, linkedinAction: input.linkedinAction });
  if (STEP_KIND_CHANNEL[kind] !== channel) throw new TypeError(`step kind ${kind} is not a ${channel} step`);

  const fields = mergeFieldsFor(input);
  const country = input.recipientCountry ?? input.lead.country ?? null;
  const notice = needsDataSourceNotice(country, input.isFirstTouch);
  const template = input.template ?? DEFAULT_TEMPLATES[kind];
  const checkCtx: ContentCheckContext = {
    senderName: input.client.senderName,
    clientName: input.client.name,
    recipientCountry: country,
    isFirstTouch: input.isFirstTouch,
    linkedinFreeAccount: input.linkedinFreeAccount,
    linkedinAction: linkedinActionFor(kind) ?? input.linkedinAction,
    unsubscribeUrl: input.unsubscribeUrl,
  };
  const check = (m: ComposedMessage) => checkContent(channel, m, checkCtx);

  const spend: Spend = { usage: ZERO_USAGE, costCents: 0, calls: 0, model: null };
  const notes: string[] = [];

  const result = (m: ComposedMessage, source: ContentSource, extra: Partial<WrittenStep> = {}): WrittenStep => ({
    subject: m.subject,
    body: m.body,
    source,
    model: spend.model,
    tier,
    channel,
    kind,
    usage: spend.usage,
    costCents: roundCents(spend.costCents),
    calls: spend.calls,
    violations: check(m),
    notes,
    ...extra,
  });
  const fromTemplate = (source: ContentSource, extra: Partial<WrittenStep> = {}) =>
    result(renderStep(kind, fields, { template, notice }), source, extra);

  if (tier === "cold" || input.contentMode === "template") return fromTemplate("template");
  const claude = deps.anthropic;
  if (!claude) return fromTemplate("template_no_key");

  const budget = deps.budget ?? null;
  const fits = (params: MessageParams) =>
    !budget || budget.spentCents + spend.costCents + estimateCallCents(params) <= budget.limitCents;
  if (budget && budget.spentCents >= budget.limitCents) {
    notes.push(`budget exhausted: ${budget.spentCents} of ${budget.limitCents} cents spent this month`);
    return fromTemplate("template_budget");
  }

  // One call, its spend counted whatever happens next.
  async function call(params: MessageParams, operation: string): Promise<ClaudeMessage> {
    if (!fits(params)) {
      throw new BudgetStop(`the next call (about ${estimateCallCents(params)} cents) would pass the budget of ${budget!.limitCents} cents`);
    }
    spend.model = params.model;
    const res = await claude!.createMessage(params, {
      operation, leadId: input.lead.id ?? null, clientId: input.client.id ?? null, signal: deps.signal,
    });
    spend.usage = addUsage(spend.usage, res.usage);
    spend.costCents += res.costCents;
    spend.calls++;
    if (res.message.stop_reason === "refusal") throw new Refused("the model declined to write this message (stop_reason refusal)");
    return res.message;
  }

  const system: Anthropic.Messages.TextBlockParam[] = [
    { type: "text", text: SYSTEM_PROMPT, cache_control: { type: "ephemeral" } },
    { type: "text", text: clientBlock(input.client), cache_control: { type: "ephemeral" } },
  ];

  // Room for the written part: the channel's bound minus the frame around it.
  const frameOnly = composeMessage(kind, { subject: "", body: "" }, fields, { notice });
  const room = roomFor(kind, frameOnly.body, input.linkedinFreeAccount);

  try {
    if (tier === "cool") {
      return await writeCool();
    }
    return await writeFull(tier === "hot");
  } catch (err) {
    if (err instanceof BudgetStop) {
      notes.push(err.message);
      return fromTemplate("template_budget");
    }
    if (err instanceof Refused) {
      notes.push(err.message);
      return fromTemplate("template_fallback");
    }
    if (err instanceof ProviderError) {
      if (err.code === "aborted") throw err; // the caller gave up; a template is not what it asked for
      if (err.retryable && deps.onTransientError !== "template") {
        throw new ContentWriteError(err, { usage: spend.usage, costCents: roundCents(spend.costCents), model: spend.model });
      }
      notes.push(`provider error: ${err.message}`);
      return fromTemplate("template_error", { error: err.message });
    }
    throw err;
  }

  // ---- Warm and Hot: Claude writes the whole core --------------------------------------------
  async function writeFull(hot: boolean): Promise<WrittenStep> {
    const model = hot ? claude!.models.large : claude!.models.small;
    const wantsKb = hot && kind === "voice_opener";
    if (room < 20) {
      notes.push(`no room for a written message: the frame leaves ${room} characters`);
      return fromTemplate("template_fallback");
    }
    const step: StepSpec = {
      channel, kind, tier, step_number: input.stepNumber ?? null, is_first_touch: input.isFirstTouch, write: "message",
      max_chars: room, target_words: TARGET_WORDS[kind],
      ...(channel === "email" ? { subject_max_chars: Math.min(60, CONTENT_BOUNDS.emailSubjectMax) } : {}),
      ...(kind === "sms" ? { gsm_only: true } : {}),
      ...(wantsKb ? { voice_knowledge_base: true } : {}),
    };

    const research = { rounds: 0, queries: [] as string[], pages: [] as string[], notes: [] as string[] };
    const researchTools: Anthropic.Messages.Tool[] = [];
    if (hot && deps.search) researchTools.push(WEB_SEARCH_TOOL);
    if (hot && deps.fetchSite && input.lead.companyDomain) researchTools.push(FETCH_COMPANY_SITE_TOOL);
    // The same tool list on every call of the step keeps the cached prefix (tools come first) stable.
    const tools: Anthropic.Messages.Tool[] = [...researchTools, WRITE_MESSAGE_TOOL];
    const maxTokens = wantsKb ? 3_000 : 1_200;

    let messages: Anthropic.Messages.MessageParam[];
    let early: ClaudeMessage | null = null;
    if (researchTools.length) {
      const rounds = Math.max(0, deps.maxResearchRounds ?? 3);
      messages = [{
        role: "user",
        content: leadPrompt(input, step,
          `First research the company with the tools (at most ${rounds} rounds of tool calls), then reply with your notes. You will be asked to write afterwards.`),
      }];
      for (let round = 1; round <= rounds; round++) {
        const params: MessageParams = { model, max_tokens: 1_024, system, tools, tool_choice: { type: "auto" }, messages };
        if (!fits(params)) {
          notes.push(`research stopped after ${round - 1} rounds: the budget would not cover another`);
          break;
        }
        const reply = await call(params, "content.research");
        research.rounds = round;
        const uses = toolUses(reply);
        if (uses.some((u) => u.name === WRITE_MESSAGE_TOOL.name)) {
          early = reply; // it wrote straight away; that is the first attempt
          break;
        }
        messages = [...messages, { role: "assistant", content: assistantBlocks(reply) }];
        const researchUses = uses.filter((u) => u.name === WEB_SEARCH_TOOL.name || u.name === FETCH_COMPANY_SITE_TOOL.name);
        for (const b of reply.content) if (b.type === "text" && b.text.trim()) research.notes.push(b.text.trim());
        if (!researchUses.length) break;
        const results = await Promise.all(researchUses.map((u) => runResearchTool(u, research)));
        messages = [...messages, { role: "user", content: results }];
      }
      if (!early) {
        const last = messages[messages.length - 1];
        const instruction: ParamBlock = { type: "text", text: "Research is done. Now write the message for the step by calling write_message." };
        messages = last.role === "user"
          ? [...messages.slice(0, -1), { role: "user", content: [...asBlocks(last.content), instruction] }]
          : [...messages, { role: "user", content: [instruction] }];
      }
    } else {
      messages = [{ role: "user", content: leadPrompt(input, step, "Write the message for this step by calling write_message.") }];
    }

    const outcome = await forcedWrite({
      model, tools, toolName: WRITE_MESSAGE_TOOL.name, maxTokens, messages, early,
      parse: (raw) => {
        const parsed = WriteMessageOutput.safeParse(raw);
        if (!parsed.success) return { problems: zodProblems(parsed.error) };
        const problems: string[] = [];
        const subject = (parsed.data.subject ?? "").replace(/\s+/g, " ").trim();
        if (channel === "email" && !subject) problems.push("subject: an email needs a subject");
        let core: string;
        try {
          // The model may echo a merge field; fill it, or reject an unknown one.
          core = renderTemplate(cleanModelText(parsed.data.body, kind), fields, { keep: ["unsubscribe_url"] });
        } catch (e) {
          return { problems: [...problems, `body: ${e instanceof TemplateError ? e.message : String(e)}`] };
        }
        if (core.length > room) problems.push(`body: ${core.length} characters; at most ${room}`);
        const message = composeMessage(kind, { subject, body: core }, fields, { notice });
        return { problems, message, kb: parsed.data.voice_knowledge_base ?? null };
      },
    });
    if (!outcome.ok) return fromTemplate("template_fallback");
    const extra: Partial<WrittenStep> = hot && researchTools.length
      ? { research: { rounds: research.rounds, queries: research.queries, pages: research.pages } }
      : {};
    if (wantsKb) extra.voiceKnowledgeBase = voiceKnowledgeBase(input, outcome.kb, research.notes);
    return result(outcome.message, "claude", extra);
  }

  // ---- Cool: Claude writes the first line, the template the rest ------------------------------
  async function writeCool(): Promise<WrittenStep> {
    const model = claude!.models.small;
    // The template around a one-character stand-in for the first line (NUL: never in a template).
    const core = renderCore(kind, template, fields, { firstLine: "\u0000" });
    const rest = core.body.replace("\u0000", "<first line>");
    // The first line may use what the whole message leaves, but never more than a sentence's worth.
    const withoutLine = composeMessage(kind, core, fields, { notice }).body.length - 1;
    const lineRoom = Math.min(220, boundFor(kind, input.linkedinFreeAccount) - withoutLine);
    if (lineRoom < 20) {
      notes.push(`no room for a first line: the template leaves ${lineRoom} characters`);
      return fromTemplate("template_fallback");
    }
    const step: StepSpec = {
      channel, kind, tier, step_number: input.stepNumber ?? null, is_first_touch: input.isFirstTouch, write: "first_line",
      max_chars: lineRoom, template_rest: rest,
    };
    const messages: Anthropic.Messages.MessageParam[] = [{
      role: "user",
      content: leadPrompt(input, step,
        "Write only the personalised first line that replaces <first line> in template_rest, by calling write_first_line. It must read naturally before the rest."),
    }];
    const outcome = await forcedWrite({
      model, tools: [WRITE_FIRST_LINE_TOOL], toolName: WRITE_FIRST_LINE_TOOL.name, maxTokens: 300, messages, early: null,
      parse: (raw) => {
        const parsed = FirstLineOutput.safeParse(raw);
        if (!parsed.success) return { problems: zodProblems(parsed.error) };
        let line: string;
        try {
          line = renderTemplate(cleanModelText(parsed.data.first_line, kind).replace(/\s*\n+\s*/g, " "), fields, { keep: ["unsubscribe_url"] });
        } catch (e) {
          return { problems: [`first_line: ${e instanceof TemplateError ? e.message : String(e)}`] };
        }
        const problems = line.length > lineRoom ? [`first_line: ${line.length} characters; at most ${lineRoom}`] : [];
        return { problems, message: renderStep(kind, fields, { template, notice, firstLine: line }), kb: null };
      },
    });
    if (!outcome.ok) return fromTemplate("template_fallback");
    return result(outcome.message, "claude");
  }

  // ---- The forced write, validated, with one retry that feeds the problems back ----------------
  async function forcedWrite(opts: {
    model: string;
    tools: Anthropic.Messages.Tool[];
    toolName: string;
    maxTokens: number;
    messages: Anthropic.Messages.MessageParam[];
    early: ClaudeMessage | null;
    parse: (raw: unknown) => { problems: string[]; message?: ComposedMessage; kb?: string | null };
  }): Promise<{ ok: true; message: ComposedMessage; kb: string | null } | { ok: false }> {
    let messages = opts.messages;
    let reply = opts.early;
    let lastProblems: string[] = [];
    for (let attempt = 1; attempt <= 2; attempt++) {
      if (!reply) {
        reply = await call({
          model: opts.model, max_tokens: opts.maxTokens, system, tools: opts.tools,
          tool_choice: { type: "tool", name: opts.toolName }, messages,
        }, attempt === 1 ? "content.write" : "content.rewrite");
      }
      const use = toolUses(reply).find((u) => u.name === opts.toolName);
      let problems: string[];
      let parsed: ReturnType<typeof opts.parse> | null = null;
      if (!use) {
        problems = [`no ${opts.toolName} tool call in the reply (stop_reason ${reply.stop_reason})`];
      } else {
        parsed = opts.parse(use.input);
        problems = [...parsed.problems];
        if (parsed.message) problems.push(...check(parsed.message).map((v) => `${v.code}: ${v.message}`));
      }
      if (!problems.length && parsed?.message) {
        if (attempt > 1) notes.push(`fixed on retry: ${lastProblems.join("; ")}`);
        return { ok: true, message: parsed.message, kb: parsed.kb ?? null };
      }
      lastProblems = problems;
      if (attempt === 2) break;
      // Feed the problems back as the tool's error result and ask again.
      const feedback = `The message was not accepted:\n- ${problems.join("\n- ")}\nCall ${opts.toolName} again with a corrected version.`;
      const prior = assistantBlocks(reply);
      if (prior.length) {
        const userBlocks: ParamBlock[] = use
          ? [{ type: "tool_result", tool_use_id: use.id, is_error: true, content: feedback }]
          : [{ type: "text", text: feedback }];
        // Every tool_use needs its tool_result, research calls made alongside included.
        for (const other of toolUses(reply)) {
          if (other.id !== use?.id) userBlocks.push({ type: "tool_result", tool_use_id: other.id, is_error: true, content: `Not run: call ${opts.toolName} now.` });
        }
        messages = [...messages, { role: "assistant", content: prior }, { role: "user", content: userBlocks }];
      } else {
        const last = messages[messages.length - 1];
        messages = [...messages.slice(0, -1), { role: "user", content: [...asBlocks(last.content), { type: "text", text: feedback }] }];
      }
      reply = null;
    }
    notes.push(`Claude's output was rejected twice: ${lastProblems.join("; ")}`);
    return { ok: false };
  }
  // ---- Research tools ---------------------------------------------------------------------------
  async function runResearchTool(
    use: { id: string; name: string; input: unknown },
    research: { queries: string[]; pages: string[]; notes: string[] },
  ): Promise<Anthropic.Messages.ToolResultBlockParam> {
    const done = (content: string, isError = false): Anthropic.Messages.ToolResultBlockParam => ({
      type: "tool_result", tool_use_id: use.id, content: content.slice(0, TOOL_RESULT_MAX_CHARS), ...(isError ? { is_error: true } : {}),
    });
    try {
      if (use.name === WEB_SEARCH_TOOL.name) {
        const q = WebSearchInput.safeParse(use.input);
        if (!q.success) return done(`invalid input: ${zodProblems(q.error).join("; ")}`, true);
        research.queries.push(q.data.query);
        const hits = await deps.search!(q.data.query, { kind: q.data.kind ?? "web" });
        const text = hits.slice(0, 8).map((h, i) =>
          `${i + 1}. ${h.title}${h.date ? ` (${h.date})` : ""}${h.source ? ` — ${h.source}` : ""}\n   ${h.link}\n   ${h.snippet ?? ""}`.trimEnd()
        ).join("\n") || "No results.";
        research.notes.push(`Search "${q.data.query}":\n${text}`.slice(0, 1_500));
        return done(text);
      }
      const p = FetchSiteInput.safeParse(use.input);
      if (!p.success) return done(`invalid input: ${zodProblems(p.error).join("; ")}`, true);
      const url = companyUrl(input.lead.companyDomain!, p.data.path ?? "/");
      if (!url) return done("only paths on the company's own site can be read", true);
      research.pages.push(url);
      const text = (await deps.fetchSite!(url)).replace(/\s+/g, " ").trim();
      research.notes.push(`Page ${url}: ${text.slice(0, 800)}`);
      return done(text || "The page has no readable text.");
    } catch (err) {
      // A failed lookup is information for the model, not a failed step.
      return done(`lookup failed: ${err instanceof Error ? err.message : String(err)}`, true);
    }
  }
}

/** https://<domain><path> when path stays on that domain; null otherwise. */
function companyUrl(domain: string, path: string): string | null {
  const host = domain.trim().toLowerCase().replace(/^https?:\/\//, "").replace(/\/.*$/, "");
  if (!/^[a-z0-9.-]+\.[a-z]{2,}$/.test(host)) return null;
  try {
    const url = new URL(path.startsWith("/") ? path : `/${path}`, `https://${host}`);
    return url.hostname === host || url.hostname === `www.${host}` ? url.toString() : null;
  } catch {
    return null;
  }
}

/** The channel's length bound for the whole message (SMS in units of its encoding). */
function boundFor(kind: StepKind, freeLinkedIn?: boolean): number {
  const B = CONTENT_BOUNDS;
  switch (kind) {
    case "email_first":
    case "email_followup":
      return B.emailBodyMax;
    case "voice_opener":
      return B.voiceScriptMax;
    case "linkedin_note":
      return freeLinkedIn ? B.linkedinNoteFreeMax : B.linkedinNotePaidMax;
    case "linkedin_message":
      return B.linkedinMessageMax;
    case "sms":
      return B.smsSingleSegmentGsm7;
    case "letter":
      return B.letterBodyMax;
  }
}

/** Characters left for the written core once the frame (and its joiner) is in. */
function roomFor(kind: StepKind, frame: string, freeLinkedIn?: boolean): number {
  const joiner = kind === "sms" || kind === "voice_opener" || kind === "linkedin_note" ? 1 : 2;
  if (kind === "sms") {
    const seg = smsSegments(frame);
    // A frame already outside GSM-7 (a sender name with "ō") leaves the 70-unit budget.
    return seg.singleSegmentLimit - seg.units - joiner;
  }
  return boundFor(kind, freeLinkedIn) - frame.length - joiner;
}

/** The voice agent's briefing for a Hot lead: who, why, what was found, and the rules of the call. */
function voiceKnowledgeBase(input: WriteStepInput, modelKb: string | null, researchNotes: string[]): string {
  const l = input.lead;
  const c = input.client;
  const who = [
    [l.firstName, l.lastName].filter(Boolean).join(" ") || "the lead",
    l.title ? `, ${l.title}` : "",
    l.company ? ` at ${l.company}` : "",
    l.city || l.country ? ` (${[l.city, l.country].filter(Boolean).join(", ")})` : "",
  ].join("");
  const found = modelKb?.trim() || researchNotes.join("\n\n").trim() || "No research notes.";
  return [
    "# Call briefing",
    `You are ${c.senderName}${c.senderTitle ? `, ${c.senderTitle}` : ""}, calling from ${c.name} about ${c.offer}.`,
    `You are calling ${who}.`,
    l.signals?.length ? `Known signals: ${l.signals.join("; ")}.` : "",
    "",
    "## What we know",
    found,
    "",
    "## Rules",
    `- Start by saying your name, that you are calling from ${c.name}, and why you are calling.`,
    "- If they ask not to be called again, apologise, confirm they will not be called again, and end the call at once.",
    "- If they are busy, ask for a better time and end the call.",
    "- State only facts from this briefing; never claim a prior relationship.",
    c.callToAction ? `- The goal of the call: ${c.callToAction}.` : "- The goal of the call: agree a short follow-up meeting.",
  ].filter((line, i, all) => line !== "" || all[i - 1] !== "").join("\n");
}

/** A SearchFn over the Serper client: "news" → /news, otherwise /search (5 results). */
export function serperSearch(serper: SerperClient, ctx: { leadId?: string | null; clientId?: string | null } = {}): SearchFn {
  return async (query, opts) => {
    if (opts.kind === "news") {
      const r = await serper.news(query, { num: 5 }, ctx);
      return r.news.map((n) => ({ title: n.title, link: n.link, snippet: n.snippet, date: n.date, source: n.source }));
    }
    const r = await serper.search(query, { num: 5 }, ctx);
    return r.organic.map((o) => ({ title: o.title, link: o.link, snippet: o.snippet, date: o.date }));
  };
}
