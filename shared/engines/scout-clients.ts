// The provider clients the scout uses, built once per function instance from the environment
// (keys and base URLs; locally the stack points the base URLs at its sandbox servers).
import { createApifyClient } from "../integrations/apify.ts";
import { createApolloClient } from "../integrations/apollo.ts";
import { createDataForSeoClient } from "../integrations/dataforseo.ts";
import { createSerperClient } from "../integrations/serper.ts";
import { readEnv } from "../config/env.ts";
import type { ScoutClients } from "./scout.ts";

let clients: ScoutClients | undefined;

/** Fetches a company's home page (COMPANY_SITE_FETCH=on; off by default where there is no internet). */
async function fetchSite(domain: string): Promise<string | null> {
  const res = await fetch(`https://${domain}/`, { signal: AbortSignal.timeout(5000), redirect: "follow" });
  if (!res.ok) return null;
  const text = await res.text();
  return text.slice(0, 500_000);
}

export function scoutClients(): ScoutClients {
  clients ??= {
    apollo: createApolloClient(),
    apify: createApifyClient(),
    serper: createSerperClient(),
    dataforseo: createDataForSeoClient(),
    fetchSite: readEnv("COMPANY_SITE_FETCH") === "on" ? fetchSite : undefined,
  };
  return clients;
}

/** For tests: rebuild from the current environment. */
export function resetScoutClients(): void {
  clients = undefined;
}
