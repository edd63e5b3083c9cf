// Keyset pagination: the cursor is the (created_at, id) of the last row, opaque to callers.
import { AppError } from "./errors.ts";

export interface Cursor {
  createdAt: string;
  id: string;
}

export function encodeCursor(row: { created_at: Date | string; id: string }): string {
  const createdAt = row.created_at instanceof Date ? row.created_at.toISOString() : row.created_at;
  return btoa(JSON.stringify([createdAt, row.id])).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes a cursor; a tampered one is the caller's mistake (400 naming `cursor`). */
export function decodeCursor(cursor: string | undefined): Cursor | null {
  if (!cursor) return null;
  try {
    const json = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"));
    const [createdAt, id] = JSON.parse(json);
    if (typeof createdAt !== "string" || Number.isNaN(Date.parse(createdAt)) || typeof id !== "string" || !/^[0-9a-f-]{36}$/i.test(id)) {
      throw new Error("shape");
    }
    return { createdAt, id };
  } catch {
    throw new AppError("validation_failed", "invalid query: cursor", [{ field: "cursor", message: "not a cursor from this API" }]);
  }
}

/** Splits limit+1 fetched rows into the page and the next cursor (keyed by key(row)). */
export function page<T>(
  rows: T[],
  limit: number,
  key: (row: T) => { created_at: Date | string; id: string } = (row) => row as { created_at: Date; id: string },
) {
  const data = rows.slice(0, limit);
  const next = rows.length > limit ? encodeCursor(key(data[data.length - 1])) : null;
  return { data, next_cursor: next };
}
