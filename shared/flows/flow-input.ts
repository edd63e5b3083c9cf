// Flow messages carry extra fields (outbox_id, topic): inputs are parsed leniently.
import type { z } from "@hono/zod-openapi";

export function schemaOrEmpty<S extends z.ZodTypeAny>(schema: S): S {
  const s = schema as unknown as { passthrough?: () => S };
  return typeof s.passthrough === "function" ? s.passthrough() : schema;
}
