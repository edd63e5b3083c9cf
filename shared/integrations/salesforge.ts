// Salesforge (cold email sequencer; providers.md §8) client and the "email" channel adapter.
// Auth: the raw API key in Authorization (no "Bearer"). Workspace from SALESFORGE_WORKSPACE_ID.
//
// Salesforge has no "send one email" call, so a step is sent like this:
//  - FIRST email: upsert the contact (POST /workspaces/{ws}/contacts) with our rendered email in custom
//    variables — aos_subject, aos_body, aos_list_unsubscribe, aos_send_id — then enrol it in the
//    campaign's Salesforge sequence with the two-step enrolment (POST …/sequences/{id}/enrollments/preflight,
//    then …/preflight/{preflightId}/confirm {action}). The sequence is one email node whose subject is
//    {{aos_subject}} and body {{aos_body}}; Salesforge sends it on its schedule, so the result is
//    "queued" and its email id (the thread to reply to) arrives later in the email_sent webhook
//    (salesforgeThreadRef builds the thread reference from it).
//  - FOLLOW-UP (req.threadRef set): reply in that thread, POST /workspaces/{ws}/mailboxes/{mb}/emails/{emailId}/reply
//    with the body, the subject and the List-Unsubscribe + List-Unsubscribe-Post headers.
//
// Which sequence: the adapter is given it explicitly (SalesforgeEmailAdapterOptions.sequenceId, a fixed
// id or a function of the request, e.g. the campaign's sequence looked up by req.clientId/step). Not the
// sender's providerAccountId — that is the Salesforge mailbox id, used for replies.
//
// Request bodies sent (the sandbox, dev/sandbox/salesforge.ts, accepts exactly these):
//   contact upsert  {firstName, lastName?, email, company?, position?, customVars: {aos_subject, aos_body, aos_list_unsubscribe, aos_send_id}}
//   preflight       {filters: {leadIds: [contactId]}, selectionScope: "all"}
//   confirm         {action: "skip" | "move"}
//   reply           {content, subject?, includeHistory: true, headers: {"List-Unsubscribe", "List-Unsubscribe-Post"}}
//   do-not-contact  {dncs: ["a@b.com", "domain.com", …]}
// Unconfirmed against the live API [I]: the documented reply body is {content, includeHistory, ccs,
// bccs} with a 204 answer; whether Salesforge honours `subject` and `headers` on a reply must be
// checked with a real mailbox. Response bodies are parsed leniently (bare or wrapped in {data}).
import { z } from "zod";
import type { Redis } from "@upstash/redis";
import { readEnv } from "../config/env.ts";
import { PROVIDERS } from "../config/providers.ts";
import type { ChannelAdapter, SendRequest, SendResult } from "../channels/types.ts";
import {
  isLocalUrl,
  lenient,
  normalizeEmail,
  ProviderError,
  providerFetch,
  rateLimitFromEnv,
  tolerantArray,
  type ProviderCallContext,
  type ProviderSpec,
  type RateLimitSpec,
  type RecordCall,
  type RetrySpec,
  type SqlTag,
} from "./provider-http.ts";

/** An environment variable, or undefined when unset or blank. */
function envValue(name: string): string | undefined {
  return readEnv(name)?.trim() || undefined;
}

export const SALESFORGE_DEFAULT_BASE_URL = "https://api.salesforge.ai/public/v2";

/** The custom variables a first email travels in; the sequence's email node uses {{aos_subject}} and {{aos_body}}. */
export const SALESFORGE_VARS = {
  subject: "aos_subject",
  body: "aos_body",
  listUnsubscribe: "aos_list_unsubscribe",
  sendId: "aos_send_id",
} as const;

export const ONE_CLICK = "List-Unsubscribe=One-Click";

export interface SalesforgeConfig {
  apiKey?: string;
  /** Core API (default https://api.salesforge.ai/public/v2). */
  baseUrl?: string;
  /**
   * Base of the /multichannel/… sequence endpoints. Default: the core base (what Salesforge's CLI calls);
   * Salesforge's MCP server uses https://multichannel-api.salesforge.ai/public instead (providers.md §8).
   */
  multichannelBaseUrl?: string;
  workspaceId?: string;
  /** Default 60 calls/min shared (SALESFORGE_RATE_LIMIT overrides); Salesforge documents none. */
  rateLimit?: RateLimitSpec | false;
  retry?: RetrySpec;
  timeoutMs?: number;
  redis?: Redis | null;
  record?: RecordCall;
  sql?: SqlTag;
  fetch?: typeof fetch;
}

