import { BUILTIN_PROVIDERS } from "../providers/registry.ts";
import type { ProviderRegistry } from "../providers/contract.ts";
import { buildConfigSchema, type RouterConfig } from "./schema.ts";

export interface ParseConfigOptions {
  /** The providers a source may name; the built-in ones unless a deployment (or a test) adds its own. */
  providers?: ProviderRegistry;
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

const schemas = new WeakMap<ProviderRegistry, ReturnType<typeof buildConfigSchema>>();

function schemaFor(providers: ProviderRegistry) {
  let schema = schemas.get(providers);
  if (!schema) {
    schema = buildConfigSchema(providers);
    schemas.set(providers, schema);
  }
  return schema;
}

/** Pure: validates a config object and names every bad field, e.g. `routes[2].destinations[0]: unknown destination "posx"`. */
export function parseConfig(raw: unknown, options: ParseConfigOptions = {}): ParseConfigResult {
  const parsed = schemaFor(options.providers ?? BUILTIN_PROVIDERS).safeParse(raw);
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
  for (const [name, channel] of Object.entries(parsed.data.alerts.channels)) {
    if (channel.type !== "webhook") continue;
    const url = new URL(channel.url);
    if (url.protocol === "http:" && !isLoopback(url.hostname) && !options.allowInsecureDestinations) {
      errors.push(`alerts.channels.${name}.url: must be https (plain http is allowed only on loopback or with ALLOW_INSECURE_DESTINATIONS=true)`);
    }
  }
  return errors.length ? { ok: false, errors } : { ok: true, config: parsed.data };
}
