// Request and response schemas of the leads function.
import { z } from "@hono/zod-openapi";

export const AssignmentStatus = z.enum([
  "assigned", "queued", "in_sequence", "replied", "interested", "not_interested", "meeting_booked",
  "meeting_held", "no_show", "won", "lost", "paused", "unsubscribed", "bounced", "suppressed", "completed",
]);
export const LeadStatus = z.enum(["new", "enriching", "enriched", "scored", "invalid"]);
export const Tier = z.enum(["hot", "warm", "cool", "cold", "dead"]);

export const AssignmentSchema = z
  .object({
    id: z.string().uuid(),
    client_id: z.string().uuid(),
    campaign_id: z.string().uuid().nullable(),
    status: AssignmentStatus,
    status_changed_at: z.string(),
    ended_at: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi("Assignment");

export const LeadSchema = z
  .object({
    id: z.string().uuid(),
    email: z.string().nullable(),
    email_status: z.string(),
    first_name: z.string().nullable(),
    last_name: z.string().nullable(),
    title: z.string().nullable(),
    company_name: z.string().nullable(),
    company_domain: z.string().nullable(),
    linkedin_url: z.string().nullable(),
    phone: z.string().nullable(),
    country: z.string().nullable(),
    state: z.string().nullable(),
    city: z.string().nullable(),
    timezone: z.string().nullable(),
    status: LeadStatus,
    als_score: z.number().int().nullable(),
    als_tier: Tier.nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    assignment: AssignmentSchema.nullable().openapi({ description: "The caller's (active, else latest) assignment of this lead" }),
  })
  .openapi("Lead");

const text = (max: number) => z.string().trim().min(1).max(max);
const email = z.string().trim().max(320).email();
const phone = z.string().trim().regex(/^\+?[0-9 ().-]{6,20}$/, "not a phone number");
const linkedin = z.string().trim().url().max(500).refine((u) => /(^|\.)linkedin\.com$/i.test(new URL(u).hostname), "not a LinkedIn URL");
const domain = z.string().trim().toLowerCase().regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, "not a domain");
const country = z.string().trim().toUpperCase().regex(/^[A-Z]{2}$/, "ISO 3166-1 alpha-2 code, e.g. AU");

export const CreateLeadSchema = z
  .object({
    client_id: z.string().uuid().optional().openapi({ description: "Required when the caller writes for more than one client" }),
    campaign_id: z.string().uuid().optional(),
    email,
    first_name: text(100),
    last_name: text(100),
    company_name: text(200),
    title: text(200),
    phone: phone.optional(),
    linkedin_url: linkedin.optional(),
    company_domain: domain.optional(),
    country: country.optional(),
  })
  .strict()
  .openapi("CreateLead");

export const UpdateLeadSchema = z
  .object({
    email,
    first_name: text(100),
    last_name: text(100),
    title: text(200),
    company_name: text(200),
    company_domain: domain.nullable(),
    linkedin_url: linkedin.nullable(),
    phone: phone.nullable(),
    country: country.nullable(),
    state: text(100).nullable(),
    city: text(100).nullable(),
  })
  .partial()
  .strict()
  .refine((v) => Object.keys(v).length > 0, { message: "give at least one field to change" })
  .openapi("UpdateLead");

export const ChangeStatusSchema = z
  .object({
    status: AssignmentStatus,
    reason: z.string().trim().max(500).optional(),
  })
  .strict()
  .openapi("ChangeStatus");

export const PoolLeadSchema = LeadSchema.omit({ assignment: true }).extend({
  active_client_id: z.string().uuid().nullable(),
}).openapi("PoolLead");
