// The Salesforge client and "email" adapter against the stateful Salesforge sandbox on a local server:
// a first email (contact upsert with our rendered email in custom variables, preflight + confirm
// enrolment), the email_sent / email_bounced / email_replied webhooks (secret token in the URL), a
// follow-up threaded onto the first email with List-Unsubscribe + One-Click headers on the wire,
// findByReference, do-not-contact, threads, and failures.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { createSalesforgeSandbox, type SalesforgeSandboxState } from "../../dev/sandbox/salesforge.ts";
import {
  createSalesforgeClient,
  parseSalesforgeThreadRef,
  salesforgeEmailAdapter,
  salesforgeThreadRef,
  type SalesforgeClient,
  type SalesforgeConfig,
} from "../../shared/integrations/salesforge.ts";
import { ProviderError, type ProviderCall } from "../../shared/integrations/provider-http.ts";
import type { ChannelAdapter, SendRequest } from "../../shared/channels/types.ts";

const API_KEY = "sf_test_key_123";
const WS = "wks_test";
const SEQ = "4242";
const TOKEN = `tok${Math.random().toString(36).slice(2)}`;
const UNSUB = "<https://app.example.com/u/abc123>, <mailto:unsub@example.com?subject=unsubscribe>";
const HEADERS = { "List-Unsubscribe": UNSUB, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" };
const MAILBOXES = [{ id: "mbx_a", address: "jane@acme-mail.example" }, { id: "mbx_b", address: "joe@acme-mail.example" }];

let server: ServerType;
let base: string;
let state: SalesforgeSandboxState;
let client: SalesforgeClient;
let adapter: ChannelAdapter;
const calls: ProviderCall[] = [];
const wire: Array<{ method: string; url: string; headers: Headers; body: string }> = [];
const events: Array<{ tokenOk: boolean; event: Record<string, unknown> }> = [];
const registered: Array<Record<string, unknown>> = [];

function timingSafeEqualText(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

function makeClient(overrides: Partial<SalesforgeConfig> = {}) {
  return createSalesforgeClient({
    apiKey: API_KEY,
    baseUrl: `${base}/sandbox/salesforge/public/v2`,
    workspaceId: WS,
    redis: null,
    rateLimit: false,
    retry: { baseDelayMs: 5 },
    record: (call) => void calls.push(call),
    fetch: async (input, init) => {
      wire.push({ method: init?.method ?? "GET", url: String(input), headers: new Headers(init?.headers), body: String(init?.body ?? "") });
      return fetch(input, init);
    },
    ...overrides,
  });
}

function request(overrides: Partial<SendRequest> = {}): SendRequest {
  const n = Math.random().toString(36).slice(2, 8);
  return {
    sendId: crypto.randomUUID(),
    clientId: "client-1",
    leadId: "lead-1",
    channel: "email",
    sender: { id: "sender-1", address: "jane@acme-mail.example", providerAccountId: "mbx_a" },
    recipient: { firstName: "Priya", lastName: "Patel", company: "Harbour Logistics", title: "COO", email: `priya.${n}@harbour.example` },
    subject: "Quick question about Harbour's routes",
    body: "<p>Hi Priya, …</p>",
    headers: HEADERS,
    ...overrides,
  };
}

const sequenceEmailFor = (email: string) => state.emails().find((e) => e.to === email.toLowerCase() && e.kind === "sequence");
const eventsFor = (email: string, type: string) =>
  events.filter((e) => (e.event.contact as { email?: string }).email === email.toLowerCase() && e.event.type === type);

beforeAll(async () => {
  const root = new Hono();
  root.post("/hooks/salesforge/:token", async (c) => {
    const tokenOk = timingSafeEqualText(c.req.param("token"), TOKEN);
    events.push({ tokenOk, event: JSON.parse(await c.req.text()) });
    return tokenOk ? c.body(null, 204) : c.json({ error: "unknown hook" }, 404);
  });
  root.post("/hooks/registered", async (c) => {
    registered.push(JSON.parse(await c.req.text()));
    return c.body(null, 204);
  });
  await new Promise<void>((resolve) => {
    server = serve({ fetch: root.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
      base = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
  const sandbox = createSalesforgeSandbox({
    apiKey: API_KEY,
    workspaceId: WS,
    mailboxes: MAILBOXES,
    webhookUrl: `${base}/hooks/salesforge/${TOKEN}`,
    sendDelayMs: [5, 30],
    followDelayMs: [5, 30],
    bounceRate: 0,
  });
  state = sandbox.state;
  root.route("/sandbox/salesforge", sandbox.app);
  const down = createSalesforgeSandbox({ webhookUrl: "http://127.0.0.1:9/hooks", sendDelayMs: [1, 5], bounceRate: 0 });
  root.route("/sandbox/salesforge-down", down.app);
  downState = down.state;
  client = makeClient();
  adapter = salesforgeEmailAdapter({ client, sequenceId: SEQ });
});

let downState: SalesforgeSandboxState;

afterAll(async () => {
  await state.settled();
  await new Promise<void>((r) => server.close(() => r()));
});

describe("thread references", () => {
  it("round-trips mailbox:email and falls back to the sender's mailbox", () => {
    expect(parseSalesforgeThreadRef(salesforgeThreadRef("mbx_a", "eml_1"))).toEqual({ mailboxId: "mbx_a", emailId: "eml_1" });
    expect(parseSalesforgeThreadRef("eml_1", "mbx_b")).toEqual({ mailboxId: "mbx_b", emailId: "eml_1" });
    expect(parseSalesforgeThreadRef("eml_1", null)).toBeNull();
    expect(parseSalesforgeThreadRef(":", "mbx")).toEqual({ mailboxId: "mbx", emailId: ":" });
  });
});

describe("first email → follow-up in the same thread", () => {
  const req = request();
  let firstEmailId = "";
  let threadRef = "";

  it("upserts the contact with the rendered email in custom vars, then preflights and confirms the enrolment", async () => {
    wire.length = 0;
    const result = await adapter.send(req);
    const contact = state.contactByEmail(req.recipient.email!)!;
    expect(result).toEqual({ provider: "salesforge", providerMessageId: `enrol:${SEQ}:${contact.id}`, status: "queued", costCents: 0, threadRef: null });
    expect(wire.map((w) => `${w.method} ${new URL(w.url).pathname}`)).toEqual([
      `POST /sandbox/salesforge/public/v2/workspaces/${WS}/contacts`,
      `POST /sandbox/salesforge/public/v2/multichannel/workspaces/${WS}/sequences/${SEQ}/enrollments/preflight`,
      expect.stringMatching(new RegExp(`^POST /sandbox/salesforge/public/v2/multichannel/workspaces/${WS}/sequences/${SEQ}/enrollments/preflight/pfl_\\w+/confirm$`)),
    ]);
    // the raw key, no "Bearer"
    expect(wire.every((w) => w.headers.get("authorization") === API_KEY)).toBe(true);
    expect(JSON.parse(wire[0].body)).toEqual({
      firstName: "Priya", lastName: "Patel", email: req.recipient.email, company: "Harbour Logistics", position: "COO",
      customVars: { aos_subject: req.subject, aos_body: req.body, aos_list_unsubscribe: UNSUB, aos_send_id: req.sendId },
    });
    expect(JSON.parse(wire[1].body)).toEqual({ filters: { leadIds: [contact.id] }, selectionScope: "all" });
    expect(JSON.parse(wire[2].body)).toEqual({ action: "skip" });
    expect(state.enrollments(SEQ)).toContain(contact.id);
  });

  it("Salesforge sends it with List-Unsubscribe + One-Click and posts email_sent to the tokened URL", async () => {
    await state.settled();
    const email = sequenceEmailFor(req.recipient.email!)!;
    expect(email).toMatchObject({ subject: req.subject, content: req.body, sendId: req.sendId, headers: HEADERS });
    const sent = eventsFor(req.recipient.email!, "email_sent");
    expect(sent).toHaveLength(1);
    expect(sent[0].tokenOk).toBe(true);
    expect(sent[0].event).toMatchObject({
      type: "email_sent", workspaceId: WS, sequenceId: SEQ, emailId: email.id, mailboxId: email.mailboxId, threadId: email.threadId,
      contact: { customVars: { aos_send_id: req.sendId } },
    });
    firstEmailId = email.id;
    threadRef = salesforgeThreadRef(String(sent[0].event.mailboxId), String(sent[0].event.emailId));
  });

  it("a follow-up replies in that thread with the unsubscribe headers on the wire", async () => {
    const follow = request({ recipient: req.recipient, subject: "Re: Quick question about Harbour's routes", body: "<p>Following up…</p>", threadRef });
    wire.length = 0;
    const result = await adapter.send(follow);
    expect(result).toEqual({ provider: "salesforge", providerMessageId: `reply:${firstEmailId}:${follow.sendId}`, status: "accepted", costCents: 0, threadRef });
    expect(wire).toHaveLength(1);
    const { mailboxId } = parseSalesforgeThreadRef(threadRef)!;
    expect(new URL(wire[0].url).pathname).toBe(`/sandbox/salesforge/public/v2/workspaces/${WS}/mailboxes/${mailboxId}/emails/${firstEmailId}/reply`);
    expect(JSON.parse(wire[0].body)).toEqual({
      content: "<p>Following up…</p>",
      subject: "Re: Quick question about Harbour's routes",
      includeHistory: true,
      headers: { "List-Unsubscribe": UNSUB, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" },
    });
    const first = state.emails().find((e) => e.id === firstEmailId)!;
    const reply = state.emails().find((e) => e.inReplyTo === firstEmailId && e.kind === "reply")!;
    expect(reply).toMatchObject({ threadId: first.threadId, mailboxId: first.mailboxId, to: req.recipient.email!.toLowerCase(), headers: HEADERS });
    // a second follow-up with a bare email id uses the sender's mailbox
    const bare = request({ recipient: req.recipient, body: "<p>Last note</p>", threadRef: firstEmailId, sender: { ...req.sender, providerAccountId: first.mailboxId } });
    await adapter.send(bare);
    expect(state.emails().filter((e) => e.threadId === first.threadId).map((e) => e.kind)).toEqual(["sequence", "reply", "reply"]);
    expect(await adapter.findByReference!(bare.sendId, bare)).toBeUndefined();
  });

  it("a reply to an email the mailbox did not send is a non-retryable 404, attempted once", async () => {
    const other = MAILBOXES.map((m) => m.id).find((m) => m !== parseSalesforgeThreadRef(threadRef)!.mailboxId)!;
    const before = calls.filter((c) => c.operation === "emails.reply").length;
    const err = await adapter.send(request({ threadRef: salesforgeThreadRef(other, firstEmailId) })).catch((e) => e);
    expect(err).toMatchObject({ code: "http", status: 404, retryable: false });
    expect(calls.filter((c) => c.operation === "emails.reply").length - before).toBe(1);
  });

  it("findByReference finds the enrolled first email by its send id", async () => {
    const found = await adapter.findByReference!(req.sendId, req);
    expect(found).toMatchObject({ provider: "salesforge", status: "queued", providerMessageId: expect.stringMatching(new RegExp(`^enrol:${SEQ}:`)) });
    expect(await adapter.findByReference!(crypto.randomUUID(), req)).toBeNull();
  });
});

describe("re-sending and other sequences", () => {
  it("the same first email sent twice (crash replay) enrols once and sends one email", async () => {
    const req = request();
    const a = await adapter.send(req);
    const b = await adapter.send(req);
    expect(b.providerMessageId).toBe(a.providerMessageId);
    await state.settled();
    expect(state.emails().filter((e) => e.to === req.recipient.email!.toLowerCase() && e.kind === "sequence")).toHaveLength(1);
  });

  it("a contact in another sequence is not moved unless asked", async () => {
    const req = request();
    await salesforgeEmailAdapter({ client, sequenceId: "1111" }).send(req);
    const again = request({ recipient: req.recipient });
    const err = await salesforgeEmailAdapter({ client, sequenceId: "2222" }).send(again).catch((e) => e);
    expect(err).toMatchObject({ code: "invalid_request", retryable: false });
    expect(err.message).toContain("another Salesforge sequence");
    const contactId = state.contactByEmail(req.recipient.email!)!.id;
    await salesforgeEmailAdapter({ client, sequenceId: (r) => (r.sendId === again.sendId ? "2222" : null), enrollAction: "move" }).send(again);
    expect(state.enrollments("2222")).toContain(contactId);
    expect(state.enrollments("1111")).not.toContain(contactId);
  });

  it("findByReference: upserted but not enrolled is 'not found'; an unknown address is 'not found'", async () => {
    const req = request();
    await client.upsertContact({ firstName: "X", email: req.recipient.email!, customVars: { aos_send_id: req.sendId } });
    expect(await adapter.findByReference!(req.sendId, req)).toBeNull();
    expect(await adapter.findByReference!(req.sendId, request())).toBeNull();
  });

  it("findByReference answers 'can't tell' when the contact is beyond the pages it may read", async () => {
    for (let i = 0; i < 101; i++) await client.upsertContact({ firstName: "Filler", email: `filler${i}.${Date.now()}@example.com` });
    const req = request();
    await adapter.send(req);
    const limited = salesforgeEmailAdapter({ client, sequenceId: SEQ, findMaxPages: 1 });
    expect(await limited.findByReference!(req.sendId, req)).toBeUndefined();
    expect(await adapter.findByReference!(req.sendId, req)).toMatchObject({ status: "queued" });
  });

  it("the multichannel calls also work on the MCP server's base (/public/multichannel/…)", async () => {
    const mcClient = makeClient({ multichannelBaseUrl: `${base}/sandbox/salesforge/public` });
    const req = request();
    wire.length = 0;
    await salesforgeEmailAdapter({ client: mcClient, sequenceId: "5555" }).send(req);
    expect(new URL(wire[1].url).pathname).toBe(`/sandbox/salesforge/public/multichannel/workspaces/${WS}/sequences/5555/enrollments/preflight`);
    expect(state.enrollments("5555")).toHaveLength(1);
  });
});

describe("refusals before any I/O", () => {
  it.each([
    ["no List-Unsubscribe", { headers: { "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" } }],
    ["List-Unsubscribe without https", { headers: { "List-Unsubscribe": "<mailto:u@example.com>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" } }],
    ["no One-Click", { headers: { "List-Unsubscribe": UNSUB } }],
    ["no recipient email", { recipient: { firstName: "A" } }],
    ["no subject", { subject: null }],
    ["an empty body", { body: " " }],
    ["a follow-up without a mailbox", { threadRef: "eml_1", sender: { id: "s", address: "x" } }],
  ] as Array<[string, Partial<SendRequest>]>)("%s → invalid_request", async (_name, overrides) => {
    wire.length = 0;
    const err = await adapter.send(request(overrides)).catch((e) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ code: "invalid_request", retryable: false });
    expect(wire).toHaveLength(0);
  });

  it("header names are matched case-insensitively", async () => {
    await expect(adapter.send(request({ headers: { "list-unsubscribe": UNSUB, "LIST-UNSUBSCRIBE-POST": "List-Unsubscribe=One-Click" } }))).resolves.toMatchObject({ status: "queued" });
  });

  it("no sequence for a first email → invalid_request", async () => {
    const err = await salesforgeEmailAdapter({ client, sequenceId: () => null }).send(request()).catch((e) => e);
    expect(err).toMatchObject({ code: "invalid_request", retryable: false });
  });
});

describe("webhooks", () => {
  it("some emails bounce; a bounced email's email_bounced follows its email_sent", async () => {
    const req = request({ recipient: { firstName: "B", email: `bounce.${Date.now()}@nowhere.example` } });
    await adapter.send(req);
    await state.settled();
    const email = req.recipient.email!;
    expect(eventsFor(email, "email_sent")).toHaveLength(1);
    expect(eventsFor(email, "email_bounced")).toHaveLength(1);
    expect(eventsFor(email, "email_bounced")[0].event).toMatchObject({ bounceType: "hard", emailId: sequenceEmailFor(email)!.id });
    expect(events.every((e) => e.tokenOk)).toBe(true);
  });

  it("a webhook registered through the API receives only its type", async () => {
    const { id } = await client.createWebhook({ name: "aos bounces", url: `${base}/hooks/registered`, type: "email_bounced" });
    expect(id).toMatch(/^whk_/);
    const req = request({ recipient: { firstName: "C", email: `bounce.reg.${Date.now()}@nowhere.example` } });
    await adapter.send(req);
    await state.settled();
    const mine = registered.filter((e) => (e.contact as { email: string }).email === req.recipient.email);
    expect(mine.map((e) => e.type)).toEqual(["email_bounced"]);
  });

  it("a failed delivery is recorded and logged, never thrown", async () => {
    const c2 = createSalesforgeClient({ apiKey: "k", baseUrl: `${base}/sandbox/salesforge-down/public/v2`, workspaceId: "w", redis: null, rateLimit: false, record: () => {} });
    await salesforgeEmailAdapter({ client: c2, sequenceId: "9" }).send(request());
    await downState.settled();
    const d = downState.deliveries();
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ type: "email_sent", httpStatus: null });
    expect(d[0].error).toBeTruthy();
  });
});

describe("threads (reply recovery) and do-not-contact", () => {
  it("an inbound reply shows in listThreads and getThread, after an email_replied webhook", async () => {
    const req = request({ recipient: { firstName: "R", email: `reply.${Date.now()}@harbour.example` } });
    await adapter.send(req);
    await state.settled();
    expect(eventsFor(req.recipient.email!, "email_replied")).toHaveLength(1);
    const first = sequenceEmailFor(req.recipient.email!)!;
    const threads = await client.listThreads({ limit: 100, mailboxIds: [first.mailboxId], sequenceIds: [SEQ] });
    const thread = threads.find((t) => t.id === first.threadId)!;
    expect(thread).toMatchObject({ mailboxId: first.mailboxId, sequenceId: SEQ, contactEmail: req.recipient.email!.toLowerCase() });
    const detail = await client.getThread(first.mailboxId, first.threadId);
    expect(detail?.emails.map((e) => e.direction)).toEqual(["outbound", "inbound"]);
    expect(detail?.emails[1].content).toContain("pricing");
    expect(await client.getThread(first.mailboxId, "thr_missing")).toBeNull();
  });

  it("addDnc posts {dncs}, de-duplicated and lower-cased", async () => {
    wire.length = 0;
    const r = await client.addDnc(["Stop@Example.com", "stop@example.com", "blocked-domain.example", " "]);
    expect(r).toEqual({ created: 2 });
    expect(JSON.parse(wire[0].body)).toEqual({ dncs: ["stop@example.com", "blocked-domain.example"] });
    expect(state.dncs()).toEqual(expect.arrayContaining(["stop@example.com", "blocked-domain.example"]));
    expect(await client.addDnc(["stop@example.com"])).toEqual({ created: 0 });
  });
});

describe("provider failures", () => {
  it("a wrong key, or a Bearer-prefixed one, is a non-retryable 401", async () => {
    await expect(makeClient({ apiKey: "nope" }).listContacts()).rejects.toMatchObject({ code: "http", status: 401, retryable: false });
    await expect(makeClient({ apiKey: `Bearer ${API_KEY}` }).listContacts()).rejects.toMatchObject({ status: 401 });
  });

  it("a 429 or 500 on the (idempotent) upsert is retried; with no retries left it is a retryable error", async () => {
    const ok = await adapter.send(request({ recipient: { firstName: "L", email: `ratelimit.${Date.now()}@example.com` } }));
    expect(ok.status).toBe("queued");
    const noRetry = salesforgeEmailAdapter({ client: makeClient({ retry: { attempts: 1 } }), sequenceId: SEQ });
    const err = await noRetry.send(request({ recipient: { firstName: "S", email: `servererror.${Date.now()}@example.com` } })).catch((e) => e);
    expect(err).toMatchObject({ code: "http", status: 500, retryable: true });
  });

  it("an unknown workspace is a non-retryable 404; missing configuration fails before any I/O", async () => {
    await expect(makeClient({ workspaceId: "other" }).listContacts()).rejects.toMatchObject({ status: 404, retryable: false });
    const unconfigured = createSalesforgeClient({ apiKey: "k", baseUrl: "https://api.salesforge.ai/public/v2", workspaceId: "", redis: null, record: () => {} });
    await expect(unconfigured.listContacts()).rejects.toMatchObject({ code: "not_configured" });
  });
});
