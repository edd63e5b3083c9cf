// voice dispatch: one QStash message per voice batch of the send gate (shared/flows/dispatch-function.ts).
import { voiceAdapters } from "../../shared/channels/voice.ts";
import { createDispatchFunction } from "../../shared/flows/dispatch-function.ts";
import { serveFunction } from "../../shared/http/serve.ts";

const app = createDispatchFunction("voice", voiceAdapters);

export default app;
serveFunction(app);
