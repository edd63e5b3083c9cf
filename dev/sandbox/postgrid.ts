// PostGrid Print & Mail sandbox (providers.md §13): POST/GET /letters and POST/GET /contacts with
// x-api-key, JSON bodies, PostGrid's {error: {type, message}} envelope, Idempotency-Key replay, and
// letter.updated webhooks whose body is an HS256 JWT signed with the webhook secret (§13, §16).
// Stateful: letters move ready → printing → processed_for_delivery → completed on a seeded schedule
// (the same letter id always gets the same delays), and each change is posted to opts.webhookUrl after
// the create has been answered. Delivery failures are logged, never thrown.
// Mount at /sandbox/postgrid; POSTGRID_BASE_URL=<that>/print-mail/v1.
//
// Magic values in the recipient's addressLine1 or name: "ratelimit" → 429 once, "servererror" → 500
// once, "returned" → the letter ends completed with imbStatus returned_to_sender (also a seeded
// opts.returnRate of letters).
import { Hono } from "hono";
import type { Context } from "hono";
import { z } from "zod";
import { log } from "../../shared/observability/log.ts";
import { delay, failureNow, fraction, OnceOnly, seeded } from "./seeded.ts";

export interface PostgridSandboxOptions {
  /** When set, only this x-api-key is accepted; otherwise any non-empty key. */
  apiKey?: string;
  /** Where letter.updated events go. */
  webhookUrl?: string;
  /** The webhook secret the JWT bodies are signed with. */
  webhookSecret?: string;
  /** Base delays before printing, then processed_for_delivery, then completed, each after the previous (default 1 s, 2 s, 3 s); each is scaled by a seeded 0.5–1.5. */
  statusDelaysMs?: [number, number, number];
  /** Fraction of letters returned to sender (default 0.05). */
  returnRate?: number;
  fetch?: typeof fetch;
}

export interface PostgridSandboxDelivery {
  type: string;
  letterId: string;
  status: string;
  url: string;
  /** The raw body (a JWT). */
  body: string;
  httpStatus: number | null;
  error: string | null;
}

