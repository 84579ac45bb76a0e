/**
 * Is this Worker ready for traffic? The config the Worker would load is valid (schema and cross references, the same
 * `parseConfig` every request uses), every secret it names is set, and every shard's D1 binding exists. Pure: the
 * caller says how a secret or a binding is looked up, so the Worker (`GET /readyz`, the dashboard) and
 * `npm run validate` (.dev.vars, `wrangler secret list`) give the same answer from the same rules. A problem names
 * fields and secrets, never a secret's value.
 */
import { parseConfig } from "./config/parse.ts";
import type { RouterConfig } from "./config/schema.ts";
import { parseKeyRing } from "./envelope.ts";
import type { ProviderRegistry } from "./providers/contract.ts";

/** Where the Worker's config comes from: the `ROUTER_CONFIG` variable (a JSON string), else the bundled file. */
export type ConfigOrigin = "ROUTER_CONFIG" | "router.config.json";

/**
 * A secret the Worker reads. `required`: every name must be set; `one_of`: at least one (a rotation set, where any
 * one verifies); `optional`: the feature it enables is off without it.
 */
export interface SecretRequirement {
  /** Where the config names it; absent for a secret the Worker reads by its own name (ADMIN_TOKEN). */
  field?: string;
  names: string[];
  need: "required" | "one_of" | "optional";
  /** What it is for, in a few words: the checklist's comment. */
  purpose: string;
}

export type ReadinessCheck = "config" | "secret" | "binding";

/** A stable word for each kind of problem, the one part `GET /readyz` gives besides the field and the names. */
export type ReadinessReason = "invalid" | "not_set" | "none_set" | "malformed" | "not_bound";

export interface ReadinessProblem {
  check: ReadinessCheck;
  reason: ReadinessReason;
  /** The config field at fault (`routes[2].destinations[0]`); absent for a secret the Worker reads by its own name. */
  field?: string;
  /** The secrets or bindings concerned, by name. */
  names?: string[];
  /** For people: the config's own words, or what is missing. May quote the config; never a secret's value. */
  message: string;
}

export interface ReadinessInput {
  /** The config as the Worker loads it: a JSON string (`ROUTER_CONFIG`) or an already parsed object. */
  raw: unknown;
  /** Names the config's origin in messages (`ROUTER_CONFIG`, `router.config.json`, a file path). */
  origin: string;
  providers: ProviderRegistry;
  allowInsecureDestinations: boolean;
  /** Whether a secret is set (an empty value counts as unset, as the Worker reads it). */
  isSet: (name: string) => boolean;
  /** Whether a D1 binding of that name exists; omitted, the shards' bindings are not checked. */
  isD1Binding?: (name: string) => boolean;
  /** PAYLOAD_KEYS where it can be read, to check its form too; never reported. */
  payloadKeys?: string;
}

export interface ReadinessReport {
  ready: boolean;
  /** The parsed config, when it is valid. */
  config: RouterConfig | null;
  /** Every secret the Worker would read with this config: the deploy checklist. */
  secrets: SecretRequirement[];
  problems: ReadinessProblem[];
}

/** Secrets the Worker reads by their own name, whatever the config says. */
const WORKER_SECRETS: SecretRequirement[] = [
  // Optional: a router without an admin surface receives, stores and delivers all the same. The dashboard's
  // sign-in page says it is disabled and how to enable it.
  { names: ["ADMIN_TOKEN"], need: "optional", purpose: "the admin API and the dashboard (unset: both are disabled)" },
  {
    names: ["ADMIN_REVEAL_TOKEN"],
    need: "optional",
    purpose: "revealing customer data (unset: payloads are only ever shown redacted)",
  },
];

/** Every secret a config names, by the field that names it, plus the Worker's own. */
export function secretRequirements(config: RouterConfig | null): SecretRequirement[] {
  const out = [...WORKER_SECRETS];
  if (!config) return out;
  if (config.payloadEncryption === "required")
    out.push({
      field: "payloadEncryption",
      names: ["PAYLOAD_KEYS"],
      need: "required",
      purpose: "the key ring that encrypts stored payloads (unset: nothing is stored)",
    });
  for (const [name, source] of Object.entries(config.sources)) {
    if (source.verify.type !== "none")
      out.push({
        field: `sources.${name}.verify.secrets`,
        names: [...source.verify.secrets],
        need: source.verify.secrets.length > 1 ? "one_of" : "required",
        purpose: `verifies ${name}'s webhooks`,
      });
    for (const [type, secret] of Object.entries(source.urlToken?.secrets ?? {}))
      out.push({
        field: `sources.${name}.urlToken.secrets.${type}`,
        names: [secret],
        need: "required",
        purpose: `${name}'s URL token for ${type}`,
      });
  }
  for (const [name, destination] of Object.entries(config.destinations)) {
    // A disabled destination is sent nothing, so its secrets may wait until it is enabled.
    const need = destination.enabled ? "required" : "optional";
    if (destination.signingSecret)
      out.push({
        field: `destinations.${name}.signingSecret`,
        names: [destination.signingSecret],
        need,
        purpose: `signs deliveries to ${name}`,
      });
    const api = destination.weedmapsOrders;
    if (api)
      out.push(
        {
          field: `destinations.${name}.weedmapsOrders.clientId`,
          names: [api.clientId],
          need,
          purpose: `the client id ${name}'s bearer token is fetched with`,
        },
        {
          field: `destinations.${name}.weedmapsOrders.clientSecret`,
          names: [api.clientSecret],
          need,
          purpose: `the client secret ${name}'s bearer token is fetched with`,
        },
      );
    for (const [header, value] of Object.entries(destination.headers))
      out.push({
        field: `destinations.${name}.headers.${header}.secret`,
        names: [value.secret],
        need,
        purpose: `the ${header} header sent to ${name}`,
      });
  }
  for (const [source, relay] of Object.entries(config.relay))
    for (const [system, auth] of Object.entries(relay.systems)) {
      const secret = "token" in auth ? auth.token : auth.signingSecret;
      out.push({
        field: `relay.${source}.systems.${system}.${"token" in auth ? "token" : "signingSecret"}`,
        names: [secret],
        need: "required",
        purpose: `authenticates ${system}'s status updates for ${source}`,
      });
    }
  for (const [name, channel] of Object.entries(config.alerts.channels)) {
    if (channel.type === "slack")
      out.push({
        field: `alerts.channels.${name}.urlSecret`,
        names: [channel.urlSecret],
        need: "required",
        purpose: `the Slack webhook URL of alert channel ${name}`,
      });
    if (channel.type === "webhook" && channel.signingSecret)
      out.push({
        field: `alerts.channels.${name}.signingSecret`,
        names: [channel.signingSecret],
        need: "required",
        purpose: `signs alerts sent to channel ${name}`,
      });
  }
  return out;
}

