// Unipile (LinkedIn, API v1) sandbox (providers.md §7): profiles, invitations, relations, chats and
// messages on Unipile's paths under /api/v1, X-API-KEY auth, multipart chat endpoints and Unipile's
// {status, type, title, detail} error envelope. Stateful: an invitation is accepted — or not — on a
// seeded schedule (the same member always answers the same way), which adds a relation and posts a
// `new_relation` webhook to opts.webhookUrl with the Unipile-Auth secret header (Unipile v1 does not
// sign; the receiver compares the header). Deliveries happen after the response; failures are logged.
// Messages need a relation (LinkedIn's rule for non-InMail messages).
// Mount at /sandbox/unipile; UNIPILE_BASE_URL=<that>/api/v1.
//
// Magic values in the profile slug: "nomatch" → 404; "ratelimit" → 429 once per endpoint;
// "servererror" → 500 once per endpoint; "accept" → always accepts; "decline" → never accepts.
import { Hono } from "hono";
import type { Context } from "hono";
import { z } from "zod";
import { log } from "../../shared/observability/log.ts";
import { delay, failureNow, FIRST_NAMES, fraction, LAST_NAMES, magicIn, OnceOnly, seeded, TITLES } from "./seeded.ts";

export interface UnipileSandboxOptions {
  /** When set, only this X-API-KEY is accepted; otherwise any non-empty key. */
  apiKey?: string;
  webhookUrl?: string;
  /** Sent as the Unipile-Auth header on every delivery. */
  webhookSecret?: string;
  /** Extra headers on deliveries, as Unipile's webhook `headers` [{key, value}] (add Content-Type here if wanted). */
  webhookHeaders?: Array<{ key: string; value: string }>;
  /** Fraction of invitations accepted (default 0.5). */
  acceptRate?: number;
  /** Acceptance delay range (default 1–5 s). */
  acceptDelayMs?: [number, number];
  /** Retry-After on simulated 429s (default 1 s). */
  retryAfterSeconds?: number;
  fetch?: typeof fetch;
}

interface Profile {
  provider_id: string;
  public_identifier: string;
  first_name: string;
  last_name: string;
  headline: string;
}

export interface UnipileSandboxInvitation {
  invitation_id: string;
  account_id: string;
  provider_id: string;
  message: string | null;
  status: "pending" | "accepted";
  sent_at: string;
}

export interface UnipileSandboxMessage {
  id: string;
  chat_id: string;
  account_id: string;
  text: string;
  sender_id: string;
  is_sender: boolean;
  timestamp: string;
}

export interface UnipileSandboxChat {
  id: string;
  account_id: string;
  attendee_provider_id: string;
  created_at: string;
}

export interface UnipileSandboxDelivery {
  event: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  httpStatus: number | null;
  error: string | null;
}

export interface UnipileSandboxState {
  invitations(): UnipileSandboxInvitation[];
  /** Provider ids of an account's relations. */
  relations(accountId: string): string[];
  chats(): UnipileSandboxChat[];
  messages(chatId?: string): UnipileSandboxMessage[];
  /** GET /users/{id} calls served (each is a profile view on LinkedIn). */
  profileViews(): Array<{ account_id: string; identifier: string }>;
  deliveries(): UnipileSandboxDelivery[];
  /** Accepts an invitation now (tests), as the schedule would. */
  accept(invitationId: string): Promise<void>;
  settled(): Promise<void>;
}

/** The member behind a public slug, the same every run. */
export function unipileSandboxProfile(slug: string): Profile {
  const s = slug.toLowerCase();
  const r = seeded(`unipile:profile:${s}`);
  const [title] = r.pick(TITLES);
  return {
    provider_id: `ACoAA${r.hex(32).toUpperCase()}`,
    public_identifier: s,
    first_name: r.pick(FIRST_NAMES),
    last_name: r.pick(LAST_NAMES),
    headline: title,
  };
}

