// 10,000 mixed webhook deliveries, generated with fast-check, against the eight webhook functions
// (their Hono apps, called in-process): valid events, duplicates, out-of-order delivery statuses,
// wrong and missing signatures, stale timestamps, malformed and oversized bodies, wrong tokens.
// Afterwards: no answer was a 5xx, nothing from an invalid delivery was stored, every valid event
// is stored once and applied exactly once (processed, one attempt, no error), statuses ended at
// the furthest one whatever the order, every text is one reply or one opt-out, and the people who
// texted STOP or "remove me" are refused by the next gate run.
//
// Speed: the embedded database takes one connection, and a QStash → flow-inbound round trip per
// event would dominate the run, so while the flood is delivered 'flow.inbound' is unrouted (the
// outbox publisher marks those rows done) and the test applies the stored events itself, in
// batches, with the same engine call flow-inbound makes. The QStash path is covered by
// tests/webhooks/functions.test.ts and tests/flows/inbound.test.ts.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { db } from "../../shared/db/client.ts";
import { optOutIntent, processInboundEvents } from "../../shared/engines/inbound.ts";
import { publishOutbox } from "../../shared/flows/outbox.ts";
import { TOPIC_DESTINATIONS } from "../../shared/flows/topics.ts";
import { normaliseLinkedin } from "../../shared/engines/suppress.ts";
import { backgroundPublishSettled, WEBHOOKS, type WebhookProvider } from "../../shared/webhooks/receive.ts";
import { signCalCom, signCalendly, signPostGridJwt, signTwilio, signVapi } from "../../shared/webhooks/verify.ts";
import { getStack, unique } from "../helpers/stack.ts";

const TOTAL = 10_000;
const SEED = 20261124;

const SECRET_ENV: Record<WebhookProvider, string> = Object.fromEntries(
  Object.values(WEBHOOKS).map((w) => [w.provider, w.secretEnv]),
) as Record<WebhookProvider, string>;
const saved: Record<string, string | undefined> = {};
const secret = (p: WebhookProvider) => process.env[SECRET_ENV[p]]!;

type App = { request(path: string, init: RequestInit): Response | Promise<Response> };
const apps = {} as Record<WebhookProvider, App>;

// ---------------------------------------------------------------------------------------------
// People and the sends their delivery statuses are about
// ---------------------------------------------------------------------------------------------

interface FuzzPerson {
  leadId: string;
  assignmentId: string;
  phone: string;
  email: string;
  linkedin: string;
  /** The sms send, sent through Twilio (provider id) or ClickSend (our id in custom_string). */
  sendId: string;
  smsProvider: "twilio" | "clicksend";
  providerMessageId: string;
}
const people: FuzzPerson[] = [];

