// Hosts every function listed in supabase/config.toml at /functions/v1/<name>, as Supabase's
// gateway does: checks the JWT where verify_jwt is true (any project key or user token), then
// hands the request to the function's app with the path it would see in production (/<name>/...).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { jwtVerify } from "jose";
import { markLocalStack } from "../shared/http/serve.ts";

export interface FunctionEntry {
  name: string;
  verifyJwt: boolean;
  fetch: (req: Request) => Response | Promise<Response>;
}

/** The [functions.<name>] entries of config.toml with their verify_jwt (default true, as Supabase). */
export function parseFunctionsConfig(toml: string): Array<{ name: string; verifyJwt: boolean }> {
  const out: Array<{ name: string; verifyJwt: boolean }> = [];
  let current: { name: string; verifyJwt: boolean } | null = null;
  for (const raw of toml.split(/\r?\n/)) {
    const line = raw.replace(/#.*$/, "").trim();
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      const m = /^functions\.("?)([A-Za-z0-9_-]+)\1$/.exec(section[1].trim());
      current = m ? { name: m[2], verifyJwt: true } : null;
      if (current) out.push(current);
      continue;
    }
    const kv = /^verify_jwt\s*=\s*(true|false)$/.exec(line);
    if (kv && current) current.verifyJwt = kv[1] === "true";
  }
  return out;
}

/** Imports each function's module (its default export is the Hono app). */
export async function loadFunctions(root: string): Promise<FunctionEntry[]> {
  markLocalStack();
  const config = parseFunctionsConfig(await readFile(join(root, "supabase/config.toml"), "utf8"));
  const entries: FunctionEntry[] = [];
  for (const { name, verifyJwt } of config) {
    const mod = await import(pathToFileURL(join(root, "functions", name, "index.ts")).href);
    const app = mod.default as { fetch: FunctionEntry["fetch"] } | undefined;
    if (!app || typeof app.fetch !== "function") {
      throw new Error(`functions/${name}/index.ts must default-export its Hono app`);
    }
    entries.push({ name, verifyJwt, fetch: (req) => app.fetch(req) });
  }
  return entries;
}

function gatewayError(message: string): Response {
  return Response.json({ error: { code: "unauthorized", message } }, { status: 401 });
}

/** Routes /functions/v1/<name>/... to the function, after the gateway's JWT check. */
export function functionsRouter(functions: FunctionEntry[], jwtSecret: string) {
  const byName = new Map(functions.map((f) => [f.name, f]));
  const key = new TextEncoder().encode(jwtSecret);
  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const m = /^\/functions\/v1\/([^/]+)(\/.*)?$/.exec(url.pathname);
    const fn = m && byName.get(m[1]);
    if (!fn) {
      return Response.json({ error: { code: "not_found", message: `no function at ${url.pathname}` } }, { status: 404 });
    }
    if (fn.verifyJwt) {
      const token = /^Bearer\s+(\S+)$/i.exec(req.headers.get("authorization") ?? "")?.[1];
      if (!token) return gatewayError("missing authorization header");
      try {
        await jwtVerify(token, key, { algorithms: ["HS256"] });
      } catch {
        return gatewayError("invalid JWT");
      }
    }
    const inner = new URL(req.url);
    inner.pathname = `/${fn.name}${m![2] ?? ""}`;
    return fn.fetch(new Request(inner, req));
  };
}
