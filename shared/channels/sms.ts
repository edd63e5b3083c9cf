// SMS providers: Twilio (official SDK) and ClickSend; a sender's provider picks one.
import type { AdapterRegistry } from "../engines/dispatch.ts";
import { clicksendFromEnv, clicksendSmsAdapter } from "../integrations/clicksend.ts";
import { twilioFromEnv, twilioSmsAdapter } from "../integrations/twilio.ts";

export function smsAdapters(): AdapterRegistry {
  return { twilio: twilioSmsAdapter(twilioFromEnv()), clicksend: clicksendSmsAdapter(clicksendFromEnv()) };
}
