/**
 * The storage of one destination's Durable Object (src/control/gate.ts): its gate state as one JSON value, and the
 * deliveries it holds, in the order their events were received. SQLite-backed Durable Object storage, billed like
 * D1: a held delivery costs one row written when held and one when released.
 */
import type { HoldReason } from "../core/controls.ts";

export interface HeldDelivery {
  eventId: string;
  generation: number;
  receivedAt: number;
  heldAt: number;
  reason: HoldReason;
}

export function ensureGateSchema(sql: SqlStorage): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS gate_state (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL)`);
  sql.exec(`CREATE TABLE IF NOT EXISTS held (
    event_id TEXT NOT NULL, generation INTEGER NOT NULL, received_at INTEGER NOT NULL, held_at INTEGER NOT NULL, reason TEXT NOT NULL,
    released_at INTEGER, PRIMARY KEY (event_id, generation))`);
  sql.exec(`CREATE TABLE IF NOT EXISTS rollup (id INTEGER PRIMARY KEY CHECK (id = 1), hours TEXT NOT NULL)`);
  sql.exec(`CREATE INDEX IF NOT EXISTS held_order ON held (received_at, event_id, generation)`);
  // No index on held_at: each index is one more row written per hold and per release.
}

/** Written only by writeGateState, with the object's own type. */
export function readGateState<T>(sql: SqlStorage): T | null {
  const row = sql.exec<{ state: string }>(`SELECT state FROM gate_state WHERE id = 1`).toArray()[0];
  return row ? (JSON.parse(row.state) as T) : null;
}

export function writeGateState(sql: SqlStorage, state: unknown): void {
  sql.exec(
    `INSERT INTO gate_state (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state`,
    JSON.stringify(state),
  );
}

/** The destination's hourly counters (src/core/rollups.ts), one row, rewritten whole. */
export function readRollup<T>(sql: SqlStorage): T | null {
  const row = sql.exec<{ hours: string }>(`SELECT hours FROM rollup WHERE id = 1`).toArray()[0];
  return row ? (JSON.parse(row.hours) as T) : null;
}

export function writeRollup(sql: SqlStorage, hours: unknown): void {
  sql.exec(
    `INSERT INTO rollup (id, hours) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET hours = excluded.hours`,
    JSON.stringify(hours),
  );
}

/**
 * Holds deliveries. One already held keeps its place (a redelivered message holds nothing twice); one released and
 * held again (paused meanwhile) is held again in its place. Returns how many are newly held.
 */
export function holdDeliveries(sql: SqlStorage, items: readonly HeldDelivery[]): number {
  let added = 0;
  for (const h of items) {
    const cursor = sql.exec(
      `INSERT INTO held (event_id, generation, received_at, held_at, reason) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (event_id, generation) DO UPDATE SET released_at = NULL, reason = excluded.reason WHERE released_at IS NOT NULL`,
      h.eventId,
      h.generation,
      h.receivedAt,
      h.heldAt,
      h.reason,
    );
    cursor.toArray();
    if (cursor.rowsWritten > 0) added++;
  }
  return added;
}

export function countHeld(sql: SqlStorage): { held: number; released: number } {
  const row = sql
    .exec<{ held: number; released: number }>(
      `SELECT count(*) - count(released_at) AS held, count(released_at) AS released FROM held`,
    )
    .one();
  return { held: row.held, released: row.released };
}

/** When the delivery at the head of the held queue (the oldest received) was held, by the order index. */
export function oldestHeldAt(sql: SqlStorage): number | null {
  return (
    sql
      .exec<{ held_at: number }>(
        `SELECT held_at FROM held WHERE released_at IS NULL ORDER BY received_at, event_id, generation LIMIT 1`,
      )
      .toArray()[0]?.held_at ?? null
  );
}

/** Released deliveries whose send was never reported by `before`: their message may be lost, so they go again. */
export function releasedBefore(
  sql: SqlStorage,
  before: number,
  limit: number,
): { eventId: string; generation: number }[] {
  return sql
    .exec<{ event_id: string; generation: number }>(
      `SELECT event_id, generation FROM held WHERE released_at IS NOT NULL AND released_at < ? ORDER BY received_at LIMIT ?`,
      before,
      limit,
    )
    .toArray()
    .map((r) => ({ eventId: r.event_id, generation: r.generation }));
}

export function oldestReleasedAt(sql: SqlStorage): number | null {
  return sql.exec<{ at: number | null }>(`SELECT min(released_at) AS at FROM held WHERE released_at IS NOT NULL`).one()
    .at;
}

/** A released delivery was attempted (its outcome reported): the object is done with it. Returns how many it had. */
export function forgetReleased(sql: SqlStorage, items: readonly { eventId: string; generation: number }[]): number {
  let forgotten = 0;
  for (const h of items) {
    const cursor = sql.exec(
      `DELETE FROM held WHERE event_id = ? AND generation = ? AND released_at IS NOT NULL`,
      h.eventId,
      h.generation,
    );
    cursor.toArray();
    forgotten += cursor.rowsWritten > 0 ? 1 : 0;
  }
  return forgotten;
}

export function oldestHeld(sql: SqlStorage, limit: number): HeldDelivery[] {
  return sql
    .exec<{ event_id: string; generation: number; received_at: number; held_at: number; reason: string }>(
      `SELECT event_id, generation, received_at, held_at, reason FROM held WHERE released_at IS NULL ORDER BY received_at, event_id, generation LIMIT ?`,
      limit,
    )
    .toArray()
    .map((r) => ({
      eventId: r.event_id,
      generation: r.generation,
      receivedAt: r.received_at,
      heldAt: r.held_at,
      reason: r.reason as HoldReason,
    }));
}

/** Reads every held row (count and minimums): for the admin view and the object's start, not per delivery. */
export function heldSummary(sql: SqlStorage): {
  count: number;
  oldestHeldAt: number | null;
  oldestReceivedAt: number | null;
} {
  const row = sql
    .exec<{ n: number; held: number | null; received: number | null }>(
      `SELECT count(*) AS n, min(held_at) AS held, min(received_at) AS received FROM held WHERE released_at IS NULL`,
    )
    .toArray()[0]!;
  return { count: row.n, oldestHeldAt: row.held, oldestReceivedAt: row.received };
}

/** Marks deliveries released: kept until their outcome is reported, so a lost release message is sent again. */
export function releaseHeld(
  sql: SqlStorage,
  items: readonly { eventId: string; generation: number }[],
  now: number,
): void {
  for (const h of items)
    sql.exec(`UPDATE held SET released_at = ? WHERE event_id = ? AND generation = ?`, now, h.eventId, h.generation);
}
