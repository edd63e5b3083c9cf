// Request and response schemas of the campaigns function: campaigns, their sequences and A/B
// variants, sender pools, the capacity planner and the approval queue.
import { z } from "@hono/zod-openapi";
import { CHANNELS } from "../channels/types.ts";

export const Channel = z.enum(CHANNELS).openapi({ example: "email" });
export const CampaignStatus = z.enum(["draft", "pending_approval", "active", "paused", "completed", "archived"]);

export const VariantInput = z.object({
  label: z.string().regex(/^[A-Z]$/, "a single capital letter").openapi({ example: "A" }),
  subject_template: z.string().min(1).max(200).nullable().optional(),
  body_template: z.string().min(1).max(5000).openapi({ example: "{{client_name}} helps {{company|teams like yours}} book more meetings." }),
  weight: z.number().int().min(0).max(100).default(1),
});

export const StepInput = z
  .object({
    day_offset: z.number().int().min(0).max(365),
    channel: Channel,
    content_mode: z.enum(["tiered", "template"]).default("tiered"),
    condition: z.enum(["no_reply", "linkedin_accepted", "email_opened", "phone_valid"]).default("no_reply"),
    linkedin_action: z.enum(["profile_view", "invitation", "message"]).optional(),
    variants: z.array(VariantInput).max(5).default([]),
  })
  .superRefine((s, ctx) => {
    if (s.channel === "linkedin" && !s.linkedin_action) {
      ctx.addIssue({ code: "custom", path: ["linkedin_action"], message: "a LinkedIn step needs linkedin_action" });
    }
    if (s.channel !== "linkedin" && s.linkedin_action) {
      ctx.addIssue({ code: "custom", path: ["linkedin_action"], message: "only LinkedIn steps take linkedin_action" });
    }
    const labels = s.variants.map((v) => v.label);
    if (new Set(labels).size !== labels.length) {
      ctx.addIssue({ code: "custom", path: ["variants"], message: "variant labels must be unique" });
    }
  });

export const StepsInput = z.array(StepInput).min(1).max(20);

/** product.md §5: the sequence a campaign gets when it defines none. */
export const DEFAULT_SEQUENCE: z.input<typeof StepInput>[] = [
  { day_offset: 0, channel: "email" },
  { day_offset: 3, channel: "voice" },
  { day_offset: 5, channel: "linkedin", linkedin_action: "invitation" },
  { day_offset: 8, channel: "email" },
  { day_offset: 12, channel: "sms" },
];

export const CreateCampaignSchema = z
  .object({
    client_id: z.string().uuid(),
    name: z.string().min(1).max(200),
    icp_id: z.string().uuid().nullable().optional(),
    description: z.string().max(5000).nullable().optional(),
    offer: z.string().max(1000).nullable().optional(),
    sender_name: z.string().max(200).nullable().optional(),
    daily_new_leads: z.number().int().min(0).max(100_000).optional(),
    steps: StepsInput.optional().openapi({ description: "Omit for the default sequence: email day 0, voice day 3, LinkedIn day 5, email day 8, SMS day 12" }),
  })
  .openapi("CreateCampaign");

export const UpdateCampaignSchema = z
  .object({
    name: z.string().min(1).max(200),
    icp_id: z.string().uuid().nullable(),
    description: z.string().max(5000).nullable(),
    offer: z.string().max(1000).nullable(),
    sender_name: z.string().max(200).nullable(),
    daily_new_leads: z.number().int().min(0).max(100_000),
  })
  .partial()
  .refine((v) => Object.keys(v).length > 0, "nothing to update")
  .openapi("UpdateCampaign");

const Variant = z.object({
  id: z.string(), label: z.string(), subject_template: z.string().nullable(), body_template: z.string(), weight: z.number(),
});
export const StepSchema = z.object({
  id: z.string(),
  position: z.number(),
  day_offset: z.number(),
  channel: Channel,
  content_mode: z.string(),
  condition: z.string(),
  linkedin_action: z.string().nullable(),
  variants: z.array(Variant),
}).openapi("CampaignStep");

export const CampaignSchema = z
  .object({
    id: z.string(),
    client_id: z.string(),
    icp_id: z.string().nullable(),
    name: z.string(),
    status: CampaignStatus,
    description: z.string().nullable(),
    offer: z.string().nullable(),
    sender_name: z.string().nullable(),
    daily_new_leads: z.number(),
    source: z.string(),
    submitted_at: z.string().nullable(),
    approved_at: z.string().nullable(),
    approved_by: z.string().nullable(),
    paused_at: z.string().nullable(),
    pause_reason: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    steps: z.array(StepSchema).optional(),
    sender_ids: z.array(z.string()).optional(),
  })
  .openapi("Campaign");

