/**
 * The outbox: queue messages whose send failed, kept in D1 until the sweeper has sent them. A healthy system keeps
 * it empty.
 */

export async function insertOutbox(db: D1Database, messages: readonly unknown[], now: number): Promise<void> {
  if (messages.length === 0) return;
  await db.batch(
    messages.map((message) =>
      db
        .prepare(`INSERT INTO outbox (id, message, created_at, due_at) VALUES (?1, ?2, ?3, ?3)`)
        .bind(`obx_${crypto.randomUUID().replace(/-/g, "")}`, JSON.stringify(message), now),
    ),
  );
}

/**
 * Claims due outbox rows by moving their due time `claimMs` ahead, conditional on the due time read, so
 * overlapping sweeps claim each row once and a claimed row whose send then fails comes due again by itself.
 */
export async function claimDueOutbox(
  db: D1Database,
  now: number,
  claimMs: number,
  limit: number,
): Promise<{ id: string; message: unknown }[]> {
  const due = await db
    .prepare(`SELECT id, message, due_at FROM outbox WHERE due_at <= ?1 ORDER BY due_at LIMIT ?2`)
    .bind(now, limit)
    .all<{ id: string; message: string; due_at: number }>();
  if (due.results.length === 0) return [];
  const claims = await db.batch(
    due.results.map((row) =>
      db.prepare(`UPDATE outbox SET due_at = ?2 WHERE id = ?1 AND due_at = ?3`).bind(row.id, now + claimMs, row.due_at),
    ),
  );
  return due.results
    .filter((_, i) => (claims[i]?.meta.changes ?? 0) === 1)
    .map((row) => ({ id: row.id, message: JSON.parse(row.message) as unknown }));
}

export async function deleteOutbox(db: D1Database, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.prepare(`DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?1))`).bind(JSON.stringify(ids)).run();
}
