// The dispatcher: takes one dispatch batch (recorded by the send gate), withdraws what must no
// longer go, leases the due sends and hands each to its channel adapter. One QStash message per
// batch; a send is leased before its provider call, so a redelivered or concurrent message never
// sends it again, and a send whose lease expired mid-call is reconciled with the provider
// (findByReference) instead of being resent blindly.
import type { Channel, ChannelAdapter, SendRequest, SendResult } from "../channels/types.ts";
import { readEnv } from "../config/env.ts";
import type { Sql } from "../db/client.ts";
import { ProviderError } from "../integrations/provider-http.ts";
import { unsubscribeToken, unsubscribeUrl } from "../compliance/unsubscribe-token.ts";
import { UNSUBSCRIBE_PLACEHOLDER } from "./content-checks.ts";
import { mapLimit } from "./concurrency.ts";
import { publicWebhookUrl } from "../webhooks/public-url.ts";

/**
 * Adapters by sender provider (senders.provider). Each channel's dispatch function builds only its
 * own (functions/flow-dispatch-<channel>), so no function bundles every provider's client.
 */
export type AdapterRegistry = Partial<Record<string, ChannelAdapter>>;

export interface DispatchOptions {
  limit?: number;
  /** How long a claimed send is ours before another delivery may reconcile it (default 120 s). */
  leaseSeconds?: number;
  /** Provider calls in flight at once (default 8; LinkedIn always 1). */
  concurrency?: number;
  /** After this many failed attempts a retryable failure becomes final (default 5). */
  maxAttempts?: number;
  now?: Date;
}

export interface DispatchResult {
  claimed: number;
  sent: number;
  failed: number;
  retrying: number;
  reconciled: number;
  unknown: number;
  /** Sends of the batch still waiting (retries, LinkedIn pacing): seconds until the earliest is due. */
  nextInSeconds: number | null;
}

interface SendRow {
  id: string;
  reconcile: boolean;
  channel: Channel;
  attempt: number;
  dispatch_attempts: number;
  client_id: string;
  lead_id: string;
  assignment_id: string;
  action: string | null;
  subject: string | null;
  body: string | null;
  sender_id: string | null;
  provider: string | null;
  sender_address: string | null;
  sender_display_name: string | null;
  provider_account_id: string | null;
  sender_postal_address: Record<string, string> | null;
  first_name: string | null;
  last_name: string | null;
  company_name: string | null;
  title: string | null;
  email: string | null;
  phone_e164: string | null;
  linkedin_url: string | null;
  postal_address: Record<string, string> | null;
  thread_ref: string | null;
  client_name: string;
  sender_name: string | null;
}

/** Where each provider posts its status webhooks (the webhook functions verify them). */
const STATUS_CALLBACK_FUNCTION: Record<string, string> = {
  twilio: "webhook-twilio",
  vapi: "webhook-vapi",
};

function statusCallbackUrl(provider: string): string | null {
  const fn = STATUS_CALLBACK_FUNCTION[provider];
  if (!fn) return null;
  try {
    return publicWebhookUrl(fn);
  } catch {
    return null;
  }
}

