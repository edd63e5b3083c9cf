// Starts a function under the Edge Runtime. The local stack imports the same module to host
// every function in one process, so it marks itself and serving is left to it.

const LOCAL_STACK = Symbol.for("agency-os.local-stack");

/** True inside the local stack, which routes /functions/v1/<name> to each app itself. */
export function isLocalStack(): boolean {
  return (globalThis as Record<symbol, unknown>)[LOCAL_STACK] === true;
}

export function markLocalStack(): void {
  (globalThis as Record<symbol, unknown>)[LOCAL_STACK] = true;
}

/** Deno.serve(app.fetch) on the Edge Runtime; a no-op inside the local stack or under Node. */
export function serveFunction(app: { fetch: (req: Request) => Response | Promise<Response> }): void {
  const deno = (globalThis as { Deno?: { serve(h: (req: Request) => Response | Promise<Response>): unknown } }).Deno;
  if (isLocalStack() || !deno) return;
  deno.serve((req) => app.fetch(req));
}
