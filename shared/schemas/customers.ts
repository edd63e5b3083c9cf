// Request and response schemas of the customers function (clients and their members).
import { z } from "@hono/zod-openapi";

export const ClientStatus = z.enum(["trialing", "active", "past_due", "paused", "cancelled"]);
export const PermissionMode = z.enum(["autopilot", "co_pilot", "manual"]);
export const Plan = z.enum(["starter", "growth", "scale", "custom"]);
export const MemberRoleSchema = z.enum(["owner", "member", "viewer"]);

const timezone = z.string().refine(
  (tz) => {
    try {
      new Intl.DateTimeFormat("en", { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  },
  { message: "not an IANA time zone" },
);
const domain = z.string().regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i, "not a domain");

export const ClientSchema = z
  .object({
    id: z.string().uuid(),
    slug: z.string(),
    name: z.string(),
    plan: Plan,
    monthly_lead_quota: z.number().int(),
    monthly_enrichment_credits: z.number().int(),
    monthly_llm_budget_cents: z.number().int(),
    monthly_provider_budget_cents: z.number().int(),
    status: ClientStatus,
    emergency_paused: z.boolean(),
    emergency_paused_at: z.string().nullable(),
    emergency_pause_reason: z.string().nullable(),
    permission_mode: PermissionMode,
    timezone: z.string(),
    competitor_domains: z.array(z.string()),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Client");

const clientFields = {
  name: z.string().trim().min(1).max(200),
  plan: Plan,
  monthly_lead_quota: z.number().int().min(0).max(10_000_000),
  monthly_enrichment_credits: z.number().int().min(0).max(100_000_000),
  monthly_llm_budget_cents: z.number().int().min(0),
  monthly_provider_budget_cents: z.number().int().min(0),
  status: ClientStatus,
  permission_mode: PermissionMode,
  timezone,
  competitor_domains: z.array(domain).max(500),
};

export const CreateClientSchema = z
  .object({
    slug: z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, "lowercase letters, digits and dashes, 2–63 characters"),
    ...clientFields,
  })
  .partial()
  .required({ slug: true, name: true })
  .strict()
  .openapi("CreateClient");

export const UpdateClientSchema = z
  .object({
    ...clientFields,
    emergency_paused: z.boolean(),
    emergency_pause_reason: z.string().max(500).nullable(),
  })
  .partial()
  .strict()
  .refine((v) => Object.keys(v).length > 0, { message: "give at least one field to change" })
  .openapi("UpdateClient");

export const MemberSchema = z
  .object({
    client_id: z.string().uuid(),
    user_id: z.string().uuid(),
    email: z.string().nullable(),
    role: MemberRoleSchema,
    created_at: z.string(),
  })
  .openapi("Member");

export const AddMemberSchema = z
  .object({ email: z.string().trim().email(), role: MemberRoleSchema })
  .strict()
  .openapi("AddMember");

export const UpdateMemberSchema = z.object({ role: MemberRoleSchema }).strict().openapi("UpdateMember");
