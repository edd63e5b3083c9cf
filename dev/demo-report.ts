// The report of `npm run demo` (dev/demo.ts): read back from the database after the run, scoped to
// the demo's client and pool leads, so it says what the system recorded rather than what the demo
// meant to do. collectReport gives the one JSON object of --json; renderReport the text version.
//
// Definitions (product.md §10):
//   contacted  a lead with at least one message the provider took (send sent or delivered)
//   replied    a contacted lead who answered in person: a reply of any class but auto_reply,
//              out_of_office and bounce (automatic messages), or a STOP text (which unsubscribes at
//              once and leaves no reply to classify)
//   positive   a replied lead whose reply is interested, meeting_request or question
//   meeting    a positive lead with a meeting booked;   won  a meeting lead whose assignment is won
// Each stage is a subset of the one before, so the funnel never widens.
// Cost: provider calls (enrichment, research, DNCR, classification), the messages' provider cost
// and the message writing (step_runs.content_cost_cents), in cents.
import type { Sql } from "../shared/db/client.ts";

export const CHANNEL_NAMES = ["email", "sms", "voice", "linkedin", "mail"] as const;
export const REPLY_CLASS_NAMES = ["interested", "meeting_request", "question", "not_now", "out_of_office", "referral",
  "wrong_person", "not_interested", "unsubscribe", "complaint", "auto_reply", "bounce"] as const;
export const TIER_NAMES = ["hot", "warm", "cool", "cold", "dead"] as const;
const AUTOMATIC = ["auto_reply", "out_of_office", "bounce"];
const POSITIVE = ["interested", "meeting_request", "question"];

export interface DemoScope {
  clientId: string;
  campaignId: string;
  leadIds: string[];
  /** When the run started: provider calls and webhook events from then on are the run's. */
  since: Date;
  /** Simulated day 0 of the sequence. */
  base: Date;
  days: number;
  /** The replies and bookings the demo posted, with the class each was written to be. */
  posted: Array<{ provider: string; eventId: string; leadId: string; channel: string; intended: string }>;
  seed: string;
  database: string;
}

export interface ChannelRow {
  sends: number;
  statuses: Record<string, number>;
  /** People a message of the channel was handed to (the provider took it, whatever happened next). */
  leads_messaged: number;
  replies: number;
  leads_replied: number;
  reply_rate: number | null;
  positive: number;
  cost_cents: number;
}

export interface TierRow {
  placed: number;
  contacted: number;
  sends: number;
  replied: number;
  reply_rate: number | null;
  positive: number;
  positive_rate: number | null;
  meetings: number;
  won: number;
}

export interface DemoReport {
  run: {
    leads: number;
    seed: string;
    database: string;
    simulated_start: string;
    simulated_days: number;
    duration_seconds: number | null;
  };
  funnel: Array<{ stage: "pool" | "contacted" | "replied" | "positive" | "meeting" | "won"; count: number; rate_from_previous: number | null }>;
  pipeline: {
    statuses: Record<string, number>;
    pool_tiers: Record<string, number>;
    placed: number;
    placed_tiers: Record<string, number>;
    not_placed: Record<string, number>;
    enrichment_calls: Record<string, number>;
  };
  channels: Record<(typeof CHANNEL_NAMES)[number], ChannelRow>;
  tiers: Record<(typeof TIER_NAMES)[number], TierRow>;
  replies: {
    total: number;
    by_class: Record<(typeof REPLY_CLASS_NAMES)[number], number>;
    by_channel: Record<(typeof CHANNEL_NAMES)[number], number>;
    by_source: Record<string, number>;
    sms_stop_opt_outs: number;
    posted: number;
    classified_as_written: number;
    mismatches: Array<{ intended: string; classified: string | null; channel: string }>;
  };
  meetings: { booked: number; by_status: Record<string, number>; won: number; lost: number };
  assignments: Record<string, number>;
  costs: {
    provider_calls_cents: number;
    messages_cents: number;
    content_cents: number;
    total_cents: number;
    per_lead_contacted_cents: number | null;
    per_meeting_cents: number | null;
    by_provider: Record<string, number>;
  };
  gate_refusals: { total: number; by_reason: Record<string, number>; by_outcome: Record<string, number> };
  content: { by_source: Record<string, number> };
  inbound: { webhook_events: Record<string, number>; applied: number; not_applied: number };
  problems: string[];
}

