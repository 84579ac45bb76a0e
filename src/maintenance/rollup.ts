import { countEvents, DAY_HOURS, HOUR_MS, hourOf } from "../core/rollups.ts";
import { addEventCounts, eventsAfter, readRollupCursor } from "../storage/rollups.ts";
import { errorMessage } from "../core/errors.ts";
import { logEvent } from "../telemetry/log.ts";

/**
 * Events read per slice, and slices per run for each shard: a run reads at most 20,000 events of a shard, a day's
 * 5.7 million at 288 runs.
 */
export const ROLLUP_SLICE = 5_000;
export const ROLLUP_SLICES_PER_RUN = 4;
/**
 * The walk stays this far behind the clock: an event's received_at is taken before its insert commits, so one
 * still in flight when a slice is read would land behind the cursor and never be counted.
 */
export const ROLLUP_LAG_MS = 120_000;
/** Hours kept: the overview shows a day; a week lets an operator compare. */
export const ROLLUP_KEEP_HOURS = 8 * DAY_HOURS;

export interface ShardRollupReport {
  shard: number;
  counted: number;
  slices: number;
  /** Up to when every event of this shard is counted. */
  countedUntil: number | null;
  behind: boolean;
}

export interface RollupReport {
  counted: number;
  slices: number;
  /** Up to when every event of every shard is counted: the oldest shard cursor (null if one failed or has none). */
  countedUntil: number | null;
  /** Some shard had more new events than a run reads. */
  behind: boolean;
  shards: ShardRollupReport[];
  failed: number[];
}

/**
 * One shard's part of a run: up to ROLLUP_SLICES_PER_RUN slices of its new events, each counted and its cursor
 * moved in one transaction of the control database.
 */
async function rollUpShard(
  control: D1Database,
  shard: { id: number; db: D1Database },
  now: number,
  lagMs: number,
): Promise<ShardRollupReport> {
  const before = now - lagMs;
  let { raw, cursor } = await readRollupCursor(control, shard.id);
  let position = cursor ?? { receivedAt: hourOf(now) - DAY_HOURS * HOUR_MS - 1, id: "" };
  let counted = 0;
  let slices = 0;
  let full = false;
  while (slices < ROLLUP_SLICES_PER_RUN) {
    const rows = await eventsAfter(shard.db, position, before, ROLLUP_SLICE);
    full = rows.length === ROLLUP_SLICE;
    const last = rows.at(-1);
    // A slice that is not full read every event before the lag line: the cursor moves up to the line, as it does
    // when nothing is new, so "counted up to" (the oldest shard's cursor) is how current the walk is, not the time
    // of some shard's last event.
    const next = last
      ? { receivedAt: full ? last.receivedAt : Math.max(last.receivedAt, before - 1), id: last.id }
      : { receivedAt: Math.max(position.receivedAt, before - 1), id: position.id };
    if (!last && cursor && next.receivedAt === position.receivedAt) break;
    const forgetBefore = hourOf(now) - ROLLUP_KEEP_HOURS * HOUR_MS;
    if (!(await addEventCounts(control, shard.id, raw, countEvents(rows), next, forgetBefore))) {
      logEvent("info", "rollup_walk_overlapped", {
        shardId: shard.id,
        note: "another run moved the cursor first; this one stops",
      });
      break;
    }
    raw = JSON.stringify(next);
    cursor = next;
    position = next;
    counted += rows.length;
    slices += 1;
    if (!full) break;
  }
  return { shard: shard.id, counted, slices, countedUntil: cursor?.receivedAt ?? null, behind: full };
}

/**
 * The Cron's rollup walk: counts the events received since each shard's cursor by hour, source and type, in bounded
 * slices, every shard each run, at once. Rows read: one per event, once. Rows written (all in the control
 * database): one per (hour, source, type) a slice touched, plus the shard's cursor; nothing per event. A shard's
 * first run starts a day back, so a new install's overview fills at once and an old database's history is not
 * walked; shard 0 keeps the cursor it had before shards.
 */
export async function runRollupWalk(
  control: D1Database,
  shards: readonly { id: number; db: D1Database }[],
  now: number,
  lagMs = ROLLUP_LAG_MS,
): Promise<RollupReport> {
  const settled = await Promise.allSettled(shards.map((shard) => rollUpShard(control, shard, now, lagMs)));
  const done = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const failed = shards.filter((_, i) => settled[i]!.status === "rejected").map((s) => s.id);
  for (const [i, s] of settled.entries())
    if (s.status === "rejected")
      logEvent("error", "rollup_shard_failed", { shardId: shards[i]!.id, errorMessage: errorMessage(s.reason) });
  const until = done.map((r) => r.countedUntil);
  return {
    counted: done.reduce((sum, r) => sum + r.counted, 0),
    slices: done.reduce((sum, r) => sum + r.slices, 0),
    countedUntil:
      failed.length === 0 && until.length > 0 && until.every((u) => u !== null)
        ? Math.min(...(until as number[]))
        : null,
    behind: done.some((r) => r.behind),
    shards: done,
    failed,
  };
}
