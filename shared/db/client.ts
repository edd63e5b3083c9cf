// The one Postgres connection pool of a function (postgres.js over the Supabase pooler, so no
// prepared statements), and the two ways work runs on it: as the calling user under RLS, or as
// the service with an explicit actor for the audit trail.
import postgres from "postgres";
import { databaseUrl, env } from "../config/env.ts";

export type Sql = postgres.Sql;
export type Tx = postgres.TransactionSql;

let pool: Sql | undefined;

/** The process-wide pool, created on first use from SUPABASE_DB_URL or DATABASE_URL. */
export function db(): Sql {
  pool ??= postgres(databaseUrl(), {
    max: env().DB_POOL_MAX,
    prepare: false, // transaction pooling (Supavisor) does not keep prepared statements
    idle_timeout: 20,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: "agency-os" },
  });
  return pool;
}

/** Closes the pool (tests, shutdown). */
export async function closeDb(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.end({ timeout: 5 });
}

export interface JwtClaims {
  sub: string;
  role?: string;
  email?: string;
  [k: string]: unknown;
}

/**
 * Runs fn in a transaction as the portal user, exactly as PostgREST does: role authenticated and
 * request.jwt.claims from the verified JWT, so every row-level-security policy applies.
 */
export function asUser<T>(claims: JwtClaims, fn: (tx: Tx) => Promise<T>, reason?: string): Promise<T> {
  return db().begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', ${JSON.stringify({ ...claims, role: "authenticated" })}, true),
                    set_config('app.reason', ${reason ?? ""}, true)`;
    await tx`set local role authenticated`;
    return fn(tx);
  }) as Promise<T>;
}

/**
 * Runs fn in a transaction as the service (pipeline steps, webhooks). RLS does not protect this
 * work, so callers scope by client id explicitly; actor and reason go into the audit trail.
 */
export function asService<T>(
  actor: { role: string; id?: string; reason?: string },
  fn: (tx: Tx) => Promise<T>,
): Promise<T> {
  return db().begin(async (tx) => {
    await tx`select set_config('app.actor_role', ${actor.role}, true),
                    set_config('app.actor_id', ${actor.id ?? ""}, true),
                    set_config('app.reason', ${actor.reason ?? ""}, true)`;
    return fn(tx);
  }) as Promise<T>;
}