const rate = (n: number, of: number) => (of > 0 ? Math.round((n / of) * 10_000) / 10_000 : null);
const num = (v: unknown) => Number(v ?? 0);
const cents = (v: unknown) => Math.round(num(v) * 10_000) / 10_000;
const zeros = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
const byKey = (rows: readonly Record<string, unknown>[], key: string, value = "n") =>
  Object.fromEntries(rows.map((r) => [String(r[key] ?? "none"), num(r[value])])) as Record<string, number>;

export async function collectReport(sql: Sql, scope: DemoScope): Promise<DemoReport> {
  const client = scope.clientId;
  const leads = scope.leadIds;
  const stopKeys = scope.posted.filter((p) => p.intended === "stop").map((p) => `${p.provider}:${p.eventId}`);
  // the people messaged, and those who texted STOP (the funnel and the tier table both count them)
  const contactedAndStopped = () => sql`contacted as (
      select distinct lead_id from public.sends where client_id = ${client} and status in ('sent', 'delivered')
    ), stopped as (
      select distinct l.id as lead_id from public.webhook_events e
      join public.lead_pool l on l.phone_e164 = e.payload->>'From'
      where e.provider || ':' || e.event_id = any(${stopKeys}::text[]) and e.processed_at is not null
    )`;

  // the people at each stage, each a subset of the one before
  const [f] = await sql`
    with ${contactedAndStopped()}, replied as (
      select lead_id from contacted
      where lead_id in (select r.lead_id from public.replies r
                        where r.client_id = ${client} and r.class is not null and not (r.class = any(${AUTOMATIC}::text[])))
         or lead_id in (select lead_id from stopped)
    ), positive as (
      select lead_id from replied
      where lead_id in (select r.lead_id from public.replies r where r.client_id = ${client} and r.class = any(${POSITIVE}::text[]))
    ), meeting as (
      select lead_id from positive where lead_id in (select m.lead_id from public.meetings m where m.client_id = ${client})
    ), won as (
      select lead_id from meeting
      where lead_id in (select a.lead_id from public.lead_assignments a where a.client_id = ${client} and a.status = 'won')
    )
    select (select count(*) from contacted)::int as contacted, (select count(*) from replied)::int as replied,
           (select count(*) from positive)::int as positive, (select count(*) from meeting)::int as meeting,
           (select count(*) from won)::int as won, (select count(*) from stopped)::int as stopped`;
  const stages: Array<[DemoReport["funnel"][number]["stage"], number]> = [
    ["pool", leads.length], ["contacted", f.contacted], ["replied", f.replied], ["positive", f.positive], ["meeting", f.meeting], ["won", f.won],
  ];
  const funnel = stages.map(([stage, count], i) => ({ stage, count, rate_from_previous: i === 0 ? null : rate(count, stages[i - 1][1]) }));

  // the pipeline
  const statuses = await sql`select status, count(*)::int as n from public.lead_pool where id = any(${leads}::uuid[]) group by status`;
  const poolTiers = await sql`
    select als_tier as tier, count(*)::int as n from public.lead_pool
    where id = any(${leads}::uuid[]) and status = 'scored' group by als_tier`;
  const placedTiers = await sql`
    select als_tier as tier, count(*)::int as n from public.lead_assignments where client_id = ${client} group by als_tier`;
  const notPlaced = await sql`
    select la.reason, count(*)::int as n from public.lead_allocation la
    where la.lead_id = any(${leads}::uuid[])
      and not exists (select 1 from public.lead_assignments a where a.lead_id = la.lead_id and a.ended_at is null)
    group by la.reason`;
  const enrichment = await sql`
    select provider, count(*)::int as n from public.provider_calls
    where created_at >= ${scope.since} and provider in ('apollo', 'apify', 'serper', 'dataforseo') and lead_id = any(${leads}::uuid[])
    group by provider`;

  // channels
  const sendRows = await sql`
    select channel, status, count(*)::int as n, count(distinct lead_id)::int as leads, coalesce(sum(cost_cents), 0) as cost
    from public.sends where client_id = ${client} group by channel, status`;
  // per channel, the people a message was handed to (the provider took it: sent, delivered, or
  // later failed or bounced); a call that was not answered still counts
  const contactedBy = await sql`
    select channel, count(distinct lead_id)::int as n from public.sends
    where client_id = ${client} and status in ('sent', 'delivered', 'failed', 'bounced') and provider_message_id is not null
    group by channel`;
  const replyRows = await sql`
    select r.channel, count(*)::int as n,
           count(distinct r.lead_id) filter (where r.class is not null and not (r.class = any(${AUTOMATIC}::text[])))::int as human,
           count(distinct r.lead_id) filter (where r.class = any(${POSITIVE}::text[]))::int as positive
    from public.replies r where r.client_id = ${client} group by r.channel`;
  const stopsByChannel = f.stopped as number;
  const channels = {} as DemoReport["channels"];
  for (const ch of CHANNEL_NAMES) {
    const rows = sendRows.filter((r) => r.channel === ch);
    const rep = replyRows.find((r) => r.channel === ch);
    const contacted = num(contactedBy.find((r) => r.channel === ch)?.n);
    const humans = num(rep?.human) + (ch === "sms" ? stopsByChannel : 0);
    channels[ch] = {
      sends: rows.reduce((s, r) => s + num(r.n), 0),
      statuses: byKey(rows, "status"),
      leads_messaged: contacted,
      replies: num(rep?.n) + (ch === "sms" ? stopsByChannel : 0),
      leads_replied: humans,
      reply_rate: rate(humans, contacted),
      positive: num(rep?.positive),
      cost_cents: cents(rows.reduce((s, r) => s + num(r.cost), 0)),
    };
  }

  // tiers (the assignment's tier, scored against the client's ICP)
  const tierRows = await sql`
    with ${contactedAndStopped()}
    select a.als_tier as tier, count(*)::int as placed,
           count(*) filter (where a.lead_id in (select lead_id from contacted))::int as contacted,
           coalesce(sum((select count(*) from public.sends s where s.assignment_id = a.id)), 0)::int as sends,
           count(*) filter (where a.lead_id in (select lead_id from contacted) and (
             exists (select 1 from public.replies r where r.lead_id = a.lead_id and r.client_id = a.client_id
                     and r.class is not null and not (r.class = any(${AUTOMATIC}::text[])))
             or a.lead_id in (select lead_id from stopped)))::int as replied,
           count(*) filter (where a.lead_id in (select lead_id from contacted) and exists (
             select 1 from public.replies r where r.lead_id = a.lead_id and r.client_id = a.client_id and r.class = any(${POSITIVE}::text[])))::int as positive,
           count(*) filter (where exists (select 1 from public.meetings m where m.lead_id = a.lead_id and m.client_id = a.client_id)
             and exists (select 1 from public.replies r where r.lead_id = a.lead_id and r.client_id = a.client_id and r.class = any(${POSITIVE}::text[])))::int as meetings,
           count(*) filter (where a.status = 'won')::int as won
    from public.lead_assignments a where a.client_id = ${client}
    group by a.als_tier`;
  const tiers = {} as DemoReport["tiers"];
  for (const t of TIER_NAMES) {
    const r = tierRows.find((x) => x.tier === t);
    const contacted = num(r?.contacted);
    tiers[t] = {
      placed: num(r?.placed), contacted, sends: num(r?.sends), replied: num(r?.replied), reply_rate: rate(num(r?.replied), contacted),
      positive: num(r?.positive), positive_rate: rate(num(r?.positive), contacted), meetings: num(r?.meetings), won: num(r?.won),
    };
  }

  // replies
  const classes = await sql`select class, count(*)::int as n from public.replies where client_id = ${client} group by class`;
  const sources = await sql`select class_source, count(*)::int as n from public.replies where client_id = ${client} group by class_source`;
  const byClass = { ...zeros(REPLY_CLASS_NAMES), ...byKey(classes.filter((c) => c.class), "class") } as DemoReport["replies"]["by_class"];
  const byChannel = { ...zeros(CHANNEL_NAMES), ...byKey(replyRows, "channel") } as DemoReport["replies"]["by_channel"];
  const keys = scope.posted.filter((p) => p.provider !== "calcom").map((p) => `${p.provider}:${p.eventId}`);
  const classified = await sql`
    select e.provider || ':' || e.event_id as key, r.class
    from public.webhook_events e left join public.replies r on r.webhook_event_id = e.id
    where e.provider || ':' || e.event_id = any(${keys}::text[])`;
  const classOf = new Map(classified.map((c) => [c.key as string, (c.class as string | null) ?? null]));
  const mismatches: DemoReport["replies"]["mismatches"] = [];
  let asWritten = 0;
  for (const p of scope.posted.filter((x) => x.provider !== "calcom")) {
    const got = classOf.get(`${p.provider}:${p.eventId}`) ?? null;
    // a STOP text leaves no reply to classify: it unsubscribes the number at once
    if ((p.intended === "stop" && got === null) || got === p.intended) asWritten++;
    else mismatches.push({ intended: p.intended, classified: got, channel: p.channel });
  }

  // meetings and assignments
  const meetingRows = await sql`select status, count(*)::int as n from public.meetings where client_id = ${client} group by status`;
  const assignmentRows = await sql`select status, count(*)::int as n from public.lead_assignments where client_id = ${client} group by status`;
  const assignments = byKey(assignmentRows, "status");

  // costs
  const providerCosts = await sql`
    select provider, coalesce(sum(cost_cents), 0) as cost from public.provider_calls
    where created_at >= ${scope.since} and (client_id is null or client_id = ${client})
    group by provider`;
  const [money] = await sql`
    select (select coalesce(sum(cost_cents), 0) from public.sends where client_id = ${client}) as messages,
           (select coalesce(sum(content_cost_cents), 0) from public.step_runs where client_id = ${client}) as content`;
  const providerCents = providerCosts.reduce((s, r) => s + num(r.cost), 0);
  const total = providerCents + num(money.messages) + num(money.content);
  const meetingsBooked = meetingRows.reduce((s, r) => s + num(r.n), 0);

  // gate refusals, content, inbound
  const refusals = await sql`select reason, outcome, count(*)::int as n from public.gate_refusals where client_id = ${client} group by reason, outcome`;
  const byReason: Record<string, number> = {};
  const byOutcome: Record<string, number> = {};
  for (const r of refusals) {
    byReason[r.reason as string] = (byReason[r.reason as string] ?? 0) + num(r.n);
    byOutcome[r.outcome as string] = (byOutcome[r.outcome as string] ?? 0) + num(r.n);
  }
  const content = await sql`
    select coalesce(content_source, 'not written') as source, count(*)::int as n from public.step_runs where client_id = ${client} group by 1`;
  const events = await sql`
    select provider, count(*)::int as n, count(*) filter (where processed_at is null)::int as open
    from public.webhook_events where received_at >= ${scope.since} group by provider`;

  const report: DemoReport = {
    run: {
      leads: leads.length, seed: scope.seed, database: scope.database, simulated_start: scope.base.toISOString(),
      simulated_days: scope.days, duration_seconds: null,
    },
    funnel,
    pipeline: {
      statuses: byKey(statuses, "status"),
      pool_tiers: { ...zeros(TIER_NAMES), ...byKey(poolTiers, "tier") },
      placed: num(placedTiers.reduce((s, r) => s + num(r.n), 0)),
      placed_tiers: { ...zeros(TIER_NAMES), ...byKey(placedTiers, "tier") },
      not_placed: byKey(notPlaced, "reason"),
      enrichment_calls: byKey(enrichment, "provider"),
    },
    channels,
    tiers,
    replies: {
      total: classes.reduce((s, r) => s + num(r.n), 0),
      by_class: byClass,
      by_channel: byChannel,
      by_source: byKey(sources, "class_source"),
      sms_stop_opt_outs: f.stopped,
      posted: scope.posted.filter((p) => p.provider !== "calcom").length,
      classified_as_written: asWritten,
      mismatches,
    },
    meetings: { booked: meetingsBooked, by_status: byKey(meetingRows, "status"), won: num(assignments.won), lost: num(assignments.lost) },
    assignments,
    costs: {
      provider_calls_cents: cents(providerCents),
      messages_cents: cents(money.messages),
      content_cents: cents(money.content),
      total_cents: cents(total),
      per_lead_contacted_cents: f.contacted > 0 ? cents(total / f.contacted) : null,
      per_meeting_cents: meetingsBooked > 0 ? cents(total / meetingsBooked) : null,
      by_provider: Object.fromEntries(providerCosts.map((r) => [r.provider as string, cents(r.cost)])),
    },
    gate_refusals: { total: Object.values(byReason).reduce((a, b) => a + b, 0), by_reason: byReason, by_outcome: byOutcome },
    content: { by_source: byKey(content, "source") },
    inbound: {
      webhook_events: byKey(events, "provider"),
      applied: events.reduce((s, r) => s + num(r.n) - num(r.open), 0),
      not_applied: events.reduce((s, r) => s + num(r.open), 0),
    },
    problems: [],
  };
  for (const ch of CHANNEL_NAMES) if (channels[ch].leads_messaged === 0) report.problems.push(`no ${ch} message went out`);
  for (const c of REPLY_CLASS_NAMES) if (byClass[c] === 0) report.problems.push(`no reply was classified ${c}`);
  if (report.inbound.not_applied > 0) report.problems.push(`${report.inbound.not_applied} webhook events were not applied`);
  for (let i = 1; i < funnel.length; i++) {
    if (funnel[i].count > funnel[i - 1].count) report.problems.push(`the funnel widens at ${funnel[i].stage}`);
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

const int = (n: number) => n.toLocaleString("en-AU");
const pct = (r: number | null) => (r === null ? "–" : `${(r * 100).toFixed(1)}%`);
/** Cents as dollars; under a dollar in cents, to the hundredth (sandbox prices are small). */
const money = (c: number | null) =>
  c === null ? "–" : Math.abs(c) < 100 ? `${c.toFixed(2)}¢` : `$${(c / 100).toLocaleString("en-AU", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
const list = (o: Record<string, number>) =>
  Object.entries(o).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${int(n)}`).join(", ") || "none";

function table(head: string[], rows: Array<Array<string | number>>, indent = "  "): string {
  const cells = [head, ...rows.map((r) => r.map((c) => (typeof c === "number" ? int(c) : c)))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)));
  return cells.map((r) => indent + r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join("  ")).join("\n");
}

