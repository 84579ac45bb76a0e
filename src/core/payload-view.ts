/**
 * How a stored payload is shown to an operator (the admin API, the dashboard): as text when it is UTF-8, base64
 * otherwise, and redacted at the provider's and the source's PII paths unless revealed on purpose.
 */
import type { RouterConfig } from "./config/schema.ts";
import type { ProviderRegistry } from "./providers/contract.ts";
import { REDACTED, redactPaths } from "./redact.ts";
import { encodeBase64 } from "./signatures/encoding.ts";

export interface PayloadView {
  encoding: "utf8" | "base64";
  data: string;
  redacted: string[];
}

/** Stored bytes as the API shows them: text when they are UTF-8, base64 otherwise. */
export function payloadOf(bytes: Uint8Array): PayloadView {
  try {
    return {
      encoding: "utf8",
      data: new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes),
      redacted: [],
    };
  } catch {
    return { encoding: "base64", data: encodeBase64(bytes), redacted: [] };
  }
}

/**
 * A payload as shown without a reveal: the values at the provider's (and source's) PII paths replaced. A body that
 * cannot be read as JSON where there is customer data to hide is hidden whole.
 */
export function redactedPayloadOf(bytes: Uint8Array, paths: readonly string[]): PayloadView {
  const shown = payloadOf(bytes);
  if (paths.length === 0) return shown;
  let parsed: unknown;
  try {
    parsed = shown.encoding === "utf8" ? JSON.parse(shown.data) : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined) return { encoding: "utf8", data: REDACTED, redacted: ["(body)"] };
  const { value, redacted } = redactPaths(parsed, paths);
  return redacted.length === 0 ? shown : { encoding: "utf8", data: JSON.stringify(value), redacted };
}

export function piiPathsOf(config: RouterConfig, providers: ProviderRegistry, sourceName: string): string[] {
  const source = config.sources[sourceName];
  const adapter = source ? providers[source.provider] : undefined;
  // A source no longer configured: nothing says where its customer data is, so all of it is.
  if (!source || !adapter) return ["*"];
  return [...adapter.piiPaths, ...source.piiPaths];
}
