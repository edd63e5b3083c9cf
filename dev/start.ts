// `npm start`: runs the local stack until Ctrl-C, printing what it started and where.
// `npm start -- --demo-agency [N]` also creates `npm run demo`'s agency (client, ICP, approved
// five-channel campaign, senders, N pool leads, default 300) for the cron-driven flows to work on
// in real time — on the sandboxes only.
import process from "node:process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { ConfigError } from "../shared/config/env.ts";
import { startStack } from "./stack.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** `--demo-agency` with an optional lead count, or null. */
function demoAgencyArg(argv: string[]): number | null {
  const i = argv.findIndex((a) => a === "--demo-agency" || a.startsWith("--demo-agency="));
  if (i < 0) return null;
  const raw = argv[i].includes("=") ? argv[i].split("=")[1] : /^\d+$/.test(argv[i + 1] ?? "") ? argv[i + 1] : "300";
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 20 || n > 20_000) throw new ConfigError([`--demo-agency takes a lead count from 20 to 20000, not ${raw}`]);
  return n;
}

try {
  const demoLeads = demoAgencyArg(process.argv.slice(2));
  // what the user configured, before the stack points the providers at its sandboxes
  const userEnv = { ...process.env };
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
  if (demoLeads !== null) {
    const { seedDemoAgency } = await import("./demo.ts");
    const { db } = await import("../shared/db/client.ts");
    try {
      const agency = await seedDemoAgency(db(), userEnv, { leads: demoLeads });
      console.log(agency.created
        ? `  demo agency Harbour Growth Co: an approved five-channel campaign and ${agency.leads} pool leads; the flows take it from here (sends wait for each recipient's window)`
        : `  demo agency Harbour Growth Co is already in this database (pool: ${agency.leads} leads); left as it is`);
    } catch (err) {
      console.error(`  demo agency not created: ${err instanceof Error ? err.message : err}`);
    }
  }

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
