// Client users list, read and update their assigned leads, move them through the assignment
// state machine, and add leads by hand; admins also browse the whole pool. RLS decides which
// rows exist for the caller, so another client's lead is a 404, never a 403.
import { createRoute, z } from "@hono/zod-openapi";
import { requireAdmin, requireUser, roleIn, type Caller } from "../../shared/auth/caller.ts";
import { asUser } from "../../shared/db/client.ts";
import * as q from "../../shared/db/queries/leads.ts";
import { createFunctionApp } from "../../shared/http/app.ts";
import { AppError } from "../../shared/http/errors.ts";
import { idempotent } from "../../shared/http/idempotency.ts";
import { decodeCursor, page } from "../../shared/http/pagination.ts";
import { serveFunction } from "../../shared/http/serve.ts";
import {
  errorResponses, IdempotencyHeader, PageQuery, pageOf, UuidParam, BEARER as security, isoDates as iso, jsonContent as json,
} from "../../shared/schemas/common.ts";
import {
  AssignmentStatus, ChangeStatusSchema, CreateLeadSchema, LeadSchema, LeadStatus, PoolLeadSchema, Tier, UpdateLeadSchema,
} from "../../shared/schemas/leads.ts";

const app = createFunctionApp("leads", {
  title: "Leads",
  description: "A client's assigned leads: list, read, correct, change status through the state machine, add by hand. Admins browse the pool.",
});
// Registered after the OpenAPI document route, so the document stays public.
app.use("*", requireUser());
app.post("/", idempotent("leads"));

type Lead = z.infer<typeof LeadSchema>;
const notFound = () => new AppError("not_found", "lead not found");

function toLead(row: Record<string, unknown>): Lead {
  const { page_created_at: _a, page_id: _b, ...rest } = row;
  return iso(rest) as Lead;
}

/** The client a new lead goes to: the one given, else the caller's only writable client. */
function targetClient(caller: Caller, clientId: string | undefined): string {
  if (clientId) {
    const role = roleIn(caller, clientId);
    if (!role) throw new AppError("not_found", "client not found", [{ field: "client_id", message: "not one of your clients" }]);
    if (role === "viewer") throw new AppError("forbidden", "viewers cannot add leads");
    return clientId;
  }
  const writable = caller.memberships.filter((m) => m.role !== "viewer");
  if (writable.length === 1) return writable[0].clientId;
  if (writable.length === 0 && caller.memberships.length > 0) throw new AppError("forbidden", "viewers cannot add leads");
  throw new AppError("validation_failed", "invalid json: client_id", [
    { field: "client_id", message: writable.length === 0 ? "you cannot add leads for any client" : "required: you write for several clients" },
  ]);
}

app.openapi(
  createRoute({
    method: "get", path: "/", summary: "List your assigned leads", security,
    request: {
      query: PageQuery.extend({
        status: AssignmentStatus.optional(),
        client_id: z.string().uuid().optional(),
        campaign_id: z.string().uuid().optional(),
      }),
    },
    responses: { 200: json(pageOf(LeadSchema, "LeadPage"), "A page of leads, newest assignment first"), ...errorResponses(400, 401) },
  }),
  async (c) => {
    const { limit, cursor, status, client_id, campaign_id } = c.req.valid("query");
    const rows = await asUser(c.var.caller!.claims, (tx) =>
      q.listAssignedLeads(tx, { limit, cursor: decodeCursor(cursor), status, clientId: client_id, campaignId: campaign_id }));
    const p = page(rows as unknown as Record<string, unknown>[], limit, (r) => ({
      created_at: r.page_created_at as Date,
      id: r.page_id as string,
    }));
    return c.json({ data: p.data.map(toLead), next_cursor: p.next_cursor }, 200);
  },
);

app.openapi(
  createRoute({
    method: "post", path: "/", summary: "Add a lead by hand: it enters the pool and is assigned to your client", security,
    request: { headers: IdempotencyHeader, body: { required: true, content: { "application/json": { schema: CreateLeadSchema } } } },
    responses: {
      201: json(LeadSchema, "The new lead, assigned to your client"),
      200: json(LeadSchema, "The lead was already assigned to your client"),
      ...errorResponses(400, 401, 403, 404, 409, 422),
    },
  }),
  async (c) => {
    const { client_id, campaign_id, ...lead } = c.req.valid("json");
    const caller = c.var.caller!;
    const clientId = targetClient(caller, client_id);
    const { row, created } = await asUser(caller.claims, async (tx) => {
      const made = await q.createManualLead(tx, clientId, campaign_id ?? null, lead);
      return { row: await q.getLead(tx, made.lead_id), created: made.created };
    }, "added by hand");
    return c.json(toLead(row), created ? 201 : 200);
  },
);