async function makePeople(n: number) {
  const sql = db();
  const tag = unique("fz").toLowerCase().replace(/[^a-z0-9-]/g, "-");
  const [client] = await sql`insert into public.clients (slug, name, status, permission_mode) values (${tag.slice(0, 60)}, ${tag}, 'active', 'autopilot') returning id`;
  const [campaign] = await sql`insert into public.campaigns (client_id, name) values (${client.id}, ${tag}) returning id`;
  const steps: Record<string, string> = {};
  for (const [i, channel] of ["email", "sms", "linkedin"].entries()) {
    const [s] = await sql`insert into public.campaign_steps (campaign_id, client_id, position, day_offset, channel, linkedin_action)
      values (${campaign.id}, ${client.id}, ${i + 1}, ${i}, ${channel}, ${channel === "linkedin" ? "message" : null}) returning id`;
    steps[channel] = s.id;
  }
  await sql`update public.campaigns set status = 'active', approved_at = now() where id = ${campaign.id}`;
  const base = 30_000_000 + Math.floor(Math.random() * 60_000_000);
  for (let i = 0; i < n; i++) {
    const phone = `+614${String(base + i).padStart(8, "0")}`;
    const slug = `${tag}-${i}`;
    const linkedin = normaliseLinkedin(slug)!;
    const email = `${slug}@${tag}.example`;
    const [lead] = await sql`insert into public.lead_pool (email, first_name, company_domain, phone_e164, linkedin_key, country, timezone)
      values (${email}, 'Fuzz', ${`${tag}.example`}, ${phone}, ${linkedin}, 'AU', 'Australia/Sydney') returning id`;
    const [a] = await sql`insert into public.lead_assignments (lead_id, client_id, campaign_id, als_tier) values (${lead.id}, ${client.id}, ${campaign.id}, 'hot') returning id`;
    await sql`update public.lead_assignments set status = 'queued' where id = ${a.id}`;
    await sql`update public.lead_assignments set status = 'in_sequence' where id = ${a.id}`;
    let smsRun = "";
    for (const [j, channel] of ["email", "sms", "linkedin"].entries()) {
      const [r] = await sql`insert into public.step_runs (assignment_id, client_id, campaign_id, lead_id, step_id, position, channel, due_at, timezone, country, body, status)
        values (${a.id}, ${client.id}, ${campaign.id}, ${lead.id}, ${steps[channel]}, ${j + 1}, ${channel}, now() + interval '1 day',
                'Australia/Sydney', 'AU', 'Hi', ${channel === "sms" ? "sent" : "scheduled"}) returning id`;
      if (channel === "sms") smsRun = r.id;
    }
    const smsProvider = i % 2 === 0 ? "twilio" : "clicksend";
    const providerMessageId = `${smsProvider === "twilio" ? "SM" : "CS"}${tag.replace(/-/g, "")}${i}`;
    const [s] = await sql`insert into public.sends (step_run_id, assignment_id, step_id, channel, client_id, campaign_id, lead_id, touch_day, status, provider, provider_message_id)
      values (${smsRun}, ${a.id}, ${steps.sms}, 'sms', ${client.id}, ${campaign.id}, ${lead.id}, current_date, 'sent', ${smsProvider}, ${providerMessageId}) returning id`;
    people.push({ leadId: lead.id, assignmentId: a.id, phone, email, linkedin, sendId: s.id, smsProvider, providerMessageId });
  }
}

// ---------------------------------------------------------------------------------------------
// What fast-check generates
// ---------------------------------------------------------------------------------------------

type Flaw = "none" | "bad_signature" | "missing_signature" | "stale" | "malformed" | "oversized";

/** A provider event (before signing): its body fields and the id the function must derive. */
type Spec =
  | { kind: "sms_status"; person: number; status: string }
  | { kind: "twilio_text"; from: number | string; body: string }
  | { kind: "clicksend_text"; from: number | string; body: string }
  | { kind: "vapi_status"; call: string; status: string }
  | { kind: "unipile_message"; person: number; body: string }
  | { kind: "unipile_relation"; member: string }
  | { kind: "postgrid"; status: string }
  | { kind: "salesforge"; type: string }
  | { kind: "calcom"; trigger: string }
  | { kind: "calendly"; event: string };

const PEOPLE = 60;
const text = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: "grapheme", maxLength: 160 }) },
  { weight: 2, arbitrary: fc.constantFrom("STOP", "stop", "Stop.", "UNSUBSCRIBE", "quit", "End", "optout", "STOPALL", "revoke", "Cancel") },
  { weight: 2, arbitrary: fc.constantFrom("Please remove me from your list", "do not contact me", "stop texting me", "Yes, call me tomorrow", "Who is this?", "START", "HELP") },
);
// texts come from our people's phones or from strangers (a reserved range nobody else uses)
const sender = fc.oneof(fc.integer({ min: 0, max: PEOPLE - 1 }), fc.integer({ min: 0, max: 99_999_999 }).map((n) => `+8889${String(n).padStart(8, "0")}`));

