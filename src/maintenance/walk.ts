import { loadPayloadProtection } from "../config/keys.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import type { PayloadProtection } from "../core/envelope.ts";
import { keptAs, planUpkeep, purgeDeliveries, retirableKeys, type Lap, type UpkeepAction } from "../core/retention.ts";
import { demoteKeys, listKeys, registerPrimaryKey, retireKeys } from "../storage/payload-keys.ts";
import {
  deleteEvents,
  encryptEvents,
  purgePayloads,
  readWalkState,
  rewrapEvents,
  walkSlice,
  writeWalkState,
  type WalkState,
} from "../storage/retention.ts";
import { logEvent } from "../telemetry/log.ts";

/** Encrypting a row read before encryption reads its payload; fewer of those per run than rows walked. */
export const ENCRYPT_PER_RUN = 50;

/**
 * The Cron's maintenance walk over the events: retention (payloads past `retention.payloadDays` purged, rows past
 * `retention.eventDays` deleted) and key rotation (data keys wrapped by an older ring key re-wrapped by the primary,
 * rows stored unencrypted encrypted). One slice of `retention.sliceRows` rows per run, from a cursor kept between
 * runs, so a run costs the same however many events are kept; each lap counts how many rows each key protects,
 * which is what tells an operator (GET /admin/keys) that an old key may leave the ring.
 */
export interface WalkReport {
  walked: number;
  deleted: number;
  purged: number;
  rewrapped: number;
  encrypted: number;
  lapCompleted: boolean;
  retired: string[];
}

async function protectionOrNull(env: Env, config: RouterConfig): Promise<PayloadProtection | null> {
  try {
    return await loadPayloadProtection(env, config);
  } catch {
    // Logged by the loader. Retention needs no key: purges and deletions go on; rotation waits for the ring.
    return null;
  }
}

export async function runMaintenanceWalk(env: Env, config: RouterConfig, now: number): Promise<WalkReport> {
  const db = env.DB;
  const protection = await protectionOrNull(env, config);
  const ring = protection?.mode === "encrypted" ? protection.ring : null;
  const primary = ring?.primary ?? null;
  if (ring) {
    const registry = await registerPrimaryKey(db, ring.primary, now);
    await demoteKeys(
      db,
      registry.filter((k) => k.keyId !== ring.primary && k.demotedAt === null).map((k) => k.keyId),
      now,
    );
  }
  const state: WalkState = (await readWalkState(db)) ?? {
    after: "",
    lap: { startedAt: now, primary, walked: 0, byKey: {} },
    lastLap: null,
  };
  const { sliceRows, payloadDays, eventDays } = config.retention;
  const rows = await walkSlice(db, state.after, sliceRows);

  const policy = { now, payloadDays, eventDays, ring: ring && { primary: ring.primary, ids: ring.ids } };
  const planned = rows.map((row) => ({ row, action: planUpkeep(row, policy) }));
  const ids = (action: UpkeepAction) => planned.filter((p) => p.action === action).map((p) => p.row.id);
  const toEncrypt = ids("encrypt").slice(0, ENCRYPT_PER_RUN);
  const deleted = await deleteEvents(db, ids("delete"));
  const purged = await purgePayloads(db, ids("purge"), now, (deliveries) => purgeDeliveries(deliveries, now));
  const unreadable: string[] = [];
  const rewrapped = new Set(ring ? await rewrapEvents(db, ring, ids("rewrap"), unreadable) : []);
  const encrypted = new Set(
    protection?.mode === "encrypted" ? await encryptEvents(db, protection, toEncrypt, unreadable) : [],
  );
  // Kept as they are, and counted under the key they name: an operator sees them in GET /admin/keys.
  if (unreadable.length > 0)
    logEvent("error", "maintenance_rows_unreadable", {
      eventIds: unreadable,
      note: "their stored data key does not open for the event",
    });

  // Counted as the row is now; a write that lost its race counts as it was, and the next lap sees it again.
  const lap: Lap = { ...state.lap, walked: state.lap.walked + rows.length, byKey: { ...state.lap.byKey } };
  const purgedIds = new Set(purged);
  for (const { row, action } of planned) {
    const done =
      action === "purge"
        ? purgedIds.has(row.id)
        : action === "rewrap"
          ? rewrapped.has(row.id)
          : action === "encrypt"
            ? encrypted.has(row.id)
            : true;
    const label = keptAs(row, done ? action : "keep", primary);
    if (label !== null) lap.byKey[label] = (lap.byKey[label] ?? 0) + 1;
  }

  const lapCompleted = rows.length < sliceRows;
  let retired: string[] = [];
  let next: WalkState;
  if (lapCompleted) {
    const lastLap = { ...lap, completedAt: now };
    retired = retirableKeys(await listKeys(db), lastLap, primary);
    await retireKeys(db, retired, now);
    next = { after: "", lap: { startedAt: now, primary, walked: 0, byKey: {} }, lastLap };
  } else {
    next = { after: rows.at(-1)!.id, lap, lastLap: state.lastLap };
  }
  await writeWalkState(db, next);

  const report = {
    walked: rows.length,
    deleted,
    purged: purged.length,
    rewrapped: rewrapped.size,
    encrypted: encrypted.size,
    lapCompleted,
    retired,
  };
  logEvent("info", "maintenance_progress", { ...report, lapWalked: lap.walked, byKey: lap.byKey });
  return report;
}