export function renderReport(r: DemoReport): string {
  const start = new Intl.DateTimeFormat("en-AU", {
    timeZone: "Australia/Sydney", weekday: "short", day: "2-digit", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hour12: false,
  }).format(new Date(r.run.simulated_start));
  const out: string[] = [];
  out.push(`Agency OS demo: ${int(r.run.leads)} pool leads (seed "${r.run.seed}") on ${r.run.database}`);
  out.push(`Sequence simulated from ${start} (Sydney) over ${r.run.simulated_days} days; run took ${r.run.duration_seconds ?? "?"} s`);
  out.push("");
  out.push("Funnel");
  out.push(table(["stage", "leads", "of previous"], r.funnel.map((f) => [f.stage, f.count, pct(f.rate_from_previous)])));
  out.push("");
  out.push(`Pipeline: ${list(r.pipeline.statuses)} · pool tiers ${list(r.pipeline.pool_tiers)}`);
  out.push(`  placed ${int(r.pipeline.placed)} (${list(r.pipeline.placed_tiers)}) · not placed: ${list(r.pipeline.not_placed)}`);
  out.push(`  enrichment calls: ${list(r.pipeline.enrichment_calls)}`);
  out.push("");
  out.push("Channels");
  out.push(table(
    ["channel", "sends", "people", "delivered", "failed", "bounced", "replied", "reply rate", "positive", "cost"],
    (Object.entries(r.channels) as Array<[string, (typeof r.channels)["email"]]>).map(([ch, c]) => [
      ch, c.sends, c.leads_messaged, c.statuses.delivered ?? 0, c.statuses.failed ?? 0, c.statuses.bounced ?? 0,
      c.leads_replied, pct(c.reply_rate), c.positive, money(c.cost_cents),
    ]),
  ));
  out.push("  people: a message was handed to the provider; voice: delivered = answered (its transcript is the reply),");
  out.push("  failed = no answer, busy or voicemail; sms replied includes STOP texts; email delivery is not reported by Salesforge");
  out.push("");
  out.push("Tiers (scored against the client's ICP)");
  out.push(table(
    ["tier", "placed", "contacted", "sends", "replied", "reply rate", "positive", "positive rate", "meetings", "won"],
    (Object.entries(r.tiers) as Array<[string, (typeof r.tiers)["hot"]]>).map(([t, x]) => [
      t, x.placed, x.contacted, x.sends, x.replied, pct(x.reply_rate), x.positive, pct(x.positive_rate), x.meetings, x.won,
    ]),
  ));
  out.push("");
  out.push(`Replies: ${int(r.replies.total)} (${list(r.replies.by_channel)}) + ${int(r.replies.sms_stop_opt_outs)} STOP texts; classified by ${list(r.replies.by_source)}`);
  out.push(table(["class", "replies"], Object.entries(r.replies.by_class).map(([c, n]) => [c, n])));
  out.push(`  ${int(r.replies.classified_as_written)} of ${int(r.replies.posted)} posted replies classified as written${
    r.replies.mismatches.length ? `; others: ${r.replies.mismatches.slice(0, 5).map((m) => `${m.intended} → ${m.classified ?? "none"} (${m.channel})`).join(", ")}` : ""}`);
  out.push("");
  out.push(`Meetings: ${int(r.meetings.booked)} booked via Cal.com (${list(r.meetings.by_status)}); won ${int(r.meetings.won)}, lost ${int(r.meetings.lost)}`);
  out.push(`Assignments: ${list(r.assignments)}`);
  out.push("");
  out.push("Cost");
  out.push(table(["", "amount"], [
    ["provider calls", money(r.costs.provider_calls_cents)],
    ["messages", money(r.costs.messages_cents)],
    ["message writing", money(r.costs.content_cents)],
    ["total", money(r.costs.total_cents)],
    ["per lead contacted", money(r.costs.per_lead_contacted_cents)],
    ["per meeting", money(r.costs.per_meeting_cents)],
  ]));
  out.push(`  provider calls by provider: ${Object.entries(r.costs.by_provider).sort((a, b) => b[1] - a[1]).map(([k, c]) => `${k} ${money(c)}`).join(", ") || "none"}`);
  out.push("");
  out.push(`Gate refusals: ${int(r.gate_refusals.total)} (${list(r.gate_refusals.by_outcome)})`);
  out.push(table(["reason", "refusals"], Object.entries(r.gate_refusals.by_reason).sort((a, b) => b[1] - a[1]).map(([k, n]) => [k, n])));
  out.push("");
  const source: Record<string, string> = { claude: "Claude", template: "template", none: "none needed (the tier skips the channel)", "not written": "not written (the sequence stopped first)" };
  out.push(`Step messages: ${Object.entries(r.content.by_source).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${source[k] ?? k} ${int(n)}`).join(", ")}`);
  out.push(`Inbound webhooks: ${int(r.inbound.applied)} applied (${list(r.inbound.webhook_events)})${r.inbound.not_applied ? `, ${int(r.inbound.not_applied)} not applied` : ""}`);
  if (r.problems.length) {
    out.push("");
    out.push("Problems");
    for (const p of r.problems) out.push(`  ${p}`);
  }
  return `${out.join("\n")}\n`;
}
