/**
 * The audit log of who saw or removed customer data, who paused, resumed or re-enabled a destination, and every
 * dashboard sign-in, sign-out and failed or throttled attempt at the admin or reveal token; and what the router did by
 * itself (a shard made read-only by the capacity watch).
 */

export const AUDIT_ACTIONS = [
  "reveal",
  "customer_purge",
  "destination_pause",
  "destination_resume",
  "destination_enable",
  "sign_in",
  "sign_in_failed",
  "sign_out",
  "sign_out_everywhere",
  "reveal_failed",
  "attempts_throttled",
  // Migration 0010: every operator action that sends or holds deliveries (src/operations/).
  "replay",
  "bulk_replay_start",
  "bulk_replay_cancel",
  "redrive",
  "quarantine_release",
  // Migration 0014: the router's own actions, with token id ROUTER_ACTOR (the capacity watch, src/control/capacity.ts).
  "shard_read_only",
  // Migration 0015: an operator's forced status update (the status relay, src/operations/relay.ts).
  "relay_force",
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** The token id of an entry for a failed attempt: the wrong token is never stored, not even hashed. */
export const NO_TOKEN = "none";

/** The token id (and `via`) of an entry for something the router did by itself, not an operator. */
export const ROUTER_ACTOR = "router";

export interface AuditEntry {
  id: string;
  at: number;
  action: AuditAction;
  /** A hash prefix of the token used, never the token. */
  tokenId: string;
  eventId: string | null;
  /** Field names, counts and ids: never a payload value. */
  detail: Record<string, unknown>;
}

/** Ids sort by time (zero-padded milliseconds, then randomness), so newest-first pages are keyset pages on the key. */
export function auditId(at: number): string {
  return `aud_${String(at).padStart(15, "0")}_${crypto.randomUUID().replace(/-/g, "").slice(0, 12)}`;
}

/** The insert of one entry, for a caller that batches it with the write it records. */
export function auditStatement(db: D1Database, entry: AuditEntry): D1PreparedStatement {
  return db
    .prepare(`INSERT INTO audit_log (id, at, action, token_id, event_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)`)
    .bind(entry.id, entry.at, entry.action, entry.tokenId, entry.eventId, JSON.stringify(entry.detail));
}

export async function insertAudit(db: D1Database, entry: AuditEntry): Promise<void> {
  await auditStatement(db, entry).run();
}

export async function listAudit(
  db: D1Database,
  before: string | null,
  limit: number,
  eventId?: string,
): Promise<AuditEntry[]> {
  const { results } = await db
    .prepare(
      `SELECT id, at, action, token_id, event_id, detail FROM audit_log WHERE (?1 IS NULL OR id < ?1) AND (?2 IS NULL OR event_id = ?2) ORDER BY id DESC LIMIT ?3`,
    )
    .bind(before, eventId ?? null, limit)
    .all<{ id: string; at: number; action: AuditAction; token_id: string; event_id: string | null; detail: string }>();
  return results.map((r) => ({
    id: r.id,
    at: r.at,
    action: r.action,
    tokenId: r.token_id,
    eventId: r.event_id,
    detail: JSON.parse(r.detail) as Record<string, unknown>,
  }));
}
