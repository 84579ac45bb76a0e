import type { RouterConfig } from "../core/config/schema.ts";
import type { PayloadProtection } from "../core/envelope.ts";
import { keyStates, purgeDeliveries, type Lap } from "../core/retention.ts";
import { listKeys } from "../storage/payload-keys.ts";
import { eventsOfOrder, purgePayloads, readWalkState } from "../storage/retention.ts";

/**
 * A customer's deletion request: the payloads of every event of one order purged now (body, Draft answer, response
 * excerpts, data key), whatever the retention horizon. Deliveries still pending are settled dead
 * (`payload_purged`), since nothing is left to send.
 */
export async function purgeCustomerOrder(db: D1Database, providerOrderId: string, source: string | undefined, now: number) {
  const events = await eventsOfOrder(db, providerOrderId, source);
  const toPurge = events.filter((e) => !e.purged).map((e) => e.id);
  const purged = await purgePayloads(db, toPurge, now, (deliveries) => purgeDeliveries(deliveries, now));
  return { purged, alreadyPurged: events.length - toPurge.length, retry: toPurge.filter((id) => !purged.includes(id)) };
}

const isoOf = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const lapView = (lap: Lap | null) => lap && { startedAt: isoOf(lap.startedAt)!, completedAt: isoOf(lap.completedAt), walked: lap.walked, byKey: lap.byKey };

/** The key ring as the operator needs it for a rotation: which key wraps what, and which may leave the ring. */
export async function keyStatus(db: D1Database, config: RouterConfig, protection: PayloadProtection | null) {
  const [registry, walk] = await Promise.all([listKeys(db), readWalkState(db)]);
  const ring = protection?.mode === "encrypted" ? protection.ring : null;
  const keys = keyStates(registry, ring?.ids ?? [], ring?.primary ?? null, walk?.lastLap ?? null);
  return {
    encryption: config.payloadEncryption,
    primary: ring?.primary ?? null,
    keys: keys.map((k) => ({ ...k, firstUsedAt: isoOf(k.firstUsedAt), demotedAt: isoOf(k.demotedAt), retiredAt: isoOf(k.retiredAt) })),
    walk: { lap: lapView(walk?.lap ?? null), lastLap: lapView(walk?.lastLap ?? null) },
  };
}
