// Email through Salesforge (the sequence a first email enrols into: SALESFORGE_SEQUENCE_ID).
import { readEnv } from "../config/env.ts";
import type { AdapterRegistry } from "../engines/dispatch.ts";
import { salesforgeEmailAdapter } from "../integrations/salesforge.ts";

export function emailAdapters(): AdapterRegistry {
  return { salesforge: salesforgeEmailAdapter({ sequenceId: () => readEnv("SALESFORGE_SEQUENCE_ID") }) };
}
