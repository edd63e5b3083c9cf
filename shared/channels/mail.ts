// Direct mail through PostGrid letters.
import type { AdapterRegistry } from "../engines/dispatch.ts";
import { postgridMailAdapter } from "../integrations/postgrid.ts";

export function mailAdapters(): AdapterRegistry {
  return { postgrid: postgridMailAdapter() };
}
