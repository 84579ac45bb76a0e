/**
 * How full each D1 database (a shard) is, as pure rules: the level a size is at, what to do about every shard at
 * once (alert, make one read-only, or refuse new events when none has room), the record an isolate's sample makes
 * of a shard, and the rates read from it. The sizes come from D1 itself (`meta.size_after` on every result); the
 * Worker keeps the last one per shard in memory and records it in the control database at most once a minute per
 * isolate (src/control/capacity.ts). Nothing here does I/O.
 */

import { errorMessage, RouterError } from "./errors.ts";

/**
 * D1's per-database limit on the paid plan, which cannot be raised (../shared/PLATFORM.md; D1's limits page says
 * 10 GB). Read as decimal gigabytes, the smaller of the two readings.
 */
export const D1_DATABASE_LIMIT_BYTES = 10_000_000_000;

/** An isolate records a shard's size in the control database at most this often. */
export const CAPACITY_RECORD_INTERVAL_MS = 60_000;

/** A growth window lasts a day; then the next starts, and the completed one is kept for the rates. */
export const CAPACITY_WINDOW_MS = 86_400_000;

/** Growth over less than an hour is too coarse to extrapolate (D1 grows a page at a time). */
export const MIN_GROWTH_WINDOW_MS = 3_600_000;

/** What a `503 storage_full` asks the provider to wait: an operator has to act (retention, a shard) first. */
export const STORAGE_FULL_RETRY_AFTER_SECONDS = 300;

const DAY_MS = 86_400_000;

/** `limits.capacity` in the router config. */
export interface CapacityThresholds {
  /** D1's limit per database; lower only to rehearse the alerts and the refusal. */
  limitBytes: number;
  warnPercent: number;
  criticalPercent: number;
  /**
   * The line past which a shard takes no new events: it goes read-only when another shard has room, and when none
   * has, ingest answers `503 storage_full`. The rest up to the limit is kept for what accepted events still write
   * (their delivery outcomes), so an accepted event is never stranded by a full database.
   */
  readOnlyPercent: number;
}

export const DEFAULT_CAPACITY_THRESHOLDS = {
  limitBytes: D1_DATABASE_LIMIT_BYTES,
  warnPercent: 70,
  criticalPercent: 85,
  readOnlyPercent: 90,
} as const satisfies CapacityThresholds;

export const CAPACITY_SHARD_STATES = ["writable", "read_only"] as const;
export type ShardState = (typeof CAPACITY_SHARD_STATES)[number];

/** A D1 database events are stored in, by its id and its Worker binding; shard 0 is `DB`, the control database. */
export interface ShardBinding {
  id: number;
  binding: string;
  state: ShardState;
}

export const CAPACITY_LEVELS = ["ok", "warning", "critical", "full"] as const;
export type CapacityLevel = (typeof CAPACITY_LEVELS)[number];

const rank = (level: CapacityLevel) => CAPACITY_LEVELS.indexOf(level);

/** Where a shard stops taking new events (`readOnlyPercent` of the limit). */
export function fullAtBytes(t: CapacityThresholds): number {
  return Math.floor((t.limitBytes * t.readOnlyPercent) / 100);
}

export function capacityLevel(sizeBytes: number, t: CapacityThresholds): CapacityLevel {
  const percent = (sizeBytes / t.limitBytes) * 100;
  if (percent >= t.readOnlyPercent) return "full";
  if (percent >= t.criticalPercent) return "critical";
  if (percent >= t.warnPercent) return "warning";
  return "ok";
}

/** A shard's size as last seen (null: not yet), with its state. */
export interface ShardSize {
  id: number;
  state: ShardState;
  sizeBytes: number | null;
}

/**
 * What to do about one shard: alert at the warning or critical line; past the read-only line, make it read-only
 * when another shard has room (a new version of the shard map), or, when none has, refuse new events (`all_full`).
 */
export type ShardAction = "none" | "alert_warning" | "alert_critical" | "make_read_only" | "all_full";

export interface CapacityDecision {
  /** No writable shard has room: ingest answers `503 storage_full` before it accepts anything. */
  allFull: boolean;
  shards: { id: number; level: CapacityLevel | null; action: ShardAction }[];
}

