import { describe, expect, it } from "vitest";
import {
  type CapacityRecord,
  type CapacitySample,
  CAPACITY_WINDOW_MS,
  capacityFigures,
  capacityLevel,
  D1_DATABASE_LIMIT_BYTES,
  DEFAULT_CAPACITY_THRESHOLDS,
  decideCapacity,
  isStorageFullError,
  nextCapacityRecord,
  type ShardSize,
} from "../src/core/capacity.ts";

// The capacity rules (src/core/capacity.ts) on plain data: the level of a size, the decision over every shard at
// once, the record a sample makes and the rates read from it. The Worker's side is test/capacity.test.ts.

const t = DEFAULT_CAPACITY_THRESHOLDS;
const GB = 1_000_000_000;
const shard = (id: number, gb: number | null, state: ShardSize["state"] = "writable"): ShardSize => ({
  id,
  state,
  sizeBytes: gb === null ? null : gb * GB,
});

describe("levels", () => {
  it("reads D1's 10 GB as the limit, and the issue's 70, 85 and 90 % as the lines", () => {
    expect(D1_DATABASE_LIMIT_BYTES).toBe(10 * GB);
    expect(t).toEqual({ limitBytes: 10 * GB, warnPercent: 70, criticalPercent: 85, readOnlyPercent: 90 });
    expect([0, 6.99, 7, 8.49, 8.5, 8.99, 9, 10].map((gb) => capacityLevel(gb * GB, t))).toEqual([
      "ok",
      "ok",
      "warning",
      "warning",
      "critical",
      "critical",
      "full",
      "full",
    ]);
  });
});

describe("the decision over every shard", () => {
  const actions = (shards: ShardSize[]) => decideCapacity(shards, t);

  it("one shard: nothing, then the warning and critical alerts, then all full (there is no other shard)", () => {
    expect(actions([shard(0, 1)])).toEqual({ allFull: false, shards: [{ id: 0, level: "ok", action: "none" }] });
    expect(actions([shard(0, 7.2)]).shards[0]!.action).toBe("alert_warning");
    expect(actions([shard(0, 8.6)]).shards[0]!.action).toBe("alert_critical");
    expect(actions([shard(0, 9.1)])).toEqual({ allFull: true, shards: [{ id: 0, level: "full", action: "all_full" }] });
  });

  it("a shard not measured yet counts as having room", () => {
    expect(actions([shard(0, null)])).toEqual({ allFull: false, shards: [{ id: 0, level: null, action: "none" }] });
    expect(actions([shard(0, 9.5), shard(1, null)]).shards.map((s) => s.action)).toEqual(["make_read_only", "none"]);
  });

  it("past 90 % a shard goes read-only when another has room, each full one at once", () => {
    expect(actions([shard(0, 9.2), shard(1, 3)])).toEqual({
      allFull: false,
      shards: [
        { id: 0, level: "full", action: "make_read_only" },
        { id: 1, level: "ok", action: "none" },
      ],
    });
    expect(actions([shard(0, 9.2), shard(1, 9.6), shard(2, 8.7)]).shards.map((s) => s.action)).toEqual([
      "make_read_only",
      "make_read_only",
      "alert_critical",
    ]);
  });

  it("a read-only shard stays as it is and has no room for others; when no writable shard has room, all are full", () => {
    expect(actions([shard(0, 9.3, "read_only"), shard(1, 4)]).shards.map((s) => s.action)).toEqual(["none", "none"]);
    // The only writable shard is full, and the other is read-only (whatever its size): nowhere to go.
    expect(actions([shard(0, 2, "read_only"), shard(1, 9.4)])).toEqual({
      allFull: true,
      shards: [
        { id: 0, level: "ok", action: "none" },
        { id: 1, level: "full", action: "all_full" },
      ],
    });
    expect(actions([shard(0, 9.9, "read_only"), shard(1, 9.1), shard(2, 9.0)])).toMatchObject({
      allFull: true,
      shards: [{ action: "none" }, { action: "all_full" }, { action: "all_full" }],
    });
    expect(actions([]).allFull).toBe(true);
  });

  it("moves with the configured lines", () => {
    const tight = { ...t, limitBytes: 1_000, warnPercent: 50, criticalPercent: 60, readOnlyPercent: 75 };
    expect(decideCapacity([{ id: 0, state: "writable", sizeBytes: 740 }], tight).shards[0]!.action).toBe(
      "alert_critical",
    );
    expect(decideCapacity([{ id: 0, state: "writable", sizeBytes: 750 }], tight).allFull).toBe(true);
  });
});