export interface PostgridSandboxState {
  letters(): Array<Record<string, unknown>>;
  letter(id: string): Record<string, unknown> | undefined;
  /** Every POST /letters body as received, with its Idempotency-Key. */
  creates(): Array<{ idempotencyKey: string | null; body: unknown }>;
  deliveries(): PostgridSandboxDelivery[];
  /** Resolves when every scheduled status change has been applied and posted. */
  settled(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// JWT (HS256) bodies
// ---------------------------------------------------------------------------------------------

function base64Url(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * A PostGrid-style webhook body: base64url(header).base64url(payload).base64url(HMAC-SHA256(secret,
 * header.payload)), header {"alg":"HS256","typ":"JWT"}. A string payload is used verbatim as the JSON.
 */
export async function signPostgridWebhookJwt(payload: unknown, secret: string): Promise<string> {
  const enc = new TextEncoder();
  const header = base64Url(enc.encode(JSON.stringify({ alg: "HS256", typ: "JWT" })));
  const body = base64Url(enc.encode(typeof payload === "string" ? payload : JSON.stringify(payload)));
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(`${header}.${body}`)));
  return `${header}.${body}.${base64Url(sig)}`;
}

// ---------------------------------------------------------------------------------------------
// Wire validation: exactly the fields the client sends, plus the documented optional ones
// ---------------------------------------------------------------------------------------------

const ContactWire = z.object({
  firstName: z.string().min(1).optional(),
  lastName: z.string().optional(),
  companyName: z.string().min(1).optional(),
  addressLine1: z.string().min(1),
  addressLine2: z.string().optional(),
  city: z.string().min(1),
  provinceOrState: z.string().min(1),
  postalOrZip: z.string().min(1),
  countryCode: z.string().regex(/^[A-Z]{2}$/),
  email: z.string().optional(),
  phoneNumber: z.string().optional(),
  jobTitle: z.string().optional(),
  description: z.string().optional(),
  metadata: z.record(z.string(), z.string()).optional(),
}).strict().refine((c) => c.firstName || c.companyName, { message: "firstName or companyName is required" });

const LetterWire = z.object({
  to: z.union([z.string().regex(/^contact_/), ContactWire]),
  from: z.union([z.string().regex(/^contact_/), ContactWire]),
  html: z.string().min(1),
  size: z.enum(["us_letter", "us_legal", "a4"]).optional(),
  color: z.boolean().optional(),
  doubleSided: z.boolean().optional(),
  addressPlacement: z.enum(["top_first_page", "insert_blank_page"]).optional(),
  mailingClass: z.string().optional(),
  express: z.boolean().optional(),
  extraService: z.enum(["certified", "certified_return_receipt", "registered"]).optional(),
  description: z.string().optional(),
  metadata: z.record(z.string(), z.string()).optional(),
  mergeVariables: z.record(z.string(), z.unknown()).optional(),
  sendDate: z.string().optional(),
}).strict();

type ContactInput = z.infer<typeof ContactWire>;

export function createPostgridSandbox(opts: PostgridSandboxOptions = {}): { app: Hono; state: PostgridSandboxState } {
  const once = new OnceOnly();
  const letters = new Map<string, Record<string, unknown>>();
  const byKey = new Map<string, string>();
  const contacts = new Map<string, Record<string, unknown>>();
  const creates: Array<{ idempotencyKey: string | null; body: unknown }> = [];
  const deliveries: PostgridSandboxDelivery[] = [];
  const pending = new Set<Promise<void>>();
  const post = opts.fetch ?? fetch;
  let counter = 0;

  const state: PostgridSandboxState = {
    letters: () => [...letters.values()].map((l) => structuredClone(l)),
    letter: (id) => (letters.has(id) ? structuredClone(letters.get(id)!) : undefined),
    creates: () => [...creates],
    deliveries: () => [...deliveries],
    settled: async () => {
      while (pending.size) await Promise.allSettled([...pending]);
    },
  };

  const error = (c: Context, status: 400 | 401 | 404 | 429 | 500, type: string, message: string) =>
    c.json({ error: { type, message } }, status);

  function later(ms: number, work: () => Promise<void>) {
    const p = delay(ms).then(work).catch((err) => log("warn", "postgrid sandbox: scheduled work failed", { error: String(err) }))
      .finally(() => pending.delete(p));
    pending.add(p);
  }

  async function deliver(letter: Record<string, unknown>) {
    const url = opts.webhookUrl;
    if (!url) return;
    const event = { id: `event_${seeded(`pg:event:${letter.id}:${letter.status}:${letter.imbStatus}`).hex(24)}`, type: "letter.updated", data: structuredClone(letter) };
    const body = await signPostgridWebhookJwt(event, opts.webhookSecret ?? "");
    const record: PostgridSandboxDelivery = { type: event.type, letterId: String(letter.id), status: String(letter.status), url, body, httpStatus: null, error: null };
    deliveries.push(record);
    try {
      const res = await post(url, { method: "POST", headers: { "content-type": "text/plain" }, body });
      record.httpStatus = res.status;
      await res.body?.cancel();
      if (!res.ok) log("warn", "postgrid sandbox: webhook refused", { url, status: res.status });
    } catch (err) {
      record.error = err instanceof Error ? err.message : String(err);
      log("warn", "postgrid sandbox: webhook delivery failed", { url, error: record.error });
    }
  }

  /** ready → printing → processed_for_delivery → completed, each change applied and posted on schedule. */
  function scheduleLifecycle(id: string) {
    const [a, b, c] = opts.statusDelaysMs ?? [1000, 2000, 3000];
    const letter = letters.get(id)!;
    const to = letter.to as Record<string, unknown>;
    const returned = /returned/i.test(`${to.addressLine1 ?? ""} ${to.firstName ?? ""} ${to.companyName ?? ""}`) ||
      fraction(`pg:return:${id}`) < (opts.returnRate ?? 0.05);
    const steps: Array<[number, Record<string, unknown>]> = [
      [a, { status: "printing" }],
      [b, { status: "processed_for_delivery", imbStatus: "entered_mail_stream", trackingNumber: `9400${seeded(`pg:track:${id}`).int(10 ** 9, 10 ** 10 - 1)}` }],
      [c, { status: "completed", imbStatus: returned ? "returned_to_sender" : "out_for_delivery" }],
    ];
    // Each step waits for the previous one's delivery, so events arrive in order.
    const step = (i: number) => {
      if (i >= steps.length) return;
      const [base, change] = steps[i];
      later(Math.round(base * (0.5 + fraction(`pg:delay:${id}:${change.status}`))), async () => {
        const current = letters.get(id)!;
        if (current.status === "cancelled") return;
        Object.assign(current, change, { updatedAt: new Date().toISOString(), ...(change.imbStatus ? { imbDate: new Date().toISOString() } : {}) });
        await deliver(current);
        step(i + 1);
      });
    };
    step(0);
  }

  function resolveContact(c: string | ContactInput): Record<string, unknown> | null {
    if (typeof c === "string") return contacts.get(c) ?? null;
    return { object: "contact", ...c };
  }

  const app = new Hono();

  app.use("*", async (c, next) => {
    const key = c.req.header("x-api-key")?.trim();
    if (!key || (opts.apiKey && key !== opts.apiKey)) return error(c, 401, "invalid_api_key_error", "Invalid API key.");
    await next();
  });

  async function readJson(c: Context): Promise<unknown> {
    try {
      return await c.req.json();
    } catch {
      return undefined;
    }
  }

  app.post("/print-mail/v1/contacts", async (c) => {
    const parsed = ContactWire.safeParse(await readJson(c));
    if (!parsed.success) return error(c, 400, "validation_error", parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    const id = `contact_${seeded(`pg:contact:${++counter}:${JSON.stringify(parsed.data)}`).hex(22)}`;
    const contact = { id, object: "contact", live: c.req.header("x-api-key")!.startsWith("live_"), ...parsed.data, createdAt: new Date().toISOString() };
    contacts.set(id, contact);
    return c.json(contact, 200);
  });

  app.get("/print-mail/v1/contacts/:id", (c) => {
    const contact = contacts.get(c.req.param("id"));
    return contact ? c.json(contact) : error(c, 404, "not_found_error", `Could not find contact with id ${c.req.param("id")}.`);
  });

  app.post("/print-mail/v1/letters", async (c) => {
    const raw = await readJson(c);
    const key = c.req.header("idempotency-key") ?? null;
    creates.push({ idempotencyKey: key, body: raw });
    if (key && byKey.has(key)) return c.json(letters.get(byKey.get(key)!)!, 200);
    const parsed = LetterWire.safeParse(raw);
    if (!parsed.success) return error(c, 400, "validation_error", parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; "));
    const body = parsed.data;
    const to = resolveContact(body.to);
    const from = resolveContact(body.from);
    if (!to || !from) return error(c, 400, "validation_error", `Could not find contact ${!to ? body.to : body.from}.`);
    const probe = `${to.addressLine1 ?? ""} ${to.firstName ?? ""} ${to.companyName ?? ""}`;
    const failure = failureNow(probe, once, `letters:${key ?? probe}`);
    if (failure === "ratelimit") {
      c.header("retry-after", "1");
      return error(c, 429, "rate_limit_error", "Too many requests.");
    }
    if (failure === "servererror") return error(c, 500, "server_error", "Internal server error.");
    const now = new Date().toISOString();
    const id = `letter_${seeded(`pg:letter:${key ?? ""}:${++counter}`).hex(22)}`;
    const letter: Record<string, unknown> = {
      id,
      object: "letter",
      live: c.req.header("x-api-key")!.startsWith("live_"),
      status: "ready",
      to: { id: typeof body.to === "string" ? body.to : `contact_${seeded(`pg:to:${id}`).hex(22)}`, ...to },
      from: { id: typeof body.from === "string" ? body.from : `contact_${seeded(`pg:from:${id}`).hex(22)}`, ...from },
      html: body.html,
      size: body.size ?? "us_letter",
      color: body.color ?? false,
      doubleSided: body.doubleSided ?? false,
      addressPlacement: body.addressPlacement ?? "top_first_page",
      mailingClass: body.mailingClass ?? "first_class",
      description: body.description ?? null,
      metadata: body.metadata ?? {},
      sendDate: body.sendDate ?? now,
      createdAt: now,
      updatedAt: now,
      trackingNumber: null,
      imbStatus: null,
      url: `https://pg-sandbox.local/letters/${id}.pdf`,
    };
    letters.set(id, letter);
    if (key) byKey.set(key, id);
    // Scheduled only now, so every delivery comes after this response.
    scheduleLifecycle(id);
    return c.json(letter, 200);
  });

  app.get("/print-mail/v1/letters/:id", (c) => {
    const letter = letters.get(c.req.param("id"));
    return letter ? c.json(letter) : error(c, 404, "not_found_error", `Could not find letter with id ${c.req.param("id")}.`);
  });

  app.get("/print-mail/v1/letters", (c) => {
    const limit = Math.min(100, Math.max(1, Number(c.req.query("limit") ?? 10) || 10));
    const skip = Math.max(0, Number(c.req.query("skip") ?? 0) || 0);
    const search = c.req.query("search")?.toLowerCase().trim();
    const all = [...letters.values()].reverse().filter((l) => {
      if (!search) return true;
      const to = l.to as Record<string, unknown>;
      return [l.id, l.description, JSON.stringify(l.metadata), to.firstName, to.lastName, to.companyName]
        .some((v) => typeof v === "string" && v.toLowerCase().includes(search));
    });
    return c.json({ object: "list", limit, skip, totalCount: all.length, data: all.slice(skip, skip + limit) });
  });

  app.all("*", (c) => error(c, 404, "not_found_error", "Not found."));
  return { app, state };
}