/**
 * The action for every shard at once, from their sizes and states. A shard whose size is not known yet counts as
 * having room: its write is tried, and D1 itself refuses a database that is really full (`storage_full` too). A
 * read-only shard never has room for new events, whatever its size.
 */
export function decideCapacity(shards: readonly ShardSize[], t: CapacityThresholds): CapacityDecision {
  const levels = shards.map((s) => (s.sizeBytes === null ? null : capacityLevel(s.sizeBytes, t)));
  const allFull = !shards.some((s, i) => s.state === "writable" && levels[i] !== "full");
  return {
    allFull,
    shards: shards.map((s, i) => {
      const level = levels[i] ?? null;
      const action: ShardAction =
        level === "warning"
          ? "alert_warning"
          : level === "critical"
            ? "alert_critical"
            : level === "full" && s.state === "writable"
              ? allFull
                ? "all_full"
                : "make_read_only"
              : "none";
      return { id: s.id, level, action };
    }),
  };
}

/** A level alerts when it rises past the one last recorded; a fall re-arms it (the alert throttle covers flapping). */
export function risenLevel(recorded: CapacityLevel, level: CapacityLevel): CapacityLevel | null {
  return rank(level) > rank(recorded) ? level : null;
}

/** What one isolate saw of a shard since it last recorded it. */
export interface CapacitySample {
  shardId: number;
  binding: string;
  sizeBytes: number;
  measuredAt: number;
  /** D1's `meta.rows_written` over the results this isolate saw (ingest and consumer). */
  rowsWritten: number;
  /** New events this isolate stored on the shard. */
  events: number;
}

interface WindowCounts {
  rowsWritten: number;
  events: number;
}

/** A shard's row in the control database (`shard_capacity`, migrations/0011). */
export interface CapacityRecord {
  shardId: number;
  binding: string;
  sizeBytes: number;
  measuredAt: number;
  /** The level at the last record: a rise past it alerts. */
  level: CapacityLevel;
  /** The growth window under way: where it started, and what was written and stored since. */
  window: WindowCounts & { startedAt: number; startSizeBytes: number };
  /** The last complete window (a day or more), once there is one. */
  lastWindow: (WindowCounts & { ms: number; growthBytes: number }) | null;
  /** Bumped by every write: a write names the version it read, so two isolates never both apply theirs to one. */
  version: number;
}

/**
 * A shard's record with one isolate's sample added, and the level it alerts at (when it rose). A sample older than
 * the record (a slower isolate) adds its counts but not its size.
 */
export function nextCapacityRecord(
  previous: CapacityRecord | null,
  sample: CapacitySample,
  t: CapacityThresholds,
): { record: CapacityRecord; alert: CapacityLevel | null } {
  const level = capacityLevel(sample.sizeBytes, t);
  if (previous === null) {
    return {
      record: {
        shardId: sample.shardId,
        binding: sample.binding,
        sizeBytes: sample.sizeBytes,
        measuredAt: sample.measuredAt,
        level,
        window: {
          startedAt: sample.measuredAt,
          startSizeBytes: sample.sizeBytes,
          rowsWritten: sample.rowsWritten,
          events: sample.events,
        },
        lastWindow: null,
        version: 1,
      },
      alert: risenLevel("ok", level),
    };
  }
  const counted = {
    ...previous.window,
    rowsWritten: previous.window.rowsWritten + sample.rowsWritten,
    events: previous.window.events + sample.events,
  };
  if (sample.measuredAt < previous.measuredAt) {
    return { record: { ...previous, window: counted, version: previous.version + 1 }, alert: null };
  }
  const rolls = sample.measuredAt - previous.window.startedAt >= CAPACITY_WINDOW_MS;
  return {
    record: {
      ...previous,
      binding: sample.binding,
      sizeBytes: sample.sizeBytes,
      measuredAt: sample.measuredAt,
      level,
      window: rolls
        ? { startedAt: sample.measuredAt, startSizeBytes: sample.sizeBytes, rowsWritten: 0, events: 0 }
        : counted,
      lastWindow: rolls
        ? {
            ms: sample.measuredAt - previous.window.startedAt,
            growthBytes: sample.sizeBytes - previous.window.startSizeBytes,
            rowsWritten: counted.rowsWritten,
            events: counted.events,
          }
        : previous.lastWindow,
      version: previous.version + 1,
    },
    alert: risenLevel(previous.level, level),
  };
}

