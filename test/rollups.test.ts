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
import { addEventCounts, readEventCounts, readRollupCursor } from "../src/storage/rollups.ts";

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
  const insert = (id: string, receivedAt: number, source = "lab", type = "single") =>
    env.DB.prepare(
      `INSERT INTO events (id, idempotency_key, ingest_id, source, event_type, routing, content_type, body, body_sha256, received_at)
       VALUES (?1, ?1, 'i', ?2, ?3, 'routed', 'application/json', '{}', 'h', ?4)`,
    ).bind(id, source, type, receivedAt);
  const id = (n: number) => `evt_${n.toString(16).padStart(32, "0")}`;

  it("counts each event once, stays behind the clock by its lag, starts a day back, and does not count an overlapped slice", async () => {
    const now = Date.UTC(2026, 11, 2, 12, 0);
    await env.DB.batch([
      insert(id(1), now - 30 * HOUR_MS), // before the first run's start: history is not walked
      insert(id(2), now - 2 * HOUR_MS),
      insert(id(3), now - 2 * HOUR_MS, "weedmaps", "create"),
      insert(id(4), now - ROLLUP_LAG_MS + 1_000), // still inside the lag
    ]);
    expect(await runRollupWalk(env.DB, now)).toMatchObject({ counted: 2, behind: false });
    // Nothing new: the cursor moves up to the lag line and nothing is counted twice.
    expect(await runRollupWalk(env.DB, now)).toMatchObject({ counted: 0 });
    const later = now + 5 * 60_000;
    await env.DB.batch([insert(id(5), now - 60_000)]);
    expect(await runRollupWalk(env.DB, later)).toMatchObject({ counted: 2 });
    const counts = await readEventCounts(env.DB, now - 24 * HOUR_MS);
    expect(counts.map((c) => [c.hour, c.source, c.eventType, c.events])).toEqual([
      [hourOf(now - 2 * HOUR_MS), "lab", "single", 1],
      [hourOf(now - 2 * HOUR_MS), "weedmaps", "create", 1],
      [hourOf(now - 60_000), "lab", "single", 2],
    ]);

    // A run that read from a cursor another run has since moved writes nothing.
    const { raw } = await readRollupCursor(env.DB);
    expect(
      await addEventCounts(
        env.DB,
        raw,
        [{ hour: hourOf(now), source: "lab", eventType: "single", events: 5 }],
        { receivedAt: later, id: id(9) },
        0,
      ),
    ).toBe(true);
    expect(
      await addEventCounts(
        env.DB,
        raw,
        [{ hour: hourOf(now), source: "lab", eventType: "single", events: 5 }],
        { receivedAt: later, id: id(9) },
        0,
      ),
    ).toBe(false);
    const after = await readEventCounts(env.DB, hourOf(now));
    expect(after.find((c) => c.hour === hourOf(now))?.events).toBe(5);
  });
});
