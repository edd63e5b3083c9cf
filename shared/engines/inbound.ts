// Applies stored provider webhook events (webhook_events) to the outreach record: delivery
// statuses, opens, bounces, unsubscribes, replies, call outcomes and their retries, accepted
// LinkedIn invitations, letters and bookings (product.md §5-§8, providers.md §3-§8, §13, §14).
//
// Each event is applied once: claimed FOR UPDATE SKIP LOCKED, applied inside a savepoint and marked
// processed_at in the same transaction. A failure rolls the savepoint back, records error and
// attempts on the event and is reported to the caller, which throws so QStash retries; a sweep
// picks up events whose message was lost. Events arrive in any order and any number of times, so
// every effect is forward-only or idempotent: a send's status never moves backwards, replies and
// meetings are unique on the provider's id, suppressions on their value.
//
// Replies are stored unclassified (class null) and handed to the replies classifier through
// 'flow.replies' {reply_id}. Opt-outs that must not wait for it — STOP and its synonyms, "please
// remove me" in a text or LinkedIn message, "do not call" on a call — unsubscribe the person here,
// in the event's transaction, so the very next gate run already refuses them.
import { asService, db, type Tx } from "../db/client.ts";
import { enqueue } from "../flows/outbox.ts";
import { salesforgeThreadRef } from "../integrations/salesforge.ts";
import { classifyCallOutcome, nextVoiceAttempt, type CallOutcome } from "../integrations/vapi.ts";
import { log } from "../observability/log.ts";
import { obj, str, type JsonObject } from "../webhooks/receive.ts";
import {
  findLeads, isUuid, normaliseEmail, normaliseLinkedin, normalisePhone, suppressAddress, unsubscribePerson,
} from "./suppress.ts";

export const REPLIES_TOPIC = "flow.replies";

export interface InboundEvent {
  id: number;
  provider: string;
  event_id: string;
  event_type: string;
  payload: JsonObject;
  received_at: Date;
  attempts: number;
}

/** The event cannot be applied yet (its send is still being dispatched): retry later. */
export class RetryLater extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RetryLater";
  }
}

// ---------------------------------------------------------------------------------------------
// Opt-out wording
// ---------------------------------------------------------------------------------------------

/** Twilio's default opt-out keywords (providers.md §3), matched on the whole message. */
export const STOP_KEYWORDS = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"] as const;

/** True when the whole message is a stop keyword (case-insensitive; surrounding punctuation ignored). */
export function isStopKeyword(text: string | null | undefined): boolean {
  const word = (text ?? "").trim().replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, "").toUpperCase();
  return (STOP_KEYWORDS as readonly string[]).includes(word);
}

// An objection in the person's own words. Broad on purpose: a false positive costs one lead, a miss
// breaks the law (Spam Act S3; GDPR Art 21 - compliance G2).
const OPT_OUT_PHRASE = new RegExp(
  [
    String.raw`\bremove\s+(me|us|my\s+(number|details|name|email))\b`,
    String.raw`\btake\s+(me|us|my\s+\w+)\s+off\b`,
    String.raw`\bunsubscribe\b`,
    String.raw`\bopt(\s|-)?(me\s+)?out\b`,
    String.raw`\b(do\s+not|don'?t|dont|never)\s+(contact|call|text|email|e-mail|message|ring|phone)\b`,
    String.raw`\bstop\s+(calling|texting|messaging|emailing|contacting|sending)\b`,
    String.raw`\bno\s+more\s+(calls|texts|messages|emails)\b`,
  ].join("|"),
  "i",
);

/** 'keyword': the whole message is STOP or a synonym; 'phrase': an objection in other words. */
export function optOutIntent(text: string | null | undefined): "keyword" | "phrase" | null {
  if (isStopKeyword(text)) return "keyword";
  return OPT_OUT_PHRASE.test(text ?? "") ? "phrase" : null;
}

// What the person said on a call: lines of theirs in the transcript and messages, and the summary.
// The assistant's own lines are left out (it may say "we won't call again").
function callerWords(message: JsonObject): string[] {
  const out: string[] = [];
  const artifact = obj(message.artifact) ?? {};
  const transcript = str(artifact.transcript) ?? str(message.transcript) ?? "";
  const lines = transcript.split(/\r?\n/);
  const labelled = lines.some((l) => /^\s*(ai|assistant|bot|user|customer|human)\s*:/i.test(l));
  for (const l of lines) {
    if (!labelled || /^\s*(user|customer|human)\s*:/i.test(l)) out.push(l);
  }
  for (const m of [...(Array.isArray(artifact.messages) ? artifact.messages : []), ...(Array.isArray(message.messages) ? message.messages : [])]) {
    const o = obj(m);
    if (o && /^(user|customer)$/i.test(str(o.role) ?? "")) out.push(str(o.message) ?? str(o.content) ?? "");
  }
  const summary = str(obj(message.analysis)?.summary);
  if (summary) out.push(summary);
  return out;
}

/** An opt-out said during the call ("remove me", "do not call", "stop calling", …). */
export function callOptOut(message: JsonObject): boolean {
  return callerWords(message).some((t) => OPT_OUT_PHRASE.test(t));
}