export const SenderInput = z
  .object({
    client_id: z.string().uuid(),
    channel: Channel,
    provider: z.enum(["salesforge", "twilio", "clicksend", "vapi", "unipile", "postgrid"]),
    address: z.string().min(1).max(320).openapi({ description: "Mailbox address, phone number (E.164), LinkedIn account id or a return-address label" }),
    display_name: z.string().max(200).nullable().optional(),
    provider_account_id: z.string().max(200).nullable().optional(),
    daily_cap: z.number().int().min(0).max(10_000).optional(),
    weekly_cap: z.number().int().min(0).max(100_000).nullable().optional(),
    warmup_started_on: z.string().date().nullable().optional(),
    warmup_start_cap: z.number().int().min(0).max(10_000).optional(),
    warmup_daily_increase: z.number().int().min(0).max(1_000).optional(),
    postal_address: z.record(z.string(), z.string()).nullable().optional(),
  })
  .superRefine((s, ctx) => {
    const fits: Record<string, string[]> = {
      email: ["salesforge"], sms: ["twilio", "clicksend"], voice: ["vapi"], linkedin: ["unipile"], mail: ["postgrid"],
    };
    if (!fits[s.channel].includes(s.provider)) {
      ctx.addIssue({ code: "custom", path: ["provider"], message: `${s.channel} senders use ${fits[s.channel].join(" or ")}` });
    }
    if ((s.channel === "sms" || s.channel === "voice") && s.provider !== "vapi" && !/^\+[1-9]\d{6,14}$/.test(s.address) && !/^[A-Za-z0-9 ]{1,11}$/.test(s.address)) {
      ctx.addIssue({ code: "custom", path: ["address"], message: "an E.164 number or an alphanumeric sender id (up to 11 characters)" });
    }
    if (s.channel === "email" && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(s.address)) {
      ctx.addIssue({ code: "custom", path: ["address"], message: "a mailbox address" });
    }
  })
  .openapi("SenderInput");

export const UpdateSenderSchema = z
  .object({
    display_name: z.string().max(200).nullable(),
    daily_cap: z.number().int().min(0).max(10_000),
    weekly_cap: z.number().int().min(0).max(100_000).nullable(),
    warmup_started_on: z.string().date().nullable(),
    warmup_start_cap: z.number().int().min(0).max(10_000),
    warmup_daily_increase: z.number().int().min(0).max(1_000),
    postal_address: z.record(z.string(), z.string()).nullable(),
    active: z.boolean(),
  })
  .partial()
  .refine((v) => Object.keys(v).length > 0, "nothing to update")
  .openapi("UpdateSender");

export const SenderSchema = z.object({
  id: z.string(),
  client_id: z.string(),
  channel: Channel,
  provider: z.string(),
  address: z.string(),
  display_name: z.string().nullable(),
  provider_account_id: z.string().nullable(),
  daily_cap: z.number(),
  weekly_cap: z.number().nullable(),
  warmup_started_on: z.string().nullable(),
  warmup_start_cap: z.number(),
  warmup_daily_increase: z.number(),
  sender_id_registered: z.boolean(),
  active: z.boolean(),
  today_cap: z.number().openapi({ description: "Today's cap with the warm-up ramp applied" }),
  created_at: z.string(),
}).openapi("Sender");

export const CapacitySchema = z.object({
  campaign_id: z.string(),
  daily_capacity: z.number().openapi({ description: "New leads a day the campaign can really start: the lowest of all its caps" }),
  binding: z.string().openapi({ description: "The cap that binds", example: "email senders" }),
  caps: z.array(z.object({ name: z.string(), daily_leads: z.number(), detail: z.string() })),
}).openapi("CampaignCapacity");

export const ApprovalSchema = z.object({
  id: z.string(),
  client_id: z.string(),
  campaign_id: z.string(),
  lead_id: z.string(),
  channel: Channel,
  position: z.number(),
  due_at: z.string(),
  approval_expires_at: z.string().nullable(),
  subject: z.string().nullable(),
  body: z.string().nullable(),
  content_source: z.string().nullable(),
  lead_name: z.string().nullable(),
  company_name: z.string().nullable(),
  tier: z.string().nullable(),
}).openapi("QueuedMessage");

export const DecisionSchema = z.object({
  decision: z.enum(["approve", "reject"]),
  subject: z.string().min(1).max(200).optional(),
  body: z.string().min(1).max(20_000).optional(),
}).openapi("ApprovalDecision");