const spec: fc.Arbitrary<Spec> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("sms_status" as const), person: fc.integer({ min: 0, max: PEOPLE - 1 }), status: fc.constantFrom("queued", "sent", "delivered", "undelivered") }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("twilio_text" as const), from: sender, body: text }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("clicksend_text" as const), from: sender, body: text }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("vapi_status" as const), call: fc.uuid(), status: fc.constantFrom("queued", "ended", "scheduled") }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("unipile_message" as const), person: fc.integer({ min: 0, max: PEOPLE - 1 }), body: fc.string({ unit: "grapheme", maxLength: 100 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("unipile_relation" as const), member: fc.uuid() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("postgrid" as const), status: fc.constantFrom("ready", "printing") }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("salesforge" as const), type: fc.constantFrom("label_changed", "positive_reply", "link_clicked") }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("calcom" as const), trigger: fc.constantFrom("BOOKING_CREATED", "MEETING_ENDED", "BOOKING_REQUESTED") }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("calendly" as const), event: fc.constantFrom("invitee.created", "invitee_no_show.created") }) },
);
const flaw: fc.Arbitrary<Flaw> = fc.oneof(
  { weight: 44, arbitrary: fc.constant("none" as const) },
  { weight: 14, arbitrary: fc.constant("bad_signature" as const) },
  { weight: 12, arbitrary: fc.constant("missing_signature" as const) },
  { weight: 10, arbitrary: fc.constant("stale" as const) },
  { weight: 14, arbitrary: fc.constant("malformed" as const) },
  { weight: 2, arbitrary: fc.constant("oversized" as const) },
);
// a delivery is a new event (with its flaw) or a repeat of an earlier one (providers retry)
const delivery = fc.oneof(
  { weight: 88, arbitrary: fc.record({ repeat: fc.constant(null), spec, flaw, garbage: fc.string({ unit: "binary", maxLength: 60 }) }) },
  { weight: 12, arbitrary: fc.record({ repeat: fc.nat(), spec, flaw, garbage: fc.string({ maxLength: 1 }) }) },
);

// ---------------------------------------------------------------------------------------------
// Turning a spec into a signed (or deliberately broken) request
// ---------------------------------------------------------------------------------------------

interface Req {
  provider: WebhookProvider;
  path: string;
  init: { method: "POST"; headers: Record<string, string>; body: string };
  /** The event id stored when valid; null for deliveries that store nothing. */
  eventId: string | null;
  valid: boolean;
  spec: Spec;
}

let seq = 0;
const RUN = unique("run").replace(/[^a-z0-9]/gi, "");
const PAD = "x".repeat(270 * 1024);
const form = (o: Record<string, string>) => new URLSearchParams(o).toString();
const phoneOf = (from: number | string) => (typeof from === "number" ? people[from]!.phone : from);