// ---------------------------------------------------------------------------------------------
// Sends: finding them and moving their status forward only
// ---------------------------------------------------------------------------------------------

export type SendStatus = "pending" | "dispatching" | "sent" | "delivered" | "failed" | "bounced" | "unknown";

const RANK: Record<string, number> = { pending: 0, dispatching: 1, unknown: 1, sent: 2, delivered: 3, failed: 3, bounced: 3 };

/** True when a send in `from` may move to `to`: forward only; delivered/failed/bounced are final. */
export function movesForward(from: string, to: string): boolean {
  return (RANK[to] ?? -1) > (RANK[from] ?? 99);
}

interface SendRow {
  id: string;
  status: string;
  step_run_id: string;
  assignment_id: string;
  client_id: string;
  lead_id: string;
  channel: string;
  attempt: number;
  action: string | null;
  thread_ref: string | null;
  opened_at: Date | null;
}

/** Our send for a provider message: by the provider's id, the thread it started, or our own send id. */
async function findSend(tx: Tx, by: { provider: string; providerMessageIds?: Array<string | undefined>; threadRefs?: Array<string | undefined>; sendId?: string }): Promise<SendRow | null> {
  const ids = (by.providerMessageIds ?? []).filter((v): v is string => !!v);
  const refs = (by.threadRefs ?? []).filter((v): v is string => !!v);
  const sendId = isUuid(by.sendId) ? by.sendId : null;
  if (!ids.length && !refs.length && !sendId) return null;
  const rows = await tx`
    select id, status, step_run_id, assignment_id, client_id, lead_id, channel, attempt, action, thread_ref, opened_at
    from public.sends
    where (provider = ${by.provider} and provider_message_id = any(${ids}::text[]))
       or (provider = ${by.provider} and thread_ref = any(${refs}::text[]))
       or id = ${sendId}::uuid
    order by (provider_message_id = any(${ids}::text[])) desc nulls last, (id = ${sendId}::uuid) desc nulls last, created_at desc
    limit 1
    for update`;
  return (rows[0] as unknown as SendRow | undefined) ?? null;
}

/** A send of this channel the dispatcher is still recording: the provider's webhook beat it. */
async function dispatchInFlight(tx: Tx, channel: string): Promise<boolean> {
  // a live lease: the dispatcher is between the provider's answer and recording it (an expired one is reconciled, not awaited)
  const [r] = await tx`select exists (select 1 from public.sends where channel = ${channel} and status = 'dispatching' and lease_until > now()) as busy`;
  return Boolean(r?.busy);
}

/**
 * Moves the send to `to` if that is forward. A send still pending or being dispatched cannot take a
 * provider status yet (the dispatcher records its answer next): retry later.
 */
async function advanceSend(tx: Tx, send: SendRow, to: SendStatus, at: Date, error?: string | null): Promise<boolean> {
  if (send.status === "pending" || send.status === "dispatching") {
    throw new RetryLater(`send ${send.id} is still ${send.status}; its ${to} status must wait`);
  }
  if (!movesForward(send.status, to)) return false;
  await tx`
    update public.sends set status = ${to},
      delivered_at = case when ${to} = 'delivered' then coalesce(delivered_at, ${at}) else delivered_at end,
      error = coalesce(${error ?? null}, error)
    where id = ${send.id}`;
  send.status = to;
  return true;
}

/** Unmatched status events: retried while a send of the channel is mid-dispatch, else noted and dropped. */
async function unmatched(tx: Tx, channel: string, what: string): Promise<string> {
  if (await dispatchInFlight(tx, channel)) throw new RetryLater(`${what}: no send yet (a ${channel} dispatch is in flight)`);
  return `${what}: no matching send`;
}

// ---------------------------------------------------------------------------------------------
// Who the person is: lead, assignment and client for a reply or a booking
// ---------------------------------------------------------------------------------------------

interface Context {
  clientId: string | null;
  leadId: string | null;
  assignmentId: string | null;
  sendId: string | null;
}

async function contextFor(tx: Tx, send: SendRow | null, leadIds: string[]): Promise<Context> {
  if (send) return { clientId: send.client_id, leadId: send.lead_id, assignmentId: send.assignment_id, sendId: send.id };
  if (leadIds.length === 0) return { clientId: null, leadId: null, assignmentId: null, sendId: null };
  // the active assignment (at most one per lead), else the latest
  const [a] = await tx`
    select id, client_id, lead_id from public.lead_assignments
    where lead_id = any(${leadIds}::uuid[])
    order by (ended_at is null) desc, created_at desc
    limit 1`;
  return a
    ? { clientId: a.client_id as string, leadId: a.lead_id as string, assignmentId: a.id as string, sendId: null }
    : { clientId: null, leadId: leadIds[0]!, assignmentId: null, sendId: null };
}

interface ReplyInput {
  channel: "email" | "sms" | "voice" | "linkedin" | "mail";
  provider: string;
  providerMessageId: string;
  from: string | null;
  subject?: string | null;
  body: string;
}

