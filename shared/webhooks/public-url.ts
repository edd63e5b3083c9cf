// The public URL a provider called, rebuilt from PUBLIC_FUNCTIONS_BASE_URL + the function's path +
// the original query string. Schemes that sign the URL (Twilio, Vapi's {url} token, QStash's `sub`)
// sign what THEY called; behind Supabase's gateway `req.url` differs in scheme/host/port/prefix,
// so verifying against `req.url` would reject every genuine delivery (providers.md §0.3).
//
// Same rule as shared/qstash/client.ts functionUrl(), but read through readEnv rather than env():
// webhook verification must not require the whole environment (database, JWT settings) to
// validate, nor pull the QStash SDK into every webhook function.
import { readEnv } from "../config/env.ts";

export const PUBLIC_BASE_ENV = "PUBLIC_FUNCTIONS_BASE_URL";

/** PUBLIC_FUNCTIONS_BASE_URL (e.g. `https://<ref>.supabase.co/functions/v1`) without a trailing slash. */
export function publicFunctionsBaseUrl(base: string | undefined = readEnv(PUBLIC_BASE_ENV)): string {
  const value = base?.trim();
  if (!value) throw new Error(`${PUBLIC_BASE_ENV} is not set: webhook signatures cover the public URL`);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new Error(`${PUBLIC_BASE_ENV} is not a URL: ${value}`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new Error(`${PUBLIC_BASE_ENV} must be http(s)`);
  if (parsed.search || parsed.hash) throw new Error(`${PUBLIC_BASE_ENV} must not carry a query or fragment`);
  return value.replace(/\/+$/, "");
}

/**
 * `<base>/<functionName><path>?<query>`. `path` is the part after the function name ("" or
 * "/twilio/status"); `query` is the original query string exactly as received, with or without its
 * leading "?" (pass a string, not re-encoded params: Twilio signs the exact characters).
 */
export function publicWebhookUrl(functionName: string, path = "", query = "", base?: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(functionName)) throw new Error(`not a function name: ${functionName}`);
  const rest = path === "" || path.startsWith("/") ? path : `/${path}`;
  const search = query === "" || query === "?" ? "" : query.startsWith("?") ? query : `?${query}`;
  return `${publicFunctionsBaseUrl(base ?? readEnv(PUBLIC_BASE_ENV))}/${functionName}${rest}${search}`;
}

/**
 * The public URL for an incoming request to function `functionName`: the path after the function
 * name (the app sees `/<name>/…`, or `/functions/v1/<name>/…` before the gateway strips it) and
 * the request's query string, on the public base.
 */
export function publicUrlForRequest(request: Request | string, functionName: string, base?: string): string {
  const incoming = new URL(typeof request === "string" ? request : request.url);
  let path = incoming.pathname.replace(/^\/functions\/v1(?=\/)/, "");
  const prefix = `/${functionName}`;
  if (path === prefix || path.startsWith(`${prefix}/`)) path = path.slice(prefix.length);
  return publicWebhookUrl(functionName, path, incoming.search, base);
}
