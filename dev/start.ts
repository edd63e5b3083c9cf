// `npm start`: runs the local stack until Ctrl-C, printing what it started and where.
import process from "node:process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { ConfigError } from "../shared/config/env.ts";
import { startStack } from "./stack.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

try {
  const stack = await startStack({ root });
  const runtime = (globalThis as { Deno?: unknown }).Deno ? "Deno" : "Node";
  const lines = [
    `Agency OS local stack (${runtime})`,
    `  functions   ${stack.url}/functions/v1/<name>: ${stack.functions.map((f) => f.name).join(", ")}`,
    `  API docs    ${stack.url}/docs`,
    `  database    ${stack.database.describe}${stack.database.migrationsApplied.length ? `, applied ${stack.database.migrationsApplied.length} migration(s)` : ", migrations up to date"}`,
    `  qstash      ${process.env.QSTASH_URL}${process.env.QSTASH_URL?.startsWith(stack.url) ? " (local emulator)" : ""}`,
    `  schedules   ${stack.scheduled.length ? stack.scheduled.map((n) => `${n}`).join(", ") + " (cron via the QStash emulator)" : "none"}`,
    `  redis       ${process.env.UPSTASH_REDIS_REST_URL} -> ${stack.redis.available() ? "redis-server up" : "redis-server unreachable (caching off)"}`,
    `  anon key    ${stack.anonKey}`,
    `  service key ${stack.serviceKey}`,
    `  a user      npm run dev:user -- --email you@example.com --client acme --role owner`,
    "Ctrl-C to stop.",
  ];
  console.log(lines.join("\n"));

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping...`);
    await stack.stop();
    console.log("stopped cleanly");
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
} catch (err) {
  if (err instanceof ConfigError) console.error(err.message);
  else console.error("could not start the local stack:", err instanceof Error ? err.message : err);
  process.exit(1);
}
