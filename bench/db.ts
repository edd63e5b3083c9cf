// Scratch databases for benchmarks: a fresh database per benchmark on the PostgreSQL server of
// DATABASE_URL (default: the local server), migrated like production, dropped afterwards.
import postgres from "postgres";
import { openDatabase } from "../dev/database.ts";

export function serverUrl(): string {
  return process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
}

export async function withScratchDatabase<T>(root: string, name: string, fn: (url: string) => Promise<T>): Promise<T> {
  const admin = postgres(serverUrl(), { max: 1, onnotice: () => {} });
  const db = `agency_os_bench_${name}_${process.pid}`;
  await admin.unsafe(`drop database if exists ${db} with (force)`);
  await admin.unsafe(`create database ${db}`);
  const url = new URL(serverUrl());
  url.pathname = `/${db}`;
  try {
    await openDatabase({ root, databaseUrl: url.toString(), dataDir: "" });
    return await fn(url.toString());
  } finally {
    await admin.unsafe(`drop database if exists ${db} with (force)`);
    await admin.end();
  }
}

/** Milliseconds taken by fn. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}