/** The provider, raw body, content type and event id of a spec (fresh ids per call). */
function render(s: Spec): { provider: WebhookProvider; raw: string; contentType: string; eventId: string; json?: Record<string, unknown> } {
  const id = `${RUN}x${++seq}`;
  switch (s.kind) {
    case "sms_status": {
      const p = people[s.person]!;
      if (p.smsProvider === "twilio") {
        return { provider: "twilio", contentType: "application/x-www-form-urlencoded", eventId: `${p.providerMessageId}:${s.status}`,
          raw: form({ AccountSid: "AC1", MessageSid: p.providerMessageId, MessageStatus: s.status, SmsSid: p.providerMessageId, SmsStatus: s.status, To: p.phone, ApiVersion: "2010-04-01" }) };
      }
      const status = s.status === "delivered" ? "Delivered" : s.status === "undelivered" ? "Undelivered" : "Sent";
      // ClickSend's receipt names its own message id; ours rides in custom_string
      return { provider: "clicksend", contentType: "application/x-www-form-urlencoded", eventId: `receipt:${p.providerMessageId}:${status}`,
        raw: form({ message_id: p.providerMessageId, status, custom_string: p.sendId, timestamp: "1767225600", message_type: "sms" }) };
    }
    case "twilio_text":
      return { provider: "twilio", contentType: "application/x-www-form-urlencoded", eventId: `SM${id}:received`,
        raw: form({ AccountSid: "AC1", MessageSid: `SM${id}`, SmsSid: `SM${id}`, From: phoneOf(s.from), To: "+61255500001", Body: s.body, SmsStatus: "received", NumMedia: "0" }) };
    case "clicksend_text":
      return { provider: "clicksend", contentType: "application/json", eventId: `inbound:CSI${id}`,
        raw: JSON.stringify({ message_id: `CSI${id}`, from: phoneOf(s.from), to: "+61255500001", body: s.body, timestamp: "1767225600" }) };
    case "vapi_status":
      return { provider: "vapi", contentType: "application/json", eventId: `${s.call}-${id}:status-update:${s.status}`,
        raw: JSON.stringify({ message: { type: "status-update", status: s.status, call: { id: `${s.call}-${id}` } } }) };
    case "unipile_message": {
      const p = people[s.person]!;
      return { provider: "unipile", contentType: "", eventId: `message_received:M${id}`,
        raw: JSON.stringify({ event: "message_received", account_id: "acc-fuzz", account_info: { user_id: "ME" }, chat_id: `chat-${id}`, message_id: `M${id}`, message: s.body, sender: { attendee_provider_id: `P${s.person}`, attendee_profile_url: p.linkedin } }) };
    }
    case "unipile_relation":
      return { provider: "unipile", contentType: "", eventId: `new_relation:acc-fuzz:${s.member}-${id}`,
        raw: JSON.stringify({ event: "new_relation", account_id: "acc-fuzz", user_provider_id: `${s.member}-${id}`, user_public_identifier: `nobody-${id}` }) };
    case "postgrid": {
      const json = { id: `event_${id}`, type: "letter.created", data: { id: `letter_${id}`, status: s.status } };
      return { provider: "postgrid", contentType: "text/plain", eventId: `event_${id}`, raw: "", json };
    }
    case "salesforge":
      return { provider: "salesforge", contentType: "application/json", eventId: `evt_${id}`,
        raw: JSON.stringify({ type: s.type, eventId: `evt_${id}`, mailboxId: "mb_fuzz", emailId: `eml_${id}`, contact: { id: "c", email: `nobody-${id}@fuzz.example` } }) };
    case "calcom":
      return { provider: "calcom", contentType: "application/json", eventId: `bk${id}:${s.trigger}:2026-12-01T00:00:00.000Z`,
        raw: JSON.stringify({ triggerEvent: s.trigger, payload: { uid: `bk${id}`, startTime: "2026-12-01T00:00:00.000Z", attendees: [{ email: `nobody-${id}@fuzz.example` }] } }) };
    case "calendly": {
      const uri = `https://api.calendly.com/scheduled_events/F/invitees/${id}`;
      return { provider: "calendly", contentType: "application/json", eventId: `${uri}:${s.event}`,
        raw: JSON.stringify({ event: s.event, payload: { uri, email: `nobody-${id}@fuzz.example`, scheduled_event: { start_time: "2026-12-01T00:00:00Z" } } }) };
    }
  }
}

/** A body the provider would never send: not JSON, no event type or id, a JSON array. */
function malformedBody(provider: WebhookProvider, garbage: string): string {
  switch (provider) {
    case "twilio": return form({ AccountSid: "AC1", Garbage: garbage });
    case "clicksend": return form({ hello: garbage || "x" });
    case "vapi": return JSON.stringify({ message: { call: { id: garbage } } });
    case "unipile": return `[${JSON.stringify(garbage)}]`;
    case "salesforge": return `{"type": ${JSON.stringify(garbage)}`;
    case "calcom": return JSON.stringify({ payload: { uid: garbage } });
    case "calendly": return `${garbage}}`;
    case "postgrid": return garbage;
  }
}

