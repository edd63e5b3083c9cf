// Inbound processing end to end on the local stack: signed provider webhooks go to the webhook
// functions, the QStash emulator delivers 'flow.inbound' to flow-inbound, and the outreach record
// changes — delivery statuses forward only, Salesforge threads, opens, bounces and unsubscribes,
// accepted LinkedIn invitations, replies for the classifier, STOP and "please remove me" texts
// suppressing the person everywhere before the next gate run, Vapi outcomes with the busy/no-answer
// retry rules and opt-outs said on the call, letters, and Cal.com/Calendly bookings. Also the
// failure path (error and attempts recorded, QStash retries) and the sweep of lost events.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../../dev/stack.ts";
import { db } from "../../shared/db/client.ts";
import { callOptOut, isStopKeyword, movesForward, optOutIntent, processInboundEvent, sweepInboundEvents } from "../../shared/engines/inbound.ts";
import { normaliseLinkedin } from "../../shared/engines/suppress.ts";
import { backgroundPublishSettled } from "../../shared/webhooks/receive.ts";
import { signCalCom, signCalendly, signPostGridJwt, signTwilio, signVapi } from "../../shared/webhooks/verify.ts";
import { getStack, unique } from "../helpers/stack.ts";
import { until } from "../helpers/until.ts";

let stack: Stack;
const SECRETS: Record<string, string> = {
  TWILIO_AUTH_TOKEN: "", CLICKSEND_WEBHOOK_TOKEN: "", SALESFORGE_WEBHOOK_TOKEN: "", UNIPILE_WEBHOOK_SECRET: "",
  POSTGRID_WEBHOOK_SECRET: "", VAPI_WEBHOOK_SECRET: "", CALCOM_WEBHOOK_SECRET: "", CALENDLY_SIGNING_KEY: "",
};
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  stack = await getStack();
  for (const name of Object.keys(SECRETS)) {
    saved[name] = process.env[name];
    process.env[name] ||= `inbound-test-${name.toLowerCase()}`;
    SECRETS[name] = process.env[name]!;
  }
});
afterAll(async () => {
  await backgroundPublishSettled();
  for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v);
});

// ---------------------------------------------------------------------------------------------
// Delivering signed webhooks
// ---------------------------------------------------------------------------------------------

const base = () => process.env.PUBLIC_FUNCTIONS_BASE_URL!;

async function postRaw(fn: string, raw: string, headers: Record<string, string>, rest = ""): Promise<number> {
  const res = await fetch(`${stack.url}/functions/v1/${fn}${rest}`, { method: "POST", headers, body: raw });
  await res.body?.cancel();
  return res.status;
}

