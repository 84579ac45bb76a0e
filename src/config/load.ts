import bundledConfig from "../../router.config.json";
import { RouterError } from "../errors";
import { logEvent } from "../log";
import { RouterConfigSchema, type RouterConfig } from "./schema";

export interface ParseConfigOptions {
  /** Local development only: allow plain http:// destinations that are not on loopback. */
  allowInsecureDestinations?: boolean;
}

export type ParseConfigResult = { ok: true; config: RouterConfig } | { ok: false; errors: string[] };

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === "number" ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), "");
}

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

function isLoopback(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** Pure: validates a config object and names every bad field, e.g. `routes[2].destinations[0]: unknown destination "posx"`. */
export function parseConfig(raw: unknown, options: ParseConfigOptions = {}): ParseConfigResult {
  const parsed = RouterConfigSchema.safeParse(raw);
  if (!parsed.success) {
    return { ok: false, errors: parsed.error.issues.map((issue) => `${formatPath(issue.path) || "(root)"}: ${issue.message}`) };
  }
  const errors: string[] = [];
  for (const [name, destination] of Object.entries(parsed.data.destinations)) {
    const url = new URL(destination.url);
    if (url.username || url.password) {
      errors.push(`destinations.${name}.url: must not carry credentials; use headers with a secret instead`);
    }
    if (url.protocol === "http:" && !isLoopback(url.hostname) && !options.allowInsecureDestinations) {
      errors.push(`destinations.${name}.url: must be https (plain http is allowed only on loopback or with ALLOW_INSECURE_DESTINATIONS=true)`);
    }
  }
  return errors.length ? { ok: false, errors } : { ok: true, config: parsed.data };
}

let cache: { raw: unknown; insecure: boolean; config: RouterConfig } | undefined;

/**
 * The active config: the `ROUTER_CONFIG` variable (a JSON string) when set, otherwise the bundled router.config.json.
 * Parsed once per isolate; an invalid config fails closed with 503 so providers retry once it is fixed.
 */
export function loadConfig(env: Env): RouterConfig {
  const override = readVar(env, "ROUTER_CONFIG");
  const raw: unknown = override ?? bundledConfig;
  const insecure = readVar(env, "ALLOW_INSECURE_DESTINATIONS") === "true";
  if (cache && cache.raw === raw && cache.insecure === insecure) return cache.config;

  let candidate: unknown = raw;
  if (typeof raw === "string") {
    try {
      candidate = JSON.parse(raw);
    } catch {
      logEvent("error", "config_invalid", { errors: ["ROUTER_CONFIG: is not valid JSON"] });
      throw new RouterError("config_invalid", { detail: "ROUTER_CONFIG is not valid JSON" });
    }
  }
  const result = parseConfig(candidate, { allowInsecureDestinations: insecure });
  if (!result.ok) {
    logEvent("error", "config_invalid", { errors: result.errors });
    throw new RouterError("config_invalid", { detail: result.errors.join("; ") });
  }
  cache = { raw, insecure, config: result.config };
  return result.config;
}

/** Secrets and plain vars are looked up by the names the config gives; an empty value counts as unset. */
export function readVar(env: Env, name: string): string | undefined {
  const value = (env as unknown as Record<string, unknown>)[name];
  return typeof value === "string" && value.length > 0 ? value : undefined;
}
