// HubSpot CRM (v3 objects, v4 associations) with a private-app token (Authorization: Bearer …):
// contacts upserted by email (POST /crm/v3/objects/contacts/batch/upsert, idProperty email), meeting
// engagements created and updated (POST/PATCH /crm/v3/objects/meetings) and associated to the contact
// (PUT /crm/v4/objects/meetings/{id}/associations/default/contacts/{contactId}). The closer engine uses
// it to push a client's meetings and leads to the CRM (product.md §8).
//
// Rate limits (HubSpot): private apps get 100 (Free/Starter) or 190 (Pro/Enterprise) requests per
// rolling 10 seconds, plus a daily quota. A 429 names its policy in the body (TEN_SECONDLY_ROLLING,
// SECONDLY, DAILY) and usually carries no Retry-After, so the fetch below derives one from the policy
// and X-HubSpot-RateLimit-Interval-Milliseconds: the shared providerFetch then waits out a 10-second
// window, and fails retryable at once on the daily quota (the flow's QStash retry comes back later).
// Errors arrive as {status:"error", message, correlationId, category}.
import { z } from "zod";
import type { Redis } from "@upstash/redis";
import { PROVIDERS } from "../config/providers.ts";
import { readEnv } from "../config/env.ts";
import {
  isLocalUrl,
  normalizeEmail,
  ProviderError,
  providerFetch,
  rateLimitFromEnv,
  type ProviderCallContext,
  type ProviderSpec,
  type RateLimitSpec,
  type RecordCall,
  type RetrySpec,
  type SqlTag,
} from "./provider-http.ts";

export const HUBSPOT_DEFAULT_BASE_URL = "https://api.hubapi.com";

/** hs_meeting_outcome's internal values (HubSpot's default options). */
export const HUBSPOT_MEETING_OUTCOMES = ["SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"] as const;
export type HubSpotMeetingOutcome = (typeof HUBSPOT_MEETING_OUTCOMES)[number];

/** HubSpot-defined association type of a meeting → contact (the "default" label). */
export const HUBSPOT_MEETING_TO_CONTACT_TYPE_ID = 200;

export interface HubSpotConfig {
  /** Private-app access token (pat-…). */
  accessToken?: string;
  baseUrl?: string;
  /** Default 100 requests per 10 s shared (HUBSPOT_RATE_LIMIT overrides). */
  rateLimit?: RateLimitSpec | false;
  retry?: RetrySpec;
  timeoutMs?: number;
  redis?: Redis | null;
  record?: RecordCall;
  sql?: SqlTag;
  fetch?: typeof fetch;
}

export interface HubSpotContactInput {
  email: string;
  firstName?: string | null;
  lastName?: string | null;
  jobTitle?: string | null;
  company?: string | null;
  phone?: string | null;
  website?: string | null;
  /** Any other contact properties (internal names), e.g. hs_lead_status, lifecyclestage. */
  properties?: Record<string, string | null | undefined>;
}

export interface HubSpotContact {
  id: string;
  email: string | null;
  /** True when this upsert created the contact. */
  created: boolean;
  properties: Record<string, string | null>;
}

export interface HubSpotMeetingInput {
  title: string;
  startTime: Date | string;
  endTime?: Date | string | null;
  outcome: HubSpotMeetingOutcome;
  /** Shown to everyone who sees the meeting in HubSpot. */
  body?: string | null;
  /** Only for HubSpot users (hs_internal_meeting_notes). */
  internalNotes?: string | null;
  /** The video link (hs_meeting_external_url). */
  externalUrl?: string | null;
  location?: string | null;
}

export interface HubSpotMeeting {
  id: string;
  properties: Record<string, string | null>;
}

export interface HubSpotClient {
  /** Creates or updates the contact whose email matches (idProperty email). */
  upsertContact(input: HubSpotContactInput, ctx?: ProviderCallContext): Promise<HubSpotContact>;
  createMeeting(input: HubSpotMeetingInput, ctx?: ProviderCallContext): Promise<HubSpotMeeting>;
  /** Null when HubSpot no longer has the meeting (deleted there): the caller creates a new one. */
  updateMeeting(id: string, input: HubSpotMeetingInput, ctx?: ProviderCallContext): Promise<HubSpotMeeting | null>;
  /** Archives (deletes) a meeting; a missing one is fine. */
  archiveMeeting(id: string, ctx?: ProviderCallContext): Promise<void>;
  /** Idempotent: associating twice leaves one association. */
  associateMeetingToContact(meetingId: string, contactId: string, ctx?: ProviderCallContext): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Wire schemas
// ---------------------------------------------------------------------------------------------

const Properties = z.record(z.string(), z.unknown()).transform((p) =>
  Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v === null || v === undefined ? null : String(v)])) as Record<string, string | null>
);

