// Routes only the local stack serves, behind its service key: creating users (Supabase Auth does
// not run here) with a client and membership, and minting their JWTs. `npm run dev:user` calls it.
import { Hono } from "hono";
import { z } from "zod";
import type postgres from "postgres";
import { jwtVerify } from "jose";
import { signLocalJwt } from "./local-secrets.ts";

export const DevUserRequest = z.object({
  email: z.string().trim().toLowerCase().email(),
  client: z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, "client slug: lowercase letters, digits and dashes").optional(),
  role: z.enum(["owner", "member", "viewer", "admin"]).default("owner"),
  ttl_seconds: z.number().int().min(60).max(30 * 86400).default(86400),
});

export function devRoutes(sql: () => postgres.Sql, jwtSecret: string) {
  const app = new Hono();
  const key = new TextEncoder().encode(jwtSecret);

  app.use("*", async (c, next) => {
    const token = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
    try {
      const { payload } = await jwtVerify(token ?? "", key, { algorithms: ["HS256"] });
      if (payload.role !== "service_role") throw new Error("role");
    } catch {
      return c.json({ error: { code: "unauthorized", message: "the local service key is required" } }, 401);
    }
    await next();
  });

  app.post("/users", async (c) => {
    const parsed = DevUserRequest.safeParse(await c.req.json().catch(() => null));
    if (!parsed.success) {
      const details = parsed.error.issues.map((i) => ({ field: i.path.join(".") || "(body)", message: i.message }));
      return c.json({ error: { code: "validation_failed", message: `invalid json: ${details.map((d) => d.field).join(", ")}`, details } }, 400);
    }
    const { email, client, role, ttl_seconds } = parsed.data;
    const result = await sql().begin(async (tx) => {
      const [user] = await tx`
        insert into auth.users (email) values (${email})
        on conflict (email) do update set updated_at = now()
        returning id`;
      let clientId: string | null = null;
      if (role === "admin") {
        await tx`insert into public.platform_admins (user_id) values (${user.id}) on conflict do nothing`;
      }
      if (client) {
        const [row] = await tx`
          insert into public.clients (slug, name, status) values (${client}, ${client}, 'active')
          on conflict (slug) do update set slug = excluded.slug
          returning id`;
        clientId = row.id;
        if (role !== "admin") {
          await tx`
            insert into public.client_members (client_id, user_id, role) values (${clientId}, ${user.id}, ${role})
            on conflict (client_id, user_id) do update set role = excluded.role`;
        }
      }
      return { userId: user.id as string, clientId };
    });
    const token = await signLocalJwt(jwtSecret, { role: "authenticated", sub: result.userId, email }, ttl_seconds);
    return c.json({ user_id: result.userId, client_id: result.clientId, email, role, token }, 201);
  });

  return app;
}
