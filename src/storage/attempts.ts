/**
 * Throttling of failed attempts at a token (the dashboard's sign-in, a reveal), per client (migration 0009).
 *
 * A fixed window starts at a client's first failure; at `maxFailures` failures within it, that client's attempts
 * are refused (429, Retry-After) until the window ends, checked before the token is compared, so a locked-out client
 * learns nothing from a right guess either. A success clears the count. Counters live in D1, not in a Durable
 * Object: a failure is rare, the check is one primary-key read, and the UPSERT below counts concurrent failures
 * exactly. Every failure writes an audit entry (never the token); a lockout writes one more.
 */
import { RouterError } from "../core/errors.ts";
import { auditId, auditStatement, NO_TOKEN, type AuditEntry } from "./audit.ts";

export type AttemptScope = "sign_in" | "reveal";

export interface AttemptPolicy {
  maxFailures: number;
  windowMs: number;
}

/** Five wrong tokens in 15 minutes lock a client out for what is left of those 15 minutes. */
export const ATTEMPT_POLICY: AttemptPolicy = { maxFailures: 5, windowMs: 15 * 60_000 };

/** A client's standing: its failures in the current window, and how long it stays locked out (0: it may try). */
export interface AttemptStanding {
  failures: number;
  lockedForMs: number;
}

/** Pure: the standing a stored window gives at `now`. An expired window counts as none. */
export function standingOf(
  row: { window_start: number; failures: number } | null,
  now: number,
  policy: AttemptPolicy = ATTEMPT_POLICY,
): AttemptStanding {
  if (!row || row.window_start + policy.windowMs <= now) return { failures: 0, lockedForMs: 0 };
  return {
    failures: row.failures,
    lockedForMs: row.failures >= policy.maxFailures ? row.window_start + policy.windowMs - now : 0,
  };
}

/** Whole seconds for Retry-After, never 0 while locked. */
export const retryAfterSeconds = (lockedForMs: number) => String(Math.max(1, Math.ceil(lockedForMs / 1000)));

/**
 * The client an attempt is counted against: CF-Connecting-IP, which Cloudflare's edge sets (a caller cannot
 * choose it), an IPv6 address by its /64 (one host usually holds a whole /64). Under `wrangler dev` miniflare sets
 * it to the caller's address (127.0.0.1 on loopback, so local clients share one count). Without the header (a test
 * calling the Worker's fetch directly, a service binding) every such request is the one client "unknown":
 * throttling still holds, for all of them together.
 */
export function clientOf(connectingIp: string | undefined): string {
  const ip = connectingIp?.trim();
  if (!ip) return "unknown";
  if (!ip.includes(":")) return ip.slice(0, 45);
  const [head = "", tail] = ip.toLowerCase().split("::");
  const front = head ? head.split(":") : [];
  const back = tail ? tail.split(":") : [];
  const groups =
    tail === undefined
      ? front
      : [...front, ...Array<string>(Math.max(0, 8 - front.length - back.length)).fill("0"), ...back];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}

export async function attemptStanding(
  db: D1Database,
  scope: AttemptScope,
  client: string,
  now: number,
  policy: AttemptPolicy = ATTEMPT_POLICY,
): Promise<AttemptStanding> {
  const row = await db
    .prepare(`SELECT window_start, failures FROM attempt_throttle WHERE scope = ?1 AND client = ?2`)
    .bind(scope, client)
    .first<{ window_start: number; failures: number }>();
  return standingOf(row, now, policy);
}

/**
 * Counts one failure (a new window when the last one is over) and writes its audit entries: `audit` gets the
 * standing after this failure, so the failure that locks the client out can say so.
 */
