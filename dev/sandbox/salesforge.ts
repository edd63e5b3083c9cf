// Salesforge sandbox (providers.md §8): the core API under /public/v2 and the multichannel sequence API
// under /public/v2/multichannel (the CLI's base) and /public/multichannel (the MCP server's base), with
// the raw API key in Authorization (a "Bearer " prefix is refused, as the real API would not know it).
// It accepts exactly the bodies shared/integrations/salesforge.ts documents (unknown fields → 400).
//
// Stateful: contacts (upserted by email or LinkedIn URL), enrolments, preflights (15 minutes), emails and
// threads, do-not-contact entries, webhooks. A sequence is one email node whose subject and body are the
// contact's {{aos_subject}} / {{aos_body}}; enrolling "sends" it after a seeded delay from one of the
// sandbox mailboxes, with List-Unsubscribe from {{aos_list_unsubscribe}} and One-Click. Replies
// (POST …/emails/{id}/reply, answered 204 as documented) join the same thread.
// Webhooks, after the response, to opts.webhookUrl (put the secret in its path: Salesforge does not sign)
// and to webhooks registered through the API: email_sent for every email; email_bounced for some (seeded
// opts.bounceRate, or "bounce" in the address); email_replied when "reply" is in the address. JSON bodies;
// the payload shape is ours (Salesforge publishes none): {type, eventId, occurredAt, workspaceId,
// sequenceId, mailboxId, emailId, threadId, subject, contact: {id, email, firstName, lastName, customVars}}.
// Magic values in a contact's email: "ratelimit" → 429 once, "servererror" → 500 once (upsert).
// Mount at /sandbox/salesforge; SALESFORGE_BASE_URL=<that>/public/v2.
import { Hono } from "hono";
import type { Context } from "hono";
import { z } from "zod";
import { log } from "../../shared/observability/log.ts";
import { delay, failureNow, fraction, OnceOnly, seeded } from "./seeded.ts";

export interface SalesforgeSandboxOptions {
  /** When set, only this Authorization value is accepted; otherwise any non-empty key without "Bearer". */
  apiKey?: string;
  /** When set, other workspace ids answer 404. */
  workspaceId?: string;
  /** The mailboxes sequences send from (default one). */
  mailboxes?: Array<{ id: string; address: string }>;
  /** Receives every event type (the secret token goes in this URL). */
  webhookUrl?: string;
  /** Delay range before a sequence email is sent after enrolment (default 200–2000 ms). */
  sendDelayMs?: [number, number];
  /** Delay range of a bounce or reply after the send (default 200–2000 ms). */
  followDelayMs?: [number, number];
  /** Fraction of sequence emails that bounce (default 0.05). */
  bounceRate?: number;
  fetch?: typeof fetch;
}

