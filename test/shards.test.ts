import { describe, expect, it } from "vitest";
import { earlierEventId, eventDigests, shardOfEventId } from "../src/core/event-id.ts";
import {
  jumpHash,
  mergePages,
  placeEvent,
  shardFor,
  shardsInWindow,
  writableShards,
  type ShardPage,
} from "../src/core/shards.ts";

/** Issue #24: placement from signed bytes, the map's versions, and exact merged pages. Pure. */
const keys = Array.from({ length: 4000 }, (_, i) => BigInt.asUintN(64, BigInt(i) * 0x9e3779b97f4a7c15n + 12345n));

describe("jump consistent hash", () => {
  it("is deterministic, in range, and one bucket holds everything", () => {
    for (const key of keys.slice(0, 200)) {
      expect(jumpHash(key, 1)).toBe(0);
      const b = jumpHash(key, 7);
      expect(b).toBeGreaterThanOrEqual(0);
      expect(b).toBeLessThan(7);
      expect(jumpHash(key, 7)).toBe(b);
    }
    expect(() => jumpHash(1n, 0)).toThrow(RangeError);
  });

  it("adding a bucket moves only the keys the new bucket takes, about 1/n of them", () => {
    for (const n of [1, 2, 3, 4, 8]) {
      let moved = 0;
      for (const key of keys) {
        const before = jumpHash(key, n);
        const after = jumpHash(key, n + 1);
        if (after !== before) {
          expect(after).toBe(n);
          moved++;
        }
      }
      expect(moved / keys.length).toBeGreaterThan(1 / (n + 1) - 0.05);
      expect(moved / keys.length).toBeLessThan(1 / (n + 1) + 0.05);
    }
  });

  it("spreads keys evenly", () => {
    const counts = [0, 0, 0, 0];
    for (const key of keys) counts[jumpHash(key, 4)]!++;
    for (const c of counts) expect(Math.abs(c - keys.length / 4)).toBeLessThan(keys.length * 0.05);
  });
});

describe("placement", () => {
  const digestsOf = (source: string, providerId: string | null, key: string) =>
    eventDigests({ source, providerId, idempotencyKey: key });
  const map = (version: number, writable: number[], createdAt = 0) => ({ version, writable, createdAt });
  const WINDOW = 48 * 3_600_000;

  it("every event of one order goes to one shard, and the id names it", async () => {
    const current = map(3, [0, 1, 2], 0);
    const shards = new Set<number>();
    for (const status of ["PENDING", "IN_PROGRESS", "COMPLETE"]) {
      const p = placeEvent(await digestsOf("weedmaps", "9763822", `wm:${status}`), [current], WINDOW + 1, WINDOW);
      shards.add(p.shard);
      expect(shardOfEventId(p.id)).toBe(p.shard);
      expect(p.earlier).toEqual([]);
    }
    expect(shards.size).toBe(1);
  });

  it("a read-only shard gets no new events", async () => {
    for (let i = 0; i < 100; i++) {
      const d = await digestsOf("leaftrade", `order-${i}`, `k${i}`);
      expect(shardFor(d.object, map(2, [0, 2]))).not.toBe(1);
    }
    expect(
      writableShards(
        [
          { id: 0, readOnly: false },
          { id: 1, readOnly: true },
          { id: 2, readOnly: false },
        ],
        new Set([2]),
      ),
    ).toEqual([0]);
  });

  it("within the retry window, names where the previous map put the event, only when that moved", async () => {
    const previous = map(2, [0, 1], 0);
    const current = map(3, [0, 1, 2], 1_000);
    let moved = 0;
    for (let i = 0; i < 300; i++) {
      const d = await digestsOf("weedmaps", `o-${i}`, `k-${i}`);
      const p = placeEvent(d, [current, previous], 2_000, WINDOW);
      const before = shardFor(d.object, previous);
      if (before === p.shard) expect(p.earlier).toEqual([]);
      else {
        moved++;
        expect(p.shard).toBe(2);
        expect(p.earlier).toEqual([{ shard: before, id: p.id.replace(/^evt_2_/, `evt_${before}_`) }]);
      }
      // After the window: no second look.
      expect(placeEvent(d, [current, previous], 1_000 + WINDOW, WINDOW).earlier).toEqual([]);
    }
    expect(moved).toBeGreaterThan(50);
    expect(moved).toBeLessThan(150);
  });

  it("version 1's previous is the earlier id form in shard 0", async () => {
    const d = await digestsOf("weedmaps", "9763822", "k");
    expect(placeEvent(d, [map(1, [0], 0)], 10, WINDOW)).toEqual({
      shard: 0,
      id: expect.stringMatching(/^evt_0_[0-9a-f]{32}$/),
      earlier: [{ shard: 0, id: earlierEventId(d) }],
    });
  });

  it("a shard added within the window of the switch to these ids: both the previous map's id and the earlier form", async () => {
    // Version 1 (one shard, ids of the current form) at 0; version 2 adds shard 1 an hour later.
    const versions = [map(2, [0, 1], 3_600_000), map(1, [0], 0)];
    let both = 0;
    for (let i = 0; i < 50; i++) {
      const d = await digestsOf("weedmaps", `o-${i}`, `k-${i}`);
      const p = placeEvent(d, versions, 7_200_000, WINDOW);
      const expected = [
        ...(p.shard === 0 ? [] : [{ shard: 0, id: p.id.replace(/^evt_1_/, "evt_0_") }]),
        { shard: 0, id: earlierEventId(d) },
      ];
      expect(p.earlier).toEqual(expected);
      if (p.shard === 1) both++;
      // Once version 1 is out of the window (version 2 still in it), only the previous map's id remains.
      expect(placeEvent(d, versions, WINDOW + 1_000, WINDOW).earlier).toEqual(expected.slice(0, -1));
    }
    expect(both).toBeGreaterThan(5);
  });

  it("the shards an order may be in within the window are the ones placeEvent looks in", async () => {
    const versions = [map(3, [0, 1, 2], 7_200_000), map(2, [0, 1], 3_600_000), map(1, [0], 0)];
    for (let i = 0; i < 40; i++) {
      const d = await digestsOf("weedmaps", `w-${i}`, `k-${i}`);
      const p = placeEvent(d, versions, 7_300_000, WINDOW);
      expect(new Set(shardsInWindow(d.object, versions, 7_300_000, WINDOW))).toEqual(
        new Set([p.shard, ...p.earlier.map((e) => e.shard)]),
      );
      expect(shardsInWindow(d.object, versions, 7_200_000 + WINDOW, WINDOW)).toEqual([p.shard]);
    }
  });

  it("an event with no object id is placed by its own identity", async () => {
    const a = await digestsOf("lab", null, "key-a");
    expect(a.object).toBe(a.identity);
  });
});

