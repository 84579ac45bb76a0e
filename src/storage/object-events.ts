/**
 * The events of one object (an order, an issue): a primary-key range per source whose ids start with the object's
 * digest (src/core/event-id.ts), and, for ids stored before that scheme, the partial provider-id index that holds
 * only them (migrations/0012). No statement scans the table, and no new event writes an index entry for it.
 */
export interface ObjectEvents {
  providerId: string;
  /** One range per source the object may belong to: `[from, to)` of ids in one shard. */
  ranges: readonly { source: string; from: string; to: string }[];
  /** Set when the caller named the source: the earlier ids are filtered by it too. */
  source?: string;
}

/** More than any one order has; a statement per range reads at most this many ids. */
const MAX_IDS_PER_RANGE = 1_000;

/**
 * The object's event ids, one index-shaped statement per range in one batch. `events` is a WITHOUT ROWID table,
 * for which SQLite has no multi-index OR, and D1 allows too few terms in a compound SELECT for a UNION per source.
 */
export async function objectEventIds(db: D1Database, object: ObjectEvents): Promise<string[]> {
  const statements = object.ranges.map((r) =>
    db
      .prepare(
        `SELECT id FROM events WHERE id >= ?1 AND id < ?2 AND source = ?3 AND provider_id = ?4 LIMIT ${MAX_IDS_PER_RANGE}`,
      )
      .bind(r.from, r.to, r.source, object.providerId),
  );
  // Spelled as the partial index's own condition, so SQLite can use it.
  statements.push(
    db
      .prepare(
        `SELECT id FROM events WHERE length(id) = 36 AND provider_id = ?1 AND (?2 IS NULL OR source = ?2) LIMIT ${MAX_IDS_PER_RANGE}`,
      )
      .bind(object.providerId, object.source ?? null),
  );
  const results = await db.batch<{ id: string }>(statements);
  return results.flatMap((r) => r.results.map((row) => row.id));
}
