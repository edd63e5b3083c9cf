// The CRM integration (HubSpot) for client users: push a meeting or a lead now, by hand, and see how
// the push stands (configured or not, meetings synced and pending, the last failure). Meetings are
// pushed automatically by the closer engine after every change (flow-crm-sync); this is the manual
// lever for owners, members and admins. Runs as the caller under RLS: another client's meeting is 404.
import { createRoute, z } from "@hono/zod-openapi";
import { requireUser, roleIn, type Caller } from "../../shared/auth/caller.ts";
import { providerStatus } from "../../shared/config/providers.ts";
import { asService, asUser, db } from "../../shared/db/client.ts";
import { CRM_SYNC_TOPIC, recordCrmFailure, syncLeadToCrm, syncMeetingToCrm } from "../../shared/engines/closer.ts";
import { enqueue, publishSoon } from "../../shared/flows/outbox.ts";
import { createFunctionApp } from "../../shared/http/app.ts";
import { AppError } from "../../shared/http/errors.ts";
import { serveFunction } from "../../shared/http/serve.ts";
import { hubspotConfigured, hubspotFromEnv } from "../../shared/integrations/hubspot.ts";
import { ProviderError } from "../../shared/integrations/provider-http.ts";
import { errorResponses, BEARER as security, jsonContent as json } from "../../shared/schemas/common.ts";

const app = createFunctionApp("crm", {
  title: "CRM",
  description: "Push meetings and leads to the client's CRM (HubSpot) by hand, and read the state of the push.",
});
app.use("*", requireUser());

const SyncSchema = z.object({
  meeting_id: z.string().uuid().optional(),
  lead_id: z.string().uuid().optional(),
  client_id: z.string().uuid().optional().openapi({ description: "With lead_id: which of your clients' view of the lead" }),
}).strict().refine((b) => !b.meeting_id !== !b.lead_id, { message: "give exactly one of meeting_id and lead_id", path: ["meeting_id"] })
  .openapi("CrmSync");

const SyncResultSchema = z.object({
  status: z.enum(["synced", "skipped"]),
  reason: z.string().optional(),
  meeting_id: z.string().optional(),
  crm_id: z.string().optional().openapi({ description: "The meeting's id in HubSpot" }),
  contact_id: z.string().optional().openapi({ description: "The contact's id in HubSpot" }),
  synced_at: z.string().optional(),
}).openapi("CrmSyncResult");

const StatusSchema = z.object({
  provider: z.literal("hubspot"),
  status: z.enum(["configured", "sandbox", "not_configured"]),
  meetings: z.object({
    total: z.number().int(),
    synced: z.number().int().openapi({ description: "Pushed since their last change" }),
    pending: z.number().int().openapi({ description: "Changed since their last push, or never pushed" }),
    last_synced_at: z.string().nullable(),
  }),
  last_error: z.object({ at: z.string(), message: z.string(), retryable: z.boolean(), entity_type: z.string(), entity_id: z.string().nullable() }).nullable(),
}).openapi("CrmStatus");

function requireWriter(caller: Caller, clientId: string) {
  const role = roleIn(caller, clientId);
  if (!role) throw new AppError("not_found", "not found");
  if (role === "viewer") throw new AppError("forbidden", "viewers cannot push to the CRM");
}

