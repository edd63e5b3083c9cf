// The Unipile client and "linkedin" adapter against the stateful Unipile sandbox on a local server:
// profile view → invitation (note ≤ 300 characters, refused before any I/O) → acceptance (a
// new_relation webhook with the Unipile-Auth header) → a multipart first message → a follow-up in the
// same chat; cursors, findByReference, and failures (401, 404, 422, 429, 500).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { createUnipileSandbox, unipileSandboxProfile, type UnipileSandboxState } from "../../dev/sandbox/unipile.ts";
import {
  createUnipileClient,
  unipileIdentifier,
  unipileLinkedInAdapter,
  type UnipileClient,
} from "../../shared/integrations/unipile.ts";
import { ProviderError, type ProviderCall } from "../../shared/integrations/provider-http.ts";
import type { ChannelAdapter, SendRequest } from "../../shared/channels/types.ts";

const API_KEY = "unipile-test-key";
const HOOK_SECRET = `hook-${Math.random().toString(36).slice(2)}`;
const ACCOUNT = "acc_sandbox_1";

let server: ServerType;
let base: string;
let state: UnipileSandboxState;
let client: UnipileClient;
let adapter: ChannelAdapter;
const calls: ProviderCall[] = [];
const wire: Array<{ method: string; url: string; headers: Headers; body: BodyInit | null | undefined }> = [];
const hooks: Array<{ authorised: boolean; contentType: string | null; event: Record<string, unknown> }> = [];

