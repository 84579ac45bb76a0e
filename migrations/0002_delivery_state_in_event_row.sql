-- Delivery state moves into the event row, and the deliveries table gives way to an outbox.
--
-- Why: D1 bills rows written, and one row per delivery cost 1 + N rows at ingest plus one per recorded attempt:
-- 7 rows for an event to three destinations (bench/REPORT.md). With the state as a JSON array in the event row,
-- ingest writes one row whatever the fan-out, and each queue message's outcomes are recorded with one more.
-- The sweeper no longer scans every delivery every five minutes: it reads the outbox, which holds only the queue
-- messages whose send failed, and a bounded slice of the events for deliveries whose message was lost.

-- The events table is rebuilt rather than altered, to put the payload last: SQLite stores a row's columns in order
-- and spills a long row into overflow pages, so a column after a large body is only reached by reading the body.
-- With the body last, the sweeper's walk over `pending_due` reads a few hundred bytes per event, not the payload.
CREATE TABLE events_v2 (
  id TEXT NOT NULL PRIMARY KEY,
  idempotency_key TEXT NOT NULL,
  -- Random per request: tells the request that inserted the row from a concurrent duplicate.
  ingest_id TEXT NOT NULL,
  source TEXT NOT NULL,
  event_type TEXT NOT NULL,
  merchant_id TEXT,
  provider_id TEXT,
  routing TEXT NOT NULL CHECK (routing IN ('routed', 'unrouted')),
  received_at INTEGER NOT NULL,
  -- The earliest due time of a pending delivery, NULL when none is pending. Written with `deliveries`, so the
  -- sweeper finds overdue work by reading one column. No index: every index entry is a billed row write.
  pending_due INTEGER,
  -- Optimistic concurrency for `deliveries`: every write is conditional on the version it read.
  version INTEGER NOT NULL DEFAULT 0,
  content_type TEXT NOT NULL,
  body_sha256 TEXT NOT NULL,
  -- Weedmaps Draft: the synchronous responder's outcome.
  responder TEXT,
  responder_status INTEGER,
  responder_latency_ms INTEGER,
  responder_error TEXT,
  -- One element per delivery generation: { destination, generation, route, status, attempts, createdAt,
  -- nextAttemptAt, lastStatusCode, lastError, completedAt, superseded, log: [attempt, ...] }. A replay marks the
  -- destination's current element superseded and appends the next generation. Read and written only through
  -- src/storage/db.ts, changed only by the pure rules in src/delivery/state.ts.
  deliveries TEXT NOT NULL DEFAULT '[]',
  -- The raw bytes exactly as received. Read and written only through src/storage/payloads.ts.
  body BLOB NOT NULL
) WITHOUT ROWID;

INSERT INTO events_v2 (id, idempotency_key, ingest_id, source, event_type, merchant_id, provider_id, routing, received_at,
  pending_due, version, content_type, body_sha256, responder, responder_status, responder_latency_ms, responder_error,
  deliveries, body)
SELECT e.id, e.idempotency_key, e.ingest_id, e.source, e.event_type, e.merchant_id, e.provider_id, e.routing, e.received_at,
  (SELECT MIN(next_attempt_at) FROM deliveries WHERE event_id = e.id AND status = 'pending'),
  0, e.content_type, e.body_sha256, e.responder, e.responder_status, e.responder_latency_ms, e.responder_error,
  (
    SELECT json_group_array(json_object(
      'destination', d.destination,
      'generation', d.generation,
      'route', d.route,
      'status', d.status,
      'attempts', d.attempts,
      'createdAt', d.created_at,
      'nextAttemptAt', d.next_attempt_at,
      'lastStatusCode', d.last_status_code,
      'lastError', d.last_error,
      'completedAt', d.completed_at,
      'superseded', json(CASE WHEN d.generation < (
        SELECT MAX(x.generation) FROM deliveries x WHERE x.event_id = d.event_id AND x.destination = d.destination
      ) THEN 'true' ELSE 'false' END),
      'log', json(d.attempt_log)
    ))
    -- json_group_array gives '[]' for an event with no deliveries (an unrouted one).
    FROM (SELECT * FROM deliveries WHERE event_id = e.id ORDER BY destination, generation) d
  ),
  e.body
FROM events e;

-- Queue messages that could not be sent when they were made (the queue was unavailable). The sweeper sends them
-- and deletes them; a healthy system keeps this table empty, so the sweeper's scan costs next to nothing.
CREATE TABLE outbox (
  id TEXT NOT NULL PRIMARY KEY,
  -- The queue message body as JSON (src/delivery/messages.ts).
  message TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  -- The sweeper claims a row by moving this forward before sending, so overlapping runs send it once.
  due_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Where the sweeper's walk over the events stopped: it reads a bounded slice of the table per run, in key order, so
-- its cost per run stays fixed however many events are kept (see src/delivery/sweeper.ts).
CREATE TABLE sweeper_state (
  name TEXT NOT NULL PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- The old sweeper re-sent pending deliveries overdue by ten minutes or more (their send had failed). Hand those
-- to the outbox, one message per event, so none is stranded by the move.
INSERT INTO outbox (id, message, created_at, due_at)
SELECT 'obx_migrated_' || event_id,
       json_object('v', 1, 'eventId', event_id,
                   'deliveries', json_group_array(json_object('destination', destination, 'generation', generation))),
       CAST(unixepoch('subsec') * 1000 AS INTEGER),
       0
FROM deliveries
WHERE status = 'pending'
  AND generation = (SELECT MAX(x.generation) FROM deliveries x WHERE x.event_id = deliveries.event_id AND x.destination = deliveries.destination)
  AND next_attempt_at < CAST(unixepoch('subsec') * 1000 AS INTEGER) - 600000
GROUP BY event_id;

DROP TABLE deliveries;
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;
