// GET /health: database, QStash, Redis and provider configuration status. 503 when the database
// is down, because nothing works without it; QStash or Redis down only degrades.
import { createRoute, z } from "@hono/zod-openapi";
import { Redis } from "@upstash/redis";
import { env } from "../../shared/config/env.ts";
import { providerStatuses } from "../../shared/config/providers.ts";
import { db } from "../../shared/db/client.ts";
import { createFunctionApp } from "../../shared/http/app.ts";
import { serveFunction } from "../../shared/http/serve.ts";

const app = createFunctionApp("health", { title: "Health", description: "Dependency and configuration status" });

const Check = z.object({
  status: z.enum(["ok", "down", "not_configured"]),
  latency_ms: z.number().optional(),
  error: z.string().optional(),
});
const HealthSchema = z
  .object({
    status: z.enum(["ok", "degraded", "down"]),
    checks: z.object({ database: Check, qstash: Check, redis: Check }),
    providers: z.record(z.string(), z.enum(["configured", "sandbox", "not_configured"])),
  })
  .openapi("Health");

async function timed(fn: () => Promise<unknown>, timeoutMs = 2000): Promise<z.infer<typeof Check>> {
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs))),
    ]);
    return { status: "ok", latency_ms: Math.round(performance.now() - started) };
  } catch (err) {
    return { status: "down", error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

function checkQStash() {
  const { QSTASH_URL, QSTASH_TOKEN } = env();
  if (!QSTASH_TOKEN) return Promise.resolve({ status: "not_configured" as const });
  const base = (QSTASH_URL ?? "https://qstash.upstash.io").replace(/\/$/, "");
  return timed(async () => {
    const res = await fetch(`${base}/v2/schedules`, { headers: { authorization: `Bearer ${QSTASH_TOKEN}` } });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`QStash answered ${res.status}`);
  });
}

function checkRedis() {
  const { UPSTASH_REDIS_REST_URL: url, UPSTASH_REDIS_REST_TOKEN: token } = env();
  if (!url || !token) return Promise.resolve({ status: "not_configured" as const });
  return timed(() => new Redis({ url, token, retry: false, enableTelemetry: false }).ping());
}

app.openapi(
  createRoute({
    method: "get",
    path: "/",
    summary: "Dependency status",
    responses: {
      200: { description: "The database is up", content: { "application/json": { schema: HealthSchema } } },
      503: { description: "The database is down", content: { "application/json": { schema: HealthSchema } } },
    },
  }),
  async (c) => {
    const [database, qstash, redis] = await Promise.all([
      timed(() => db()`select 1`),
      checkQStash(),
      checkRedis(),
    ]);
    const degraded = qstash.status === "down" || redis.status === "down";
    const status = database.status !== "ok" ? "down" : degraded ? "degraded" : "ok";
    const body = { status, checks: { database, qstash, redis }, providers: providerStatuses() } as const;
    return c.json(body, database.status === "ok" ? 200 : 503);
  },
);

export default app;
serveFunction(app);
