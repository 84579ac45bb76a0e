/**
 * Redaction of customer data in a stored payload, by the paths a provider adapter declares (`piiPaths`). A path is
 * dot-separated keys; `*` matches any one key or array index, and `**` any number of levels (`**.email` is every
 * `email` at any depth). A matched value is replaced whole, so a customer object goes as one.
 */
export const REDACTED = "[redacted]";

type Segments = readonly string[];

function matches(path: Segments, at: Segments): boolean {
  if (path.length === 0) return at.length === 0;
  const [head, ...rest] = path;
  if (head === "**") return matches(rest, at) || (at.length > 0 && matches(path, at.slice(1)));
  return at.length > 0 && (head === "*" || head === at[0]) && matches(rest, at.slice(1));
}

export interface Redaction {
  value: unknown;
  /** Where something was replaced, as concrete paths (`results.0.buyer`): field names, never values. */
  redacted: string[];
}

/** Pure: a copy of `value` with every match of `paths` replaced by `REDACTED`. */
export function redactPaths(value: unknown, paths: readonly string[]): Redaction {
  const patterns = paths.map((p) => p.split("."));
  const redacted: string[] = [];
  const walk = (node: unknown, at: string[]): unknown => {
    if (at.length > 0 && patterns.some((p) => matches(p, at))) {
      redacted.push(at.join("."));
      return REDACTED;
    }
    if (Array.isArray(node)) return node.map((item, i) => walk(item, [...at, String(i)]));
    if (node !== null && typeof node === "object") {
      return Object.fromEntries(
        Object.entries(node as Record<string, unknown>).map(([k, v]) => [k, walk(v, [...at, k])]),
      );
    }
    return node;
  };
  return { value: walk(value, []), redacted };
}

/** The values at `paths` (leaves only): what a test must never find in logs or storage. */
export function valuesAt(value: unknown, paths: readonly string[]): unknown[] {
  const patterns = paths.map((p) => p.split("."));
  const found: unknown[] = [];
  const leaves = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(leaves);
    else if (node !== null && typeof node === "object") Object.values(node).forEach(leaves);
    else found.push(node);
  };
  const walk = (node: unknown, at: string[]) => {
    if (at.length > 0 && patterns.some((p) => matches(p, at))) return leaves(node);
    if (Array.isArray(node)) {
      for (const [i, item] of node.entries()) walk(item, [...at, String(i)]);
    } else if (node !== null && typeof node === "object")
      for (const [k, v] of Object.entries(node)) walk(v, [...at, k]);
  };
  walk(value, []);
  return found;
}