function timingSafeEqualText(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

function request(overrides: Partial<SendRequest> = {}): SendRequest {
  return {
    sendId: crypto.randomUUID(),
    clientId: "client-1",
    leadId: "lead-1",
    channel: "linkedin",
    sender: { id: "sender-1", address: "Jane at Acme", providerAccountId: ACCOUNT },
    recipient: { firstName: "Sam", linkedinUrl: "https://www.linkedin.com/in/Sam-Accept-Lee/" },
    body: "Hi Sam, great to connect.",
    ...overrides,
  };
}

beforeAll(async () => {
  const root = new Hono();
  root.post("/hooks/unipile", async (c) => {
    const presented = c.req.header("unipile-auth") ?? "";
    const authorised = timingSafeEqualText(presented, HOOK_SECRET);
    hooks.push({ authorised, contentType: c.req.header("content-type") ?? null, event: JSON.parse(await c.req.text()) });
    return authorised ? c.body(null, 200) : c.json({ error: "unauthorised" }, 401);
  });
  await new Promise<void>((resolve) => {
    server = serve({ fetch: root.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
      base = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
  const sandbox = createUnipileSandbox({
    apiKey: API_KEY,
    webhookUrl: `${base}/hooks/unipile`,
    webhookSecret: HOOK_SECRET,
    acceptRate: 0,
    acceptDelayMs: [10, 30],
    retryAfterSeconds: 0,
  });
  state = sandbox.state;
  root.route("/sandbox/unipile", sandbox.app);
  client = createUnipileClient({
    apiKey: API_KEY,
    baseUrl: `${base}/sandbox/unipile/api/v1`,
    redis: null,
    rateLimit: false,
    retry: { baseDelayMs: 5 },
    record: (call) => void calls.push(call),
    fetch: async (input, init) => {
      wire.push({ method: init?.method ?? "GET", url: String(input), headers: new Headers(init?.headers), body: init?.body });
      return fetch(input, init);
    },
  });
  adapter = unipileLinkedInAdapter({ client });
});

afterAll(async () => {
  await state.settled();
  await new Promise<void>((r) => server.close(() => r()));
});

describe("identifiers", () => {
  it("takes the public slug from a profile URL", () => {
    expect(unipileIdentifier("https://www.linkedin.com/in/Jane-Doe-123/")).toBe("jane-doe-123");
    expect(unipileIdentifier("linkedin.com/in/jane%20doe?trk=x")).toBe("jane doe");
    expect(unipileIdentifier("ACoAAB12cd")).toBe("ACoAAB12cd");
    expect(unipileIdentifier("https://www.linkedin.com/company/acme")).toBeNull();
    expect(unipileIdentifier("not a url")).toBeNull();
    expect(unipileIdentifier(null)).toBeNull();
  });
});

describe("the LinkedIn sequence: view, invite, accept, message, follow up", () => {
  const slug = "sam-accept-lee";
  const providerId = unipileSandboxProfile(slug).provider_id;
  let chatId = "";

  it("profile_view retrieves the profile with X-API-KEY and account_id", async () => {
    wire.length = 0;
    const result = await adapter.send(request({ linkedinAction: "profile_view" }));
    expect(result).toEqual({ provider: "unipile", providerMessageId: `profile_view:${providerId}`, status: "sent", costCents: 0, threadRef: null });
    expect(wire).toHaveLength(1);
    expect(wire[0].method).toBe("GET");
    expect(wire[0].url).toBe(`${base}/sandbox/unipile/api/v1/users/${slug}?account_id=${ACCOUNT}`);
    expect(wire[0].headers.get("x-api-key")).toBe(API_KEY);
    expect(state.profileViews()).toContainEqual({ account_id: ACCOUNT, identifier: slug });
  });

  it("a first message before the invitation is accepted is refused by LinkedIn (422, not retryable)", async () => {
    const err = await adapter.send(request({ linkedinAction: "message" })).catch((e) => e);
    expect(err).toMatchObject({ code: "http", status: 422, retryable: false });
    expect(err.message).toContain("no_connection_with_recipient");
  });

  it("invitation: the profile's provider id, then POST /users/invite with the body as the note", async () => {
    wire.length = 0;
    const note = "n".repeat(300);
    const result = await adapter.send(request({ linkedinAction: "invitation", body: note }));
    expect(result).toMatchObject({ provider: "unipile", status: "sent", threadRef: null });
    expect(wire.map((w) => `${w.method} ${new URL(w.url).pathname}`)).toEqual([
      `GET /sandbox/unipile/api/v1/users/${slug}`,
      "POST /sandbox/unipile/api/v1/users/invite",
    ]);
    expect(new Headers(wire[1].headers).get("content-type")).toBe("application/json");
    expect(JSON.parse(String(wire[1].body))).toEqual({ account_id: ACCOUNT, provider_id: providerId, message: note });
    expect(state.invitations()).toContainEqual(expect.objectContaining({ invitation_id: result.providerMessageId, provider_id: providerId, status: "pending" }));
    // a second invitation while one is pending: Unipile refuses, not retryable
    await expect(adapter.send(request({ linkedinAction: "invitation", body: "again" }))).rejects.toMatchObject({ status: 422, retryable: false });
  });

  it("the acceptance arrives as a new_relation webhook with the Unipile-Auth secret, and in listRelations", async () => {
    await state.settled();
    const event = hooks.find((h) => h.event.user_provider_id === providerId);
    expect(event).toBeDefined();
    expect(event!.authorised).toBe(true);
    // API-created Unipile webhooks carry no Content-Type unless configured
    expect(event!.contentType === null || !event!.contentType.includes("json")).toBe(true);
    expect(event!.event).toMatchObject({
      event: "new_relation", account_id: ACCOUNT, account_type: "LINKEDIN", user_public_identifier: slug,
      user_profile_url: `https://www.linkedin.com/in/${slug}`,
    });
    const relations = await client.listRelations(ACCOUNT);
    expect(relations.items.map((r) => r.providerId)).toContain(providerId);
  });

  it("message: POST /chats as multipart/form-data with the lead's provider id", async () => {
    wire.length = 0;
    const req = request({ linkedinAction: "message", body: "Thanks for connecting, Sam!" });
    const result = await adapter.send(req);
    expect(result.threadRef).toBeTruthy();
    chatId = result.threadRef!;
    const post = wire.find((w) => w.method === "POST")!;
    expect(new URL(post.url).pathname).toBe("/sandbox/unipile/api/v1/chats");
    const form = await new Request("http://x/", { method: "POST", body: post.body as FormData }).formData();
    expect(form.get("account_id")).toBe(ACCOUNT);
    expect(form.get("text")).toBe("Thanks for connecting, Sam!");
    expect(form.getAll("attendees_ids")).toEqual([providerId]);
    expect(state.messages(chatId).map((m) => m.text)).toEqual(["Thanks for connecting, Sam!"]);
    expect(await adapter.findByReference!(req.sendId, { ...req, threadRef: chatId })).toMatchObject({ providerMessageId: result.providerMessageId, threadRef: chatId });
  });

  it("a follow-up with threadRef goes into the same chat, and the chat lists page by cursor", async () => {
    const texts = ["Follow-up one", "Follow-up two", "Follow-up three"];
    for (const body of texts) {
      const r = await adapter.send(request({ linkedinAction: "message", body, threadRef: chatId }));
      expect(r.threadRef).toBe(chatId);
    }
    expect(state.chats().filter((c) => c.attendee_provider_id === providerId)).toHaveLength(1);
    const first = await client.listChatMessages(chatId, { limit: 2 });
    expect(first.items.map((m) => m.text)).toEqual(["Follow-up three", "Follow-up two"]);
    expect(first.cursor).not.toBeNull();
    const second = await client.listChatMessages(chatId, { limit: 2, cursor: first.cursor });
    expect(second.items.map((m) => m.text)).toEqual(["Follow-up one", "Thanks for connecting, Sam!"]);
    expect(second.cursor).toBeNull();
    expect(second.items.every((m) => m.isSender)).toBe(true);
    const chats = await client.listChats(ACCOUNT);
    expect(chats.items).toContainEqual(expect.objectContaining({ id: chatId, attendeeProviderId: providerId }));
  });
});

describe("refusals before any I/O", () => {
  it("a note over 300 characters is a non-retryable invalid_request, and no request is made", async () => {
    wire.length = 0;
    for (const note of ["x".repeat(301), "😀".repeat(301)]) {
      const err = await adapter.send(request({ linkedinAction: "invitation", body: note })).catch((e) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ code: "invalid_request", retryable: false });
    }
    await expect(client.sendInvitation(ACCOUNT, "ACoAAxyz", "y".repeat(301))).rejects.toMatchObject({ code: "invalid_request" });
    expect(wire).toHaveLength(0);
  });

  it("300 emoji are 300 characters (LinkedIn counts characters, not UTF-16 units)", async () => {
    const result = await adapter.send(request({ linkedinAction: "invitation", body: "😀".repeat(300), recipient: { linkedinUrl: "https://www.linkedin.com/in/emoji-fan" } }));
    expect(state.invitations().find((i) => i.invitation_id === result.providerMessageId)?.message).toBe("😀".repeat(300));
  });

  it("no account, no profile URL, or an empty message are invalid_request", async () => {
    wire.length = 0;
    for (const req of [
      request({ sender: { id: "s", address: "x" } }),
      request({ recipient: { firstName: "Sam" } }),
      request({ linkedinAction: "message", body: " " }),
    ]) {
      await expect(adapter.send(req)).rejects.toMatchObject({ code: "invalid_request", retryable: false });
    }
    expect(wire).toHaveLength(0);
  });
});

describe("provider failures", () => {
  it("an unknown profile is a non-retryable invalid_request", async () => {
    const err = await adapter.send(request({ linkedinAction: "profile_view", recipient: { linkedinUrl: "https://www.linkedin.com/in/nomatch-person" } })).catch((e) => e);
    expect(err).toMatchObject({ code: "invalid_request", retryable: false });
    expect(await client.getProfile(ACCOUNT, "nomatch-person")).toBeNull();
  });

  it("429 and 500 from Unipile are retryable; an invitation is attempted once per call", async () => {
    for (const [magic, status] of [["ratelimit", 429], ["servererror", 500]] as const) {
      const req = request({ linkedinAction: "invitation", body: "Hello", recipient: { linkedinUrl: `https://www.linkedin.com/in/${magic}-invitee` } });
      const before = calls.filter((c) => c.operation === "users.invite").length;
      // the profile read meets the same failure once and is retried; the invitation is not
      const err = await adapter.send(req).catch((e) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ code: "http", status, retryable: true });
      expect(calls.filter((c) => c.operation === "users.invite").length - before).toBe(1);
      await expect(adapter.send(req)).resolves.toMatchObject({ status: "sent" });
    }
  });

  it("a bad key is a non-retryable 401; missing configuration fails before any I/O", async () => {
    const bad = createUnipileClient({ apiKey: "wrong", baseUrl: `${base}/sandbox/unipile/api/v1`, redis: null, rateLimit: false, record: () => {} });
    await expect(bad.getProfile(ACCOUNT, "someone")).rejects.toMatchObject({ code: "http", status: 401, retryable: false });
    const prev = process.env.UNIPILE_BASE_URL;
    delete process.env.UNIPILE_BASE_URL;
    try {
      await expect(createUnipileClient({ apiKey: "k", redis: null, record: () => {} }).getProfile(ACCOUNT, "x")).rejects.toMatchObject({ code: "not_configured" });
    } finally {
      if (prev !== undefined) process.env.UNIPILE_BASE_URL = prev;
    }
  });

  it("findByReference: a profile view is safe to redo, an invitation can't be told", async () => {
    expect(await adapter.findByReference!("x", request({ linkedinAction: "profile_view" }))).toBeNull();
    expect(await adapter.findByReference!("x", request({ linkedinAction: "invitation" }))).toBeUndefined();
    expect(await adapter.findByReference!("x", request({ linkedinAction: "message" }))).toBeUndefined();
  });
});
