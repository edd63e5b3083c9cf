// sms dispatch: one QStash message per sms batch of the send gate (shared/flows/dispatch-function.ts).
import { smsAdapters } from "../../shared/channels/sms.ts";
import { createDispatchFunction } from "../../shared/flows/dispatch-function.ts";
import { serveFunction } from "../../shared/http/serve.ts";

const app = createDispatchFunction("sms", smsAdapters);

export default app;
serveFunction(app);
