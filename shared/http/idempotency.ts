// Honours Idempotency-Key on creating POSTs: the first response (2xx or 4xx) is stored by caller,
// function and key and replayed for a retry with the same body; the same key with another body is
// a 422, and a retry while the first is still running is a 409. A 5xx stores nothing, so the
// caller can retry.
import type { MiddlewareHandler } from "hono";
import { db } from "../db/client.ts";
import type { AppEnv } from "./app.ts";
import { AppError } from "./errors.ts";

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Middleware for a creating POST; must run after requireUser(). */
export function idempotent(functionName: string): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const key = c.req.header("idempotency-key");
    const caller = c.var.caller;
    if (!key || !caller) return next();
    if (key.length > 255) throw new AppError("validation_failed", "invalid header: idempotency-key", [{ field: "idempotency-key", message: "at most 255 characters" }]);

    const hash = await sha256Hex(`${c.req.method} ${c.req.path}\n${await c.req.text()}`);
    const sql = db();
    const inserted = await sql`
      insert into public.idempotency_keys (user_id, function_name, key, request_hash)
      values (${caller.userId}, ${functionName}, ${key}, ${hash})
      on conflict do nothing returning key`;
    if (inserted.length === 0) {
      const [prior] = await sql`
        select request_hash, status_code, response from public.idempotency_keys
        where user_id = ${caller.userId} and function_name = ${functionName} and key = ${key}`;
      if (!prior) throw new AppError("conflict", "a request with this Idempotency-Key just failed; retry");
      if (prior.request_hash !== hash) {
        throw new AppError("idempotency_key_reused", "this Idempotency-Key was used with a different request");
      }
      if (prior.status_code === null) {
        throw new AppError("conflict", "a request with this Idempotency-Key is still in progress");
      }
      c.header("idempotent-replayed", "true");
      return c.json(prior.response, prior.status_code);
    }

    try {
      await next();
    } catch (err) {
      await sql`delete from public.idempotency_keys where user_id = ${caller.userId} and function_name = ${functionName} and key = ${key}`;
      throw err;
    }
    // Hono's onError has already turned a thrown error into c.res by now.
    const status = c.res.status;
    if (status >= 500) {
      await sql`delete from public.idempotency_keys where user_id = ${caller.userId} and function_name = ${functionName} and key = ${key}`;
      return;
    }
    const body = await c.res.clone().json().catch(() => null);
    await sql`
      update public.idempotency_keys set status_code = ${status}, response = ${sql.json(body)}
      where user_id = ${caller.userId} and function_name = ${functionName} and key = ${key}`;
  };
}
