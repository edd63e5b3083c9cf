// One API reference page for every function on the local stack, rendered from each function's
// own OpenAPI document (no CDN: this machine may be offline).
import type { FunctionEntry } from "./functions-host.ts";

interface OpenApiDoc {
  info?: { title?: string; description?: string };
  paths?: Record<string, Record<string, { summary?: string; parameters?: Array<{ name: string; in: string; required?: boolean }>; requestBody?: unknown; responses?: Record<string, { description?: string }> }>>;
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

/** Fetches every function's /<name>/openapi.json through its own app. */
export async function collectDocs(functions: FunctionEntry[], base: string): Promise<Record<string, OpenApiDoc>> {
  const docs: Record<string, OpenApiDoc> = {};
  for (const fn of functions) {
    const res = await fn.fetch(new Request(`${base}/${fn.name}/openapi.json`));
    docs[fn.name] = res.ok ? await res.json() : { info: { title: fn.name, description: "(no OpenAPI document)" } };
  }
  return docs;
}

export function renderDocsPage(docs: Record<string, OpenApiDoc>, functions: FunctionEntry[]): string {
  const sections = functions.map((fn) => {
    const doc = docs[fn.name] ?? {};
    const rows = Object.entries(doc.paths ?? {}).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => {
        const params = (op.parameters ?? []).map((p) => `${p.name}${p.required ? "" : "?"} <small>(${p.in})</small>`).join(", ");
        const responses = Object.entries(op.responses ?? {}).map(([s, r]) => `<b>${s}</b> ${escape(r.description ?? "")}`).join("<br>");
        return `<tr><td><code>${method.toUpperCase()}</code></td><td><code>/functions/v1${escape(path)}</code></td><td>${escape(op.summary ?? "")}<br><small>${params}</small></td><td><small>${responses}</small></td></tr>`;
      })
    );
    return `<section id="${fn.name}"><h2>${escape(doc.info?.title ?? fn.name)} <small><a href="/functions/v1/${fn.name}/openapi.json">openapi.json</a> · verify_jwt=${fn.verifyJwt}</small></h2>
<p>${escape(doc.info?.description ?? "")}</p><table><tr><th>method</th><th>path</th><th>what</th><th>responses</th></tr>${rows.join("")}</table></section>`;
  });
  return `<!doctype html><html><head><meta charset="utf-8"><title>Agency OS API reference</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem;max-width:1200px}table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}h2 small{font-weight:normal;font-size:60%}</style></head>
<body><h1>Agency OS API reference</h1><p>Every Edge Function on this stack. Errors share one shape: <code>{"error":{"code","message","details"}}</code>.</p>
<nav>${functions.map((f) => `<a href="#${f.name}">${f.name}</a>`).join(" · ")}</nav>${sections.join("\n")}</body></html>`;
}
