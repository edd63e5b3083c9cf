// Benchmark `import`: the pool importer (importStream: streamed CSV, validation, dedup, per-row
// report, progress counters) against a bare COPY of the very same rows into lead_pool (same
// columns, same triggers and indexes), each into an empty pool in the same run.
import postgres from "postgres";
import { importStream } from "../shared/engines/pool-import.ts";
import { timed } from "./db.ts";

const FIRST = ["Olivia", "Jack", "Charlotte", "Noah", "Amelia", "William", "Isla", "Oliver", "Mia", "Thomas", "Zoë", "José"];
const LAST = ["Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen", "Johnson", "Martin", "White", "O'Brien"];
const TITLES = ["Head of Growth", "Chief Executive Officer", "Marketing Manager", "VP Sales", "Operations Director", "Founder"];
const CITIES: Array<[string, string]> = [["Sydney", "NSW"], ["Melbourne", "VIC"], ["Brisbane", "QLD"], ["Perth", "WA"], ["Adelaide", "SA"]];

interface BenchRow {
  csv: string; // the line as a CRM export would have it
  copy: string; // the same lead as lead_pool columns, already normalised (tab-separated COPY text)
}

/** Row i, deterministic: every row valid and unique (so both sides insert the same N leads). */
function row(i: number): BenchRow {
  const first = FIRST[i % FIRST.length];
  const last = LAST[(i * 7) % LAST.length];
  const company = `Company ${i % 20_000}`;
  const domain = `company-${i % 20_000}.com.au`;
  const email = `${first.toLowerCase().replace(/[^a-z]/g, "")}.${i}@${domain}`;
  const mobile = 10_000_000 + i; // +61 4xx xxx xxx, unique per row for up to 89,999,999 rows
  const digits = `4${String(mobile).slice(0, 8)}`;
  const national = `0${digits.slice(0, 3)} ${digits.slice(3, 6)} ${digits.slice(6)}`;
  const slug = `${first.toLowerCase().replace(/[^a-z]/g, "")}-${last.toLowerCase().replace(/[^a-z]/g, "")}-${i.toString(36)}`;
  const linkedin = i % 3 === 0 ? `https://au.linkedin.com/in/${slug}/` : i % 3 === 1 ? `linkedin.com/in/${slug}?trk=public` : `https://www.linkedin.com/in/${slug}`;
  const website = i % 2 === 0 ? `https://www.${domain}/` : domain;
  const title = TITLES[i % TITLES.length];
  const [city, state] = CITIES[i % CITIES.length];
  const name = last.replace(/"/g, '""');
  return {
    csv: `${email},${first},"${name}",${title},${company},${website},${linkedin},${national},Australia,${city},${state}\n`,
    copy: [email, first, last, title, company, domain, `https://www.linkedin.com/in/${slug}`, `https://www.linkedin.com/in/${slug}`,
      national, `+61${digits}`, "AU", "AU", state, city, "import", BASELINE_IMPORT_ID].join("\t") + "\n",
  };
}

const CSV_HEADER = "Email,First Name,Last Name,Job Title,Company,Website,LinkedIn URL,Mobile,Country,City,State\n";
const COPY_COLUMNS = "email, first_name, last_name, title, company_name, company_domain, linkedin_url, linkedin_key, phone, phone_e164, phone_country, country, state, city, source, import_id";
const BASELINE_IMPORT_ID = "00000000-0000-4000-8000-000000000001";

/** The rows as ~64 kB chunks, generated before anything is timed. */
function chunks(rows: number, pick: (r: BenchRow) => string, header = ""): Uint8Array[] {
  const encoder = new TextEncoder();
  const out: Uint8Array[] = [];
  let text = header;
  for (let i = 0; i < rows; i++) {
    text += pick(row(i));
    if (text.length > 65_536) {
      out.push(encoder.encode(text));
      text = "";
    }
  }
  if (text) out.push(encoder.encode(text));
  return out;
}

function streamOf(parts: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < parts.length) controller.enqueue(parts[i++]);
      else controller.close();
    },
  });
}

async function emptyPool(sql: postgres.Sql) {
  await sql`truncate public.lead_pool, public.pool_imports, public.pool_import_rows cascade`;
  await sql`vacuum analyze public.lead_pool`;
  await sql`checkpoint`;
}

export async function benchImport(opts: { databaseUrl: string; rows: number }): Promise<{
  name: "import"; ratio: number; ms: number; baselineMs: number; rowsPerSec: number;
}> {
  const sql = postgres(opts.databaseUrl, { max: 2, prepare: false, onnotice: () => {} });
  try {
    const copyData = chunks(opts.rows, (r) => r.copy);
    await emptyPool(sql);
    const baselineMs = await timed(async () => {
      const writable = await sql.unsafe(`copy public.lead_pool (${COPY_COLUMNS}) from stdin`).writable();
      for (const part of copyData) {
        if (!writable.write(part)) await new Promise((r) => writable.once("drain", r));
      }
      await new Promise<void>((resolve, reject) => {
        writable.once("finish", resolve);
        writable.once("error", reject);
        writable.end();
      });
    });
    const [{ count: copied }] = await sql`select count(*)::int as count from public.lead_pool`;
    if (copied !== opts.rows) throw new Error(`baseline copied ${copied} rows, expected ${opts.rows}`);
    copyData.length = 0;

    const csv = chunks(opts.rows, (r) => r.csv, CSV_HEADER);
    await emptyPool(sql);
    const [{ id }] = await sql`insert into public.pool_imports (format, filename) values ('csv', 'bench.csv') returning id`;
    let result: Awaited<ReturnType<typeof importStream>> | undefined;
    const ms = await timed(async () => {
      result = await importStream({ importId: id, format: "csv", body: streamOf(csv), sql });
    });
    if (result?.status !== "completed" || result.accepted !== opts.rows) {
      throw new Error(`import did not accept every row: ${JSON.stringify(result)}`);
    }
    return { name: "import", ratio: baselineMs / ms, ms, baselineMs, rowsPerSec: opts.rows / (ms / 1000) };
  } finally {
    await sql.end({ timeout: 5 });
  }
}