/** A replies row (class null, for the classifier), once per provider message; queues its classification. */
async function insertReply(tx: Tx, ev: InboundEvent, ctx: Context, r: ReplyInput): Promise<string | null> {
  const rows = await tx`
    insert into public.replies (client_id, lead_id, assignment_id, send_id, channel, provider, provider_message_id,
                                from_address, subject, body, received_at, webhook_event_id)
    values (${ctx.clientId}, ${ctx.leadId}, ${ctx.assignmentId}, ${ctx.sendId}, ${r.channel}, ${r.provider},
            ${r.providerMessageId}, ${r.from}, ${r.subject ?? null}, ${r.body}, ${ev.received_at}, ${ev.id})
    on conflict (provider, provider_message_id) do nothing
    returning id`;
  const id = rows[0]?.id as string | undefined;
  if (!id) return null;
  await enqueue(tx, REPLIES_TOPIC, { reply_id: id }, { dedupKey: `${REPLIES_TOPIC}:${id}`, clientId: ctx.clientId ?? undefined });
  return id;
}

// ---------------------------------------------------------------------------------------------
// SMS (Twilio, ClickSend): delivery statuses and inbound texts
// ---------------------------------------------------------------------------------------------

/** Twilio MessageStatus → our send status (null: nothing to record). */
export function twilioStatus(status: string | undefined): SendStatus | null {
  switch ((status ?? "").toLowerCase()) {
    case "accepted": case "queued": case "sending": case "sent": case "scheduled":
      return "sent";
    case "delivered": case "read":
      return "delivered";
    case "undelivered": case "failed": case "canceled":
      return "failed";
    default:
      return null;
  }
}

/** ClickSend receipt status → our send status. */
export function clicksendStatus(status: string | undefined): SendStatus | null {
  const s = (status ?? "").toLowerCase();
  if (s === "delivered") return "delivered";
  if (s === "undelivered" || s === "failed" || s === "expired" || s === "rejected") return "failed";
  return s ? "sent" : null;
}

async function smsStatus(tx: Tx, ev: InboundEvent, provider: string, messageId: string | undefined, to: SendStatus | null,
  opts: { sendId?: string; error?: string | null; recipient?: string } = {}): Promise<string | null> {
  if (!to) return "status without meaning for us";
  const send = await findSend(tx, { provider, providerMessageIds: [messageId], sendId: opts.sendId });
  if (!send) return unmatched(tx, "sms", `${provider} ${messageId}`);
  await advanceSend(tx, send, to, ev.received_at, opts.error);
  return null;
}

interface InboundText {
  provider: "twilio" | "clicksend";
  messageId: string;
  from: string | undefined;
  body: string;
  /** Twilio Advanced Opt-Out: OptOutType=STOP. */
  optOutType?: string;
  /** ClickSend: the outbound message this answers, and its custom_string (our send id). */
  originalMessageId?: string;
  sendId?: string;
}

async function inboundText(tx: Tx, ev: InboundEvent, t: InboundText): Promise<string | null> {
  const phone = normalisePhone(t.from);
  const send = await findSend(tx, { provider: t.provider, providerMessageIds: [t.originalMessageId], sendId: t.sendId });
  const leads = send ? [] : phone ? (await findLeads(tx, { phone })).map((l) => l.id) : [];
  const ctx = await contextFor(tx, send, leads);
  const intent = t.optOutType?.toUpperCase() === "STOP" ? "keyword" : optOutIntent(t.body);
  const source = `${t.provider}:${t.messageId}`;
  if (intent === "keyword") {
    // STOP and its synonyms: the number (and the person behind it) is out, everywhere; no reply to classify
    await unsubscribePerson(tx, { leadId: ctx.leadId, phone: phone ?? t.from, reason: "sms_stop", source, clientId: ctx.clientId, at: ev.received_at });
    return null;
  }
  await insertReply(tx, ev, ctx, { channel: "sms", provider: t.provider, providerMessageId: t.messageId, from: phone ?? t.from ?? null, body: t.body });
  if (intent === "phrase") {
    await unsubscribePerson(tx, { leadId: ctx.leadId, phone: phone ?? t.from, reason: "reply_opt_out", source, clientId: ctx.clientId, at: ev.received_at });
  }
  return null;
}

async function applyTwilio(tx: Tx, ev: InboundEvent): Promise<string | null> {
  const p = ev.payload;
  const sid = str(p.MessageSid) ?? str(p.SmsSid) ?? str(p.SmsMessageSid);
  switch (ev.event_type) {
    case "sms.status": {
      const status = str(p.MessageStatus) ?? str(p.SmsStatus);
      const error = str(p.ErrorCode);
      const note = await smsStatus(tx, ev, "twilio", sid, twilioStatus(status), {
        error: error ? `twilio ${error}` : null, sendId: str(obj(p._query)?.send_id),
      });
      // 21610: the recipient replied STOP to this sender earlier; honour it in our own records too
      if (error === "21610") {
        await unsubscribePerson(tx, { phone: str(p.To), reason: "sms_stop", source: `twilio:${sid}:21610`, at: ev.received_at });
      }
      return note;
    }
    case "sms.inbound":
      return inboundText(tx, ev, {
        provider: "twilio", messageId: sid!, from: str(p.From), body: typeof p.Body === "string" ? p.Body : "", optOutType: str(p.OptOutType),
      });
    default:
      return `twilio ${ev.event_type}: nothing to apply`;
  }
}

