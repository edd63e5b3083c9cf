// The local stack's keys: generated at random on first start and kept in .local/secrets.json
// (git-ignored), so nothing secret is committed and restarts keep issued tokens valid.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { SignJWT } from "jose";

export interface LocalSecrets {
  jwtSecret: string;
  qstashToken: string;
  qstashCurrentSigningKey: string;
  qstashNextSigningKey: string;
  redisToken: string;
}

function random(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...b)).replace(/[+/=]/g, "").slice(0, bytes);
}

/** Reads the secrets file, creating it with fresh random values (and any missing field) first. */
export async function loadLocalSecrets(path: string): Promise<LocalSecrets> {
  let stored: Partial<LocalSecrets> = {};
  try {
    stored = JSON.parse(await readFile(path, "utf8"));
  } catch {
    // first start
  }
  const secrets: LocalSecrets = {
    jwtSecret: stored.jwtSecret ?? random(48),
    qstashToken: stored.qstashToken ?? random(32),
    qstashCurrentSigningKey: stored.qstashCurrentSigningKey ?? `sig_${random(28)}`,
    qstashNextSigningKey: stored.qstashNextSigningKey ?? `sig_${random(28)}`,
    redisToken: stored.redisToken ?? random(32),
  };
  if (JSON.stringify(stored) !== JSON.stringify(secrets)) {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(`${path}.tmp`, JSON.stringify(secrets, null, 2), { mode: 0o600 });
    await rename(`${path}.tmp`, path);
  }
  return secrets;
}

/** A Supabase-style JWT signed with the local secret: role anon, service_role or a user's. */
export function signLocalJwt(
  secret: string,
  claims: { role: "anon" | "service_role" | "authenticated"; sub?: string; email?: string },
  ttlSeconds: number,
): Promise<string> {
  return new SignJWT({ ...claims, iss: "agency-os-local" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}
