// Which provider credentials are set. Every provider's base URL is configurable so the local
// stack can point it at a sandbox server; health reports each one as configured, sandbox or missing.
import { readEnv } from "./env.ts";

export const PROVIDERS = {
  anthropic: { key: "ANTHROPIC_API_KEY", baseUrl: "ANTHROPIC_BASE_URL" },
  apollo: { key: "APOLLO_API_KEY", baseUrl: "APOLLO_BASE_URL" },
  apify: { key: "APIFY_TOKEN", baseUrl: "APIFY_BASE_URL" },
  serper: { key: "SERPER_API_KEY", baseUrl: "SERPER_BASE_URL" },
  dataforseo: { key: "DATAFORSEO_LOGIN", baseUrl: "DATAFORSEO_BASE_URL" },
  salesforge: { key: "SALESFORGE_API_KEY", baseUrl: "SALESFORGE_BASE_URL" },
  twilio: { key: "TWILIO_ACCOUNT_SID", baseUrl: "TWILIO_BASE_URL" },
  clicksend: { key: "CLICKSEND_USERNAME", baseUrl: "CLICKSEND_BASE_URL" },
  vapi: { key: "VAPI_API_KEY", baseUrl: "VAPI_BASE_URL" },
  elevenlabs: { key: "ELEVENLABS_API_KEY", baseUrl: "ELEVENLABS_BASE_URL" },
  unipile: { key: "UNIPILE_API_KEY", baseUrl: "UNIPILE_BASE_URL" },
  postgrid: { key: "POSTGRID_API_KEY", baseUrl: "POSTGRID_BASE_URL" },
  dncr: { key: "DNCR_API_KEY", baseUrl: "DNCR_BASE_URL" },
  hubspot: { key: "HUBSPOT_ACCESS_TOKEN", baseUrl: "HUBSPOT_BASE_URL" },
} as const;

export type ProviderName = keyof typeof PROVIDERS;
export type ProviderStatus = "configured" | "sandbox" | "not_configured";

function isLocal(url: string): boolean {
  try {
    const host = new URL(url).hostname;
    return host === "localhost" || host === "::1" || host === "[::1]" || host.startsWith("127.");
  } catch {
    return false;
  }
}

/** configured: a key is set and the base URL is the provider's; sandbox: it points at this machine. */
export function providerStatus(name: ProviderName): ProviderStatus {
  const p = PROVIDERS[name];
  const base = readEnv(p.baseUrl);
  if (base && isLocal(base)) return "sandbox";
  return readEnv(p.key) ? "configured" : "not_configured";
}

export function providerStatuses(): Record<ProviderName, ProviderStatus> {
  return Object.fromEntries(
    (Object.keys(PROVIDERS) as ProviderName[]).map((n) => [n, providerStatus(n)]),
  ) as Record<ProviderName, ProviderStatus>;
}
