/** The sweeper's walk over the events: one bounded slice a run, from a cursor saved between runs. */

/**
 * One slice of the sweeper's walk over the events, in key order after `afterId`: how many rows it read, the last
 * key, and the events among them with a pending delivery due before `overdueBefore`.
 */
export async function scanForOverdueDeliveries(
  db: D1Database,
  afterId: string,
  limit: number,
  overdueBefore: number,
): Promise<{ scanned: number; lastId: string | null; overdueEventIds: string[] }> {
  const { results } = await db
    .prepare(`SELECT id, COALESCE(pending_due < ?3, 0) AS overdue FROM events WHERE id > ?1 ORDER BY id LIMIT ?2`)
    .bind(afterId, limit, overdueBefore)
    .all<{ id: string; overdue: number }>();
  return {
    scanned: results.length,
    lastId: results.at(-1)?.id ?? null,
    overdueEventIds: results.filter((r) => r.overdue === 1).map((r) => r.id),
  };
}

export async function getSweeperState(db: D1Database, name: string): Promise<string | null> {
  return db.prepare(`SELECT value FROM sweeper_state WHERE name = ?1`).bind(name).first<string>("value");
}

export async function setSweeperState(db: D1Database, name: string, value: string): Promise<void> {
  await db
    .prepare(
      `INSERT INTO sweeper_state (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
    )
    .bind(name, value)
    .run();
}
