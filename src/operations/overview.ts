/**
 * The dashboard's overview, from rollups only: event counts from the Cron's walk, delivery counters from each
 * destination's object, and the dead-letter count through its index. Nothing here reads the events table.
 */
import { DAY_HOURS, HOUR_MS, hourOf } from "../core/rollups.ts";
import { deadLetterTotal, readEventCounts, readRollupCursor } from "../storage/rollups.ts";
import type { OperationContext } from "./context.ts";
import { destinationDays } from "./destinations.ts";

/**
 * Past this many events holding dead deliveries the overview says "more than" instead of counting on, so its read
 * stays the same however many pile up; the dead-letter page's bulk count gives the exact number for a window.
 */
const DEAD_COUNT_CAP = 50;

export async function overview(ctx: OperationContext) {
  const now = ctx.clock.now();
  const since = hourOf(now) - (DAY_HOURS - 1) * HOUR_MS;
  const [counts, cursor, dead, destinations] = await Promise.all([
    readEventCounts(ctx.env.DB, since),
    readRollupCursor(ctx.env.DB),
    deadLetterTotal(ctx.env.DB, DEAD_COUNT_CAP),
    destinationDays(ctx),
  ]);
  return { now, counts, countedTo: cursor.cursor?.receivedAt ?? null, dead, destinations };
}
