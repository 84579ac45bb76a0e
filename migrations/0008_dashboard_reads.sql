-- The dashboard's reads must not scan `events`: D1 bills every row read, and the table holds millions of rows.
--
-- Newest-first pages and time windows walk this index instead of the table. It adds one billed row write per
-- event (the insert; received_at never changes), and it is what the Cron's rollup walk reads new events through.
CREATE INDEX events_received_at ON events (received_at);

-- How many of the event's current (not superseded) deliveries are dead; written with `deliveries` by every write of
-- it. The partial index holds only events with a dead delivery, so the dead-letter list and the bulk redrive's count
-- read the dead letters, never the events around them. An index entry is written only when an event enters or
-- leaves it: nothing on the happy path.
ALTER TABLE events ADD COLUMN dead_deliveries INTEGER NOT NULL DEFAULT 0;
UPDATE events SET dead_deliveries = (
  SELECT COUNT(*) FROM json_each(events.deliveries) j WHERE j.value ->> 'status' = 'dead' AND j.value ->> 'superseded' = 0
) WHERE instr(deliveries, '"dead"') > 0;
CREATE INDEX events_dead ON events (received_at) WHERE dead_deliveries > 0;

-- Hourly event counts by source and type for the overview, kept by the Cron's rollup walk (src/maintenance): it
-- reads each event once, in received order, and adds a handful of rows per run, not per event. Delivery counts live
-- in each destination's Durable Object, which sees every outcome already.
CREATE TABLE rollups (
  hour INTEGER NOT NULL,
  source TEXT NOT NULL,
  event_type TEXT NOT NULL,
  events INTEGER NOT NULL,
  PRIMARY KEY (hour, source, event_type)
) WITHOUT ROWID;
