-- Every operator action writes its own audit entry (src/operations/): replaying one event, starting or cancelling a
-- bulk replay, redriving dead letters and releasing a held event join the reveals, purges and destination controls.
-- SQLite cannot change a CHECK constraint in place, so the audit log is rebuilt with its rows (as 0009 did).
CREATE TABLE audit_log_v4 (
  id TEXT NOT NULL PRIMARY KEY,
  at INTEGER NOT NULL,
  action TEXT NOT NULL CHECK (action IN (
    'reveal', 'customer_purge', 'destination_pause', 'destination_resume', 'destination_enable',
    'sign_in', 'sign_in_failed', 'sign_out', 'sign_out_everywhere', 'reveal_failed', 'attempts_throttled',
    'replay', 'bulk_replay_start', 'bulk_replay_cancel', 'redrive', 'quarantine_release'
  )),
  -- A hash prefix of the token used; "none" for a failed attempt.
  token_id TEXT NOT NULL,
  event_id TEXT,
  -- JSON: field names, counts, ids, an operator's reason, a client address; never a payload value or a token.
  detail TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO audit_log_v4 (id, at, action, token_id, event_id, detail) SELECT id, at, action, token_id, event_id, detail FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_v4 RENAME TO audit_log;
