/**
 * The dashboard's overview, from rollups only: event counts from the Cron's walk, delivery counters from each
 * destination's object, and the dead-letter count through each shard's index. Nothing here reads the events table
 * but through that index.
 */
import { shardsOf } from "../config/shards.ts";
import { DAY_HOURS, HOUR_MS, hourOf } from "../core/rollups.ts";
import { deadLetterTotal, readEventCounts, readRollupCursors } from "../storage/rollups.ts";
import { configOf, type OperationContext } from "./context.ts";
import { destinationDays } from "./destinations.ts";

/**
 * Past this many events holding dead deliveries in a shard the overview says "more than" instead of counting on, so
 * its read stays the same however many pile up; the dead-letter page's bulk count gives the exact number for a
 * window.
 */
const DEAD_COUNT_CAP = 50;

/** The dead deliveries of every shard, the shards at once: the sum, capped when any shard's count is. */
async function deadInShards(ctx: OperationContext) {
  const totals = await Promise.all(
    shardsOf(ctx.env, configOf(ctx)).map(({ db }) => deadLetterTotal(db, DEAD_COUNT_CAP)),
  );
  return {
    dead: totals.reduce((sum, t) => sum + t.dead, 0),
    capped: totals.some((t) => t.capped),
  };
}

export async function overview(ctx: OperationContext) {
  const now = ctx.clock.now();
  const since = hourOf(now) - (DAY_HOURS - 1) * HOUR_MS;
  const shards = configOf(ctx).storage.shards.map((s) => s.id);
  const [counts, cursors, dead, destinations] = await Promise.all([
    readEventCounts(ctx.env.DB, since),
    // Counted up to where every shard's walk has reached: the oldest of their cursors.
    readRollupCursors(ctx.env.DB, shards),
    deadInShards(ctx),
    destinationDays(ctx),
  ]);
  return { now, counts, countedTo: cursors.countedUntil, dead, destinations };
}
