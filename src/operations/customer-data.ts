/**
 * Customer data: a customer's deletion request (every payload of one order purged now, audited), and the payload
 * key ring's status for a rotation (key ids only, never key material).
 */
import type { z } from "@hono/zod-openapi";
import { loadPayloadProtection } from "../config/keys.ts";
import { shardsOf } from "../config/shards.ts";
import { errorMessage } from "../core/errors.ts";
import { combineLaps, keyStates, purgeDeliveries, type Lap } from "../core/retention.ts";
import { deathsToCount, type GateOutcome } from "../core/controls.ts";
import type { DeliveryRef } from "../core/delivery-state.ts";
import { reportAll } from "../control/client.ts";
import { listKeys } from "../storage/payload-keys.ts";
import { eventsOfOrder, purgePayloads, readWalkStates } from "../storage/retention.ts";
import { logEvent } from "../telemetry/log.ts";
import { configOf, recordAction, type Actor, type OperationContext } from "./context.ts";
import type { CustomerPurgeBody } from "./inputs.ts";
import { objectEvents } from "./objects.ts";

/**
 * Purges body, Draft answer, response excerpts and data key of each event with this provider order id, now,
 * whatever the retention horizon, in every shard (the shard map may have placed the order's events in several over
 * its versions), the shards at once. Deliveries still pending are settled dead (`payload_purged`), since nothing is
 * left to send. `retry` names events whose purge lost a race with a delivery write.
 */
export async function purgeCustomerOrder(
  ctx: OperationContext,
  actor: Actor,
  body: z.output<typeof CustomerPurgeBody>,
) {
  const now = ctx.clock.now();
  const order = await objectEvents(ctx, body.providerOrderId, body.source);
  // The deliveries each event's purge settled dead, by the write that did it (the last try of a contended one).
  const settled = new Map<string, DeliveryRef[]>();
  const perShard = await Promise.all(
    shardsOf(ctx.env, configOf(ctx)).map(async ({ id, db }) => {
      const events = await eventsOfOrder(db, id, order);
      const toPurge = events.filter((e) => !e.purged).map((e) => e.id);
      const purged = await purgePayloads(db, toPurge, now, (deliveries, eventId) => {
        settled.set(
          eventId,
          deliveries.filter((d) => d.status === "pending"),
        );
        return purgeDeliveries(deliveries, now);
      });
      return { events, toPurge, purged };
    }),
  );
  const toPurge = perShard.flatMap((s) => s.toPurge);
  const purged = perShard.flatMap((s) => s.purged);
  // Each death counted once in its destination's dead letters, as the consumer counts the ones it settles.
  const counts = new Map<string, { outcomes: GateOutcome[]; leases: string[] }>();
  for (const eventId of purged)
    for (const [destination, outcomes] of deathsToCount(eventId, settled.get(eventId) ?? [])) {
      const report = counts.get(destination) ?? { outcomes: [], leases: [] };
      report.outcomes.push(...outcomes);
      counts.set(destination, report);
    }
  if (counts.size > 0) await reportAll(ctx.env, configOf(ctx), now, counts);
  const outcome = {
    purged,
    alreadyPurged: perShard.reduce((n, s) => n + s.events.length, 0) - toPurge.length,
    retry: toPurge.filter((id) => !purged.includes(id)),
  };
  const auditId = await recordAction(
    ctx,
    actor,
    "customer_purge",
    null,
    {
      providerOrderId: body.providerOrderId,
      source: body.source ?? null,
      reason: body.reason ?? null,
      purged: outcome.purged,
      alreadyPurged: outcome.alreadyPurged,
    },
    now,
  );
  return { auditId, providerOrderId: body.providerOrderId, ...outcome };
}

const isoOf = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const lapView = (lap: Lap | null) =>
  lap && {
    startedAt: isoOf(lap.startedAt)!,
    completedAt: isoOf(lap.completedAt),
    walked: lap.walked,
    byKey: lap.byKey,
  };

/** The key ring as the operator needs it for a rotation: which key wraps what, and which may leave the ring. */
export async function keyStatus(ctx: OperationContext) {
  const config = configOf(ctx);
  // A ring that does not load (a missing or malformed PAYLOAD_KEYS) still shows what the registry and walk know.
  const protection = await loadPayloadProtection(ctx.env, config).catch((err: unknown) => {
    logEvent("warn", "payload_keys_unreadable", { step: "key_status", errorMessage: errorMessage(err) });
    return null;
  });
  // The registry is the control database's; each shard's walk keeps its own laps, shown here as one.
  const [registry, states] = await Promise.all([listKeys(ctx.env.DB), readWalkStates(shardsOf(ctx.env, config))]);
  const walked = states.flatMap((s) => (s.state ? [s.state] : []));
  const walk = {
    lap: walked.length > 0 ? combineLaps(walked.map((s) => s.lap)) : null,
    lastLap: combineLaps(states.map((s) => s.state?.lastLap ?? null)),
  };
  const ring = protection?.mode === "encrypted" ? protection.ring : null;
  const keys = keyStates(registry, ring?.ids ?? [], ring?.primary ?? null, walk.lastLap);
  return {
    encryption: config.payloadEncryption,
    primary: ring?.primary ?? null,
    keys: keys.map((k) => ({
      ...k,
      firstUsedAt: isoOf(k.firstUsedAt),
      demotedAt: isoOf(k.demotedAt),
      retiredAt: isoOf(k.retiredAt),
    })),
    walk: { lap: lapView(walk.lap), lastLap: lapView(walk.lastLap) },
  };
}