export interface SalesforgeContactInput {
  firstName: string;
  lastName?: string;
  email: string;
  company?: string;
  position?: string;
  /** Non-empty keys and values. */
  customVars?: Record<string, string>;
}

export interface SalesforgeContact {
  id: string;
  email: string | null;
  firstName: string | null;
  lastName: string | null;
  customVars: Record<string, string>;
}

export interface SalesforgePreflight {
  preflightId: string;
  expiresAt: string | null;
  candidateCount: number;
  /** Contacts in another sequence: enrolled only with action "move". */
  decisionRequiredCount: number;
  automaticEnrollmentCount: number;
  alreadyInTargetCount: number;
}

export interface SalesforgeThread {
  id: string;
  mailboxId: string | null;
  sequenceId: string | null;
  subject: string | null;
  snippet: string | null;
  contactId: string | null;
  contactEmail: string | null;
  lastMessageAt: string | null;
}

export interface SalesforgeThreadEmail {
  id: string;
  direction: string | null;
  from: string | null;
  to: string | null;
  subject: string | null;
  content: string | null;
  sentAt: string | null;
}

export interface SalesforgeThreadDetail extends SalesforgeThread {
  emails: SalesforgeThreadEmail[];
}

export interface SalesforgeReply {
  content: string;
  subject?: string;
  /** List-Unsubscribe and List-Unsubscribe-Post. */
  headers: Record<string, string>;
}

export type SalesforgeWebhookType =
  | "email_sent" | "email_opened" | "link_clicked" | "email_replied" | "linkedin_replied" | "contact_unsubscribed"
  | "email_bounced" | "positive_reply" | "negative_reply" | "label_changed" | "dnc_added";

export interface SalesforgeClient {
  readonly workspaceId: string;
  /** POST /workspaces/{ws}/contacts: creates, or updates the contact with this email (custom vars included). */
  upsertContact(contact: SalesforgeContactInput, ctx?: ProviderCallContext): Promise<SalesforgeContact>;
  /** GET /workspaces/{ws}/contacts?limit&offset[&not_in_sequence_id] */
  listContacts(query?: { limit?: number; offset?: number; notInSequenceId?: string }, ctx?: ProviderCallContext): Promise<{ contacts: SalesforgeContact[]; total: number | null }>;
  preflightEnrollment(sequenceId: string, contactIds: string[], ctx?: ProviderCallContext): Promise<SalesforgePreflight>;
  confirmEnrollment(sequenceId: string, preflightId: string, action: "skip" | "move", ctx?: ProviderCallContext): Promise<void>;
  /** POST …/mailboxes/{mb}/emails/{emailId}/reply; the new email's id when Salesforge returns one (it documents 204). */
  replyToEmail(mailboxId: string, emailId: string, reply: SalesforgeReply, ctx?: ProviderCallContext): Promise<{ id: string | null }>;
  /** GET /workspaces/{ws}/threads (reply recovery). */
  listThreads(query?: { limit?: number; offset?: number; mailboxIds?: string[]; sequenceIds?: string[]; filter?: "all" | "unread" }, ctx?: ProviderCallContext): Promise<SalesforgeThread[]>;
  getThread(mailboxId: string, threadId: string, ctx?: ProviderCallContext): Promise<SalesforgeThreadDetail | null>;
  /** POST /workspaces/{ws}/dnc/bulk: emails or domains, 1,000 per call (longer lists are split). */
  addDnc(values: string[], ctx?: ProviderCallContext): Promise<{ created: number }>;
  /** POST /workspaces/{ws}/integrations/webhooks: one event type per webhook; put a secret in the URL path. */
  createWebhook(hook: { name: string; url: string; type: SalesforgeWebhookType; sequenceId?: string }, ctx?: ProviderCallContext): Promise<{ id: string }>;
}

// ---------------------------------------------------------------------------------------------
// Wire schemas (lenient: Salesforge may wrap answers in {data})
// ---------------------------------------------------------------------------------------------

