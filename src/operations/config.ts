/** The active configuration (secrets by name only), validation of a proposed one, and the routing dry run. */
import type { z } from "@hono/zod-openapi";
import { configSource, insecureDestinationsAllowed, readVar } from "../config/load.ts";
import { workerReadiness } from "../config/readiness.ts";
import { parseConfig } from "../core/config/parse.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import { RouterError } from "../core/errors.ts";
import { secretRequirements, type ConfigOrigin, type ReadinessReport } from "../core/readiness.ts";
import { dryRun, type DryRunEvent } from "../core/dry-run.ts";
import { configOf, type OperationContext } from "./context.ts";
import type { DryRunBody, ProposedConfig } from "./inputs.ts";

export type { DryRunEvent } from "../core/dry-run.ts";
export type { RouterConfig } from "../core/config/schema.ts";

/** Every secret the config names (src/core/readiness.ts keeps the one list), sorted. */
function referencedSecrets(config: RouterConfig): string[] {
  const names = secretRequirements(config)
    .filter((requirement) => requirement.field !== undefined)
    .flatMap((requirement) => requirement.names);
  return [...new Set(names)].sort();
}

/** The running config, where it comes from, and whether each secret it names is set (never a value). */
export function activeConfig(ctx: OperationContext) {
  const config = configOf(ctx);
  return {
    origin: readVar(ctx.env, "ROUTER_CONFIG") ? ("ROUTER_CONFIG" as const) : ("router.config.json" as const),
    config,
    secrets: referencedSecrets(config).map((name) => ({ name, set: readVar(ctx.env, name) !== undefined })),
  };
}

/** Whether the Worker is ready for traffic, and if not, each problem by field and secret name (never a value). */
export function readiness(ctx: OperationContext): Promise<ReadinessReport> {
  return workerReadiness(ctx.env, ctx.providers);
}

/**
 * The running config for the Routing page: parsed when it is valid; when it is not, the text it was given, so the
 * page can still offer it to Validate, and null.
 */
export function runningConfig(ctx: OperationContext): {
  origin: ConfigOrigin;
  config: RouterConfig | null;
  text: string;
} {
  const { origin, raw } = configSource(ctx.env);
  try {
    const config = configOf(ctx);
    return { origin, config, text: JSON.stringify(config, null, 2) };
  } catch (err) {
    if (!(err instanceof RouterError && err.code === "config_invalid")) throw err;
    return { origin, config: null, text: typeof raw === "string" ? raw : JSON.stringify(raw, null, 2) };
  }
}

/** Checks a proposed configuration without applying it: deploying it is how a change is made. */
export function validateConfig(
  ctx: OperationContext,
  proposed: z.output<typeof ProposedConfig>,
): { valid: boolean; errors: string[] } {
  const result = parseConfig(proposed, {
    providers: ctx.providers,
    allowInsecureDestinations: insecureDestinationsAllowed(ctx.env),
  });
  return result.ok ? { valid: true, errors: [] } : { valid: false, errors: result.errors };
}

/** Which routes an event would match and which destinations would get it, and why. Writes nothing. */
export function routingDryRun(ctx: OperationContext, request: z.output<typeof DryRunBody>): Promise<DryRunEvent[]> {
  return dryRun(configOf(ctx), ctx.providers, request);
}
