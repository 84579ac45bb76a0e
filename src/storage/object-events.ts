import { objectDigest, objectIdRange } from "../core/event-id.ts";
import type { OrderEventRow } from "../core/relay.ts";

/**
 * The events of one object (an order, an issue): a primary-key range per shard and source whose ids start with the
 * object's digest (src/core/event-id.ts), and, for ids stored before that scheme (all in shard 0), the partial
 * provider-id index that holds only them (migrations/0012). No statement scans the table, and no new event writes an
 * index entry for it.
 */
export interface ObjectEvents {
  providerId: string;
  /**
   * One range per shard and source the object may belong to: `[from, to)` of ids in that shard. Every shard has one:
   * the shard map may have placed the object's events in different shards over its versions.
   */
  ranges: readonly { shard: number; source: string; from: string; to: string }[];
  /** Set when the caller named the source: the earlier ids are filtered by it too. */
  source?: string;
}

/**
 * Where an object's events are: the id range its digest gives in each shard, for each source it may belong to
 * (src/core/event-id.ts). Every shard gets its ranges, read-only ones too: the shard map may have placed the object's
 * events in different shards over its versions. `source`, when named, also filters the ids of the earlier form.
 */
export async function objectEventsIn(
  shards: readonly number[],
  sources: readonly string[],
  providerId: string,
  source?: string,
): Promise<ObjectEvents> {
  const digests = await Promise.all(
    sources.map(async (s) => ({ source: s, digest: await objectDigest(s, providerId) })),
  );
  const ranges = shards.flatMap((shard) =>
    digests.map(({ source: s, digest }) => ({ shard, source: s, ...objectIdRange(shard, digest) })),
  );
  return { providerId, ranges, source };
}

/** More than any one order has; a statement per range reads at most this many ids. */
const MAX_IDS_PER_RANGE = 1_000;

/** The shard that holds ids of the earlier form (before migrations/0012). */
const EARLIER_IDS_SHARD = 0;

/**
 * The object's event ids in one shard, one index-shaped statement per range of that shard in one batch. `events` is
 * a WITHOUT ROWID table, for which SQLite has no multi-index OR, and D1 allows too few terms in a compound SELECT for
 * a UNION per source.
 */
export async function objectEventIds(db: D1Database, shard: number, object: ObjectEvents): Promise<string[]> {
  return (await readObjectEvents<{ id: string }>(db, shard, object, "id")).map((row) => row.id);
}

/** What an order's state is read from (src/core/relay.ts): its events' types, keys, merchant and holds. */
export async function objectEventRows(db: D1Database, shard: number, object: ObjectEvents): Promise<OrderEventRow[]> {
  const rows = await readObjectEvents<{
    id: string;
    event_type: string;
    idempotency_key: string;
    merchant_id: string | null;
    received_at: number;
    quarantine: string | null;
  }>(db, shard, object, "id, event_type, idempotency_key, merchant_id, received_at, quarantine");
  return rows.map((row) => ({
    id: row.id,
    eventType: row.event_type,
    idempotencyKey: row.idempotency_key,
    merchantId: row.merchant_id,
    receivedAt: row.received_at,
    held: row.quarantine !== null && (JSON.parse(row.quarantine) as { releasedAt?: number }).releasedAt === undefined,
  }));
}

async function readObjectEvents<Row>(
  db: D1Database,
  shard: number,
  object: ObjectEvents,
  columns: string,
): Promise<Row[]> {
  const statements = object.ranges
    .filter((r) => r.shard === shard)
    .map((r) =>
      db
        .prepare(
          `SELECT ${columns} FROM events WHERE id >= ?1 AND id < ?2 AND source = ?3 AND provider_id = ?4 LIMIT ${MAX_IDS_PER_RANGE}`,
        )
        .bind(r.from, r.to, r.source, object.providerId),
    );
  // Spelled as the partial index's own condition, so SQLite can use it.
  if (shard === EARLIER_IDS_SHARD)
    statements.push(
      db
        .prepare(
          `SELECT ${columns} FROM events WHERE length(id) = 36 AND provider_id = ?1 AND (?2 IS NULL OR source = ?2) LIMIT ${MAX_IDS_PER_RANGE}`,
        )
        .bind(object.providerId, object.source ?? null),
    );
  if (statements.length === 0) return [];
  const results = await db.batch<Row>(statements);
  return results.flatMap((r) => r.results);
}
