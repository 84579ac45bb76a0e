/**
 * For routes with `"ordering": "latest"`: per object (source and provider id), the newest provider timestamp
 * delivered so far to each destination. One row per object, read once per consumer message that has ordered
 * deliveries and written once when some of them are delivered; each destination's time only ever moves forward,
 * so a late retry of an older state never moves it back. The row lives in the shard of the object's events (every
 * event of one order is in one shard, src/core/shards.ts).
 */

// D1 allows 32 arguments per SQL function, and json_set takes the document and two per destination (its path and
// the time): 15 destinations a statement (and well under D1's 100 bound parameters).
const DESTINATIONS_PER_STATEMENT = 15;

const pathOf = (destination: string) => `$."${destination}"`;

export async function latestDelivered(
  db: D1Database,
  source: string,
  providerId: string,
): Promise<Map<string, number>> {
  const delivered = await db
    .prepare(`SELECT delivered FROM latest_deliveries WHERE source = ?1 AND provider_id = ?2`)
    .bind(source, providerId)
    .first<string>("delivered");
  if (delivered === null) return new Map();
  return new Map(Object.entries(JSON.parse(delivered) as Record<string, number>));
}

/**
 * The same, read from several databases at once and merged, newest per destination: an object's state kept in the
 * shard its events went to before a change of the shard map, and in the one they go to now (src/core/shards.ts).
 */
export async function latestDeliveredIn(
  dbs: readonly D1Database[],
  source: string,
  providerId: string,
): Promise<Map<string, number>> {
  const maps = await Promise.all(dbs.map((db) => latestDelivered(db, source, providerId)));
  const merged = new Map<string, number>();
  for (const map of maps)
    for (const [destination, at] of map) merged.set(destination, Math.max(at, merged.get(destination) ?? -Infinity));
  return merged;
}

export async function recordDelivered(
  db: D1Database,
  source: string,
  providerId: string,
  providerTimestamp: number,
  destinations: readonly string[],
): Promise<void> {
  const statements: D1PreparedStatement[] = [];
  for (let i = 0; i < destinations.length; i += DESTINATIONS_PER_STATEMENT) {
    const chunk = destinations.slice(i, i + DESTINATIONS_PER_STATEMENT);
    const paths = chunk.map((_, j) => `?${j + 4}`);
    const initial = `json_set('{}', ${paths.map((p) => `${p}, ?3`).join(", ")})`;
    const moved = paths
      .map((p) => `${p}, max(coalesce(json_extract(latest_deliveries.delivered, ${p}), 0), ?3)`)
      .join(", ");
    statements.push(
      db
        .prepare(
          `INSERT INTO latest_deliveries (source, provider_id, delivered) VALUES (?1, ?2, ${initial})
           ON CONFLICT (source, provider_id) DO UPDATE SET delivered = json_set(latest_deliveries.delivered, ${moved})`,
        )
        .bind(source, providerId, providerTimestamp, ...chunk.map(pathOf)),
    );
  }
  if (statements.length === 1) await statements[0]!.run();
  else if (statements.length > 1) await db.batch(statements);
}
