import { createExecutionContext, createMessageBatch } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import { objectDigest, shardOfEventId } from "../src/core/event-id.ts";
import { shardFor } from "../src/core/shards.ts";
import { latestDelivered, recordDelivered } from "../src/storage/ordering.ts";
import { forgetShardMaps } from "../src/storage/shard-maps.ts";
import {
  captureDeliveryQueue,
  deliveriesOf,
  fixture,
  hexSignature,
  ManualClock,
  post,
  stubDestinations,
  interceptPrepare,
} from "./helpers.ts";

// The tests of a file share its database: each counts only the rows it adds.
const rowCount = async () => (await env.DB.prepare("SELECT COUNT(*) AS n FROM latest_deliveries").first<number>("n"))!;

it("keeps, per object, the newest delivered time of each destination in one row, and never moves one back", async () => {
  const before = await rowCount();
  expect(await latestDelivered(env.DB, "leaftrade", "ord_1")).toEqual(new Map());
  await recordDelivered(env.DB, "leaftrade", "ord_1", 2_000, ["erp", "pos-2"]);
  await recordDelivered(env.DB, "leaftrade", "ord_1", 1_000, ["erp"]);
  await recordDelivered(env.DB, "leaftrade", "ord_1", 3_000, ["pos-2", "crm"]);
  expect(await latestDelivered(env.DB, "leaftrade", "ord_1")).toEqual(
    new Map([
      ["erp", 2_000],
      ["pos-2", 3_000],
      ["crm", 3_000],
    ]),
  );
  expect(await latestDelivered(env.DB, "leaftrade", "ord_2")).toEqual(new Map());
  expect((await rowCount()) - before).toBe(1);
});

it("records more destinations than one statement may bind", async () => {
  const many = Array.from({ length: 120 }, (_, i) => `d${i}`);
  await recordDelivered(env.DB, "weedmaps", "9", 5, many);
  const latest = await latestDelivered(env.DB, "weedmaps", "9");
  expect([...latest.keys()].sort()).toEqual([...many].sort());
  expect(new Set(latest.values())).toEqual(new Set([5]));
});

describe("ordering across a change of the shard map", () => {
  const leaftrade = (payload: string) =>
    hexSignature(payload, env.LEAFTRADE_WEBHOOK_SECRET as string).then((signature) => ({ "X-Signature": signature }));

  /** An order whose events the map with shards [0, 1] places in shard 1 (and a map with [0] in shard 0). */
  async function orderMovedToShard1(): Promise<string> {
    for (let i = 0; ; i++) {
      const id = `ord_moved_${i}`;
      if (shardFor(await objectDigest("leaftrade", id), { writable: [0, 1] }) === 1) return id;
    }
  }

  /** `latest_deliveries` of an order in one shard. */
  const stateIn = (db: D1Database, orderId: string) => latestDelivered(db, "leaftrade", `order:${orderId}`);

  /** env with its DB counting the statements that read ordering state there. */
  function countingOrderingReads(): { env: Env; reads: () => number } {
    let reads = 0;
    const db = interceptPrepare(env.DB, (sql, real) => {
      if (sql.includes("FROM latest_deliveries")) reads++;
      return real(sql);
    });
    return { env: { ...env, DB: db } as Env, reads: () => reads };
  }

  afterEach(async () => {
    vi.restoreAllMocks();
    await env.DB.prepare("DELETE FROM read_only_shards").run();
    forgetShardMaps();
  });

  it("orders a later status placed in the other shard after the earlier one, within the retry window only", async () => {
    const seen = stubDestinations(() => new Response("ok"));
    const queue = captureDeliveryQueue();
    const worker = createWorker();
    const fetcher = (request: Request) =>
      worker.fetch(request as Parameters<typeof worker.fetch>[0], env, createExecutionContext());
    const orderId = await orderMovedToShard1();
    const base = fixture("leaftrade/order-v3").body.replace("ord_abc124", orderId);
    const at = (status: string, time: string) =>
      base.replace('"status":"revised"', `"status":"${status}"`).replace("2025-11-14T19:05:12Z", time);
    const ingest = async (payload: string, via = fetcher) => {
      const res = await post("/webhooks/leaftrade/order-v3", payload, await leaftrade(payload), via);
      expect(res.status).toBe(200);
      return (await res.json<{ eventId: string }>()).eventId;
    };
    const deliver = async (on = worker, bindings: Env = env) => {
      const bodies = queue.messages.splice(0).map((m) => m.body);
      const batch = createMessageBatch(
        "webhook-deliveries",
        bodies.map((body, i) => ({ id: `ord-${Date.now()}-${i}`, timestamp: new Date(), attempts: 1, body })),
      );
      await on.queue(batch, bindings);
    };

    // The map has one writable shard (shard 1 read-only): "rejected" at 19:00 goes to shard 0, and is delivered.
    await env.DB.prepare("INSERT INTO read_only_shards (shard_id, since, reason) VALUES (1, ?1, 'test')")
      .bind(Date.now())
      .run();
    forgetShardMaps();
    const rejected = await ingest(at("rejected", "2025-11-14T19:00:00Z"));
    expect(shardOfEventId(rejected)).toBe(0);
    await deliver();
    expect((await deliveriesOf(rejected)).map((d) => d.status)).toEqual(["delivered"]);

    // A new version of the map, with both shards writable: the order's next events go to shard 1.
    await env.DB.prepare("DELETE FROM read_only_shards").run();
    forgetShardMaps();
    const olderNew = await ingest(at("new", "2025-11-14T18:00:00Z"));
    expect(shardOfEventId(olderNew)).toBe(1);
    const { env: counted, reads } = countingOrderingReads();
    await deliver(worker, counted);
    // The late older status is stale: shard 0's state, read once beside shard 1's, says 19:00 was delivered.
    expect(reads()).toBe(1);
    expect((await deliveriesOf(olderNew)).map((d) => [d.status, d.last_error, d.attempts])).toEqual([
      ["stale", "superseded_stale", 0],
    ]);
    const revised = await ingest(at("revised", "2025-11-14T20:00:00Z"));
    expect(shardOfEventId(revised)).toBe(1);
    await deliver();
    expect((await deliveriesOf(revised)).map((d) => d.status)).toEqual(["delivered"]);
    expect(seen.requests.map((r) => r.headers.get("x-router-event-id"))).toEqual([rejected, revised]);
    // Each shard keeps the state of what was delivered from it.
    expect(await stateIn(env.DB, orderId)).toEqual(new Map([["erp", Date.parse("2025-11-14T19:00:00Z")]]));
    expect(await stateIn(env.SHARD_1, orderId)).toEqual(new Map([["erp", Date.parse("2025-11-14T20:00:00Z")]]));

    // Past the retry window, only the event's own shard is read.
    const later = createWorker({ clock: new ManualClock(Date.now() + 49 * 3_600_000) });
    const approved = await ingest(at("approved", "2025-11-14T21:00:00Z"), (request) =>
      later.fetch(request as Parameters<typeof later.fetch>[0], env, createExecutionContext()),
    );
    expect(shardOfEventId(approved)).toBe(1);
    const outside = countingOrderingReads();
    await deliver(later, outside.env);
    expect(outside.reads()).toBe(0);
    expect((await deliveriesOf(approved)).map((d) => d.status)).toEqual(["delivered"]);
  });
});
