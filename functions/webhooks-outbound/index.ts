// A client's own webhooks: URLs they register for events about their leads and meetings
// (lead.replied, meeting.booked, lead.won, …). Each delivery is signed per Standard Webhooks with the
// endpoint's whsec_ secret, shown once at registration; deliveries are retried through QStash, logged
// per attempt, and can be replayed by hand. Owners and members manage them, viewers read; RLS keeps
// every client to its own endpoints and log.
import { createRoute, z } from "@hono/zod-openapi";
import { requireUser, roleIn, type Caller } from "../../shared/auth/caller.ts";
import { asUser, db, type Tx } from "../../shared/db/client.ts";
import { CLIENT_EVENT_TYPES, queueDeliveryReplay, webhookUrlProblem } from "../../shared/engines/client-events.ts";
import { publishSoon } from "../../shared/flows/outbox.ts";
import { createFunctionApp } from "../../shared/http/app.ts";
import { AppError } from "../../shared/http/errors.ts";
import { idempotent } from "../../shared/http/idempotency.ts";
import { decodeCursor, page } from "../../shared/http/pagination.ts";
import { serveFunction } from "../../shared/http/serve.ts";
import { generateWebhookSecret } from "../../shared/webhooks/standard-webhooks.ts";
import {
  errorResponses, IdempotencyHeader, PageQuery, pageOf, UuidParam, BEARER as security, isoDates as iso, jsonContent as json,
} from "../../shared/schemas/common.ts";

const app = createFunctionApp("webhooks-outbound", {
  title: "Outbound webhooks",
  description: "Register URLs that receive your clients' lead and meeting events, signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature); see the delivery log and replay deliveries.",
});
app.use("*", requireUser());
app.post("/", idempotent("webhooks-outbound"));

const EventType = z.enum(CLIENT_EVENT_TYPES);

const webhookUrl = z.string().trim().max(2000).superRefine((url, ctx) => {
  const problem = webhookUrlProblem(url);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});
const events = z.array(EventType).min(1).max(CLIENT_EVENT_TYPES.length).transform((e) => [...new Set(e)]);

const WebhookSchema = z.object({
  id: z.string().uuid(),
  client_id: z.string().uuid(),
  url: z.string(),
  events: z.array(z.string()),
  active: z.boolean(),
  created_by: z.string().uuid().nullable(),
  created_at: z.string(),
}).openapi("ClientWebhook");

const CreatedWebhookSchema = WebhookSchema.extend({
  secret: z.string().openapi({ description: "whsec_… — verify our signatures with it. Shown only now: store it." }),
}).openapi("ClientWebhookCreated");

const CreateSchema = z.object({
  url: webhookUrl,
  events,
  client_id: z.string().uuid().optional().openapi({ description: "Required when you write for several clients" }),
}).strict().openapi("CreateClientWebhook");

const UpdateSchema = z.object({ url: webhookUrl.optional(), events: events.optional(), active: z.boolean().optional() })
  .strict().refine((b) => Object.keys(b).length > 0, { message: "nothing to change" }).openapi("UpdateClientWebhook");

const DeliverySchema = z.object({
  id: z.string().uuid(),
  webhook_id: z.string().uuid(),
  client_id: z.string().uuid(),
  event_type: z.string(),
  event_id: z.string().openapi({ description: "Sent as webhook-id; the same on every retry and replay" }),
  payload: z.object({ type: z.string(), timestamp: z.string(), data: z.record(z.string(), z.unknown()) }),
  status: z.enum(["pending", "delivered", "failed"]),
  attempts: z.number().int(),
  last_status: z.number().int().nullable().openapi({ description: "Your endpoint's last HTTP status; null when it never answered" }),
  last_error: z.string().nullable(),
  created_at: z.string(),
  delivered_at: z.string().nullable(),
}).openapi("WebhookDelivery");

const WEBHOOK_COLUMNS = "id, client_id, url, events, active, created_by, created_at";
const DELIVERY_COLUMNS = "id, webhook_id, client_id, event_type, event_id, payload, status, attempts, last_status, last_error, created_at, delivered_at";

type Webhook = z.infer<typeof WebhookSchema>;
type Delivery = z.infer<typeof DeliverySchema>;