const ObjectWire = z.object({
  id: z.union([z.string(), z.number()]).transform(String),
  properties: Properties.optional().default({}),
  new: z.boolean().optional(),
});

const BatchWire = z.object({
  status: z.string(),
  results: z.array(ObjectWire),
  numErrors: z.number().optional(),
  errors: z.array(z.object({ message: z.string().optional(), category: z.string().optional() }).passthrough()).optional(),
});

const AssociationWire = z.object({
  status: z.string().optional(),
  results: z.array(z.unknown()).optional(),
}).passthrough();

// ---------------------------------------------------------------------------------------------
// 429s: HubSpot names the policy in the body instead of sending Retry-After
// ---------------------------------------------------------------------------------------------

/** Seconds to wait after a HubSpot 429 of this policy (DAILY: an hour, i.e. longer than any caller waits). */
export function hubspotRetryAfterSeconds(policyName: string | null | undefined, intervalMs: string | null | undefined): number {
  const policy = (policyName ?? "").toUpperCase();
  if (policy === "DAILY") return 3600;
  if (policy === "SECONDLY") return 1;
  // TEN_SECONDLY_ROLLING (or unnamed): the rolling window HubSpot reports, 10 s by default.
  const ms = Number(intervalMs);
  return Number.isFinite(ms) && ms > 0 ? ms / 1000 : 10;
}

/** Wraps fetch so a 429 without Retry-After gets one from HubSpot's policy name and interval header. */
export function withHubSpotRetryAfter(inner: typeof fetch): typeof fetch {
  return async (input, init) => {
    const res = await inner(input, init);
    if (res.status !== 429 || res.headers.has("retry-after")) return res;
    const text = await res.text();
    let policy: string | undefined;
    try {
      policy = (JSON.parse(text) as { policyName?: string }).policyName;
    } catch {
      // not JSON: the interval header or the 10-second default decides
    }
    const headers = new Headers(res.headers);
    headers.set("retry-after", String(hubspotRetryAfterSeconds(policy, res.headers.get("x-hubspot-ratelimit-interval-milliseconds"))));
    return new Response(text, { status: 429, statusText: res.statusText, headers });
  };
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

function iso(v: Date | string): string {
  const d = v instanceof Date ? v : new Date(v);
  if (Number.isNaN(d.getTime())) throw new Error(`not a date: ${String(v)}`);
  return d.toISOString();
}

/** Drops empty values: an upsert must not blank a field someone filled in HubSpot. */
function compact(props: Record<string, string | null | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(props).filter((e): e is [string, string] => typeof e[1] === "string" && e[1].trim() !== ""),
  );
}

export function meetingProperties(input: HubSpotMeetingInput): Record<string, string> {
  const start = iso(input.startTime);
  return {
    // hs_timestamp places the engagement on the timeline: the meeting's start
    hs_timestamp: start,
    hs_meeting_title: input.title,
    hs_meeting_start_time: start,
    ...(input.endTime ? { hs_meeting_end_time: iso(input.endTime) } : {}),
    hs_meeting_outcome: input.outcome,
    ...compact({
      hs_meeting_body: input.body,
      hs_internal_meeting_notes: input.internalNotes,
      hs_meeting_external_url: input.externalUrl,
      hs_meeting_location: input.location,
    }),
  };
}

