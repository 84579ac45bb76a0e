import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  countEvents,
  HOUR_MS,
  hourOf,
  lastDayOfDeliveries,
  LATENCY_BOUNDS_MS,
  percentileOf,
  recordDeliveryOutcomes,
  totalsOf,
} from "../src/core/rollups.ts";
import { ROLLUP_LAG_MS, runRollupWalk } from "../src/maintenance/rollup.ts";
import { addEventCounts, readEventCounts, readRollupCursor, readRollupCursors } from "../src/storage/rollups.ts";

const T = Date.UTC(2026, 11, 2, 12, 30);

describe("delivery counters (pure)", () => {
  it("counts delivered, failed and dead in the hour of each report, and forgets hours older than a day", () => {
    let hours = recordDeliveryOutcomes(
      [],
      [
        { kind: "delivered", sinceReceivedMs: 80 },
        { kind: "failed", sinceReceivedMs: null },
        { kind: "none", sinceReceivedMs: null },
      ],
      T,
    );
    hours = recordDeliveryOutcomes(
      hours,
      [
        { kind: "delivered", sinceReceivedMs: 4_000 },
        { kind: "dead", sinceReceivedMs: null },
      ],
      T + 10 * 60_000,
    );
    hours = recordDeliveryOutcomes(hours, [{ kind: "delivered", sinceReceivedMs: 90_000 }], T + HOUR_MS);
    expect(hours.map((h) => [h.hour, h.delivered, h.failed, h.dead])).toEqual([
      [hourOf(T), 2, 1, 1],
      [hourOf(T) + HOUR_MS, 1, 0, 0],
    ]);
    expect(recordDeliveryOutcomes(hours, [], T + 25 * HOUR_MS)).toEqual([hours[1]]);
    expect(recordDeliveryOutcomes(hours, [], T + 26 * HOUR_MS)).toEqual([]);
    const day = lastDayOfDeliveries(hours, T + HOUR_MS);
    expect(day).toHaveLength(24);
    expect(day.at(-1)!.hour).toBe(hourOf(T) + HOUR_MS);
    expect(totalsOf(day)).toMatchObject({ delivered: 3, failed: 1, dead: 1, p50Ms: 5_000, p99Ms: 300_000 });
  });

  it("reads a percentile as the upper bound of its bucket, and past the last bound as Infinity", () => {
    const latency = Array(LATENCY_BOUNDS_MS.length + 1).fill(0);
    expect(percentileOf(latency, 0.5)).toBeNull();
    latency[0] = 98;
    latency[LATENCY_BOUNDS_MS.length] = 2;
    expect(percentileOf(latency, 0.5)).toBe(100);
    expect(percentileOf(latency, 0.98)).toBe(100);
    expect(percentileOf(latency, 0.99)).toBe(Number.POSITIVE_INFINITY);
  });

  it("groups a slice of events by hour, source and type", () => {
    expect(
      countEvents([
        { receivedAt: T, source: "weedmaps", eventType: "create" },
        { receivedAt: T + 1, source: "weedmaps", eventType: "create" },
        { receivedAt: T + HOUR_MS, source: "weedmaps", eventType: "create" },
        { receivedAt: T, source: "leaftrade", eventType: "order-v4" },
      ]),
    ).toEqual([
      { hour: hourOf(T), source: "weedmaps", eventType: "create", events: 2 },
      { hour: hourOf(T) + HOUR_MS, source: "weedmaps", eventType: "create", events: 1 },
      { hour: hourOf(T), source: "leaftrade", eventType: "order-v4", events: 1 },
    ]);
  });
});

