/**
 * Dashboard sessions (migration 0009): one row per sign-in, so that sign-out ends a session on the server and not
 * only in the browser that signed out. A page view reads one row by its primary key (`sessionIsLive`); every other
 * statement here runs only at sign-in or sign-out.
 */
import { pruneExpiredAttempts } from "./attempts.ts";
import { auditStatement, type AuditEntry } from "./audit.ts";

/** A new session id: 128 random bits, hex. */
export function newSessionId(): string {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Stores the session and its audit entry together, and drops expired sessions and throttle windows that are over,
 * so both tables stay small without a job of their own.
 */
export async function createSession(
  db: D1Database,
  id: string,
  now: number,
  expiresAt: number,
  audit: AuditEntry,
): Promise<void> {
  await db.batch([
    db.prepare(`DELETE FROM dashboard_sessions WHERE expires_at <= ?1`).bind(now),
    pruneExpiredAttempts(db, now),
    db
      .prepare(`INSERT INTO dashboard_sessions (id, created_at, expires_at, revoked_at) VALUES (?1, ?2, ?3, NULL)`)
      .bind(id, now, expiresAt),
    auditStatement(db, audit),
  ]);
}

/** The one lookup per page view: a session that exists, has not expired, and was not revoked. */
export async function sessionIsLive(db: D1Database, id: string, now: number): Promise<boolean> {
  const row = await db
    .prepare(`SELECT expires_at, revoked_at FROM dashboard_sessions WHERE id = ?1`)
    .bind(id)
    .first<{ expires_at: number; revoked_at: number | null }>();
  return row !== null && row.revoked_at === null && row.expires_at > now;
}

/** Sign-out: this session ends now, wherever its cookie was copied to. */
export async function revokeSession(db: D1Database, id: string, now: number, audit: AuditEntry): Promise<void> {
  await db.batch([
    db.prepare(`UPDATE dashboard_sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL`).bind(id, now),
    auditStatement(db, audit),
  ]);
}

/** "Sign out everywhere": every live session ends now. Returns how many there were. */
export async function revokeAllSessions(
  db: D1Database,
  now: number,
  audit: (revoked: number) => AuditEntry,
): Promise<number> {
  const revoked = await db
    .prepare(`UPDATE dashboard_sessions SET revoked_at = ?1 WHERE revoked_at IS NULL AND expires_at > ?1`)
    .bind(now)
    .run();
  await auditStatement(db, audit(revoked.meta.changes)).run();
  return revoked.meta.changes;
}
