// Agency admins create, list and update clients and manage their members. Every query still
// runs as the caller under RLS; requireAdmin only makes the 403 explicit.
import { createRoute, z } from "@hono/zod-openapi";
import { requireAdmin, requireUser } from "../../shared/auth/caller.ts";
import { asUser, db } from "../../shared/db/client.ts";
import * as q from "../../shared/db/queries/customers.ts";
import { createFunctionApp } from "../../shared/http/app.ts";
import { AppError } from "../../shared/http/errors.ts";
import { idempotent } from "../../shared/http/idempotency.ts";
import { decodeCursor, page } from "../../shared/http/pagination.ts";
import { serveFunction } from "../../shared/http/serve.ts";
import {
  errorResponses, IdempotencyHeader, PageQuery, pageOf, UuidParam, BEARER as security, isoDates as iso, jsonContent as json,
} from "../../shared/schemas/common.ts";
import {
  AddMemberSchema, ClientSchema, ClientStatus, CreateClientSchema, MemberSchema, UpdateClientSchema, UpdateMemberSchema,
} from "../../shared/schemas/customers.ts";

const app = createFunctionApp("customers", {
  title: "Customers",
  description: "Agency admins manage clients (plan, quota, status, emergency pause, permission mode) and their members.",
});
// Registered after the OpenAPI document route, so the document stays public.
app.use("*", requireUser(), requireAdmin());
app.post("/", idempotent("customers"));

const notFound = () => new AppError("not_found", "client not found");

app.openapi(
  createRoute({
    method: "get", path: "/", summary: "List clients", security,
    request: { query: PageQuery.extend({ status: ClientStatus.optional() }) },
    responses: { 200: json(pageOf(ClientSchema, "ClientPage"), "A page of clients"), ...errorResponses(400, 401, 403) },
  }),
  async (c) => {
    const { limit, cursor, status } = c.req.valid("query");
    const rows = await asUser(c.var.caller!.claims, (tx) => q.listClients(tx, { limit, cursor: decodeCursor(cursor), status }));
    const p = page(rows as unknown as Array<{ created_at: Date; id: string }>, limit);
    return c.json({ data: p.data.map(iso) as z.infer<typeof ClientSchema>[], next_cursor: p.next_cursor }, 200);
  },
);

app.openapi(
  createRoute({
    method: "post", path: "/", summary: "Create a client", security,
    request: { headers: IdempotencyHeader, body: { required: true, content: { "application/json": { schema: CreateClientSchema } } } },
    responses: { 201: json(ClientSchema, "The new client"), ...errorResponses(400, 401, 403, 409, 422) },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const row = await asUser(c.var.caller!.claims, (tx) => q.createClient(tx, body), "client created");
    return c.json(iso(row) as z.infer<typeof ClientSchema>, 201);
  },
);

const IdParams = z.object({ id: UuidParam });

app.openapi(
  createRoute({
    method: "get", path: "/{id}", summary: "Read a client", security,
    request: { params: IdParams },
    responses: { 200: json(ClientSchema, "The client"), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const row = await asUser(c.var.caller!.claims, (tx) => q.getClient(tx, id));
    if (!row) throw notFound();
    return c.json(iso(row) as z.infer<typeof ClientSchema>, 200);
  },
);

app.openapi(
  createRoute({
    method: "patch", path: "/{id}", summary: "Update a client (plan, quota, status, emergency pause, permission mode)", security,
    request: { params: IdParams, body: { required: true, content: { "application/json": { schema: UpdateClientSchema } } } },
    responses: { 200: json(ClientSchema, "The updated client"), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const row = await asUser(c.var.caller!.claims, (tx) => q.updateClient(tx, id, c.req.valid("json")), "client updated");
    if (!row) throw notFound();
    return c.json(iso(row) as z.infer<typeof ClientSchema>, 200);
  },
);

app.openapi(
  createRoute({
    method: "get", path: "/{id}/members", summary: "List a client's members", security,
    request: { params: IdParams },
    responses: { 200: json(z.object({ data: z.array(MemberSchema) }), "The members"), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const rows = await asUser(c.var.caller!.claims, async (tx) => {
      if (!(await q.getClient(tx, id))) throw notFound();
      return q.listMembers(tx, id);
    });
    const emails = await q.emailsByUserId(db(), rows.map((r) => r.user_id));
    const data = rows.map((r) => ({ ...iso(r), email: emails.get(r.user_id) ?? null })) as z.infer<typeof MemberSchema>[];
    return c.json({ data }, 200);
  },
);

app.post("/:id/members", idempotent("customers"));
app.openapi(
  createRoute({
    method: "post", path: "/{id}/members", summary: "Add a member (an existing user, by email) or change their role", security,
    request: { params: IdParams, headers: IdempotencyHeader, body: { required: true, content: { "application/json": { schema: AddMemberSchema } } } },
    responses: { 201: json(MemberSchema, "The membership"), ...errorResponses(400, 401, 403, 404, 422) },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const { email, role } = c.req.valid("json");
    const userId = await q.findUserIdByEmail(db(), email);
    if (!userId) {
      throw new AppError("not_found", "no user with this email", [{ field: "email", message: "the user must sign up first" }]);
    }
    const row = await asUser(c.var.caller!.claims, async (tx) => {
      if (!(await q.getClient(tx, id))) throw notFound();
      return q.upsertMember(tx, id, userId, role);
    }, "member added");
    return c.json({ ...iso(row), email } as z.infer<typeof MemberSchema>, 201);
  },
);

const MemberParams = z.object({ id: UuidParam, userId: UuidParam });

app.openapi(
  createRoute({
    method: "patch", path: "/{id}/members/{userId}", summary: "Change a member's role", security,
    request: { params: MemberParams, body: { required: true, content: { "application/json": { schema: UpdateMemberSchema } } } },
    responses: { 200: json(MemberSchema, "The membership"), ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id, userId } = c.req.valid("param");
    const row = await asUser(c.var.caller!.claims, (tx) => q.updateMemberRole(tx, id, userId, c.req.valid("json").role));
    if (!row) throw new AppError("not_found", "member not found");
    const emails = await q.emailsByUserId(db(), [userId]);
    return c.json({ ...iso(row), email: emails.get(userId) ?? null } as z.infer<typeof MemberSchema>, 200);
  },
);

app.openapi(
  createRoute({
    method: "delete", path: "/{id}/members/{userId}", summary: "Remove a member", security,
    request: { params: MemberParams },
    responses: { 204: { description: "Removed" }, ...errorResponses(400, 401, 403, 404) },
  }),
  async (c) => {
    const { id, userId } = c.req.valid("param");
    const removed = await asUser(c.var.caller!.claims, (tx) => q.removeMember(tx, id, userId));
    if (!removed) throw new AppError("not_found", "member not found");
    return c.body(null, 204);
  },
);

export default app;
serveFunction(app);