async function buildRequest(row: SendRow): Promise<SendRequest> {
  let body = row.body ?? "";
  let headers: Record<string, string> | undefined;
  if (row.channel === "email" || row.channel === "mail" || body.includes(UNSUBSCRIBE_PLACEHOLDER)) {
    const secret = readEnv("UNSUBSCRIBE_SECRET");
    if (!secret) {
      throw new ProviderError({
        provider: row.provider ?? "dispatch", operation: "unsubscribe", retryable: false, code: "not_configured",
        message: "UNSUBSCRIBE_SECRET is not set: no message goes out without a working unsubscribe",
      });
    }
    const url = unsubscribeUrl(await unsubscribeToken({ sendId: row.id, leadId: row.lead_id }, secret, new Date()));
    body = body.split(UNSUBSCRIBE_PLACEHOLDER).join(url);
    if (row.channel === "email") {
      // RFC 8058 one-click unsubscribe (compliance S3, M1)
      headers = { "List-Unsubscribe": `<${url}>`, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" };
    }
  }
  const voiceId = readEnv("VOICE_ELEVENLABS_VOICE_ID");
  return {
    sendId: row.id,
    clientId: row.client_id,
    leadId: row.lead_id,
    channel: row.channel,
    sender: {
      id: row.sender_id ?? "",
      address: row.sender_address ?? "",
      displayName: row.sender_display_name ?? row.sender_name ?? row.client_name,
      providerAccountId: row.provider_account_id,
      postalAddress: row.sender_postal_address as SendRequest["sender"]["postalAddress"],
    },
    recipient: {
      firstName: row.first_name,
      lastName: row.last_name,
      company: row.company_name,
      title: row.title,
      email: row.email,
      phoneE164: row.phone_e164,
      linkedinUrl: row.linkedin_url,
      postalAddress: row.postal_address as SendRequest["recipient"]["postalAddress"],
    },
    subject: row.subject,
    body,
    headers,
    threadRef: row.thread_ref,
    linkedinAction: (row.action ?? undefined) as SendRequest["linkedinAction"],
    voice: row.channel === "voice"
      ? {
        firstMessage: body.split(/\n/)[0] ?? body,
        systemPrompt: body,
        voiceId: voiceId ?? "",
      }
      : undefined,
    statusCallbackUrl: row.provider ? statusCallbackUrl(row.provider) : null,
  };
}

async function loadSends(sql: Sql, ids: string[]): Promise<SendRow[]> {
  if (ids.length === 0) return [];
  return await sql<SendRow[]>`
    select s.id, s.channel, s.attempt, s.dispatch_attempts, s.client_id, s.lead_id, s.assignment_id, s.action,
           r.subject, r.body,
           se.id as sender_id, se.provider, se.address as sender_address, se.display_name as sender_display_name,
           se.provider_account_id, se.postal_address as sender_postal_address,
           l.first_name, l.last_name, l.company_name, l.title, l.email, l.phone_e164, l.linkedin_url, l.postal_address,
           (select t.thread_ref from public.sends t
            where t.assignment_id = s.assignment_id and t.channel = s.channel and t.thread_ref is not null
            order by t.created_at limit 1) as thread_ref,
           c.name as client_name, cp.sender_name
    from public.sends s
    join public.step_runs r on r.id = s.step_run_id
    left join public.senders se on se.id = s.sender_id
    join public.lead_pool l on l.id = s.lead_id
    join public.clients c on c.id = s.client_id
    join public.campaigns cp on cp.id = s.campaign_id
    where s.id = any(${ids}::uuid[])`;
}

type Outcome =
  | { kind: "sent"; result: SendResult; reconciled: boolean }
  | { kind: "retry"; error: string; afterMs: number }
  | { kind: "failed"; error: string }
  | { kind: "unknown"; error: string };

async function dispatchOne(row: SendRow, adapters: AdapterRegistry, maxAttempts: number): Promise<Outcome> {
  const adapter = row.provider ? adapters[row.provider] : undefined;
  if (!adapter) return { kind: "failed", error: `no adapter for provider ${row.provider ?? "(no sender)"}` };
  let req: SendRequest;
  try {
    req = await buildRequest(row);
  } catch (err) {
    return { kind: "failed", error: err instanceof Error ? err.message : String(err) };
  }
  if (row.reconcile) {
    // We may have sent this before a crash: ask the provider before anything else.
    const found = adapter.findByReference ? await adapter.findByReference(row.id, req).catch(() => undefined) : undefined;
    if (found) return { kind: "sent", result: found, reconciled: true };
    if (found === undefined) {
      return { kind: "unknown", error: "lease expired during the provider call and the provider cannot tell whether it was sent" };
    }
  }
  try {
    return { kind: "sent", result: await adapter.send(req), reconciled: false };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof ProviderError && err.retryable && row.dispatch_attempts < maxAttempts) {
      const afterMs = err.retryAfterMs ?? Math.min(3_600_000, 30_000 * 2 ** (row.dispatch_attempts - 1));
      return { kind: "retry", error: message, afterMs };
    }
    return { kind: "failed", error: message };
  }
}

