-- Dashboard sessions that sign-out ends on the server, per-client throttling of sign-in and reveal attempts, and
-- the audit log's new actions (src/storage/sessions.ts, src/storage/attempts.ts).
--
-- Why D1 and not the destinations' Durable Object: a page view already reads D1, so the session check is one more
-- primary-key read (one row) on the same database, with no new object class or binding; the counters change only
-- on a failed attempt, a few a minute at worst, far below D1's write ceiling, and an UPSERT … RETURNING keeps each
-- count exact under concurrent attempts without an object to serialize them.

-- One row per sign-in. The cookie carries the id, signed; a page view looks the id up by its key. Revoked by
-- sign-out (this row) or "sign out everywhere" (every live row); rows past expires_at are deleted at the next sign-in.
CREATE TABLE dashboard_sessions (
  id TEXT NOT NULL PRIMARY KEY,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);

-- Failed attempts per (what was attempted, client): a fixed window that starts at the first failure. Deleted on a
-- success and at the next sign-in once its window is over.
CREATE TABLE attempt_throttle (
  scope TEXT NOT NULL CHECK (scope IN ('sign_in', 'reveal')),
  client TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  failures INTEGER NOT NULL,
  PRIMARY KEY (scope, client)
) WITHOUT ROWID;

-- SQLite cannot change a CHECK constraint in place, so the audit log is rebuilt with its rows (as 0007 did).
CREATE TABLE audit_log_v3 (
  id TEXT NOT NULL PRIMARY KEY,
  at INTEGER NOT NULL,
  action TEXT NOT NULL CHECK (action IN (
    'reveal', 'customer_purge', 'destination_pause', 'destination_resume', 'destination_enable',
    'sign_in', 'sign_in_failed', 'sign_out', 'sign_out_everywhere', 'reveal_failed', 'attempts_throttled'
  )),
  -- A hash prefix of the token used; for a failed attempt, "none": a wrong token (often a near miss of the real
  -- one) is never stored, not even hashed.
  token_id TEXT NOT NULL,
  event_id TEXT,
  -- JSON: what was revealed, purged or changed (field names, counts, ids, an operator's reason, a client address),
  -- never a payload value or a token.
  detail TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO audit_log_v3 (id, at, action, token_id, event_id, detail) SELECT id, at, action, token_id, event_id, detail FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_v3 RENAME TO audit_log;