const deliver = {
  async twilio(params: Record<string, string>) {
    const raw = new URLSearchParams(params).toString();
    const sig = await signTwilio(`${base()}/webhook-twilio`, new URLSearchParams(raw), SECRETS.TWILIO_AUTH_TOKEN);
    return postRaw("webhook-twilio", raw, { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": sig });
  },
  async clicksend(body: Record<string, string>, json = false) {
    const raw = json ? JSON.stringify(body) : new URLSearchParams(body).toString();
    return postRaw("webhook-clicksend", raw, { "content-type": json ? "application/json" : "application/x-www-form-urlencoded" }, `?token=${SECRETS.CLICKSEND_WEBHOOK_TOKEN}`);
  },
  async salesforge(body: Record<string, unknown>) {
    return postRaw("webhook-salesforge", JSON.stringify(body), { "content-type": "application/json" }, `/${SECRETS.SALESFORGE_WEBHOOK_TOKEN}`);
  },
  async unipile(body: Record<string, unknown>) {
    return postRaw("webhook-unipile", JSON.stringify(body), { "unipile-auth": SECRETS.UNIPILE_WEBHOOK_SECRET });
  },
  async vapi(message: Record<string, unknown>) {
    const raw = JSON.stringify({ message: { timestamp: Date.now(), ...message } });
    return postRaw("webhook-vapi", raw, { "content-type": "application/json", ...(await signVapi(raw, { secret: SECRETS.VAPI_WEBHOOK_SECRET })) });
  },
  async postgrid(event: Record<string, unknown>) {
    return postRaw("webhook-postgrid", await signPostGridJwt(event, SECRETS.POSTGRID_WEBHOOK_SECRET), { "content-type": "text/plain" });
  },
  async calcom(body: Record<string, unknown>) {
    const raw = JSON.stringify(body);
    return postRaw("webhook-calcom", raw, { "content-type": "application/json", "x-cal-signature-256": await signCalCom(raw, SECRETS.CALCOM_WEBHOOK_SECRET) });
  },
  async calendly(body: Record<string, unknown>) {
    const raw = JSON.stringify(body);
    return postRaw("webhook-calendly", raw, { "content-type": "application/json", "calendly-webhook-signature": await signCalendly(raw, SECRETS.CALENDLY_SIGNING_KEY, new Date()) });
  },
};

/** Waits until flow-inbound has applied the event (QStash emulator → flow-inbound). */
async function applied(provider: string, eventId: string) {
  return until(`${provider} ${eventId} applied`, async () => {
    const [r] = await db()`select id, processed_at, attempts, error from public.webhook_events where provider = ${provider} and event_id = ${eventId}`;
    return r?.processed_at ? r : false;
  }, 30_000, 100);
}

// ---------------------------------------------------------------------------------------------
// Fixture: one client with an active campaign and a sender per channel; people in sequence
// ---------------------------------------------------------------------------------------------

interface World {
  clientId: string;
  campaignId: string;
  steps: Record<string, string>;
  senders: Record<string, string>;
  unipileAccount: string;
}
interface Person {
  leadId: string;
  assignmentId: string;
  email: string;
  phone: string;
  linkedin: string;
  slug: string;
  domain: string;
  runs: Record<string, string>;
}

let phoneSeq = 20_000_000 + Math.floor(Math.random() * 70_000_000);
let touchDay = 100;
let world: World;

async function makeWorld(): Promise<World> {
  const sql = db();
  const tag = unique("inb").toLowerCase().replace(/[^a-z0-9-]/g, "-");
  const [client] = await sql`insert into public.clients (slug, name, status, permission_mode) values (${tag.slice(0, 60)}, ${tag}, 'active', 'autopilot') returning id`;
  const [campaign] = await sql`insert into public.campaigns (client_id, name) values (${client.id}, ${tag}) returning id`;
  const steps: Record<string, string> = {};
  for (const [i, channel] of ["email", "sms", "voice", "linkedin", "mail"].entries()) {
    const [s] = await sql`
      insert into public.campaign_steps (campaign_id, client_id, position, day_offset, channel, linkedin_action)
      values (${campaign.id}, ${client.id}, ${i + 1}, ${i}, ${channel}, ${channel === "linkedin" ? "invitation" : null}) returning id`;
    steps[channel] = s.id;
  }
  await sql`update public.campaigns set status = 'active', approved_at = now() where id = ${campaign.id}`;
  const unipileAccount = `acc-${tag}`;
  const senders: Record<string, string> = {};
  for (const [channel, provider, address, account] of [
    ["email", "salesforge", `sam-${tag}@sender.example`, "mb_1"], ["sms", "twilio", "+61255500001", null],
    ["voice", "vapi", "+61255500002", "pn_1"], ["linkedin", "unipile", unipileAccount, unipileAccount], ["mail", "postgrid", "HQ", null],
  ] as const) {
    const [s] = await sql`insert into public.senders (client_id, channel, provider, address, provider_account_id, daily_cap)
                          values (${client.id}, ${channel}, ${provider}, ${address}, ${account}, 100) returning id`;
    senders[channel] = s.id;
  }
  return { clientId: client.id, campaignId: campaign.id, steps, senders, unipileAccount };
}

async function makePerson(opts: { email?: string } = {}): Promise<Person> {
  const sql = db();
  const tag = unique("p").toLowerCase().replace(/[^a-z0-9-]/g, "-");
  const domain = `${tag}.example`;
  const phone = `+614${String(phoneSeq++).padStart(8, "0")}`;
  const email = opts.email ?? `pat-${tag}@${domain}`;
  const linkedin = normaliseLinkedin(tag)!;
  const [lead] = await sql`
    insert into public.lead_pool (email, email_status, first_name, company_domain, phone, phone_e164, linkedin_url, linkedin_key, country, timezone)
    values (${email}, 'verified', 'Pat', ${domain}, ${phone}, ${phone}, ${linkedin}, ${linkedin}, 'AU', 'Australia/Sydney') returning id`;
  const [a] = await sql`insert into public.lead_assignments (lead_id, client_id, campaign_id, als_tier) values (${lead.id}, ${world.clientId}, ${world.campaignId}, 'hot') returning id`;
  await sql`update public.lead_assignments set status = 'queued' where id = ${a.id}`;
  await sql`update public.lead_assignments set status = 'in_sequence' where id = ${a.id}`;
  const runs: Record<string, string> = {};
  for (const [i, channel] of ["email", "sms", "voice", "linkedin", "mail"].entries()) {
    const [r] = await sql`
      insert into public.step_runs (assignment_id, client_id, campaign_id, lead_id, step_id, position, channel, due_at, timezone, country, region, body)
      values (${a.id}, ${world.clientId}, ${world.campaignId}, ${lead.id}, ${world.steps[channel]}, ${i + 1}, ${channel},
              now() + make_interval(days => ${i + 1}), 'Australia/Sydney', 'AU', 'NSW', 'Hello') returning id`;
    runs[channel] = r.id;
  }
  return { leadId: lead.id, assignmentId: a.id, email: email.toLowerCase(), phone, linkedin, slug: tag, domain, runs };
}

/** A send that went out on the person's step for `channel`: the step run is 'sent', the send carries the provider's id. */
async function sent(p: Person, channel: string, o: { provider: string; providerMessageId: string; status?: string; attempt?: number; threadRef?: string }) {
  const sql = db();
  const attempt = o.attempt ?? 1;
  await sql`update public.step_runs set status = 'sent', voice_attempts = ${channel === "voice" ? attempt : 0} where id = ${p.runs[channel]}`;
  const [s] = await sql`
    insert into public.sends (step_run_id, assignment_id, step_id, channel, attempt, client_id, campaign_id, lead_id, sender_id,
                              touch_day, action, status, provider, provider_message_id, thread_ref, dispatched_at)
    values (${p.runs[channel]}, ${p.assignmentId}, ${world.steps[channel]}, ${channel}, ${attempt}, ${world.clientId}, ${world.campaignId},
            ${p.leadId}, ${world.senders[channel]}, current_date + ${touchDay++}::integer, ${channel === "linkedin" ? "invitation" : null},
            ${o.status ?? "sent"}, ${o.provider}, ${o.providerMessageId}, ${o.threadRef ?? null}, now())
    returning id`;
  return s.id as string;
}

async function sendRow(id: string) {
  const [s] = await db()`select status, delivered_at, opened_at, thread_ref, error from public.sends where id = ${id}`;
  return s;
}

async function assignmentStatus(p: Person): Promise<string> {
  const [a] = await db()`select status from public.lead_assignments where id = ${p.assignmentId}`;
  return a.status;
}

async function suppressedEverywhere(p: Person): Promise<boolean> {
  const [other] = await db()`select id from public.clients where id <> ${world.clientId} limit 1`;
  for (const clientId of [world.clientId, other?.id ?? world.clientId]) {
    for (const channel of ["email", "sms", "voice", "linkedin", "mail"]) {
      const [s] = await db()`select private.is_suppressed(${channel}, ${clientId}::uuid, ${p.email}, null, ${p.phone}, ${p.linkedin}) as s`;
      if (!s.s) return false;
    }
  }
  return true;
}

const sid = (prefix: string) => `${prefix}${unique("x").replace(/[^a-z0-9]/gi, "")}`;

beforeAll(async () => {
  world = await makeWorld();
});

// ---------------------------------------------------------------------------------------------

describe("opt-out wording", () => {
  it("STOP and its synonyms are whole-message keywords; objections in other words are phrases", () => {
    for (const t of ["STOP", "stop", " Stop. ", "STOPALL", "unsubscribe", "Cancel", "END", "quit!", "REVOKE", "optout"]) expect(isStopKeyword(t), t).toBe(true);
    for (const t of ["stop by tomorrow?", "the END of the month works", "START", "HELP", ""]) expect(isStopKeyword(t), t).toBe(false);
    expect(optOutIntent("STOP")).toBe("keyword");
    for (const t of ["Please remove me from your list", "do not contact me again", "Stop texting me", "opt me out", "Don't call this number"]) {
      expect(optOutIntent(t), t).toBe("phrase");
    }
    expect(optOutIntent("Sounds good, call me Tuesday")).toBeNull();
    // on a call only the person's own words count, not the assistant's
    expect(callOptOut({ artifact: { transcript: "AI: We won't call again if you'd prefer.\nUser: Sure, send details." } })).toBe(false);
    expect(callOptOut({ artifact: { transcript: "AI: Hi!\nUser: Please remove me from your list." } })).toBe(true);
    expect(callOptOut({ artifact: { transcript: "" }, analysis: { summary: "The prospect asked us to stop calling." } })).toBe(true);
  });

  it("statuses move forward only; delivered, failed and bounced are final", () => {
    expect(movesForward("sent", "delivered")).toBe(true);
    expect(movesForward("unknown", "sent")).toBe(true);
    expect(movesForward("delivered", "sent")).toBe(false);
    expect(movesForward("delivered", "failed")).toBe(false);
    expect(movesForward("sent", "sent")).toBe(false);
  });
});

describe("delivery statuses", () => {
  it("Twilio callbacks arriving out of order never move a send backwards", async () => {
    const p = await makePerson();
    const sm = sid("SM");
    const send = await sent(p, "sms", { provider: "twilio", providerMessageId: sm });
    const cb = (status: string) => deliver.twilio({ AccountSid: "AC1", MessageSid: sm, MessageStatus: status, SmsSid: sm, SmsStatus: status, To: p.phone, From: "+61255500001" });
    expect(await cb("delivered")).toBe(200);
    await applied("twilio", `${sm}:delivered`);
    expect(await cb("sent")).toBe(200);
    expect(await cb("undelivered")).toBe(200);
    await applied("twilio", `${sm}:sent`);
    await applied("twilio", `${sm}:undelivered`);
    const s = await sendRow(send);
    expect(s.status).toBe("delivered");
    expect(s.delivered_at).not.toBeNull();
  });

  it("a ClickSend receipt finds the send by our id in custom_string; Undelivered marks it failed", async () => {
    const p = await makePerson();
    const send = await sent(p, "sms", { provider: "clicksend", providerMessageId: sid("CS") });
    const msg = sid("cs");
    expect(await deliver.clicksend({ message_id: msg, status: "Undelivered", status_code: "301", error_text: "handset unreachable", custom_string: send, message_type: "sms", timestamp: "1" })).toBe(200);
    await applied("clicksend", `receipt:${msg}:Undelivered`);
    expect(await sendRow(send)).toMatchObject({ status: "failed", error: "clicksend handset unreachable" });
  });

  it("a PostGrid letter completes as delivered; one returned to sender bounces", async () => {
    const p = await makePerson();
    const letter = sid("letter_");
    const send = await sent(p, "mail", { provider: "postgrid", providerMessageId: letter });
    const ev = (status: string, imbStatus?: string) => ({ id: sid("event_"), type: "letter.updated", data: { id: letter, status, imbStatus, metadata: { sendId: send } } });
    const printing = ev("printing");
    const completed = ev("completed");
    await deliver.postgrid(completed);
    await deliver.postgrid(printing);
    await applied("postgrid", completed.id);
    await applied("postgrid", printing.id);
    expect((await sendRow(send)).status).toBe("delivered");

    const q = await makePerson();
    const letter2 = sid("letter_");
    const send2 = await sent(q, "mail", { provider: "postgrid", providerMessageId: letter2 });
    const returned = { id: sid("event_"), type: "letter.updated", data: { id: letter2, status: "processed_for_delivery", imbStatus: "returned_to_sender" } };
    await deliver.postgrid(returned);
    await applied("postgrid", returned.id);
    expect((await sendRow(send2)).status).toBe("bounced");
  });
});

describe("email (Salesforge)", () => {
  it("email_sent records the thread, email_opened the open, email_replied a reply for the classifier", async () => {
    const p = await makePerson();
    const contactId = sid("c_");
    const send = await sent(p, "email", { provider: "salesforge", providerMessageId: `enrol:1001:${contactId}` });
    const common = { workspaceId: "ws", sequenceId: "1001", mailboxId: "mb_1", threadId: "thr_1", subject: "Hello", contact: { id: contactId, email: p.email, firstName: "Pat", customVars: { aos_send_id: send } } };
    const emailId = sid("eml_");
    const evSent = sid("evt_");
    await deliver.salesforge({ type: "email_sent", eventId: evSent, emailId, ...common });
    await applied("salesforge", evSent);
    expect(await sendRow(send)).toMatchObject({ status: "sent", thread_ref: `mb_1:${emailId}`, opened_at: null });

    const evOpen = sid("evt_");
    await deliver.salesforge({ type: "email_opened", eventId: evOpen, emailId, ...common, contact: { ...common.contact, customVars: {} } });
    await applied("salesforge", evOpen);
    expect((await sendRow(send)).opened_at).not.toBeNull();

    const replyId = sid("eml_");
    const evReply = sid("evt_");
    await deliver.salesforge({ type: "email_replied", eventId: evReply, emailId: replyId, replyToEmailId: emailId, ...common, subject: "Re: Hello", content: "Could you tell me more about pricing?" });
    await applied("salesforge", evReply);
    const [reply] = await db()`select id, client_id, lead_id, assignment_id, send_id, channel, body, subject, webhook_event_id from public.replies where provider = 'salesforge' and provider_message_id = ${replyId}`;
    expect(reply).toMatchObject({ client_id: world.clientId, lead_id: p.leadId, assignment_id: p.assignmentId, send_id: send, channel: "email", body: "Could you tell me more about pricing?", subject: "Re: Hello" });
    // stored unclassified and handed to the replies classifier (which may already have run)
    const [queued] = await db()`select count(*)::int as n from public.outbox where topic = 'flow.replies' and payload->>'reply_id' = ${reply.id}`;
    expect(queued.n).toBe(1);
  });

  it("email_bounced suppresses that address only and ends the assignment as bounced", async () => {
    const p = await makePerson();
    const emailId = sid("eml_");
    const send = await sent(p, "email", { provider: "salesforge", providerMessageId: sid("x"), threadRef: `mb_1:${emailId}` });
    const ev = sid("evt_");
    await deliver.salesforge({ type: "email_bounced", eventId: ev, mailboxId: "mb_1", emailId, bounceType: "hard", reason: "550 5.1.1 no such user", contact: { id: "c", email: p.email.toUpperCase() } });
    await applied("salesforge", ev);
    expect(await sendRow(send)).toMatchObject({ status: "bounced", error: "550 5.1.1 no such user" });
    expect(await assignmentStatus(p)).toBe("bounced");
    const sup = await db()`select kind from public.suppressions where value in (${p.email}, ${p.phone}, ${p.linkedin}) and client_id is null`;
    expect(sup.map((r) => r.kind)).toEqual(["email"]);
  });

  it("contact_unsubscribed and dnc_added unsubscribe the person everywhere", async () => {
    const p = await makePerson();
    const ev = sid("evt_");
    await deliver.salesforge({ type: "contact_unsubscribed", eventId: ev, contact: { id: "c", email: p.email } });
    await applied("salesforge", ev);
    expect(await assignmentStatus(p)).toBe("unsubscribed");
    expect(await suppressedEverywhere(p)).toBe(true);

    const q = await makePerson();
    const ev2 = sid("evt_");
    await deliver.salesforge({ type: "dnc_added", eventId: ev2, dncs: [q.email] });
    await applied("salesforge", ev2);
    expect(await assignmentStatus(q)).toBe("unsubscribed");
  });
});

describe("LinkedIn (Unipile)", () => {
  it("new_relation marks the invitation delivered (accepted); a message from the lead becomes a reply", async () => {
    const p = await makePerson();
    const send = await sent(p, "linkedin", { provider: "unipile", providerMessageId: sid("inv_") });
    const member = sid("ACoAA");
    await deliver.unipile({ event: "new_relation", account_id: world.unipileAccount, account_type: "LINKEDIN", user_provider_id: member, user_public_identifier: p.slug, user_profile_url: `https://www.linkedin.com/in/${p.slug}` });
    await applied("unipile", `new_relation:${world.unipileAccount}:${member}`);
    expect((await sendRow(send)).status).toBe("delivered");

    const chat = sid("chat_");
    await db()`update public.sends set thread_ref = ${chat} where id = ${send}`;
    const mine = sid("msg_");
    await deliver.unipile({ event: "message_received", account_id: world.unipileAccount, account_info: { user_id: "ME" }, chat_id: chat, message_id: mine, message: "hello from me", sender: { attendee_provider_id: "ME" } });
    const theirs = sid("msg_");
    await deliver.unipile({ event: "message_received", account_id: world.unipileAccount, account_info: { user_id: "ME" }, chat_id: chat, message_id: theirs, message: "Happy to chat next week", sender: { attendee_provider_id: member, attendee_profile_url: `https://www.linkedin.com/in/${p.slug}` } });
    await applied("unipile", `message_received:${mine}`);
    await applied("unipile", `message_received:${theirs}`);
    const replies = await db()`select provider_message_id, lead_id, channel, body from public.replies where provider = 'unipile' and provider_message_id in (${mine}, ${theirs})`;
    expect(replies).toEqual([{ provider_message_id: theirs, lead_id: p.leadId, channel: "linkedin", body: "Happy to chat next week" }]);
  });
});

describe("texts: STOP and 'please remove me' suppress the person before the next gate run", () => {
  it("STOP via Twilio: suppressed on every channel for every client, no reply to classify, the gate refuses the rest", async () => {
    const p = await makePerson();
    const sm = sid("SM");
    expect(await deliver.twilio({ AccountSid: "AC1", MessageSid: sm, SmsSid: sm, Body: "Stop", From: p.phone, To: "+61255500001", SmsStatus: "received", NumMedia: "0" })).toBe(200);
    await applied("twilio", `${sm}:received`);
    expect(await suppressedEverywhere(p)).toBe(true);
    expect(await assignmentStatus(p)).toBe("unsubscribed");
    expect(await db()`select 1 from public.replies where provider = 'twilio' and provider_message_id = ${sm}`).toHaveLength(0);
    const runs = await db()`select status, last_refusal from public.step_runs where assignment_id = ${p.assignmentId}`;
    expect(runs.every((r) => r.status === "cancelled" && r.last_refusal === "unsubscribed")).toBe(true);
    await gateRefuses(p);
  });

  it("'please remove me' via ClickSend (JSON): a reply is kept for the classifier and the person is suppressed", async () => {
    const p = await makePerson();
    const msg = sid("in");
    // ClickSend reports numbers without the plus
    expect(await deliver.clicksend({ message_id: msg, from: p.phone.slice(1), to: "+61255500001", body: "Please remove me from your list, thanks", original_message_id: "", custom_string: "" }, true)).toBe(200);
    await applied("clicksend", `inbound:${msg}`);
    expect(await suppressedEverywhere(p)).toBe(true);
    expect(await assignmentStatus(p)).toBe("unsubscribed");
    const [reply] = await db()`select id, lead_id, body from public.replies where provider = 'clicksend' and provider_message_id = ${msg}`;
    expect(reply).toMatchObject({ lead_id: p.leadId, body: "Please remove me from your list, thanks" });
    const [queued] = await db()`select count(*)::int as n from public.outbox where topic = 'flow.replies' and payload->>'reply_id' = ${reply.id}`;
    expect(queued.n).toBe(1);
    await gateRefuses(p);
  });
});

class Rollback extends Error {}

/** Puts the person's steps back to due and runs the gate in a rolled-back transaction: nothing goes out. */
async function gateRefuses(p: Person) {
  await db().begin(async (tx) => {
    await tx`update public.step_runs set status = 'scheduled', due_at = now() - interval '1 minute' where assignment_id = ${p.assignmentId}`;
    await tx`select private.gate_due_steps(100000, 100, now())`;
    const runs = await tx`select status, last_refusal from public.step_runs where assignment_id = ${p.assignmentId}`;
    expect(runs.every((r) => r.status === "cancelled" && r.last_refusal === "assignment_inactive")).toBe(true);
    expect(await tx`select 1 from public.sends where lead_id = ${p.leadId} and status = 'pending'`).toHaveLength(0);
    throw new Rollback();
  }).catch((e) => {
    if (!(e instanceof Rollback)) throw e;
  });
}

describe("calls (Vapi)", () => {
  const report = (callId: string, sendId: string, endedReason: string, transcript = "", customer?: string) => ({
    type: "end-of-call-report", endedReason, call: { id: callId, assistant: { metadata: { sendId } } },
    customer: customer ? { number: customer } : undefined, artifact: { transcript, messages: [] }, analysis: { summary: "" },
  });

  it("busy: the step is due again in two hours; no answer: the next calling day; the third attempt is the last", async () => {
    const p = await makePerson();
    const busyCall = sid("call_");
    const send = await sent(p, "voice", { provider: "vapi", providerMessageId: busyCall, attempt: 1 });
    await deliver.vapi(report(busyCall, send, "customer-busy"));
    const ev = await applied("vapi", `${busyCall}:end-of-call-report`);
    const [run] = await db()`select r.status, r.due_at, e.received_at from public.step_runs r, public.webhook_events e where r.id = ${p.runs.voice} and e.id = ${ev.id}`;
    expect(run.status).toBe("scheduled");
    expect(run.due_at.getTime() - run.received_at.getTime()).toBe(2 * 3_600_000);
    expect(await sendRow(send)).toMatchObject({ status: "failed", error: "vapi customer-busy" });

    const q = await makePerson();
    const quiet = sid("call_");
    const send2 = await sent(q, "voice", { provider: "vapi", providerMessageId: quiet, attempt: 2 });
    await deliver.vapi(report(quiet, send2, "customer-did-not-answer"));
    const ev2 = await applied("vapi", `${quiet}:end-of-call-report`);
    const [run2] = await db()`
      select r.status, r.due_at, private.next_window_start('voice', 'AU', 'NSW', 'Australia/Sydney',
               ((e.received_at at time zone 'Australia/Sydney')::date + 1)::timestamp at time zone 'Australia/Sydney') as expected
      from public.step_runs r, public.webhook_events e where r.id = ${q.runs.voice} and e.id = ${ev2.id}`;
    expect(run2.status).toBe("scheduled");
    expect(run2.due_at.toISOString()).toBe(run2.expected.toISOString());

    const r = await makePerson();
    const third = sid("call_");
    const send3 = await sent(r, "voice", { provider: "vapi", providerMessageId: third, attempt: 3 });
    await deliver.vapi(report(third, send3, "customer-busy"));
    await applied("vapi", `${third}:end-of-call-report`);
    const [run3] = await db()`select status from public.step_runs where id = ${r.runs.voice}`;
    expect(run3.status).toBe("sent");
  });

  it("answered: delivered and the transcript becomes a reply; an opt-out said on the call unsubscribes the person", async () => {
    const p = await makePerson();
    const call = sid("call_");
    const send = await sent(p, "voice", { provider: "vapi", providerMessageId: call });
    await deliver.vapi(report(call, send, "customer-ended-call", "AI: Hi Pat\nUser: Sure, send me the details.", p.phone));
    await applied("vapi", `${call}:end-of-call-report`);
    expect((await sendRow(send)).status).toBe("delivered");
    const [reply] = await db()`select channel, lead_id, body from public.replies where provider = 'vapi' and provider_message_id = ${call}`;
    expect(reply).toEqual({ channel: "voice", lead_id: p.leadId, body: "AI: Hi Pat\nUser: Sure, send me the details." });
    const [run] = await db()`select status from public.step_runs where id = ${p.runs.voice}`;
    expect(run.status).toBe("sent");

    const q = await makePerson();
    const call2 = sid("call_");
    const send2 = await sent(q, "voice", { provider: "vapi", providerMessageId: call2 });
    await deliver.vapi(report(call2, send2, "customer-ended-call", "AI: Hi Pat\nUser: Please do not call me again.", q.phone));
    await applied("vapi", `${call2}:end-of-call-report`);
    expect(await assignmentStatus(q)).toBe("unsubscribed");
    expect(await suppressedEverywhere(q)).toBe(true);
  });
});

describe("bookings", () => {
  it("Cal.com: a booking by the lead's email books the meeting and moves the assignment; a cancel cancels it", async () => {
    const p = await makePerson();
    const uid = sid("bk");
    const payload = { uid, title: "Intro", startTime: "2026-12-02T00:00:00.000Z", endTime: "2026-12-02T00:30:00.000Z", attendees: [{ email: p.email.toUpperCase(), name: "Pat" }], metadata: { videoCallUrl: "https://cal.example/v/1" } };
    await deliver.calcom({ triggerEvent: "BOOKING_CREATED", createdAt: new Date().toISOString(), payload });
    await applied("calcom", `${uid}:BOOKING_CREATED:2026-12-02T00:00:00.000Z`);
    const [m] = await db()`select client_id, lead_id, assignment_id, status, starts_at, attendee_email, join_url from public.meetings where source = 'calcom' and external_id = ${uid}`;
    expect(m).toMatchObject({ client_id: world.clientId, lead_id: p.leadId, assignment_id: p.assignmentId, status: "booked", attendee_email: p.email, join_url: "https://cal.example/v/1" });
    expect(m.starts_at.toISOString()).toBe("2026-12-02T00:00:00.000Z");
    // in_sequence → replied → meeting_booked: the state machine's only way there
    expect(await assignmentStatus(p)).toBe("meeting_booked");
    const trail = await db()`select from_status, to_status, reason from public.events where entity_id = ${p.assignmentId} and kind = 'status_changed' order by id`;
    expect(trail.slice(-2)).toEqual([
      { from_status: "in_sequence", to_status: "replied", reason: "meeting booked" },
      { from_status: "replied", to_status: "meeting_booked", reason: "meeting booked" },
    ]);

    await deliver.calcom({ triggerEvent: "BOOKING_CANCELLED", createdAt: new Date().toISOString(), payload: { ...payload, cancellationReason: "busy" } });
    await applied("calcom", `${uid}:BOOKING_CANCELLED:2026-12-02T00:00:00.000Z`);
    const [m2] = await db()`select status from public.meetings where source = 'calcom' and external_id = ${uid}`;
    expect(m2.status).toBe("cancelled");
  });

  it("Calendly: utm_content names the lead; a cancel arriving first is not undone by the late 'created'", async () => {
    const p = await makePerson();
    const uri = `https://api.calendly.com/scheduled_events/E/invitees/${sid("i")}`;
    const payload = { uri, email: "assistant@elsewhere.example", name: "Pat's assistant", tracking: { utm_content: p.leadId }, scheduled_event: { name: "Intro call", start_time: "2026-12-03T01:00:00.000000Z", end_time: "2026-12-03T01:30:00.000000Z", location: { join_url: "https://zoom.example/j/1" } } };
    await deliver.calendly({ event: "invitee.canceled", payload: { ...payload, rescheduled: true } });
    await applied("calendly", `${uri}:invitee.canceled`);
    await deliver.calendly({ event: "invitee.created", payload });
    await applied("calendly", `${uri}:invitee.created`);
    const [m] = await db()`select lead_id, status, title from public.meetings where source = 'calendly' and external_id = ${uri}`;
    expect(m).toEqual({ lead_id: p.leadId, status: "rescheduled", title: "Intro call" });
  });

  it("a booking by someone we never contacted is stored, processed, and creates nothing", async () => {
    const uid = sid("bk");
    await deliver.calcom({ triggerEvent: "BOOKING_CREATED", payload: { uid, startTime: "2026-12-02T00:00:00.000Z", attendees: [{ email: `${uid}@stranger.example` }] } });
    await applied("calcom", `${uid}:BOOKING_CREATED:2026-12-02T00:00:00.000Z`);
    expect(await db()`select 1 from public.meetings where external_id = ${uid}`).toHaveLength(0);
  });
});

describe("failures, retries and the sweep", () => {
  it("a status for a send still being dispatched fails with error and attempts recorded; QStash's retry applies it once recorded", async () => {
    const p = await makePerson();
    const sm = sid("SM");
    const send = await sent(p, "sms", { provider: "twilio", providerMessageId: sm, status: "dispatching" });
    expect(await deliver.twilio({ AccountSid: "AC1", MessageSid: sm, MessageStatus: "delivered", SmsSid: sm, SmsStatus: "delivered", To: p.phone })).toBe(200);
    const failed = await until("the first try failing", async () => {
      const [r] = await db()`select attempts, error, processed_at from public.webhook_events where provider = 'twilio' and event_id = ${`${sm}:delivered`}`;
      return r && r.attempts >= 1 ? r : false;
    }, 30_000, 50);
    expect(failed.processed_at).toBeNull();
    expect(failed.error).toMatch(/^RetryLater: send .* is still dispatching/);
    // the dispatcher records the provider's answer; the next QStash delivery applies the status
    await db()`update public.sends set status = 'sent' where id = ${send}`;
    const done = await applied("twilio", `${sm}:delivered`);
    expect(done.error).toBeNull();
    expect(done.attempts).toBeGreaterThanOrEqual(2);
    expect((await sendRow(send)).status).toBe("delivered");
  });

  it("the sweep applies an event no message brought; processing a missing or applied event does nothing", async () => {
    const p = await makePerson();
    const sm = sid("SM");
    const send = await sent(p, "sms", { provider: "twilio", providerMessageId: sm });
    const [ev] = await db()`
      insert into public.webhook_events (provider, event_id, event_type, payload, received_at)
      values ('twilio', ${`${sm}:delivered`}, 'sms.status', ${db().json({ MessageSid: sm, MessageStatus: "delivered" })}, now() - interval '5 minutes')
      returning id`;
    const swept = await sweepInboundEvents({ limit: 500 });
    expect(swept.processed).toBeGreaterThanOrEqual(1);
    expect((await sendRow(send)).status).toBe("delivered");
    expect(await processInboundEvent(Number(ev.id))).toEqual({ status: "already" });
    expect(await processInboundEvent(2_000_000_000)).toEqual({ status: "missing" });
  });
});