/** Dispatches what is due in one batch. */
export async function dispatchBatch(
  sql: Sql,
  batchId: string,
  adapters: AdapterRegistry,
  opts: DispatchOptions = {},
): Promise<DispatchResult> {
  const now = opts.now ?? new Date();
  const maxAttempts = opts.maxAttempts ?? 5;
  const claimed = await sql.begin((tx) =>
    tx`select send_id, reconcile from private.claim_dispatch_batch(${batchId}, ${opts.limit ?? 100}, ${opts.leaseSeconds ?? 120}, ${now})`
  ) as unknown as Array<{ send_id: string; reconcile: boolean }>;
  const reconcile = new Map(claimed.map((c) => [c.send_id, c.reconcile]));
  const rows = (await loadSends(sql, claimed.map((c) => c.send_id))).map((r) => ({ ...r, reconcile: reconcile.get(r.id) ?? false }));
  const linkedin = rows.filter((r) => r.channel === "linkedin");
  const others = rows.filter((r) => r.channel !== "linkedin");
  const results = [
    ...await mapLimit(others, opts.concurrency ?? 8, async (r) => ({ row: r, outcome: await dispatchOne(r, adapters, maxAttempts) })),
    // one LinkedIn account acts like one person: one action at a time
    ...await mapLimit(linkedin, 1, async (r) => ({ row: r, outcome: await dispatchOne(r, adapters, maxAttempts) })),
  ];

  const summary: DispatchResult = { claimed: claimed.length, sent: 0, failed: 0, retrying: 0, reconciled: 0, unknown: 0, nextInSeconds: null };
  await sql.begin(async (tx) => {
    // every outcome in one set-based UPDATE (a lease still held: a send another delivery
    // reconciled meanwhile is left alone)
    const rows = results.map(({ row, outcome }) => {
      if (outcome.kind === "sent") {
        summary.sent += 1;
        if (outcome.reconciled) summary.reconciled += 1;
        const r = outcome.result;
        return { id: row.id, status: "sent", provider: r.provider, pmid: r.providerMessageId, thread: r.threadRef ?? null, cost: r.costCents, error: null, retry: 0 };
      }
      if (outcome.kind === "retry") summary.retrying += 1;
      else if (outcome.kind === "unknown") summary.unknown += 1;
      else summary.failed += 1;
      const status = outcome.kind === "retry" ? "pending" : outcome.kind;
      const retry = outcome.kind === "retry" ? Math.ceil(outcome.afterMs / 1000) : 0;
      return { id: row.id, status, provider: null, pmid: null, thread: null, cost: 0, error: outcome.error, retry };
    });
    if (rows.length > 0) {
      await tx`
        update public.sends s set
          status = o.status,
          provider = coalesce(o.provider, s.provider),
          provider_message_id = coalesce(o.pmid, s.provider_message_id),
          thread_ref = coalesce(o.thread, s.thread_ref),
          cost_cents = case when o.status = 'sent' then o.cost else s.cost_cents end,
          dispatched_at = case when o.status = 'sent' then now() else s.dispatched_at end,
          next_attempt_at = case when o.status = 'pending' then now() + make_interval(secs => o.retry) else s.next_attempt_at end,
          lease_until = null,
          error = o.error
        from (select unnest(${rows.map((r) => r.id)}::uuid[]) as id, unnest(${rows.map((r) => r.status)}::text[]) as status,
                     unnest(${rows.map((r) => r.provider)}::text[]) as provider, unnest(${rows.map((r) => r.pmid)}::text[]) as pmid,
                     unnest(${rows.map((r) => r.thread)}::text[]) as thread, unnest(${rows.map((r) => r.cost)}::numeric[]) as cost,
                     unnest(${rows.map((r) => r.error)}::text[]) as error, unnest(${rows.map((r) => r.retry)}::int[]) as retry) o
        where s.id = o.id and s.status = 'dispatching'`;
    }
    const sentIds = results.filter((r) => r.outcome.kind === "sent").map((r) => r.row.id);
    if (sentIds.length > 0) {
      // the person is in sequence once their first message has actually gone out
      await tx`select set_config('app.reason', 'first message sent', true)`;
      await tx`
        update public.lead_assignments a set status = 'in_sequence'
        where a.status in ('assigned', 'queued')
          and a.id in (select s.assignment_id from public.sends s where s.id = any(${sentIds}::uuid[]))`;
      await tx`
        insert into public.client_spend as sp (client_id, month, provider_cents)
        select s.client_id, date_trunc('month', now())::date, sum(s.cost_cents)
        from public.sends s where s.id = any(${sentIds}::uuid[])
        group by s.client_id
        on conflict (client_id, month) do update set provider_cents = sp.provider_cents + excluded.provider_cents`;
    }
    const [next] = await tx`
      select extract(epoch from (min(coalesce(next_attempt_at, now())) - now()))::float as secs
      from public.sends where batch_id = ${batchId} and status = 'pending'`;
    summary.nextInSeconds = next.secs === null ? null : Math.max(0, Math.ceil(Number(next.secs)));
    if (summary.nextInSeconds === null) {
      await tx`
        update public.dispatch_batches set finished_at = now()
        where id = ${batchId} and finished_at is null
          and not exists (select 1 from public.sends where batch_id = ${batchId} and status in ('pending', 'dispatching'))`;
    }
  });
  return summary;
}
