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
