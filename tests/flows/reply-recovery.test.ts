// Reply recovery against the Salesforge and Unipile sandboxes over HTTP: a reply whose webhook never
// came is found by polling (Salesforge threads; Unipile chats our sends started), stored once with
// its lead, assignment and send, and queued for classification — which then happens through QStash
// like any reply; a second poll adds nothing; a reply the webhook already stored is not stored again;
// our own messages, other people's chats and messages older than our first one are left alone;
// capped ticks continue where they stopped; a failing provider does not stop the others.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client } from "@upstash/qstash";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { createSalesforgeSandbox, type SalesforgeSandboxState } from "../../dev/sandbox/salesforge.ts";
import { createUnipileSandbox, type UnipileSandboxState } from "../../dev/sandbox/unipile.ts";
import { db } from "../../shared/db/client.ts";
import { afterCursor, recoverReplies } from "../../shared/engines/reply-recovery.ts";
import { publishOutbox } from "../../shared/flows/outbox.ts";
import { createSalesforgeClient, salesforgeThreadRef, type SalesforgeClient } from "../../shared/integrations/salesforge.ts";
import { createUnipileClient, type UnipileClient } from "../../shared/integrations/unipile.ts";
import type { ProviderCall } from "../../shared/integrations/provider-http.ts";
import { resetEnvCache } from "../../shared/config/env.ts";
import { resetProviderHttpState } from "../../shared/integrations/provider-http.ts";
import type { Stack } from "../../dev/stack.ts";
import { getStack, unique } from "../helpers/stack.ts";
import { until } from "../helpers/until.ts";

const SEQUENCE = "seq_recovery";
let stack: Stack;
let server: ServerType;
let base: string;
let sfState: SalesforgeSandboxState;
let upState: UnipileSandboxState;
let sf: SalesforgeClient;
let up: UnipileClient;
const calls: ProviderCall[] = [];
/** Messages "the other person" sent, by chat: the Unipile sandbox has no inbound simulation of its own. */
const inbound = new Map<string, Array<Record<string, unknown>>>();

