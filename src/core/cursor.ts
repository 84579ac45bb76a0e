import { z } from "zod";
import { RouterError } from "./errors.ts";
import { EVENT_ID_PATTERN } from "./event-id.ts";

/** Keyset cursors: the last row's key, as URL-safe base64 of a JSON array. Opaque to the caller. */
export function encodeCursor(parts: unknown[]): string {
  return btoa(JSON.stringify(parts)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A full page means there may be more: its last row's key becomes the cursor of the next. */
export function nextCursor<T>(rows: readonly T[], limit: number, keyOf: (row: T) => unknown[]): string | null {
  const last = rows.at(-1);
  return rows.length === limit && last !== undefined ? encodeCursor(keyOf(last)) : null;
}

/** The key of an event page: received time and event id. */
export const EventCursorSchema = z.tuple([z.number().int().nonnegative(), z.string().regex(EVENT_ID_PATTERN)]);
/** The key of an audit page: the last entry's id. */
export const AuditCursorSchema = z.tuple([z.string().regex(/^aud_[0-9]{15}_[0-9a-f]{12}$/)]);

/**
 * A cursor is parsed against the shape of the key it stands for: `NaN`, `Infinity` (which JSON turns into null),
 * an object or a string where a number belongs is a 400, never an empty page.
 */
export function decodeCursor<T extends z.ZodType>(cursor: string, schema: T): z.output<T> {
  try {
    const parsed = schema.safeParse(JSON.parse(atob(cursor.replace(/-/g, "+").replace(/_/g, "/"))));
    if (parsed.success) return parsed.data;
  } catch {
    // fall through
  }
  throw new RouterError("invalid_request", { details: ["cursor: is not a cursor this API issued"] });
}
