// Campaigns: sequences of steps with A/B variants (the default sequence of product.md §5 when none
// is given), approval by a client owner or an admin before activation, pause and resume, the
// client's emergency pause, sender pools with caps and warm-up, the capacity planner, and the
// co-pilot / manual approval queue. Every query runs as the caller under RLS; status changes go
// through database functions that check the caller's role.
import { createRoute, z } from "@hono/zod-openapi";
import { requireUser } from "../../shared/auth/caller.ts";
import { asUser } from "../../shared/db/client.ts";
import * as q from "../../shared/db/queries/campaigns.ts";
import { createFunctionApp } from "../../shared/http/app.ts";
import { AppError } from "../../shared/http/errors.ts";
import { idempotent } from "../../shared/http/idempotency.ts";
import { decodeCursor, page } from "../../shared/http/pagination.ts";
import { serveFunction } from "../../shared/http/serve.ts";
import {
  ApprovalSchema, CampaignSchema, CampaignStatus, CapacitySchema, CreateCampaignSchema, DecisionSchema, DEFAULT_SEQUENCE,
  SenderInput, SenderSchema, StepInput, StepsInput, UpdateCampaignSchema, UpdateSenderSchema,
} from "../../shared/schemas/campaigns.ts";
import {
  BEARER as security, errorResponses, IdempotencyHeader, isoDates as iso, jsonContent as json, PageQuery, pageOf, UuidParam,
} from "../../shared/schemas/common.ts";

const app = createFunctionApp("campaigns", {
  title: "Campaigns",
  description: "Campaign sequences and A/B variants, approval before activation, pause/resume, the emergency pause, sender pools, the capacity planner and the approval queue.",
});
app.use("*", requireUser());
app.post("/", idempotent("campaigns"));

const notFound = () => new AppError("not_found", "campaign not found");
const IdParams = z.object({ id: UuidParam });
type Campaign = z.infer<typeof CampaignSchema>;

function campaignJson(row: Record<string, unknown>): Campaign {
  return iso(row) as Campaign;
}

app.openapi(
  createRoute({
    method: "get", path: "/", summary: "List campaigns", security,
    request: { query: PageQuery.extend({ client_id: UuidParam.optional(), status: CampaignStatus.optional() }) },
    responses: { 200: json(pageOf(CampaignSchema, "CampaignPage"), "A page of campaigns"), ...errorResponses(400, 401) },
  }),
  async (c) => {
    const { limit, cursor, client_id, status } = c.req.valid("query");
    const rows = await asUser(c.var.caller!.claims, (tx) =>
      q.listCampaigns(tx, { limit, cursor: decodeCursor(cursor), clientId: client_id, status }));
    const p = page(rows as unknown as Array<{ created_at: Date; id: string }>, limit);
    return c.json({ data: p.data.map((r) => campaignJson(r as never)), next_cursor: p.next_cursor }, 200);
  },
);

app.openapi(
  createRoute({
    method: "post", path: "/", summary: "Create a campaign (draft) with its sequence", security,
    request: { headers: IdempotencyHeader, body: { required: true, content: { "application/json": { schema: CreateCampaignSchema } } } },
    responses: { 201: json(CampaignSchema, "The new draft campaign"), ...errorResponses(400, 401, 403, 409, 422) },
  }),
  async (c) => {
    const { steps, ...values } = c.req.valid("json");
    const sequence = steps ?? StepsInput.parse(DEFAULT_SEQUENCE);
    const row = await asUser(c.var.caller!.claims, async (tx) => {
      const id = await q.createCampaign(tx, values, sequence);
      return q.getCampaign(tx, id);
    }, "campaign created");
    return c.json(campaignJson(row!), 201);
  },
);

// Static paths first: /{id} would otherwise take "senders" and "approvals" as an id.
// ---------------------------------------------------------------------------------------------
// Senders
// ---------------------------------------------------------------------------------------------

type Sender = z.infer<typeof SenderSchema>;

app.openapi(
  createRoute({
    method: "get", path: "/senders", summary: "List senders (mailboxes, LinkedIn accounts, numbers) with today's cap", security,
    request: { query: z.object({ client_id: UuidParam.optional() }) },
    responses: { 200: json(z.object({ data: z.array(SenderSchema) }), "Senders"), ...errorResponses(400, 401) },
  }),
  async (c) => {
    const rows = await asUser(c.var.caller!.claims, (tx) => q.listSenders(tx, c.req.valid("query").client_id));
    return c.json({ data: rows.map((r) => iso(r) as Sender) }, 200);
  },
);

