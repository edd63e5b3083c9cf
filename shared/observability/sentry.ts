// Reports unexpected errors to Sentry when SENTRY_DSN is set: Sentry's Deno SDK on the Edge
// Runtime, @sentry/node under Node. Loaded lazily so a function without a DSN pays nothing, and
// flushed before the response because the isolate may be frozen right after it.
import { readEnv } from "../config/env.ts";

interface SentryLike {
  init(options: Record<string, unknown>): unknown;
  captureException(err: unknown, hint?: unknown): string;
  flush(timeoutMs?: number): PromiseLike<boolean>;
}

let loading: Promise<SentryLike | null> | undefined;

async function load(): Promise<SentryLike | null> {
  const dsn = readEnv("SENTRY_DSN");
  if (!dsn) return null;
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  // The Node SDK's name is held in a variable so Deno bundles (eszip) leave it out: on the Edge
  // Runtime only @sentry/deno is ever loaded.
  const nodeSdk = "@sentry/node";
  const sdk = (isDeno ? await import("@sentry/deno") : await import(nodeSdk)) as unknown as SentryLike;
  sdk.init({
    dsn,
    environment: readEnv("SENTRY_ENVIRONMENT") ?? "local",
    sendDefaultPii: false,
    tracesSampleRate: 0,
    // The functions own Deno.serve / the HTTP server; only error capture is wanted here.
    defaultIntegrations: false,
  });
  return sdk;
}

/** Captures an unexpected error with its request context and waits (bounded) for delivery. */
export async function reportError(err: unknown, context: Record<string, unknown>): Promise<void> {
  if (!readEnv("SENTRY_DSN")) return;
  loading ??= load().catch(() => null);
  const sdk = await loading;
  if (!sdk) return;
  sdk.captureException(err, { extra: context, tags: { function: String(context.function ?? "") } });
  await sdk.flush(2000);
}

/** For tests: forget the loaded SDK so a new DSN takes effect. */
export function resetSentry(): void {
  loading = undefined;
}
