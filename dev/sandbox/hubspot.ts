// HubSpot CRM sandbox: the slice of the v3 objects and v4 associations APIs the closer engine uses,
// in HubSpot's wire format, so shared/integrations/hubspot.ts runs against it unchanged.
//   POST   /crm/v3/objects/contacts/batch/upsert          {inputs:[{id, idProperty:"email", properties}]}
//   GET    /crm/v3/objects/{contacts|meetings}/{id}
//   POST   /crm/v3/objects/meetings                        {properties}  → 201
//   PATCH  /crm/v3/objects/meetings/{id}                   {properties}
//   DELETE /crm/v3/objects/meetings/{id}                   → 204 (archived)
//   PUT    /crm/v4/objects/{from}/{id}/associations/default/{to}/{toId}
//   GET    /crm/v4/objects/{from}/{id}/associations/{to}
// Auth: Authorization: Bearer <token> (opts.accessToken when set, else any non-empty token).
// Errors: {status:"error", message, correlationId, category} with HubSpot's categories
// (INVALID_AUTHENTICATION, VALIDATION_ERROR, OBJECT_NOT_FOUND, RATE_LIMITS). Rate limit: a real rolling
// window (opts.windowMs / opts.maxPerWindow, default 100 per 10 s) answering 429 with policyName
// TEN_SECONDLY_ROLLING, no Retry-After and the X-HubSpot-RateLimit-* headers, as HubSpot does.
// Magic values in a contact's email: "ratelimit" → 429 once, "servererror" → 502 once.
// Stateful and in memory; `state` exposes contacts, meetings, associations and the request log.
import { Hono } from "hono";
import type { Context } from "hono";
import { OnceOnly, failureNow } from "./seeded.ts";

export interface HubSpotSandboxOptions {
  /** When set, only this token is accepted. */
  accessToken?: string;
  /** Rolling rate-limit window (default 10 000 ms) and its size (default 100). */
  windowMs?: number;
  maxPerWindow?: number;
  /** Clock (default Date.now). */
  now?: () => number;
}

export interface HubSpotSandboxObject {
  id: string;
  properties: Record<string, string | null>;
  createdAt: string;
  updatedAt: string;
  archived: boolean;
}

export interface HubSpotSandboxRequest {
  method: string;
  path: string;
  status: number;
  body: unknown;
}

export interface HubSpotSandboxState {
  contacts: Map<string, HubSpotSandboxObject>;
  meetings: Map<string, HubSpotSandboxObject>;
  /** "meetings:<id>→contacts:<id>" and the reverse, as HubSpot stores both directions. */
  associations: Set<string>;
  requests: HubSpotSandboxRequest[];
  /** Active meetings associated to a contact. */
  meetingsOf(contactId: string): HubSpotSandboxObject[];
  contactByEmail(email: string): HubSpotSandboxObject | undefined;
}

export type HubSpotSandbox = Hono & { state: HubSpotSandboxState };

const OUTCOMES = new Set(["SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"]);
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const OBJECT_TYPES = new Set(["contacts", "meetings"]);
// HubSpot-defined default association type ids
const DEFAULT_TYPE: Record<string, number> = { "meetings→contacts": 200, "contacts→meetings": 199 };

function hubspotError(c: Context, status: number, category: string, message: string, extra: Record<string, unknown> = {}) {
  return c.json({ status: "error", message, correlationId: crypto.randomUUID(), category, ...extra }, status as 400);
}

