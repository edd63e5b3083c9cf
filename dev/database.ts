// The local stack's database: DATABASE_URL when set, otherwise an embedded PGlite kept on disk
// and served over the Postgres wire protocol (pglite-socket), so functions connect with
// postgres.js exactly as they do to Supabase. Gives a local database the Supabase surface and
// applies supabase/migrations/ in order, recorded where the supabase CLI records them.
import { readdir, readFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import postgres from "postgres";

export interface LocalDatabase {
  mode: "embedded" | "postgres";
  /** The URL functions connect to. */
  url: string;
  /** Where the data lives, for the start-up banner. */
  describe: string;
  /** How many connections the database accepts from this process (PGlite: one). */
  poolMax: number;
  migrationsApplied: string[];
  close(): Promise<void>;
}

interface Executor {
  exec(sql: string): Promise<void>;
  rows(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  transaction(fn: (ex: Executor) => Promise<void>): Promise<void>;
}

function pgliteExecutor(db: PGlite | Parameters<Parameters<PGlite["transaction"]>[0]>[0]): Executor {
  return {
    exec: async (sql) => void (await db.exec(sql)),
    rows: async (sql, params) => (await db.query<Record<string, unknown>>(sql, params)).rows,
    transaction: async (fn) => {
      await (db as PGlite).transaction((tx) => fn(pgliteExecutor(tx)));
    },
  };
}

function postgresExecutor(sql: postgres.Sql | postgres.TransactionSql): Executor {
  return {
    exec: async (text) => void (await sql.unsafe(text)),
    rows: async (text, params) => (await sql.unsafe(text, (params ?? []) as never[])) as unknown as Record<string, unknown>[],
    transaction: async (fn) => {
      await (sql as postgres.Sql).begin((tx) => fn(postgresExecutor(tx)));
    },
  };
}

/** True for a database on this machine: only those get the Supabase bootstrap. */
export function isLocalUrl(url: string): boolean {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
    return host === "localhost" || host === "::1" || host.startsWith("127.") || host === "";
  } catch {
    return false;
  }
}

const MIGRATIONS_TABLE = `
  create schema if not exists supabase_migrations;
  create table if not exists supabase_migrations.schema_migrations (
    version text primary key,
    statements text[],
    name text
  );`;

/** Applies the bootstrap (local only) and every migration not yet recorded, each in a transaction. */
async function migrate(ex: Executor, root: string, local: boolean): Promise<string[]> {
  if (local) await ex.exec(await readFile(join(root, "dev/sql/supabase-bootstrap.sql"), "utf8"));
  await ex.exec(MIGRATIONS_TABLE);
  const done = new Set((await ex.rows("select version from supabase_migrations.schema_migrations")).map((r) => String(r.version)));
  const dir = join(root, "supabase/migrations");
  const files = (await readdir(dir)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
  const applied: string[] = [];
  for (const file of files) {
    const [, version, name] = /^(\d+)_(.+)\.sql$/.exec(file)!;
    if (done.has(version)) continue;
    const text = await readFile(join(dir, file), "utf8");
    await ex.transaction(async (tx) => {
      await tx.exec(text);
      await tx.rows(
        "insert into supabase_migrations.schema_migrations (version, name, statements) values ($1, $2, $3)",
        [version, name, [text]],
      );
    });
    applied.push(file);
  }
  return applied;
}

export interface OpenDatabaseOptions {
  root: string;
  /** Use this PostgreSQL; otherwise embedded PGlite. */
  databaseUrl?: string;
  /** PGlite data directory, or "memory://" for a throwaway database. */
  dataDir: string;
}

export async function openDatabase(opts: OpenDatabaseOptions): Promise<LocalDatabase> {
  if (opts.databaseUrl) {
    const sql = postgres(opts.databaseUrl, { max: 1, onnotice: () => {} });
    try {
      const applied = await migrate(postgresExecutor(sql), opts.root, isLocalUrl(opts.databaseUrl));
      const u = new URL(opts.databaseUrl);
      return {
        mode: "postgres",
        url: opts.databaseUrl,
        describe: `PostgreSQL ${u.hostname}:${u.port || 5432}${u.pathname}`,
        poolMax: 5,
        migrationsApplied: applied,
        close: () => Promise.resolve(),
      };
    } finally {
      await sql.end({ timeout: 5 });
    }
  }

  if (!opts.dataDir.startsWith("memory://")) await mkdir(opts.dataDir, { recursive: true });
  const pg = await PGlite.create(opts.dataDir);
  const applied = await migrate(pgliteExecutor(pg), opts.root, true);
  // One PGlite, one connection: the socket server multiplexes, and functions use a pool of one.
  const server = new PGLiteSocketServer({ db: pg, host: "127.0.0.1", port: 0, maxConnections: 4 });
  await server.start();
  const port = Number(server.getServerConn().split(":").pop());
  return {
    mode: "embedded",
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    describe: `embedded PGlite (${opts.dataDir}) on 127.0.0.1:${port}`,
    poolMax: 1,
    migrationsApplied: applied,
    close: async () => {
      await server.stop();
      await pg.close();
    },
  };
}
