// Bundles every function under Deno (as Supabase does before deploying) and reports each
// bundle's size, so a function that pulls in every integration shows up as the cold-start bug
// it is. Exits non-zero when a function does not bundle or exceeds the size budget.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseFunctionsConfig } from "./functions-host.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// Unminified bytes; today's functions are ~1.7-1.9 MB (zod and Sentry's Deno SDK are most of it).
const BUDGET_BYTES = 4 * 1024 * 1024;
/**
 * Functions allowed past the budget, each with its reason. flow-timing carries date-holidays'
 * rules for every country (~2.5 MB): it runs on a 5-minute cron and nobody waits on its cold start,
 * and the gate itself never loads it.
 */
const BUDGET_EXCEPTIONS: Record<string, number> = { "flow-timing": 5 * 1024 * 1024 };
const out = mkdtempSync(join(tmpdir(), "agency-os-bundles-"));
const deno = join(root, "node_modules/.bin/deno");
let failures = 0;

for (const { name } of parseFunctionsConfig(readFileSync(join(root, "supabase/config.toml"), "utf8"))) {
  const file = join(out, `${name}.js`);
  try {
    execFileSync(deno, ["bundle", "--quiet", "--node-modules-dir=manual", "--platform=deno", "-o", file, `functions/${name}/index.ts`], {
      cwd: root,
      stdio: ["ignore", "ignore", "pipe"],
    });
    const bytes = statSync(file).size;
    const over = bytes > (BUDGET_EXCEPTIONS[name] ?? BUDGET_BYTES);
    if (over) failures++;
    const note = over ? "  OVER BUDGET" : BUDGET_EXCEPTIONS[name] ? "  (allowed: see BUDGET_EXCEPTIONS)" : "";
    console.log(`${name.padEnd(24)} ${(bytes / 1024).toFixed(0).padStart(6)} KB${note}`);
  } catch (err) {
    failures++;
    console.log(`${name.padEnd(24)} FAILED TO BUNDLE\n${(err as { stderr?: Buffer }).stderr?.toString() ?? err}`);
  }
}
process.exit(failures ? 1 : 0);
