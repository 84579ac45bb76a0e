-- The overview's dead-letter count, exact and without a scan (issue #27): each shard keeps one row with how many dead
-- deliveries its events hold (the current generation of each, as `dead_deliveries` counts them), and how many of
-- those are in events whose payload was purged (they cannot be sent again). Triggers keep it, so every write that
-- changes `dead_deliveries` or purges a payload (the consumer, the dead-letter queue, a replay, a purge, retention)
-- moves it in the same statement. The WHEN clauses leave the happy path without a write: a delivered event's count
-- stays 0. D1 counts the rows a trigger writes in a statement's `meta.changes`, so a conditional write of an event is
-- checked with `changes >= 1` (src/storage/delivery-writes.ts), and a delete counts what it RETURNs. A migration that
-- rebuilds the events table must create these triggers again.
CREATE TABLE dead_letter_totals (
  id INTEGER NOT NULL PRIMARY KEY CHECK (id = 0),
  dead INTEGER NOT NULL,
  purged INTEGER NOT NULL
);
INSERT INTO dead_letter_totals (id, dead, purged)
SELECT 0, COALESCE(SUM(dead_deliveries), 0), COALESCE(SUM(CASE WHEN payload_purged_at IS NOT NULL THEN dead_deliveries END), 0)
FROM events WHERE dead_deliveries > 0;
CREATE TRIGGER dead_letter_totals_insert AFTER INSERT ON events WHEN NEW.dead_deliveries > 0
BEGIN
  UPDATE dead_letter_totals SET dead = dead + NEW.dead_deliveries,
    purged = purged + CASE WHEN NEW.payload_purged_at IS NOT NULL THEN NEW.dead_deliveries ELSE 0 END WHERE id = 0;
END;
CREATE TRIGGER dead_letter_totals_update AFTER UPDATE OF dead_deliveries, payload_purged_at ON events
WHEN NEW.dead_deliveries IS NOT OLD.dead_deliveries OR (NEW.payload_purged_at IS NULL) <> (OLD.payload_purged_at IS NULL)
BEGIN
  UPDATE dead_letter_totals SET dead = dead + NEW.dead_deliveries - OLD.dead_deliveries,
    purged = purged + CASE WHEN NEW.payload_purged_at IS NOT NULL THEN NEW.dead_deliveries ELSE 0 END
      - CASE WHEN OLD.payload_purged_at IS NOT NULL THEN OLD.dead_deliveries ELSE 0 END WHERE id = 0;
END;
CREATE TRIGGER dead_letter_totals_delete AFTER DELETE ON events WHEN OLD.dead_deliveries > 0
BEGIN
  UPDATE dead_letter_totals SET dead = dead - OLD.dead_deliveries,
    purged = purged - CASE WHEN OLD.payload_purged_at IS NOT NULL THEN OLD.dead_deliveries ELSE 0 END WHERE id = 0;
END;
