/**
 * The rules of the Cron's maintenance walk (src/maintenance): what happens to each event row it visits, and when an
 * old ring key protects nothing any more. Pure, so the walk and its tests apply the same rules.
 */
import { markDead, PAYLOAD_PURGED, withoutExcerpts, type DeliveryState } from "./delivery-state.ts";

export const DAY_MS = 24 * 60 * 60 * 1000;

/** What the walk reads of a row: its times and how its payload is kept, never the payload. */
export interface UpkeepRow {
  id: string;
  receivedAt: number;
  pendingDue: number | null;
  /** The ring key wrapping its data key; null when stored unencrypted or purged. */
  payloadKey: string | null;
  purgedAt: number | null;
}

export interface UpkeepPolicy {
  now: number;
  payloadDays: number;
  eventDays: number;
  /** The ring, when payloads are encrypted: its primary key and every id it holds. */
  ring: { primary: string; ids: readonly string[] } | null;
}

export type UpkeepAction = "delete" | "purge" | "rewrap" | "encrypt" | "keep";

/**
 * A pending delivery still needs the payload, so a row with one is neither purged nor deleted until it settles
 * (its data key may still be re-wrapped: that leaves the payload as it is). A row past the event horizon goes; one
 * past the payload horizon loses its payload; one wrapped by an older key is re-wrapped by the primary; one stored
 * unencrypted is encrypted.
 */
export function planUpkeep(row: UpkeepRow, policy: UpkeepPolicy): UpkeepAction {
  const { now, ring } = policy;
  const rewrap =
    ring !== null && row.payloadKey !== null && row.payloadKey !== ring.primary && ring.ids.includes(row.payloadKey);
  if (row.pendingDue !== null) return rewrap ? "rewrap" : "keep";
  if (row.receivedAt < now - policy.eventDays * DAY_MS) return "delete";
  if (row.purgedAt !== null) return "keep";
  if (row.receivedAt < now - policy.payloadDays * DAY_MS) return "purge";
  if (rewrap) return "rewrap";
  if (ring !== null && row.payloadKey === null) return "encrypt";
  return "keep";
}

/** How a row's payload is kept once the walk is done with it: a ring key id, or one of these two. */
export const UNENCRYPTED = "(unencrypted)";
export const PURGED = "(purged)";

export function keptAs(row: UpkeepRow, action: UpkeepAction, primary: string | null): string | null {
  if (action === "delete") return null;
  if (action === "purge" || row.purgedAt !== null) return PURGED;
  if ((action === "rewrap" || action === "encrypt") && primary !== null) return primary;
  return row.payloadKey ?? UNENCRYPTED;
}

/**
 * What a purge leaves of the delivery state: statuses, times and error classes, without the response excerpts; a
 * delivery still pending (a deletion request does not wait) is settled dead, since nothing is left to send.
 */
export function purgeDeliveries(deliveries: readonly DeliveryState[], now: number): DeliveryState[] {
  const pending = deliveries.filter((d) => d.status === "pending").map((d) => ({ ref: d, reason: PAYLOAD_PURGED }));
  return withoutExcerpts(markDead(deliveries, pending, now).deliveries);
}

/** One lap of the walk over every row, and what it counted. */
export interface Lap {
  startedAt: number;
  /** The primary key when the lap started; null when payloads were not encrypted. */
  primary: string | null;
  walked: number;
  /** Rows per key id (or UNENCRYPTED / PURGED) after the walk's own changes. */
  byKey: Record<string, number>;
  completedAt?: number;
}

/** Grace after a key stops being the primary before a lap may count it empty: isolates of the previous version finish. */
export const DEMOTION_GRACE_MS = 10 * 60 * 1000;

/**
 * Keys a ring may drop: each was demoted before the last complete lap started (with the grace), and that lap found
 * no row it protects. A key that wraps anything, or that a lap has not yet fully covered, stays.
 */
export function retirableKeys(
  registry: readonly { keyId: string; demotedAt: number | null; retiredAt: number | null }[],
  lastLap: Lap | null,
  primary: string | null,
): string[] {
  if (!lastLap?.completedAt) return [];
  return registry
    .filter(
      (k) =>
        k.retiredAt === null &&
        k.keyId !== primary &&
        k.demotedAt !== null &&
        lastLap.startedAt >= k.demotedAt + DEMOTION_GRACE_MS,
    )
    .filter((k) => (lastLap.byKey[k.keyId] ?? 0) === 0)
    .map((k) => k.keyId);
}

export type KeyState = "primary" | "draining" | "retired" | "missing" | "unused";

/**
 * What the operator sees of each key: the ring's ids and the registry's, with whether the ring may drop it. A key
 * still protecting rows that the ring lacks is `missing` (and ingest refuses the ring until it is back).
 */
export function keyStates(
  registry: readonly { keyId: string; firstUsedAt: number; demotedAt: number | null; retiredAt: number | null }[],
  ringIds: readonly string[],
  primary: string | null,
  lastLap: Lap | null,
) {
  const ids = [...new Set([...ringIds, ...registry.map((k) => k.keyId)])];
  return ids.map((keyId) => {
    const known = registry.find((k) => k.keyId === keyId);
    const inRing = ringIds.includes(keyId);
    const state: KeyState =
      keyId === primary
        ? "primary"
        : known?.retiredAt != null
          ? "retired"
          : known && !inRing
            ? "missing"
            : known
              ? "draining"
              : "unused";
    return {
      keyId,
      inRing,
      state,
      firstUsedAt: known?.firstUsedAt ?? null,
      demotedAt: known?.demotedAt ?? null,
      retiredAt: known?.retiredAt ?? null,
      lastLapRows: lastLap?.completedAt ? (lastLap.byKey[keyId] ?? 0) : null,
      removable: inRing && (state === "retired" || state === "unused"),
    };
  });
}

/**
 * Every shard's lap as one (each shard is walked on its own, with its own cursor and laps): rows and keys summed,
 * started when the earliest began. A complete lap over every shard exists only once each shard has one, so a key
 * counts as protecting nothing only when no shard's last lap found it. Null for no shards, or (for the last laps)
 * while a shard has none.
 */
export function combineLaps(laps: readonly (Lap | null)[]): Lap | null {
  if (laps.length === 0 || laps.some((lap) => lap === null)) return null;
  const all = laps as readonly Lap[];
  const byKey: Record<string, number> = {};
  for (const lap of all) for (const [key, n] of Object.entries(lap.byKey)) byKey[key] = (byKey[key] ?? 0) + n;
  const primaries = new Set(all.map((lap) => lap.primary));
  const completed = all.map((lap) => lap.completedAt);
  return {
    startedAt: Math.min(...all.map((lap) => lap.startedAt)),
    primary: primaries.size === 1 ? all[0]!.primary : null,
    walked: all.reduce((sum, lap) => sum + lap.walked, 0),
    byKey,
    ...(completed.every((at) => at !== undefined) ? { completedAt: Math.max(...(completed as number[])) } : {}),
  };
}