const id = z.union([z.string().min(1), z.number()]).transform(String);
const optionalId = z.unknown().optional().transform((v) => (typeof v === "string" && v !== "" ? v : typeof v === "number" ? String(v) : null));

const CustomVarsWire = z.unknown().optional().transform((v): Record<string, string> => {
  if (Array.isArray(v)) {
    // [{key|name, value}]
    return Object.fromEntries(v.flatMap((e) => {
      const o = e as Record<string, unknown>;
      const k = typeof o?.key === "string" ? o.key : typeof o?.name === "string" ? o.name : null;
      return k && typeof o.value === "string" ? [[k, o.value]] : [];
    }));
  }
  if (!v || typeof v !== "object") return {};
  return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === "string"));
});

const ContactWire = z.object({
  id,
  email: lenient.string,
  firstName: lenient.string,
  lastName: lenient.string,
  customVars: CustomVarsWire,
}).transform((c): SalesforgeContact => ({ id: c.id, email: c.email, firstName: c.firstName, lastName: c.lastName, customVars: c.customVars }));

/** A body that is T or {data: T}. */
function unwrap<T>(schema: z.ZodType<T>) {
  return z.union([schema, z.object({ data: schema }).transform((w) => w.data)]);
}

const ContactListWire = z.union([
  z.object({ data: tolerantArray(ContactWire), total: lenient.number }),
  tolerantArray(ContactWire).transform((data) => ({ data, total: null })),
]);

const PreflightWire = unwrap(z.object({
  preflightId: id,
  expiresAt: lenient.string,
  summary: z.object({
    candidateCount: lenient.number,
    decisionRequiredCount: lenient.number,
    automaticEnrollmentCount: lenient.number,
    alreadyInTargetCount: lenient.number,
  }).partial().optional(),
}).transform((p): SalesforgePreflight => ({
  preflightId: p.preflightId,
  expiresAt: p.expiresAt,
  candidateCount: p.summary?.candidateCount ?? 0,
  decisionRequiredCount: p.summary?.decisionRequiredCount ?? 0,
  automaticEnrollmentCount: p.summary?.automaticEnrollmentCount ?? 0,
  alreadyInTargetCount: p.summary?.alreadyInTargetCount ?? 0,
})));

const ThreadWire = z.object({
  id,
  mailboxId: optionalId,
  sequenceId: optionalId,
  subject: lenient.string,
  snippet: lenient.string,
  contactId: optionalId,
  contact: z.object({ id: optionalId, email: lenient.string }).partial().nullish(),
  lastMessageAt: lenient.string,
}).transform((t): SalesforgeThread => ({
  id: t.id, mailboxId: t.mailboxId, sequenceId: t.sequenceId, subject: t.subject, snippet: t.snippet,
  contactId: t.contactId ?? t.contact?.id ?? null, contactEmail: t.contact?.email ?? null, lastMessageAt: t.lastMessageAt,
}));

const ThreadListWire = z.union([
  z.object({ data: tolerantArray(ThreadWire) }).transform((w) => w.data),
  tolerantArray(ThreadWire),
]);

const ThreadEmailWire = z.object({
  id,
  direction: lenient.string,
  from: lenient.string,
  to: lenient.string,
  subject: lenient.string,
  content: lenient.string,
  body: lenient.string,
  sentAt: lenient.string,
}).transform((e): SalesforgeThreadEmail => ({
  id: e.id, direction: e.direction, from: e.from, to: e.to, subject: e.subject, content: e.content ?? e.body, sentAt: e.sentAt,
}));

const ThreadDetailWire = z.unknown().transform((v, ctx): SalesforgeThreadDetail => {
  const o = v && typeof v === "object" ? v as Record<string, unknown> : {};
  const raw = "data" in o && !("id" in o) ? o.data as Record<string, unknown> : o;
  const thread = ThreadWire.safeParse(raw);
  const emails = tolerantArray(ThreadEmailWire).safeParse(raw?.emails ?? []);
  if (!thread.success || !emails.success) {
    ctx.addIssue({ code: "custom", message: "not a thread (no id, or emails not a list)" });
    return z.NEVER;
  }
  return { ...thread.data, emails: emails.data };
});