async function applyClickSend(tx: Tx, ev: InboundEvent): Promise<string | null> {
  const p = ev.payload;
  const id = str(p.message_id)!;
  if (ev.event_type === "sms.receipt") {
    const error = str(p.error_text) ?? str(p.status_text);
    const to = clicksendStatus(str(p.status));
    return smsStatus(tx, ev, "clicksend", id, to, { sendId: str(p.custom_string), error: to === "failed" ? `clicksend ${error ?? "undelivered"}` : null });
  }
  return inboundText(tx, ev, {
    provider: "clicksend", messageId: id, from: str(p.from) ?? str(p.sms) ?? str(p.originalsenderid),
    body: typeof p.body === "string" ? p.body : typeof p.message === "string" ? p.message : "",
    originalMessageId: str(p.original_message_id), sendId: str(p.custom_string),
  });
}

// ---------------------------------------------------------------------------------------------
// Email (Salesforge)
// ---------------------------------------------------------------------------------------------

async function applySalesforge(tx: Tx, ev: InboundEvent): Promise<string | null> {
  const p = ev.payload;
  const contact = obj(p.contact) ?? {};
  const sendId = str(obj(contact.customVars)?.aos_send_id) ?? str(obj(p._query)?.send_id);
  const mailboxId = str(p.mailboxId);
  const emailId = str(p.emailId);
  const ref = (id: string | undefined) => (mailboxId && id ? salesforgeThreadRef(mailboxId, id) : undefined);
  const email = normaliseEmail(str(contact.email) ?? str(p.email) ?? str(p.to));
  const source = `salesforge:${ev.event_id}`;

  switch (ev.event_type) {
    case "email_sent": {
      const send = await findSend(tx, {
        provider: "salesforge",
        providerMessageIds: [emailId, str(p.sequenceId) && str(contact.id) ? `enrol:${str(p.sequenceId)}:${str(contact.id)}` : undefined],
        sendId,
      });
      if (!send) return unmatched(tx, "email", `salesforge email_sent ${emailId}`);
      // the first email's thread: later steps reply into it (shared/integrations/salesforge.ts)
      if (!send.thread_ref && ref(emailId)) await tx`update public.sends set thread_ref = ${ref(emailId)!} where id = ${send.id} and thread_ref is null`;
      await advanceSend(tx, send, "sent", ev.received_at);
      return null;
    }
    case "email_opened":
    case "link_clicked": {
      const send = await findSend(tx, { provider: "salesforge", providerMessageIds: [emailId], threadRefs: [ref(emailId)], sendId });
      if (!send) return `salesforge ${ev.event_type} ${emailId}: no matching send`;
      await tx`update public.sends set opened_at = ${ev.received_at} where id = ${send.id} and opened_at is null`;
      return null;
    }
    case "email_bounced": {
      const send = await findSend(tx, { provider: "salesforge", providerMessageIds: [emailId], threadRefs: [ref(emailId)], sendId });
      if (send && send.status !== "pending" && send.status !== "dispatching") await advanceSend(tx, send, "bounced", ev.received_at, str(p.reason) ?? "bounced");
      let address = email;
      if (!address && send) {
        const [l] = await tx`select email_normalized from public.lead_pool where id = ${send.lead_id}`;
        address = (l?.email_normalized as string | null) ?? null;
      }
      if (!address) return "salesforge email_bounced: no address";
      await suppressAddress(tx, { kind: "email", value: address, reason: "bounce", source });
      return null;
    }
    case "email_replied": {
      const replyTo = str(p.replyToEmailId) ?? str(p.inReplyTo);
      const send = await findSend(tx, { provider: "salesforge", providerMessageIds: [replyTo], threadRefs: [ref(replyTo)], sendId });
      const leads = send ? [] : email ? (await findLeads(tx, { email })).map((l) => l.id) : [];
      const ctx = await contextFor(tx, send, leads);
      const reply = obj(p.reply);
      const body = str(p.content) ?? str(p.body) ?? str(p.text) ?? str(reply?.content) ?? str(reply?.body) ?? str(p.snippet) ?? "";
      await insertReply(tx, ev, ctx, {
        channel: "email", provider: "salesforge", providerMessageId: emailId ?? ev.event_id,
        from: email ?? str(p.from) ?? null, subject: str(p.subject) ?? null, body,
      });
      // the quoted original (with our unsubscribe footer) makes wording unreliable here: the classifier decides
      return null;
    }
    case "contact_unsubscribed":
      if (!email) return "salesforge contact_unsubscribed: no address";
      await unsubscribePerson(tx, { email, reason: "email_unsubscribe", source, at: ev.received_at });
      return null;
    case "dnc_added": {
      const values = [email, ...(Array.isArray(p.dncs) ? p.dncs : []), str(p.value), str(p.domain)]
        .map((v) => (typeof v === "string" ? v.trim().toLowerCase() : null))
        .filter((v): v is string => !!v);
      if (!values.length) return "salesforge dnc_added: no address";
      for (const v of new Set(values)) {
        if (v.includes("@")) await unsubscribePerson(tx, { email: v, reason: "dnc", source, at: ev.received_at });
        else await suppressAddress(tx, { kind: "domain", value: v, reason: "dnc", source });
      }
      return null;
    }
    default:
      return `salesforge ${ev.event_type}: nothing to apply`;
  }
}

