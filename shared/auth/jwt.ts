// Verifies a portal user's bearer JWT: HS256 with the project's JWT secret, or the project's
// JWKS (asymmetric keys), whichever the environment configures.
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from "jose";
import { env } from "../config/env.ts";
import { AppError } from "../http/errors.ts";

let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

export interface VerifiedToken extends JWTPayload {
  sub?: string;
  role?: string;
  email?: string;
}

/** Verifies signature and expiry; throws AppError(unauthorized) with a reason the caller can fix. */
export async function verifyJwt(token: string): Promise<VerifiedToken> {
  const { SUPABASE_JWT_SECRET, SUPABASE_JWKS_URL } = env();
  try {
    if (SUPABASE_JWKS_URL) {
      jwks ??= createRemoteJWKSet(new URL(SUPABASE_JWKS_URL));
      return (await jwtVerify(token, jwks)).payload as VerifiedToken;
    }
    const key = new TextEncoder().encode(SUPABASE_JWT_SECRET);
    return (await jwtVerify(token, key, { algorithms: ["HS256"] })).payload as VerifiedToken;
  } catch (err) {
    const code = (err as { code?: string }).code;
    const reason = code === "ERR_JWT_EXPIRED" ? "the token has expired" : "the token is not valid";
    throw new AppError("unauthorized", reason);
  }
}

/** The bearer token of an Authorization header, or undefined. */
export function bearerToken(header: string | undefined | null): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? "");
  return m?.[1];
}