async function sign(provider: WebhookProvider, raw: string, contentType: string, flaw: Flaw, json?: Record<string, unknown>): Promise<{ raw: string; headers: Record<string, string>; rest: string }> {
  const key = flaw === "bad_signature" ? "not-the-secret" : secret(provider);
  const headers: Record<string, string> = contentType ? { "content-type": contentType } : {};
  const then = flaw === "stale" ? new Date(Date.now() - 15 * 60_000) : new Date();
  const omit = flaw === "missing_signature";
  switch (provider) {
    case "twilio":
      // no timestamp in Twilio's scheme: a "stale" replay is just a wrong signature for another URL
      if (!omit) headers["x-twilio-signature"] = await signTwilio(`${process.env.PUBLIC_FUNCTIONS_BASE_URL}/webhook-twilio${flaw === "stale" ? "?old=1" : ""}`, new URLSearchParams(raw), key);
      return { raw, headers, rest: "" };
    case "clicksend":
    case "salesforge":
      return { raw, headers, rest: omit ? "" : flaw === "stale" ? "?token=" : (provider === "clicksend" ? `?token=${encodeURIComponent(key)}` : `/${encodeURIComponent(key)}`) };
    case "unipile":
      if (!omit) headers["unipile-auth"] = flaw === "stale" ? `${key}x` : key;
      return { raw, headers, rest: "" };
    case "vapi":
      return { raw, headers: omit ? headers : { ...headers, ...(await signVapi(raw, { secret: key }, then)) }, rest: "" };
    case "calcom":
      if (!omit) headers["x-cal-signature-256"] = flaw === "stale" ? "no-secret-provided" : await signCalCom(raw, key);
      return { raw, headers, rest: "" };
    case "calendly":
      if (!omit) headers["calendly-webhook-signature"] = await signCalendly(raw, key, then);
      return { raw, headers, rest: "" };
    case "postgrid": {
      if (omit) return { raw: "", headers, rest: "" };
      const event = flaw === "stale" ? { ...json, exp: Math.floor(then.getTime() / 1000) } : flaw === "malformed" ? raw : json;
      return { raw: await signPostGridJwt(event, key), headers, rest: "" };
    }
  }
}

async function build(d: { repeat: number | null; spec: Spec; flaw: Flaw; garbage: string }, earlier: Req[]): Promise<Req> {
  if (d.repeat !== null && earlier.length > 0) {
    const first = earlier[d.repeat % earlier.length]!;
    return { ...first, init: { ...first.init, headers: { ...first.init.headers } } };
  }
  const r = render(d.spec);
  let raw = r.raw;
  if (d.flaw === "malformed") raw = malformedBody(r.provider, d.garbage);
  if (d.flaw === "oversized") raw = r.provider === "postgrid" ? PAD : `${raw.slice(0, -1)},"pad":"${PAD}"}`;
  const s = await sign(r.provider, raw, r.contentType, d.flaw === "oversized" ? "none" : d.flaw, r.json);
  const fn = WEBHOOKS[r.provider].functionName;
  const body = d.flaw === "oversized" && r.provider === "postgrid" ? PAD : s.raw;
  return { provider: r.provider, path: `/${fn}${s.rest}`, init: { method: "POST", headers: s.headers, body }, eventId: r.eventId, valid: d.flaw === "none", spec: d.spec };
}

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  await getStack();
  for (const p of Object.keys(SECRET_ENV) as WebhookProvider[]) {
    const name = SECRET_ENV[p];
    saved[name] = process.env[name];
    process.env[name] ||= `fuzz-${name.toLowerCase()}`;
  }
  for (const w of Object.values(WEBHOOKS)) apps[w.provider] = (await import(`../../functions/${w.functionName}/index.ts`)).default;
  await makePeople(PEOPLE);
});
const fuzzStartedAt = new Date();
const ROUTES = { "flow.inbound": TOPIC_DESTINATIONS["flow.inbound"], "flow.replies": TOPIC_DESTINATIONS["flow.replies"] };
function unroute() {
  for (const topic of Object.keys(ROUTES)) delete TOPIC_DESTINATIONS[topic];
}
async function reroute() {
  await backgroundPublishSettled();
  await publishOutbox(db()); // what was queued meanwhile is marked done, unrouted
  for (const [topic, fn] of Object.entries(ROUTES)) if (fn) TOPIC_DESTINATIONS[topic] = fn;
}

