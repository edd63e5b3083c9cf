// Who is calling: the verified JWT subject and their memberships, loaded from the database once
// per request. Functions use it for 403s that read well; RLS still decides every row.
import type { MiddlewareHandler } from "hono";
import { db, type JwtClaims } from "../db/client.ts";
import { AppError } from "../http/errors.ts";
import type { AppEnv } from "../http/app.ts";
import { bearerToken, verifyJwt } from "./jwt.ts";

export type MemberRole = "owner" | "member" | "viewer";

export interface Caller {
  userId: string;
  email: string | null;
  isAdmin: boolean;
  memberships: Array<{ clientId: string; role: MemberRole }>;
  claims: JwtClaims;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function loadCaller(token: string): Promise<Caller> {
  const claims = await verifyJwt(token);
  if (!claims.sub || !UUID.test(claims.sub) || claims.role !== "authenticated") {
    throw new AppError("unauthorized", "a signed-in user's token is required");
  }
  const [row] = await db()`
    select u.email,
           exists (select 1 from public.platform_admins a where a.user_id = u.id) as is_admin,
           coalesce((select json_agg(json_build_object('clientId', m.client_id, 'role', m.role))
                     from public.client_members m where m.user_id = u.id), '[]'::json) as memberships
    from auth.users u where u.id = ${claims.sub}::uuid`;
  if (!row) throw new AppError("unauthorized", "the token's user does not exist");
  return {
    userId: claims.sub,
    email: row.email,
    isAdmin: row.is_admin,
    memberships: row.memberships,
    claims: claims as JwtClaims,
  };
}

/** Requires a signed-in user; sets c.var.caller. */
export function requireUser(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const token = bearerToken(c.req.header("authorization"));
    if (!token) throw new AppError("unauthorized", "missing bearer token in the Authorization header");
    c.set("caller", await loadCaller(token));
    await next();
  };
}

/** Requires a platform admin (after requireUser). */
export function requireAdmin(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!c.var.caller?.isAdmin) throw new AppError("forbidden", "only agency admins can do this");
    await next();
  };
}

/** The caller's role in a client, or null; admins count as owners everywhere. */
export function roleIn(caller: Caller, clientId: string): MemberRole | null {
  if (caller.isAdmin) return "owner";
  return caller.memberships.find((m) => m.clientId === clientId)?.role ?? null;
}
