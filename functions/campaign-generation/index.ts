// Campaign generation: Claude drafts a campaign (steps and copy) from the client's ICP and offer.
// The draft is saved as a campaign pending approval — it never sends until a client owner or an
// admin approves it through the campaigns function.
import { createRoute, z } from "@hono/zod-openapi";
import { requireUser } from "../../shared/auth/caller.ts";
import { asUser } from "../../shared/db/client.ts";
import * as q from "../../shared/db/queries/campaigns.ts";
import { draftCampaign } from "../../shared/engines/campaign-drafting.ts";
import { createFunctionApp } from "../../shared/http/app.ts";
import { AppError } from "../../shared/http/errors.ts";
import { idempotent } from "../../shared/http/idempotency.ts";
import { serveFunction } from "../../shared/http/serve.ts";
import { anthropicFromEnv } from "../../shared/integrations/anthropic.ts";
import { ProviderError } from "../../shared/integrations/provider-http.ts";
import { CampaignSchema } from "../../shared/schemas/campaigns.ts";
import { BEARER as security, errorResponses, IdempotencyHeader, isoDates as iso, jsonContent as json } from "../../shared/schemas/common.ts";

const app = createFunctionApp("campaign-generation", {
  title: "Campaign generation",
  description: "Claude drafts a campaign (steps and copy) from the client's ICP and offer, saved pending approval.",
});
app.use("*", requireUser());
app.post("/", idempotent("campaign-generation"));

const GenerateSchema = z.object({
  client_id: z.string().uuid(),
  icp_id: z.string().uuid(),
  offer: z.string().min(1).max(1000).optional().openapi({ description: "Default: the ICP's offer" }),
  channels: z.array(z.enum(["email", "sms", "voice", "linkedin", "mail"])).min(1).max(10).optional(),
}).openapi("GenerateCampaign");

app.openapi(
  createRoute({
    method: "post", path: "/", summary: "Draft a campaign with Claude (saved pending approval)", security,
    request: { headers: IdempotencyHeader, body: { required: true, content: { "application/json": { schema: GenerateSchema } } } },
    responses: {
      201: json(CampaignSchema.extend({ generation: z.unknown() }), "The drafted campaign, pending approval"),
      ...errorResponses(400, 401, 403, 404, 409, 422, 503),
    },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const claims = c.var.caller!.claims;
    // read what the caller may see (RLS): the client and its ICP
    const context = await asUser(claims, async (tx) => {
      const [client] = await tx`select name from public.clients where id = ${body.client_id}`;
      const [icp] = await tx`
        select name, target_titles, industries, countries, employee_min, employee_max, offer
        from public.icps where id = ${body.icp_id} and (client_id = ${body.client_id} or client_id is null)`;
      return { client, icp };
    });
    if (!context.client) throw new AppError("not_found", "client not found");
    if (!context.icp) throw new AppError("not_found", "ICP not found for this client");
    const offer = body.offer ?? context.icp.offer;
    if (!offer) throw new AppError("validation_failed", "the ICP has no offer; pass one", [{ field: "offer", message: "required when the ICP has none" }]);
    let draft;
    try {
      draft = await draftCampaign({ clientName: context.client.name, offer, icp: context.icp, channels: body.channels }, anthropicFromEnv());
    } catch (err) {
      if (err instanceof ProviderError) throw new AppError("service_unavailable", `the draft could not be written: ${err.message}`);
      throw err;
    }
    const row = await asUser(claims, async (tx) => {
      const id = await q.createCampaign(tx, {
        client_id: body.client_id, icp_id: body.icp_id, name: draft.name, description: draft.description, offer,
        generation: tx.json(draft.generation as never),
      }, draft.steps, "generated");
      await q.campaignAction(tx, id, "submit");
      return q.getCampaign(tx, id);
    }, "campaign drafted");
    return c.json({ ...(iso(row!) as z.infer<typeof CampaignSchema>), generation: draft.generation }, 201);
  },
);

export default app;
serveFunction(app);
