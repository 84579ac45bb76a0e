-- An operator's forced status update (the status relay, docs/relay.md) is audited as `relay_force`. SQLite cannot
-- change a CHECK constraint in place, so the audit log is rebuilt with its rows (as 0010 and 0014 did).
CREATE TABLE audit_log_v6 (
  id TEXT NOT NULL PRIMARY KEY,
  at INTEGER NOT NULL,
  action TEXT NOT NULL CHECK (action IN (
    'reveal', 'customer_purge', 'destination_pause', 'destination_resume', 'destination_enable',
    'sign_in', 'sign_in_failed', 'sign_out', 'sign_out_everywhere', 'reveal_failed', 'attempts_throttled',
    'replay', 'bulk_replay_start', 'bulk_replay_cancel', 'redrive', 'quarantine_release',
    'shard_read_only', 'relay_force'
  )),
  -- A hash prefix of the token used; "none" for a failed attempt; "router" for the router's own action.
  token_id TEXT NOT NULL,
  event_id TEXT,
  -- JSON: field names, counts, ids, an operator's reason, a client address; never a payload value or a token.
  detail TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO audit_log_v6 (id, at, action, token_id, event_id, detail) SELECT id, at, action, token_id, event_id, detail FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_v6 RENAME TO audit_log;