function requireWriter(caller: Caller, clientId: string, notFound: string) {
  const role = roleIn(caller, clientId);
  if (!role) throw new AppError("not_found", notFound);
  if (role === "viewer") throw new AppError("forbidden", "viewers cannot manage webhooks");
}

/** The client a new webhook is for: the one given, else the caller's only writable client. */
function targetClient(caller: Caller, clientId: string | undefined): string {
  if (clientId) {
    requireWriter(caller, clientId, "client not found");
    return clientId;
  }
  const writable = caller.memberships.filter((m) => m.role !== "viewer");
  if (writable.length === 1) return writable[0].clientId;
  if (writable.length === 0 && caller.memberships.length > 0) throw new AppError("forbidden", "viewers cannot manage webhooks");
  const why = caller.isAdmin ? "required: name the client" : writable.length === 0 ? "you cannot manage webhooks for any client" : "required: you write for several clients";
  throw new AppError("validation_failed", "invalid json: client_id", [{ field: "client_id", message: why }]);
}

async function getWebhook(tx: Tx, id: string): Promise<Webhook | undefined> {
  const [row] = await tx`select ${tx.unsafe(WEBHOOK_COLUMNS)} from public.client_webhooks where id = ${id}`;
  return row ? (iso(row) as Webhook) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

app.openapi(
  createRoute({
    method: "post", path: "/", summary: "Register a webhook URL for events; the signing secret is returned once", security,
    request: { headers: IdempotencyHeader, body: { required: true, content: { "application/json": { schema: CreateSchema } } } },
    responses: { 201: json(CreatedWebhookSchema, "The webhook, with its secret (shown only now)"), ...errorResponses(400, 401, 403, 404, 422) },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const caller = c.var.caller!;
    const clientId = targetClient(caller, body.client_id);
    const secret = generateWebhookSecret();
    const row = await asUser(caller.claims, async (tx) => {
      const [r] = await tx`
        insert into public.client_webhooks (client_id, url, events, secret, created_by)
        values (${clientId}, ${body.url}, ${body.events}, ${secret}, ${caller.userId})
        returning ${tx.unsafe(WEBHOOK_COLUMNS)}`;
      return r;
    }, "webhook registered");
    return c.json({ ...(iso(row) as Webhook), secret }, 201);
  },
);

app.openapi(
  createRoute({
    method: "get", path: "/", summary: "List your clients' webhooks (never their secrets)", security,
    request: { query: PageQuery.extend({ client_id: z.string().uuid().optional() }) },
    responses: { 200: json(pageOf(WebhookSchema, "ClientWebhookPage"), "A page of webhooks, newest first"), ...errorResponses(400, 401) },
  }),
  async (c) => {
    const { limit, cursor, client_id } = c.req.valid("query");
    const after = decodeCursor(cursor);
    const rows = await asUser(c.var.caller!.claims, (tx) => tx`
      select ${tx.unsafe(WEBHOOK_COLUMNS)} from public.client_webhooks
      where true ${client_id ? tx`and client_id = ${client_id}` : tx``}
        ${after ? tx`and (created_at, id) < (${after.createdAt}::timestamptz, ${after.id}::uuid)` : tx``}
      order by created_at desc, id desc limit ${limit + 1}`);
    const p = page(rows as unknown as Array<{ created_at: Date; id: string }>, limit);
    return c.json({ data: p.data.map((r) => iso(r) as Webhook), next_cursor: p.next_cursor }, 200);
  },
);

app.openapi(
  createRoute({
    method: "get", path: "/events", summary: "The event types a webhook can subscribe to", security,
    responses: { 200: json(z.object({ data: z.array(z.string()) }), "Event types"), ...errorResponses(401) },
  }),
  (c) => c.json({ data: [...CLIENT_EVENT_TYPES] }, 200),
);

// ---------------------------------------------------------------------------------------------
// Delivery log (registered before /{id} so "deliveries" is never read as an id)
// ---------------------------------------------------------------------------------------------

app.openapi(
  createRoute({
    method: "get", path: "/deliveries", summary: "The delivery log: every event sent to your webhooks, its attempts and last answer", security,
    request: {
      query: PageQuery.extend({
        client_id: z.string().uuid().optional(),
        webhook_id: z.string().uuid().optional(),
        status: z.enum(["pending", "delivered", "failed"]).optional(),
        event_type: EventType.optional(),
      }),
    },
    responses: { 200: json(pageOf(DeliverySchema, "WebhookDeliveryPage"), "A page of deliveries, newest first"), ...errorResponses(400, 401) },
  }),
  async (c) => {
    const { limit, cursor, client_id, webhook_id, status, event_type } = c.req.valid("query");
    const after = decodeCursor(cursor);
    const rows = await asUser(c.var.caller!.claims, (tx) => tx`
      select ${tx.unsafe(DELIVERY_COLUMNS)} from public.webhook_deliveries
      where true
        ${client_id ? tx`and client_id = ${client_id}` : tx``}
        ${webhook_id ? tx`and webhook_id = ${webhook_id}` : tx``}
        ${status ? tx`and status = ${status}` : tx``}
        ${event_type ? tx`and event_type = ${event_type}` : tx``}
        ${after ? tx`and (created_at, id) < (${after.createdAt}::timestamptz, ${after.id}::uuid)` : tx``}
      order by created_at desc, id desc limit ${limit + 1}`);
    const p = page(rows as unknown as Array<{ created_at: Date; id: string }>, limit);
    return c.json({ data: p.data.map((r) => iso(r) as Delivery), next_cursor: p.next_cursor }, 200);
  },
);

const IdParams = z.object({ id: UuidParam });

app.openapi(
  createRoute({
    method: "post", path: "/deliveries/{id}/replay", summary: "Send a delivery again (failed or delivered), with a fresh retry schedule", security,
    request: { params: IdParams },
    responses: { 202: json(DeliverySchema, "Queued again"), ...errorResponses(400, 401, 403, 404, 409) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const caller = c.var.caller!;
    const row = await asUser(caller.claims, async (tx) => {
      const [d] = await tx`select client_id from public.webhook_deliveries where id = ${id}`;
      if (!d) throw new AppError("not_found", "delivery not found");
      requireWriter(caller, d.client_id, "delivery not found");
      if (!(await queueDeliveryReplay(tx, id, d.client_id))) {
        throw new AppError("conflict", "this delivery is still being attempted; replay it once it has failed or been delivered");
      }
      const [r] = await tx`select ${tx.unsafe(DELIVERY_COLUMNS)} from public.webhook_deliveries where id = ${id}`;
      return r;
    }, "delivery replayed by hand");
    await publishSoon(db());
    return c.json(iso(row) as Delivery, 202);
  },
);

// ---------------------------------------------------------------------------------------------
// One webhook
// ---------------------------------------------------------------------------------------------

app.openapi(
  createRoute({
    method: "get", path: "/{id}", summary: "Read a webhook (without its secret)", security,
    request: { params: IdParams },
    responses: { 200: json(WebhookSchema, "The webhook"), ...errorResponses(400, 401, 404) },
  }),
  async (c) => {
    const row = await asUser(c.var.caller!.claims, (tx) => getWebhook(tx, c.req.valid("param").id));
    if (!row) throw new AppError("not_found", "webhook not found");
    return c.json(row, 200);
  },
);

app.openapi(
  createRoute({
    method: "patch", path: "/{id}", summary: "Change a webhook's URL or events, or pause it (active: false)", security,
    request: { params: IdParams, body: { required: true, content: { "application/json": { schema: UpdateSchema } } } },
    responses: { 200: json(WebhookSchema, "The updated webhook"), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const caller = c.var.caller!;
    const row = await asUser(caller.claims, async (tx) => {
      const current = await getWebhook(tx, id);
      if (!current) throw new AppError("not_found", "webhook not found");
      requireWriter(caller, current.client_id, "webhook not found");
      await tx`update public.client_webhooks set ${tx(c.req.valid("json") as Record<string, unknown>)} where id = ${id}`;
      return getWebhook(tx, id);
    }, "webhook changed");
    return c.json(row!, 200);
  },
);

app.openapi(
  createRoute({
    method: "delete", path: "/{id}", summary: "Delete a webhook and its delivery log", security,
    request: { params: IdParams },
    responses: { 204: { description: "Deleted" }, ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const caller = c.var.caller!;
    await asUser(caller.claims, async (tx) => {
      const current = await getWebhook(tx, id);
      if (!current) throw new AppError("not_found", "webhook not found");
      requireWriter(caller, current.client_id, "webhook not found");
      await tx`delete from public.client_webhooks where id = ${id}`;
    }, "webhook deleted");
    return c.body(null, 204);
  },
);

export default app;
serveFunction(app);
