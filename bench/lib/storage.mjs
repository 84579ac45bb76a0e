// Database bytes per event, by table and index, from the local D1 files a router left (one per shard). SQLite's
// dbstat virtual table counts every page of each b-tree, overflow pages included, so page and row overhead is in the
// figures, as D1 bills and caps it (10 GB a database). Read with node:sqlite, after the router has stopped.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { EventPayloads } from "../../src/storage/payloads.ts";

/**
 * How long an open waits for a lock: a router that has just stopped may still be letting go of its files, and on a
 * busy machine that takes a moment ("database is locked" otherwise).
 */
export const BUSY_MS = 10_000;

/** Tables written per event; the rest (audit, rollups, sessions, the shard map) are the control database's. */
const PER_EVENT = /^(events|outbox|latest_deliveries|sqlite_autoindex_events_\d+|events_.*)$/;

/** Bytes of the per-event tables and indexes in one database file, from dbstat. */
function perEventBytes(db) {
  let bytes = 0;
  for (const r of db.prepare("SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name").all())
    if (PER_EVENT.test(r.name)) bytes += r.bytes;
  return bytes;
}

/**
 * Node's DecompressionStream gives a plain readable, and the router opens `pe2:` values with a BYOB reader, as
 * workerd's allows: while the bodies are opened here, its output is passed through a byte stream.
 */
function withByteDecompression(run) {
  const Native = globalThis.DecompressionStream;
  globalThis.DecompressionStream = class {
    constructor(format) {
      const inner = new Native(format);
      const source = inner.readable.getReader();
      this.writable = inner.writable;
      this.readable = new ReadableStream({
        type: "bytes",
        async pull(controller) {
          const { done, value } = await source.read();
          if (!done) return controller.enqueue(value);
          controller.close();
          controller.byobRequest?.respond(0);
        },
        cancel: (reason) => source.cancel(reason),
      });
    }
  };
  return run().finally(() => {
    globalThis.DecompressionStream = Native;
  });
}

/** The size of `pe1:` base64(IV ‖ AES-GCM(bytes)) for `length` bytes: the sealed form without compression. */
const uncompressedSealed = (length) => `pe1:${randomBytes(12 + length + 16).toString("base64")}`;

/**
 * The same events twice, each rebuilt compactly (VACUUM INTO a copy): as stored, and with every sealed body opened
 * and put back as the router sealed bodies before compression (`pe1:`, the same length as sealing the bytes, random
 * bytes in place of the ciphertext). Rows, indexes and delivery state are the run's own, so the difference is the
 * bodies' compression alone.
 */
async function compressionCompared(files, protection) {
  const work = mkdtempSync(path.join(tmpdir(), "router-bench-storage-"));
  const totals = { compressed: 0, uncompressed: 0, bodies: 0, events: 0 };
  try {
    for (const [i, file] of files.entries()) {
      const compact = path.join(work, `compressed-${i}.sqlite`);
      const plain = path.join(work, `uncompressed-${i}.sqlite`);
      const source = new DatabaseSync(file, { readOnly: true, timeout: BUSY_MS });
      try {
        source.exec(`VACUUM INTO '${compact}'`);
        source.exec(`VACUUM INTO '${plain}'`);
      } finally {
        source.close();
      }
      const rewritten = new DatabaseSync(plain, { timeout: BUSY_MS });
      try {
        const rows = rewritten
          .prepare("SELECT id, payload_dek AS dek, body FROM events WHERE payload_purged_at IS NULL")
          .all();
        const update = rewritten.prepare("UPDATE events SET body = ? WHERE id = ?");
        for (const row of rows) {
          if (typeof row.body !== "string" || !row.body.startsWith("pe2:")) continue;
          const payloads = await EventPayloads.open(protection, row.id, row.dek);
          update.run(uncompressedSealed((await payloads.open("body", row.body)).byteLength), row.id);
          totals.bodies += 1;
        }
        totals.events += rewritten.prepare("SELECT COUNT(*) AS n FROM events").get().n;
      } finally {
        rewritten.close();
      }
      for (const [key, from] of [
        ["compressed", compact],
        ["uncompressed", plain],
      ]) {
        // Rebuilt once more after the updates, so neither copy keeps pages the other does not.
        const rebuilt = path.join(work, `${key}-${i}-final.sqlite`);
        const db = new DatabaseSync(from, { timeout: BUSY_MS });
        try {
          db.exec(`VACUUM INTO '${rebuilt}'`);
        } finally {
          db.close();
        }
        const measured = new DatabaseSync(rebuilt, { readOnly: true, timeout: BUSY_MS });
        try {
          totals[key] += perEventBytes(measured);
        } finally {
          measured.close();
        }
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const per = (bytes) => (totals.events ? bytes / totals.events : null);
  return {
    events: totals.events,
    bodiesResealed: totals.bodies,
    compressedBytesPerEvent: per(totals.compressed),
    uncompressedBytesPerEvent: per(totals.uncompressed),
  };
}

export async function measureStorage(persistTo, protection) {
  const dir = path.join(persistTo, "v3", "d1", "miniflare-D1DatabaseObject");
  const files = readdirSync(dir).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite");
  let events = 0;
  let fileBytes = 0;
  const byName = new Map();
  const columns = { body: 0, deliveries: 0, payloadDek: 0 };
  for (const file of files) {
    const db = new DatabaseSync(path.join(dir, file), { timeout: BUSY_MS });
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
  const eventFiles = files
    .map((f) => path.join(dir, f))
    .filter((f) => {
      const db = new DatabaseSync(f, { readOnly: true, timeout: BUSY_MS });
      try {
        return db.prepare("SELECT COUNT(*) AS n FROM sqlite_schema WHERE name = 'events'").get().n === 1;
      } finally {
        db.close();
      }
    });
  const compression = protection
    ? await withByteDecompression(() => compressionCompared(eventFiles, protection))
    : null;
  const tables = [...byName].sort((a, b) => b[1] - a[1]).map(([name, bytes]) => ({ name, bytesPerEvent: per(bytes) }));
  return {
    title: "Database bytes per event, by table and index (the full router's databases, every shard)",
    databases: files.length,
    events,
    bytesPerEvent: per([...byName.values()].reduce((a, b) => a + b, 0)),
    fileBytesPerEvent: per(fileBytes),
    tables,
    compression,
    columnsPerEvent: {
      body: per(columns.body),
      deliveries: per(columns.deliveries),
      payloadDek: per(columns.payloadDek),
    },
  };
}