/** What the admin API and the dashboard show of a shard, read from its record. */
export interface CapacityFigures {
  level: CapacityLevel | null;
  /** Of the limit, 0–1. */
  share: number | null;
  eventsPerDay: number | null;
  rowsWrittenPerEvent: number | null;
  bytesPerEvent: number | null;
  bytesPerDay: number | null;
  /** Until the read-only line at the current rate; 0 once past it, null while the shard is not growing. */
  daysUntilFull: number | null;
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

/**
 * The rates, from the window under way once it spans an hour, else from the last complete day. Bytes a day are the
 * growth over the window; over a shorter one, bytes per event times events a day. `eventsPerDay` is the rollups'
 * count of the last 24 hours where the caller has one for this shard, else the window's own count.
 */
export function capacityFigures(
  record: CapacityRecord | null,
  t: CapacityThresholds,
  eventsPerDay: number | null,
): CapacityFigures {
  if (record === null) {
    return {
      level: null,
      share: null,
      eventsPerDay,
      rowsWrittenPerEvent: null,
      bytesPerEvent: null,
      bytesPerDay: null,
      daysUntilFull: null,
    };
  }
  const current = {
    ms: record.measuredAt - record.window.startedAt,
    growthBytes: record.sizeBytes - record.window.startSizeBytes,
    rowsWritten: record.window.rowsWritten,
    events: record.window.events,
  };
  const w = current.ms >= MIN_GROWTH_WINDOW_MS || record.lastWindow === null ? current : record.lastWindow;
  const long = w.ms >= MIN_GROWTH_WINDOW_MS;
  const perDay = eventsPerDay ?? (long ? (w.events * DAY_MS) / w.ms : null);
  const bytesPerEvent = w.events > 0 ? Math.max(0, w.growthBytes) / w.events : null;
  const bytesPerDay = long
    ? (w.growthBytes * DAY_MS) / w.ms
    : perDay !== null && bytesPerEvent !== null
      ? perDay * bytesPerEvent
      : null;
  const left = fullAtBytes(t) - record.sizeBytes;
  const daysUntilFull = left <= 0 ? 0 : bytesPerDay !== null && bytesPerDay > 0 ? left / bytesPerDay : null;
  return {
    level: capacityLevel(record.sizeBytes, t),
    share: round(record.sizeBytes / t.limitBytes, 6),
    eventsPerDay: perDay === null ? null : round(perDay, 1),
    rowsWrittenPerEvent: w.events > 0 ? round(w.rowsWritten / w.events, 2) : null,
    bytesPerEvent: bytesPerEvent === null ? null : Math.round(bytesPerEvent),
    bytesPerDay: bytesPerDay === null ? null : Math.round(bytesPerDay),
    daysUntilFull: daysUntilFull === null ? null : round(daysUntilFull, 1),
  };
}

/**
 * D1 refusing a write because the database is full. D1's error list documents no message of its own for this; D1
 * runs on SQLite-backed Durable Objects, whose documented error at the storage limit is SQLite's own
 * `database or disk is full: SQLITE_FULL`, and D1 passes SQLite's errors on after `D1_ERROR: ` (as a local
 * `SQLITE_AUTH` shows). `Exceeded maximum DB size` is the wording other D1 users report; both are matched.
 */
export function isStorageFullError(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /SQLITE_FULL|database or disk is full|exceeded maximum DB size/i.test(message);
}

/** A write with nowhere to go: 503 `storage_full`, and the provider (or the POS) tries again after `Retry-After`. */
export function storageFullError(detail: string): RouterError {
  return new RouterError("storage_full", {
    detail,
    headers: { "Retry-After": String(STORAGE_FULL_RETRY_AFTER_SECONDS) },
  });
}

/** A failed write as the request answers it: `storage_full` when D1 says the database is full, else transient. */
export function writeFailure(err: unknown): RouterError {
  return isStorageFullError(err)
    ? storageFullError(errorMessage(err))
    : new RouterError("storage_unavailable", { detail: errorMessage(err) });
}
