/**
 * The shards' sizes: D1's own figure read from every result that passes through a binding (`observeResults`), and
 * the control database's record of each shard (`shard_capacity`, migrations/0011).
 */
import { CAPACITY_LEVELS, type CapacityLevel, type CapacityRecord } from "../core/capacity.ts";

/** What D1 says about the database with every result. */
export interface D1ResultMeta {
  size_after?: number;
  rows_written?: number;
}

// D1's batch() only takes the runtime's own statement objects, so every proxy remembers the one it wraps.
const wrapped = new WeakMap<object, D1PreparedStatement>();

function observeStatement(statement: D1PreparedStatement, observe: (meta: D1ResultMeta) => void): D1PreparedStatement {
  const proxy = new Proxy(statement, {
    get(target, property, receiver) {
      if (property === "bind") return (...args: unknown[]) => observeStatement(target.bind(...args), observe);
      if (property === "all" || property === "run") {
        return async () => {
          const result = await (target[property] as () => Promise<D1Result>).call(target);
          observe(result.meta as D1ResultMeta);
          return result;
        };
      }
      if (property === "first") {
        // first() hides meta; run through all() to see it, and pick the row or column as first() would.
        return async (column?: string) => {
          const result = await target.all();
          observe(result.meta as D1ResultMeta);
          const row = result.results[0] as Record<string, unknown> | undefined;
          return row === undefined ? null : column === undefined ? row : row[column];
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  wrapped.set(proxy, statement);
  return proxy;
}

/**
 * The same database, with `observe` called with the `meta` of every result of `all`, `run`, `first` and `batch`:
 * a write's `size_after` is the database's size once it committed, and `rows_written` what D1 bills for it. A call
 * that fails reports nothing; `observe` must not throw.
 */
export function observeResults(db: D1Database, observe: (meta: D1ResultMeta) => void): D1Database {
  return new Proxy(db, {
    get(target, property, receiver) {
      if (property === "prepare") return (query: string) => observeStatement(target.prepare(query), observe);
      if (property === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          const results = await target.batch(statements.map((s) => wrapped.get(s) ?? s));
          for (const result of results) observe(result.meta as D1ResultMeta);
          return results;
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The database's size now, from a statement that reads nothing. */
export async function readSize(db: D1Database): Promise<D1ResultMeta> {
  return (await db.prepare("SELECT 1").run()).meta as D1ResultMeta;
}

interface CapacityRow {
  shard_id: number;
  binding: string;
  size_bytes: number;
  measured_at: number;
  level: string;
  window_started_at: number;
  window_start_bytes: number;
  window_rows_written: number;
  window_events: number;
  last_window_ms: number | null;
  last_window_growth_bytes: number | null;
  last_window_rows_written: number | null;
  last_window_events: number | null;
  version: number;
}

const levelOf = (level: string): CapacityLevel =>
  (CAPACITY_LEVELS as readonly string[]).includes(level) ? (level as CapacityLevel) : "ok";

function recordOf(row: CapacityRow): CapacityRecord {
  return {
    shardId: row.shard_id,
    binding: row.binding,
    sizeBytes: row.size_bytes,
    measuredAt: row.measured_at,
    level: levelOf(row.level),
    window: {
      startedAt: row.window_started_at,
      startSizeBytes: row.window_start_bytes,
      rowsWritten: row.window_rows_written,
      events: row.window_events,
    },
    lastWindow:
      row.last_window_ms === null
        ? null
        : {
            ms: row.last_window_ms,
            growthBytes: row.last_window_growth_bytes ?? 0,
            rowsWritten: row.last_window_rows_written ?? 0,
            events: row.last_window_events ?? 0,
          },
    version: row.version,
  };
}

/** Every shard's record: one row per shard. */
export async function readShardCapacity(db: D1Database): Promise<CapacityRecord[]> {
  const { results } = await db.prepare(`SELECT * FROM shard_capacity ORDER BY shard_id`).all<CapacityRow>();
  return results.map(recordOf);
}

/**
 * Writes a shard's record if it is still the version it was computed from (`readVersion`; null: there was none).
 * False when another isolate wrote first: the caller reads again.
 */
export async function writeShardCapacity(
  db: D1Database,
  record: CapacityRecord,
  readVersion: number | null,
): Promise<boolean> {
  const values = [
    record.shardId,
    record.binding,
    record.sizeBytes,
    record.measuredAt,
    record.level,
    record.window.startedAt,
    record.window.startSizeBytes,
    record.window.rowsWritten,
    record.window.events,
    record.lastWindow?.ms ?? null,
    record.lastWindow?.growthBytes ?? null,
    record.lastWindow?.rowsWritten ?? null,
    record.lastWindow?.events ?? null,
    record.version,
  ];
  const result =
    readVersion === null
      ? await db
          .prepare(
            `INSERT INTO shard_capacity (shard_id, binding, size_bytes, measured_at, level, window_started_at,
               window_start_bytes, window_rows_written, window_events, last_window_ms, last_window_growth_bytes,
               last_window_rows_written, last_window_events, version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) ON CONFLICT (shard_id) DO NOTHING`,
          )
          .bind(...values)
          .run()
      : await db
          .prepare(
            `UPDATE shard_capacity SET binding = ?2, size_bytes = ?3, measured_at = ?4, level = ?5,
               window_started_at = ?6, window_start_bytes = ?7, window_rows_written = ?8, window_events = ?9,
               last_window_ms = ?10, last_window_growth_bytes = ?11, last_window_rows_written = ?12,
               last_window_events = ?13, version = ?14
             WHERE shard_id = ?1 AND version = ?15`,
          )
          .bind(...values, readVersion)
          .run();
  return (result.meta.changes ?? 0) === 1;
}
