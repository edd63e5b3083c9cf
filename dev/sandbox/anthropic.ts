// Anthropic sandbox: POST /v1/messages and the Message Batches API (create, retrieve, results as
// JSONL, cancel) in the real wire format, so @anthropic-ai/sdk runs against it unchanged.
// Mount at /sandbox/anthropic; ANTHROPIC_BASE_URL=<that> (the SDK appends /v1/...).
//
// It checks what the content engine must get right and answers 400 invalid_request_error naming
// the problem when a check fails: the API key (401 authentication_error without one) and the
// anthropic-version header; a configured model id;
// no sampling parameters and no assistant prefill (rejected on the 5.x models); system as text
// blocks with cache_control on the shared prompt and on the client-context block (<client>), and
// no per-lead data (<lead>) in the cached system prompt; a write tool (write_message /
// write_first_line) with an object input_schema; tool_choice forcing that tool (auto only while
// research tools are offered); tool_result blocks matching the preceding tool_use ids.
//
// Otherwise it answers fixtures built deterministically from the <lead>, <step> and <client> JSON in
// the prompt: research tool calls for an auto tool_choice, then a tool_use block with a plausible
// message. usage counts ~4 characters a token; a request whose prefix up to a cache_control
// breakpoint was seen before reads it from the "cache" (cache_read_input_tokens), else writes it.
//
// Auth and version: providers.md §11 documents `x-api-key` and `anthropic-version: 2023-06-01`;
// @anthropic-ai/sdk 1.x sends API version 2026-10-21 (its 1.0.0 breaking change) and the key as
// `Authorization: Bearer <key>`. Both forms are accepted; a request with neither key is 401.
//
// Magic words anywhere in the first user message (e.g. in the lead's notes or company):
//   ratelimit  → 429 rate_limit_error with retry-after, once per identical request body
//   spendlimit → 429 with error.details.error_code enforced_spend_limit_reached, every time
//   overloaded → 529 overloaded_error, every time
//   malformed  → a tool_use whose input does not match the tool's schema, every time
//   refusal    → stop_reason "refusal" with no content
//   spammy     → a body with spam-trigger words until the request carries an is_error tool_result
//
// Reply classification (shared/engines/reply-classifier.ts): a request offering the classify_reply
// tool is checked instead for that tool (an object input_schema requiring class and confidence, with
// a class enum) and a tool_choice forcing it; system may be a string or text blocks, no caching is
// required (the prompt is far below the cacheable minimum). The answer is a deterministic "model"
// read from the <reply> and <context> JSON in the prompt: phrases decide the class (not interested,
// wrong person / referral with the named person, out of office with a YYYY-MM-DD return date, next
// quarter / month / year → not_now with a follow-up date, call / meeting → meeting_request with the
// context's booking link, interested, "?" → question, automatic → auto_reply), with a confidence;
// "lowconfidence" in the reply → confidence 0.2. The magic words above apply (malformed → a class
// outside the enum and a confidence of 2).
import { Hono } from "hono";
import type { Context } from "hono";
import { DEFAULT_MODELS } from "../../shared/integrations/anthropic.ts";
import { hash32, OnceOnly, seeded } from "./seeded.ts";

export interface AnthropicSandboxOptions {
  /** Model ids accepted (default: DEFAULT_MODELS large and small). */
  models?: string[];
  /** When set, x-api-key must equal it (401 otherwise); by default any non-empty key is accepted. */
  apiKey?: string;
  /** retry-after on the simulated 429, seconds (default 1). */
  retryAfterSeconds?: number;
  /** Status polls a batch answers in_progress before it has ended (default 1). */
  batchPollsBeforeEnd?: number;
  /** Prefixes shorter than this are not cached, as with the real minimums (default 0: everything caches). */
  minCacheableTokens?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
  status: number;
  /** The error message answered, if any. */
  error?: string;
}

interface SandboxBatch {
  id: string;
  requests: Array<{ custom_id: string; params: Record<string, unknown> }>;
  createdAt: string;
  polls: number;
  canceled: boolean;
  results: Array<{ custom_id: string; result: Record<string, unknown> }> | null;
  endedAt: string | null;
}

export interface AnthropicSandboxState {
  /** Every request, in order, with the status answered. */
  requests: RecordedRequest[];
  batches: Map<string, SandboxBatch>;
  /** Hashes of cached prefixes (model + everything up to a cache_control breakpoint). */
  cache: Set<string>;
  /** The POST /v1/messages requests only. */
  messageRequests(): RecordedRequest[];
  reset(): void;
}

const WRITE_TOOLS = ["write_message", "write_first_line"] as const;
const RESEARCH_TOOLS = ["web_search", "fetch_company_site"] as const;
/** The documented version and the one @anthropic-ai/sdk 1.x sends. */
export const SANDBOX_API_VERSIONS = ["2023-06-01", "2026-10-21"] as const;

type Json = Record<string, unknown>;
type Block = Json & { type?: string };

class CheckFailed extends Error {}