beforeAll(async () => {
  stack = await getStack();
  // no webhookUrl: every webhook is "missed"
  const sandboxSf = createSalesforgeSandbox({ apiKey: "sf-key", workspaceId: "wks_recovery", sendDelayMs: [5, 15], followDelayMs: [5, 15], bounceRate: 0 });
  const sandboxUp = createUnipileSandbox({ apiKey: "up-key", acceptRate: 0 });
  sfState = sandboxSf.state;
  upState = sandboxUp.state;
  const root = new Hono();
  root.route("/sandbox/salesforge", sandboxSf.app);
  // the sandbox's chat messages, plus the injected inbound ones, newest first as Unipile lists them
  root.get("/sandbox/unipile/api/v1/chats/:chatId/messages", async (c) => {
    const url = new URL(c.req.url);
    const inner = await sandboxUp.app.fetch(new Request(`http://sandbox/api/v1/chats/${c.req.param("chatId")}/messages${url.search}`, { headers: c.req.raw.headers }));
    if (!inner.ok) return inner;
    const page = await inner.json() as { items: Array<Record<string, unknown>>; cursor: string | null };
    const items = [...(inbound.get(c.req.param("chatId")) ?? []), ...page.items]
      .sort((a, b) => String(b.timestamp).localeCompare(String(a.timestamp)));
    return c.json({ ...page, items });
  });
  root.route("/sandbox/unipile", sandboxUp.app);
  await new Promise<void>((resolve) => {
    server = serve({ fetch: root.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
      base = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
  const record = (c: ProviderCall) => void calls.push(c);
  sf = createSalesforgeClient({ baseUrl: `${base}/sandbox/salesforge/public/v2`, apiKey: "sf-key", workspaceId: "wks_recovery", rateLimit: false, redis: null, record, retry: { attempts: 1 } });
  up = createUnipileClient({ baseUrl: `${base}/sandbox/unipile/api/v1`, apiKey: "up-key", rateLimit: false, redis: null, record });
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

interface Person {
  clientId: string;
  campaignId: string;
  leadId: string;
  assignmentId: string;
  email: string;
  linkedinSlug: string;
  runs: Array<{ id: string; step_id: string; channel: string }>;
}

/** A client, an active campaign (email step, LinkedIn step) and a lead in sequence. */
async function person(emailLocal = "pat"): Promise<Person> {
  const sql = db();
  const u = unique("rr");
  const [client] = await sql`insert into public.clients (slug, name, status) values (${u}, 'Recovery Co', 'active') returning id`;
  const [cp] = await sql`insert into public.campaigns (client_id, name, status) values (${client.id}, 'Outreach', 'draft') returning id`;
  const email = `${emailLocal}-${u}@${u}.example`;
  const slug = `lee-${u}`;
  const [lead] = await sql`
    insert into public.lead_pool (email, first_name, last_name, company_name, company_domain, linkedin_url, linkedin_key, country, timezone, source)
    values (${email}, 'Pat', 'Lee', 'Recovery Co', ${`${u}.example`}, ${`https://www.linkedin.com/in/${slug}`}, ${`https://www.linkedin.com/in/${slug}`},
            'AU', 'Australia/Sydney', 'import')
    returning id`;
  const [a] = await sql`insert into public.lead_assignments (lead_id, client_id, campaign_id, als_tier) values (${lead.id}, ${client.id}, ${cp.id}, 'hot') returning id`;
  await sql`update public.lead_assignments set status = 'queued' where id = ${a.id}`;
  await sql`update public.lead_assignments set status = 'in_sequence' where id = ${a.id}`;
  const runs: Person["runs"] = [];
  for (const [pos, channel, action] of [[1, "email", null], [2, "linkedin", "message"]] as const) {
    const [st] = await sql`
      insert into public.campaign_steps (campaign_id, client_id, position, day_offset, channel, linkedin_action)
      values (${cp.id}, ${client.id}, ${pos}, ${pos}, ${channel}, ${action}) returning id`;
    const [run] = await sql`
      insert into public.step_runs (assignment_id, client_id, campaign_id, lead_id, step_id, position, channel, due_at, timezone, country, status)
      values (${a.id}, ${client.id}, ${cp.id}, ${lead.id}, ${st.id}, ${pos}, ${channel}, now(), 'Australia/Sydney', 'AU', 'sent')
      returning id`;
    runs.push({ id: run.id, step_id: st.id, channel });
  }
  await sql`update public.campaigns set status = 'active', approved_at = now() where id = ${cp.id}`;
  return { clientId: client.id, campaignId: cp.id, leadId: lead.id, assignmentId: a.id, email, linkedinSlug: slug, runs };
}

/** Our send of the person's step on a channel, as the dispatcher records it. */
async function sent(p: Person, channel: "email" | "linkedin", provider: string, providerMessageId: string, threadRef: string, ago: number, day: number): Promise<string> {
  const run = p.runs.find((r) => r.channel === channel)!;
  const [s] = await db()`
    insert into public.sends (step_run_id, assignment_id, step_id, channel, client_id, campaign_id, lead_id, touch_day, status, provider,
                              provider_message_id, thread_ref, created_at, dispatched_at, action)
    values (${run.id}, ${p.assignmentId}, ${run.step_id}, ${channel}, ${p.clientId}, ${p.campaignId}, ${p.leadId}, current_date - ${day}::int, 'sent',
            ${provider}, ${providerMessageId}, ${threadRef}, now() - make_interval(secs => ${ago}), now() - make_interval(secs => ${ago}),
            ${channel === "linkedin" ? "message" : null})
    returning id`;
  return s.id;
}

/** The sequence email goes out through Salesforge and (for an address with "reply" in it) is answered; no webhook. */
async function emailed(p: Person): Promise<{ sendId: string; outboundId: string; inboundId: string | null; mailboxId: string }> {
  const contact = await sf.upsertContact({ firstName: "Pat", email: p.email, customVars: { aos_subject: "Hello", aos_body: "Hi Pat", aos_send_id: "x" } });
  const pf = await sf.preflightEnrollment(SEQUENCE, [contact.id]);
  await sf.confirmEnrollment(SEQUENCE, pf.preflightId, "skip");
  await sfState.settled();
  const mine = sfState.emails().filter((e) => e.contactId === contact.id);
  const out = mine.find((e) => e.direction === "outbound")!;
  const reply = mine.find((e) => e.direction === "inbound") ?? null;
  const sendId = await sent(p, "email", "salesforge", `enrol:${SEQUENCE}:${contact.id}`, salesforgeThreadRef(out.mailboxId, out.id), 3600, 1);
  return { sendId, outboundId: out.id, inboundId: reply?.id ?? null, mailboxId: out.mailboxId };
}

const repliesOf = (providerMessageId: string) => db()`select * from public.replies where provider_message_id = ${providerMessageId}`;

describe("Salesforge: replies no webhook delivered", () => {
  it("finds the reply the webhook missed, stores it with its lead, assignment and send, and queues it; a second poll adds nothing", { timeout: 60_000 }, async () => {
    const p = await person("pat-reply");
    const { sendId, inboundId, outboundId } = await emailed(p);
    expect(inboundId).not.toBeNull();
    expect(sfState.deliveries()).toEqual([]); // no webhook went anywhere

    const first = await recoverReplies({ salesforge: sf, unipile: null });
    expect(first.sources[0].source).toBe("salesforge");
    expect(first.sources[0].error).toBeUndefined();
    expect(first.recovered).toBeGreaterThanOrEqual(1);
    const [row] = await repliesOf(inboundId!);
    expect(row).toMatchObject({
      provider: "salesforge", channel: "email", lead_id: p.leadId, assignment_id: p.assignmentId, client_id: p.clientId, send_id: sendId,
      from_address: p.email, subject: "Re: Hello", body: "Thanks — could you tell me more about pricing?", class: null,
    });
    // our own email in the thread is not a reply
    expect(await repliesOf(outboundId)).toEqual([]);
    const [ev] = await db()`select provider, event_type from public.webhook_events where id = ${row.webhook_event_id}`;
    expect(ev).toEqual({ provider: "recovery", event_type: "reply.recovered" });
    const queued = await db()`select topic from public.outbox where topic = 'flow.replies' and payload->>'reply_id' = ${row.id}`;
    expect(queued).toHaveLength(1);
    expect(calls.some((c) => c.provider === "salesforge" && c.operation === "threads.list")).toBe(true);

    const second = await recoverReplies({ salesforge: sf, unipile: null });
    expect(second.recovered).toBe(0);
    expect(await repliesOf(inboundId!)).toHaveLength(1);

    // …and it goes down the same path as a webhook reply: classified and acted on through QStash
    await publishOutbox(db());
    const acted = await until("the recovered reply classified and acted on", async () => {
      const [r] = await repliesOf(inboundId!);
      return r.acted_at ? r : false;
    });
    expect(acted.class).toBe("interested");
    expect((await db()`select status from public.lead_assignments where id = ${p.assignmentId}`)[0].status).toBe("interested");
  });

  it("a reply the webhook already stored is not stored again", { timeout: 60_000 }, async () => {
    const p = await person("sam-reply");
    const { inboundId } = await emailed(p);
    // the webhook path stored it (provider message id = the email id)
    await db()`
      insert into public.replies (client_id, lead_id, assignment_id, channel, provider, provider_message_id, body)
      values (${p.clientId}, ${p.leadId}, ${p.assignmentId}, 'email', 'salesforge', ${inboundId}, 'from the webhook')`;
    await recoverReplies({ salesforge: sf, unipile: null });
    const rows = await repliesOf(inboundId!);
    expect(rows).toHaveLength(1);
    expect(rows[0].body).toBe("from the webhook");
  });

  it("capped ticks continue where they stopped (keyset cursor), and threads of strangers are never read", { timeout: 60_000 }, async () => {
    // bring the cursor up to date first
    await recoverReplies({ salesforge: sf, unipile: null });
    const a = await person("ann-reply");
    const b = await person("bob-reply");
    const ia = (await emailed(a)).inboundId!;
    const ib = (await emailed(b)).inboundId!;
    // a thread whose contact is nobody in our pool
    const stranger = await sf.upsertContact({ firstName: "X", email: `x-reply-${unique("s")}@elsewhere.example` });
    const spf = await sf.preflightEnrollment(SEQUENCE, [stranger.id]);
    await sf.confirmEnrollment(SEQUENCE, spf.preflightId, "skip");
    await sfState.settled();
    calls.length = 0;

    const t1 = await recoverReplies({ salesforge: sf, unipile: null, limits: { threadReads: 1 } });
    expect(t1.sources[0]).toMatchObject({ read: 1, recovered: 1, more: true });
    const t2 = await recoverReplies({ salesforge: sf, unipile: null, limits: { threadReads: 1 } });
    expect(t2.sources[0]).toMatchObject({ read: 1, recovered: 1, more: false });
    const t3 = await recoverReplies({ salesforge: sf, unipile: null, limits: { threadReads: 1 } });
    expect(t3.sources[0]).toMatchObject({ read: 0, recovered: 0, more: false });
    expect(await repliesOf(ia)).toHaveLength(1);
    expect(await repliesOf(ib)).toHaveLength(1);
    // only our leads' threads were opened
    const reads = calls.filter((c) => c.operation === "threads.get");
    expect(reads).toHaveLength(2);
  });

  it("a failing provider is recorded on its cursor and does not throw", async () => {
    const bad = createSalesforgeClient({ baseUrl: `${base}/sandbox/salesforge/public/v2`, apiKey: "wrong", workspaceId: "wks_recovery", rateLimit: false, redis: null, record: () => {}, retry: { attempts: 1 } });
    const r = await recoverReplies({ salesforge: bad, unipile: null });
    expect(r.sources[0].error).toMatch(/401/);
    expect(r.recovered).toBe(0);
    const [c] = await db()`select last_error from public.reply_recovery_cursors where source = 'salesforge'`;
    expect(c.last_error).toMatch(/401/);
    // the next good poll clears it
    await recoverReplies({ salesforge: sf, unipile: null });
    expect((await db()`select last_error from public.reply_recovery_cursors where source = 'salesforge'`)[0].last_error).toBeNull();
  });
});

describe("Unipile: LinkedIn messages no webhook delivered", () => {
  async function connectedChat(account: string, slug: string): Promise<{ chatId: string; providerId: string }> {
    const profile = (await up.getProfile(account, slug))!;
    const inv = await up.sendInvitation(account, profile.providerId, null);
    await upState.accept(inv.invitationId);
    const { chatId } = await up.startChat(account, [profile.providerId], "Hi Pat, thanks for connecting.");
    return { chatId, providerId: profile.providerId };
  }

  function theySaid(chatId: string, account: string, sender: string, text: string, at: Date): string {
    const id = unique("upmsg");
    inbound.set(chatId, [...(inbound.get(chatId) ?? []), {
      object: "ChatMessage", id, chat_id: chatId, account_id: account, text, sender_id: sender, is_sender: 0, timestamp: at.toISOString(), seen: 0,
    }]);
    return id;
  }

  it("reads only the chats our sends started, stores the other person's newer messages once, never our own", { timeout: 30_000 }, async () => {
    const p = await person();
    const account = unique("acct");
    await db()`
      insert into public.senders (client_id, channel, provider, address, daily_cap, provider_account_id)
      values (${p.clientId}, 'linkedin', 'unipile', ${`li-${account}`}, 50, ${account})`;
    const ours = await connectedChat(account, p.linkedinSlug);
    const sendId = await sent(p, "linkedin", "unipile", "msg-ours", ours.chatId, 3600, 0);
    const reply = theySaid(ours.chatId, account, ours.providerId, "Sure — what does it cost?", new Date());
    const older = theySaid(ours.chatId, account, ours.providerId, "(an old message from before our first one)", new Date(Date.now() - 7200_000));
    // someone else's conversation on the same account
    const strangers = await connectedChat(account, `stranger-${unique("s")}`);
    const private1 = theySaid(strangers.chatId, account, strangers.providerId, "Dinner on Friday?", new Date());
    calls.length = 0;

    const r = await recoverReplies({ salesforge: null, unipile: up });
    const src = r.sources.find((s) => s.source === `unipile:${account}`)!;
    expect(src).toMatchObject({ read: 1, recovered: 1 });
    expect(src.error).toBeUndefined();
    const [row] = await repliesOf(reply);
    expect(row).toMatchObject({
      provider: "unipile", channel: "linkedin", body: "Sure — what does it cost?", lead_id: p.leadId, assignment_id: p.assignmentId,
      client_id: p.clientId, send_id: sendId, from_address: ours.providerId,
    });
    expect(await repliesOf(older)).toEqual([]);
    expect(await repliesOf(private1)).toEqual([]);
    // the stranger's chat was never opened
    expect(calls.filter((c) => c.operation === "chats.messages")).toHaveLength(1);
    // our own message is not a reply
    const own = upState.messages(ours.chatId).find((m) => m.is_sender)!;
    expect(await repliesOf(own.id)).toEqual([]);

    const again = await recoverReplies({ salesforge: null, unipile: up });
    expect(again.sources.find((s) => s.source === `unipile:${account}`)).toMatchObject({ recovered: 0 });
    expect(await repliesOf(reply)).toHaveLength(1);
  });
});

describe("the flow", () => {
  it("flow-reply-recovery, invoked by QStash, polls the configured provider and queues what it finds", { timeout: 60_000 }, async () => {
    const p = await person("flo-reply");
    const { inboundId } = await emailed(p);
    const vars = {
      SALESFORGE_BASE_URL: `${base}/sandbox/salesforge/public/v2`, SALESFORGE_API_KEY: "sf-key", SALESFORGE_WORKSPACE_ID: "wks_recovery",
      SALESFORGE_RATE_LIMIT: "off", UNIPILE_BASE_URL: undefined, UNIPILE_API_KEY: undefined,
    } as Record<string, string | undefined>;
    const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
    const set = (v: Record<string, string | undefined>) => {
      for (const [k, x] of Object.entries(v)) if (x === undefined) delete process.env[k]; else process.env[k] = x;
      resetEnvCache();
      resetProviderHttpState();
    };
    set(vars);
    try {
      const qstash = new Client({ baseUrl: `${stack.url}/qstash`, token: stack.secrets.qstashToken, enableTelemetry: false });
      await qstash.publishJSON({ url: `${stack.url}/functions/v1/flow-reply-recovery`, body: {} });
      await until("the missed reply recovered by the flow", async () => (await repliesOf(inboundId!)).length === 1);
    } finally {
      set(saved);
    }
    const [row] = await repliesOf(inboundId!);
    expect(row).toMatchObject({ provider: "salesforge", lead_id: p.leadId, assignment_id: p.assignmentId });
    // the provider calls the flow made were recorded in provider_calls
    const [pc] = await db()`select count(*)::int as n from public.provider_calls where provider = 'salesforge' and operation = 'threads.get' and created_at > now() - interval '1 minute'`;
    expect(pc.n).toBeGreaterThan(0);
  });
});

describe("the cursor order", () => {
  it("is (activity, id): strictly after the cursor, oldest first, undated items last", () => {
    const at = (s: string) => new Date(`2026-11-24T${s}:00Z`);
    const items = [
      { id: "b", at: at("10:00") }, { id: "a", at: at("10:00") }, { id: "c", at: at("09:00") }, { id: "d", at: null }, { id: "e", at: at("11:00") },
    ];
    const key = (x: { id: string; at: Date | null }) => x;
    expect(afterCursor(items, key, { at: at("10:00"), id: "a" }).map((x) => x.id)).toEqual(["b", "e", "d"]);
    expect(afterCursor(items, key, { at: at("08:00"), id: "" }).map((x) => x.id)).toEqual(["c", "a", "b", "e", "d"]);
  });
});
