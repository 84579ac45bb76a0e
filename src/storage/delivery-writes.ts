/**
 * The versioned write loop for an event's delivery state. The rules that change the state are pure
 * (src/core/delivery-state.ts); this reads the state, hands it to a rule, and writes the result back only if nobody
 * wrote it meanwhile (the `version` column), re-reading and re-applying otherwise.
 */
import {
  deadDeliveries,
  pendingDue,
  serializeDeliveries,
  type Change,
  type DeliveryState,
} from "../core/delivery-state.ts";
import { shardOfEventId } from "../core/event-id.ts";
import { logEvent } from "../telemetry/log.ts";
import { toSnapshot, type DeliverySnapshot, type EventRow } from "./rows.ts";
import { errorMessage, RouterError } from "../core/errors.ts";

/**
 * Each round of a race has a winner, so N concurrent writers of one event need at most N rounds. The usual race is
 * the split-off retries of one fan-out landing in one consumer batch (at most `max_batch_size`, 10). A writer that
 * runs out throws, and its queue message is retried, so nothing is lost.
 */
const MAX_WRITE_ATTEMPTS = 20;

function writeDeliveries(db: D1Database, eventId: string, version: number, deliveries: readonly DeliveryState[]) {
  return db
    .prepare(
      `UPDATE events SET deliveries = ?3, pending_due = ?4, dead_deliveries = ?5, version = version + 1 WHERE id = ?1 AND version = ?2`,
    )
    .bind(eventId, version, serializeDeliveries(deliveries), pendingDue(deliveries), deadDeliveries(deliveries));
}

/**
 * Applies a rule to one event's delivery state and writes the result, starting from `snapshot` if the caller has
 * just read it. Returns null if the event does not exist.
 */
export async function updateDeliveries<R>(
  db: D1Database,
  eventId: string,
  rule: (deliveries: DeliveryState[]) => Change<R>,
  snapshot?: DeliverySnapshot,
): Promise<R | null> {
  let current: DeliverySnapshot | null = snapshot ?? null;
  for (let attempt = 1; ; attempt++) {
    if (!current) {
      const row = await db
        .prepare(`SELECT deliveries, version FROM events WHERE id = ?1`)
        .bind(eventId)
        .first<EventRow>();
      if (!row) return null;
      current = toSnapshot(row);
    }
    const change = rule(current.deliveries);
    if (change.deliveries === current.deliveries) return change.result;
    const written = await writeDeliveries(db, eventId, current.version, change.deliveries).run();
    // At least one: D1's `changes` also counts the rows a trigger wrote (the dead-letter totals, migrations/0016),
    // and this statement writes its one row or none.
    if ((written.meta.changes ?? 0) >= 1) return change.result;
    // Another writer (a split-off retry, a replay, a redelivered message) got there first: re-read and re-apply.
    if (attempt >= MAX_WRITE_ATTEMPTS) {
      throw new RouterError("write_contended", {
        detail: `delivery state of ${eventId} kept changing under ${MAX_WRITE_ATTEMPTS} writes`,
      });
    }
    current = null;
  }
}

/**
 * The same for many events at once: one read and one batch of conditional writes; only an event whose write lost
 * a race goes round again on its own. Events that do not exist are left out of the result.
 */
export async function updateDeliveriesOfEvents<R>(
  db: D1Database,
  eventIds: readonly string[],
  rule: (eventId: string, deliveries: DeliveryState[]) => Change<R>,
  /** Filled with the events whose write kept losing races: left out of the result, to be tried again later. */
  failed: Set<string> = new Set(),
): Promise<Map<string, R>> {
  const results = new Map<string, R>();
  if (eventIds.length === 0) return results;
  const { results: rows } = await db
    .prepare(`SELECT id, deliveries, version FROM events WHERE id IN (SELECT value FROM json_each(?1))`)
    .bind(JSON.stringify([...new Set(eventIds)]))
    .all<Pick<EventRow, "id" | "deliveries" | "version">>();
  const writes: { eventId: string; version: number; change: Change<R> }[] = [];
  for (const row of rows) {
    const snapshot = toSnapshot(row);
    const change = rule(row.id, snapshot.deliveries);
    if (change.deliveries === snapshot.deliveries) results.set(row.id, change.result);
    else writes.push({ eventId: row.id, version: snapshot.version, change });
  }
  if (writes.length > 0) {
    const written = await db.batch(writes.map((w) => writeDeliveries(db, w.eventId, w.version, w.change.deliveries)));
    for (const [i, w] of writes.entries()) {
      if ((written[i]?.meta.changes ?? 0) >= 1) {
        results.set(w.eventId, w.change.result);
        continue;
      }
      // The others are written already, so their results must reach the caller even if this one keeps failing:
      // it is left out, as if it had not been named, and the caller's next pass picks it up.
      try {
        const retried = await updateDeliveries(db, w.eventId, (deliveries) => rule(w.eventId, deliveries));
        if (retried !== null) results.set(w.eventId, retried);
      } catch (err) {
        failed.add(w.eventId);
        logEvent("error", "delivery_state_write_failed", { eventId: w.eventId, errorMessage: errorMessage(err) });
      }
    }
  }
  return results;
}

/**
 * The same for events that may live in several shards (src/core/event-id.ts: the id names the shard): each shard's
 * events through `updateDeliveriesOfEvents` on its own database, the shards at once. An id that names no shard, or a
 * shard `dbOf` cannot open, is left out of the result, as an event that does not exist.
 */
export async function updateDeliveriesInShards<R>(
  dbOf: (shard: number) => D1Database | null,
  eventIds: readonly string[],
  rule: (eventId: string, deliveries: DeliveryState[]) => Change<R>,
  failed: Set<string> = new Set(),
): Promise<Map<string, R>> {
  const byShard = new Map<number, string[]>();
  for (const eventId of new Set(eventIds)) {
    const shard = shardOfEventId(eventId);
    if (shard !== null) byShard.set(shard, [...(byShard.get(shard) ?? []), eventId]);
  }
  const parts = await Promise.all(
    [...byShard].map(([shard, ids]) => {
      const db = dbOf(shard);
      return db ? updateDeliveriesOfEvents(db, ids, rule, failed) : new Map<string, R>();
    }),
  );
  return new Map(parts.flatMap((part) => [...part]));
}
