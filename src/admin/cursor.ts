import { RouterError } from "../core/errors.ts";

/** Keyset cursors: the last row's key, as URL-safe base64 of a JSON array. Opaque to the caller. */
function encodeCursor(parts: unknown[]): string {
  return btoa(JSON.stringify(parts)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A full page means there may be more: its last row's key becomes the cursor of the next. */
export function nextCursor<T>(rows: readonly T[], limit: number, keyOf: (row: T) => unknown[]): string | null {
  const last = rows.at(-1);
  return rows.length === limit && last !== undefined ? encodeCursor(keyOf(last)) : null;
}

export function decodeCursor(cursor: string, arity: number): unknown[] {
  try {
    const parts: unknown = JSON.parse(atob(cursor.replace(/-/g, "+").replace(/_/g, "/")));
    if (Array.isArray(parts) && parts.length === arity) return parts;
  } catch {
    // fall through
  }
  throw new RouterError("invalid_request", { details: ["cursor: is not a cursor this API issued"] });
}