/** A count from {created}, {data: {created}} or {data: [{created}]}. */
const CreatedWire = z.unknown().transform((v): number => {
  const pick = (o: unknown): number | null => {
    if (Array.isArray(o)) return o.reduce<number>((n, e) => n + (pick(e) ?? 0), 0);
    if (o && typeof o === "object") {
      const r = o as Record<string, unknown>;
      if (typeof r.created === "number") return r.created;
      if ("data" in r) return pick(r.data);
    }
    return null;
  };
  return pick(v) ?? 0;
});

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

function invalid(operation: string, message: string): ProviderError {
  return new ProviderError({ provider: "salesforge", operation, code: "invalid_request", retryable: false, message });
}

export function createSalesforgeClient(config: SalesforgeConfig = {}): SalesforgeClient {
  const baseUrl = config.baseUrl ?? envValue(PROVIDERS.salesforge.baseUrl) ?? SALESFORGE_DEFAULT_BASE_URL;
  const local = isLocalUrl(baseUrl);
  const apiKey = config.apiKey ?? envValue(PROVIDERS.salesforge.key) ?? (local ? "sandbox" : undefined);
  const workspaceId = config.workspaceId ?? envValue("SALESFORGE_WORKSPACE_ID") ?? (local ? "wks_sandbox" : undefined);
  const multichannelBaseUrl = config.multichannelBaseUrl ?? envValue("SALESFORGE_MULTICHANNEL_BASE_URL") ?? baseUrl;
  const missing = [!apiKey && "SALESFORGE_API_KEY", !workspaceId && "SALESFORGE_WORKSPACE_ID"].filter(Boolean);
  const spec: ProviderSpec = {
    provider: "salesforge",
    baseUrl,
    // The raw key, no "Bearer": what Salesforge's own clients send.
    headers: { authorization: apiKey ?? "" },
    missingCredentials: missing.length ? `${missing.join(" and ")} not set` : undefined,
    rateLimit: config.rateLimit ?? rateLimitFromEnv("SALESFORGE_RATE_LIMIT", { limit: 60, window: "1 m" }),
    retry: config.retry,
    timeoutMs: config.timeoutMs ?? 20_000,
    redis: config.redis,
    record: config.record,
    sql: config.sql,
    fetch: config.fetch,
  };
  const mcSpec: ProviderSpec = { ...spec, baseUrl: multichannelBaseUrl };
  // A reply sends an email: one attempt per call, the dispatcher decides about trying again.
  const sendSpec: ProviderSpec = { ...spec, retry: { ...config.retry, attempts: 1 } };
  const ws = () => `/workspaces/${encodeURIComponent(workspaceId ?? "")}`;
  const mcSeq = (sequenceId: string) => `/multichannel${ws()}/sequences/${encodeURIComponent(sequenceId)}`;

  return {
    workspaceId: workspaceId ?? "",

    async upsertContact(contact, ctx) {
      if (!contact.firstName.trim() || !contact.email.trim()) throw invalid("contacts.upsert", "firstName and email are required");
      const vars = contact.customVars ?? {};
      const empty = Object.entries(vars).filter(([k, v]) => !k || !v);
      if (empty.length) throw invalid("contacts.upsert", `custom variables need non-empty keys and values: ${empty.map(([k]) => k).join(", ")}`);
      const body = {
        firstName: contact.firstName,
        ...(contact.lastName ? { lastName: contact.lastName } : {}),
        email: contact.email,
        ...(contact.company ? { company: contact.company } : {}),
        ...(contact.position ? { position: contact.position } : {}),
        ...(Object.keys(vars).length ? { customVars: vars } : {}),
      };
      const res = await providerFetch(spec, { operation: "contacts.upsert", method: "POST", path: `${ws()}/contacts`, body, schema: unwrap(ContactWire) }, ctx);
      return res.data;
    },

    async listContacts(query = {}, ctx) {
      const res = await providerFetch(spec, {
        operation: "contacts.list",
        path: `${ws()}/contacts`,
        query: { limit: query.limit ?? 100, offset: query.offset ?? 0, not_in_sequence_id: query.notInSequenceId },
        schema: ContactListWire,
      }, ctx);
      return { contacts: res.data.data, total: res.data.total };
    },

    async preflightEnrollment(sequenceId, contactIds, ctx) {
      if (!sequenceId.trim() || !contactIds.length) throw invalid("enrollments.preflight", "a sequence id and contact ids are required");
      const res = await providerFetch(mcSpec, {
        operation: "enrollments.preflight",
        method: "POST",
        path: `${mcSeq(sequenceId)}/enrollments/preflight`,
        body: { filters: { leadIds: contactIds }, selectionScope: "all" },
        schema: PreflightWire,
      }, ctx);
      return res.data;
    },

    async confirmEnrollment(sequenceId, preflightId, action, ctx) {
      await providerFetch(mcSpec, {
        operation: "enrollments.confirm",
        method: "POST",
        path: `${mcSeq(sequenceId)}/enrollments/preflight/${encodeURIComponent(preflightId)}/confirm`,
        body: { action },
        schema: z.unknown(),
      }, ctx);
    },

    async replyToEmail(mailboxId, emailId, reply, ctx) {
      if (!mailboxId.trim() || !emailId.trim() || !reply.content.trim()) throw invalid("emails.reply", "mailbox id, email id and content are required");
      const res = await providerFetch(sendSpec, {
        operation: "emails.reply",
        method: "POST",
        path: `${ws()}/mailboxes/${encodeURIComponent(mailboxId)}/emails/${encodeURIComponent(emailId)}/reply`,
        body: {
          content: reply.content,
          ...(reply.subject ? { subject: reply.subject } : {}),
          includeHistory: true,
          headers: reply.headers,
        },
        // 204 (documented) or a JSON email.
        schema: z.unknown().transform((v) => {
          const o = (v && typeof v === "object" && "data" in v ? (v as { data: unknown }).data : v) as Record<string, unknown> | null;
          const found = o && (typeof o.id === "string" || typeof o.id === "number") ? String(o.id) : null;
          return { id: found };
        }),
      }, ctx);
      return res.data;
    },

    async listThreads(query = {}, ctx) {
      const res = await providerFetch(spec, {
        operation: "threads.list",
        path: `${ws()}/threads`,
        query: {
          limit: query.limit ?? 50,
          offset: query.offset ?? 0,
          filter: query.filter,
          "mailbox_ids[]": query.mailboxIds,
          "sequence_ids[]": query.sequenceIds,
        },
        schema: ThreadListWire,
      }, ctx);
      return res.data;
    },

    async getThread(mailboxId, threadId, ctx) {
      const res = await providerFetch(spec, {
        operation: "threads.get",
        path: `${ws()}/mailboxes/${encodeURIComponent(mailboxId)}/threads/${encodeURIComponent(threadId)}`,
        schema: ThreadDetailWire.nullable(),
        onStatus: { 404: () => null },
      }, ctx);
      return res.data;
    },

    async addDnc(values, ctx) {
      const clean = [...new Set(values.map((v) => v.trim().toLowerCase()).filter(Boolean))];
      let created = 0;
      for (let i = 0; i < clean.length; i += 1000) {
        const res = await providerFetch(spec, {
          operation: "dnc.bulk",
          method: "POST",
          path: `${ws()}/dnc/bulk`,
          body: { dncs: clean.slice(i, i + 1000) },
          schema: CreatedWire,
        }, ctx);
        created += res.data;
      }
      return { created };
    },

    async createWebhook(hook, ctx) {
      const res = await providerFetch(spec, {
        operation: "webhooks.create",
        method: "POST",
        path: `${ws()}/integrations/webhooks`,
        body: { name: hook.name, url: hook.url, type: hook.type, ...(hook.sequenceId ? { sequenceID: hook.sequenceId } : {}) },
        schema: unwrap(z.object({ id })),
      }, ctx);
      return { id: res.data.id };
    },
  };
}

