// Replies on the local stack: "please remove me from your list" through QStash and flow-replies →
// the person suppressed on every channel for every client and the next gate run refusing their
// steps; each class's action (status moves through the state machine, steps stopped or deferred,
// follow-ups planned and resumed, referrals, company pauses, complaints, bounces); once-only under
// redelivery; the sweep; and the inbox API (threads across channels newest first, filters, cursor
// pages, tenancy, reclassification by owners and members but not viewers).
import { beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../../dev/stack.ts";
import { asService, db } from "../../shared/db/client.ts";
import { processReply, resumeDueFollowUps } from "../../shared/engines/reply-actions.ts";
import { enqueue, publishOutbox } from "../../shared/flows/outbox.ts";
import { call, getStack, makeUser, unique, type TestUser } from "../helpers/stack.ts";
import { until } from "../helpers/until.ts";

const DAY = 86_400_000;
let stack: Stack;

beforeAll(async () => {
  stack = await getStack();
});

interface Person {
  clientId: string;
  campaignId: string;
  leadId: string;
  assignmentId: string;
  email: string;
  phone: string;
  linkedin: string;
  domain: string;
  runIds: string[];
}

async function newClient(): Promise<string> {
  const [c] = await db()`insert into public.clients (slug, name, status) values (${unique("rc")}, 'Replies Co', 'active') returning id`;
  return c.id;
}

/** An active campaign (email, SMS, LinkedIn steps) of the client and a lead in sequence with its step runs. */
async function person(clientId?: string, opts: { dueDaysAgo?: number } = {}): Promise<Person> {
  const sql = db();
  const cid = clientId ?? await newClient();
  const u = unique("rp");
  const [cp] = await sql`insert into public.campaigns (client_id, name, status, approved_at) values (${cid}, 'Outreach', 'active', now()) returning id`;
  const domain = `${u}.com.au`;
  const email = `pat@${domain}`;
  const phone = `+614${String(Math.floor(Math.random() * 1e8)).padStart(8, "0")}`;
  const linkedin = `https://www.linkedin.com/in/${u}`;
  const [lead] = await sql`
    insert into public.lead_pool (email, first_name, last_name, company_name, company_domain, phone_e164, linkedin_url, linkedin_key, country, timezone, source, email_status)
    values (${email}, 'Pat', 'Lee', 'Replies Co', ${domain}, ${phone}, ${linkedin}, ${linkedin}, 'AU', 'Australia/Sydney', 'import', 'verified')
    returning id`;
  const a = await assign(lead.id, cid, cp.id);
  const runIds = await plan(a, lead.id, cid, cp.id, opts.dueDaysAgo);
  return { clientId: cid, campaignId: cp.id, leadId: lead.id, assignmentId: a, email, phone, linkedin, domain, runIds };
}

async function assign(leadId: string, clientId: string, campaignId: string): Promise<string> {
  const sql = db();
  const [a] = await sql`insert into public.lead_assignments (lead_id, client_id, campaign_id, als_tier) values (${leadId}, ${clientId}, ${campaignId}, 'hot') returning id`;
  await sql`update public.lead_assignments set status = 'queued' where id = ${a.id}`;
  await sql`update public.lead_assignments set status = 'in_sequence' where id = ${a.id}`;
  await sql`insert into public.lead_consents (lead_id, channel, basis) select ${leadId}, c, 'express' from unnest(array['email', 'sms', 'linkedin']) c`;
  return a.id;
}

/** Three steps (email day 1, SMS day 3, LinkedIn day 5) and their runs; dueDaysAgo makes them due long ago. */
async function plan(assignmentId: string, leadId: string, clientId: string, campaignId: string, dueDaysAgo?: number): Promise<string[]> {
  const sql = db();
  const ids: string[] = [];
  for (const [pos, channel, action, day] of [[1, "email", null, 1], [2, "sms", null, 3], [3, "linkedin", "message", 5]] as const) {
    const [st] = await sql`
      insert into public.campaign_steps (campaign_id, client_id, position, day_offset, channel, linkedin_action)
      values (${campaignId}, ${clientId}, ${pos}, ${day}, ${channel}, ${action}) returning id`;
    const due = dueDaysAgo !== undefined ? new Date(Date.now() - dueDaysAgo * DAY + pos * 60_000) : new Date(Date.now() + day * DAY);
    const [run] = await sql`
      insert into public.step_runs (assignment_id, client_id, campaign_id, lead_id, step_id, position, channel, due_at, timezone, country, body, subject, content_ready_at)
      values (${assignmentId}, ${clientId}, ${campaignId}, ${leadId}, ${st.id}, ${pos}, ${channel}, ${due}, 'Australia/Sydney', 'AU',
              'Hello {{unsubscribe}}', ${channel === "email" ? "Hello" : null}, now())
      returning id`;
    ids.push(run.id);
  }
  // adding steps sends a campaign back for approval: approve and activate it again
  await sql`update public.campaigns set approved_at = now(), status = 'active' where id = ${campaignId}`;
  return ids;
}

interface ReplyOpts {
  body: string;
  channel?: "email" | "sms" | "linkedin" | "voice";
  subject?: string | null;
  from?: string | null;
  cls?: string;
  details?: Record<string, unknown>;
  suggested?: string | null;
  receivedAt?: Date;
  acted?: boolean;
}

async function reply(p: Person, o: ReplyOpts): Promise<string> {
  const channel = o.channel ?? "email";
  const [r] = await db()`
    insert into public.replies (client_id, lead_id, assignment_id, channel, provider, provider_message_id, from_address, subject, body,
                                received_at, class, class_source, classified_at, details, suggested_answer, acted_at)
    values (${p.clientId}, ${p.leadId}, ${p.assignmentId}, ${channel}, ${channel === "email" ? "salesforge" : channel === "linkedin" ? "unipile" : "twilio"},
            ${unique("msg")}, ${o.from ?? (channel === "email" ? p.email : channel === "linkedin" ? p.linkedin : p.phone)},
            ${o.subject ?? (channel === "email" ? "Re: Hello" : null)}, ${o.body}, ${o.receivedAt ?? new Date()},
            ${o.cls ?? null}, ${o.cls ? "llm" : null}, ${o.cls ? new Date() : null}, ${db().json((o.details ?? {}) as never)},
            ${o.suggested ?? null}, ${o.acted ? new Date() : null})
    returning id`;
  return r.id;
}

async function state(p: Person) {
  const sql = db();
  const [a] = await sql`select status from public.lead_assignments where id = ${p.assignmentId}`;
  const runs = await sql`select status, due_at from public.step_runs where id = any(${p.runIds}::uuid[]) order by position`;
  const [co] = await sql`select outreach_paused_until from public.companies where domain = ${p.domain}`;
  const supp = await sql`select kind, client_id from public.suppressions where value = any(${[p.email, p.phone, p.linkedin]}::text[]) order by kind`;
  return {
    assignment: a.status as string,
    runs: runs.map((r) => r.status as string),
    due: runs.map((r) => r.due_at as Date),
    paused: (co?.outreach_paused_until as Date | undefined) ?? null,
    suppressed: supp.map((s) => `${s.kind}${s.client_id ? ":client" : ""}`),
  };
}

const act = (id: string, now?: Date) => processReply(id, { claude: null, ...(now ? { now } : {}) });
const replyRow = async (id: string) => (await db()`select * from public.replies where id = ${id}`)[0];

// ---------------------------------------------------------------------------------------------

describe("'please remove me from your list', end to end", () => {
  it("through QStash and flow-replies: suppressed on every channel for every client; the next gate run refuses their steps", { timeout: 90_000 }, async () => {
    const sql = db();
    const p = await person();
    const id = await reply(p, { body: "Hi Sam,\n\nPlease remove me from your list.\n\nThanks, Pat" });
    await asService({ role: "test" }, (tx) => enqueue(tx, "flow.replies", { reply_id: id }, { dedupKey: `flow.replies:${id}` }));
    await publishOutbox(sql);
    const row = await until("the reply acted on", async () => {
      const r = await replyRow(id);
      return r.acted_at ? r : false;
    });
    expect(row).toMatchObject({ class: "unsubscribe", class_source: "keyword" });
    expect(row.classified_at).not.toBeNull();
    expect(row.details.action).toMatchObject({ action: "unsubscribed everywhere" });
    const s = await state(p);
    expect(s.suppressed).toEqual(["email", "linkedin", "phone"]); // global rows (no client)
    expect(s.assignment).toBe("unsubscribed");
    expect(s.runs).toEqual(["cancelled", "cancelled", "cancelled"]);
    expect(s.paused!.getTime()).toBeGreaterThan(Date.now() + 13 * DAY);

    // Another client takes the person on later (after the cool-off): every one of its steps, on every
    // channel, is refused by the gate as suppressed, and nothing is sent.
    await sql`update public.lead_assignments set ended_at = now() - interval '400 days' where id = ${p.assignmentId}`;
    const other = await newClient();
    const [cp] = await sql`insert into public.campaigns (client_id, name, status, approved_at) values (${other}, 'Other', 'active', now()) returning id`;
    const a2 = await assign(p.leadId, other, cp.id);
    const runs2 = await plan(a2, p.leadId, other, cp.id, 3650);
    const gate = await asService({ role: "test", reason: "gate" }, (tx) => tx`select private.gate_due_steps(5000, 100, now()) as r`);
    expect(gate[0].r.claimed).toBeGreaterThanOrEqual(3);
    const refusals = await sql`select step_run_id, reason, outcome from public.gate_refusals where step_run_id = any(${runs2}::uuid[]) order by decided_at`;
    expect(refusals.map((r) => r.reason)).toEqual(["suppressed", "suppressed", "suppressed"]);
    expect(await sql`select id from public.sends where step_run_id = any(${runs2}::uuid[])`).toEqual([]);
    expect((await sql`select status from public.step_runs where id = any(${runs2}::uuid[])`).map((r) => r.status)).toEqual(["skipped", "skipped", "skipped"]);
  });
});

describe("each class's action", () => {
  it("interested / meeting request / question: sequence stopped at once, assignment → interested, the suggested answer kept", async () => {
    for (const cls of ["interested", "meeting_request", "question"]) {
      const p = await person();
      const id = await reply(p, { body: "Sounds good", cls, suggested: "Hi Pat, here is my calendar: https://cal.example/x" });
      const r = await act(id);
      expect(r).toMatchObject({ status: "acted", class: cls });
      const s = await state(p);
      expect(s.assignment).toBe("interested");
      expect(s.runs).toEqual(["cancelled", "cancelled", "cancelled"]);
      expect((await replyRow(id)).suggested_answer).toContain("cal.example");
    }
    // the status path went through the state machine, each step audited with the reason
    const p = await person();
    const id = await reply(p, { body: "yes", cls: "interested" });
    await act(id);
    const ev = await db()`select from_status, to_status, reason from public.events where entity_id = ${p.assignmentId} and kind = 'status_changed' order by id`;
    expect(ev.slice(-2)).toEqual([
      { from_status: "in_sequence", to_status: "replied", reason: "reply interested" },
      { from_status: "replied", to_status: "interested", reason: "reply interested" },
    ]);
  });

  it("an assignment already past 'replied' is not moved backwards", async () => {
    const p = await person();
    for (const s of ["replied", "interested", "meeting_booked"]) await db()`update public.lead_assignments set status = ${s} where id = ${p.assignmentId}`;
    const id = await reply(p, { body: "Looking forward to it, quick question first", cls: "question" });
    const r = await act(id);
    expect(r.status === "acted" && r.action.assignment).toEqual({ id: p.assignmentId, from: "meeting_booked", to: "meeting_booked" });
    expect(r.status === "acted" && r.action.notes.join()).toContain("stays meeting_booked");
  });

  it("not now: replied, steps stop, one follow-up planned at the date given (09:00 local), resumed when due", async () => {
    const p = await person();
    const id = await reply(p, { body: "Not now, try me in March", cls: "not_now", details: { follow_up_date: "2027-03-01" } });
    const r = await act(id);
    expect((await state(p))).toMatchObject({ assignment: "replied", runs: ["cancelled", "cancelled", "cancelled"] });
    const [f] = await db()`select * from public.reply_follow_ups where reply_id = ${id}`;
    expect(f).toMatchObject({ status: "scheduled", assignment_id: p.assignmentId, step_run_id: p.runIds[0] });
    expect((f.due_at as Date).toISOString()).toBe("2027-02-28T22:00:00.000Z"); // 09:00 in Sydney (AEDT)
    expect(r.status === "acted" && r.action.action).toContain("2027-03-01");

    // not due yet: nothing happens
    await asService({ role: "test" }, (tx) => resumeDueFollowUps(tx, { now: new Date("2027-02-01T00:00:00Z") }));
    expect((await state(p)).assignment).toBe("replied");
    // due: the assignment is back in sequence and the first step is due now
    const at = new Date("2027-03-01T00:00:00Z");
    const out = await asService({ role: "test" }, (tx) => resumeDueFollowUps(tx, { now: at }));
    expect(out.resumed).toBeGreaterThanOrEqual(1);
    const s = await state(p);
    expect(s.assignment).toBe("in_sequence");
    expect(s.runs).toEqual(["scheduled", "cancelled", "cancelled"]);
    expect(s.due[0].toISOString()).toBe(at.toISOString());
    expect((await db()`select status from public.reply_follow_ups where id = ${f.id}`)[0].status).toBe("resumed");
    // its message is written afresh (the content flow picks it up): the old text is not reused
    const [run] = await db()`select subject, body, content_ready_at from public.step_runs where id = ${p.runIds[0]}`;
    expect(run).toEqual({ subject: null, body: null, content_ready_at: null });
  });

  it("not now without a date: +90 days; a reply in between cancels the follow-up when it falls due", async () => {
    const p = await person();
    const id = await reply(p, { body: "not at the moment", cls: "not_now" });
    await act(id);
    const [f] = await db()`select due_at from public.reply_follow_ups where reply_id = ${id}`;
    expect(Math.round(((f.due_at as Date).getTime() - Date.now()) / DAY)).toBeGreaterThanOrEqual(89);
    expect(Math.round(((f.due_at as Date).getTime() - Date.now()) / DAY)).toBeLessThanOrEqual(91);
    await act(await reply(p, { body: "actually, let's talk", cls: "meeting_request" }));
    expect((await state(p)).assignment).toBe("interested");
    await asService({ role: "test" }, (tx) => resumeDueFollowUps(tx, { now: new Date(Date.now() + 100 * DAY) }));
    expect((await db()`select status, outcome from public.reply_follow_ups where reply_id = ${id}`)[0]).toEqual({ status: "cancelled", outcome: "the assignment is interested" });
    expect((await state(p)).assignment).toBe("interested");
  });

  it("out of office: the sequence is NOT stopped; pending steps move so the first falls the day after the return date", async () => {
    const p = await person();
    const before = await state(p);
    const id = await reply(p, { body: "I am out of the office until 2027-01-10", cls: "out_of_office", details: { return_date: "2027-01-10" } });
    const r = await act(id);
    const s = await state(p);
    expect(s.assignment).toBe("in_sequence");
    expect(s.runs).toEqual(["scheduled", "scheduled", "scheduled"]);
    expect(s.due[0].toISOString()).toBe("2027-01-10T13:00:00.000Z"); // 11 January, 00:00 in Sydney
    // the spacing of the sequence is kept
    expect(s.due[2].getTime() - s.due[0].getTime()).toBe(before.due[2].getTime() - before.due[0].getTime());
    expect(r.status === "acted" && r.action).toMatchObject({ resumeDate: "2027-01-11", stepRunsDeferred: 3 });
  });

  it("out of office: a send the gate queued but no provider has yet is withdrawn and moves with the sequence", async () => {
    const p = await person();
    // the gate queued the first step (email) for dispatch: its run is sent, its send pending in a batch
    await asService({ role: "test" }, async (tx) => {
      await tx`update public.step_runs set status = 'sent' where id = ${p.runIds[0]}`;
      await tx`
        insert into public.sends (step_run_id, assignment_id, step_id, channel, client_id, campaign_id, lead_id, touch_day)
        select r.id, r.assignment_id, r.step_id, r.channel, r.client_id, r.campaign_id, r.lead_id, current_date
        from public.step_runs r where r.id = ${p.runIds[0]}`;
    });
    const id = await reply(p, { body: "I am out of the office until 2027-01-10", cls: "out_of_office", details: { return_date: "2027-01-10" } });
    const r = await act(id);
    expect(r.status === "acted" && r.action).toMatchObject({ sendsWithdrawn: 1, stepRunsDeferred: 3, resumeDate: "2027-01-11" });
    expect(await db()`select 1 from public.sends where assignment_id = ${p.assignmentId}`).toHaveLength(0);
    const s = await state(p);
    expect(s.runs).toEqual(["scheduled", "scheduled", "scheduled"]);
    expect(s.due[0].toISOString()).toBe("2027-01-10T13:00:00.000Z");
    const [refusal] = await db()`select reason, outcome from public.gate_refusals where step_run_id = ${p.runIds[0]}`;
    expect(refusal).toEqual({ reason: "out_of_office", outcome: "rescheduled" });
  });

  it("referral: the referred person becomes a pool lead (source referral); the assignment → replied", async () => {
    const p = await person();
    const referred = `${unique("sarah")}@${p.domain}`;
    const id = await reply(p, {
      body: `Please speak to Sarah Chen, our Head of Marketing (${referred}).`, cls: "referral",
      details: { referral: { name: "Sarah Chen", email: referred, title: "Head of Marketing" } },
    });
    const r = await act(id);
    const [lead] = await db()`select id, first_name, last_name, title, company_name, company_domain, source, status from public.lead_pool where email_normalized = ${referred}`;
    expect(lead).toMatchObject({ first_name: "Sarah", last_name: "Chen", title: "Head of Marketing", company_name: "Replies Co", company_domain: p.domain, source: "referral", status: "new" });
    expect(r.status === "acted" && r.action.referralLeadId).toBe(lead.id);
    expect(await state(p)).toMatchObject({ assignment: "replied", runs: ["cancelled", "cancelled", "cancelled"] });
    // acting again (a reclassification to referral) does not make a second lead
    expect((await db()`select count(*)::int as n from public.lead_pool where email_normalized = ${referred}`)[0].n).toBe(1);
  });

  it("wrong person → not_interested; not interested → not_interested and the company paused 14 days", async () => {
    const w = await person();
    await act(await reply(w, { body: "wrong person", cls: "wrong_person" }));
    expect(await state(w)).toMatchObject({ assignment: "not_interested", paused: null });

    const n = await person();
    await act(await reply(n, { body: "no thanks", cls: "not_interested" }));
    const s = await state(n);
    expect(s.assignment).toBe("not_interested");
    expect(s.runs).toEqual(["cancelled", "cancelled", "cancelled"]);
    expect(Math.round((s.paused!.getTime() - Date.now()) / DAY)).toBe(14);
    expect(s.suppressed).toEqual([]);
  });

  it("complaint: unsubscribed everywhere and the agency alerted", async () => {
    const p = await person();
    const id = await reply(p, { body: "This is spam. Reported.", cls: "complaint" });
    await act(id);
    expect(await state(p)).toMatchObject({ assignment: "unsubscribed", suppressed: ["email", "linkedin", "phone"] });
    const alerts = await db()`select client_id, data from public.events where kind = 'complaint_alert' and entity_id = ${p.leadId}`;
    expect(alerts).toEqual([{ client_id: p.clientId, data: expect.objectContaining({ source: `reply:${id}` }) }]);
    expect((await db()`select distinct reason from public.suppressions where value = any(${[p.email, p.phone, p.linkedin]}::text[])`).map((r) => r.reason)).toEqual(["complaint"]);
  });

  it("auto-reply: ignored, nothing changes (but it is marked handled)", async () => {
    const p = await person();
    const before = await state(p);
    const id = await reply(p, { body: "We have received your email", cls: "auto_reply" });
    expect(await act(id)).toMatchObject({ status: "acted", class: "auto_reply" });
    expect(await state(p)).toEqual(before);
    expect((await replyRow(id)).acted_at).not.toBeNull();
  });

  it("bounce: the address suppressed (email only), the assignment bounced, the email marked invalid", async () => {
    const p = await person();
    const id = await reply(p, {
      body: `Final-Recipient: rfc822; ${p.email}\nStatus: 5.1.1`, subject: "Delivery Status Notification (Failure)", from: "mailer-daemon@mx.example",
    });
    expect(await act(id)).toMatchObject({ status: "acted", class: "bounce", source: "keyword" });
    const s = await state(p);
    expect(s).toMatchObject({ assignment: "bounced", suppressed: ["email"], runs: ["cancelled", "cancelled", "cancelled"] });
    expect((await db()`select email_status from public.lead_pool where id = ${p.leadId}`)[0].email_status).toBe("invalid");
  });

  it("unclassified replies are classified first (no Claude here: keyword rules, else the fallback; unclear → question)", async () => {
    const p = await person();
    const id = await reply(p, { body: "Who is this?", channel: "sms" });
    expect(await act(id)).toMatchObject({ status: "acted", class: "question", source: "fallback" });
    expect(await replyRow(id)).toMatchObject({ class: "question", class_source: "fallback" });
    expect((await state(p)).assignment).toBe("interested");
  });

  it("once only: a second and two concurrent deliveries act once", async () => {
    const p = await person();
    const id = await reply(p, { body: "not interested", cls: "not_interested" });
    const [a, b] = await Promise.all([act(id), act(id)]);
    expect([a.status, b.status].sort()).toEqual(["acted", "already_acted"]);
    expect((await act(id)).status).toBe("already_acted");
    const ev = await db()`select count(*)::int as n from public.events where kind = 'reply_acted' and entity_id = ${id}`;
    expect(ev[0].n).toBe(1);
    const moves = await db()`select count(*)::int as n from public.events where entity_id = ${p.assignmentId} and to_status = 'not_interested'`;
    expect(moves[0].n).toBe(1);
    expect(await act("00000000-0000-4000-8000-000000000000")).toMatchObject({ status: "missing" });
  });

  it("the flow's sweep (no reply_id) handles replies whose message was lost", { timeout: 60_000 }, async () => {
    const p = await person();
    const q = await person();
    const a = await reply(p, { body: "STOP", channel: "sms" });
    const b = await reply(q, { body: "Out of office, back 2027-01-04" });
    await asService({ role: "test" }, (tx) => enqueue(tx, "flow.replies", { limit: 200 }));
    await publishOutbox(db());
    await until("both replies acted on", async () => {
      const rows = await db()`select count(*)::int as n from public.replies where id = any(${[a, b]}::uuid[]) and acted_at is not null`;
      return rows[0].n === 2;
    });
    expect((await replyRow(a)).class).toBe("unsubscribe");
    expect((await replyRow(b))).toMatchObject({ class: "out_of_office", details: expect.objectContaining({ return_date: "2027-01-04" }) });
  });
});

// ---------------------------------------------------------------------------------------------

describe("the inbox API", () => {
  let owner: TestUser, member: TestUser, viewer: TestUser, otherOwner: TestUser;
  let t1: Person, t2: Person, t3: Person, ids: Record<string, string>;

  beforeAll(async () => {
    const slug = unique("inbox");
    owner = await makeUser(stack, { client: slug, role: "owner" });
    member = await makeUser(stack, { client: slug, role: "member" });
    viewer = await makeUser(stack, { client: slug, role: "viewer" });
    otherOwner = await makeUser(stack, { client: unique("inbox-b"), role: "owner" });
    t1 = await person(owner.clientId!);
    t2 = await person(owner.clientId!);
    t3 = await person(owner.clientId!);
    const ago = (min: number) => new Date(Date.now() - min * 60_000);
    ids = {
      t1email: await reply(t1, { body: "What does it cost?", cls: "question", receivedAt: ago(180), acted: true }),
      t1sms: await reply(t1, { body: "Also, do you work with retailers?", channel: "sms", cls: "question", receivedAt: ago(60), acted: true }),
      t2li: await reply(t2, { body: "Not now", channel: "linkedin", cls: "not_now", receivedAt: ago(120), acted: true }),
      t3email: await reply(t3, { body: "Yes, interested!", cls: "interested", receivedAt: ago(30), acted: true, suggested: "Hi Pat, great!" }),
    };
    // t3's assignment is where an interested reply leaves it
    for (const s of ["replied", "interested"]) await db()`update public.lead_assignments set status = ${s} where id = ${t3.assignmentId}`;
    const other = await person(otherOwner.clientId!);
    ids.other = await reply(other, { body: "interested", cls: "interested", acted: true });
  });

  it("threads across channels, newest first, with their replies newest first", async () => {
    const res = await call(stack, "replies", { token: member.token });
    expect(res.status).toBe(200);
    expect(res.body.data.map((t: { thread_id: string }) => t.thread_id)).toEqual([t3.assignmentId, t1.assignmentId, t2.assignmentId]);
    const th1 = res.body.data[1];
    expect(th1).toMatchObject({
      reply_count: 2, assignment_status: "in_sequence", client_id: owner.clientId,
      lead: { id: t1.leadId, first_name: "Pat", email: t1.email, company_name: "Replies Co" },
    });
    expect([...th1.channels].sort()).toEqual(["email", "sms"]);
    expect(th1.latest.id).toBe(ids.t1sms);
    expect(th1.replies.map((r: { id: string }) => r.id)).toEqual([ids.t1sms, ids.t1email]);
    expect(res.body.data[0].latest).toMatchObject({ class: "interested", suggested_answer: "Hi Pat, great!", channel: "email" });
    expect(res.body.next_cursor).toBeNull();
  });

  it("filters by class and by channel", async () => {
    const interested = await call(stack, "replies?class=interested", { token: owner.token });
    expect(interested.body.data.map((t: { thread_id: string }) => t.thread_id)).toEqual([t3.assignmentId]);
    const sms = await call(stack, "replies?channel=sms", { token: owner.token });
    expect(sms.body.data).toHaveLength(1);
    expect(sms.body.data[0]).toMatchObject({ thread_id: t1.assignmentId, reply_count: 1, channels: ["sms"] });
    const question = await call(stack, "replies?class=question&channel=email", { token: owner.token });
    expect(question.body.data.map((t: { latest: { id: string } }) => t.latest.id)).toEqual([ids.t1email]);
    expect((await call(stack, "replies?class=maybe", { token: owner.token })).status).toBe(400);
    expect((await call(stack, "replies?channel=fax", { token: owner.token })).status).toBe(400);
  });

  it("cursor pages walk every thread once, in order", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 5; i++) {
      const res = await call(stack, `replies?limit=1${cursor ? `&cursor=${cursor}` : ""}`, { token: owner.token });
      expect(res.status).toBe(200);
      seen.push(...res.body.data.map((t: { thread_id: string }) => t.thread_id));
      cursor = res.body.next_cursor;
      if (!cursor) break;
    }
    expect(seen).toEqual([t3.assignmentId, t1.assignmentId, t2.assignmentId]);
    expect((await call(stack, "replies?cursor=nope", { token: owner.token })).status).toBe(400);
  });

  it("tenancy: another client's replies are invisible (404), and a user must be signed in", async () => {
    const b = await call(stack, "replies", { token: otherOwner.token });
    expect(b.body.data.map((t: { latest: { id: string } }) => t.latest.id)).toEqual([ids.other]);
    expect((await call(stack, `replies/${ids.t3email}`, { token: otherOwner.token })).status).toBe(404);
    expect((await call(stack, `replies/${ids.t3email}/reclassify`, { token: otherOwner.token, body: { class: "not_interested" } })).status).toBe(404);
    expect((await call(stack, "replies")).status).toBe(401);
    const one = await call(stack, `replies/${ids.t3email}`, { token: viewer.token });
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: ids.t3email, class: "interested", assignment_status: "interested", lead: { id: t3.leadId } });
  });

  it("reclassify: a viewer gets 403 and nothing changes; an owner's reclassification re-runs the new class's action", async () => {
    const v = await call(stack, `replies/${ids.t3email}/reclassify`, { token: viewer.token, body: { class: "not_interested" } });
    expect(v.status).toBe(403);
    expect((await replyRow(ids.t3email)).class).toBe("interested");
    expect((await state(t3)).assignment).toBe("interested");

    expect((await call(stack, `replies/${ids.t3email}/reclassify`, { token: owner.token, body: { class: "nonsense" } })).status).toBe(400);

    const res = await call(stack, `replies/${ids.t3email}/reclassify`, { token: owner.token, body: { class: "not_interested" } });
    expect(res.status).toBe(200);
    expect(res.body.reply).toMatchObject({ class: "not_interested", class_source: "user", reclassified_by: owner.userId, assignment_status: "not_interested" });
    expect(res.body.action).toMatchObject({ class: "not_interested", assignment: { id: t3.assignmentId, from: "interested", to: "not_interested" } });
    const s = await state(t3);
    expect(s.assignment).toBe("not_interested");
    expect(Math.round((s.paused!.getTime() - Date.now()) / DAY)).toBe(14);
    // the audit trail names the user
    const [ev] = await db()`select actor_id, actor_role from public.events where kind = 'reply_acted' and entity_id = ${ids.t3email} order by id desc limit 1`;
    expect(ev).toEqual({ actor_id: owner.userId, actor_role: "user" });
  });

  it("a member may reclassify too: to unsubscribe suppresses the person everywhere", async () => {
    const res = await call(stack, `replies/${ids.t2li}/reclassify`, { token: member.token, body: { class: "unsubscribe" } });
    expect(res.status).toBe(200);
    expect(await state(t2)).toMatchObject({ assignment: "unsubscribed", suppressed: ["email", "linkedin", "phone"] });
  });
});