export interface SalesforgeSandboxContact {
  id: string;
  firstName: string;
  lastName: string | null;
  email: string | null;
  company: string | null;
  position: string | null;
  linkedinUrl: string | null;
  tags: string[];
  customVars: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

export interface SalesforgeSandboxEmail {
  id: string;
  threadId: string;
  mailboxId: string;
  sequenceId: string | null;
  contactId: string;
  kind: "sequence" | "reply" | "inbound";
  direction: "outbound" | "inbound";
  from: string;
  to: string;
  subject: string;
  content: string;
  /** The headers the email went out with. */
  headers: Record<string, string>;
  inReplyTo: string | null;
  /** The contact's aos_send_id when it was sent. */
  sendId: string | null;
  sentAt: string;
}

export interface SalesforgeSandboxDelivery {
  type: string;
  url: string;
  body: string;
  httpStatus: number | null;
  error: string | null;
}

export interface SalesforgeSandboxState {
  contacts(): SalesforgeSandboxContact[];
  contactByEmail(email: string): SalesforgeSandboxContact | undefined;
  /** Contact ids enrolled in a sequence. */
  enrollments(sequenceId: string): string[];
  emails(): SalesforgeSandboxEmail[];
  /** Reply bodies as received, for wire checks. */
  replies(): Array<{ mailboxId: string; emailId: string; body: unknown }>;
  dncs(): string[];
  deliveries(): SalesforgeSandboxDelivery[];
  /** Every request's Authorization header value. */
  authorizations(): string[];
  settled(): Promise<void>;
}

const Str = z.string().min(1);

const ContactBody = z.object({
  firstName: Str,
  lastName: z.string().optional(),
  email: z.string().email().optional(),
  company: z.string().optional(),
  position: z.string().optional(),
  linkedinUrl: z.string().optional(),
  tags: z.array(z.string()).optional(),
  tagIds: z.array(z.string()).optional(),
  customVars: z.record(Str, Str).optional(),
}).strict().refine((c) => c.email || c.linkedinUrl, { message: "email or linkedinUrl is required" });

const PreflightBody = z.object({
  filters: z.object({ leadIds: z.array(Str).min(1).optional(), tagIds: z.array(Str).optional() }).strict(),
  limit: z.number().int().positive().optional(),
  selectionScope: z.enum(["all", "not_in_sequence", "in_sequence"]).optional(),
}).strict();

const ConfirmBody = z.object({ action: z.enum(["skip", "move"]) }).strict();

const ReplyBody = z.object({
  content: Str,
  subject: z.string().optional(),
  includeHistory: z.boolean().optional(),
  headers: z.record(z.string(), z.string()).optional(),
  ccs: z.array(z.string().email()).optional(),
  bccs: z.array(z.string().email()).optional(),
}).strict();

const DncBody = z.object({ dncs: z.array(Str).min(1).max(1000) }).strict();

const WebhookBody = z.object({
  name: Str,
  url: z.string().url(),
  type: z.enum(["email_sent", "email_opened", "link_clicked", "email_replied", "linkedin_replied", "contact_unsubscribed",
    "email_bounced", "positive_reply", "negative_reply", "label_changed", "dnc_added"]),
  sequenceID: z.string().optional(),
}).strict();

export function createSalesforgeSandbox(opts: SalesforgeSandboxOptions = {}): { app: Hono; state: SalesforgeSandboxState } {
  const once = new OnceOnly();
  const mailboxes = opts.mailboxes?.length ? opts.mailboxes : [{ id: "mbx_sandbox_1", address: "jane@acme-outreach.example" }];
  const contacts = new Map<string, SalesforgeSandboxContact>();
  const enrolled = new Map<string, Set<string>>();
  const preflights = new Map<string, { sequenceId: string; auto: string[]; decision: string[]; expiresAt: number; result?: Record<string, number> }>();
  const emails: SalesforgeSandboxEmail[] = [];
  const replies: Array<{ mailboxId: string; emailId: string; body: unknown }> = [];
  const dncs = new Set<string>();
  const hooks: Array<z.infer<typeof WebhookBody> & { id: string }> = [];
  const deliveries: SalesforgeSandboxDelivery[] = [];
  const authorizations: string[] = [];
  const pending = new Set<Promise<void>>();
  const post = opts.fetch ?? fetch;
  let counter = 0;
  const nextId = (kind: string) => `${kind}_${seeded(`sf:${kind}:${++counter}`).hex(20)}`;

  const state: SalesforgeSandboxState = {
    contacts: () => [...contacts.values()].map((c) => structuredClone(c)),
    contactByEmail: (email) => [...contacts.values()].find((c) => c.email === email.toLowerCase()),
    enrollments: (sequenceId) => [...(enrolled.get(sequenceId) ?? [])],
    emails: () => emails.map((e) => structuredClone(e)),
    replies: () => [...replies],
    dncs: () => [...dncs],
    deliveries: () => [...deliveries],
    authorizations: () => [...authorizations],
    settled: async () => {
      while (pending.size) await Promise.allSettled([...pending]);
    },
  };

  function later(ms: number, work: () => Promise<void>) {
    const p = delay(ms).then(work).catch((err) => log("warn", "salesforge sandbox: scheduled work failed", { error: String(err) }))
      .finally(() => pending.delete(p));
    pending.add(p);
  }

  const between = ([lo, hi]: [number, number], seed: string) => lo + Math.round(fraction(seed) * (hi - lo));

  async function deliver(type: string, workspaceId: string, email: SalesforgeSandboxEmail, extra: Record<string, unknown> = {}) {
    const contact = contacts.get(email.contactId)!;
    const payload = {
      type,
      eventId: `evt_${seeded(`sf:evt:${type}:${email.id}`).hex(20)}`,
      occurredAt: new Date().toISOString(),
      workspaceId,
      sequenceId: email.sequenceId,
      mailboxId: email.mailboxId,
      emailId: email.id,
      threadId: email.threadId,
      subject: email.subject,
      contact: { id: contact.id, email: contact.email, firstName: contact.firstName, lastName: contact.lastName, customVars: { ...contact.customVars, ...(email.sendId ? { aos_send_id: email.sendId } : {}) } },
      ...extra,
    };
    const targets = [
      ...(opts.webhookUrl ? [opts.webhookUrl] : []),
      ...hooks.filter((h) => h.type === type && (!h.sequenceID || h.sequenceID === email.sequenceId)).map((h) => h.url),
    ];
    const body = JSON.stringify(payload);
    for (const url of targets) {
      const record: SalesforgeSandboxDelivery = { type, url, body, httpStatus: null, error: null };
      deliveries.push(record);
      try {
        const res = await post(url, { method: "POST", headers: { "content-type": "application/json" }, body });
        record.httpStatus = res.status;
        await res.body?.cancel();
        if (!res.ok) log("warn", "salesforge sandbox: webhook refused", { type, status: res.status });
      } catch (err) {
        record.error = err instanceof Error ? err.message : String(err);
        log("warn", "salesforge sandbox: webhook delivery failed", { type, error: record.error });
      }
    }
  }

  function unsubscribeHeaders(listUnsubscribe: string | undefined): Record<string, string> {
    return listUnsubscribe ? { "List-Unsubscribe": listUnsubscribe, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" } : {};
  }

  /** The sequence's one email, sent after a seeded delay; then maybe a bounce or a reply. */
  function scheduleSequenceEmail(workspaceId: string, sequenceId: string, contactId: string) {
    later(between(opts.sendDelayMs ?? [200, 2000], `sf:send:${sequenceId}:${contactId}`), async () => {
      const contact = contacts.get(contactId)!;
      if (!enrolled.get(sequenceId)?.has(contactId) || !contact.email) return;
      if (dncs.has(contact.email) || dncs.has(contact.email.split("@")[1])) return;
      const mailbox = mailboxes[seeded(`sf:mailbox:${contactId}`).int(0, mailboxes.length - 1)];
      const vars = contact.customVars;
      const email: SalesforgeSandboxEmail = {
        id: nextId("eml"), threadId: nextId("thr"), mailboxId: mailbox.id, sequenceId, contactId, kind: "sequence", direction: "outbound",
        from: mailbox.address, to: contact.email, subject: vars.aos_subject ?? "", content: vars.aos_body ?? "",
        headers: unsubscribeHeaders(vars.aos_list_unsubscribe), inReplyTo: null, sendId: vars.aos_send_id ?? null, sentAt: new Date().toISOString(),
      };
      emails.push(email);
      await deliver("email_sent", workspaceId, email);
      const bounces = /bounce/i.test(contact.email) || fraction(`sf:bounce:${contact.email}`) < (opts.bounceRate ?? 0.05);
      const follow = opts.followDelayMs ?? [200, 2000];
      if (bounces) {
        later(between(follow, `sf:bounce-delay:${email.id}`), () =>
          deliver("email_bounced", workspaceId, email, { bounceType: "hard", reason: "550 5.1.1 The email account that you tried to reach does not exist" }));
      } else if (/reply/i.test(contact.email)) {
        later(between(follow, `sf:reply-delay:${email.id}`), async () => {
          const inbound: SalesforgeSandboxEmail = {
            ...email, id: nextId("eml"), kind: "inbound", direction: "inbound", from: contact.email!, to: mailbox.address,
            subject: `Re: ${email.subject}`, content: "Thanks — could you tell me more about pricing?", headers: {}, inReplyTo: email.id,
            sentAt: new Date().toISOString(),
          };
          emails.push(inbound);
          await deliver("email_replied", workspaceId, inbound, { replyToEmailId: email.id });
        });
      }
    });
  }

  const fail = (c: Context, status: 400 | 401 | 404 | 409 | 410 | 429 | 500, message: string) => c.json({ message }, status);

  async function body<T>(c: Context, schema: z.ZodType<T>): Promise<{ ok: true; data: T } | { ok: false; res: Response }> {
    let raw: unknown;
    try {
      raw = await c.req.json();
    } catch {
      return { ok: false, res: fail(c, 400, "invalid JSON body") };
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) return { ok: false, res: fail(c, 400, parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")) };
    return { ok: true, data: parsed.data };
  }

  function contactJson(c: SalesforgeSandboxContact) {
    return structuredClone(c);
  }

  // --- core API --------------------------------------------------------------------------------
  const core = new Hono();

  // The raw key in Authorization; a "Bearer " prefix is not Salesforge's scheme.
  const auth = async (c: Context, next: () => Promise<void>) => {
    const key = c.req.header("authorization")?.trim() ?? "";
    authorizations.push(key);
    if (!key || /^bearer\s/i.test(key) || (opts.apiKey && key !== opts.apiKey)) return fail(c, 401, "unauthorized");
    const ws = /\/workspaces\/([^/]+)/.exec(c.req.path)?.[1];
    if (ws && opts.workspaceId && decodeURIComponent(ws) !== opts.workspaceId) return fail(c, 404, "workspace not found");
    await next();
  };
  core.use("*", auth);

  core.get("/me", (c) => c.json({ accountId: "acc_sandbox", apiKeyName: "sandbox" }));

  core.post("/workspaces/:ws/contacts", async (c) => {
    const b = await body(c, ContactBody);
    if (!b.ok) return b.res;
    const input = b.data;
    const failure = failureNow(input.email ?? input.linkedinUrl ?? "", once, "contacts");
    if (failure === "ratelimit") {
      c.header("retry-after", "0");
      return fail(c, 429, "too many requests");
    }
    if (failure === "servererror") return fail(c, 500, "internal server error");
    const email = input.email?.toLowerCase() ?? null;
    const now = new Date().toISOString();
    const existing = [...contacts.values()].find((x) => (email && x.email === email) || (input.linkedinUrl && x.linkedinUrl === input.linkedinUrl));
    const contact: SalesforgeSandboxContact = existing ?? {
      id: nextId("lead"), firstName: input.firstName, lastName: null, email, company: null, position: null, linkedinUrl: null, tags: [],
      customVars: {}, createdAt: now, updatedAt: now,
    };
    Object.assign(contact, {
      firstName: input.firstName,
      lastName: input.lastName ?? contact.lastName,
      email: email ?? contact.email,
      company: input.company ?? contact.company,
      position: input.position ?? contact.position,
      linkedinUrl: input.linkedinUrl ?? contact.linkedinUrl,
      tags: [...new Set([...contact.tags, ...(input.tags ?? [])])],
      customVars: { ...contact.customVars, ...(input.customVars ?? {}) },
      updatedAt: now,
    });
    contacts.set(contact.id, contact);
    return c.json(contactJson(contact), 201);
  });

  core.get("/workspaces/:ws/contacts", (c) => {
    const limit = Math.min(1000, Math.max(1, Number(c.req.query("limit") ?? 10) || 10));
    const offset = Math.max(0, Number(c.req.query("offset") ?? 0) || 0);
    const notIn = c.req.query("not_in_sequence_id");
    const all = [...contacts.values()].filter((x) => !notIn || !enrolled.get(notIn)?.has(x.id));
    return c.json({ data: all.slice(offset, offset + limit).map(contactJson), total: all.length, limit, offset });
  });

  core.get("/workspaces/:ws/contacts/:id", (c) => {
    const contact = contacts.get(c.req.param("id"));
    return contact ? c.json(contactJson(contact)) : fail(c, 404, "contact not found");
  });

  core.post("/workspaces/:ws/mailboxes/:mb/emails/:emailId/reply", async (c) => {
    const b = await body(c, ReplyBody);
    if (!b.ok) return b.res;
    const original = emails.find((e) => e.id === c.req.param("emailId"));
    if (!original || original.mailboxId !== c.req.param("mb")) return fail(c, 404, "email not found in this mailbox");
    replies.push({ mailboxId: c.req.param("mb"), emailId: original.id, body: b.data });
    const contact = contacts.get(original.contactId)!;
    const mailbox = mailboxes.find((m) => m.id === original.mailboxId) ?? mailboxes[0];
    const reply: SalesforgeSandboxEmail = {
      id: nextId("eml"), threadId: original.threadId, mailboxId: original.mailboxId, sequenceId: original.sequenceId, contactId: original.contactId,
      kind: "reply", direction: "outbound", from: mailbox.address, to: contact.email ?? "",
      subject: b.data.subject ?? (original.subject.startsWith("Re: ") ? original.subject : `Re: ${original.subject}`),
      content: b.data.content, headers: { ...(b.data.headers ?? {}) }, inReplyTo: original.id, sendId: contact.customVars.aos_send_id ?? null,
      sentAt: new Date().toISOString(),
    };
    emails.push(reply);
    const ws = decodeURIComponent(c.req.param("ws"));
    later(5, () => deliver("email_sent", ws, reply));
    return c.body(null, 204);
  });

  const threadJson = (threadId: string) => {
    const items = emails.filter((e) => e.threadId === threadId);
    const first = items[0];
    const contact = contacts.get(first.contactId)!;
    const last = items[items.length - 1];
    return {
      id: threadId, mailboxId: first.mailboxId, sequenceId: first.sequenceId, subject: first.subject, snippet: last.content.slice(0, 120),
      contact: { id: contact.id, email: contact.email, firstName: contact.firstName, lastName: contact.lastName },
      lastMessageAt: last.sentAt, emailCount: items.length, isRead: false,
    };
  };

  core.get("/workspaces/:ws/threads", (c) => {
    const limit = Math.min(100, Math.max(1, Number(c.req.query("limit") ?? 10) || 10));
    const offset = Math.max(0, Number(c.req.query("offset") ?? 0) || 0);
    const mailboxIds = c.req.queries("mailbox_ids[]");
    const sequenceIds = c.req.queries("sequence_ids[]");
    const ids = [...new Set(emails.map((e) => e.threadId))].filter((t) => {
      const e = emails.find((x) => x.threadId === t)!;
      return (!mailboxIds?.length || mailboxIds.includes(e.mailboxId)) && (!sequenceIds?.length || (e.sequenceId !== null && sequenceIds.includes(e.sequenceId)));
    });
    return c.json({ data: ids.slice(offset, offset + limit).map(threadJson), total: ids.length });
  });

  core.get("/workspaces/:ws/mailboxes/:mb/threads/:threadId", (c) => {
    const items = emails.filter((e) => e.threadId === c.req.param("threadId") && e.mailboxId === c.req.param("mb"));
    if (!items.length) return fail(c, 404, "thread not found");
    return c.json({
      ...threadJson(c.req.param("threadId")),
      emails: items.map((e) => ({ id: e.id, direction: e.direction, from: e.from, to: e.to, subject: e.subject, content: e.content, sentAt: e.sentAt, inReplyTo: e.inReplyTo })),
    });
  });

  core.post("/workspaces/:ws/dnc/bulk", async (c) => {
    const b = await body(c, DncBody);
    if (!b.ok) return b.res;
    let created = 0;
    for (const v of b.data.dncs) {
      const value = v.trim().toLowerCase();
      if (!dncs.has(value)) {
        dncs.add(value);
        created++;
      }
    }
    return c.json({ created }, 201);
  });

  core.post("/workspaces/:ws/integrations/webhooks", async (c) => {
    const b = await body(c, WebhookBody);
    if (!b.ok) return b.res;
    const hook = { id: nextId("whk"), ...b.data };
    hooks.push(hook);
    return c.json(hook, 201);
  });

  core.get("/workspaces/:ws/integrations/webhooks", (c) => c.json({ data: hooks, total: hooks.length }));

  // --- multichannel sequences (enrolment) ---------------------------------------------------------
  const mc = new Hono();

  mc.post("/multichannel/workspaces/:ws/sequences/:seq/enrollments/preflight", async (c) => {
    const b = await body(c, PreflightBody);
    if (!b.ok) return b.res;
    const sequenceId = c.req.param("seq");
    const ids = (b.data.filters.leadIds ?? []).filter((x) => contacts.has(x)).slice(0, b.data.limit ?? 500);
    const inTarget = ids.filter((x) => enrolled.get(sequenceId)?.has(x));
    const elsewhere = ids.filter((x) => !inTarget.includes(x) && [...enrolled].some(([s, set]) => s !== sequenceId && set.has(x)));
    const auto = ids.filter((x) => !inTarget.includes(x) && !elsewhere.includes(x));
    const scope = b.data.selectionScope ?? "all";
    const candidates = scope === "in_sequence" ? inTarget : scope === "not_in_sequence" ? [...auto, ...elsewhere] : ids;
    const preflightId = nextId("pfl");
    const expiresAt = Date.now() + 15 * 60_000;
    preflights.set(preflightId, { sequenceId, auto: candidates.filter((x) => auto.includes(x)), decision: candidates.filter((x) => elsewhere.includes(x)), expiresAt });
    const movedFrom = [...enrolled].filter(([s, set]) => s !== sequenceId && elsewhere.some((x) => set.has(x)));
    return c.json({
      preflightId,
      expiresAt: new Date(expiresAt).toISOString(),
      summary: {
        candidateCount: candidates.length,
        decisionRequiredCount: candidates.filter((x) => elsewhere.includes(x)).length,
        automaticEnrollmentCount: candidates.filter((x) => auto.includes(x)).length,
        alreadyInTargetCount: candidates.filter((x) => inTarget.includes(x)).length,
      },
      moveGroups: movedFrom.map(([s, set]) => ({ sourceSequenceId: s, contactCount: elsewhere.filter((x) => set.has(x)).length })),
      repliedDecision: { contactCount: 0 },
    }, 201);
  });

  mc.post("/multichannel/workspaces/:ws/sequences/:seq/enrollments/preflight/:pid/confirm", async (c) => {
    const b = await body(c, ConfirmBody);
    if (!b.ok) return b.res;
    const pf = preflights.get(c.req.param("pid"));
    if (!pf || pf.sequenceId !== c.req.param("seq")) return fail(c, 404, "preflight_not_found");
    if (pf.result) return c.json(pf.result); // confirming twice changes nothing
    if (Date.now() > pf.expiresAt) return fail(c, 410, "preflight_expired");
    const target = enrolled.get(pf.sequenceId) ?? new Set<string>();
    enrolled.set(pf.sequenceId, target);
    const toEnrol = [...pf.auto];
    if (b.data.action === "move") {
      for (const x of pf.decision) for (const [s, set] of enrolled) if (s !== pf.sequenceId) set.delete(x);
      toEnrol.push(...pf.decision);
    }
    const ws = decodeURIComponent(c.req.param("ws"));
    for (const x of toEnrol) {
      if (target.has(x)) continue;
      target.add(x);
      scheduleSequenceEmail(ws, pf.sequenceId, x);
    }
    pf.result = { enrolledCount: toEnrol.length, skippedCount: b.data.action === "skip" ? pf.decision.length : 0, movedCount: b.data.action === "move" ? pf.decision.length : 0 };
    return c.json(pf.result);
  });

  // The multichannel paths answer on the CLI's base (/public/v2/multichannel/…) and the MCP server's
  // (/public/multichannel/…). Hono copies routes when mounting, so the order below matters.
  core.route("/", mc);
  const mcOnly = new Hono();
  mcOnly.use("/multichannel/*", auth);
  mcOnly.route("/", mc);
  const app = new Hono();
  app.route("/public/v2", core);
  app.route("/public", mcOnly);
  app.all("*", (c) => fail(c, 404, "not found"));
  return { app, state };
}