app.openapi(
  createRoute({
    method: "post", path: "/sync", summary: "Push a meeting (with its lead) or a lead to the CRM now", security,
    request: { body: { required: true, content: { "application/json": { schema: SyncSchema } } } },
    responses: {
      200: json(SyncResultSchema, "Pushed, or skipped with the reason (e.g. the lead has no email)"),
      ...errorResponses(400, 401, 403, 404, 503),
    },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const caller = c.var.caller!;
    // What the caller may see and change decides the target; the push itself runs as the service.
    type Target = { meetingId: string; clientId: string } | { leadId: string; clientId: string };
    const target: Target = await asUser(caller.claims, async (tx): Promise<Target> => {
      if (body.meeting_id) {
        const [m] = await tx`select id, client_id from public.meetings where id = ${body.meeting_id}`;
        if (!m) throw new AppError("not_found", "meeting not found");
        requireWriter(caller, m.client_id);
        return { meetingId: m.id as string, clientId: m.client_id as string };
      }
      const [a] = await tx`
        select lead_id, client_id from public.lead_assignments
        where lead_id = ${body.lead_id!} ${body.client_id ? tx`and client_id = ${body.client_id}` : tx``}
        order by (ended_at is null) desc, created_at desc limit 1`;
      if (!a) throw new AppError("not_found", "lead not found");
      requireWriter(caller, a.client_id);
      return { leadId: a.lead_id as string, clientId: a.client_id as string };
    });
    if (!hubspotConfigured()) throw new AppError("service_unavailable", "no CRM is configured (HUBSPOT_ACCESS_TOKEN)");
    const hubspot = hubspotFromEnv();
    try {
      const result = "meetingId" in target
        ? await syncMeetingToCrm(target.meetingId, hubspot)
        : await syncLeadToCrm(target.leadId, target.clientId, hubspot);
      if (result.status === "skipped") return c.json({ status: "skipped" as const, reason: result.reason }, 200);
      return c.json({
        status: "synced" as const, meeting_id: result.meetingId, crm_id: result.crmId, contact_id: result.contactId, synced_at: result.syncedAt,
      }, 200);
    } catch (err) {
      const failure = "meetingId" in target ? { meetingId: target.meetingId } : { leadId: target.leadId, clientId: target.clientId };
      await recordCrmFailure(failure, err);
      const retryable = !(err instanceof ProviderError) || err.retryable;
      if (retryable) {
        // try again in the background, with QStash's backoff
        await asService({ role: "service:crm", reason: "CRM push retried" }, (tx) =>
          enqueue(tx, CRM_SYNC_TOPIC, "meetingId" in target ? { meeting_id: target.meetingId } : { lead_id: target.leadId, client_id: target.clientId }, { clientId: target.clientId }));
        await publishSoon(db());
      }
      throw new AppError("service_unavailable", `the CRM push failed: ${err instanceof Error ? err.message : String(err)}`, {
        retryable, queued_for_retry: retryable,
      });
    }
  },
);

app.openapi(
  createRoute({
    method: "get", path: "/status", summary: "How the CRM push stands for your clients (or one)", security,
    request: { query: z.object({ client_id: z.string().uuid().optional() }) },
    responses: { 200: json(StatusSchema, "The CRM and its push state"), ...errorResponses(400, 401) },
  }),
  async (c) => {
    const { client_id } = c.req.valid("query");
    const { counts, failure } = await asUser(c.var.caller!.claims, async (tx) => {
      const [counts] = await tx`
        select count(*)::int as total,
               count(*) filter (where crm_synced_at is not null and crm_synced_at >= updated_at)::int as synced,
               max(crm_synced_at) as last_synced_at
        from public.meetings where true ${client_id ? tx`and client_id = ${client_id}` : tx``}`;
      const [failure] = await tx`
        select occurred_at, data, entity_type, entity_id from public.events
        where kind = 'crm_sync_failed' ${client_id ? tx`and client_id = ${client_id}` : tx``}
        order by occurred_at desc limit 1`;
      return { counts, failure };
    });
    return c.json({
      provider: "hubspot" as const,
      status: providerStatus("hubspot"),
      meetings: {
        total: counts.total, synced: counts.synced, pending: counts.total - counts.synced,
        last_synced_at: counts.last_synced_at ? (counts.last_synced_at as Date).toISOString() : null,
      },
      last_error: failure
        ? {
          at: (failure.occurred_at as Date).toISOString(), message: String(failure.data?.error ?? ""),
          retryable: Boolean(failure.data?.retryable), entity_type: failure.entity_type as string, entity_id: failure.entity_id as string | null,
        }
        : null,
    }, 200);
  },
);

export default app;
serveFunction(app);
