/** The active configuration (secrets by name only), validation of a proposed one, and the routing dry run. */
import type { z } from "@hono/zod-openapi";
import { insecureDestinationsAllowed, readVar } from "../config/load.ts";
import { parseConfig } from "../core/config/parse.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import { dryRun, type DryRunEvent } from "../core/dry-run.ts";
import { configOf, type OperationContext } from "./context.ts";
import type { DryRunBody, ProposedConfig } from "./inputs.ts";

export type { DryRunEvent } from "../core/dry-run.ts";
export type { RouterConfig } from "../core/config/schema.ts";

function referencedSecrets(config: RouterConfig): string[] {
  const names = new Set<string>(config.payloadEncryption === "required" ? ["PAYLOAD_KEYS"] : []);
  for (const source of Object.values(config.sources)) {
    if (source.verify.type !== "none") for (const name of source.verify.secrets) names.add(name);
  }
  for (const destination of Object.values(config.destinations)) {
    names.add(destination.signingSecret);
    for (const header of Object.values(destination.headers)) names.add(header.secret);
  }
  return [...names].sort();
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
