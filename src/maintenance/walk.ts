import { loadPayloadProtection } from "../config/keys.ts";
import { type Shard, shardsOf } from "../config/shards.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import type { KeyRing, PayloadProtection } from "../core/envelope.ts";
import { errorMessage } from "../core/errors.ts";
import {
  combineLaps,
  keptAs,
  type Lap,
  planUpkeep,
  purgeDeliveries,
  retirableKeys,
  type UpkeepAction,
} from "../core/retention.ts";
import { demoteKeys, listKeys, registerPrimaryKey, retireKeys } from "../storage/payload-keys.ts";
import {
  deleteEvents,
  encryptEvents,
  purgePayloads,
  readWalkState,
  rewrapEvents,
  walkSlice,
  type WalkState,
  writeWalkState,
} from "../storage/retention.ts";
import { logEvent } from "../telemetry/log.ts";

/** Encrypting a row read before encryption reads its payload; fewer of those per run than rows walked. */
export const ENCRYPT_PER_RUN = 50;

/**
 * The Cron's maintenance walk over the events: retention (payloads past `retention.payloadDays` purged, rows past
 * `retention.eventDays` deleted) and key rotation (data keys wrapped by an older ring key re-wrapped by the primary,
 * rows stored unencrypted encrypted). Every shard each run, at once: one slice of `retention.sliceRows` rows per
 * shard, from that shard's cursor, so a run costs the same however many events are kept. Each shard's cursor and
 * laps live in its own database (`sweeper_state`, beside the rows they describe; shard 0 keeps the state it had
 * before shards). Each lap counts how many rows each key protects; a ring key protects nothing only when no shard's
 * last complete lap found it, which is what tells an operator (GET /admin/keys) that an old key may leave the ring.
 */
export interface ShardWalkReport {
  shard: number;
  walked: number;
  deleted: number;
  purged: number;
  rewrapped: number;
  encrypted: number;
  lapCompleted: boolean;
}

export interface WalkReport {
  walked: number;
  deleted: number;
  purged: number;
  rewrapped: number;
  encrypted: number;
  /** Some shard completed a lap this run. */
  lapCompleted: boolean;
  retired: string[];
  shards: ShardWalkReport[];
  /** Shards whose slice failed this run (logged); they resume from their cursor next run. */
  failed: number[];
}

async function protectionOrNull(env: Env, config: RouterConfig): Promise<PayloadProtection | null> {
  try {
    return await loadPayloadProtection(env, config);
  } catch {
    // Logged by the loader. Retention needs no key: purges and deletions go on; rotation waits for the ring.
    return null;
  }
}

interface ShardWalkInput {
  now: number;
  config: RouterConfig;
  protection: PayloadProtection | null;
  ring: KeyRing | null;
}

/** One slice of one shard: the rows after its cursor, what the rules say to do with each, and its next state. */
async function walkShard(shard: Shard, input: ShardWalkInput): Promise<{ report: ShardWalkReport; state: WalkState }> {
  const { now, config, protection, ring } = input;
  const db = shard.db;
  const primary = ring?.primary ?? null;
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
      shardId: shard.id,
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
  const next: WalkState = lapCompleted
    ? { after: "", lap: { startedAt: now, primary, walked: 0, byKey: {} }, lastLap: { ...lap, completedAt: now } }
    : { after: rows.at(-1)!.id, lap, lastLap: state.lastLap };
  await writeWalkState(db, next);

  const report = {
    shard: shard.id,
    walked: rows.length,
    deleted,
    purged: purged.length,
    rewrapped: rewrapped.size,
    encrypted: encrypted.size,
    lapCompleted,
  };
  logEvent("info", "maintenance_progress", { ...report, lapWalked: lap.walked, byKey: lap.byKey });
  return { report, state: next };
}

export async function runMaintenanceWalk(env: Env, config: RouterConfig, now: number): Promise<WalkReport> {
  // The key registry is the control database's (shard 0, DB); the rows it counts are every shard's.
  const control = env.DB;
  const shards = shardsOf(env, config);
  const protection = await protectionOrNull(env, config);
  const ring = protection?.mode === "encrypted" ? protection.ring : null;
  const primary = ring?.primary ?? null;
  if (ring) {
    const registry = await registerPrimaryKey(control, ring.primary, now);
    await demoteKeys(
      control,
      registry.filter((k) => k.keyId !== ring.primary && k.demotedAt === null).map((k) => k.keyId),
      now,
    );
  }

  const input = { now, config, protection, ring };
  const settled = await Promise.allSettled(shards.map((shard) => walkShard(shard, input)));
  const walked = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const failed = shards.filter((_, i) => settled[i]!.status === "rejected").map((s) => s.id);
  for (const [i, s] of settled.entries())
    if (s.status === "rejected")
      logEvent("error", "maintenance_shard_failed", { shardId: shards[i]!.id, errorMessage: errorMessage(s.reason) });

  // A key retires once every shard's last complete lap, each started past its grace, found nothing it protects.
  // Asked whenever a shard completes a lap: the last shard to complete one is the one that can make it true.
  let retired: string[] = [];
  const lapCompleted = walked.some((w) => w.report.lapCompleted);
  if (lapCompleted && failed.length === 0) {
    const lastLap = combineLaps(walked.map((w) => w.state.lastLap));
    retired = retirableKeys(await listKeys(control), lastLap, primary);
    await retireKeys(control, retired, now);
  }

  const sum = (field: "walked" | "deleted" | "purged" | "rewrapped" | "encrypted") =>
    walked.reduce((total, w) => total + w.report[field], 0);
  return {
    walked: sum("walked"),
    deleted: sum("deleted"),
    purged: sum("purged"),
    rewrapped: sum("rewrapped"),
    encrypted: sum("encrypted"),
    lapCompleted,
    retired,
    shards: walked.map((w) => w.report),
    failed,
  };
}
