// Database bytes per event, by table and index, from the local D1 files a router left (one per shard). SQLite's
// dbstat virtual table counts every page of each b-tree, overflow pages included, so page and row overhead is in the
// figures, as D1 bills and caps it (10 GB a database). Read with node:sqlite, after the router has stopped.
import { readdirSync } from "node:fs";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";

/** Tables written per event; the rest (audit, rollups, sessions, the shard map) are the control database's. */
const PER_EVENT = /^(events|outbox|latest_deliveries|sqlite_autoindex_events_\d+|events_.*)$/;

export function measureStorage(persistTo) {
  const dir = path.join(persistTo, "v3", "d1", "miniflare-D1DatabaseObject");
  const files = readdirSync(dir).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite");
  let events = 0;
  let fileBytes = 0;
  const byName = new Map();
  const columns = { body: 0, deliveries: 0, payloadDek: 0 };
  for (const file of files) {
    const db = new DatabaseSync(path.join(dir, file));
    try {
      db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      const hasEvents = db.prepare("SELECT COUNT(*) AS n FROM sqlite_schema WHERE name = 'events'").get().n === 1;
      if (!hasEvents) continue;
      const n = db.prepare("SELECT COUNT(*) AS n FROM events").get().n;
      events += n;
      fileBytes += db.prepare("PRAGMA page_count").get().page_count * db.prepare("PRAGMA page_size").get().page_size;
      for (const r of db.prepare("SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name").all())
        if (PER_EVENT.test(r.name)) byName.set(r.name, (byName.get(r.name) ?? 0) + r.bytes);
      const c = db
        .prepare(
          "SELECT SUM(length(body)) AS body, SUM(length(deliveries)) AS deliveries, SUM(IFNULL(length(payload_dek), 0)) AS dek FROM events",
        )
        .get();
      columns.body += c.body ?? 0;
      columns.deliveries += c.deliveries ?? 0;
      columns.payloadDek += c.dek ?? 0;
    } finally {
      db.close();
    }
  }
  const per = (bytes) => (events ? bytes / events : null);
  const tables = [...byName].sort((a, b) => b[1] - a[1]).map(([name, bytes]) => ({ name, bytesPerEvent: per(bytes) }));
  return {
    title: "Database bytes per event, by table and index (the full router's databases, every shard)",
    databases: files.length,
    events,
    bytesPerEvent: per([...byName.values()].reduce((a, b) => a + b, 0)),
    fileBytesPerEvent: per(fileBytes),
    tables,
    columnsPerEvent: {
      body: per(columns.body),
      deliveries: per(columns.deliveries),
      payloadDek: per(columns.payloadDek),
    },
  };
}
