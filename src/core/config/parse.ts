import { BUILTIN_PROVIDERS } from "../providers/registry.ts";
import type { ProviderRegistry } from "../providers/contract.ts";
import { buildConfigSchema, type RouterConfig } from "./schema.ts";

export interface ParseConfigOptions {
  /** The providers a source may name; the built-in ones unless a deployment (or a test) adds its own. */
  providers?: ProviderRegistry;
  /** Local development only: allow plain http:// destinations that are not on loopback. */
  allowInsecureDestinations?: boolean;
}

/** One bad field: its path in the config (`routes[2].destinations[0]`, `(root)` for the whole) and what is wrong. */
export interface ConfigIssue {
  path: string;
  message: string;
}

/** `errors` are the issues as `path: message` lines, the form the admin API and the logs have always shown. */
export type ParseConfigResult =
  | { ok: true; config: RouterConfig }
  | { ok: false; errors: string[]; issues: ConfigIssue[] };

function failed(issues: ConfigIssue[]): ParseConfigResult {
  return { ok: false, errors: issues.map((issue) => `${issue.path}: ${issue.message}`), issues };
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (out, key) => (typeof key === "number" ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)),
    "",
  );
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
    return failed(
      parsed.error.issues.map((issue) => ({ path: formatPath(issue.path) || "(root)", message: issue.message })),
    );
  }
  const issues: ConfigIssue[] = [];
  // Destinations and alert channels are held to the same rules: the config is shown by the admin API and kept in
  // the repository, so a URL in it must carry no credentials, and plain http leaves the machine only when allowed.
  const checkUrl = (at: string, raw: string, credentialsAdvice: string) => {
    const url = new URL(raw);
    if (url.username || url.password)
      issues.push({ path: at, message: `must not carry credentials; ${credentialsAdvice}` });
    if (url.protocol === "http:" && !isLoopback(url.hostname) && !options.allowInsecureDestinations) {
      issues.push({
        path: at,
        message: "must be https (plain http is allowed only on loopback or with ALLOW_INSECURE_DESTINATIONS=true)",
      });
    }
  };
  for (const [name, destination] of Object.entries(parsed.data.destinations)) {
    checkUrl(`destinations.${name}.url`, destination.url, "use headers with a secret instead");
  }
  for (const [name, channel] of Object.entries(parsed.data.alerts.channels)) {
    if (channel.type === "webhook")
      checkUrl(
        `alerts.channels.${name}.url`,
        channel.url,
        "use a slack channel's urlSecret or a destination channel instead",
      );
  }
  return issues.length ? failed(issues) : { ok: true, config: parsed.data };
}