describe("merged pages", () => {
  const row = (receivedAt: number, id: string) => ({ receivedAt, id });
  const page = (
    rows: ReturnType<typeof row>[],
    frontier: ReturnType<typeof row> | null,
  ): ShardPage<ReturnType<typeof row>> => ({ rows, frontier });

  it("merges newest first, keeps `limit`, and the cursor is the last row kept", () => {
    const merged = mergePages([page([row(9, "a"), row(5, "b")], null), page([row(8, "c"), row(7, "d")], null)], 3);
    expect(merged.rows.map((r) => r.id)).toEqual(["a", "c", "d"]);
    expect(merged.next).toEqual(row(7, "d"));
  });

  it("leaves rows older than a shard's frontier for the next page, so nothing is skipped", () => {
    // Shard 2 looked only down to 6 (a full page, or a window's edge): shard 1's row at 3 waits for the next page.
    const merged = mergePages(
      [page([row(9, "a"), row(3, "b")], null), page([row(8, "c"), row(6, "d")], row(6, "d"))],
      10,
    );
    expect(merged.rows.map((r) => r.id)).toEqual(["a", "c", "d"]);
    expect(merged.next).toEqual(row(6, "d"));
  });

  it("ends when every shard reached its end and every row fit", () => {
    expect(mergePages([page([row(1, "a")], null), page([], null)], 5)).toEqual({ rows: [row(1, "a")], next: null });
  });

  it("pages through shards exactly: every row once, in order, whatever the page size", () => {
    const shards = [0, 1, 2].map((s) =>
      Array.from({ length: 37 + s * 11 }, (_, i) =>
        row(1_000 - ((i * (s + 2) * 7) % 997), `evt_${s}_${String(i).padStart(4, "0")}`),
      ).sort((a, b) => b.receivedAt - a.receivedAt || (a.id < b.id ? 1 : -1)),
    );
    const all = shards.flat().sort((a, b) => b.receivedAt - a.receivedAt || (a.id < b.id ? 1 : -1));
    for (const limit of [1, 4, 10, 50]) {
      const seen: string[] = [];
      let cursor: ReturnType<typeof row> | null = null;
      for (let guard = 0; guard < 1_000; guard++) {
        const pages = shards.map((rows) => {
          const after = rows.filter(
            (r) =>
              !cursor || r.receivedAt < cursor.receivedAt || (r.receivedAt === cursor.receivedAt && r.id < cursor.id),
          );
          const taken = after.slice(0, limit);
          return page(taken, after.length > limit ? taken.at(-1)! : null);
        });
        const merged = mergePages(pages, limit);
        seen.push(...merged.rows.map((r) => r.id));
        cursor = merged.next;
        if (!cursor) break;
      }
      expect(seen).toEqual(all.map((r) => r.id));
    }
  });
});