/** The requirements that are not met, by field. */
function secretProblems(
  requirements: readonly SecretRequirement[],
  isSet: (name: string) => boolean,
): ReadinessProblem[] {
  const problems: ReadinessProblem[] = [];
  for (const requirement of requirements) {
    const missing = requirement.names.filter((name) => !isSet(name));
    if (requirement.need === "required" && missing.length > 0)
      problems.push({
        check: "secret",
        reason: "not_set",
        ...(requirement.field ? { field: requirement.field } : {}),
        names: missing,
        message: `${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} not set: ${requirement.purpose}`,
      });
    if (requirement.need === "one_of" && missing.length === requirement.names.length)
      problems.push({
        check: "secret",
        reason: "none_set",
        ...(requirement.field ? { field: requirement.field } : {}),
        names: missing,
        message: `none of ${missing.join(", ")} is set: ${requirement.purpose}`,
      });
  }
  return problems;
}

/** Parses the config as `loadConfig` does: a string is JSON first, then the schema and the cross references. */
function configProblems(input: ReadinessInput): { config: RouterConfig | null; problems: ReadinessProblem[] } {
  let candidate = input.raw;
  if (typeof candidate === "string") {
    try {
      candidate = JSON.parse(candidate);
    } catch {
      return {
        config: null,
        problems: [
          { check: "config", reason: "invalid", field: "(root)", message: `${input.origin} is not valid JSON` },
        ],
      };
    }
  }
  const result = parseConfig(candidate, {
    providers: input.providers,
    allowInsecureDestinations: input.allowInsecureDestinations,
  });
  if (result.ok) return { config: result.config, problems: [] };
  return {
    config: null,
    problems: result.issues.map((issue) => ({
      check: "config",
      reason: "invalid",
      field: issue.path,
      message: issue.message,
    })),
  };
}

/** Every shard the config names must be a D1 binding of the Worker (src/config/shards.ts refuses it otherwise). */
function bindingProblems(config: RouterConfig, isD1Binding: (name: string) => boolean): ReadinessProblem[] {
  return config.storage.shards.flatMap((shard, i) =>
    isD1Binding(shard.binding)
      ? []
      : [
          {
            check: "binding" as const,
            reason: "not_bound" as const,
            field: `storage.shards[${i}].binding`,
            names: [shard.binding],
            message: `${shard.binding} is not a D1 binding of this Worker: add a [[d1_databases]] block for it to wrangler.toml`,
          },
        ],
  );
}

export async function checkReadiness(input: ReadinessInput): Promise<ReadinessReport> {
  const { config, problems } = configProblems(input);
  const secrets = secretRequirements(config);
  problems.push(...secretProblems(secrets, input.isSet));
  if (config && input.isD1Binding) problems.push(...bindingProblems(config, input.isD1Binding));
  if (config?.payloadEncryption === "required" && input.payloadKeys !== undefined && input.isSet("PAYLOAD_KEYS")) {
    // Only whether it parses: the parser's own reason may quote a key id, which is part of the value.
    const ring = await parseKeyRing(input.payloadKeys);
    if (!ring.ok)
      problems.push({
        check: "secret",
        reason: "malformed",
        field: "payloadEncryption",
        names: ["PAYLOAD_KEYS"],
        message: "PAYLOAD_KEYS is not a key ring: expected <key id>:<base64 of 32 bytes>, comma-separated",
      });
  }
  return { ready: problems.length === 0, config, secrets, problems };
}

/**
 * What `GET /readyz` shows anyone who asks: each failing check by kind, reason, field and names. The messages are
 * left out: they may quote the config (a destination's name, a route's), which is the operator's business.
 */
export function publicReadiness(report: ReadinessReport) {
  return {
    ready: report.ready,
    checks: report.problems.map(({ check, reason, field, names }) => ({
      check,
      reason,
      ...(field !== undefined ? { field } : {}),
      ...(names ? { names } : {}),
    })),
  };
}