export async function recordFailedAttempt(
  db: D1Database,
  scope: AttemptScope,
  client: string,
  now: number,
  audit: (standing: AttemptStanding) => AuditEntry[],
  policy: AttemptPolicy = ATTEMPT_POLICY,
): Promise<AttemptStanding> {
  // SQLite evaluates every SET expression against the old row, so both CASEs see the old window_start.
  const row = await db
    .prepare(
      `INSERT INTO attempt_throttle (scope, client, window_start, failures) VALUES (?1, ?2, ?3, 1)
       ON CONFLICT (scope, client) DO UPDATE SET
         failures = CASE WHEN window_start + ?4 <= ?3 THEN 1 ELSE failures + 1 END,
         window_start = CASE WHEN window_start + ?4 <= ?3 THEN ?3 ELSE window_start END
       RETURNING window_start, failures`,
    )
    .bind(scope, client, now, policy.windowMs)
    .first<{ window_start: number; failures: number }>();
  const standing = standingOf(row, now, policy);
  const entries = audit(standing);
  if (entries.length > 0) await db.batch(entries.map((entry) => auditStatement(db, entry)));
  return standing;
}

/** Windows that are over (the next sign-in runs this). */
export function pruneExpiredAttempts(
  db: D1Database,
  now: number,
  policy: AttemptPolicy = ATTEMPT_POLICY,
): D1PreparedStatement {
  return db.prepare(`DELETE FROM attempt_throttle WHERE window_start <= ?1`).bind(now - policy.windowMs);
}

/** A success forgets the client's failures. */
export async function clearFailedAttempts(db: D1Database, scope: AttemptScope, client: string): Promise<void> {
  await db.prepare(`DELETE FROM attempt_throttle WHERE scope = ?1 AND client = ?2`).bind(scope, client).run();
}

/** One attempt at a token, as the audit log records it: who (the client), through what, and on which event. */
export interface Attempt {
  db: D1Database;
  scope: AttemptScope;
  client: string;
  now: number;
  via: "api" | "dashboard";
  requestId: string | null;
  eventId?: string | null;
}

/** Refuses a locked-out client with 429 `too_many_attempts` and Retry-After; otherwise returns its standing. */
export async function guardAttempt(attempt: Attempt): Promise<AttemptStanding> {
  const standing = await attemptStanding(attempt.db, attempt.scope, attempt.client, attempt.now);
  if (standing.lockedForMs > 0) {
    throw new RouterError("too_many_attempts", {
      detail: `${attempt.scope} via ${attempt.via} from ${attempt.client}: ${standing.failures} failures, locked for ${standing.lockedForMs} ms`,
      headers: { "Retry-After": retryAfterSeconds(standing.lockedForMs) },
    });
  }
  return standing;
}

/** A wrong or missing token: counted, and audited without the token; the failure that locks the client out says so. */
export async function failAttempt(
  attempt: Attempt,
  reason: "token_mismatch" | "token_missing",
): Promise<AttemptStanding> {
  const { db, scope, client, now, via, requestId } = attempt;
  const eventId = attempt.eventId ?? null;
  return recordFailedAttempt(db, scope, client, now, (standing) => {
    const entries: AuditEntry[] = [
      {
        id: auditId(now),
        at: now,
        action: scope === "sign_in" ? "sign_in_failed" : "reveal_failed",
        tokenId: NO_TOKEN,
        eventId,
        detail: { client, via, reason, failures: standing.failures, requestId },
      },
    ];
    // Written once per lockout, when it starts: the refusals during it are logged (request_rejected), not audited,
    // so a client hammering a locked door adds no rows.
    if (standing.lockedForMs > 0 && standing.failures === ATTEMPT_POLICY.maxFailures) {
      entries.push({
        id: auditId(now),
        at: now,
        action: "attempts_throttled",
        tokenId: NO_TOKEN,
        eventId,
        detail: { client, via, scope, retryAfterSeconds: Number(retryAfterSeconds(standing.lockedForMs)), requestId },
      });
    }
    return entries;
  });
}

/** A right token: the client's failures are forgotten (a write only when it had some). */
export async function passAttempt(attempt: Attempt, standing: AttemptStanding): Promise<void> {
  if (standing.failures > 0) await clearFailedAttempts(attempt.db, attempt.scope, attempt.client);
}
