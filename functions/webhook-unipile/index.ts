// POST /webhook-unipile: Unipile LinkedIn messages and accepted invitations. Verified, stored once in webhook_events and processed
// asynchronously by flow-inbound; the pipeline is shared by every provider (shared/webhooks/receive.ts).
import { serveFunction } from "../../shared/http/serve.ts";
import { createWebhookFunction, WEBHOOKS } from "../../shared/webhooks/receive.ts";

const app = createWebhookFunction(WEBHOOKS.unipile);

export default app;
serveFunction(app);