/** The client configured from SALESFORGE_API_KEY, SALESFORGE_BASE_URL, SALESFORGE_WORKSPACE_ID (and SALESFORGE_MULTICHANNEL_BASE_URL). */
export function salesforgeFromEnv(overrides: Partial<SalesforgeConfig> = {}): SalesforgeClient {
  return createSalesforgeClient(overrides);
}

// ---------------------------------------------------------------------------------------------
// Thread references
// ---------------------------------------------------------------------------------------------

/** What sends.thread_ref holds for a Salesforge email: the mailbox that sent it and its email id. */
export function salesforgeThreadRef(mailboxId: string, emailId: string): string {
  return `${mailboxId}:${emailId}`;
}

/** "mailboxId:emailId", or a bare email id whose mailbox is the sender's. */
export function parseSalesforgeThreadRef(threadRef: string, fallbackMailboxId?: string | null): { mailboxId: string; emailId: string } | null {
  const ref = threadRef.trim();
  const colon = ref.indexOf(":");
  if (colon > 0 && colon < ref.length - 1) return { mailboxId: ref.slice(0, colon), emailId: ref.slice(colon + 1) };
  return ref && fallbackMailboxId?.trim() ? { mailboxId: fallbackMailboxId.trim(), emailId: ref } : null;
}

