// CRM sync flow: pushes one meeting (with its lead) or one lead to HubSpot, as the closer engine
// queues after every meeting change. Idempotent (the meeting's crm_id is remembered, contacts are
// upserted by email), so a redelivered message changes nothing. A retryable failure (429, 5xx,
// timeout) answers 5xx so QStash retries with backoff; a permanent one (401, a rejected property) is
// recorded for GET /crm/status and not retried. Without a CRM configured the message is dropped.
// Invoked by QStash.
import { z } from "@hono/zod-openapi";
import { recordCrmFailure, syncLeadToCrm, syncMeetingToCrm } from "../../shared/engines/closer.ts";
import { createFlowFunction } from "../../shared/flows/flow-app.ts";
import { serveFunction } from "../../shared/http/serve.ts";
import { hubspotConfigured, hubspotFromEnv } from "../../shared/integrations/hubspot.ts";
import { ProviderError } from "../../shared/integrations/provider-http.ts";

const Input = z.object({
  meeting_id: z.string().uuid().optional(),
  lead_id: z.string().uuid().optional(),
  client_id: z.string().uuid().optional(),
}).refine((i) => i.meeting_id || (i.lead_id && i.client_id), { message: "meeting_id, or lead_id with client_id" });

const app = createFlowFunction(
  "flow-crm-sync",
  "flow.crm-sync",
  "Push a meeting and its lead (or a lead) to the CRM (HubSpot)",
  Input,
  async ({ input, log }) => {
    if (!hubspotConfigured()) return { processed: 0, more: false, skipped: "no CRM configured" };
    const hubspot = hubspotFromEnv();
    const target: { meetingId: string } | { leadId: string; clientId: string } = input.meeting_id
      ? { meetingId: input.meeting_id }
      : { leadId: input.lead_id!, clientId: input.client_id! };
    try {
      const result = "meetingId" in target
        ? await syncMeetingToCrm(target.meetingId, hubspot)
        : await syncLeadToCrm(target.leadId, target.clientId, hubspot);
      if (result.status === "skipped") log.info("CRM push skipped", { ...target, reason: result.reason });
      return { processed: 1, more: false, ...result };
    } catch (err) {
      await recordCrmFailure(target, err);
      if (err instanceof ProviderError && !err.retryable) {
        log.warn("CRM push failed for good", { ...target, error: err.message });
        return { processed: 1, more: false, status: "failed", error: err.message };
      }
      throw err; // QStash retries
    }
  },
);

export default app;
serveFunction(app);
