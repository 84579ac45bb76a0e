-- Shards the router made read-only by itself (the capacity watch, at `limits.capacity.readOnlyPercent` when another
-- shard has room): they keep serving reads, replays and retention and take no new events. The shard map's next
-- version leaves them out of `writable`. Kept in the control database (shard 0, `DB`); a config `readOnly` needs
-- no row here. Deleting a row (after making room) lets the shard take events again from the next map version.
CREATE TABLE read_only_shards (
  shard_id INTEGER NOT NULL PRIMARY KEY,
  since INTEGER NOT NULL,
  reason TEXT NOT NULL
) WITHOUT ROWID;
