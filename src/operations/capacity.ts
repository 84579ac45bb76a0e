/**
 * How full each shard is, for the admin API (`GET /admin/capacity`) and the dashboard's capacity page: the control
 * database's record of each shard (D1's own size, recorded at most once a minute per isolate), the rates read from
 * it, each shard's state from the current shard map (the config's `readOnly`, and the shards the capacity watch made
 * read-only), and the events of the last 24 hours from the rollups. A few small reads of the control database,
 * whatever the shards hold.
 */
import { shardsOf } from "../config/shards.ts";
import {
  type CapacityLevel,
  type CapacityThresholds,
  capacityFigures,
  decideCapacity,
  type ShardState,
} from "../core/capacity.ts";
import { DAY_HOURS, HOUR_MS, hourOf } from "../core/rollups.ts";
import { readShardCapacity } from "../storage/capacity.ts";
import { readEventCounts, readRollupCursor } from "../storage/rollups.ts";
import { readOnlyShards } from "../storage/shard-maps.ts";
import { configOf, type OperationContext } from "./context.ts";

export interface ShardCapacity {
  id: number;
  binding: string;
  /** From the current shard map: read-only when the config says so or the capacity watch made it so. */
  state: ShardState;
  /** When and why the router made it read-only (null: it did not; a config `readOnly` is not dated). */
  readOnly: { since: number; reason: string } | null;
  level: CapacityLevel | null;
  sizeBytes: number | null;
  limitBytes: number;
  share: number | null;
  measuredAt: number | null;
  eventsPerDay: number | null;
  rowsWrittenPerEvent: number | null;
  bytesPerEvent: number | null;
  bytesPerDay: number | null;
  daysUntilFull: number | null;
}

export interface CapacityReport {
  now: number;
  thresholds: CapacityThresholds;
  /** No writable shard has room by the recorded sizes: ingest answers `503 storage_full`. */
  allFull: boolean;
  shards: ShardCapacity[];
}

export async function capacityReport(ctx: OperationContext): Promise<CapacityReport> {
  const config = configOf(ctx);
  const thresholds = config.limits.capacity;
  const now = ctx.clock.now();
  const shards = shardsOf(ctx.env, config);
  const since = hourOf(now) - (DAY_HOURS - 1) * HOUR_MS;
  const [records, counts, rollup, readOnly] = await Promise.all([
    readShardCapacity(ctx.env.DB),
    readEventCounts(ctx.env.DB, since),
    readRollupCursor(ctx.env.DB, 0),
    readOnlyShards(ctx.env.DB),
  ]);
  // The rollups count every shard's events together (by hour, source and type). With one shard they are its rate
  // once the walk has run; with several, each shard's own record gives its rate (its window counts the events
  // stored there).
  const rolledUp = shards.length === 1 && rollup.cursor !== null ? counts.reduce((sum, c) => sum + c.events, 0) : null;
  const recordOf = (id: number) => records.find((r) => r.shardId === id) ?? null;
  const madeReadOnly = (id: number) => readOnly.find((r) => r.shard === id) ?? null;
  const states = shards.map((s) => ({
    ...s,
    state: (s.state === "read_only" || madeReadOnly(s.id) ? "read_only" : "writable") as ShardState,
  }));
  const decision = decideCapacity(
    states.map((s) => ({ id: s.id, state: s.state, sizeBytes: recordOf(s.id)?.sizeBytes ?? null })),
    thresholds,
  );
  return {
    now,
    thresholds,
    allFull: decision.allFull,
    shards: states.map((shard) => {
      const record = recordOf(shard.id);
      const figures = capacityFigures(record, thresholds, rolledUp);
      const made = madeReadOnly(shard.id);
      return {
        id: shard.id,
        binding: shard.binding,
        state: shard.state,
        readOnly: made && { since: made.since, reason: made.reason },
        level: figures.level,
        sizeBytes: record?.sizeBytes ?? null,
        limitBytes: thresholds.limitBytes,
        share: figures.share,
        measuredAt: record?.measuredAt ?? null,
        eventsPerDay: figures.eventsPerDay,
        rowsWrittenPerEvent: figures.rowsWrittenPerEvent,
        bytesPerEvent: figures.bytesPerEvent,
        bytesPerDay: figures.bytesPerDay,
        daysUntilFull: figures.daysUntilFull,
      };
    }),
  };
}
