-- How full each D1 database (shard) is, in the control database (DB, which is also shard 0). D1 reports a
-- database's size after every statement (`meta.size_after`); each isolate keeps the last it saw per shard and
-- writes it here at most once a minute (src/control/capacity.ts), with what it counted since: rows written (D1's
-- `meta.rows_written`) and new events stored. A write names the version it read, so two isolates never both apply
-- theirs to the same row. One row per shard, a few writes a minute in all: nothing per event.
CREATE TABLE shard_capacity (
  shard_id INTEGER PRIMARY KEY,
  -- The Worker binding the shard is reached through ("DB" for shard 0).
  binding TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  measured_at INTEGER NOT NULL,
  -- The level at the last record; a rise past it alerts (capacity_warning, capacity_critical, storage_full).
  level TEXT NOT NULL CHECK (level IN ('ok', 'warning', 'critical', 'full')),
  -- The growth window under way (a day): where it started, and the rows written and events stored since.
  window_started_at INTEGER NOT NULL,
  window_start_bytes INTEGER NOT NULL,
  window_rows_written INTEGER NOT NULL,
  window_events INTEGER NOT NULL,
  -- The last complete window, once there is one: its length, growth, rows written and events.
  last_window_ms INTEGER,
  last_window_growth_bytes INTEGER,
  last_window_rows_written INTEGER,
  last_window_events INTEGER,
  version INTEGER NOT NULL
);