export function createHubSpotSandbox(opts: HubSpotSandboxOptions = {}): HubSpotSandbox {
  const now = opts.now ?? Date.now;
  const windowMs = opts.windowMs ?? 10_000;
  const maxPerWindow = opts.maxPerWindow ?? 100;
  const once = new OnceOnly();
  let nextId = 51_000;
  const hits: number[] = [];

  const state: HubSpotSandboxState = {
    contacts: new Map(),
    meetings: new Map(),
    associations: new Set(),
    requests: [],
    meetingsOf(contactId) {
      return [...state.meetings.values()].filter((m) =>
        !m.archived && state.associations.has(`meetings:${m.id}→contacts:${contactId}`)
      );
    },
    contactByEmail(email) {
      return [...state.contacts.values()].find((c) => c.properties.email === email.trim().toLowerCase());
    },
  };

  const app = new Hono() as HubSpotSandbox;
  app.state = state;

  const stamp = () => new Date(now()).toISOString();
  const store = (type: string) => (type === "contacts" ? state.contacts : state.meetings);
  const view = (o: HubSpotSandboxObject) => ({
    id: o.id, properties: o.properties, createdAt: o.createdAt, updatedAt: o.updatedAt, archived: o.archived,
  });

  function rateHeaders(remaining: number): Record<string, string> {
    return {
      "x-hubspot-ratelimit-interval-milliseconds": String(windowMs),
      "x-hubspot-ratelimit-max": String(maxPerWindow),
      "x-hubspot-ratelimit-remaining": String(Math.max(0, remaining)),
    };
  }

  function tooMany(c: Context) {
    for (const [k, v] of Object.entries(rateHeaders(0))) c.header(k, v);
    return hubspotError(c, 429, "RATE_LIMITS", "You have reached your ten_secondly_rolling limit.", {
      errorType: "RATE_LIMIT", policyName: "TEN_SECONDLY_ROLLING",
    });
  }

  app.use("*", async (c, next) => {
    let body: unknown = null;
    if (c.req.method !== "GET" && c.req.method !== "DELETE") {
      body = await c.req.raw.clone().json().catch(() => undefined);
    }
    await next();
    state.requests.push({ method: c.req.method, path: new URL(c.req.url).pathname, status: c.res.status, body });
  });

  // Auth first, then the rolling window (HubSpot counts authenticated calls).
  app.use("*", async (c, next) => {
    const m = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "");
    if (!m || (opts.accessToken !== undefined && m[1] !== opts.accessToken)) {
      return hubspotError(c, 401, "INVALID_AUTHENTICATION",
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview");
    }
    const t = now();
    while (hits.length && hits[0] <= t - windowMs) hits.shift();
    if (hits.length >= maxPerWindow) return tooMany(c);
    hits.push(t);
    await next();
    for (const [k, v] of Object.entries(rateHeaders(maxPerWindow - hits.length))) c.res.headers.set(k, v);
  });

  app.post("/crm/v3/objects/contacts/batch/upsert", async (c) => {
    const body = await c.req.json().catch(() => null) as { inputs?: unknown } | null;
    if (!body || !Array.isArray(body.inputs) || body.inputs.length === 0 || body.inputs.length > 100) {
      return hubspotError(c, 400, "VALIDATION_ERROR", "Invalid input JSON: inputs must be an array of 1 to 100 items");
    }
    const inputs = body.inputs as Array<{ id?: unknown; idProperty?: unknown; properties?: Record<string, unknown> }>;
    for (const input of inputs) {
      if (input.idProperty !== "email") {
        return hubspotError(c, 400, "VALIDATION_ERROR", `Unable to upsert by idProperty ${String(input.idProperty)}: this sandbox knows email only`);
      }
      const email = String(input.id ?? "").trim().toLowerCase();
      const fail = failureNow(email, once, "contacts.upsert");
      if (fail === "ratelimit") return tooMany(c);
      if (fail === "servererror") return hubspotError(c, 502, "INTERNAL_ERROR", "Bad gateway");
      if (!EMAIL.test(email)) {
        return hubspotError(c, 400, "VALIDATION_ERROR",
          `Property values were not valid: [{"isValid":false,"message":"Email address ${email} is invalid","error":"INVALID_EMAIL","name":"email"}]`);
      }
    }
    const t = stamp();
    const results = inputs.map((input) => {
      const email = String(input.id).trim().toLowerCase();
      const properties = Object.fromEntries(Object.entries(input.properties ?? {}).map(([k, v]) => [k, v == null ? null : String(v)]));
      const existing = state.contactByEmail(email);
      if (existing) {
        Object.assign(existing.properties, properties, { email, lastmodifieddate: t });
        existing.updatedAt = t;
        return { ...view(existing), new: false };
      }
      const id = String(nextId++);
      const contact: HubSpotSandboxObject = {
        id, createdAt: t, updatedAt: t, archived: false,
        properties: { ...properties, email, hs_object_id: id, createdate: t, lastmodifieddate: t },
      };
      state.contacts.set(id, contact);
      return { ...view(contact), new: true };
    });
    return c.json({ status: "COMPLETE", results, startedAt: t, completedAt: stamp() }, 200);
  });

  function validMeetingProps(c: Context, props: Record<string, unknown>, creating: boolean) {
    const problems: string[] = [];
    if (creating && !props.hs_timestamp) problems.push('{"isValid":false,"message":"hs_timestamp is required","error":"REQUIRED_PROPERTY","name":"hs_timestamp"}');
    for (const k of ["hs_timestamp", "hs_meeting_start_time", "hs_meeting_end_time"]) {
      const v = props[k];
      if (v != null && Number.isNaN(Date.parse(String(v))) && !/^\d+$/.test(String(v))) {
        problems.push(`{"isValid":false,"message":"${String(v)} was not a valid long or a valid datetime","error":"INVALID_DATE","name":"${k}"}`);
      }
    }
    const outcome = props.hs_meeting_outcome;
    if (outcome != null && !OUTCOMES.has(String(outcome))) {
      problems.push(`{"isValid":false,"message":"${String(outcome)} was not one of the allowed options","error":"INVALID_OPTION","name":"hs_meeting_outcome"}`);
    }
    return problems.length ? hubspotError(c, 400, "VALIDATION_ERROR", `Property values were not valid: [${problems.join(",")}]`) : null;
  }

  app.post("/crm/v3/objects/meetings", async (c) => {
    const body = await c.req.json().catch(() => null) as { properties?: Record<string, unknown> } | null;
    if (!body || typeof body.properties !== "object" || body.properties === null) {
      return hubspotError(c, 400, "VALIDATION_ERROR", "Invalid input JSON: properties is required");
    }
    const bad = validMeetingProps(c, body.properties, true);
    if (bad) return bad;
    const t = stamp();
    const id = String(nextId++);
    const props = Object.fromEntries(Object.entries(body.properties).map(([k, v]) => [k, v == null ? null : String(v)]));
    const meeting: HubSpotSandboxObject = {
      id, createdAt: t, updatedAt: t, archived: false,
      properties: { ...props, hs_object_id: id, hs_createdate: t, hs_lastmodifieddate: t },
    };
    state.meetings.set(id, meeting);
    return c.json(view(meeting), 201);
  });

  app.patch("/crm/v3/objects/meetings/:id", async (c) => {
    const meeting = state.meetings.get(c.req.param("id"));
    if (!meeting || meeting.archived) return hubspotError(c, 404, "OBJECT_NOT_FOUND", "resource not found");
    const body = await c.req.json().catch(() => null) as { properties?: Record<string, unknown> } | null;
    if (!body || typeof body.properties !== "object" || body.properties === null) {
      return hubspotError(c, 400, "VALIDATION_ERROR", "Invalid input JSON: properties is required");
    }
    const bad = validMeetingProps(c, body.properties, false);
    if (bad) return bad;
    const t = stamp();
    for (const [k, v] of Object.entries(body.properties)) meeting.properties[k] = v == null ? null : String(v);
    meeting.properties.hs_lastmodifieddate = t;
    meeting.updatedAt = t;
    return c.json(view(meeting), 200);
  });

  app.delete("/crm/v3/objects/meetings/:id", (c) => {
    const meeting = state.meetings.get(c.req.param("id"));
    if (meeting) meeting.archived = true;
    // HubSpot answers 204 whether or not the object existed
    return c.body(null, 204);
  });

  app.get("/crm/v3/objects/:type/:id", (c) => {
    const type = c.req.param("type");
    if (!OBJECT_TYPES.has(type)) return hubspotError(c, 400, "VALIDATION_ERROR", `Unable to infer object type from: ${type}`);
    const o = store(type).get(c.req.param("id"));
    return o && !o.archived ? c.json(view(o), 200) : hubspotError(c, 404, "OBJECT_NOT_FOUND", "resource not found");
  });

  app.put("/crm/v4/objects/:from/:fromId/associations/default/:to/:toId", (c) => {
    const { from, fromId, to, toId } = c.req.param();
    const typeId = DEFAULT_TYPE[`${from}→${to}`];
    if (!typeId) return hubspotError(c, 400, "VALIDATION_ERROR", `No default association between ${from} and ${to} in this sandbox`);
    const a = store(from).get(fromId);
    const b = store(to).get(toId);
    if (!a || a.archived) return hubspotError(c, 404, "OBJECT_NOT_FOUND", `No ${from} with ID ${fromId} exists`);
    if (!b || b.archived) return hubspotError(c, 404, "OBJECT_NOT_FOUND", `No ${to} with ID ${toId} exists`);
    state.associations.add(`${from}:${fromId}→${to}:${toId}`);
    state.associations.add(`${to}:${toId}→${from}:${fromId}`);
    const t = stamp();
    const spec = (id: number) => ({ associationCategory: "HUBSPOT_DEFINED", associationTypeId: id });
    return c.json({
      status: "COMPLETE",
      results: [
        { from: { id: fromId }, to: { id: toId }, associationSpec: spec(typeId) },
        { from: { id: toId }, to: { id: fromId }, associationSpec: spec(DEFAULT_TYPE[`${to}→${from}`]) },
      ],
      startedAt: t,
      completedAt: t,
    }, 200);
  });

  app.get("/crm/v4/objects/:from/:fromId/associations/:to", (c) => {
    const { from, fromId, to } = c.req.param();
    const prefix = `${from}:${fromId}→${to}:`;
    const ids = [...state.associations].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
    const typeId = DEFAULT_TYPE[`${from}→${to}`] ?? 0;
    return c.json({
      results: ids.map((id) => ({
        toObjectId: Number(id),
        associationTypes: [{ category: "HUBSPOT_DEFINED", typeId, label: null }],
      })),
    }, 200);
  });

  app.all("*", (c) => hubspotError(c, 404, "OBJECT_NOT_FOUND", `Not found: ${c.req.method} ${new URL(c.req.url).pathname}`));
  return app;
}
