/**
 * The overview's event counts: `rollups` rows by hour, source and type, added to by the Cron's rollup walk, which
 * reads new events once each, in received order, through the received_at index. Its cursor lives in
 * `sweeper_state`, and moves in the same transaction as the counts, so a slice is counted once.
 */
import type { EventCount } from "../core/rollups.ts";

const CURSOR = "rollup_cursor";

export interface RollupCursor {
  receivedAt: number;
  id: string;
}

export async function readRollupCursor(db: D1Database): Promise<{ raw: string | null; cursor: RollupCursor | null }> {
  const raw = await db.prepare(`SELECT value FROM sweeper_state WHERE name = ?1`).bind(CURSOR).first<string>("value");
  if (raw === null) return { raw, cursor: null };
  const parsed = JSON.parse(raw) as RollupCursor;
  return { raw, cursor: { receivedAt: Number(parsed.receivedAt), id: String(parsed.id) } };
}

/** The next events after the cursor received before `before`, oldest first. */
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
 * Adds a slice's counts and moves the cursor, atomically, and only if the cursor is still the one the slice was
 * read from: a second run that overlapped this one counts nothing twice.
 */
export async function addEventCounts(
  db: D1Database,
  readFrom: string | null,
  counts: readonly EventCount[],
  next: RollupCursor,
  forgetBefore: number,
): Promise<boolean> {
  const unchanged = `COALESCE((SELECT value FROM sweeper_state WHERE name = '${CURSOR}'), '') = ?1`;
  const from = readFrom ?? "";
  const written = await db.batch([
    ...counts.map((c) =>
      db
        .prepare(
          `INSERT INTO rollups (hour, source, event_type, events) SELECT ?2, ?3, ?4, ?5 WHERE ${unchanged}
           ON CONFLICT (hour, source, event_type) DO UPDATE SET events = events + excluded.events`,
        )
        .bind(from, c.hour, c.source, c.eventType, c.events),
    ),
    db.prepare(`DELETE FROM rollups WHERE hour < ?2 AND ${unchanged}`).bind(from, forgetBefore),
    db
      .prepare(
        `INSERT INTO sweeper_state (name, value) SELECT '${CURSOR}', ?2 WHERE ${unchanged} ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
      )
      .bind(from, JSON.stringify(next)),
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

/** The router's dead deliveries, through the dead-letter index; `capped` when more events hold them than `cap`. */
export async function deadLetterTotal(db: D1Database, cap: number): Promise<{ dead: number; capped: boolean }> {
  const row = await db
    .prepare(
      `SELECT COUNT(*) AS events, COALESCE(SUM(n), 0) AS dead FROM (SELECT dead_deliveries AS n FROM events WHERE dead_deliveries > 0 LIMIT ?1)`,
    )
    .bind(cap + 1)
    .first<{ events: number; dead: number }>();
  return { dead: row?.dead ?? 0, capped: (row?.events ?? 0) > cap };
}
