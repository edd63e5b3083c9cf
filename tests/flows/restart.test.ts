// Stopping the local stack in the middle of a pipeline run and starting it again loses nothing and
// does nothing twice: a real `dev/start.ts` process (embedded PGlite on disk, QStash emulator
// persisting its messages) is interrupted with SIGINT while leads are being enriched, restarted,
// and the audit trail is read afterwards.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../dev/database.ts";
import { signLocalJwt } from "../../dev/local-secrets.ts";
import { until } from "../helpers/until.ts";

const root = join(import.meta.dirname, "../..");

function startChild(stateDir: string, port: number): Promise<ChildProcess> {
  const env: Record<string, string | undefined> = { ...process.env, PORT: String(port), LOCAL_STATE_DIR: stateDir, LOG_LEVEL: "warn" };
  delete env.DATABASE_URL; // its own embedded database, apart from the suite's
  delete env.QSTASH_URL; delete env.QSTASH_TOKEN; delete env.QSTASH_CURRENT_SIGNING_KEY; delete env.QSTASH_NEXT_SIGNING_KEY;
  delete env.UPSTASH_REDIS_REST_URL; delete env.UPSTASH_REDIS_REST_TOKEN; delete env.PUBLIC_FUNCTIONS_BASE_URL;
  for (const k of Object.keys(env)) if (/_BASE_URL$|_RATE_LIMIT$/.test(k)) delete env[k];
  const child = spawn(join(root, "node_modules/.bin/tsx"), ["dev/start.ts"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`stack did not start:\n${out}`)), 60_000);
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("Ctrl-C to stop.")) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr!.on("data", (d) => (out += d));
    child.on("exit", (code) => reject(new Error(`stack exited (${code}):\n${out}`)));
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.removeAllListeners("exit");
    child.on("exit", () => resolve());
    child.kill("SIGINT");
  });
}


// The child always runs on its own embedded PGlite, whatever the suite's database: the test is the
// same in both CI passes, so it runs in the embedded pass only (DATABASE_URL unset).
describe.runIf(!process.env.DATABASE_URL)("restarting the stack mid-run", () => {
  it("loses no lead and makes no transition twice", { timeout: 360_000 }, async () => {
    const stateDir = await mkdtemp(join(tmpdir(), "agency-os-restart-"));
    const port = 56000 + Math.floor(Math.random() * 2000);
    const base = `http://127.0.0.1:${port}`;
    let child = await startChild(stateDir, port);

    const secrets = JSON.parse(await readFile(join(stateDir, "secrets.json"), "utf8"));
    const serviceKey = await signLocalJwt(secrets.jwtSecret, { role: "service_role" }, 600);
    const user = await (await fetch(`${base}/_dev/users`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${serviceKey}` },
      body: JSON.stringify({ email: "admin@restart.example", role: "admin" }),
    })).json();
    const auth = { authorization: `Bearer ${user.token}` };
    const rows = ["email,first_name,last_name,company_name,title,company_domain"];
    for (let i = 0; i < 200; i++) rows.push(`p${i}@co${i % 40}.com.au,Pat${i},Lee,Co ${i % 40},Head of Growth,co${i % 40}.com.au`);
    const created = await (await fetch(`${base}/functions/v1/pool/imports`, {
      method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ format: "csv" }),
    })).json();
    const imported = await (await fetch(`${base}/functions/v1/pool/imports/${created.id}/content`, {
      method: "PUT", headers: { ...auth, "content-type": "text/csv" }, body: rows.join("\n"),
    })).json();
    expect(imported.accepted).toBe(200);

    const count = async (status: string) =>
      (await (await fetch(`${base}/functions/v1/pool/leads/count?status=${status}`, { headers: auth })).json()).count as number;
    await until("the run to be under way", async () => (await count("new")) < 200, 150_000);
    await stopChild(child); // mid-run
    child = await startChild(stateDir, port);
    await until("every lead scored after the restart", async () => (await count("scored")) === 200, 150_000);
    await stopChild(child);

    const db = await openDatabase({ root, dataDir: join(stateDir, "pgdata") });
    const sql = postgres(db.url, { max: 1, prepare: false });
    try {
      const t = await sql`
        select from_status, to_status, count(*)::int as n, count(distinct entity_id)::int as leads
        from public.events where entity_type = 'lead' group by 1, 2 order by 1, 2`;
      expect(t).toEqual([
        { from_status: "enriched", to_status: "scored", n: 200, leads: 200 },
        { from_status: "enriching", to_status: "enriched", n: 200, leads: 200 },
        { from_status: "new", to_status: "enriching", n: 200, leads: 200 },
      ]);
      const [{ n }] = await sql`select count(*)::int as n from public.outbox where published_at is null`;
      expect(n).toBe(0);
    } finally {
      await sql.end();
      await db.close();
    }
  });
});
