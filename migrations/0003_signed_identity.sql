-- What the signed body says about an event, kept beside it (issue: event identity from signed bytes only).
--
-- The columns are added at the end, after the payload, so the sweeper's walk over `pending_due` still reads only
-- the short front of each row; these are read with the payload anyway (the consumer) or by operator queries.

-- The provider's own time of this state of the object (Weedmaps lastModifiedAt, Leaf Trade updated_at or
-- date_created), in ms. Sent as `webhook-provider-timestamp`, and compared by routes with `"ordering": "latest"`.
ALTER TABLE events ADD COLUMN provider_ts INTEGER;

-- Set when the URL's unsigned merchant disagreed with the signed one: the event is kept, acknowledged and
-- delivered nowhere until an operator releases it. JSON: { reason, field, route, queryMerchant, signedMerchant,
-- at, releasedAt? }.
ALTER TABLE events ADD COLUMN quarantine TEXT;

-- Later requests with this event's key but other bytes (a Create re-serialised, say): acknowledged as duplicates,
-- counted here so an operator can see that the provider sent something different under the same identity.
ALTER TABLE events ADD COLUMN divergent_retries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN divergent_last_at INTEGER;
ALTER TABLE events ADD COLUMN divergent_last_sha256 TEXT;

-- For routes with `"ordering": "latest"`: per object (source and provider id), the newest provider timestamp
-- delivered so far to each destination, as JSON { destination: ms }. One row per object, so checking and recording
-- an event's ordered deliveries costs one row read and one row written, whatever the fan-out.
CREATE TABLE latest_deliveries (
  source TEXT NOT NULL,
  provider_id TEXT NOT NULL,
  delivered TEXT NOT NULL,
  PRIMARY KEY (source, provider_id)
) WITHOUT ROWID;
