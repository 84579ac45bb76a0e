/**
 * The registry of ring key ids that have wrapped data keys (migrations/0006). Writers register their primary key;
 * the maintenance walk demotes and retires keys; a ring lacking an unretired key is refused.
 */

export interface RegisteredKey {
  keyId: string;
  firstUsedAt: number;
  demotedAt: number | null;
  retiredAt: number | null;
}

interface KeyRow {
  key_id: string;
  first_used_at: number;
  demoted_at: number | null;
  retired_at: number | null;
}

const toKey = (row: KeyRow): RegisteredKey => ({
  keyId: row.key_id,
  firstUsedAt: row.first_used_at,
  demotedAt: row.demoted_at,
  retiredAt: row.retired_at,
});

/**
 * Records that `keyId` wraps new data keys (a key put first again is no longer demoted or retired), and returns
 * every key still protecting rows, in one round trip.
 */
export async function registerPrimaryKey(db: D1Database, keyId: string, now: number): Promise<RegisteredKey[]> {
  const [, listed] = await db.batch<KeyRow>([
    db
      .prepare(
        `INSERT INTO payload_keys (key_id, first_used_at) VALUES (?1, ?2)
         ON CONFLICT (key_id) DO UPDATE SET demoted_at = NULL, retired_at = NULL
         WHERE payload_keys.demoted_at IS NOT NULL OR payload_keys.retired_at IS NOT NULL`,
      )
      .bind(keyId, now),
    db.prepare(
      `SELECT key_id, first_used_at, demoted_at, retired_at FROM payload_keys WHERE retired_at IS NULL ORDER BY first_used_at`,
    ),
  ]);
  return listed!.results.map(toKey);
}

export async function listKeys(db: D1Database): Promise<RegisteredKey[]> {
  const { results } = await db
    .prepare(`SELECT key_id, first_used_at, demoted_at, retired_at FROM payload_keys ORDER BY first_used_at`)
    .all<KeyRow>();
  return results.map(toKey);
}

/** The walk saw another key first: start this one's clock towards retirement (once). */
export async function demoteKeys(db: D1Database, keyIds: readonly string[], now: number): Promise<void> {
  if (keyIds.length === 0) return;
  await db
    .prepare(
      `UPDATE payload_keys SET demoted_at = ?2 WHERE key_id IN (SELECT value FROM json_each(?1)) AND demoted_at IS NULL AND retired_at IS NULL`,
    )
    .bind(JSON.stringify(keyIds), now)
    .run();
}

/** Keys a full lap found protecting nothing: the ring may drop them. */
export async function retireKeys(db: D1Database, keyIds: readonly string[], now: number): Promise<void> {
  if (keyIds.length === 0) return;
  await db
    .prepare(
      `UPDATE payload_keys SET retired_at = ?2 WHERE key_id IN (SELECT value FROM json_each(?1)) AND retired_at IS NULL AND demoted_at IS NOT NULL`,
    )
    .bind(JSON.stringify(keyIds), now)
    .run();
}
