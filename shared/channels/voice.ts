// Voice: Vapi places the call with an ElevenLabs voice configured in the assistant.
import type { AdapterRegistry } from "../engines/dispatch.ts";
import { vapiFromEnv, vapiVoiceAdapter } from "../integrations/vapi.ts";

export function voiceAdapters(): AdapterRegistry {
  return { vapi: vapiVoiceAdapter(vapiFromEnv()) };
}