app.openapi(
  createRoute({
    method: "get", path: "/pool", summary: "Browse the whole lead pool (admins)", security,
    middleware: [requireAdmin()] as const,
    request: {
      query: PageQuery.extend({
        status: LeadStatus.optional(),
        tier: Tier.optional(),
        q: z.string().trim().min(1).max(200).optional().openapi({ description: "Search email, name or company" }),
      }),
    },
    responses: { 200: json(pageOf(PoolLeadSchema, "PoolLeadPage"), "A page of pool leads"), ...errorResponses(400, 401, 403) },
  }),
  async (c) => {
    const { limit, cursor, status, tier, q: text } = c.req.valid("query");
    const rows = await asUser(c.var.caller!.claims, (tx) =>
      q.listPool(tx, { limit, cursor: decodeCursor(cursor), status, tier, q: text }));
    const p = page(rows as unknown as Array<{ created_at: Date; id: string }>, limit);
    return c.json({ data: p.data.map((r) => iso(r)) as z.infer<typeof PoolLeadSchema>[], next_cursor: p.next_cursor }, 200);
  },
);

const IdParams = z.object({ id: UuidParam });

app.openapi(
  createRoute({
    method: "get", path: "/{id}", summary: "Read one of your leads", security,
    request: { params: IdParams },
    responses: { 200: json(LeadSchema, "The lead"), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const row = await asUser(c.var.caller!.claims, (tx) => q.getLead(tx, c.req.valid("param").id));
    if (!row) throw notFound();
    return c.json(toLead(row), 200);
  },
);

app.openapi(
  createRoute({
    method: "patch", path: "/{id}", summary: "Correct a lead's contact details", security,
    request: { params: IdParams, body: { required: true, content: { "application/json": { schema: UpdateLeadSchema } } } },
    responses: { 200: json(LeadSchema, "The updated lead"), ...errorResponses(400, 401, 403, 404, 409) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const caller = c.var.caller!;
    const row = await asUser(caller.claims, async (tx) => {
      const current = await q.getLead(tx, id);
      if (!current) throw notFound();
      const assignment = current.assignment as { client_id: string; ended_at: string | null } | null;
      if (!caller.isAdmin) {
        if (!assignment || roleIn(caller, assignment.client_id) === "viewer") {
          throw new AppError("forbidden", "viewers cannot change leads");
        }
        if (assignment.ended_at) throw new AppError("conflict", "this lead is no longer assigned to your client");
      }
      await q.updateLead(tx, id, c.req.valid("json"));
      return q.getLead(tx, id);
    }, "contact details corrected");
    return c.json(toLead(row), 200);
  },
);

app.openapi(
  createRoute({
    method: "post", path: "/{id}/status", summary: "Move your assignment of this lead to another status", security,
    request: {
      params: IdParams,
      body: {
        required: true,
        content: { "application/json": { schema: ChangeStatusSchema.extend({ client_id: z.string().uuid().optional() }) } },
      },
    },
    responses: {
      200: json(LeadSchema, "The lead with its new assignment status"),
      ...errorResponses(400, 401, 403, 404, 409),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const { status, reason, client_id } = c.req.valid("json");
    const caller = c.var.caller!;
    const row = await asUser(caller.claims, async (tx) => {
      const assignment = await q.activeAssignment(tx, id, client_id);
      if (!assignment) {
        if (await q.getLead(tx, id)) throw new AppError("conflict", "this lead has no active assignment to change");
        throw notFound();
      }
      if (roleIn(caller, assignment.client_id) === "viewer") throw new AppError("forbidden", "viewers cannot change a lead's status");
      await q.setAssignmentStatus(tx, assignment.id, status);
      return q.getLead(tx, id);
    }, reason);
    return c.json(toLead(row), 200);
  },
);

export default app;
serveFunction(app);
