// `npm run bench [-- --rows N] [-- --only import,score,allocate]`: each benchmark measures the
// real code path against a bare SQL baseline doing the same work in the same run, and prints
// one line: `<name> ratio=<baseline/real> ...`. Higher is better; 1.0 means no overhead.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { serverUrl, withScratchDatabase } from "./db.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: { rows: { type: "string", default: "1000000" }, only: { type: "string" } },
});
const rows = Number(values.rows);
if (!Number.isInteger(rows) || rows < 1000) {
  console.error("--rows must be an integer of at least 1000");
  process.exit(2);
}
const only = values.only ? new Set(values.only.split(",")) : null;

interface Line { name: string; ratio: number; [k: string]: unknown }
type Bench = (opts: { databaseUrl: string; rows: number }) => Promise<Line>;

const TARGETS: Record<string, number> = { import: 0.5, score: 0.5, allocate: 0.3, dispatch: 0.3, ingest: 0.25 };
/** QStash messages per 1,000 sends (dispatch batches + gate ticks): at most this many. */
const MAX_QSTASH_PER_1000_SENDS = 20;

async function load(file: string, fn: string): Promise<Bench | null> {
  try {
    return (await import(`./${file}`))[fn] as Bench;
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_MODULE_NOT_FOUND") return null;
    throw err;
  }
}

const benches: Array<[string, string, string, number]> = [
  ["import", "import.ts", "benchImport", rows],
  ["score", "score.ts", "benchScore", rows],
  ["allocate", "allocate.ts", "benchAllocate", Math.min(rows, 100_000)],
  ["dispatch", "dispatch.ts", "benchDispatch", Math.min(rows, 100_000)],
  ["ingest", "ingest.ts", "benchIngest", Math.min(rows, 20_000)],
];

console.error(`benchmarks on ${new URL(serverUrl()).host}, rows=${rows}`);
let failures = 0;
for (const [name, file, fn, n] of benches) {
  if (only && !only.has(name)) continue;
  const bench = await load(file, fn);
  if (!bench) continue;
  const line = await withScratchDatabase(root, name, (databaseUrl) => bench({ databaseUrl, rows: n }));
  const extra = Object.entries(line)
    .filter(([k]) => k !== "name" && k !== "ratio")
    .map(([k, v]) => `${k}=${typeof v === "number" ? Math.round(v * 10) / 10 : v}`)
    .join(" ");
  const target = TARGETS[name];
  const ok = target === undefined || line.ratio >= target;
  if (!ok) failures++;
  console.log(`${name} ratio=${line.ratio.toFixed(3)} target=${target ?? "-"} ${ok ? "ok" : "BELOW_TARGET"} ${extra}`);
  if (typeof line.qstash_per_1000_sends === "number") {
    const messages = line.qstash_per_1000_sends;
    const fine = messages <= MAX_QSTASH_PER_1000_SENDS;
    if (!fine) failures++;
    console.log(`qstash_messages per_1000_sends=${messages.toFixed(1)} target<=${MAX_QSTASH_PER_1000_SENDS} ${fine ? "ok" : "ABOVE_TARGET"}`);
  }
}
process.exit(failures ? 1 : 0);