// ---------------------------------------------------------------------------------------------
// LinkedIn (Unipile)
// ---------------------------------------------------------------------------------------------

async function applyUnipile(tx: Tx, ev: InboundEvent): Promise<string | null> {
  const p = ev.payload;
  if (ev.event_type === "new_relation") {
    const key = normaliseLinkedin(str(p.user_profile_url) ?? str(p.user_public_identifier));
    const leads = key ? (await findLeads(tx, { linkedinKey: key })).map((l) => l.id) : [];
    if (!leads.length) return "unipile new_relation: no lead with that profile";
    const accountId = str(p.account_id) ?? null;
    // the invitation was accepted: the gate's 'linkedin_accepted' condition reads a delivered invitation
    const updated = await tx`
      update public.sends s set status = 'delivered', delivered_at = coalesce(s.delivered_at, ${ev.received_at})
      where s.id in (
        select x.id from public.sends x left join public.senders se on se.id = x.sender_id
        where x.lead_id = any(${leads}::uuid[]) and x.channel = 'linkedin' and x.action = 'invitation'
          and x.status in ('sent', 'unknown')
          and (${accountId}::text is null or se.provider_account_id is null or se.provider_account_id = ${accountId}::text)
        for update of x)
      returning s.id`;
    if (updated.length) return null;
    const [inFlight] = await tx`
      select exists (select 1 from public.sends where lead_id = any(${leads}::uuid[]) and action = 'invitation'
                     and status in ('pending', 'dispatching')) as busy`;
    if (inFlight?.busy) throw new RetryLater("unipile new_relation: the invitation is still being dispatched");
    return "unipile new_relation: no open invitation of ours";
  }
  if (ev.event_type === "message_received") {
    const sender = obj(p.sender) ?? {};
    const own = str(obj(p.account_info)?.user_id);
    if (own && str(sender.attendee_provider_id) === own) return "unipile message_received: our own message";
    const chatId = str(p.chat_id);
    const send = await findSend(tx, { provider: "unipile", threadRefs: [chatId] });
    const key = normaliseLinkedin(str(sender.attendee_profile_url));
    const leads = send ? [] : key ? (await findLeads(tx, { linkedinKey: key })).map((l) => l.id) : [];
    const ctx = await contextFor(tx, send, leads);
    const text = str(p.message) ?? "";
    await insertReply(tx, ev, ctx, {
      channel: "linkedin", provider: "unipile", providerMessageId: str(p.message_id)!, from: key ?? str(sender.attendee_name) ?? null, body: text,
    });
    if (optOutIntent(text)) {
      await unsubscribePerson(tx, { leadId: ctx.leadId, linkedinKey: key, reason: "reply_opt_out", source: `unipile:${str(p.message_id)}`, clientId: ctx.clientId, at: ev.received_at });
    }
    return null;
  }
  if (ev.event_type === "account_status") {
    const status = obj(p.AccountStatus) ?? {};
    const message = str(status.message);
    if (message === "CREDENTIALS" || message === "ERROR" || message === "STOPPED") {
      log("warn", "unipile account needs attention", { account: str(status.account_id), status: message });
    }
    return null;
  }
  return `unipile ${ev.event_type}: nothing to apply`;
}

// ---------------------------------------------------------------------------------------------
// Voice (Vapi): outcomes, the retry rules (product.md §5) and opt-outs said on the call
// ---------------------------------------------------------------------------------------------

/** A call's outcome as a send status: the person answered → delivered; anything else → failed. */
export function callSendStatus(outcome: CallOutcome): SendStatus {
  return outcome === "answered" ? "delivered" : "failed";
}

async function scheduleVoiceRetry(tx: Tx, send: SendRow, outcome: CallOutcome, at: Date): Promise<string | null> {
  const [run] = await tx`
    select r.id, r.status, r.voice_attempts, a.ended_at is null as active
    from public.step_runs r join public.lead_assignments a on a.id = r.assignment_id
    where r.id = ${send.step_run_id}
    for update of r`;
  if (!run || run.status !== "sent" || !run.active) return null;
  // only the latest attempt's outcome decides (a late report of an earlier call changes nothing)
  if (Number(run.voice_attempts) !== Number(send.attempt)) return null;
  const next = nextVoiceAttempt(outcome, Number(run.voice_attempts), at);
  if (!next) return null;
  if (next.kind === "at") {
    await tx`update public.step_runs set status = 'scheduled', due_at = ${next.at} where id = ${run.id}`;
  } else {
    // the next day the recipient's calling window opens (weekends and holidays skipped)
    await tx`
      update public.step_runs r set status = 'scheduled',
        due_at = coalesce(private.next_window_start('voice', r.country, r.region, r.timezone,
                   (((${at}::timestamptz at time zone r.timezone)::date + 1)::timestamp at time zone r.timezone)),
                 ${at}::timestamptz + interval '1 day')
      where r.id = ${run.id}`;
  }
  return null;
}

