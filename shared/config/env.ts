// Reads and validates the environment once, with zod, so a missing or malformed setting fails at
// start-up with a message naming the variable instead of deep inside a request.
import { z } from "zod";

/** Reads one environment variable under Deno (Edge Runtime) or Node. */
export function readEnv(name: string): string | undefined {
  const deno = (globalThis as { Deno?: { env: { get(k: string): string | undefined } } }).Deno;
  if (deno) return deno.env.get(name);
  return (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env[name];
}

const optionalUrl = z.string().url().optional();
const emptyAsUndefined = (v: unknown) => (v === "" ? undefined : v);

const EnvShape = z.object({
    SUPABASE_DB_URL: z.preprocess(emptyAsUndefined, z.string().min(1).optional()),
    DATABASE_URL: z.preprocess(emptyAsUndefined, z.string().min(1).optional()),
    DB_POOL_MAX: z.preprocess(emptyAsUndefined, z.coerce.number().int().min(1).max(100).default(5)),
    SUPABASE_JWT_SECRET: z.preprocess(emptyAsUndefined, z.string().min(32).optional()),
    SUPABASE_JWKS_URL: z.preprocess(emptyAsUndefined, optionalUrl),
    PUBLIC_FUNCTIONS_BASE_URL: z.preprocess(emptyAsUndefined, optionalUrl),
    QSTASH_URL: z.preprocess(emptyAsUndefined, optionalUrl),
    QSTASH_TOKEN: z.preprocess(emptyAsUndefined, z.string().optional()),
    QSTASH_CURRENT_SIGNING_KEY: z.preprocess(emptyAsUndefined, z.string().optional()),
    QSTASH_NEXT_SIGNING_KEY: z.preprocess(emptyAsUndefined, z.string().optional()),
    UPSTASH_REDIS_REST_URL: z.preprocess(emptyAsUndefined, optionalUrl),
    UPSTASH_REDIS_REST_TOKEN: z.preprocess(emptyAsUndefined, z.string().optional()),
    SENTRY_DSN: z.preprocess(emptyAsUndefined, optionalUrl),
    SENTRY_ENVIRONMENT: z.preprocess(emptyAsUndefined, z.string().default("local")),
    LOG_LEVEL: z.preprocess(emptyAsUndefined, z.enum(["debug", "info", "warn", "error", "silent"]).default("info")),
    MAX_BODY_BYTES: z.preprocess(emptyAsUndefined, z.coerce.number().int().min(1024).default(1_048_576)),
  });

const EnvSchema = EnvShape
  .refine((e) => e.SUPABASE_DB_URL || e.DATABASE_URL, {
    message: "set SUPABASE_DB_URL (production) or DATABASE_URL (local) to the Postgres connection string",
    path: ["SUPABASE_DB_URL"],
  })
  .refine((e) => e.SUPABASE_JWT_SECRET || e.SUPABASE_JWKS_URL, {
    message: "set SUPABASE_JWT_SECRET (HS256) or SUPABASE_JWKS_URL to verify user tokens",
    path: ["SUPABASE_JWT_SECRET"],
  });

export type Env = z.infer<typeof EnvSchema>;

/** Thrown at start-up when the environment is incomplete; the message names every bad variable. */
export class ConfigError extends Error {
  constructor(public readonly issues: string[]) {
    super(`invalid configuration:\n  - ${issues.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

const NAMES = Object.keys(EnvShape.shape) as Array<keyof Env>;

let cached: Env | undefined;

/** The validated environment, read once. Throws ConfigError naming each missing or bad variable. */
export function env(): Env {
  if (cached) return cached;
  const raw: Record<string, string | undefined> = {};
  for (const name of NAMES) raw[name] = readEnv(name);
  const parsed = EnvSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join(".") || "env"}: ${i.message}`));
  }
  cached = parsed.data;
  return cached;
}

/** Forgets the cached environment (tests and the local stack change variables at run time). */
export function resetEnvCache(): void {
  cached = undefined;
}

/** The database URL functions connect to: the pooler in production, DATABASE_URL locally. */
export function databaseUrl(): string {
  const e = env();
  return (e.SUPABASE_DB_URL ?? e.DATABASE_URL)!;
}
