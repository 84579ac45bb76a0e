/** Reads a dotted path such as `dispensary_location.license_number` (or `results.0.id`) from parsed JSON. */
export function readField(value: unknown, path: string): unknown {
  let current: unknown = value;
  for (const key of path.split(".")) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** A scalar field as the string used for merchants, ids and keys; objects and arrays are not identities. */
export function readScalar(value: unknown, path: string): string | undefined {
  const field = readField(value, path);
  if (typeof field === "string") return field.length > 0 ? field : undefined;
  if (typeof field === "number" || typeof field === "boolean") return String(field);
  return undefined;
}

/**
 * Whether JSON text nests deeper than `maxDepth` objects and arrays, by one pass over the characters (strings and
 * their escapes skipped), so a hostile 120,000-level body is refused before `JSON.parse` builds it.
 */
export function nestsDeeperThan(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c)
        i++; // a backslash escapes the next character
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) inString = true;
    else if (ch === 0x7b || ch === 0x5b) {
      if (++depth > maxDepth) return true;
    } else if (ch === 0x7d || ch === 0x5d) depth--;
  }
  return false;
}
