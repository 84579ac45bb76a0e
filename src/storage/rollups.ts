/**
 * The overview's event counts: `rollups` rows by hour, source and type, in the control database (shard 0, DB), added
 * to by the Cron's rollup walk, which reads each shard's new events once each, in received order, through that
 * shard's received_at index. Each shard's cursor lives in the control database's `sweeper_state`, keyed by the shard
 * id, and moves in the same transaction as the counts it adds, so a slice is counted once.
 */
import type { EventCount } from "../core/rollups.ts";

/** Shard 0 keeps the name its cursor had before shards, so an upgrade neither recounts nor skips a day. */
export const rollupCursorName = (shard: number) => (shard === 0 ? "rollup_cursor" : `rollup_cursor:${shard}`);

export interface RollupCursor {
  receivedAt: number;
  id: string;
}

const parseCursor = (raw: string): RollupCursor => {
  const parsed = JSON.parse(raw) as RollupCursor;
  return { receivedAt: Number(parsed.receivedAt), id: String(parsed.id) };
};

/** One shard's cursor, from the control database. */
export async function readRollupCursor(
  control: D1Database,
  shard = 0,
): Promise<{ raw: string | null; cursor: RollupCursor | null }> {
  const raw = await control
    .prepare(`SELECT value FROM sweeper_state WHERE name = ?1`)
    .bind(rollupCursorName(shard))
    .first<string>("value");
  return { raw, cursor: raw === null ? null : parseCursor(raw) };
}

/**
 * Every shard's cursor in one read, and up to when every shard is counted: the oldest of them (null while a shard
 * has not been walked yet).
 */
export async function readRollupCursors(
  control: D1Database,
  shards: readonly number[],
): Promise<{ cursors: Map<number, RollupCursor | null>; countedUntil: number | null }> {
  const names = shards.map(rollupCursorName);
  const { results } = await control
    .prepare(`SELECT name, value FROM sweeper_state WHERE name IN (SELECT value FROM json_each(?1))`)
    .bind(JSON.stringify(names))
    .all<{ name: string; value: string }>();
  const cursors = new Map(
    shards.map((shard) => {
      const row = results.find((r) => r.name === rollupCursorName(shard));
      return [shard, row ? parseCursor(row.value) : null] as const;
    }),
  );
  const all = [...cursors.values()];
  const countedUntil =
    all.length > 0 && all.every((c) => c !== null) ? Math.min(...all.map((c) => c!.receivedAt)) : null;
  return { cursors, countedUntil };
}

/** One shard's next events after its cursor received before `before`, oldest first (its received_at index). */
export async function eventsAfter(db: D1Database, after: RollupCursor, before: number, limit: number) {
  const { results } = await db
    .prepare(
      `SELECT id, received_at, source, event_type FROM events
       WHERE (received_at > ?1 OR (received_at = ?1 AND id > ?2)) AND received_at < ?3
       ORDER BY received_at, id LIMIT ?4`,
    )
    .bind(after.receivedAt, after.id, before, limit)
    .all<{ id: string; received_at: number; source: string; event_type: string }>();
  return results.map((r) => ({ id: r.id, receivedAt: r.received_at, source: r.source, eventType: r.event_type }));
}

/**
 * Adds a slice of one shard's events to the counts and moves that shard's cursor, atomically, in the control
 * database, and only if the cursor is still the one the slice was read from: a second run that overlapped this one
 * counts nothing twice.
 */
export async function addEventCounts(
  control: D1Database,
  shard: number,
  readFrom: string | null,
  counts: readonly EventCount[],
  next: RollupCursor,
  forgetBefore: number,
): Promise<boolean> {
  const unchanged = `COALESCE((SELECT value FROM sweeper_state WHERE name = ?2), '') = ?1`;
  const from = readFrom ?? "";
  const name = rollupCursorName(shard);
  const written = await control.batch([
    ...counts.map((c) =>
      control
        .prepare(
          `INSERT INTO rollups (hour, source, event_type, events) SELECT ?3, ?4, ?5, ?6 WHERE ${unchanged}
           ON CONFLICT (hour, source, event_type) DO UPDATE SET events = events + excluded.events`,
        )
        .bind(from, name, c.hour, c.source, c.eventType, c.events),
    ),
    control.prepare(`DELETE FROM rollups WHERE hour < ?3 AND ${unchanged}`).bind(from, name, forgetBefore),
    control
      .prepare(
        `INSERT INTO sweeper_state (name, value) SELECT ?2, ?3 WHERE ${unchanged}
         ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
      )
      .bind(from, name, JSON.stringify(next)),
  ]);
  return (written.at(-1)?.meta.changes ?? 0) === 1;
}

/** Every count from `since` on: at most 25 hours × the source/type pairs seen. */
export async function readEventCounts(db: D1Database, since: number): Promise<EventCount[]> {
  const { results } = await db
    .prepare(`SELECT hour, source, event_type, events FROM rollups WHERE hour >= ?1 ORDER BY hour, source, event_type`)
    .bind(since)
    .all<{ hour: number; source: string; event_type: string; events: number }>();
  return results.map((r) => ({ hour: r.hour, source: r.source, eventType: r.event_type, events: r.events }));
}

/**
 * One shard's dead deliveries, exact, in one row read: `dead_letter_totals`, which the shard's triggers keep with
 * every write of `dead_deliveries` or of a purge (migrations/0016). `purged`: those in events whose payload is gone,
 * which a redrive cannot send again.
 */
export async function deadLetterTotals(db: D1Database): Promise<{ dead: number; purged: number }> {
  const row = await db
    .prepare(`SELECT dead, purged FROM dead_letter_totals WHERE id = 0`)
    .first<{ dead: number; purged: number }>();
  return { dead: row?.dead ?? 0, purged: row?.purged ?? 0 };
}

/**
 * The oldest pending delivery among one shard's newest `lookAt` events, through its received_at index: when the
 * oldest of them was received (null when none of them has one pending) and how many were looked at. `pending_due`
 * has no index of its own (every entry would be a billed write on the happy path), so the read is bounded by the
 * window instead; a backlog older than it is held by its destination's controls, whose own count is exact.
 */
export async function oldestPendingAmongNewest(
  db: D1Database,
  lookAt: number,
): Promise<{ oldestReceivedAt: number | null; looked: number }> {
  const row = await db
    .prepare(
      `SELECT COUNT(*) AS looked, MIN(CASE WHEN pending_due IS NOT NULL THEN received_at END) AS oldest
       FROM (SELECT received_at, pending_due FROM events ORDER BY received_at DESC LIMIT ?1)`,
    )
    .bind(lookAt)
    .first<{ looked: number; oldest: number | null }>();
  return { oldestReceivedAt: row?.oldest ?? null, looked: row?.looked ?? 0 };
}
