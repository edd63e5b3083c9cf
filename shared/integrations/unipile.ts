// Unipile (LinkedIn through a connected account, API v1; providers.md §7) client and the "linkedin"
// channel adapter. Base https://{DSN}/api/v1 (UNIPILE_BASE_URL), header X-API-KEY. A LinkedIn step is
// paced like a person: a profile view, then an invitation (note ≤ 300 characters), then messages in a
// chat once the invitation is accepted (a new_relation webhook, or polling listRelations).
//
// Starting a chat and sending a message are multipart/form-data calls. providerFetch sends JSON, so
// those calls go through a spec whose fetch (multipartFetch) turns the JSON-encoded fields back into
// form fields; everything else (timeouts, the shared limit, provider_calls rows) stays providerFetch's.
//
// Invitations and messages are attempted once per call: a retried POST after a timeout could invite or
// message twice. 429 and 500 (how Unipile reports LinkedIn's limits) come back as retryable errors and
// the dispatcher decides when to try again. Reads (profiles, lists) are retried as usual.
import { z } from "zod";
import type { Redis } from "@upstash/redis";
import { readEnv } from "../config/env.ts";
import { PROVIDERS } from "../config/providers.ts";
import type { ChannelAdapter, SendRequest, SendResult } from "../channels/types.ts";
import {
  isLocalUrl,
  lenient,
  linkedinKey,
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

/** LinkedIn's limit on an invitation note for paid accounts (free accounts: 200). */
/** An environment variable, or undefined when unset or blank. */
function envValue(name: string): string | undefined {
  return readEnv(name)?.trim() || undefined;
}

export const LINKEDIN_NOTE_MAX_CHARS = 300;

export interface UnipileConfig {
  apiKey?: string;
  /** https://{DSN}/api/v1, e.g. https://api8.unipile.com:13851/api/v1 */
  baseUrl?: string;
  /** Default 60 calls/min shared (UNIPILE_RATE_LIMIT overrides); LinkedIn's own pacing is the scheduler's. */
  rateLimit?: RateLimitSpec | false;
  retry?: RetrySpec;
  timeoutMs?: number;
  redis?: Redis | null;
  record?: RecordCall;
  sql?: SqlTag;
  fetch?: typeof fetch;
}

export interface UnipileProfile {
  /** LinkedIn's member id (ACoAA…): what invitations and chats need. */
  providerId: string;
  publicIdentifier: string | null;
  firstName: string | null;
  lastName: string | null;
  headline: string | null;
  /** FIRST_DEGREE, SECOND_DEGREE, THIRD_DEGREE, OUT_OF_NETWORK */
  networkDistance: string | null;
}

export interface UnipileRelation {
  providerId: string;
  publicIdentifier: string | null;
  firstName: string | null;
  lastName: string | null;
  createdAt: string | null;
}

export interface UnipileChat {
  id: string;
  accountId: string | null;
  attendeeProviderId: string | null;
  timestamp: string | null;
  unreadCount: number | null;
}

export interface UnipileMessage {
  id: string;
  chatId: string | null;
  text: string | null;
  senderId: string | null;
  timestamp: string | null;
  /** True when the connected account sent it. */
  isSender: boolean;
}

export interface UnipilePage<T> {
  items: T[];
  /** Pass back for the next page; null at the end. */
  cursor: string | null;
}

export interface UnipileListOptions {
  limit?: number;
  cursor?: string | null;
}

export interface UnipileClient {
  /** GET /users/{identifier}?account_id: identifier is a public slug or a provider id. null when LinkedIn has no such member. */
  getProfile(accountId: string, identifier: string, ctx?: ProviderCallContext): Promise<UnipileProfile | null>;
  /** POST /users/invite. A note over 300 characters is refused before any I/O. */
  sendInvitation(accountId: string, providerId: string, message?: string | null, ctx?: ProviderCallContext): Promise<{ invitationId: string }>;
  /** POST /chats (multipart): the first message to attendees, in a new or their existing chat. */
  startChat(accountId: string, attendeeProviderIds: string[], text: string, ctx?: ProviderCallContext): Promise<{ chatId: string; messageId: string | null }>;
  /** POST /chats/{chat_id}/messages (multipart). */
  sendMessage(chatId: string, text: string, ctx?: ProviderCallContext): Promise<{ messageId: string | null }>;
  /** GET /users/relations: 1st-degree connections, newest first. */
  listRelations(accountId: string, opts?: UnipileListOptions, ctx?: ProviderCallContext): Promise<UnipilePage<UnipileRelation>>;
  listChats(accountId: string, opts?: UnipileListOptions, ctx?: ProviderCallContext): Promise<UnipilePage<UnipileChat>>;
  listChatMessages(chatId: string, opts?: UnipileListOptions, ctx?: ProviderCallContext): Promise<UnipilePage<UnipileMessage>>;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Characters as LinkedIn counts them (code points, so an emoji is one). */
export function linkedinNoteLength(text: string): number {
  return Array.from(text).length;
}

/**
 * The identifier Unipile's profile lookup takes, from a profile URL: "https://www.linkedin.com/in/Jane-Doe-123/"
 * → "jane-doe-123". A bare slug or provider id is passed through. null when there is nothing usable.
 */
export function unipileIdentifier(linkedinUrlOrId: string | null | undefined): string | null {
  const v = (linkedinUrlOrId ?? "").trim();
  if (!v) return null;
  if (/linkedin\.com/i.test(v)) {
    const key = linkedinKey(v);
    if (!key) return null;
    return decodeURIComponent(key.slice(key.lastIndexOf("/") + 1));
  }
  return /^[A-Za-z0-9_\-%]+$/.test(v) ? v : null;
}

/**
 * providerFetch JSON-encodes the body; Unipile's chat endpoints take multipart/form-data. Arrays become
 * repeated fields (attendees_ids); the boundary content-type is left to FormData.
 */
function multipartFetch(base: typeof fetch): typeof fetch {
  return (input: RequestInfo | URL, init?: RequestInit) => {
    if (typeof init?.body !== "string") return base(input, init);
    const fields = JSON.parse(init.body) as Record<string, unknown>;
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) {
      for (const item of Array.isArray(v) ? v : [v]) {
        if (item !== undefined && item !== null) form.append(k, String(item));
      }
    }
    const headers = new Headers(init.headers);
    headers.delete("content-type");
    return base(input, { ...init, headers, body: form });
  };
}

const nextCursor = z.unknown().optional().transform((v) => (typeof v === "string" && v !== "" ? v : null));

const ProfileWire = z.object({
  provider_id: z.string().min(1),
  public_identifier: lenient.string,
  first_name: lenient.string,
  last_name: lenient.string,
  headline: lenient.string,
  network_distance: lenient.string,
}).transform((p): UnipileProfile => ({
  providerId: p.provider_id, publicIdentifier: p.public_identifier, firstName: p.first_name, lastName: p.last_name,
  headline: p.headline, networkDistance: p.network_distance,
}));

const RelationWire = z.object({
  member_id: z.string().min(1),
  public_identifier: lenient.string,
  first_name: lenient.string,
  last_name: lenient.string,
  created_at: z.unknown().optional(),
}).transform((r): UnipileRelation => ({
  providerId: r.member_id, publicIdentifier: r.public_identifier, firstName: r.first_name, lastName: r.last_name,
  createdAt: typeof r.created_at === "string" ? r.created_at : typeof r.created_at === "number" ? new Date(r.created_at).toISOString() : null,
}));

const ChatWire = z.object({
  id: z.string().min(1),
  account_id: lenient.string,
  attendee_provider_id: lenient.string,
  timestamp: lenient.string,
  unread_count: lenient.number,
}).transform((c): UnipileChat => ({
  id: c.id, accountId: c.account_id, attendeeProviderId: c.attendee_provider_id, timestamp: c.timestamp, unreadCount: c.unread_count,
}));

const MessageWire = z.object({
  id: z.string().min(1),
  chat_id: lenient.string,
  text: lenient.string,
  sender_id: lenient.string,
  timestamp: lenient.string,
  is_sender: z.unknown().optional(),
}).transform((m): UnipileMessage => ({
  id: m.id, chatId: m.chat_id, text: m.text, senderId: m.sender_id, timestamp: m.timestamp,
  isSender: m.is_sender === true || m.is_sender === 1,
}));

function pageOf<T>(item: z.ZodType<T>) {
  return z.object({ items: tolerantArray(item), cursor: nextCursor }).transform((p): UnipilePage<T> => ({ items: p.items, cursor: p.cursor }));
}

function invalid(operation: string, message: string): ProviderError {
  return new ProviderError({ provider: "unipile", operation, code: "invalid_request", retryable: false, message });
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

export function createUnipileClient(config: UnipileConfig = {}): UnipileClient {
  const baseUrl = config.baseUrl ?? envValue(PROVIDERS.unipile.baseUrl);
  const apiKey = config.apiKey ?? envValue(PROVIDERS.unipile.key) ?? (baseUrl && isLocalUrl(baseUrl) ? "sandbox" : undefined);
  const missing = [!baseUrl && "UNIPILE_BASE_URL (https://{DSN}/api/v1)", !apiKey && "UNIPILE_API_KEY"].filter(Boolean);
  const spec: ProviderSpec = {
    provider: "unipile",
    // There is no default: the DSN is per Unipile account.
    baseUrl: baseUrl ?? "https://unipile.invalid/api/v1",
    headers: { "x-api-key": apiKey ?? "" },
    missingCredentials: missing.length ? `${missing.join(" and ")} not set` : undefined,
    rateLimit: config.rateLimit ?? rateLimitFromEnv("UNIPILE_RATE_LIMIT", { limit: 60, window: "1 m" }),
    retry: config.retry,
    timeoutMs: config.timeoutMs ?? 30_000,
    redis: config.redis,
    record: config.record,
    sql: config.sql,
    fetch: config.fetch,
  };
  const sendSpec: ProviderSpec = { ...spec, retry: { ...config.retry, attempts: 1 } };
  const multipartSpec: ProviderSpec = { ...sendSpec, fetch: multipartFetch(config.fetch ?? ((input, init) => fetch(input, init))) };

  const list = <T>(operation: string, path: string, query: Record<string, string | number | undefined>, item: z.ZodType<T>, ctx?: ProviderCallContext) =>
    providerFetch(spec, { operation, path, query, schema: pageOf(item) }, ctx).then((r) => r.data);

  return {
    async getProfile(accountId, identifier, ctx) {
      if (!accountId.trim() || !identifier.trim()) throw invalid("users.get", "account_id and identifier are required");
      const res = await providerFetch(spec, {
        operation: "users.get",
        path: `/users/${encodeURIComponent(identifier.trim())}`,
        query: { account_id: accountId },
        schema: ProfileWire.nullable(),
        onStatus: { 404: () => null },
      }, ctx);
      return res.data;
    },

    async sendInvitation(accountId, providerId, message, ctx) {
      const note = message?.trim() ? message : undefined;
      if (note !== undefined && linkedinNoteLength(note) > LINKEDIN_NOTE_MAX_CHARS) {
        throw invalid("users.invite", `the invitation note has ${linkedinNoteLength(note)} characters; LinkedIn allows ${LINKEDIN_NOTE_MAX_CHARS}`);
      }
      if (!accountId.trim() || !providerId.trim()) throw invalid("users.invite", "account_id and provider_id are required");
      const res = await providerFetch(sendSpec, {
        operation: "users.invite",
        method: "POST",
        path: "/users/invite",
        body: { account_id: accountId, provider_id: providerId, ...(note !== undefined ? { message: note } : {}) },
        schema: z.object({ invitation_id: z.string().min(1) }),
      }, ctx);
      return { invitationId: res.data.invitation_id };
    },

    async startChat(accountId, attendeeProviderIds, text, ctx) {
      if (!accountId.trim() || !attendeeProviderIds.length || !text.trim()) throw invalid("chats.start", "account_id, attendees and text are required");
      const res = await providerFetch(multipartSpec, {
        operation: "chats.start",
        method: "POST",
        path: "/chats",
        body: { account_id: accountId, text, attendees_ids: attendeeProviderIds },
        schema: z.object({ chat_id: z.string().min(1), message_id: lenient.string }),
      }, ctx);
      return { chatId: res.data.chat_id, messageId: res.data.message_id };
    },

    async sendMessage(chatId, text, ctx) {
      if (!chatId.trim() || !text.trim()) throw invalid("chats.message", "chat_id and text are required");
      const res = await providerFetch(multipartSpec, {
        operation: "chats.message",
        method: "POST",
        path: `/chats/${encodeURIComponent(chatId)}/messages`,
        body: { text },
        schema: z.object({ message_id: lenient.string }),
      }, ctx);
      return { messageId: res.data.message_id };
    },

    listRelations: (accountId, opts = {}, ctx) =>
      list("users.relations", "/users/relations", { account_id: accountId, limit: opts.limit ?? 100, cursor: opts.cursor ?? undefined }, RelationWire, ctx),

    listChats: (accountId, opts = {}, ctx) =>
      list("chats.list", "/chats", { account_id: accountId, limit: opts.limit ?? 50, cursor: opts.cursor ?? undefined }, ChatWire, ctx),

    listChatMessages: (chatId, opts = {}, ctx) =>
      list("chats.messages", `/chats/${encodeURIComponent(chatId)}/messages`, { limit: opts.limit ?? 50, cursor: opts.cursor ?? undefined }, MessageWire, ctx),
  };
}

/** The client configured from UNIPILE_API_KEY and UNIPILE_BASE_URL. */
export function unipileFromEnv(overrides: Partial<UnipileConfig> = {}): UnipileClient {
  return createUnipileClient(overrides);
}

// ---------------------------------------------------------------------------------------------
// The "linkedin" channel adapter
// ---------------------------------------------------------------------------------------------

export interface UnipileLinkedInAdapterOptions {
  client?: UnipileClient;
}

/**
 * Performs req.linkedinAction (default "message") from the sender's Unipile account
 * (sender.providerAccountId):
 *  - profile_view: GET the lead's profile (LinkedIn records a view);
 *  - invitation: the profile (for its provider id), then POST /users/invite with the body as the note;
 *  - message: with req.threadRef (a chat id) a message in that chat, else the profile and POST /chats.
 */
export function unipileLinkedInAdapter(opts: UnipileLinkedInAdapterOptions = {}): ChannelAdapter {
  let client = opts.client;
  const up = () => (client ??= unipileFromEnv());
  const ok = (providerMessageId: string, threadRef: string | null = null): SendResult =>
    ({ provider: "unipile", providerMessageId, status: "sent", costCents: 0, threadRef });

  async function profileOf(req: SendRequest, accountId: string, ctx: ProviderCallContext) {
    const identifier = unipileIdentifier(req.recipient.linkedinUrl);
    if (!identifier) throw invalid("users.get", "the recipient has no LinkedIn profile URL");
    const profile = await up().getProfile(accountId, identifier, ctx);
    if (!profile) throw invalid("users.get", `LinkedIn has no profile "${identifier}"`);
    return profile;
  }

  return {
    provider: "unipile",
    channel: "linkedin",

    async send(req) {
      const action = req.linkedinAction ?? "message";
      const accountId = req.sender.providerAccountId?.trim();
      // Refuse what can never succeed before any I/O (a profile retrieval spends LinkedIn's daily allowance).
      if (action === "invitation" && linkedinNoteLength(req.body.trim()) > LINKEDIN_NOTE_MAX_CHARS) {
        throw invalid("users.invite", `the invitation note has ${linkedinNoteLength(req.body.trim())} characters; LinkedIn allows ${LINKEDIN_NOTE_MAX_CHARS}`);
      }
      if (action === "message" && !req.body.trim()) throw invalid("chats.start", "empty message");
      if (!accountId) throw invalid("users.get", "the sender has no Unipile account id (providerAccountId)");
      const ctx: ProviderCallContext = { leadId: req.leadId, clientId: req.clientId, signal: req.signal };

      if (action === "message" && req.threadRef) {
        const { messageId } = await up().sendMessage(req.threadRef, req.body, ctx);
        return ok(messageId ?? `message:${req.sendId}`, req.threadRef);
      }
      const profile = await profileOf(req, accountId, ctx);
      if (action === "profile_view") return ok(`profile_view:${profile.providerId}`);
      if (action === "invitation") {
        const { invitationId } = await up().sendInvitation(accountId, profile.providerId, req.body.trim() || null, ctx);
        return ok(invitationId);
      }
      const { chatId, messageId } = await up().startChat(accountId, [profile.providerId], req.body, ctx);
      return ok(messageId ?? `message:${req.sendId}`, chatId);
    },

    async findByReference(_sendId, req) {
      const action = req.linkedinAction ?? "message";
      // Viewing a profile again is harmless, so "not found" (safe to redo) is the useful answer.
      if (action === "profile_view") return null;
      // A message in a known chat: look for ours among the chat's latest messages.
      if (action === "message" && req.threadRef) {
        const page = await up().listChatMessages(req.threadRef, { limit: 50 }, { leadId: req.leadId, clientId: req.clientId, signal: req.signal });
        const mine = page.items.find((m) => m.isSender && m.text === req.body);
        return mine ? ok(mine.id, req.threadRef) : null;
      }
      // Invitations and first messages carry no reference of ours: Unipile can't tell.
      return undefined;
    },
  };
}
