import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import { shardOfEventId } from "../src/core/event-id.ts";
import { forgetShardMaps } from "../src/storage/shard-maps.ts";
import { fixture, ManualClock, ROUTER, weedmapsSignature } from "./helpers.ts";

/**
 * Issue #24: the same router on 1 and on 3 shards (the committed config, which every other test uses, names 2).
 * Placement from signed bytes, every event of an order in one shard, the id naming it, and the admin API's pages
 * merged exactly across all of them.
 */
const BINDINGS = ["DB", "SHARD_1", "SHARD_2"] as const;
const ctx = {
  waitUntil: () => undefined,
  passThroughOnException: () => undefined,
  props: {},
} as unknown as ExecutionContext;

describe.each([1, 3])("on %i shard(s)", (count) => {
  const storage = { shards: BINDINGS.slice(0, count).map((binding, id) => ({ id, binding })), retryWindowHours: 48 };
  const bindings = {
    ...env,
    ROUTER_CONFIG: JSON.stringify({ ...JSON.parse(env.ROUTER_CONFIG as string), storage }),
  } as Env;
  const clock = new ManualClock(Date.now());
  const worker = createWorker({ clock });
  const call = (request: Request) => worker.fetch(request as Parameters<typeof worker.fetch>[0], bindings, ctx);
  // Fixed, so where the orders land is too: 24 random order ids would leave one of 3 shards empty once in 5,000 runs.
  const marker = `counts-${count}`;

  async function send(name: string, orderId: string) {
    const body = fixture(name).body.replaceAll("9763822", orderId);
    const res = await call(
      new Request(`${ROUTER}/webhooks/weedmaps?merchant_id=4242`, {
        method: "POST",
        body,
        headers: { "content-type": "application/json", Signature: await weedmapsSignature(body) },
      }),
    );
    expect(res.status).toBe(200);
    clock.advance(1);
    return (await res.json<{ eventId: string }>()).eventId;
  }
  const admin = (path: string, init: RequestInit = {}) =>
    call(
      new Request(`${ROUTER}/admin${path}`, {
        ...init,
        headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json" },
      }),
    );

  it("places each order in one shard by its signed bytes, uses every shard, and pages them all exactly once, newest first", async () => {
    forgetShardMaps();
    const orders = Array.from({ length: 24 }, (_, i) => `${marker}-${i}`);
    const sent: string[] = [];
    for (const orderId of orders) {
      const created = await send("weedmaps/create", orderId);
      const accepted = await send("weedmaps/in-progress", orderId);
      // Every event of one order in one shard, and its id says which.
      expect(shardOfEventId(accepted)).toBe(shardOfEventId(created));
      sent.push(created, accepted);
    }
    const shards = new Set(sent.map((id) => shardOfEventId(id)));
    expect([...shards].sort()).toEqual(Array.from({ length: count }, (_, i) => i));
    // Each row is in the database its id names, and only there.
    for (const id of sent) {
      const found = await Promise.all(
        BINDINGS.map((b) => env[b].prepare("SELECT 1 AS x FROM events WHERE id = ?1").bind(id).first<number>("x")),
      );
      expect(found.map((x) => x === 1)).toEqual(BINDINGS.map((_, i) => i === shardOfEventId(id)));
    }

    // The admin API's list, 5 a page, through every shard: each event once, newest first.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await admin(`/events?source=weedmaps&limit=5${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      const page: { events: { id: string }[]; nextCursor: string | null } = await res.json();
      seen.push(...page.events.map((e) => e.id));
      cursor = page.nextCursor;
    } while (cursor);
    const ours = seen.filter((id) => sent.includes(id));
    expect(ours).toEqual([...sent].reverse());
    expect(new Set(seen).size).toBe(seen.length);

    // One order's events by id, from its shard; its search and its purge find both.
    const [orderId] = orders;
    const detail = await admin(`/events/${sent[0]}`);
    expect(detail.status).toBe(200);
    const byOrder = await (await admin(`/events?orderId=${orderId}`)).json<{ events: { id: string }[] }>();
    expect(byOrder.events.map((e) => e.id)).toEqual([sent[1], sent[0]]);
    const purge = await admin("/customer-data/purge", {
      method: "POST",
      body: JSON.stringify({ providerOrderId: orderId, reason: "shard counts" }),
    });
    expect((await purge.json<{ purged: string[] }>()).purged.sort()).toEqual([sent[0], sent[1]].sort());
  });
});

describe("a map version naming a shard the config no longer has", () => {
  it("does not fail ingest within the retry window: the shard it cannot reach is not looked in", async () => {
    forgetShardMaps();
    const clock = new ManualClock(Date.now());
    const worker = createWorker({ clock });
    const configWith = (count: number) =>
      ({
        ...env,
        ROUTER_CONFIG: JSON.stringify({
          ...JSON.parse(env.ROUTER_CONFIG as string),
          storage: { shards: BINDINGS.slice(0, count).map((binding, id) => ({ id, binding })) },
        }),
      }) as Env;
    const post = async (bindings: Env, orderId: string) => {
      const body = fixture("weedmaps/create").body.replaceAll("9763822", orderId);
      clock.advance(1);
      return worker.fetch(
        new Request(`${ROUTER}/webhooks/weedmaps?merchant_id=4242`, {
          method: "POST",
          body,
          headers: { "content-type": "application/json", Signature: await weedmapsSignature(body) },
        }) as Parameters<typeof worker.fetch>[0],
        bindings,
        ctx,
      );
    };
    const orders = Array.from({ length: 12 }, (_, i) => `gone-shard-${i}-${crypto.randomUUID().slice(0, 6)}`);
    for (const orderId of orders) expect((await post(configWith(3), orderId)).status).toBe(200);
    // The config drops shard 2 (which the docs forbid while it holds events): retries still answer, from shards 0-1.
    for (const orderId of orders) {
      const res = await post(configWith(2), orderId);
      expect(res.status).toBe(200);
      expect(shardOfEventId((await res.json<{ eventId: string }>()).eventId)).toBeLessThan(2);
    }
  });
});
