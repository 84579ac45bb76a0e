/**
 * How full each shard is, for the admin API (`GET /admin/capacity`) and the dashboard's capacity page: the control
 * database's record of each shard (D1's own size, recorded at most once a minute per isolate), the rates read from
 * it, and the events of the last 24 hours from the rollups. Two small reads, whatever the shards hold.
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
import { configOf, type OperationContext } from "./context.ts";

export interface ShardCapacity {
  id: number;
  binding: string;
  state: ShardState;
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
  const [records, counts, rollup] = await Promise.all([
    readShardCapacity(ctx.env.DB),
    readEventCounts(ctx.env.DB, since),
    readRollupCursor(ctx.env.DB),
  ]);
  // The rollup walk counts the events of `DB` (shard 0). Before its first run it has counted nothing, so the
  // shard's own record gives the rate instead; so it does for every other shard until sharding rolls them up.
  const rolledUp = rollup.cursor === null ? null : counts.reduce((sum, c) => sum + c.events, 0);
  const recordOf = (id: number) => records.find((r) => r.shardId === id) ?? null;
  const decision = decideCapacity(
    shards.map((s) => ({ id: s.id, state: s.state, sizeBytes: recordOf(s.id)?.sizeBytes ?? null })),
    thresholds,
  );
  return {
    now,
    thresholds,
    allFull: decision.allFull,
    shards: shards.map((shard) => {
      const record = recordOf(shard.id);
      const figures = capacityFigures(record, thresholds, shard.binding === "DB" ? rolledUp : null);
      return {
        id: shard.id,
        binding: shard.binding,
        state: shard.state,
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
