import bundledConfig from "../../router.config.json" with { type: "json" };
import { parseConfig } from "../core/config/parse.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import type { ConfigOrigin } from "../core/readiness.ts";
import { RouterError } from "../core/errors.ts";
import type { ProviderRegistry } from "../core/providers/contract.ts";
import { BUILTIN_PROVIDERS } from "../core/providers/registry.ts";
import { logEvent } from "../telemetry/log.ts";

let cache: { raw: unknown; insecure: boolean; providers: ProviderRegistry; config: RouterConfig } | undefined;

/**
 * The active config: the `ROUTER_CONFIG` variable (a JSON string) when set, otherwise the bundled router.config.json.
 * Parsed once per isolate; an invalid config fails closed with 503 so providers retry once it is fixed.
 */
export function loadConfig(env: Env, providers: ProviderRegistry = BUILTIN_PROVIDERS): RouterConfig {
  const { raw } = configSource(env);
  const insecure = insecureDestinationsAllowed(env);
  if (cache && cache.raw === raw && cache.insecure === insecure && cache.providers === providers) return cache.config;

  let candidate: unknown = raw;
  if (typeof raw === "string") {
    try {
      candidate = JSON.parse(raw);
    } catch {
      logEvent("error", "config_invalid", { errors: ["ROUTER_CONFIG: is not valid JSON"] });
      throw new RouterError("config_invalid", { detail: "ROUTER_CONFIG is not valid JSON" });
    }
  }
  const result = parseConfig(candidate, { providers, allowInsecureDestinations: insecure });
  if (!result.ok) {
    logEvent("error", "config_invalid", { errors: result.errors });
    throw new RouterError("config_invalid", { detail: result.errors.join("; ") });
  }
  cache = { raw, insecure, providers, config: result.config };
  return result.config;
}

/** Where the active config comes from, and its raw form: a JSON string (`ROUTER_CONFIG`) or the bundled object. */
export function configSource(env: Env): { origin: ConfigOrigin; raw: unknown } {
  const override = readVar(env, "ROUTER_CONFIG");
  return override === undefined
    ? { origin: "router.config.json", raw: bundledConfig }
    : { origin: "ROUTER_CONFIG", raw: override };
}

/** Local development only (`ALLOW_INSECURE_DESTINATIONS=true`): plain http:// destinations off loopback. */
export function insecureDestinationsAllowed(env: Env): boolean {
  return readVar(env, "ALLOW_INSECURE_DESTINATIONS") === "true";
}

/** Secrets and plain vars are looked up by the names the config gives; an empty value counts as unset. */
export function readVar(env: Env, name: string): string | undefined {
  const value = (env as unknown as Record<string, unknown>)[name];
  return typeof value === "string" && value.length > 0 ? value : undefined;
}