async function applyVapi(tx: Tx, ev: InboundEvent): Promise<string | null> {
  const message = obj(ev.payload.message) ?? {};
  const call = obj(message.call) ?? {};
  const callId = str(call.id);
  const metadata = obj(obj(call.assistant)?.metadata) ?? obj(obj(message.assistant)?.metadata) ?? obj(call.metadata) ?? {};
  const sendId = str(metadata.sendId);
  if (ev.event_type === "status-update") {
    const status = str(message.status);
    if (status !== "ringing" && status !== "in-progress" && status !== "forwarding") return null;
    const send = await findSend(tx, { provider: "vapi", providerMessageIds: [callId], sendId });
    if (!send) return unmatched(tx, "voice", `vapi call ${callId}`);
    await advanceSend(tx, send, "sent", ev.received_at);
    return null;
  }
  if (ev.event_type !== "end-of-call-report") return `vapi ${ev.event_type}: nothing to apply`;

  const send = await findSend(tx, { provider: "vapi", providerMessageIds: [callId], sendId });
  if (!send) return unmatched(tx, "voice", `vapi call ${callId}`);
  const endedReason = str(message.endedReason) ?? str(call.endedReason);
  const outcome = classifyCallOutcome(endedReason);
  await advanceSend(tx, send, callSendStatus(outcome), ev.received_at, outcome === "answered" ? null : `vapi ${endedReason ?? "no endedReason"}`);
  const customer = str(obj(message.customer)?.number) ?? str(obj(call.customer)?.number);
  const optedOut = callOptOut(message);
  if (optedOut) {
    // D5: the call ends when asked; and nobody calls, texts or emails them again
    await unsubscribePerson(tx, { leadId: send.lead_id, phone: customer, reason: "call_opt_out", source: `vapi:${callId}`, clientId: send.client_id, at: ev.received_at });
  } else {
    await scheduleVoiceRetry(tx, send, outcome, ev.received_at);
  }
  const transcript = str(obj(message.artifact)?.transcript) ?? str(message.transcript);
  if (outcome === "answered" && transcript) {
    const ctx = await contextFor(tx, send, []);
    await insertReply(tx, ev, ctx, { channel: "voice", provider: "vapi", providerMessageId: callId ?? ev.event_id, from: customer ?? null, body: transcript });
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Direct mail (PostGrid)
// ---------------------------------------------------------------------------------------------

/** A letter's status (and USPS tracking) → our send status. */
export function postgridStatus(status: string | undefined, imbStatus?: string): SendStatus | null {
  if (imbStatus === "returned_to_sender") return "bounced";
  switch (status) {
    case "ready": case "printing": case "processed_for_delivery": return "sent";
    case "completed": return "delivered";
    case "cancelled": return "failed";
    default: return null;
  }
}

async function applyPostGrid(tx: Tx, ev: InboundEvent): Promise<string | null> {
  if (!/^(letter|postcard)\.updated$/.test(ev.event_type)) return `postgrid ${ev.event_type}: nothing to apply`;
  const data = obj(ev.payload.data) ?? {};
  const item = obj(data.object) ?? data;
  const to = postgridStatus(str(item.status), str(item.imbStatus));
  if (!to) return `postgrid status ${str(item.status)}: nothing to apply`;
  const send = await findSend(tx, { provider: "postgrid", providerMessageIds: [str(item.id)], sendId: str(obj(item.metadata)?.sendId) });
  if (!send) return unmatched(tx, "mail", `postgrid ${str(item.id)}`);
  await advanceSend(tx, send, to, ev.received_at, to === "failed" || to === "bounced" ? `postgrid ${str(item.imbStatus) ?? str(item.status)}` : null);
  return null;
}

// ---------------------------------------------------------------------------------------------
// Bookings (Cal.com, Calendly) → meetings
// ---------------------------------------------------------------------------------------------

interface Booking {
  source: "calcom" | "calendly";
  externalId: string;
  status: "booked" | "rescheduled" | "cancelled";
  startsAt: string | undefined;
  endsAt?: string;
  email?: string;
  name?: string;
  title?: string;
  joinUrl?: string;
  /** utm_content = our lead id, when the booking link carried it. */
  leadHint?: string;
}

function validDate(v: string | undefined): string | null {
  if (!v) return null;
  const t = Date.parse(v);
  return Number.isFinite(t) ? new Date(t).toISOString() : null;
}

/** Moves the assignment to meeting_booked when the state machine allows it (directly, or by way of 'replied'). */
async function markMeetingBooked(tx: Tx, assignmentId: string): Promise<boolean> {
  const [a] = await tx`select status from public.lead_assignments where id = ${assignmentId} and ended_at is null for update`;
  if (!a || a.status === "meeting_booked") return false;
  const [path] = await tx`
    select exists (select 1 from public.status_transitions where entity = 'assignment' and from_status = ${a.status} and to_status = 'meeting_booked') as direct,
           exists (select 1 from public.status_transitions t1 join public.status_transitions t2
                     on t2.entity = t1.entity and t2.from_status = t1.to_status and t2.to_status = 'meeting_booked'
                   where t1.entity = 'assignment' and t1.from_status = ${a.status} and t1.to_status = 'replied') as via_reply`;
  if (!path?.direct && !path?.via_reply) return false;
  const [prev] = await tx`select current_setting('app.reason', true) as reason, set_config('app.reason', 'meeting booked', true)`;
  if (!path.direct) await tx`update public.lead_assignments set status = 'replied' where id = ${assignmentId}`;
  await tx`update public.lead_assignments set status = 'meeting_booked' where id = ${assignmentId}`;
  await tx`select set_config('app.reason', ${(prev?.reason as string | null) ?? ""}, true)`;
  return true;
}

async function applyBooking(tx: Tx, b: Booking): Promise<string | null> {
  const startsAt = validDate(b.startsAt);
  if (!startsAt) return `${b.source} booking ${b.externalId}: no start time`;
  let leads: string[] = [];
  if (isUuid(b.leadHint)) leads = (await findLeads(tx, { leadId: b.leadHint })).map((l) => l.id);
  if (!leads.length && b.email) leads = (await findLeads(tx, { email: b.email })).map((l) => l.id);
  const ctx = await contextFor(tx, null, leads);
  if (!ctx.clientId) return `${b.source} booking ${b.externalId}: no lead of ours`;
  // booked never overrides a later state (cancelled, rescheduled, or an outcome); events arrive in any order
  const [m] = await tx`
    insert into public.meetings as m (client_id, lead_id, assignment_id, source, external_id, status, starts_at, ends_at,
                                      attendee_email, attendee_name, title, join_url)
    values (${ctx.clientId}, ${ctx.leadId}, ${ctx.assignmentId}, ${b.source}, ${b.externalId}, ${b.status}, ${startsAt},
            ${validDate(b.endsAt)}, ${normaliseEmail(b.email) ?? b.email ?? null}, ${b.name ?? null}, ${b.title ?? null}, ${b.joinUrl ?? null})
    on conflict (source, external_id) do update set
      status = case when excluded.status = 'booked' or m.status in ('held', 'no_show') then m.status else excluded.status end,
      starts_at = case when excluded.status = 'booked' then excluded.starts_at else m.starts_at end,
      ends_at = coalesce(case when excluded.status = 'booked' then excluded.ends_at end, m.ends_at),
      join_url = coalesce(excluded.join_url, m.join_url),
      title = coalesce(m.title, excluded.title)
    returning m.status`;
  if (m?.status === "booked" && ctx.assignmentId) await markMeetingBooked(tx, ctx.assignmentId);
  return null;
}

async function applyCalCom(tx: Tx, ev: InboundEvent): Promise<string | null> {
  const p = obj(ev.payload.payload) ?? {};
  const uid = str(p.uid);
  if (!uid) return `calcom ${ev.event_type}: no booking uid`;
  const attendee = obj(Array.isArray(p.attendees) ? p.attendees[0] : undefined) ?? {};
  const responses = obj(p.responses) ?? {};
  const email = str(attendee.email) ?? str(obj(responses.email)?.value) ?? str(responses.email);
  const name = str(attendee.name) ?? str(obj(responses.name)?.value) ?? str(responses.name);
  const metadata = obj(p.metadata) ?? {};
  const leadHint = str(metadata.utm_content) ?? str(obj(p.tracking)?.utm_content) ?? str(obj(responses.utm_content)?.value) ?? str(p.utm_content);
  const location = str(p.location);
  const common = {
    source: "calcom" as const, startsAt: str(p.startTime), endsAt: str(p.endTime), email, name,
    title: str(p.title) ?? str(p.eventTitle), joinUrl: str(metadata.videoCallUrl) ?? (location && /^https?:\/\//.test(location) ? location : undefined), leadHint,
  };
  switch (ev.event_type) {
    case "BOOKING_CREATED":
      return applyBooking(tx, { ...common, externalId: uid, status: "booked" });
    case "BOOKING_RESCHEDULED": {
      const old = str(p.rescheduleUid) ?? str(p.fromReschedule);
      if (old && old !== uid) {
        await tx`update public.meetings set status = 'rescheduled' where source = 'calcom' and external_id = ${old} and status = 'booked'`;
      }
      return applyBooking(tx, { ...common, externalId: uid, status: "booked" });
    }
    case "BOOKING_CANCELLED":
    case "BOOKING_REJECTED":
      return applyBooking(tx, { ...common, externalId: uid, status: "cancelled" });
    default:
      return `calcom ${ev.event_type}: nothing to apply`;
  }
}

async function applyCalendly(tx: Tx, ev: InboundEvent): Promise<string | null> {
  const p = obj(ev.payload.payload) ?? {};
  const uri = str(p.uri);
  if (!uri) return `calendly ${ev.event_type}: no invitee uri`;
  const scheduled = obj(p.scheduled_event) ?? {};
  const common = {
    source: "calendly" as const, externalId: uri, startsAt: str(scheduled.start_time), endsAt: str(scheduled.end_time),
    email: str(p.email), name: str(p.name), title: str(scheduled.name), joinUrl: str(obj(scheduled.location)?.join_url),
    leadHint: str(obj(p.tracking)?.utm_content),
  };
  switch (ev.event_type) {
    case "invitee.created":
      return applyBooking(tx, { ...common, status: "booked" });
    case "invitee.canceled":
      // a reschedule is a cancel of the old invitee (rescheduled: true) plus a created one for the new
      return applyBooking(tx, { ...common, status: p.rescheduled === true ? "rescheduled" : "cancelled" });
    default:
      return `calendly ${ev.event_type}: nothing to apply`;
  }
}

// ---------------------------------------------------------------------------------------------
// Dispatch, claim, sweep
// ---------------------------------------------------------------------------------------------

/** Applies one event in the caller's transaction; returns a note when there was nothing to do. */
export async function applyInboundEvent(tx: Tx, ev: InboundEvent): Promise<string | null> {
  switch (ev.provider) {
    case "twilio": return applyTwilio(tx, ev);
    case "clicksend": return applyClickSend(tx, ev);
    case "salesforge": return applySalesforge(tx, ev);
    case "unipile": return applyUnipile(tx, ev);
    case "vapi": return applyVapi(tx, ev);
    case "postgrid": return applyPostGrid(tx, ev);
    case "calcom": return applyCalCom(tx, ev);
    case "calendly": return applyCalendly(tx, ev);
    default: return `${ev.provider}: no processor`;
  }
}

export type ProcessOutcome =
  | { status: "processed"; note: string | null }
  | { status: "already" | "busy" | "missing" }
  | { status: "failed"; error: string; retryLater: boolean };

/**
 * Claims the given events (unprocessed, not held by another worker) and applies each in its own
 * savepoint, all in one transaction: an applied event gets processed_at with its effects; a failed
 * one rolls back alone and records error and attempts. Events another worker holds, already
 * applied or unknown are left out of the result. Never throws for a failure of an event itself.
 */
export async function processInboundEvents(eventIds: number[]): Promise<Map<number, ProcessOutcome>> {
  const out = new Map<number, ProcessOutcome>();
  if (eventIds.length === 0) return out;
  await asService({ role: "service:inbound", reason: "provider webhook applied" }, async (tx) => {
    const rows = await tx`
      select id, provider, event_id, event_type, payload, received_at, attempts
      from public.webhook_events
      where id = any(${eventIds}::bigint[]) and processed_at is null
      order by id
      for update skip locked`;
    const done: number[] = [];
    for (const row of rows) {
      const ev: InboundEvent = {
        id: Number(row.id), provider: row.provider, event_id: row.event_id, event_type: row.event_type,
        payload: row.payload as JsonObject, received_at: row.received_at as Date, attempts: Number(row.attempts),
      };
      try {
        const note = await tx.savepoint((sp) => applyInboundEvent(sp as unknown as Tx, ev));
        done.push(ev.id);
        if (note) log("info", "inbound event: nothing applied", { event: ev.id, provider: ev.provider, type: ev.event_type, note });
        out.set(ev.id, { status: "processed", note });
      } catch (err) {
        const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        await tx`update public.webhook_events set attempts = attempts + 1, error = ${error.slice(0, 2000)} where id = ${ev.id}`;
        log(err instanceof RetryLater ? "info" : "error", "inbound event failed", { event: ev.id, provider: ev.provider, type: ev.event_type, error });
        out.set(ev.id, { status: "failed", error, retryLater: err instanceof RetryLater });
      }
    }
    if (done.length) {
      await tx`update public.webhook_events set processed_at = now(), attempts = attempts + 1, error = null where id = any(${done}::bigint[])`;
    }
  });
  return out;
}

/** One event (the one a flow.inbound message names): applied, or why not. */
export async function processInboundEvent(eventId: number): Promise<ProcessOutcome> {
  const result = (await processInboundEvents([eventId])).get(eventId);
  if (result) return result;
  const [row] = await db()`select processed_at from public.webhook_events where id = ${eventId}`;
  if (!row) return { status: "missing" };
  return row.processed_at ? { status: "already" } : { status: "busy" };
}

export interface SweepResult {
  processed: number;
  failed: number;
  more: boolean;
}

/** Events no message brought here (lost, or failed earlier): the oldest unprocessed ones, one transaction each. */
export async function sweepInboundEvents(opts: { limit?: number; minAgeSeconds?: number; maxAttempts?: number } = {}): Promise<SweepResult> {
  const limit = opts.limit ?? 50;
  const rows = await db()`
    select id from public.webhook_events
    where processed_at is null and attempts < ${opts.maxAttempts ?? 8}
      and received_at < now() - make_interval(secs => ${opts.minAgeSeconds ?? 60})
    order by received_at, id
    limit ${limit}`;
  const results = await processInboundEvents(rows.map((r) => Number(r.id)));
  let processed = 0;
  let failed = 0;
  for (const r of results.values()) {
    if (r.status === "processed") processed++;
    else if (r.status === "failed") failed++;
  }
  return { processed, failed, more: rows.length === limit };
}