export function createHubSpotClient(config: HubSpotConfig = {}): HubSpotClient {
  const baseUrl = config.baseUrl ?? HUBSPOT_DEFAULT_BASE_URL;
  const token = config.accessToken;
  const spec: ProviderSpec = {
    provider: "hubspot",
    baseUrl,
    headers: { authorization: `Bearer ${token ?? ""}` },
    missingCredentials: token ? undefined : `${PROVIDERS.hubspot.key} is not set`,
    rateLimit: config.rateLimit ?? rateLimitFromEnv("HUBSPOT_RATE_LIMIT", { limit: 100, window: "10 s" }),
    // two attempts after the first: enough to ride out one 10-second window
    retry: { attempts: 3, maxRetryAfterMs: 15_000, ...config.retry },
    timeoutMs: config.timeoutMs ?? 15_000,
    redis: config.redis,
    record: config.record,
    sql: config.sql,
    fetch: withHubSpotRetryAfter(config.fetch ?? ((input, init) => fetch(input, init))),
  };
  // Creating a meeting whose answer was lost may have created it: no blind retry on a timeout.
  const createSpec: ProviderSpec = { ...spec, retry: { ...spec.retry, onTimeout: false } };

  const invalid = (operation: string, message: string) =>
    new ProviderError({ provider: "hubspot", operation, code: "invalid_request", retryable: false, message });

  function checkMeeting(operation: string, input: HubSpotMeetingInput) {
    if (!input.title?.trim()) throw invalid(operation, "a meeting needs a title");
    if (!HUBSPOT_MEETING_OUTCOMES.includes(input.outcome)) throw invalid(operation, `unknown outcome ${input.outcome}`);
    try {
      return meetingProperties(input);
    } catch (e) {
      throw invalid(operation, (e as Error).message);
    }
  }

  return {
    async upsertContact(input, ctx) {
      const operation = "contacts.upsert";
      const email = normalizeEmail(input.email ?? "");
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) throw invalid(operation, "a contact is upserted by a valid email");
      const properties = compact({
        email,
        firstname: input.firstName,
        lastname: input.lastName,
        jobtitle: input.jobTitle,
        company: input.company,
        phone: input.phone,
        website: input.website,
        ...input.properties,
      });
      const res = await providerFetch(spec, {
        operation, method: "POST", path: "/crm/v3/objects/contacts/batch/upsert",
        body: { inputs: [{ id: email, idProperty: "email", properties }] },
        schema: BatchWire,
        // 207 Multi-Status: the batch ran but our one input failed
        check: (b) => (b.results.length === 0
          ? { message: b.errors?.[0]?.message ?? `upsert returned no contact (status ${b.status})`, retryable: false }
          : null),
      }, ctx);
      const c = res.data.results[0];
      return { id: c.id, email: c.properties.email ?? email, created: c.new === true, properties: c.properties };
    },

    async createMeeting(input, ctx) {
      const operation = "meetings.create";
      const properties = checkMeeting(operation, input);
      const res = await providerFetch(createSpec, {
        operation, method: "POST", path: "/crm/v3/objects/meetings", body: { properties }, schema: ObjectWire,
      }, ctx);
      return { id: res.data.id, properties: res.data.properties };
    },

    async updateMeeting(id, input, ctx) {
      const operation = "meetings.update";
      if (!/^\d+$/.test(id)) throw invalid(operation, `not a HubSpot object id: ${id}`);
      const properties = checkMeeting(operation, input);
      const res = await providerFetch(spec, {
        operation, method: "PATCH", path: `/crm/v3/objects/meetings/${id}`, body: { properties },
        schema: ObjectWire.nullable(),
        onStatus: { 404: () => null },
      }, ctx);
      return res.data ? { id: res.data.id, properties: res.data.properties } : null;
    },

    async archiveMeeting(id, ctx) {
      const operation = "meetings.archive";
      if (!/^\d+$/.test(id)) throw invalid(operation, `not a HubSpot object id: ${id}`);
      await providerFetch(spec, {
        operation, method: "DELETE", path: `/crm/v3/objects/meetings/${id}`,
        schema: z.unknown(),
        onStatus: { 404: () => null },
      }, ctx);
    },

    async associateMeetingToContact(meetingId, contactId, ctx) {
      const operation = "associations.meeting_contact";
      if (!/^\d+$/.test(meetingId) || !/^\d+$/.test(contactId)) throw invalid(operation, "HubSpot object ids are numeric");
      await providerFetch(spec, {
        operation, method: "PUT",
        path: `/crm/v4/objects/meetings/${meetingId}/associations/default/contacts/${contactId}`,
        schema: AssociationWire,
      }, ctx);
    },
  };
}

/**
 * A client from HUBSPOT_ACCESS_TOKEN, HUBSPOT_BASE_URL (and HUBSPOT_RATE_LIMIT). Against a local
 * base URL (a sandbox) a missing token defaults to "sandbox".
 */
export function hubspotFromEnv(overrides: Partial<HubSpotConfig> = {}): HubSpotClient {
  const baseUrl = overrides.baseUrl ?? readEnv(PROVIDERS.hubspot.baseUrl) ?? HUBSPOT_DEFAULT_BASE_URL;
  return createHubSpotClient({
    accessToken: readEnv(PROVIDERS.hubspot.key) || (isLocalUrl(baseUrl) ? "sandbox" : undefined),
    ...overrides,
    baseUrl,
  });
}

/** True when a token is set or the base URL is a local sandbox: CRM sync has somewhere to go. */
export function hubspotConfigured(): boolean {
  const base = readEnv(PROVIDERS.hubspot.baseUrl);
  return Boolean(readEnv(PROVIDERS.hubspot.key)) || (base !== undefined && isLocalUrl(base));
}
