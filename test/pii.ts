// The customer data in the provider fixtures, read through the PII paths each adapter declares: what no log line,
// error body, alert or raw database column may ever contain. Shared by the Worker tests and the e2e test.
import { redactPaths, valuesAt } from "../src/core/redact.ts";
import { BUILTIN_PROVIDERS } from "../src/core/providers/registry.ts";

/**
 * Every string at a PII path of a fixture, except short ones and those that also appear outside the PII (a city the
 * store shares with the customer's address is not a leak of the customer).
 */
export function piiValues(fixtures: Record<string, string>): string[] {
  const found = new Set<string>();
  for (const [name, body] of Object.entries(fixtures)) {
    const adapter = BUILTIN_PROVIDERS[name.split("/")[0]!];
    if (!adapter || adapter.piiPaths.length === 0) continue;
    const parsed: unknown = JSON.parse(body);
    const rest = JSON.stringify(redactPaths(parsed, adapter.piiPaths).value);
    for (const value of valuesAt(parsed, adapter.piiPaths)) {
      if (typeof value === "string" && value.length >= 5 && !rest.includes(value)) found.add(value);
    }
  }
  return [...found].sort();
}

/**
 * The values of `values` that `text` shows, each counted only where it stands alone: not run together with a letter
 * or digit on either side. A leaked value is a field's whole text or a word in a sentence; the same five characters
 * inside a random id, a timestamp or base64 ciphertext are chance (a request id once held "4242", and failed CI).
 */
export function shownIn(text: string, values: readonly string[]): string[] {
  return values.filter((value) =>
    new RegExp(`(?<![0-9A-Za-z])${value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![0-9A-Za-z])`).test(text),
  );
}
