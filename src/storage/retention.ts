/**
 * The maintenance walk's reads and writes (src/maintenance): a bounded slice of the events in key order, and the
 * purges, deletions, re-wraps and encryptions it decides. Every write is conditional on what was read, so a
 * delivery write, a replay or a second walk meanwhile makes it a no-op for that row, to be seen again next lap.
 */
import { z } from "zod";
import { parseDeliveries, toSnapshot } from "./rows.ts";
import { getSweeperState, setSweeperState } from "./sweep-cursor.ts";
import { deadDeliveries, pendingDue, serializeDeliveries, type DeliveryState } from "../core/delivery-state.ts";
import { rewrapDataKey, type KeyRing, type PayloadProtection } from "../core/envelope.ts";
import type { UpkeepRow } from "../core/retention.ts";
import { objectEventIds, type ObjectEvents } from "./object-events.ts";
import { EventPayloads } from "./payloads.ts";

/** One slice of the walk. `payload_key` and `payload_purged_at` come after the body (migrations/0006), so D1 bills
 * the same one row read each; only the bytes read grow with the body. */
export async function walkSlice(db: D1Database, afterId: string, limit: number): Promise<UpkeepRow[]> {
  const { results } = await db
    .prepare(
      `SELECT id, received_at, pending_due, payload_key, payload_purged_at FROM events WHERE id > ?1 ORDER BY id LIMIT ?2`,
    )
    .bind(afterId, limit)
    .all<{
      id: string;
      received_at: number;
      pending_due: number | null;
      payload_key: string | null;
      payload_purged_at: number | null;
    }>();
  return results.map((r) => ({
    id: r.id,
    receivedAt: r.received_at,
    pendingDue: r.pending_due,
    payloadKey: r.payload_key,
    purgedAt: r.payload_purged_at,
  }));
}

/** Rows past the event horizon, unless a delivery became pending meanwhile (a replay). Returns how many went. */
export async function deleteEvents(db: D1Database, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  // Counted by what came back: D1's `changes` also counts what the dead-letter triggers wrote (migrations/0016).
  const { results } = await db
    .prepare(`DELETE FROM events WHERE id IN (SELECT value FROM json_each(?1)) AND pending_due IS NULL RETURNING id`)
    .bind(JSON.stringify(ids))
    .all<{ id: string }>();
  return results.length;
}

/**
 * Purges the payloads of these events: body, Draft answer, response excerpts and headers, and the data key (so
 * nothing sealed with it could be opened again). The row keeps its ids, dedup key, body hash and delivery state;
 * `settle` says what the purge does to the deliveries. Returns the ids purged; one whose write kept losing races is
 * left for later.
 */
export async function purgePayloads(
  db: D1Database,
  ids: readonly string[],
  now: number,
  settle: (deliveries: DeliveryState[], eventId: string) => DeliveryState[],
): Promise<string[]> {
  const purged: string[] = [];
  let remaining = [...new Set(ids)];
  for (let round = 0; round < 3 && remaining.length > 0; round++) {
    const { results } = await db
      .prepare(
        `SELECT id, deliveries, version FROM events WHERE id IN (SELECT value FROM json_each(?1)) AND payload_purged_at IS NULL`,
      )
      .bind(JSON.stringify(remaining))
      .all<{ id: string; deliveries: string; version: number }>();
    if (results.length === 0) break;
    const writes = results.map((row) => {
      const deliveries = settle(toSnapshot(row).deliveries, row.id);
      return db
        .prepare(
          `UPDATE events SET body = '', draft_answer = NULL, payload_dek = NULL, payload_key = NULL, payload_purged_at = ?3,
             deliveries = ?4, pending_due = ?5, dead_deliveries = ?6, version = version + 1
           WHERE id = ?1 AND version = ?2`,
        )
        .bind(
          row.id,
          row.version,
          now,
          serializeDeliveries(deliveries),
          pendingDue(deliveries),
          deadDeliveries(deliveries),
        );
    });
    const written = await db.batch(writes);
    const lost = new Set<string>();
    for (const [i, row] of results.entries()) {
      // At least one: D1's `changes` also counts the rows a trigger wrote (migrations/0016); this statement writes one or none.
      if ((written[i]?.meta.changes ?? 0) >= 1) purged.push(row.id);
      else lost.add(row.id);
    }
    remaining = [...lost];
  }
  return purged;
}

/**
 * The events of one order in one shard (a customer's deletion request), through the order's id ranges in that shard
 * (src/storage/object-events.ts). The caller asks every shard: the order may be in several.
 */
export async function eventsOfOrder(
  db: D1Database,
  shard: number,
  order: ObjectEvents,
): Promise<{ id: string; purged: boolean }[]> {
  const ids = await objectEventIds(db, shard, order);
  if (ids.length === 0) return [];
  const { results } = await db
    .prepare(
      `SELECT id, payload_purged_at IS NOT NULL AS purged FROM events
       WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id LIMIT 1000`,
    )
    .bind(JSON.stringify(ids))
    .all<{ id: string; purged: number }>();
  return results.map((r) => ({ id: r.id, purged: r.purged === 1 }));
}

/**
 * Prepares a write per row; a row whose stored key does not open (altered, or moved from another row) is left as it
 * is and named in `unreadable`, so one bad row never stops the walk.
 */
async function eachReadable<R extends { id: string }>(
  rows: readonly R[],
  prepare: (row: R) => Promise<D1PreparedStatement>,
) {
  return Promise.all(rows.map(async (row) => ({ id: row.id, statement: await prepare(row).catch(() => null) })));
}

