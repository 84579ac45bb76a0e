/**
 * Destinations: their health over a window (D1) with their controls (each one's Durable Object), the dashboard's
 * day of counters, and the audited controls: pause (with a reason), resume, and re-enable after a 410.
 */
import type { z } from "@hono/zod-openapi";
import {
  destinationControls,
  destinationOverview,
  controlDestination as control,
  type ControlView,
} from "../control/client.ts";
import type { DestinationConfig } from "../core/config/schema.ts";
import { errorMessage, RouterError } from "../core/errors.ts";
import type { DeliveryHour } from "../core/rollups.ts";
import { shardsOf } from "../config/shards.ts";
import { destinationHealth as storedHealth, type DestinationHealthRow } from "../storage/admin-queries.ts";
import { logEvent } from "../telemetry/log.ts";
import { configOf, recordAction, type Actor, type OperationContext } from "./context.ts";
import type { HealthQuery } from "./inputs.ts";

export type { ControlView } from "../control/client.ts";
export type { DestinationConfig } from "../core/config/schema.ts";

export type ControlAction = "pause" | "resume" | "enable";

/** A destination's object that cannot be reached shows no controls; the page or answer still comes. */
function unreachable(destination: string, step: string) {
  return (err: unknown) => {
    logEvent("warn", "gate_unavailable", { destination, step, errorMessage: errorMessage(err) });
    return null;
  };
}

export interface DestinationHealth {
  name: string;
  configured: boolean;
  enabled: boolean;
  counts: DestinationHealthRow | null;
  controls: ControlView | null;
  config: DestinationConfig | null;
}

/**
 * Per destination, configured or seen in the window: delivery counts (summed over the shards), last error and
 * success (the latest of any shard), and its controls.
 */
export async function destinationHealth(ctx: OperationContext, { windowHours }: z.output<typeof HealthQuery>) {
  const config = configOf(ctx);
  const now = ctx.clock.now();
  const since = now - windowHours * 3_600_000;
  const stored = await storedHealth(shardsOf(ctx.env, config), since);
  const rows = new Map(stored.rows.map((r) => [r.destination, r]));
  const names = [...new Set([...Object.keys(config.destinations), ...rows.keys()])].sort();
  // One call per configured destination to its object.
  const controls = new Map(
    await Promise.all(
      Object.keys(config.destinations).map(
        async (name) =>
          [name, await destinationControls(ctx.env, name, now).catch(unreachable(name, "health"))] as const,
      ),
    ),
  );
  const destinations: DestinationHealth[] = names.map((name) => ({
    name,
    configured: name in config.destinations,
    enabled: config.destinations[name]?.enabled ?? false,
    counts: rows.get(name) ?? null,
    controls: controls.get(name) ?? null,
    config: config.destinations[name] ?? null,
  }));
  return { since, destinations, looked: stored.looked, complete: stored.complete };
}

export interface DestinationDay {
  name: string;
  controls: ControlView | null;
  hours: DeliveryHour[];
}

/** Each configured destination's controls and last day of counters: one Durable Object call each, no D1 read. */
export async function destinationDays(ctx: OperationContext): Promise<DestinationDay[]> {
  const names = Object.keys(configOf(ctx).destinations).sort();
  const now = ctx.clock.now();
  return Promise.all(
    names.map(async (name) => {
      const view = await destinationOverview(ctx.env, name, now).catch(unreachable(name, "overview"));
      return { name, controls: view?.controls ?? null, hours: view?.hours ?? [] };
    }),
  );
}

/**
 * Pause (held, not attempted, until resumed), resume (what was held goes out in the order received, at the rate
 * limit) or re-enable a destination a 410 Gone disabled. Recorded in the audit log with the actor's token id.
 */
export async function controlDestination(
  ctx: OperationContext,
  actor: Actor,
  name: string,
  action: ControlAction,
  reason: string | null,
) {
  const config = configOf(ctx);
  const destination = config.destinations[name];
  if (!destination) throw new RouterError("not_found", { detail: `destination ${name}` });
  const now = ctx.clock.now();
  const view = await control(ctx.env, config, name, now, action, actor.tokenId, reason).catch((err: unknown) => {
    throw new RouterError("controls_unavailable", { detail: `${action} ${name}: ${errorMessage(err)}` });
  });
  const auditId = await recordAction(ctx, actor, `destination_${action}`, null, { destination: name, reason }, now);
  return { destination: name, auditId, controls: view, config: destination };
}
