// email dispatch: one QStash message per email batch of the send gate (shared/flows/dispatch-function.ts).
import { emailAdapters } from "../../shared/channels/email.ts";
import { createDispatchFunction } from "../../shared/flows/dispatch-function.ts";
import { serveFunction } from "../../shared/http/serve.ts";

const app = createDispatchFunction("email", emailAdapters);

export default app;
serveFunction(app);