// ---------------------------------------------------------------------------------------------
// The "email" channel adapter
// ---------------------------------------------------------------------------------------------

export interface SalesforgeEmailAdapterOptions {
  client?: SalesforgeClient;
  /**
   * The Salesforge sequence a FIRST email enrols into: a fixed id, or one looked up per request (the
   * campaign's sequence). Not needed for follow-ups. Missing → the send fails invalid_request.
   */
  sequenceId: string | ((req: SendRequest) => string | null | undefined | Promise<string | null | undefined>);
  /** What a contact already in another sequence gets: "skip" (default: it is not enrolled, the send fails) or "move". */
  enrollAction?: "skip" | "move";
  /** Contact pages (100 each) findByReference may read before answering "can't tell" (default 20). */
  findMaxPages?: number;
}

function headerValue(headers: Record<string, string> | undefined, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(headers ?? {})) if (k.toLowerCase() === want) return v;
  return undefined;
}

/** The one-click unsubscribe headers every email must carry (compliance S3, M1; RFC 8058). */
function unsubscribeHeaders(req: SendRequest, operation: string): { listUnsubscribe: string; listUnsubscribePost: string } {
  const listUnsubscribe = headerValue(req.headers, "List-Unsubscribe")?.trim();
  const listUnsubscribePost = headerValue(req.headers, "List-Unsubscribe-Post")?.trim();
  // https, except a local stack's own http URL (127.0.0.1/localhost), which never reaches a real inbox
  const link = /<(https?:\/\/[^>]+)>/i.exec(listUnsubscribe ?? "")?.[1];
  if (!link || (!link.toLowerCase().startsWith("https://") && !isLocalUrl(link))) {
    throw invalid(operation, "List-Unsubscribe with an https URL is required on every email");
  }
  if (listUnsubscribePost !== ONE_CLICK) throw invalid(operation, `List-Unsubscribe-Post must be "${ONE_CLICK}"`);
  return { listUnsubscribe: listUnsubscribe!, listUnsubscribePost };
}

