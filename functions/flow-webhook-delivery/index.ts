// Delivers one client event to one client webhook (a webhook_deliveries row), invoked by QStash:
// POSTs the JSON payload signed per Standard Webhooks (webhook-id = the event id, stable across
// retries so receivers deduplicate), 10-second timeout, and logs the attempt. A 2xx from the receiver
// marks it delivered. Anything else answers QStash with a 5xx and a Retry-After from the retry schedule
// (5 s, 5 min, 30 min, 2 h, 5 h by default), so QStash retries; the last retry's failure marks it
// failed and answers 200 (nothing more to retry: the client can replay it by hand).
// Not a createFlowFunction flow: it needs QStash's Upstash-Retried header and its own retry timing.
import { createRoute, z } from "@hono/zod-openapi";
import { asService } from "../../shared/db/client.ts";
import {
  attemptDelivery, DELIVERY_MAX_RETRIES, retryDelaySeconds, type ClientEventPayload,
} from "../../shared/engines/client-events.ts";
import { schemaOrEmpty } from "../../shared/flows/flow-input.ts";
import { createFunctionApp } from "../../shared/http/app.ts";
import { AppError, errorBody } from "../../shared/http/errors.ts";
import { serveFunction } from "../../shared/http/serve.ts";
import { verifyQStashRequest } from "../../shared/qstash/client.ts";

const NAME = "flow-webhook-delivery";
const Input = z.object({ delivery_id: z.string().uuid() });
const Result = z.object({ processed: z.number(), more: z.boolean(), outcome: z.string() }).passthrough();

const app = createFunctionApp(NAME, { title: NAME, description: "Deliver one client event to one client webhook, signed per Standard Webhooks" });

app.openapi(
  createRoute({
    method: "post",
    path: "/",
    summary: "Deliver one webhook_deliveries row (invoked by QStash; Upstash-Signature required)",
    responses: {
      200: { description: "Delivered, failed for good, or nothing to do", content: { "application/json": { schema: Result } } },
      401: { description: "Missing or invalid Upstash-Signature" },
      502: { description: "The receiver did not accept it; QStash retries after Retry-After" },
    },
  }),
  async (c) => {
    const raw = await c.req.text();
    await verifyQStashRequest(c.req.raw, raw, NAME);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new AppError("bad_request", "the message body is not JSON");
    }
    const input = schemaOrEmpty(Input).safeParse(parsed);
    if (!input.success) throw new AppError("validation_failed", "invalid message body", input.error.issues);
    const deliveryId = input.data.delivery_id;
    const retried = Math.max(0, Number(c.req.header("upstash-retried") ?? 0) || 0);
    const actor = { role: "service:webhooks", reason: "client webhook delivery" };

    const [d] = await asService(actor, (tx) => tx`
      select d.id, d.event_id, d.payload, d.status, w.url, w.secret, w.active
      from public.webhook_deliveries d join public.client_webhooks w on w.id = d.webhook_id
      where d.id = ${deliveryId}`);
    // deleted with its webhook, or already settled (a duplicate message): nothing to do
    if (!d) return c.json({ processed: 0, more: false, outcome: "gone" }, 200);
    if (d.status !== "pending") return c.json({ processed: 0, more: false, outcome: d.status as string }, 200);
    if (!d.active) {
      await asService(actor, (tx) => tx`
        update public.webhook_deliveries set status = 'failed', last_error = 'the webhook is paused (active: false)'
        where id = ${deliveryId} and status = 'pending'`);
      return c.json({ processed: 1, more: false, outcome: "failed" }, 200);
    }

    const attempt = await attemptDelivery({
      url: d.url as string, secret: d.secret as string, eventId: d.event_id as string, payload: d.payload as ClientEventPayload,
    });
    const final = !attempt.ok && retried >= DELIVERY_MAX_RETRIES;
    const status = attempt.ok ? "delivered" : final ? "failed" : "pending";
    await asService(actor, (tx) => tx`
      update public.webhook_deliveries set
        attempts = attempts + 1, last_status = ${attempt.status}, last_error = ${attempt.error}, status = ${status},
        delivered_at = case when ${attempt.ok} then now() else delivered_at end
      where id = ${deliveryId} and status = 'pending'`);
    c.var.log.info("webhook delivery attempt", {
      delivery: deliveryId, retried, ok: attempt.ok, receiverStatus: attempt.status, ms: attempt.durationMs, outcome: status,
    });
    if (attempt.ok || final) return c.json({ processed: 1, more: false, outcome: status }, 200);
    const wait = retryDelaySeconds(retried);
    return c.json(
      errorBody("delivery_failed", `the webhook did not accept the delivery: ${attempt.error}`, { retried, retry_after_seconds: wait }),
      502,
      { "retry-after": String(wait) },
    );
  },
);

export default app;
serveFunction(app);
