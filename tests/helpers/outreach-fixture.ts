// An approved campaign with the default five-channel sequence, a sender per channel, and leads
// with every address, consent and a clean DNCR wash — built straight in the database for the
// outreach tests. Times are passed explicitly so the gate's windows are deterministic.
import { db } from "../../shared/db/client.ts";
import { unique } from "./stack.ts";

export interface OutreachFixture {
  clientId: string;
  campaignId: string;
  leadIds: string[];
  senderIds: Record<string, string>;
}

export interface FixtureOptions {
  leads?: number;
  tier?: "hot" | "warm" | "cool" | "cold";
  permissionMode?: "autopilot" | "co_pilot" | "manual";
  /** Steps (default: product.md §5's default sequence). */
  steps?: FixtureStep[];
  /** Phone numbers: each lead gets +614<8 digits>; registered ones get a 'registered' wash. */
  registered?: (i: number) => boolean;
  timezone?: string;
  country?: string;
  state?: string | null;
  dailyCap?: number;
  holidays?: boolean;
}

export interface FixtureStep { day_offset: number; channel: string; linkedin_action?: string; condition?: string }

export const DEFAULT_STEPS: FixtureStep[] = [
  { day_offset: 0, channel: "email" },
  { day_offset: 3, channel: "voice" },
  { day_offset: 5, channel: "linkedin", linkedin_action: "invitation" },
  { day_offset: 8, channel: "email" },
  { day_offset: 12, channel: "sms" },
];

let phoneSeq = Math.floor(Math.random() * 9_000_000);

export async function outreachFixture(opts: FixtureOptions = {}): Promise<OutreachFixture> {
  const sql = db();
  const tag = unique("out");
  const [client] = await sql`
    insert into public.clients (slug, name, status, permission_mode, monthly_lead_quota, timezone)
    values (${tag.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 60)}, ${"Client " + tag}, 'active',
            ${opts.permissionMode ?? "autopilot"}, 100000, 'Australia/Sydney')
    returning id`;
  const [campaign] = await sql`
    insert into public.campaigns (client_id, name, offer, sender_name) values (${client.id}, ${"Campaign " + tag},
      'outbound lead generation', 'Sam Sender') returning id`;
  const steps = opts.steps ?? DEFAULT_STEPS;
  for (const [i, s] of steps.entries()) {
    await sql`
      insert into public.campaign_steps (campaign_id, client_id, position, day_offset, channel, linkedin_action, condition)
      values (${campaign.id}, ${client.id}, ${i + 1}, ${s.day_offset}, ${s.channel}, ${s.linkedin_action ?? null},
              ${s.condition ?? "no_reply"})`;
  }
  await sql`update public.campaigns set status = 'active', approved_at = now() where id = ${campaign.id}`;
  const senderIds: Record<string, string> = {};
  const senders: Array<[string, string, string, string | null, Record<string, string> | null]> = [
    ["email", "salesforge", `sam-${tag}@sender.example`, "mb_1", null],
    ["sms", "twilio", `+6141${String(phoneSeq++).padStart(7, "0")}`, null, null],
    ["voice", "vapi", `+6128${String(phoneSeq++).padStart(7, "0")}`, "pn_sandbox", null],
    ["linkedin", "unipile", `acc-${tag}`, `acc-${tag}`, null],
    ["mail", "postgrid", "Head office", null, { line1: "1 George St", city: "Sydney", state: "NSW", postcode: "2000", country: "AU" }],
  ];
  for (const [channel, provider, address, account, postal] of senders) {
    const [s] = await sql`
      insert into public.senders (client_id, channel, provider, address, provider_account_id, daily_cap, postal_address)
      values (${client.id}, ${channel}, ${provider}, ${address}, ${account}, ${opts.dailyCap ?? 1000},
              ${postal ? sql.json(postal) : null})
      returning id`;
    senderIds[channel] = s.id;
    await sql`insert into public.campaign_senders (campaign_id, sender_id, client_id) values (${campaign.id}, ${s.id}, ${client.id})`;
  }
  const leadIds: string[] = [];
  for (let i = 0; i < (opts.leads ?? 1); i++) {
    const phone = `+614${String(phoneSeq++).padStart(8, "0")}`;
    const [lead] = await sql`
      insert into public.lead_pool (email, email_status, first_name, last_name, title, company_name, company_domain,
                                    phone, phone_e164, linkedin_url, linkedin_key, country, state, timezone, postal_address)
      values (${`${tag}-${i}@prospect.example`}, 'verified', 'Pat', ${"Lead" + i}, 'Head of Growth', 'Prospect Co',
              'prospect.example', ${phone}, ${phone}, ${`https://www.linkedin.com/in/${tag}-${i}`}, ${`${tag}-${i}`},
              ${opts.country ?? "AU"}, ${opts.state === undefined ? "NSW" : opts.state}, ${opts.timezone ?? "Australia/Sydney"},
              ${sql.json({ line1: "2 Pitt St", city: "Sydney", state: "NSW", postcode: "2000", country: "AU" })})
      returning id`;
    leadIds.push(lead.id);
    for (const channel of ["email", "sms", "linkedin"]) {
      await sql`
        insert into public.lead_consents (lead_id, channel, basis, evidence_url, evidence_captured_at)
        values (${lead.id}, ${channel}, 'inferred_publication', 'https://prospect.example/team', now())`;
    }
    await sql`insert into public.lead_consents (lead_id, channel, basis, evidence) values (${lead.id}, 'voice', 'express', '{"form":"demo request"}')`;
    await sql`
      insert into public.dncr_washes (phone_e164, result, washed_at, client_reference_id)
      values (${phone}, ${opts.registered?.(i) ? "registered" : "not_registered"}, now(), 'fixture')
      on conflict (phone_e164) do update set result = excluded.result, washed_at = excluded.washed_at`;
    await sql`
      insert into public.lead_assignments (lead_id, client_id, campaign_id, als_tier, als_score)
      values (${lead.id}, ${client.id}, ${campaign.id}, ${opts.tier ?? "hot"}, 90)`;
  }
  if (opts.holidays !== false) {
    const { ensureHolidayCalendars } = await import("../../shared/engines/timing-facts.ts");
    await ensureHolidayCalendars(sql, new Date("2026-11-30T00:00:00Z"));
    await ensureHolidayCalendars(sql, new Date("2027-06-30T00:00:00Z"));
  }
  return { clientId: client.id, campaignId: campaign.id, leadIds, senderIds };
}

/** Every channel's adapters, as the five dispatch functions build them. */
export async function allAdapters() {
  const [{ emailAdapters }, { smsAdapters }, { voiceAdapters }, { linkedinAdapters }, { mailAdapters }] = await Promise.all([
    import("../../shared/channels/email.ts"), import("../../shared/channels/sms.ts"), import("../../shared/channels/voice.ts"),
    import("../../shared/channels/linkedin.ts"), import("../../shared/channels/mail.ts"),
  ]);
  return { ...emailAdapters(), ...smsAdapters(), ...voiceAdapters(), ...linkedinAdapters(), ...mailAdapters() };
}

/**
 * Tests that drive the gate on a simulated clock record dispatch batches due at those (future)
 * times. They dispatch them themselves; left in the outbox, a later publish would park them in the
 * QStash emulator until that date and keep it from ever being idle for other tests.
 */
export async function discardSimulatedDispatches(): Promise<void> {
  await db()`update public.outbox set published_at = now(), destination = 'discarded-by-test'
             where published_at is null and topic like 'flow.dispatch.%'`;
}
