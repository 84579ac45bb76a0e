import { countEvents, DAY_HOURS, HOUR_MS, hourOf } from "../core/rollups.ts";
import { addEventCounts, eventsAfter, readRollupCursor } from "../storage/rollups.ts";
import { logEvent } from "../telemetry/log.ts";

/** Events read per slice, and slices per run: a run reads at most 20,000 events, a day's 5.7 million at 288 runs. */
export const ROLLUP_SLICE = 5_000;
export const ROLLUP_SLICES_PER_RUN = 4;
/**
 * The walk stays this far behind the clock: an event's received_at is taken before its insert commits, so one
 * still in flight when a slice is read would land behind the cursor and never be counted.
 */
export const ROLLUP_LAG_MS = 120_000;
/** Hours kept: the overview shows a day; a week lets an operator compare. */
export const ROLLUP_KEEP_HOURS = 8 * DAY_HOURS;

export interface RollupReport {
  counted: number;
  slices: number;
  /** Up to when every event is counted. */
  countedUntil: number | null;
  behind: boolean;
}

/**
 * The Cron's rollup walk: counts the events received since its cursor by hour, source and type, in bounded slices.
 * Rows read: one per event, once. Rows written: one per (hour, source, type) a slice touched, plus the cursor;
 * nothing per event. The first run starts a day back, so a new install's overview fills at once and an old
 * database's history is not walked.
 */
export async function runRollupWalk(db: D1Database, now: number, lagMs = ROLLUP_LAG_MS): Promise<RollupReport> {
  const before = now - lagMs;
  let { raw, cursor } = await readRollupCursor(db);
  let position = cursor ?? { receivedAt: hourOf(now) - DAY_HOURS * HOUR_MS - 1, id: "" };
  let counted = 0;
  let slices = 0;
  let full = false;
  while (slices < ROLLUP_SLICES_PER_RUN) {
    const rows = await eventsAfter(db, position, before, ROLLUP_SLICE);
    full = rows.length === ROLLUP_SLICE;
    const last = rows.at(-1);
    // Nothing new: the cursor still moves up to the lag line, so the overview can say how current it is.
    const next = last
      ? { receivedAt: last.receivedAt, id: last.id }
      : { receivedAt: Math.max(position.receivedAt, before - 1), id: position.id };
    if (!last && cursor && next.receivedAt === position.receivedAt) break;
    if (!(await addEventCounts(db, raw, countEvents(rows), next, hourOf(now) - ROLLUP_KEEP_HOURS * HOUR_MS))) {
      logEvent("info", "rollup_walk_overlapped", { note: "another run moved the cursor first; this one stops" });
      break;
    }
    raw = JSON.stringify(next);
    cursor = next;
    position = next;
    counted += rows.length;
    slices += 1;
    if (!full) break;
  }
  return { counted, slices, countedUntil: cursor?.receivedAt ?? null, behind: full };
}