export function salesforgeEmailAdapter(opts: SalesforgeEmailAdapterOptions): ChannelAdapter {
  let client = opts.client;
  const sf = () => (client ??= salesforgeFromEnv());
  const ctxOf = (req: SendRequest): ProviderCallContext => ({ leadId: req.leadId, clientId: req.clientId, signal: req.signal });

  async function sequenceFor(req: SendRequest): Promise<string | null> {
    const v = typeof opts.sequenceId === "function" ? await opts.sequenceId(req) : opts.sequenceId;
    return v?.trim() || null;
  }

  const queued = (sequenceId: string, contactId: string): SendResult => ({
    provider: "salesforge",
    providerMessageId: `enrol:${sequenceId}:${contactId}`,
    status: "queued",
    costCents: 0,
    threadRef: null,
  });

  /** Looks for a contact by id or email over at most findMaxPages pages. complete: every page was read. */
  async function scanContacts(
    match: (c: SalesforgeContact) => boolean,
    ctx: ProviderCallContext,
    notInSequenceId?: string,
  ): Promise<{ found: SalesforgeContact | null; complete: boolean }> {
    const limit = 100;
    for (let page = 0; page < (opts.findMaxPages ?? 20); page++) {
      const { contacts } = await sf().listContacts({ limit, offset: page * limit, notInSequenceId }, ctx);
      const found = contacts.find(match);
      if (found) return { found, complete: true };
      if (contacts.length < limit) return { found: null, complete: true };
    }
    return { found: null, complete: false };
  }

  return {
    provider: "salesforge",
    channel: "email",

    async send(req) {
      const ctx = ctxOf(req);
      const { listUnsubscribe, listUnsubscribePost } = unsubscribeHeaders(req, req.threadRef ? "emails.reply" : "contacts.upsert");
      if (!req.body.trim()) throw invalid("contacts.upsert", "empty email body");

      if (req.threadRef) {
        const thread = parseSalesforgeThreadRef(req.threadRef, req.sender.providerAccountId);
        if (!thread) throw invalid("emails.reply", "the follow-up's threadRef names no mailbox, and the sender has no Salesforge mailbox id");
        const { id } = await sf().replyToEmail(thread.mailboxId, thread.emailId, {
          content: req.body,
          ...(req.subject?.trim() ? { subject: req.subject.trim() } : {}),
          headers: { "List-Unsubscribe": listUnsubscribe, "List-Unsubscribe-Post": listUnsubscribePost },
        }, ctx);
        return {
          provider: "salesforge",
          providerMessageId: id ?? `reply:${thread.emailId}:${req.sendId}`,
          status: "accepted",
          costCents: 0,
          threadRef: req.threadRef,
        };
      }

      const email = req.recipient.email?.trim();
      if (!email) throw invalid("contacts.upsert", "the recipient has no email address");
      if (!req.subject?.trim()) throw invalid("contacts.upsert", "a first email needs a subject");
      const sequenceId = await sequenceFor(req);
      if (!sequenceId) throw invalid("enrollments.preflight", "no Salesforge sequence for this send (SalesforgeEmailAdapterOptions.sequenceId)");

      const contact = await sf().upsertContact({
        // Salesforge requires a first name; the email's words are ours ({{aos_body}}), so a stand-in is harmless.
        firstName: req.recipient.firstName?.trim() || email.split("@")[0],
        lastName: req.recipient.lastName?.trim() || undefined,
        email,
        company: req.recipient.company?.trim() || undefined,
        position: req.recipient.title?.trim() || undefined,
        customVars: {
          [SALESFORGE_VARS.subject]: req.subject.trim(),
          [SALESFORGE_VARS.body]: req.body,
          [SALESFORGE_VARS.listUnsubscribe]: listUnsubscribe,
          [SALESFORGE_VARS.sendId]: req.sendId,
        },
      }, ctx);

      const preflight = await sf().preflightEnrollment(sequenceId, [contact.id], ctx);
      const action = opts.enrollAction ?? "skip";
      // Already in this sequence: the email is (or was) on its way; enrolling again is a no-op.
      if (preflight.alreadyInTargetCount > 0 && preflight.automaticEnrollmentCount === 0 && preflight.decisionRequiredCount === 0) {
        return queued(sequenceId, contact.id);
      }
      if (preflight.automaticEnrollmentCount === 0 && !(action === "move" && preflight.decisionRequiredCount > 0)) {
        throw invalid("enrollments.confirm", preflight.decisionRequiredCount > 0
          ? "the contact is in another Salesforge sequence; it would need to be moved (enrollAction \"move\")"
          : "Salesforge found no contact to enrol");
      }
      await sf().confirmEnrollment(sequenceId, preflight.preflightId, action, ctx);
      return queued(sequenceId, contact.id);
    },

    async findByReference(sendId, req) {
      // A reply leaves no reference of ours that Salesforge reports back.
      if (req.threadRef) return undefined;
      const email = req.recipient.email?.trim();
      if (!email) return null;
      const sequenceId = await sequenceFor(req);
      if (!sequenceId) return undefined;
      const ctx = ctxOf(req);
      const wanted = normalizeEmail(email);
      const byEmail = await scanContacts((c) => !!c.email && normalizeEmail(c.email) === wanted, ctx);
      if (!byEmail.found) return byEmail.complete ? null : undefined;
      // Upserted for another send: this one never reached Salesforge.
      if (byEmail.found.customVars[SALESFORGE_VARS.sendId] !== sendId) return null;
      // Upserted for this send; enrolled unless it is still listed as not in the sequence.
      const notEnrolled = await scanContacts((c) => c.id === byEmail.found!.id, ctx, sequenceId);
      if (notEnrolled.found) return null;
      return notEnrolled.complete ? queued(sequenceId, byEmail.found.id) : undefined;
    },
  };
}
