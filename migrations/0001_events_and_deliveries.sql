-- Events and their deliveries. Both tables are WITHOUT ROWID with the natural key as primary key, so an insert
-- writes one row and no extra index: D1 bills rows written, and index entries count as rows.

-- One row per accepted webhook. `id` is derived from the provider's business identity (see src/ingest), so a
-- provider retry collides on the primary key: duplicates are refused atomically by the key, not by a check.
CREATE TABLE events (
  id TEXT NOT NULL PRIMARY KEY,
  idempotency_key TEXT NOT NULL,
  -- Random per request: tells the request that inserted the row from a concurrent duplicate.
  ingest_id TEXT NOT NULL,
  source TEXT NOT NULL,
  event_type TEXT NOT NULL,
  merchant_id TEXT,
  provider_id TEXT,
  routing TEXT NOT NULL CHECK (routing IN ('routed', 'unrouted')),
  content_type TEXT NOT NULL,
  -- The raw bytes exactly as received. Read and written only through src/storage/payloads.ts.
  body BLOB NOT NULL,
  body_sha256 TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  -- Weedmaps Draft: the synchronous responder's outcome.
  responder TEXT,
  responder_status INTEGER,
  responder_latency_ms INTEGER,
  responder_error TEXT
) WITHOUT ROWID;

-- One row per event x destination x generation. A replay adds a generation and keeps the old rows as history.
CREATE TABLE deliveries (
  event_id TEXT NOT NULL REFERENCES events (id),
  destination TEXT NOT NULL,
  generation INTEGER NOT NULL DEFAULT 1,
  route TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  -- When the next attempt is due. The sweeper re-enqueues pending rows overdue well past it.
  next_attempt_at INTEGER NOT NULL,
  last_status_code INTEGER,
  last_error TEXT,
  completed_at INTEGER,
  -- Every attempt as a JSON array, appended in the same UPDATE that records the outcome: one row write per attempt.
  attempt_log TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY (event_id, destination, generation)
) WITHOUT ROWID;