describe("the record a sample makes", () => {
  const T0 = Date.UTC(2026, 10, 23, 10, 0, 0);
  const sample = (over: Partial<CapacitySample>): CapacitySample => ({
    shardId: 0,
    binding: "DB",
    sizeBytes: 1 * GB,
    measuredAt: T0,
    rowsWritten: 0,
    events: 0,
    ...over,
  });

  it("starts a window at the first sample, adds later counts to it, and alerts only when the level rises", () => {
    const first = nextCapacityRecord(null, sample({ rowsWritten: 8, events: 2 }), t);
    expect(first).toEqual({
      record: {
        shardId: 0,
        binding: "DB",
        sizeBytes: GB,
        measuredAt: T0,
        level: "ok",
        window: { startedAt: T0, startSizeBytes: GB, rowsWritten: 8, events: 2 },
        lastWindow: null,
        version: 1,
      },
      alert: null,
    });
    const warned = nextCapacityRecord(first.record, sample({ sizeBytes: 7.1 * GB, measuredAt: T0 + 60_000 }), t);
    expect(warned.alert).toBe("warning");
    expect(warned.record).toMatchObject({ level: "warning", version: 2, window: { startedAt: T0, events: 2 } });
    const again = nextCapacityRecord(warned.record, sample({ sizeBytes: 7.2 * GB, measuredAt: T0 + 120_000 }), t);
    expect(again.alert).toBeNull();
    // Straight from ok to critical alerts once, at critical.
    expect(nextCapacityRecord(first.record, sample({ sizeBytes: 8.7 * GB, measuredAt: T0 + 1 }), t).alert).toBe(
      "critical",
    );
    // A fall re-arms: the next rise alerts again (the gate's throttle holds back a quick repeat).
    const fell = nextCapacityRecord(again.record, sample({ sizeBytes: GB, measuredAt: T0 + 180_000 }), t);
    expect(fell).toMatchObject({ alert: null, record: { level: "ok" } });
    expect(nextCapacityRecord(fell.record, sample({ sizeBytes: 7.5 * GB, measuredAt: T0 + 240_000 }), t).alert).toBe(
      "warning",
    );
  });

  it("keeps the newer size when a slower isolate's sample arrives late, but adds its counts", () => {
    const newer = nextCapacityRecord(null, sample({ sizeBytes: 2 * GB, measuredAt: T0 + 60_000 }), t).record;
    const late = nextCapacityRecord(newer, sample({ sizeBytes: 1 * GB, rowsWritten: 4, events: 1 }), t);
    expect(late).toEqual({
      record: { ...newer, window: { ...newer.window, rowsWritten: 4, events: 1 }, version: 2 },
      alert: null,
    });
  });

  it("closes the window after a day, keeping it for the rates, and starts the next at the new sample", () => {
    const start = nextCapacityRecord(null, sample({ rowsWritten: 4, events: 1 }), t).record;
    const later = sample({
      sizeBytes: GB + 500_000,
      measuredAt: T0 + CAPACITY_WINDOW_MS,
      rowsWritten: 396,
      events: 99,
    });
    expect(nextCapacityRecord(start, later, t).record).toMatchObject({
      window: { startedAt: T0 + CAPACITY_WINDOW_MS, startSizeBytes: GB + 500_000, rowsWritten: 0, events: 0 },
      lastWindow: { ms: CAPACITY_WINDOW_MS, growthBytes: 500_000, rowsWritten: 400, events: 100 },
    });
  });
});

describe("the figures read from a record", () => {
  const record = (over: Partial<CapacityRecord> = {}): CapacityRecord => ({
    shardId: 0,
    binding: "DB",
    sizeBytes: 5 * GB,
    measuredAt: 2 * 3_600_000,
    level: "ok",
    window: { startedAt: 0, startSizeBytes: 5 * GB - 100_000_000, rowsWritten: 4_000, events: 1_000 },
    lastWindow: null,
    version: 3,
    ...over,
  });

  it("grows at the window's rate and counts the days to the read-only line", () => {
    // 100 MB in 2 hours: 1.2 GB a day; 4 GB left to the 9 GB line.
    expect(capacityFigures(record(), t, 12_000)).toEqual({
      level: "ok",
      share: 0.5,
      eventsPerDay: 12_000,
      rowsWrittenPerEvent: 4,
      bytesPerEvent: 100_000,
      bytesPerDay: 1_200_000_000,
      daysUntilFull: 3.3,
    });
  });

  it("over less than an hour uses bytes per event times events a day, or says nothing", () => {
    const short = record({ measuredAt: 600_000 });
    expect(capacityFigures(short, t, 24_000)).toMatchObject({ bytesPerDay: 2_400_000_000, daysUntilFull: 1.7 });
    expect(capacityFigures(short, t, null)).toMatchObject({
      eventsPerDay: null,
      bytesPerDay: null,
      daysUntilFull: null,
    });
    // The last complete day, when there is one, over a window just begun.
    const rolled = record({
      measuredAt: 600_000,
      window: { startedAt: 0, startSizeBytes: 5 * GB, rowsWritten: 0, events: 0 },
      lastWindow: { ms: 86_400_000, growthBytes: 400_000_000, rowsWritten: 30_000, events: 10_000 },
    });
    expect(capacityFigures(rolled, t, null)).toMatchObject({
      eventsPerDay: 10_000,
      rowsWrittenPerEvent: 3,
      bytesPerEvent: 40_000,
      bytesPerDay: 400_000_000,
      daysUntilFull: 10,
    });
  });

  it("is null while not growing, 0 past the line, and empty before the first record", () => {
    const flat = record({ window: { startedAt: 0, startSizeBytes: 5 * GB, rowsWritten: 0, events: 0 } });
    expect(capacityFigures(flat, t, 0)).toMatchObject({ bytesPerDay: 0, daysUntilFull: null, bytesPerEvent: null });
    expect(capacityFigures(record({ sizeBytes: 9.5 * GB }), t, null)).toMatchObject({
      level: "full",
      share: 0.95,
      daysUntilFull: 0,
    });
    expect(capacityFigures(null, t, 5)).toEqual({
      level: null,
      share: null,
      eventsPerDay: 5,
      rowsWrittenPerEvent: null,
      bytesPerEvent: null,
      bytesPerDay: null,
      daysUntilFull: null,
    });
  });
});

it("knows D1's full-database errors from its other failures", () => {
  for (const message of [
    "D1_ERROR: database or disk is full: SQLITE_FULL",
    "database or disk is full",
    "D1_ERROR: Exceeded maximum DB size.",
  ])
    expect(isStorageFullError(new Error(message))).toBe(true);
  for (const message of [
    "D1_ERROR: no such table: events: SQLITE_ERROR",
    "D1 DB is overloaded. Too many requests queued.",
  ])
    expect(isStorageFullError(new Error(message))).toBe(false);
});