async function writeEach(
  db: D1Database,
  prepared: { id: string; statement: D1PreparedStatement | null }[],
  unreadable: string[],
): Promise<string[]> {
  const ready = prepared.filter((p): p is { id: string; statement: D1PreparedStatement } => p.statement !== null);
  unreadable.push(...prepared.filter((p) => p.statement === null).map((p) => p.id));
  if (ready.length === 0) return [];
  const written = await db.batch(ready.map((p) => p.statement));
  return ready.filter((_, i) => (written[i]?.meta.changes ?? 0) >= 1).map((p) => p.id);
}

/** Rotation: each data key wrapped by the ring's primary instead, if nobody changed it meanwhile. Returns the ids. */
export async function rewrapEvents(
  db: D1Database,
  ring: KeyRing,
  ids: readonly string[],
  unreadable: string[] = [],
): Promise<string[]> {
  if (ids.length === 0) return [];
  const { results } = await db
    .prepare(
      `SELECT id, payload_dek FROM events WHERE id IN (SELECT value FROM json_each(?1)) AND payload_dek IS NOT NULL`,
    )
    .bind(JSON.stringify(ids))
    .all<{ id: string; payload_dek: string }>();
  if (results.length === 0) return [];
  const prepared = await eachReadable(results, async (row) => {
    const next = await rewrapDataKey(ring, row.id, row.payload_dek);
    return db
      .prepare(`UPDATE events SET payload_dek = ?3, payload_key = ?4 WHERE id = ?1 AND payload_dek = ?2`)
      .bind(row.id, row.payload_dek, next.wrapped, next.keyId);
  });
  return writeEach(db, prepared, unreadable);
}

/**
 * Rows stored before encryption (or while it was off): body, Draft answer and the destinations' excerpts (and kept
 * response headers) sealed with a new data key. Reads the payloads, so the walk does few per run. Returns the ids.
 */
export async function encryptEvents(
  db: D1Database,
  protection: PayloadProtection & { mode: "encrypted" },
  ids: readonly string[],
  unreadable: string[] = [],
): Promise<string[]> {
  if (ids.length === 0) return [];
  const { results } = await db
    .prepare(
      `SELECT id, body, draft_answer, deliveries, version FROM events
       WHERE id IN (SELECT value FROM json_each(?1)) AND payload_dek IS NULL AND payload_purged_at IS NULL`,
    )
    .bind(JSON.stringify(ids))
    .all<{ id: string; body: unknown; draft_answer: unknown; deliveries: string; version: number }>();
  if (results.length === 0) return [];
  const prepared = await eachReadable(results, async (row) => {
    const plain = await EventPayloads.open(protection, row.id, null);
    const sealed = await EventPayloads.create(protection, row.id);
    const deliveries = await Promise.all(
      parseDeliveries(row.deliveries).map(async (d) => ({
        ...d,
        log: await Promise.all(
          d.log.map(async (a) => ({
            ...a,
            responseExcerpt:
              a.responseExcerpt !== null && a.statusCode !== null
                ? await sealed.sealText("excerpt", a.responseExcerpt)
                : a.responseExcerpt,
            ...(typeof a.responseHeaders === "string"
              ? { responseHeaders: await sealed.sealText("headers", a.responseHeaders) }
              : {}),
          })),
        ),
      })),
    );
    const { keyId, wrapped } = sealed.keyColumns;
    return db
      .prepare(
        `UPDATE events SET body = ?3, draft_answer = ?4, deliveries = ?5, payload_key = ?6, payload_dek = ?7, version = version + 1
           WHERE id = ?1 AND version = ?2 AND payload_dek IS NULL`,
      )
      .bind(
        row.id,
        row.version,
        await sealed.seal("body", await plain.open("body", row.body)),
        row.draft_answer === null ? null : await sealed.seal("answer", await plain.open("answer", row.draft_answer)),
        serializeDeliveries(deliveries),
        keyId,
        wrapped,
      );
  });
  return writeEach(db, prepared, unreadable);
}

const WALK_STATE = "maintenance_walk";

const LapSchema = z.object({
  startedAt: z.number(),
  primary: z.string().nullable(),
  walked: z.number().int(),
  byKey: z.record(z.string(), z.number().int()),
  completedAt: z.number().optional(),
});

const WalkStateSchema = z.object({ after: z.string(), lap: LapSchema, lastLap: LapSchema.nullable() });

/** Where the walk stopped, the lap in progress and the last complete one. */
export type WalkState = z.infer<typeof WalkStateSchema>;

export async function readWalkState(db: D1Database): Promise<WalkState | null> {
  const raw = await getSweeperState(db, WALK_STATE);
  if (raw === null) return null;
  // Written only by writeWalkState; one that does not parse starts a new lap rather than stopping the walk.
  const parsed = WalkStateSchema.safeParse(JSON.parse(raw));
  return parsed.success ? parsed.data : null;
}

export async function writeWalkState(db: D1Database, state: WalkState): Promise<void> {
  await setSweeperState(db, WALK_STATE, JSON.stringify(state));
}

/**
 * Every shard's walk state (null: not walked yet). Each lives in its shard's own database, beside the rows its
 * cursor points into; shard 0's is the one the walk kept before shards.
 */
export async function readWalkStates(
  shards: readonly { id: number; db: D1Database }[],
): Promise<{ shard: number; state: WalkState | null }[]> {
  return Promise.all(shards.map(async (shard) => ({ shard: shard.id, state: await readWalkState(shard.db) })));
}