describe("the rollup walk (D1)", () => {
  const insert = (db: D1Database, id: string, receivedAt: number, source = "lab", type = "single") =>
    db
      .prepare(
        `INSERT INTO events (id, idempotency_key, ingest_id, source, event_type, routing, content_type, body, body_sha256, received_at)
         VALUES (?1, ?1, 'i', ?2, ?3, 'routed', 'application/json', '{}', 'h', ?4)`,
      )
      .bind(id, source, type, receivedAt);
  const id = (shard: number, n: number) => `evt_${shard}_${n.toString(16).padStart(32, "0")}`;
  const shards = () => [
    { id: 0, db: env.DB },
    { id: 1, db: env.SHARD_1 },
  ];
  // Each test has its own stretch of time (the file's tests share the databases, in any order), and forgets the
  // cursors and counts the others left.
  const clear = () =>
    env.DB.batch([env.DB.prepare("DELETE FROM rollups"), env.DB.prepare("DELETE FROM sweeper_state")]);

  it("counts each event once, stays behind the clock by its lag, starts a day back, and does not count an overlapped slice", async () => {
    await clear();
    const now = Date.UTC(2026, 11, 2, 12, 0);
    await env.DB.batch([
      insert(env.DB, id(0, 1), now - 30 * HOUR_MS), // before the first run's start: history is not walked
      insert(env.DB, id(0, 2), now - 2 * HOUR_MS),
      insert(env.DB, id(0, 3), now - 2 * HOUR_MS, "weedmaps", "create"),
      insert(env.DB, id(0, 4), now - ROLLUP_LAG_MS + 1_000), // still inside the lag
    ]);
    const only = [{ id: 0, db: env.DB }];
    expect(await runRollupWalk(env.DB, only, now)).toMatchObject({ counted: 2, behind: false });
    // Nothing new: the cursor moves up to the lag line and nothing is counted twice.
    expect(await runRollupWalk(env.DB, only, now)).toMatchObject({ counted: 0 });
    const later = now + 5 * 60_000;
    await env.DB.batch([insert(env.DB, id(0, 5), now - 60_000)]);
    expect(await runRollupWalk(env.DB, only, later)).toMatchObject({ counted: 2 });
    const counts = await readEventCounts(env.DB, now - 24 * HOUR_MS);
    expect(counts.map((c) => [c.hour, c.source, c.eventType, c.events])).toEqual([
      [hourOf(now - 2 * HOUR_MS), "lab", "single", 1],
      [hourOf(now - 2 * HOUR_MS), "weedmaps", "create", 1],
      [hourOf(now - 60_000), "lab", "single", 2],
    ]);
    // Shard 0's cursor keeps the name it had before shards: an upgraded router neither recounts nor skips a day.
    expect(await env.DB.prepare("SELECT name FROM sweeper_state").all()).toMatchObject({
      results: [{ name: "rollup_cursor" }],
    });

    // A run that read from a cursor another run has since moved writes nothing.
    const { raw } = await readRollupCursor(env.DB, 0);
    const slice = [{ hour: hourOf(now), source: "lab", eventType: "single", events: 5 }];
    expect(await addEventCounts(env.DB, 0, raw, slice, { receivedAt: later, id: id(0, 9) }, 0)).toBe(true);
    expect(await addEventCounts(env.DB, 0, raw, slice, { receivedAt: later, id: id(0, 9) }, 0)).toBe(false);
    const after = await readEventCounts(env.DB, hourOf(now));
    expect(after.find((c) => c.hour === hourOf(now))?.events).toBe(5);
  });

  it("counts both shards' events, each through its own cursor kept in the control database, each slice once", async () => {
    await clear();
    const now = Date.UTC(2027, 2, 10, 12, 0);
    await env.DB.batch([
      insert(env.DB, id(0, 0x21), now - 3 * HOUR_MS, "weedmaps", "create"),
      insert(env.DB, id(0, 0x22), now - HOUR_MS),
    ]);
    await env.SHARD_1.batch([
      insert(env.SHARD_1, id(1, 0x31), now - 3 * HOUR_MS, "weedmaps", "create"),
      insert(env.SHARD_1, id(1, 0x32), now - 3 * HOUR_MS),
      insert(env.SHARD_1, id(1, 0x33), now - ROLLUP_LAG_MS + 1_000), // inside the lag: the next run's
    ]);
    const first = await runRollupWalk(env.DB, shards(), now);
    expect(first).toMatchObject({ counted: 4, behind: false, failed: [] });
    expect(first.shards.map((s) => [s.shard, s.counted])).toEqual([
      [0, 2],
      [1, 2],
    ]);
    // Up to when every shard is counted: the older of the two cursors.
    const cursors = await readRollupCursors(env.DB, [0, 1]);
    expect(first.countedUntil).toBe(Math.min(...[...cursors.cursors.values()].map((c) => c!.receivedAt)));
    expect(cursors.countedUntil).toBe(first.countedUntil);
    // The cursors are the control database's, by shard id; shard 1's own database holds none.
    const names = await env.DB.prepare("SELECT name FROM sweeper_state ORDER BY name").all<{ name: string }>();
    expect(names.results.map((r) => r.name)).toEqual(["rollup_cursor", "rollup_cursor:1"]);
    expect(await env.SHARD_1.prepare("SELECT COUNT(*) AS n FROM sweeper_state").first("n")).toBe(0);

    // Again at the same time: nothing twice. Later: only shard 1's event that was inside the lag.
    expect(await runRollupWalk(env.DB, shards(), now)).toMatchObject({ counted: 0 });
    expect(await runRollupWalk(env.DB, shards(), now + 5 * 60_000)).toMatchObject({ counted: 1 });
    const counts = await readEventCounts(env.DB, now - 24 * HOUR_MS);
    expect(counts.map((c) => [c.hour, c.source, c.eventType, c.events])).toEqual([
      [hourOf(now - 3 * HOUR_MS), "lab", "single", 1],
      [hourOf(now - 3 * HOUR_MS), "weedmaps", "create", 2],
      // Shard 0's event an hour back and shard 1's from inside the lag, in the same hour.
      [hourOf(now - HOUR_MS), "lab", "single", 2],
    ]);

    // A slice of shard 1 read from a cursor that has since moved is not counted; shard 0's cursor is not its guard.
    const { raw } = await readRollupCursor(env.DB, 1);
    const slice = [{ hour: hourOf(now), source: "lab", eventType: "single", events: 7 }];
    const next = { receivedAt: now, id: id(1, 0x99) };
    expect(await addEventCounts(env.DB, 1, raw, slice, next, 0)).toBe(true);
    expect(await addEventCounts(env.DB, 1, raw, slice, next, 0)).toBe(false);
    expect((await readRollupCursor(env.DB, 0)).cursor).not.toEqual(next);
  });
});
