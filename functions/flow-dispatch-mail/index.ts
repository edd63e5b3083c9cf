// mail dispatch: one QStash message per mail batch of the send gate (shared/flows/dispatch-function.ts).
import { mailAdapters } from "../../shared/channels/mail.ts";
import { createDispatchFunction } from "../../shared/flows/dispatch-function.ts";
import { serveFunction } from "../../shared/http/serve.ts";

const app = createDispatchFunction("mail", mailAdapters);

export default app;
serveFunction(app);
