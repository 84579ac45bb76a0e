-- Customer data: encrypted at rest, kept only as long as configured, shown only on purpose (docs/customer-data.md).

-- The event's data key, wrapped by a key of the PAYLOAD_KEYS ring (src/core/envelope.ts), and that key's id. Both
-- NULL for a row stored unencrypted (before this migration, or under "payloadEncryption": "unsafe-disabled") and
-- for a purged one. No index on either: the Cron's maintenance walk visits every row anyway.
ALTER TABLE events ADD COLUMN payload_key TEXT;
ALTER TABLE events ADD COLUMN payload_dek TEXT;
-- When the body, Draft answer and response excerpts were purged (retention, or a customer's deletion request). The
-- row keeps its ids, dedup key, body hash and delivery state. `body` is NOT NULL, so a purged one is ''.
ALTER TABLE events ADD COLUMN payload_purged_at INTEGER;

-- A customer's deletion request names an order: its events are found by provider id. One index entry per event
-- (a billed row write, bench/REPORT.md), and the dashboard's search by order id uses it too.
CREATE INDEX events_provider_id ON events (provider_id);

-- Every ring key id that has wrapped a data key, until the walk has seen it protect nothing for a full lap after it
-- stopped being the primary (`retired_at`). A ring that lacks a key listed here unretired is refused.
CREATE TABLE payload_keys (
  key_id TEXT NOT NULL PRIMARY KEY,
  first_used_at INTEGER NOT NULL,
  -- When the walk first saw another key first in the ring; a key that becomes primary again clears it.
  demoted_at INTEGER,
  retired_at INTEGER
) WITHOUT ROWID;

-- Who saw or removed customer data, and when: reveals through the admin API and deletion requests. Never a token
-- (its id: a hash prefix), never a payload. Ids sort by time, so keyset pages read newest first.
CREATE TABLE audit_log (
  id TEXT NOT NULL PRIMARY KEY,
  at INTEGER NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('reveal', 'customer_purge')),
  token_id TEXT NOT NULL,
  event_id TEXT,
  -- JSON: what was revealed or purged (field names, counts, the order id), never a value from a payload.
  detail TEXT NOT NULL
) WITHOUT ROWID;