afterAll(async () => {
  await reroute();
  // The events were applied here, not through the flows: the thousands of replies they stored
  // would otherwise wait for flow-replies' sweep and keep the shared stack busy for later tests.
  await db()`update public.replies set classified_at = now(), acted_at = now(), class = 'auto_reply', class_source = 'fallback'
             where classified_at is null and created_at >= ${fuzzStartedAt}`;
  for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v);
});

describe("10,000 mixed webhooks", () => {
  it("no 5xx; nothing stored from an invalid one; each valid one stored and applied exactly once", { timeout: 180_000 }, async () => {
    const started = Date.now();
    const samples = fc.sample(delivery, { numRuns: TOTAL, seed: SEED });
    const requests: Req[] = [];
    const firsts: Req[] = [];
    for (const d of samples) {
      const r = await build(d, firsts);
      if (d.repeat === null) firsts.push(r);
      requests.push(r);
    }

    // deliver, 32 at a time, straight to the function apps
    unroute();
    const statuses: number[] = new Array(requests.length);
    const CONCURRENCY = 32;
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < requests.length) {
        const i = next++;
        const r = requests[i]!;
        const res = await apps[r.provider].request(r.path, r.init);
        await res.arrayBuffer();
        statuses[i] = res.status;
      }
    }));
    const sent = Date.now();

    // 1. no 5xx, and each answer is the one its flaw calls for
    const byStatus = new Map<number, number>();
    for (const s of statuses) byStatus.set(s, (byStatus.get(s) ?? 0) + 1);
    expect([...byStatus.keys()].filter((s) => s >= 500), JSON.stringify([...byStatus])).toEqual([]);
    requests.forEach((r, i) => {
      if (r.valid) expect(statuses[i], `${r.provider} ${r.eventId}`).toBe(200);
      else expect(statuses[i], `${r.provider} ${JSON.stringify(r.spec)} ${r.init.body.slice(0, 80)}`).toBeGreaterThanOrEqual(400);
    });

    // 2. nothing stored from an invalid delivery (every event id is unique to its delivery)
    const validIds = new Set(requests.filter((r) => r.valid).map((r) => `${r.provider}\u0001${r.eventId}`));
    const invalid = requests.filter((r) => !r.valid && r.eventId && !validIds.has(`${r.provider}\u0001${r.eventId}`));
    const [leak] = await db()`
      select count(*)::int as n from public.webhook_events e
      join unnest(${invalid.map((r) => r.provider)}::text[], ${invalid.map((r) => r.eventId!)}::text[]) as t (provider, event_id)
        on e.provider = t.provider and e.event_id = t.event_id`;
    expect(leak.n).toBe(0);

    // 3. each valid event stored once, then applied exactly once
    const valid = [...new Map(requests.filter((r) => r.valid).map((r) => [`${r.provider}\u0001${r.eventId}`, r])).values()];
    const rows = async () => db()`
      select e.id, e.processed_at, e.attempts, e.error from public.webhook_events e
      join unnest(${valid.map((r) => r.provider)}::text[], ${valid.map((r) => r.eventId!)}::text[]) as t (provider, event_id)
        on e.provider = t.provider and e.event_id = t.event_id`;
    expect((await rows()).length).toBe(valid.length);
    const stored = await rows();
    for (let i = 0; i < stored.length; i += 500) {
      await processInboundEvents(stored.slice(i, i + 500).map((r) => Number(r.id)));
    }
    // a second pass claims nothing: applied events are never applied again
    expect((await processInboundEvents(stored.map((r) => Number(r.id)))).size).toBe(0);
    await reroute();
    const applied = await rows();
    expect(applied.filter((r) => r.attempts !== 1 || r.error !== null), "applied more than once or failed").toEqual([]);

    // 4. statuses end at the furthest one, whatever the order they arrived in
    const terminal = new Map<string, string>();
    for (const r of valid) {
      if (r.spec.kind !== "sms_status") continue;
      const p = people[r.spec.person]!;
      const to = r.spec.status === "delivered" ? "delivered" : r.spec.status === "undelivered" ? "failed" : "sent";
      const prev = terminal.get(p.sendId);
      if (!prev || prev === "sent") terminal.set(p.sendId, to);
    }
    const sends = await db()`select id, status from public.sends where id = any(${people.map((p) => p.sendId)}::uuid[])`;
    for (const s of sends) {
      const want = terminal.get(s.id) ?? "sent";
      // both terminal statuses arrived for one send: the first applied wins, and neither goes back
      const both = valid.filter((r) => r.spec.kind === "sms_status" && people[r.spec.person]!.sendId === s.id)
        .map((r) => (r.spec as { status: string }).status);
      if (both.includes("delivered") && both.includes("undelivered")) expect(["delivered", "failed"]).toContain(s.status);
      else expect(s.status, s.id).toBe(want);
    }

    // 5. every valid text is one reply, or (STOP and its synonyms) an opt-out with no reply
    const texts = valid.filter((r) => r.spec.kind === "twilio_text" || r.spec.kind === "clicksend_text" || r.spec.kind === "unipile_message");
    const messageIds = texts.map((r) => r.eventId!.replace(/^inbound:/, "").replace(/:received$/, "").replace(/^message_received:/, ""));
    const replies = await db()`select provider_message_id, count(*)::int as n from public.replies where provider_message_id = any(${messageIds}) group by 1`;
    const replyCount = new Map(replies.map((r) => [r.provider_message_id as string, r.n as number]));
    const optedOut = new Set<number>();
    texts.forEach((r, i) => {
      const s = r.spec as Extract<Spec, { body: string }>;
      const intent = optOutIntent(s.body);
      const keyword = intent === "keyword" && s.kind !== "unipile_message";
      expect(replyCount.get(messageIds[i]!) ?? 0, `${s.kind} ${JSON.stringify(s.body)}`).toBe(keyword ? 0 : 1);
      const who = s.kind === "unipile_message" ? s.person : typeof s.from === "number" ? s.from : null;
      if (intent && who !== null) optedOut.add(who);
    });
    expect(optedOut.size).toBeGreaterThan(0);

    // 6. the people who opted out are suppressed on every channel and the next gate run refuses them
    const out = [...optedOut].map((i) => people[i]!);
    for (const p of out) {
      for (const channel of ["email", "sms", "voice", "linkedin"]) {
        const [s] = await db()`select private.is_suppressed(${channel}, null, ${p.email}, null, ${p.phone}, ${p.linkedin}) as s`;
        expect(s.s, `${p.phone} ${channel}`).toBe(true);
      }
    }
    const outIds = out.map((p) => p.assignmentId);
    await db().begin(async (tx) => {
      await tx`update public.step_runs set status = 'scheduled', due_at = now() - interval '1 minute'
               where assignment_id = any(${outIds}::uuid[]) and status <> 'sent'`;
      await tx`select private.gate_due_steps(100000, 100, now())`;
      const runs = await tx`select status from public.step_runs where assignment_id = any(${outIds}::uuid[]) and channel <> 'sms'`;
      expect(runs.length).toBe(out.length * 2);
      expect(runs.every((r) => r.status === "cancelled")).toBe(true);
      expect(await tx`select 1 from public.sends where assignment_id = any(${outIds}::uuid[]) and status = 'pending'`).toHaveLength(0);
      throw new Error("rollback");
    }).catch((e) => {
      if (e.message !== "rollback") throw e;
    });

    // the mix really was mixed
    expect(requests.filter((r) => r.valid).length).toBeGreaterThan(TOTAL * 0.4);
    expect(requests.length - valid.length).toBeGreaterThan(TOTAL * 0.4);
    expect(sent - started).toBeLessThan(60_000);
    expect(Date.now() - started).toBeLessThan(120_000);
  });
});
