// The local database: migrations applied once, in order, and recorded where the supabase CLI
// records them; a restart applies nothing and keeps the data.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { isLocalUrl, openDatabase } from "../../dev/database.ts";

const root = join(import.meta.dirname, "../..");

describe("embedded PGlite database", () => {
  it("applies every migration once, records it, and keeps data across a restart", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "agency-os-db-"));
    const first = await openDatabase({ root, dataDir });
    expect(first.mode).toBe("embedded");
    expect(first.migrationsApplied.length).toBeGreaterThanOrEqual(4);
    let sql = postgres(first.url, { max: 1, prepare: false });
    const recorded = await sql`select version, name from supabase_migrations.schema_migrations order by version`;
    expect(recorded.map((r) => `${r.version}_${r.name}.sql`)).toEqual(first.migrationsApplied);
    await sql`insert into public.clients (slug, name) values ('kept-across-restart', 'Kept')`;
    await sql.end();
    await first.close();

    const second = await openDatabase({ root, dataDir });
    expect(second.migrationsApplied).toEqual([]);
    sql = postgres(second.url, { max: 1, prepare: false });
    const [row] = await sql`select name from public.clients where slug = 'kept-across-restart'`;
    expect(row.name).toBe("Kept");
    // the Supabase surface the bootstrap gives a plain Postgres
    const [roles] = await sql`select count(*)::int as n from pg_roles where rolname in ('anon', 'authenticated', 'service_role')`;
    expect(roles.n).toBe(3);
    await sql.end();
    await second.close();
  }, 120_000);

  it("only treats databases on this machine as local (the bootstrap never runs on a hosted project)", () => {
    expect(isLocalUrl("postgres://postgres@127.0.0.1:5432/x")).toBe(true);
    expect(isLocalUrl("postgres://postgres@localhost/x")).toBe(true);
    expect(isLocalUrl("postgres://postgres.abc:pw@aws-0-ap-southeast-2.pooler.supabase.com:6543/postgres")).toBe(false);
  });
});
