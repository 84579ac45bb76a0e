-- Destination controls (src/control): the audit log also records who paused, resumed or re-enabled a destination.
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt with its rows.
CREATE TABLE audit_log_v2 (
  id TEXT NOT NULL PRIMARY KEY,
  at INTEGER NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('reveal', 'customer_purge', 'destination_pause', 'destination_resume', 'destination_enable')),
  token_id TEXT NOT NULL,
  event_id TEXT,
  -- JSON: what was revealed, purged or changed (field names, counts, ids, an operator's reason), never a payload value.
  detail TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO audit_log_v2 (id, at, action, token_id, event_id, detail) SELECT id, at, action, token_id, event_id, detail FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_v2 RENAME TO audit_log;