function isObj(v: unknown): v is Json {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

function blocksOf(content: unknown): Block[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  return Array.isArray(content) ? content.filter(isObj) as Block[] : [];
}

function textOf(content: unknown): string {
  return blocksOf(content).map((b) => (b.type === "text" && typeof b.text === "string" ? b.text : "")).join("\n");
}

function tagJson(text: string, tag: string): Json | null {
  // The data block is the tag followed by JSON; prose that merely names the tag doesn't count.
  const m = new RegExp(`<${tag}>\\s*(\\{[\\s\\S]*?\\})\\s*</${tag}>`).exec(text);
  if (!m) return null;
  try {
    const v = JSON.parse(m[1]);
    return isObj(v) ? v : null;
  } catch {
    return null;
  }
}

const tokens = (s: string) => Math.ceil(s.length / 4);

/** Checks a /v1/messages body; throws CheckFailed naming the first problem. */
function validate(body: unknown, models: readonly string[]): void {
  const fail = (msg: string): never => {
    throw new CheckFailed(msg);
  };
  if (!isObj(body)) fail("body: must be a JSON object");
  const b = body as Json;
  if (typeof b.model !== "string" || !models.includes(b.model)) {
    fail(`model: ${JSON.stringify(b.model)} is not one of the configured models (${models.join(", ")})`);
  }
  if (!Number.isInteger(b.max_tokens) || (b.max_tokens as number) < 1) fail("max_tokens: Field required (a positive integer)");
  for (const p of ["temperature", "top_p", "top_k"]) {
    if (b[p] !== undefined) fail(`${p}: non-default sampling parameters are not supported on ${b.model}`);
  }
  if (b.stream) fail("stream: the sandbox answers non-streaming requests only");

  const messages = Array.isArray(b.messages) ? b.messages : fail("messages: Field required");
  if (!messages.length) fail("messages: at least one message is required");
  messages.forEach((m, i) => {
    if (!isObj(m) || (m.role !== "user" && m.role !== "assistant" && m.role !== "system")) fail(`messages.${i}.role: must be "user", "assistant" or "system"`);
    if (typeof m.content !== "string" && !Array.isArray(m.content)) fail(`messages.${i}.content: Field required`);
  });
  if ((messages[0] as Json).role !== "user") fail("messages.0.role: the first message must be from the user");
  if ((messages[messages.length - 1] as Json).role !== "user") {
    fail(`messages.${messages.length - 1}: assistant message prefill is not supported on ${b.model}; the last message must be from the user`);
  }
  // Every tool_use is answered by a tool_result in the next message, and only then.
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as Json;
    const results = blocksOf(m.content).filter((x) => x.type === "tool_result");
    if (m.role === "user" && results.length) {
      const prev = i > 0 ? messages[i - 1] as Json : null;
      const ids = new Set(prev?.role === "assistant" ? blocksOf(prev.content).filter((x) => x.type === "tool_use").map((x) => x.id) : []);
      for (const r of results) {
        if (!ids.has(r.tool_use_id)) fail(`messages.${i}: tool_result block(s) with id ${String(r.tool_use_id)} have no corresponding tool_use in the previous message`);
      }
    }
    if (m.role === "assistant") {
      const uses = blocksOf(m.content).filter((x) => x.type === "tool_use");
      const next = messages[i + 1] as Json | undefined;
      const answered = new Set(blocksOf(next?.content).filter((x) => x.type === "tool_result").map((x) => x.tool_use_id));
      for (const u of uses) {
        if (!answered.has(u.id)) fail(`messages.${i + 1}: tool_use ids were found without tool_result blocks immediately after: ${String(u.id)}`);
      }
    }
  }

  // Caching: the shared prompt and the client context are cached; the lead is not in them.
  if (!Array.isArray(b.system)) {
    fail("system: must be an array of text blocks, with cache_control on the shared prompt and the client-context block");
  }
  const system = (b.system as unknown[]).filter(isObj) as Block[];
  if (!system.length || system.some((s) => s.type !== "text" || typeof s.text !== "string")) fail("system: every block must be {type: \"text\", text}");
  const cached = (x: Block) => isObj(x.cache_control) && (x.cache_control as Json).type === "ephemeral";
  if (!cached(system[0])) fail("system.0.cache_control: the shared system prompt must carry cache_control {type: \"ephemeral\"}");
  const clientBlock = system.find((s) => tagJson(String(s.text), "client") !== null);
  if (!clientBlock) fail("system: no client-context block (<client>…</client>)");
  if (!cached(clientBlock!)) fail("system: the client-context block (<client>) must carry cache_control {type: \"ephemeral\"}");
  if (system.some((s) => /<lead>\s*\{/.test(String(s.text)))) fail("system: per-lead data (<lead>) must be in the messages, not the cached system prompt");
  const breakpoints = [...(Array.isArray(b.tools) ? b.tools : []), ...system, ...messages.flatMap((m) => blocksOf((m as Json).content))]
    .filter((x) => isObj(x) && isObj(x.cache_control)).length;
  if (breakpoints > 4) fail(`cache_control: at most 4 breakpoints per request, found ${breakpoints}`);

  // Tools: a write tool with its schema; tool_choice forcing it (auto only during research).
  const tools = Array.isArray(b.tools) ? (b.tools as unknown[]).filter(isObj) : fail("tools: a write tool (write_message or write_first_line) is required");
  for (const [i, t] of tools.entries()) {
    if (typeof t.name !== "string" || !isObj(t.input_schema) || (t.input_schema as Json).type !== "object") {
      fail(`tools.${i}: every tool needs a name and an input_schema of type "object"`);
    }
  }
  const write = tools.find((t) => (WRITE_TOOLS as readonly string[]).includes(t.name as string));
  if (!write) fail("tools: a write tool (write_message or write_first_line) is required");
  const field = write!.name === "write_message" ? "body" : "first_line";
  const schema = write!.input_schema as Json;
  if (!isObj(schema.properties) || !isObj((schema.properties as Json)[field]) || !Array.isArray(schema.required) || !(schema.required as unknown[]).includes(field)) {
    fail(`tools: ${String(write!.name)}.input_schema must define and require "${field}"`);
  }
  const choice = isObj(b.tool_choice) ? b.tool_choice : null;
  const researching = tools.some((t) => (RESEARCH_TOOLS as readonly string[]).includes(t.name as string));
  const forced = choice?.type === "tool" && choice.name === write!.name;
  if (!forced && !(researching && choice?.type === "auto")) {
    fail(`tool_choice: must force the write tool ({"type": "tool", "name": "${String(write!.name)}"})${researching ? " or be auto while research tools are offered" : ""}`);
  }
  if (choice?.type === "tool" && !tools.some((t) => t.name === choice.name)) fail(`tool_choice: tool ${String(choice.name)} is not in tools`);
}

// ---------------------------------------------------------------------------------------------
// Fixture content
// ---------------------------------------------------------------------------------------------

function str(v: unknown): string {
  return typeof v === "string" ? v.trim() : "";
}

/** Drops optional parts, then words, until the text fits max characters. */
function fit(parts: string[], optional: number[], max: number, joiner: string): string {
  const keep = [...parts];
  let text = keep.filter(Boolean).join(joiner);
  for (const i of optional) {
    if (text.length <= max) break;
    keep[i] = "";
    text = keep.filter(Boolean).join(joiner);
  }
  if (text.length <= max) return text;
  const cut = text.slice(0, Math.max(0, max - 1));
  return `${cut.slice(0, Math.max(cut.lastIndexOf(" "), 1)).replace(/[,;:\s]+$/, "")}?`;
}

interface Facts {
  first: string;
  company: string;
  city: string;
  industry: string;
  signal: string;
  fact: string;
  clientName: string;
  senderName: string;
  offer: string;
}

function factsFrom(body: Json): { facts: Facts; step: Json } {
  const messages = body.messages as Json[];
  const prompt = textOf(messages[0].content);
  const lead = tagJson(prompt, "lead") ?? {};
  const step = tagJson(prompt, "step") ?? {};
  const client = tagJson(textOf(body.system), "client") ?? {};
  // The first search result a research round returned, as the "fact" a researched message cites.
  let fact = "";
  for (const m of messages) {
    for (const b of blocksOf(m.content)) {
      if (b.type === "tool_result" && !b.is_error) {
        const text = typeof b.content === "string" ? b.content : textOf(b.content);
        const title = /^\s*1\.\s+(.+?)(?:\s+\(|\s+—|\n|$)/m.exec(text)?.[1];
        if (title && !fact) fact = title.trim();
      }
    }
  }
  const signals = Array.isArray(lead.signals) ? lead.signals.filter((s): s is string => typeof s === "string") : [];
  return {
    step,
    facts: {
      first: str(lead.first_name) || "there",
      company: str(lead.company) || "your team",
      city: str(lead.city),
      industry: str(lead.industry),
      signal: signals[0] ?? "",
      fact,
      clientName: str(client.client_name) || "our team",
      senderName: str(client.sender_name),
      offer: str(client.offer) || "outbound growth",
    },
  };
}

function hookOf(f: Facts): string {
  if (f.fact) return `I read "${f.fact}" and thought of you.`;
  if (f.signal) return `I noticed ${f.company} is ${f.signal.replace(/\.$/, "")}.`;
  return `I came across ${f.company}${f.city ? ` in ${f.city}` : ""}.`;
}

function writeMessageInput(f: Facts, step: Json, spammy: boolean): Json {
  const kind = str(step.kind);
  const max = typeof step.max_chars === "number" ? step.max_chars : 600;
  const subjectMax = typeof step.subject_max_chars === "number" ? step.subject_max_chars : 60;
  const hook = hookOf(f);
  const offer = `${f.clientName} works on ${f.offer}${f.industry ? ` for ${f.industry} businesses` : ""}.`;
  const spam = spammy ? " Act now - this is a limited time offer." : "";
  let subject = "";
  let body: string;
  switch (kind) {
    case "email_first":
    case "email_followup": {
      subject = `${kind === "email_followup" ? "Re: " : ""}Idea for ${f.company}`.slice(0, subjectMax).trim();
      const opening = kind === "email_followup" ? "Following up on my last note." : hook;
      body = fit([`Hi ${f.first},`, `${opening} ${offer}${spam}`, "Would a 15-minute call next week be useful?"], [], max, "\n\n");
      break;
    }
    case "sms":
      body = fit([`Hi ${f.first},`, `worth a quick chat about ${f.offer} for ${f.company}?${spam}`], [], max, " ");
      break;
    case "linkedin_note":
      body = fit([`Hi ${f.first},`, hook, `I work on ${f.offer} with teams like ${f.company}.${spam}`, "Would be good to connect."], [1], max, " ");
      break;
    case "linkedin_message":
      body = fit([`Hi ${f.first},`, `${hook} ${offer}${spam}`, "Open to a quick chat?"], [], max, "\n\n");
      break;
    case "voice_opener":
      body = fit([`I'm calling because ${f.company} came up when we looked at ${f.industry || "businesses"} we could help with ${f.offer}.${spam}`,
        "Is now a bad time for two minutes?"], [], max, " ");
      break;
    case "letter":
      body = fit([`Dear ${f.first},`, hook, `${offer} We help teams like ${f.company} keep a steady flow of qualified conversations without adding headcount.${spam}`,
        "If it would help to talk it through, reply to this letter and I will arrange a short call at a time that suits you."], [], max, "\n\n");
      break;
    default:
      body = fit([`Hi ${f.first},`, `${hook} ${offer}${spam}`], [], max, " ");
  }
  const input: Json = { subject, body };
  if (step.voice_knowledge_base) {
    input.voice_knowledge_base = [
      `Company: ${f.company}${f.city ? ` (${f.city})` : ""}${f.industry ? `, ${f.industry}` : ""}.`,
      f.fact ? `Found in research: ${f.fact}.` : "No recent news found.",
      `Why it fits: ${offer}`,
      "Objections: \"We already have an agency\" - ask what they would change about it. \"No budget\" - offer a short call next quarter.",
    ].join("\n");
  }
  return input;
}

function firstLineInput(f: Facts, step: Json): Json {
  const max = typeof step.max_chars === "number" ? step.max_chars : 200;
  const line = f.signal ? `I noticed ${f.company} is ${f.signal.replace(/\.$/, "")}.` : `I came across ${f.company}${f.city ? ` in ${f.city}` : ""} and had a thought.`;
  return { first_line: line.length <= max ? line : line.slice(0, max - 1).replace(/\s+\S*$/, "") + "." };
}

// ---------------------------------------------------------------------------------------------
// Reply classification
// ---------------------------------------------------------------------------------------------

const CLASSIFY_TOOL = "classify_reply";

function isClassifyRequest(body: unknown): boolean {
  return isObj(body) && Array.isArray(body.tools) && body.tools.some((t) => isObj(t) && t.name === CLASSIFY_TOOL);
}

/** The checks of a classification request (throws CheckFailed naming the first problem). */
function validateClassify(body: unknown, models: readonly string[]): void {
  const fail = (msg: string): never => {
    throw new CheckFailed(msg);
  };
  const b = body as Json;
  if (typeof b.model !== "string" || !models.includes(b.model)) {
    fail(`model: ${JSON.stringify(b.model)} is not one of the configured models (${models.join(", ")})`);
  }
  if (!Number.isInteger(b.max_tokens) || (b.max_tokens as number) < 1) fail("max_tokens: Field required (a positive integer)");
  for (const p of ["temperature", "top_p", "top_k"]) {
    if (b[p] !== undefined) fail(`${p}: non-default sampling parameters are not supported on ${b.model}`);
  }
  if (b.stream) fail("stream: the sandbox answers non-streaming requests only");
  const messages = Array.isArray(b.messages) ? b.messages : fail("messages: Field required");
  if (!messages.length) fail("messages: at least one message is required");
  messages.forEach((m, i) => {
    if (!isObj(m) || (m.role !== "user" && m.role !== "assistant")) fail(`messages.${i}.role: must be "user" or "assistant"`);
    if (typeof m.content !== "string" && !Array.isArray(m.content)) fail(`messages.${i}.content: Field required`);
  });
  if ((messages[0] as Json).role !== "user") fail("messages.0.role: the first message must be from the user");
  if ((messages[messages.length - 1] as Json).role !== "user") {
    fail(`messages.${messages.length - 1}: assistant message prefill is not supported on ${b.model}; the last message must be from the user`);
  }
  if (b.system !== undefined && typeof b.system !== "string" && !(Array.isArray(b.system) && b.system.every((x) => isObj(x) && x.type === "text" && typeof x.text === "string"))) {
    fail("system: must be a string or an array of text blocks");
  }
  const tool = (b.tools as unknown[]).find((t) => isObj(t) && t.name === CLASSIFY_TOOL) as Json;
  const schema = isObj(tool.input_schema) ? tool.input_schema : fail(`tools: ${CLASSIFY_TOOL}.input_schema is required`);
  const props = isObj(schema.properties) ? schema.properties : null;
  if (schema.type !== "object" || !props || !Array.isArray(schema.required)
    || !["class", "confidence"].every((f) => (schema.required as unknown[]).includes(f))) {
    fail(`tools: ${CLASSIFY_TOOL}.input_schema must be an object schema requiring "class" and "confidence"`);
  }
  const cls = props!.class;
  if (!isObj(cls) || !Array.isArray(cls.enum) || !cls.enum.length) fail(`tools: ${CLASSIFY_TOOL}.input_schema.properties.class needs an enum`);
  const choice = isObj(b.tool_choice) ? b.tool_choice : null;
  if (choice?.type !== "tool" || choice.name !== CLASSIFY_TOOL) fail(`tool_choice: must force the classification tool ({"type": "tool", "name": "${CLASSIFY_TOOL}"})`);
}

function plusDays(date: string, n: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
}

function monthStart(date: string, monthsAhead: number): string {
  const y = Number(date.slice(0, 4));
  const m = Number(date.slice(5, 7)) - 1 + monthsAhead;
  return new Date(Date.UTC(y + Math.floor(m / 12), m % 12, 1)).toISOString().slice(0, 10);
}

/** The sandbox "model": a deterministic reading of the reply in the prompt. */
function classifyReplyInput(messages: Json[]): Json {
  const prompt = textOf(messages[0].content);
  const reply = tagJson(prompt, "reply") ?? {};
  const context = tagJson(prompt, "context") ?? {};
  const raw = `${str(reply.subject)}\n${str(reply.body)}`;
  const text = raw.toLowerCase();
  const today = /^\d{4}-\d{2}-\d{2}$/.test(str(context.today)) ? str(context.today) : new Date().toISOString().slice(0, 10);
  const link = str(context.booking_link);
  const first = str(context.prospect_first_name);
  const confidence = text.includes("lowconfidence") ? 0.2 : 0.86;
  const hi = first ? `Hi ${first}, ` : "Hi, ";
  const isoIn = /\b(\d{4}-\d{2}-\d{2})\b/.exec(raw)?.[1];

  if (/\b(not interested|no thanks|no thank you|not for us)\b/.test(text)) return { class: "not_interested", confidence };
  if (/\b(wrong person|not the right person|no longer (with|at|work)|left the company|not my area|handles this|in charge of)\b/.test(text)) {
    const named = /\b(?:speak|talk|reach out|get in touch|contact|email|try)\s+(?:to|with)?\s*([A-Z][a-z]+(?: [A-Z][a-z]+)?)/.exec(raw)
      ?? /\b([A-Z][a-z]+ [A-Z][a-z]+)\s+(?:handles|is in charge|looks after|runs)\b/.exec(raw);
    const email = /([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})/.exec(raw)?.[1];
    const title = /,\s*(?:our|the)\s+([A-Z][A-Za-z ]{2,60}?)(?:[,.(]|\s+at\b|$)/m.exec(raw)?.[1]?.trim();
    if (named || email) {
      return { class: "referral", confidence, referral: { name: named?.[1] ?? email!.split("@")[0], ...(email ? { email } : {}), ...(title ? { title } : {}) } };
    }
    return { class: "wrong_person", confidence };
  }
  if (/\b(out of (the )?office|on leave|on holiday|on vacation|away until)\b/.test(text)) {
    return { class: "out_of_office", confidence, return_date: isoIn ?? plusDays(today, 7) };
  }
  if (/\b(next quarter|next month|next year|not now|not right now|maybe later|in a few months)\b/.test(text)) {
    const follow = isoIn ?? (/next month/.test(text) ? monthStart(today, 1) : /next year/.test(text) ? `${Number(today.slice(0, 4)) + 1}-01-15`
      : /next quarter/.test(text) ? monthStart(today, 3 - ((Number(today.slice(5, 7)) - 1) % 3)) : undefined);
    return { class: "not_now", confidence, ...(follow ? { follow_up_date: follow } : {}) };
  }
  if (/\b(call|meeting|meet|demo|calendar|book a time|catch up)\b/.test(text)) {
    return { class: "meeting_request", confidence, suggested_answer: `${hi}great to hear from you. ${link ? `Pick any time that suits you here: ${link}` : "What times suit you next week?"}` };
  }
  if (/\b(interested|sounds good|sounds great|tell me more|keen)\b/.test(text)) {
    return { class: "interested", confidence, suggested_answer: `${hi}thanks for getting back to me. Happy to share more, would a short call help?` };
  }
  if (/\b(automatic|auto-reply|autoreply|do not reply)\b/.test(text)) return { class: "auto_reply", confidence };
  return { class: "question", confidence: text.includes("?") ? confidence : 0.55, suggested_answer: `${hi}good question. Let me come back to you with the details shortly.` };
}

// ---------------------------------------------------------------------------------------------
// Campaign drafting (functions/campaign-generation): a request offering the draft_campaign tool
// with an object schema requiring "steps", and a tool_choice forcing it. The answer is a sequence
// built from the <icp> JSON in the prompt: the channels it asks for, copy naming the offer.
// ---------------------------------------------------------------------------------------------

const DRAFT_TOOL = "draft_campaign";

function isDraftRequest(body: unknown): boolean {
  return isObj(body) && Array.isArray(body.tools) && body.tools.some((t) => isObj(t) && t.name === DRAFT_TOOL);
}

function validateDraft(body: unknown, models: readonly string[]): void {
  const fail = (msg: string): never => {
    throw new CheckFailed(msg);
  };
  const b = isObj(body) ? body : fail("body: must be a JSON object");
  if (!models.includes(String(b.model))) fail(`model: unknown model ${String(b.model)}`);
  if (!Array.isArray(b.messages) || !b.messages.length) fail("messages: Field required");
  const tool = (b.tools as unknown[]).find((t) => isObj(t) && t.name === DRAFT_TOOL) as Json;
  const schema = isObj(tool.input_schema) ? tool.input_schema : fail(`tools: ${DRAFT_TOOL}.input_schema is required`);
  if (schema.type !== "object" || !Array.isArray(schema.required) || !(schema.required as unknown[]).includes("steps")) {
    fail(`tools: ${DRAFT_TOOL}.input_schema must be an object schema requiring "steps"`);
  }
  const choice = isObj(b.tool_choice) ? b.tool_choice : null;
  if (choice?.type !== "tool" || choice.name !== DRAFT_TOOL) fail(`tool_choice: must force the draft tool ({"type": "tool", "name": "${DRAFT_TOOL}"})`);
}

function draftCampaignInput(messages: Json[]): Json {
  const prompt = textOf(messages[0].content);
  const icp = tagJson(prompt, "icp") ?? {};
  const offer = str(icp.offer) || "outbound lead generation";
  const industry = Array.isArray(icp.industries) && icp.industries.length ? String(icp.industries[0]) : "your industry";
  const channels = Array.isArray(icp.channels) && icp.channels.length ? (icp.channels as string[]) : ["email", "voice", "linkedin", "email", "sms"];
  const days = [0, 3, 5, 8, 12, 15, 18];
  const steps = channels.map((channel, i) => ({
    day_offset: days[i] ?? i * 3,
    channel,
    ...(channel === "linkedin" ? { linkedin_action: "invitation" } : {}),
    ...(channel === "email" ? { subject: i === 0 ? `{{first_name|there}}, ${offer} for ${industry}` : "Re: a quick follow-up" } : {}),
    body: channel === "sms"
      ? `Hi {{first_name|there}}, worth a quick chat about ${offer}?`
      : channel === "linkedin"
      ? `Hi {{first_name|there}}, I work with ${industry} teams on ${offer}.`
      : `{{client_name}} helps ${industry} companies like {{company|yours}} with ${offer}. Worth a short call?`,
  }));
  return { name: `${offer} — ${industry}`.slice(0, 120), description: `Drafted for the ICP: ${industry}; offer: ${offer}.`, steps };
}

// ---------------------------------------------------------------------------------------------
// Usage with a prompt cache
// ---------------------------------------------------------------------------------------------

function usageFor(body: Json, contentJson: string, cache: Set<string>, minCacheable: number, batch: boolean): Json {
  const pieces: Array<{ text: string; cc: Json | null }> = [];
  const push = (x: unknown) => pieces.push({ text: JSON.stringify(x), cc: isObj(x) && isObj(x.cache_control) ? x.cache_control as Json : null });
  for (const t of Array.isArray(body.tools) ? body.tools : []) push(t);
  for (const s of Array.isArray(body.system) ? body.system : [body.system]) push(s);
  for (const m of body.messages as Json[]) for (const b of blocksOf(m.content)) push(b);

  const total = pieces.reduce((n, p) => n + tokens(p.text), 0);
  // Each breakpoint: the hash of everything up to it (per model) and its cumulative tokens.
  const points: Array<{ key: string; upto: number; ttl: string }> = [];
  let prefix = `${String(body.model)}|`;
  let upto = 0;
  for (const p of pieces) {
    prefix += p.text;
    upto += tokens(p.text);
    if (p.cc) points.push({ key: String(hash32(prefix)) + ":" + prefix.length, upto, ttl: p.cc.ttl === "1h" ? "1h" : "5m" });
  }
  const cacheable = points.filter((p) => p.upto >= minCacheable);
  let read = 0;
  for (const p of [...cacheable].reverse()) {
    if (cache.has(p.key)) {
      read = p.upto;
      break;
    }
  }
  let w5 = 0;
  let w1 = 0;
  let from = read;
  for (const p of cacheable) {
    if (p.upto > from) {
      if (p.ttl === "1h") w1 += p.upto - from;
      else w5 += p.upto - from;
      from = p.upto;
    }
    cache.add(p.key);
  }
  return {
    input_tokens: total - read - w5 - w1,
    output_tokens: Math.max(1, tokens(contentJson)),
    cache_creation_input_tokens: w5 + w1,
    cache_read_input_tokens: read,
    cache_creation: { ephemeral_5m_input_tokens: w5, ephemeral_1h_input_tokens: w1 },
    service_tier: batch ? "batch" : "standard",
  };
}

// ---------------------------------------------------------------------------------------------
// The app
// ---------------------------------------------------------------------------------------------

type Outcome =
  | { kind: "message"; message: Json }
  | { kind: "error"; status: number; type: string; message: string; details?: Json; retryAfter?: number };

export function createAnthropicSandbox(opts: AnthropicSandboxOptions = {}): { app: Hono<{ Variables: { rec: RecordedRequest } }>; state: AnthropicSandboxState } {
  const models = opts.models ?? [DEFAULT_MODELS.large, DEFAULT_MODELS.small];
  let onceFresh = new OnceOnly();
  const state: AnthropicSandboxState = {
    requests: [],
    batches: new Map(),
    cache: new Set(),
    messageRequests: () => state.requests.filter((r) => r.method === "POST" && /\/v1\/messages$/.test(r.path)),
    reset() {
      state.requests.length = 0;
      state.batches.clear();
      state.cache.clear();
      onceFresh = new OnceOnly();
    },
  };
  let counter = 0;

  /** The answer to one messages request (shared by /v1/messages and batches). */
  function answer(body: unknown, batch: boolean): Outcome {
    const classifying = isClassifyRequest(body);
    const drafting = !classifying && isDraftRequest(body);
    try {
      if (classifying) validateClassify(body, models);
      else if (drafting) validateDraft(body, models);
      else validate(body, models);
    } catch (err) {
      if (err instanceof CheckFailed) return { kind: "error", status: 400, type: "invalid_request_error", message: err.message };
      throw err;
    }
    const b = body as Json;
    const messages = b.messages as Json[];
    const prompt = textOf(messages[0].content).toLowerCase();
    const bodyKey = String(hash32(JSON.stringify(b)));
    if (prompt.includes("spendlimit")) {
      return {
        kind: "error", status: 429, type: "rate_limit_error",
        message: "This request would exceed your organization's monthly spend limit.",
        details: { error_code: "enforced_spend_limit_reached" },
      };
    }
    if (prompt.includes("ratelimit") && !batch && onceFresh.first(`ratelimit:${bodyKey}`)) {
      return { kind: "error", status: 429, type: "rate_limit_error", message: "Number of request tokens has exceeded your per-minute rate limit.", retryAfter: opts.retryAfterSeconds ?? 1 };
    }
    if (prompt.includes("overloaded")) return { kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" };

    const rng = seeded(`anthropic:${bodyKey}:${counter++}`);
    const base = { id: `msg_sbx${rng.hex(21)}`, type: "message", role: "assistant", model: b.model, stop_sequence: null, container: null, diagnostics: null };
    const finish = (content: Json[], stop: string): Outcome => ({
      kind: "message",
      message: {
        ...base, content, stop_reason: stop,
        stop_details: stop === "refusal" ? { type: "refusal", category: null, explanation: "The sandbox declines requests containing the word refusal." } : null,
        usage: usageFor(b, JSON.stringify(content), state.cache, opts.minCacheableTokens ?? 0, batch),
      },
    });
    if (prompt.includes("refusal")) return finish([], "refusal");
    if (classifying) {
      const input = prompt.includes("malformed") ? { class: "maybe_later", confidence: 2 } : classifyReplyInput(messages);
      return finish([{ type: "tool_use", id: `toolu_sbx${rng.hex(20)}`, name: CLASSIFY_TOOL, input }], "tool_use");
    }
    if (drafting) {
      const input = prompt.includes("malformed") ? { steps: "none" } : draftCampaignInput(messages);
      return finish([{ type: "tool_use", id: `toolu_sbx${rng.hex(20)}`, name: DRAFT_TOOL, input }], "tool_use");
    }

    const { facts, step } = factsFrom(b);
    const choice = b.tool_choice as Json;
    const tools = (b.tools as Json[]).map((t) => String(t.name));
    const toolUse = (name: string, input: Json): Json => ({ type: "tool_use", id: `toolu_sbx${rng.hex(20)}`, name, input });

    if (choice.type === "auto") {
      // Research: one planned call per round, then notes.
      const plan = RESEARCH_TOOLS.filter((t) => tools.includes(t));
      const done = messages.filter((m) => m.role === "assistant").length;
      if (done < plan.length) {
        const name = plan[done];
        const input = name === "web_search" ? { query: `${facts.company} news`, kind: "news" } : { path: "/" };
        return finish([{ type: "text", text: `Looking up ${facts.company}.` }, toolUse(name, input)], "tool_use");
      }
      return finish([{ type: "text", text: `Notes: ${facts.fact ? `recent coverage: ${facts.fact}.` : "nothing recent found."}` }], "end_turn");
    }

    const name = String(choice.name);
    if (prompt.includes("malformed")) {
      return finish([toolUse(name, name === "write_message" ? { subject: 42, text: "broken" } : { line: 5 })], "tool_use");
    }
    const hadFeedback = messages.some((m) => blocksOf(m.content).some((x) => x.type === "tool_result" && x.is_error === true));
    const input = name === "write_message" ? writeMessageInput(facts, step, prompt.includes("spammy") && !hadFeedback) : firstLineInput(facts, step);
    return finish([toolUse(name, input)], "tool_use");
  }

  function errorBody(type: string, message: string, details?: Json) {
    return { type: "error", error: { type, message, ...(details ? { details } : {}) }, request_id: `req_sbx${seeded(message).hex(20)}` };
  }

  const app = new Hono<{ Variables: { rec: RecordedRequest } }>();

  // Auth and version on every route; every request recorded with its answer.
  app.use("*", async (c, next) => {
    const raw = await c.req.raw.clone().text();
    let body: unknown = null;
    try {
      body = raw ? JSON.parse(raw) : null;
    } catch {
      body = raw;
    }
    const headers: Record<string, string> = {};
    c.req.raw.headers.forEach((v, k) => (headers[k] = v));
    const rec: RecordedRequest = { method: c.req.method, path: new URL(c.req.url).pathname, headers, body, status: 0 };
    state.requests.push(rec);
    const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization")?.trim() ?? "")?.[1];
    const key = c.req.header("x-api-key")?.trim() || bearer;
    if (!key) {
      rec.status = 401;
      rec.error = "x-api-key header is required";
      return c.json(errorBody("authentication_error", rec.error), 401);
    }
    if (opts.apiKey && key !== opts.apiKey) {
      rec.status = 401;
      rec.error = "invalid x-api-key";
      return c.json(errorBody("authentication_error", rec.error), 401);
    }
    const version = c.req.header("anthropic-version");
    if (!version || !(SANDBOX_API_VERSIONS as readonly string[]).includes(version)) {
      rec.status = 400;
      rec.error = version ? `anthropic-version: "${version}" is not a supported version` : "anthropic-version: header is required";
      return c.json(errorBody("invalid_request_error", rec.error), 400);
    }
    c.set("rec", rec);
    await next();
    rec.status = c.res.status;
  });

  const fail = (c: Context<{ Variables: { rec: RecordedRequest } }>, status: number, type: string, message: string, details?: Json) => {
    const rec = c.get("rec");
    if (rec) rec.error = message;
    c.header("request-id", `req_sbx${seeded(message).hex(20)}`);
    return c.json(errorBody(type, message, details), status as 400);
  };

  app.post("/v1/messages", async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return fail(c, 400, "invalid_request_error", "body: not valid JSON");
    }
    const out = answer(body, false);
    if (out.kind === "error") {
      if (out.retryAfter !== undefined) c.header("retry-after", String(out.retryAfter));
      return fail(c, out.status, out.type, out.message, out.details);
    }
    c.header("request-id", `req_sbx${seeded(String(out.message.id)).hex(20)}`);
    return c.json(out.message);
  });

  // ---- Message Batches ------------------------------------------------------------------------

  function resultsUrl(c: Context, id: string): string {
    const url = new URL(c.req.url);
    const root = url.pathname.replace(/\/v1\/messages\/batches.*$/, "");
    return `${url.origin}${root}/v1/messages/batches/${id}/results`;
  }

  function batchJson(c: Context, bt: SandboxBatch) {
    const ended = !!bt.results;
    const counts = { processing: 0, succeeded: 0, errored: 0, canceled: 0, expired: 0 };
    if (!ended) counts.processing = bt.requests.length;
    else for (const r of bt.results!) counts[r.result.type as "succeeded"]++;
    return {
      id: bt.id,
      type: "message_batch",
      processing_status: ended ? "ended" : bt.canceled ? "canceling" : "in_progress",
      request_counts: counts,
      results_url: ended ? resultsUrl(c, bt.id) : null,
      created_at: bt.createdAt,
      ended_at: bt.endedAt,
      expires_at: new Date(Date.parse(bt.createdAt) + 86_400_000).toISOString(),
      archived_at: null,
      cancel_initiated_at: bt.canceled ? bt.endedAt : null,
    };
  }

  function finishBatch(bt: SandboxBatch) {
    bt.results = bt.requests.map((r) => {
      if (bt.canceled) return { custom_id: r.custom_id, result: { type: "canceled" } };
      const out = answer(r.params, true);
      return out.kind === "message"
        ? { custom_id: r.custom_id, result: { type: "succeeded", message: out.message } }
        : { custom_id: r.custom_id, result: { type: "errored", error: errorBody(out.type, out.message, out.details) } };
    });
    bt.endedAt = new Date().toISOString();
  }

  app.post("/v1/messages/batches", async (c) => {
    let body: Json;
    try {
      body = await c.req.json();
    } catch {
      return fail(c, 400, "invalid_request_error", "body: not valid JSON");
    }
    const reqs = Array.isArray(body?.requests) ? body.requests : null;
    if (!reqs || !reqs.length) return fail(c, 400, "invalid_request_error", "requests: at least one request is required");
    if (reqs.length > 100_000) return fail(c, 413, "request_too_large", "requests: at most 100,000 per batch");
    const seen = new Set<string>();
    for (const [i, r] of reqs.entries()) {
      if (!isObj(r) || typeof r.custom_id !== "string" || !/^[a-zA-Z0-9_-]{1,64}$/.test(r.custom_id)) {
        return fail(c, 400, "invalid_request_error", `requests.${i}.custom_id: 1–64 letters, digits, _ or -`);
      }
      if (seen.has(r.custom_id)) return fail(c, 400, "invalid_request_error", `requests.${i}.custom_id: "${r.custom_id}" is not unique`);
      seen.add(r.custom_id);
      if (!isObj(r.params)) return fail(c, 400, "invalid_request_error", `requests.${i}.params: Field required`);
    }
    const id = `msgbatch_sbx${seeded(`batch:${JSON.stringify(body)}:${counter++}`).hex(20)}`;
    const bt: SandboxBatch = { id, requests: reqs as SandboxBatch["requests"], createdAt: new Date().toISOString(), polls: 0, canceled: false, results: null, endedAt: null };
    state.batches.set(id, bt);
    return c.json(batchJson(c, bt));
  });

  app.get("/v1/messages/batches/:id", (c) => {
    const bt = state.batches.get(c.req.param("id"));
    if (!bt) return fail(c, 404, "not_found_error", `batch ${c.req.param("id")} not found`);
    bt.polls++;
    if (!bt.results && bt.polls > (opts.batchPollsBeforeEnd ?? 1)) finishBatch(bt);
    return c.json(batchJson(c, bt));
  });

  app.post("/v1/messages/batches/:id/cancel", (c) => {
    const bt = state.batches.get(c.req.param("id"));
    if (!bt) return fail(c, 404, "not_found_error", `batch ${c.req.param("id")} not found`);
    if (!bt.results) {
      bt.canceled = true;
      finishBatch(bt);
    }
    return c.json(batchJson(c, bt));
  });

  app.get("/v1/messages/batches/:id/results", (c) => {
    const bt = state.batches.get(c.req.param("id"));
    if (!bt) return fail(c, 404, "not_found_error", `batch ${c.req.param("id")} not found`);
    if (!bt.results) return fail(c, 400, "invalid_request_error", `batch ${bt.id} is still in_progress; results are available once it has ended`);
    // Order is not guaranteed by the real API; reversed here so callers can't rely on it.
    const lines = [...bt.results].reverse().map((r) => JSON.stringify(r)).join("\n") + "\n";
    return c.body(lines, 200, { "content-type": "application/binary" });
  });

  app.all("*", (c) => fail(c, 404, "not_found_error", `${c.req.method} ${new URL(c.req.url).pathname} is not a sandbox route`));
  return { app, state };
}
