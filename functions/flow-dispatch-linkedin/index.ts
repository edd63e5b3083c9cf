// linkedin dispatch: one QStash message per linkedin batch of the send gate (shared/flows/dispatch-function.ts).
import { linkedinAdapters } from "../../shared/channels/linkedin.ts";
import { createDispatchFunction } from "../../shared/flows/dispatch-function.ts";
import { serveFunction } from "../../shared/http/serve.ts";

const app = createDispatchFunction("linkedin", linkedinAdapters);

export default app;
serveFunction(app);
