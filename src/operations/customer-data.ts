/**
 * Customer data: a customer's deletion request (every payload of one order purged now, audited), and the payload
 * key ring's status for a rotation (key ids only, never key material).
 */
import type { z } from "@hono/zod-openapi";
import { loadPayloadProtection } from "../config/keys.ts";
import { errorMessage } from "../core/errors.ts";
import { keyStates, purgeDeliveries, type Lap } from "../core/retention.ts";
import { listKeys } from "../storage/payload-keys.ts";
import { eventsOfOrder, purgePayloads, readWalkState } from "../storage/retention.ts";
import { logEvent } from "../telemetry/log.ts";
import { configOf, recordAction, type Actor, type OperationContext } from "./context.ts";
import type { CustomerPurgeBody } from "./inputs.ts";
import { objectEvents } from "./objects.ts";

/**
 * Purges body, Draft answer, response excerpts and data key of each event with this provider order id, now,
 * whatever the retention horizon. Deliveries still pending are settled dead (`payload_purged`), since nothing is
 * left to send. `retry` names events whose purge lost a race with a delivery write.
 */
export async function purgeCustomerOrder(
  ctx: OperationContext,
  actor: Actor,
  body: z.output<typeof CustomerPurgeBody>,
) {
  const now = ctx.clock.now();
  const events = await eventsOfOrder(ctx.env.DB, await objectEvents(ctx, body.providerOrderId, body.source));
  const toPurge = events.filter((e) => !e.purged).map((e) => e.id);
  const purged = await purgePayloads(ctx.env.DB, toPurge, now, (deliveries) => purgeDeliveries(deliveries, now));
  const outcome = {
    purged,
    alreadyPurged: events.length - toPurge.length,
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
  const [registry, walk] = await Promise.all([listKeys(ctx.env.DB), readWalkState(ctx.env.DB)]);
  const ring = protection?.mode === "encrypted" ? protection.ring : null;
  const keys = keyStates(registry, ring?.ids ?? [], ring?.primary ?? null, walk?.lastLap ?? null);
  return {
    encryption: config.payloadEncryption,
    primary: ring?.primary ?? null,
    keys: keys.map((k) => ({
      ...k,
      firstUsedAt: isoOf(k.firstUsedAt),
      demotedAt: isoOf(k.demotedAt),
      retiredAt: isoOf(k.retiredAt),
    })),
    walk: { lap: lapView(walk?.lap ?? null), lastLap: lapView(walk?.lastLap ?? null) },
  };
}