export function createUnipileSandbox(opts: UnipileSandboxOptions = {}): { app: Hono; state: UnipileSandboxState } {
  const once = new OnceOnly();
  const profilesById = new Map<string, Profile>();
  const invitations = new Map<string, UnipileSandboxInvitation>();
  const relations = new Map<string, Array<{ provider_id: string; created_at: string }>>();
  const chats = new Map<string, UnipileSandboxChat>();
  const messages: UnipileSandboxMessage[] = [];
  const views: Array<{ account_id: string; identifier: string }> = [];
  const deliveries: UnipileSandboxDelivery[] = [];
  const pending = new Set<Promise<void>>();
  const post = opts.fetch ?? fetch;
  let counter = 0;

  const nextId = (kind: string) => seeded(`unipile:${kind}:${++counter}`).hex(22);

  function later(ms: number, work: () => Promise<void>) {
    const p = delay(ms).then(work).catch((err) => log("warn", "unipile sandbox: scheduled work failed", { error: String(err) }))
      .finally(() => pending.delete(p));
    pending.add(p);
  }

  async function deliver(event: Record<string, unknown>) {
    if (!opts.webhookUrl) return;
    // API-created Unipile webhooks send only the headers configured on them (no Content-Type by default).
    const headers: Record<string, string> = {};
    if (opts.webhookSecret) headers["Unipile-Auth"] = opts.webhookSecret;
    for (const h of opts.webhookHeaders ?? []) headers[h.key] = h.value;
    const body = JSON.stringify(event);
    const record: UnipileSandboxDelivery = { event: String(event.event), url: opts.webhookUrl, headers, body, httpStatus: null, error: null };
    deliveries.push(record);
    try {
      const res = await post(opts.webhookUrl, { method: "POST", headers, body });
      record.httpStatus = res.status;
      await res.body?.cancel();
      if (!res.ok) log("warn", "unipile sandbox: webhook refused", { status: res.status });
    } catch (err) {
      record.error = err instanceof Error ? err.message : String(err);
      log("warn", "unipile sandbox: webhook delivery failed", { error: record.error });
    }
  }

  async function acceptNow(inv: UnipileSandboxInvitation) {
    if (inv.status !== "pending") return;
    inv.status = "accepted";
    const list = relations.get(inv.account_id) ?? [];
    if (!list.some((r) => r.provider_id === inv.provider_id)) list.unshift({ provider_id: inv.provider_id, created_at: new Date().toISOString() });
    relations.set(inv.account_id, list);
    const p = profilesById.get(inv.provider_id)!;
    await deliver({
      event: "new_relation",
      account_id: inv.account_id,
      account_type: "LINKEDIN",
      webhook_name: "aos-users",
      user_full_name: `${p.first_name} ${p.last_name}`,
      user_provider_id: p.provider_id,
      user_public_identifier: p.public_identifier,
      user_profile_url: `https://www.linkedin.com/in/${p.public_identifier}`,
      user_picture_url: `https://media.licdn.example/${p.provider_id}.jpg`,
    });
  }

  const state: UnipileSandboxState = {
    invitations: () => [...invitations.values()].map((i) => ({ ...i })),
    relations: (accountId) => (relations.get(accountId) ?? []).map((r) => r.provider_id),
    chats: () => [...chats.values()].map((c) => ({ ...c })),
    messages: (chatId) => messages.filter((m) => !chatId || m.chat_id === chatId).map((m) => ({ ...m })),
    profileViews: () => [...views],
    deliveries: () => [...deliveries],
    accept: async (invitationId) => {
      const inv = invitations.get(invitationId);
      if (inv) await acceptNow(inv);
    },
    settled: async () => {
      while (pending.size) await Promise.allSettled([...pending]);
    },
  };

  const problem = (c: Context, status: 400 | 401 | 404 | 422 | 429 | 500, type: string, title: string, detail?: string) =>
    c.json({ status, type, title, ...(detail ? { detail } : {}) }, status);

  function simulate(c: Context, value: string, scope: string): Response | null {
    const f = failureNow(value, once, scope);
    if (f === "ratelimit") {
      c.header("retry-after", String(opts.retryAfterSeconds ?? 1));
      return problem(c, 429, "errors/too_many_requests", "Too many requests", "The provider's rate limit was reached.");
    }
    if (f === "servererror") return problem(c, 500, "errors/unexpected_error", "Unexpected error", "Something went wrong with LinkedIn.");
    return null;
  }

  function page<T>(c: Context, items: T[], defaultLimit: number) {
    const limit = Math.min(250, Math.max(1, Number(c.req.query("limit") ?? defaultLimit) || defaultLimit));
    const start = Math.max(0, Number(c.req.query("cursor") ?? 0) || 0);
    const slice = items.slice(start, start + limit);
    return { items: slice, cursor: start + limit < items.length ? String(start + limit) : null };
  }

  const app = new Hono();

  app.use("*", async (c, next) => {
    const key = c.req.header("x-api-key")?.trim();
    if (!key || (opts.apiKey && key !== opts.apiKey)) return problem(c, 401, "errors/missing_credentials", "Missing credentials", "Invalid X-API-KEY.");
    await next();
  });

  const accountOf = (c: Context) => c.req.query("account_id")?.trim() ?? "";

  app.get("/api/v1/users/relations", (c) => {
    const accountId = accountOf(c);
    if (!accountId) return problem(c, 400, "errors/invalid_parameters", "Invalid parameters", "account_id is required.");
    const items = (relations.get(accountId) ?? []).map((r) => {
      const p = profilesById.get(r.provider_id)!;
      return {
        object: "UserRelation", member_id: p.provider_id, public_identifier: p.public_identifier, first_name: p.first_name,
        last_name: p.last_name, headline: p.headline, created_at: Date.parse(r.created_at),
        public_profile_url: `https://www.linkedin.com/in/${p.public_identifier}`,
      };
    });
    return c.json({ object: "UserRelationsList", ...page(c, items, 100) });
  });

  app.post("/api/v1/users/invite", async (c) => {
    let raw: unknown;
    try {
      raw = await c.req.json();
    } catch {
      return problem(c, 400, "errors/invalid_parameters", "Invalid parameters", "Body is not JSON.");
    }
    const parsed = z.object({ account_id: z.string().min(1), provider_id: z.string().min(1), message: z.string().optional() }).strict().safeParse(raw);
    if (!parsed.success) return problem(c, 400, "errors/invalid_parameters", "Invalid parameters", parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    const { account_id, provider_id, message } = parsed.data;
    const profile = profilesById.get(provider_id);
    if (!profile) return problem(c, 422, "errors/invalid_recipient", "Invalid recipient", "The recipient cannot be reached.");
    const failure = simulate(c, profile.public_identifier, "invite");
    if (failure) return failure;
    if (message !== undefined && Array.from(message).length > 300) {
      return problem(c, 422, "errors/invalid_parameters", "Invalid parameters", "The invitation message is longer than 300 characters.");
    }
    if ((relations.get(account_id) ?? []).some((r) => r.provider_id === provider_id)) {
      return problem(c, 422, "errors/already_connected", "Already connected", "You are already connected with this member.");
    }
    if ([...invitations.values()].some((i) => i.account_id === account_id && i.provider_id === provider_id && i.status === "pending")) {
      return problem(c, 422, "errors/already_invited_recently", "Already invited recently", "An invitation to this member is pending.");
    }
    const inv: UnipileSandboxInvitation = {
      invitation_id: nextId("invitation"), account_id, provider_id, message: message ?? null, status: "pending", sent_at: new Date().toISOString(),
    };
    invitations.set(inv.invitation_id, inv);
    const slug = profile.public_identifier;
    const accepts = /accept/.test(slug) || (!/decline/.test(slug) && fraction(`unipile:accepts:${provider_id}`) < (opts.acceptRate ?? 0.5));
    if (accepts) {
      const [lo, hi] = opts.acceptDelayMs ?? [1000, 5000];
      later(lo + Math.round(fraction(`unipile:accept-delay:${provider_id}`) * (hi - lo)), () => acceptNow(inv));
    }
    return c.json({ object: "UserInvitationSent", invitation_id: inv.invitation_id }, 201);
  });

  app.get("/api/v1/users/:identifier", (c) => {
    const accountId = accountOf(c);
    if (!accountId) return problem(c, 400, "errors/invalid_parameters", "Invalid parameters", "account_id is required.");
    const identifier = decodeURIComponent(c.req.param("identifier"));
    const failure = simulate(c, identifier, "profile");
    if (failure) return failure;
    if (magicIn(identifier) === "nomatch") return problem(c, 404, "errors/resource_not_found", "Resource not found", "User not found.");
    const profile = profilesById.get(identifier) ?? unipileSandboxProfile(identifier);
    profilesById.set(profile.provider_id, profile);
    views.push({ account_id: accountId, identifier });
    const connected = (relations.get(accountId) ?? []).some((r) => r.provider_id === profile.provider_id);
    return c.json({
      object: "UserProfile",
      provider: "LINKEDIN",
      ...profile,
      location: "Sydney, New South Wales, Australia",
      network_distance: connected ? "FIRST_DEGREE" : "SECOND_DEGREE",
      is_relationship: connected,
    });
  });

  async function form(c: Context): Promise<Record<string, string | string[]> | null> {
    if (!(c.req.header("content-type") ?? "").startsWith("multipart/form-data")) return null;
    const body = await c.req.parseBody({ all: true });
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(body)) {
      out[k] = Array.isArray(v) ? v.map(String) : String(v);
    }
    return out;
  }

  function addMessage(chat: UnipileSandboxChat, text: string): UnipileSandboxMessage {
    const m: UnipileSandboxMessage = {
      id: nextId("message"), chat_id: chat.id, account_id: chat.account_id, text, sender_id: chat.account_id, is_sender: true,
      timestamp: new Date().toISOString(),
    };
    messages.push(m);
    return m;
  }

  app.post("/api/v1/chats", async (c) => {
    const fields = await form(c);
    if (!fields) return problem(c, 400, "errors/invalid_parameters", "Invalid parameters", "Expected multipart/form-data.");
    const accountId = typeof fields.account_id === "string" ? fields.account_id : "";
    const text = typeof fields.text === "string" ? fields.text : "";
    const attendees = ([] as string[]).concat(fields.attendees_ids ?? []);
    const unknown = Object.keys(fields).filter((k) => !["account_id", "text", "attendees_ids", "title", "inmail"].includes(k));
    if (!accountId || !text || attendees.length !== 1 || unknown.length) {
      return problem(c, 400, "errors/invalid_parameters", "Invalid parameters", "account_id, text and one attendees_ids are required; unknown fields: " + unknown.join(","));
    }
    const attendee = attendees[0];
    const profile = profilesById.get(attendee);
    if (!profile) return problem(c, 422, "errors/invalid_recipient", "Invalid recipient", "Unknown attendee.");
    const failure = simulate(c, profile.public_identifier, "chat");
    if (failure) return failure;
    if (fields.inmail !== "true" && !(relations.get(accountId) ?? []).some((r) => r.provider_id === attendee)) {
      return problem(c, 422, "errors/no_connection_with_recipient", "No connection with recipient", "You can only message your connections.");
    }
    let chat = [...chats.values()].find((ch) => ch.account_id === accountId && ch.attendee_provider_id === attendee);
    if (!chat) {
      chat = { id: nextId("chat"), account_id: accountId, attendee_provider_id: attendee, created_at: new Date().toISOString() };
      chats.set(chat.id, chat);
    }
    const m = addMessage(chat, text);
    return c.json({ object: "ChatStarted", chat_id: chat.id, message_id: m.id }, 201);
  });

  app.post("/api/v1/chats/:chatId/messages", async (c) => {
    const chat = chats.get(c.req.param("chatId"));
    if (!chat) return problem(c, 404, "errors/resource_not_found", "Resource not found", "Chat not found.");
    const fields = await form(c);
    const text = fields && typeof fields.text === "string" ? fields.text : "";
    if (!text) return problem(c, 400, "errors/invalid_parameters", "Invalid parameters", "text is required (multipart/form-data).");
    const m = addMessage(chat, text);
    return c.json({ object: "MessageSent", message_id: m.id }, 201);
  });

  app.get("/api/v1/chats", (c) => {
    const accountId = accountOf(c);
    const items = [...chats.values()].filter((ch) => !accountId || ch.account_id === accountId).reverse().map((ch) => ({
      object: "Chat", id: ch.id, account_id: ch.account_id, account_type: "LINKEDIN", provider_id: `chat-${ch.id}`,
      attendee_provider_id: ch.attendee_provider_id, timestamp: messages.filter((m) => m.chat_id === ch.id).at(-1)?.timestamp ?? ch.created_at,
      unread_count: 0, type: 0,
    }));
    return c.json({ object: "ChatList", ...page(c, items, 50) });
  });

  app.get("/api/v1/chats/:chatId/messages", (c) => {
    const chat = chats.get(c.req.param("chatId"));
    if (!chat) return problem(c, 404, "errors/resource_not_found", "Resource not found", "Chat not found.");
    const items = messages.filter((m) => m.chat_id === chat.id).reverse().map((m) => ({ object: "ChatMessage", provider_id: `msg-${m.id}`, ...m, seen: 0 }));
    return c.json({ object: "MessageList", ...page(c, items, 50) });
  });

  app.all("*", (c) => problem(c, 404, "errors/resource_not_found", "Resource not found"));
  return { app, state };
}
