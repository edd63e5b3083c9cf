// LinkedIn through Unipile: profile view, invitation with a note, messages after acceptance.
import type { AdapterRegistry } from "../engines/dispatch.ts";
import { unipileLinkedInAdapter } from "../integrations/unipile.ts";

export function linkedinAdapters(): AdapterRegistry {
  return { unipile: unipileLinkedInAdapter() };
}
