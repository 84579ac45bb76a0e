import { checkReadiness, type ReadinessReport } from "../core/readiness.ts";
import type { ProviderRegistry } from "../core/providers/contract.ts";
import { BUILTIN_PROVIDERS } from "../core/providers/registry.ts";
import { configSource, insecureDestinationsAllowed, readVar } from "./load.ts";

/**
 * This Worker's readiness (src/core/readiness.ts) from its own bindings: the config `loadConfig` would load, the
 * secrets as `readVar` reads them, and the D1 bindings as src/config/shards.ts resolves them.
 */
export function workerReadiness(env: Env, providers: ProviderRegistry = BUILTIN_PROVIDERS): Promise<ReadinessReport> {
  const { origin, raw } = configSource(env);
  const bindings = env as unknown as Record<string, unknown>;
  return checkReadiness({
    raw,
    origin,
    providers,
    allowInsecureDestinations: insecureDestinationsAllowed(env),
    isSet: (name) => readVar(env, name) !== undefined,
    isD1Binding: (name) => typeof (bindings[name] as D1Database | undefined)?.prepare === "function",
    payloadKeys: readVar(env, "PAYLOAD_KEYS"),
  });
}
