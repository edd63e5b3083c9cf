// Starts the local stack once per test process, in-process, on a free port: against
// DATABASE_URL when set (CI: PostgreSQL), else a throwaway in-memory PGlite.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startStack, type Stack } from "../../dev/stack.ts";

let started: Promise<Stack> | undefined;

export function getStack(): Promise<Stack> {
  started ??= (async () => {
    const stateDir = await mkdtemp(join(tmpdir(), "agency-os-test-"));
    return startStack({
      root: join(import.meta.dirname, "../.."),
      port: 0,
      dataDir: "memory://",
      stateDir,
      qstashBackoffScale: 0.001,
      schedules: false,
    });
  })();
  return started;
}

let counter = 0;
/** A suffix unique to this run, so tests never collide with rows from earlier runs (PostgreSQL mode). */
export function unique(prefix = "t"): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}-${counter}`;
}

export interface TestUser {
  userId: string;
  clientId: string | null;
  email: string;
  token: string;
}

/** Creates a user (and client/membership) through the stack's dev route, as `npm run dev:user` does. */
export async function makeUser(stack: Stack, opts: { client?: string; role?: "owner" | "member" | "viewer" | "admin" } = {}): Promise<TestUser> {
  const email = `${unique("user")}@example.com`;
  const res = await fetch(`${stack.url}/_dev/users`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${stack.serviceKey}` },
    body: JSON.stringify({ email, client: opts.client, role: opts.role ?? "owner" }),
  });
  if (res.status !== 201) throw new Error(`makeUser: ${res.status} ${await res.text()}`);
  const body = await res.json();
  return { userId: body.user_id, clientId: body.client_id, email, token: body.token };
}

/** fetch against a function with a bearer token and JSON body. */
export async function call(
  stack: Stack,
  path: string,
  opts: { token?: string; method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["content-type"] ??= "application/json";
  const res = await fetch(`${stack.url}/functions/v1/${path.replace(/^\//, "")}`, {
    method: opts.method ?? (opts.body !== undefined ? "POST" : "GET"),
    headers,
    body: opts.body === undefined ? undefined : typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON
  }
  return { status: res.status, body, headers: res.headers };
}

/** A lead payload for POST /leads. */
export function leadInput(overrides: Record<string, unknown> = {}) {
  const u = unique("lead");
  return { email: `${u}@prospect.example`, first_name: "Ada", last_name: "Lovelace", company_name: `Co ${u}`, title: "Head of Growth", ...overrides };
}
