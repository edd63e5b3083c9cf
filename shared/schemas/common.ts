// Schemas every function shares: the error body, ids, and cursor pagination.
import { z } from "@hono/zod-openapi";

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "validation_failed" }),
      message: z.string().openapi({ example: "invalid json: email" }),
      details: z.unknown().optional(),
    }),
  })
  .openapi("Error");

/** Standard error responses, to spread into a route's `responses`. */
export function errorResponses(...statuses: Array<400 | 401 | 403 | 404 | 409 | 413 | 422 | 503>) {
  const text: Record<number, string> = {
    400: "Invalid input; details name each bad field",
    401: "Missing, invalid or expired token",
    403: "Not allowed for this caller",
    404: "Not found (or not visible to this caller)",
    409: "Conflicts with the current state",
    413: "Body too large",
    422: "Idempotency-Key reused with a different body",
    503: "A dependency is unavailable",
  };
  return Object.fromEntries(
    statuses.map((s) => [s, { description: text[s], content: { "application/json": { schema: ErrorSchema } } }]),
  ) as Record<number, { description: string; content: { "application/json": { schema: typeof ErrorSchema } } }>;
}

export const UuidParam = z.string().uuid().openapi({ example: "6f1c2f7e-7d0e-4a51-9b1e-3d1b4f1f0a11" });

export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50).openapi({ description: "Page size, 1–100" }),
  cursor: z.string().max(500).optional().openapi({ description: "next_cursor from the previous page" }),
});

export function pageOf<T extends z.ZodTypeAny>(item: T, name: string) {
  return z
    .object({
      data: z.array(item),
      next_cursor: z.string().nullable().openapi({ description: "Pass as cursor for the next page; null at the end" }),
    })
    .openapi(name);
}

export const IdempotencyHeader = z.object({
  "idempotency-key": z
    .string()
    .min(1)
    .max(255)
    .optional()
    .openapi({ description: "Retrying a creating POST with the same key and body returns the first response" }),
});

/** A route's JSON response entry: `{ 200: jsonContent(Schema, "…") }`. */
export function jsonContent<T extends z.ZodTypeAny>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

/** The security requirement of routes that take a user's bearer JWT. */
export const BEARER = [{ bearer: [] }];

/** A database row for a JSON response: Date values as ISO strings, everything else as is. */
export function isoDates(row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v]));
}