app.post("/senders", idempotent("campaigns"));
app.openapi(
  createRoute({
    method: "post", path: "/senders", summary: "Add a sender", security,
    request: { headers: IdempotencyHeader, body: { required: true, content: { "application/json": { schema: SenderInput } } } },
    responses: { 201: json(SenderSchema, "The sender"), ...errorResponses(400, 401, 403, 409, 422) },
  }),
  async (c) => {
    const row = await asUser(c.var.caller!.claims, (tx) => q.createSender(tx, c.req.valid("json")), "sender added");
    return c.json(iso(row!) as Sender, 201);
  },
);

app.openapi(
  createRoute({
    method: "patch", path: "/senders/{id}", summary: "Change a sender's caps, warm-up or status", security,
    request: { params: IdParams, body: { required: true, content: { "application/json": { schema: UpdateSenderSchema } } } },
    responses: { 200: json(SenderSchema, "The sender"), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const row = await asUser(c.var.caller!.claims, (tx) => q.updateSender(tx, c.req.valid("param").id, c.req.valid("json")), "sender changed");
    if (!row) throw new AppError("not_found", "sender not found");
    return c.json(iso(row) as Sender, 200);
  },
);

// ---------------------------------------------------------------------------------------------
// Approval queue and the emergency pause
// ---------------------------------------------------------------------------------------------

app.openapi(
  createRoute({
    method: "get", path: "/approvals", summary: "Messages waiting for approval (co-pilot and manual modes), soonest expiry first", security,
    request: { query: z.object({ client_id: UuidParam.optional(), campaign_id: UuidParam.optional(), limit: z.coerce.number().int().min(1).max(200).default(50) }) },
    responses: { 200: json(z.object({ data: z.array(ApprovalSchema) }), "Queued messages"), ...errorResponses(400, 401) },
  }),
  async (c) => {
    const { client_id, campaign_id, limit } = c.req.valid("query");
    const rows = await asUser(c.var.caller!.claims, (tx) => q.listApprovals(tx, { clientId: client_id, campaignId: campaign_id, limit }));
    return c.json({ data: rows.map((r) => iso(r) as z.infer<typeof ApprovalSchema>) }, 200);
  },
);

app.openapi(
  createRoute({
    method: "post", path: "/approvals/{id}", summary: "Approve (optionally edited) or reject a queued message before it expires", security,
    request: { params: IdParams, body: { required: true, content: { "application/json": { schema: DecisionSchema } } } },
    responses: {
      200: json(z.object({ id: z.string(), status: z.string() }), "The decision"),
      ...errorResponses(400, 401, 403, 404, 409),
    },
  }),
  async (c) => {
    const { decision, subject, body } = c.req.valid("json");
    const row = await asUser(c.var.caller!.claims, (tx) =>
      q.decideApproval(tx, c.req.valid("param").id, decision === "approve", subject, body), `message ${decision}d`);
    if (row.last_refusal === "approval_expired") {
      throw new AppError("conflict", "the approval window of this message has closed; it was skipped, never sent late");
    }
    return c.json({ id: row.id as string, status: row.status as string }, 200);
  },
);

const ClientParams = z.object({ clientId: UuidParam });
const PauseState = z.object({
  id: z.string(), emergency_paused: z.boolean(), emergency_paused_at: z.string().nullable(), emergency_pause_reason: z.string().nullable(),
}).openapi("EmergencyPause");

app.openapi(
  createRoute({
    method: "post", path: "/clients/{clientId}/emergency-pause", summary: "Emergency pause: stop every send of the client before the next tick (owner or admin)", security,
    request: { params: ClientParams, body: { required: true, content: { "application/json": { schema: z.object({ reason: z.string().min(1).max(500) }) } } } },
    responses: { 200: json(PauseState, "Paused"), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const row = await asUser(c.var.caller!.claims, (tx) =>
      q.setEmergencyPause(tx, c.req.valid("param").clientId, true, c.req.valid("json").reason), "emergency pause");
    return c.json(iso(row) as z.infer<typeof PauseState>, 200);
  },
);

app.openapi(
  createRoute({
    method: "delete", path: "/clients/{clientId}/emergency-pause", summary: "Lift the emergency pause (owner or admin)", security,
    request: { params: ClientParams },
    responses: { 200: json(PauseState, "Resumed"), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const row = await asUser(c.var.caller!.claims, (tx) =>
      q.setEmergencyPause(tx, c.req.valid("param").clientId, false, null), "emergency pause lifted");
    return c.json(iso(row) as z.infer<typeof PauseState>, 200);
  },
);

app.openapi(
  createRoute({
    method: "get", path: "/{id}", summary: "Read a campaign with its steps, variants and sender pool", security,
    request: { params: IdParams },
    responses: { 200: json(CampaignSchema, "The campaign"), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const row = await asUser(c.var.caller!.claims, (tx) => q.getCampaign(tx, c.req.valid("param").id));
    if (!row) throw notFound();
    return c.json(campaignJson(row), 200);
  },
);

app.openapi(
  createRoute({
    method: "patch", path: "/{id}", summary: "Update a campaign's details", security,
    request: { params: IdParams, body: { required: true, content: { "application/json": { schema: UpdateCampaignSchema } } } },
    responses: { 200: json(CampaignSchema, "The campaign"), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const row = await asUser(c.var.caller!.claims, async (tx) => {
      if (!(await q.updateCampaign(tx, id, c.req.valid("json")))) return undefined;
      return q.getCampaign(tx, id);
    }, "campaign updated");
    if (!row) throw notFound();
    return c.json(campaignJson(row), 200);
  },
);

app.openapi(
  createRoute({
    method: "put", path: "/{id}/steps", summary: "Replace the sequence (an approved campaign goes back for approval)", security,
    request: { params: IdParams, body: { required: true, content: { "application/json": { schema: z.object({ steps: z.array(StepInput).min(1).max(20) }) } } } },
    responses: { 200: json(CampaignSchema, "The campaign"), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const row = await asUser(c.var.caller!.claims, async (tx) => {
      if (!(await q.replaceSteps(tx, id, c.req.valid("json").steps))) return undefined;
      return q.getCampaign(tx, id);
    }, "sequence changed");
    if (!row) throw notFound();
    return c.json(campaignJson(row), 200);
  },
);

for (const action of ["submit", "approve", "pause", "resume"] as const) {
  const summary = {
    submit: "Submit for approval (owner or member)",
    approve: "Approve and activate (client owner or admin)",
    pause: "Pause an active campaign",
    resume: "Resume a paused campaign (approved ones only)",
  }[action];
  app.openapi(
    createRoute({
      method: "post", path: `/{id}/${action}`, summary, security,
      request: {
        params: IdParams,
        body: { required: false, content: { "application/json": { schema: z.object({ reason: z.string().max(500).optional() }) } } },
      },
      responses: { 200: json(CampaignSchema, "The campaign"), ...errorResponses(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const body = await c.req.json().catch(() => ({})) as { reason?: string };
      const row = await asUser(c.var.caller!.claims, async (tx) => {
        await q.campaignAction(tx, id, action, body?.reason);
        return q.getCampaign(tx, id);
      }, `campaign ${action}`);
      if (!row) throw notFound();
      return c.json(campaignJson(row), 200);
    },
  );
}

app.openapi(
  createRoute({
    method: "get", path: "/{id}/capacity", summary: "Capacity planner: the real daily capacity and the cap that binds", security,
    request: { params: IdParams },
    responses: { 200: json(CapacitySchema, "Capacity"), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const cap = await asUser(c.var.caller!.claims, (tx) => q.campaignCapacity(tx, c.req.valid("param").id));
    if (!cap) throw notFound();
    return c.json(cap, 200);
  },
);

app.openapi(
  createRoute({
    method: "get", path: "/{id}/refusals", summary: "Gate refusals of this campaign's steps, by reason", security,
    request: { params: IdParams },
    responses: {
      200: json(z.object({ data: z.array(z.object({ reason: z.string(), outcome: z.string(), count: z.number(), last_at: z.string() })) }), "Refusals"),
      ...errorResponses(400, 401, 404),
    },
  }),
  async (c) => {
    const rows = await asUser(c.var.caller!.claims, (tx) => q.refusalSummary(tx, c.req.valid("param").id));
    return c.json({ data: rows.map((r) => iso(r) as never) }, 200);
  },
);

app.openapi(
  createRoute({
    method: "put", path: "/{id}/senders", summary: "Set the campaign's sender pool", security,
    request: { params: IdParams, body: { required: true, content: { "application/json": { schema: z.object({ sender_ids: z.array(UuidParam).max(500) }) } } } },
    responses: { 200: json(CampaignSchema, "The campaign"), ...errorResponses(400, 401, 403, 404, 409) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const row = await asUser(c.var.caller!.claims, async (tx) => {
      if (!(await q.setSenderPool(tx, id, c.req.valid("json").sender_ids))) return undefined;
      return q.getCampaign(tx, id);
    }, "sender pool changed");
    if (!row) throw notFound();
    return c.json(campaignJson(row), 200);
  },
);

export default app;
serveFunction(app);
