-- Bulk replays as jobs: one row per replay, with its filter, its bound, its progress and its state, so an operator
-- can see how far one got and stop it, and a page that is run twice replays nothing twice.
CREATE TABLE replay_jobs (
  id TEXT NOT NULL PRIMARY KEY,
  -- JSON { status, destination?, since, until }: which current deliveries, created in which window.
  filter TEXT NOT NULL,
  -- The most deliveries the job replays.
  max_count INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed', 'cancelled')),
  -- Only deliveries created before this are replayed: the job's own new generations never match it again.
  started_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  -- The last event id walked; the next page starts after it.
  cursor TEXT,
  scanned INTEGER NOT NULL DEFAULT 0,
  replayed INTEGER NOT NULL DEFAULT 0,
  skipped INTEGER NOT NULL DEFAULT 0,
  error TEXT
) WITHOUT ROWID;
