import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import { objectDigest, shardOfEventId } from "../src/core/event-id.ts";
import { shardFor } from "../src/core/shards.ts";
import { sha256Hex } from "../src/core/signatures/inbound.ts";
import {
  adminFetch,
  dbOfEvent,
  fixture,
  interceptPrepare,
  ManualClock,
  post,
  postWeedmaps,
  weedmapsSignature,
} from "./helpers.ts";

/**
 * Issue #24: event ids begin with their shard and a digest of their order (src/core/event-id.ts), so an order's
 * events are one primary-key range and no index on the provider id is written per event. Ids stored before
 * (`evt_<32 hex>`) stay readable, deduplicated within the retry window, found by order and purged.
 */
const ORDER_FIELD = "9763822";
let orders = 0;
const newOrder = () => `ids-${++orders}-${crypto.randomUUID().slice(0, 8)}`;
/** Both shards of the test config take new events (map version 1: writable [0, 1]). */
const SHARDS = [env.DB, env.SHARD_1];
/** A new order whose events the current map places in `shard`: found by trying ids, as placement is a hash. */
async function orderIn(shard: number): Promise<string> {
  for (;;) {
    const orderId = newOrder();
    if (shardFor(await objectDigest("weedmaps", orderId), { writable: [0, 1] }) === shard) return orderId;
  }
}
const bodyOf = (name: string, orderId: string) => fixture(name).body.replaceAll(ORDER_FIELD, orderId);

async function ingest(name: string, orderId: string, post_ = postWeedmaps) {
  const res = await post_("/webhooks/weedmaps?merchant_id=4242", bodyOf(name, orderId));
  expect(res.status).toBe(200);
  return res.json<{ eventId: string; duplicate: boolean }>();
}

/**
 * Rewrites a stored event's id into the form it would have had before migration 0012. Ids of that form all live in
 * shard 0 (the one database there was), so an event placed in another shard is moved there.
 */
async function asStoredBefore(eventId: string): Promise<string> {
  const from = dbOfEvent(eventId);
  const row = await from.prepare("SELECT * FROM events WHERE id = ?1").bind(eventId).first<Record<string, unknown>>();
  const earlier = `evt_${(await sha256Hex(String(row!.idempotency_key))).slice(0, 32)}`;
  if (from === env.DB) {
    await env.DB.prepare("UPDATE events SET id = ?2 WHERE id = ?1").bind(eventId, earlier).run();
    return earlier;
  }
  const columns = Object.keys(row!);
  const values = columns.map((c) => {
    const value = c === "id" ? earlier : row![c];
    return Array.isArray(value) ? Uint8Array.from(value as number[]) : value;
  });
  await env.DB.prepare(
    `INSERT INTO events (${columns.join(", ")}) VALUES (${columns.map((_, i) => `?${i + 1}`).join(", ")})`,
  )
    .bind(...values)
    .run();
  await from.prepare("DELETE FROM events WHERE id = ?1").bind(eventId).run();
  return earlier;
}

/** The order's rows in every shard, by id. */
const rowsOf = async (orderId: string) =>
  (
    await Promise.all(
      SHARDS.map(
        async (db) =>
          (
            await db
              .prepare("SELECT id, divergent_retries FROM events WHERE provider_id = ?1 ORDER BY id")
              .bind(orderId)
              .all<{ id: string; divergent_retries: number }>()
          ).results,
      ),
    )
  )
    .flat()
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

describe("ids from signed bytes", () => {
  it("every event of one order shares one id range in one shard, and no provider-id index entry is written", async () => {
    const orderIds: string[] = [];
    for (const shard of [0, 1]) {
      const orderId = await orderIn(shard);
      orderIds.push(orderId);
      const ids = [];
      for (const name of ["weedmaps/create", "weedmaps/in-progress", "weedmaps/complete"])
        ids.push((await ingest(name, orderId)).eventId);
      const prefix = `evt_${shard}_${(await objectDigest("weedmaps", orderId)).slice(0, 8)}`;
      expect(new Set(ids).size).toBe(3);
      for (const id of ids) {
        expect(id.startsWith(prefix)).toBe(true);
        expect(shardOfEventId(id)).toBe(shard);
        expect(await dbOfEvent(id).prepare("SELECT COUNT(*) AS n FROM events WHERE id = ?1").bind(id).first("n")).toBe(
          1,
        );
      }
    }
    const orderId = newOrder();
    const ids = [(await ingest("weedmaps/create", orderId)).eventId];
    // The URL's merchant does not enter the id: the same body under another URL merchant is the same event.
    const other = await post(`/webhooks/weedmaps?merchant_id=9999`, bodyOf("weedmaps/create", orderId), {
      Signature: await weedmapsSignature(bodyOf("weedmaps/create", orderId)),
    });
    expect((await other.json<{ eventId: string }>()).eventId).toBe(ids[0]);
    // The partial index holds only ids of the earlier form: none of these, in any shard.
    for (const db of SHARDS)
      for (const id of [...orderIds, orderId]) {
        const indexed = await db
          .prepare(
            "SELECT COUNT(*) AS n FROM events INDEXED BY events_provider_id_earlier WHERE length(id) = 36 AND provider_id = ?1",
          )
          .bind(id)
          .first<number>("n");
        expect(indexed).toBe(0);
      }
  });
});

describe("an event stored under its earlier id (before migration 0012)", () => {
  it("a retry within the retry window is a duplicate of it, answered with that id; other bytes count as divergent", async () => {
    const orderId = newOrder();
    const earlier = await asStoredBefore((await ingest("weedmaps/create", orderId)).eventId);
    expect(shardOfEventId(earlier)).toBe(0);

    const retry = await ingest("weedmaps/create", orderId);
    expect(retry).toMatchObject({ duplicate: true, eventId: earlier });
    expect(await rowsOf(orderId)).toEqual([{ id: earlier, divergent_retries: 0 }]);

    // Same identity (a Create is its order), other bytes: acknowledged as a duplicate, counted on the stored row.
    const changed = bodyOf("weedmaps/create", orderId).replace("Please text when ready.", "Call instead.");
    const res = await post("/webhooks/weedmaps?merchant_id=4242", changed, {
      Signature: await weedmapsSignature(changed),
    });
    expect(await res.json()).toMatchObject({ duplicate: true, eventId: earlier });
    expect(await rowsOf(orderId)).toEqual([{ id: earlier, divergent_retries: 1 }]);
  });

  it("after the retry window, the earlier id is no longer matched", async () => {
    const orderId = newOrder();
    const earlier = await asStoredBefore((await ingest("weedmaps/create", orderId)).eventId);
    const createdAt = await env.DB.prepare("SELECT MAX(created_at) AS at FROM shard_maps").first<number>("at");
    const worker = createWorker({ clock: new ManualClock(createdAt! + 48 * 3_600_000 + 60_000) });
    const ctx = { waitUntil: () => undefined, passThroughOnException: () => undefined, props: {} };
    const late = await ingest("weedmaps/create", orderId, (path, body) =>
      post(path, body, {}, async (request) => {
        request.headers.set("Signature", await weedmapsSignature(body));
        return worker.fetch(request as Parameters<typeof worker.fetch>[0], env, ctx as unknown as ExecutionContext);
      }),
    );
    expect(late.duplicate).toBe(false);
    expect(late.eventId).not.toBe(earlier);
    expect((await rowsOf(orderId)).map((r) => r.id).sort()).toEqual([earlier, late.eventId].sort());
  });

  it("is found by its order and purged with the order's newer events, in another shard", async () => {
    // The earlier id is in shard 0, the newer events of the order in shard 1: one order across two shards.
    const orderId = await orderIn(1);
    const earlier = await asStoredBefore((await ingest("weedmaps/create", orderId)).eventId);
    const { eventId: newer } = await ingest("weedmaps/in-progress", orderId);
    expect([shardOfEventId(earlier), shardOfEventId(newer)]).toEqual([0, 1]);

    const listed = await (await adminFetch("GET", `/events?orderId=${orderId}`)).json<{ events: { id: string }[] }>();
    expect(listed.events.map((e) => e.id).sort()).toEqual([earlier, newer].sort());
    const bySource = await (await adminFetch("GET", `/events?orderId=${orderId}&source=weedmaps`)).json<{
      events: { id: string }[];
    }>();
    expect(bySource.events.map((e) => e.id).sort()).toEqual([earlier, newer].sort());

    const purge = await adminFetch("POST", "/customer-data/purge", { providerOrderId: orderId, reason: "ticket 7" });
    expect(purge.status).toBe(200);
    const result = await purge.json<{ purged: string[]; auditId: string }>();
    expect(result.purged.sort()).toEqual([earlier, newer].sort());
    for (const db of SHARDS) {
      const left = await db
        .prepare("SELECT COUNT(*) AS n FROM events WHERE provider_id = ?1 AND payload_purged_at IS NULL")
        .bind(orderId)
        .first<number>("n");
      expect(left).toBe(0);
    }
    // The audit entry names every purged id, of both shards.
    const detail = await env.DB.prepare("SELECT detail FROM audit_log WHERE id = ?1")
      .bind(result.auditId)
      .first<string>("detail");
    expect((JSON.parse(detail!).purged as string[]).sort()).toEqual([earlier, newer].sort());
  });
});

describe("cost", () => {
  it("an order's search and its purge read through keys and the partial index, in every shard: no statement scans events", async () => {
    // An order across both shards: its earlier id in shard 0, its newer event in shard 1.
    const orderId = await orderIn(1);
    await asStoredBefore((await ingest("weedmaps/create", orderId)).eventId);
    await ingest("weedmaps/in-progress", orderId);
    const seen: { db: D1Database; sql: string; params: unknown[] }[] = [];
    const capture = (db: D1Database) =>
      interceptPrepare(db, (sql, real) => {
        const statement = real(sql);
        return new Proxy(statement, {
          get(s, p) {
            if (p === "bind")
              return (...params: unknown[]) => {
                seen.push({ db, sql, params });
                return s.bind(...params);
              };
            const value = Reflect.get(s, p);
            return typeof value === "function" ? value.bind(s) : value;
          },
        });
      });
    const worker = createWorker({ clock: new ManualClock(Date.now()) });
    const ctx = { waitUntil: () => undefined, passThroughOnException: () => undefined, props: {} };
    const call = (method: string, path: string, body?: unknown) =>
      worker.fetch(
        new Request(`https://router.example.test/admin${path}`, {
          method,
          headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
        }) as Parameters<typeof worker.fetch>[0],
        { ...env, DB: capture(env.DB), SHARD_1: capture(env.SHARD_1) } as Env,
        ctx as unknown as ExecutionContext,
      );
    expect((await call("GET", `/events?orderId=${orderId}`)).status).toBe(200);
    const purge = await call("POST", "/customer-data/purge", { providerOrderId: orderId });
    expect(purge.status).toBe(200);
    expect((await purge.json<{ purged: string[] }>()).purged).toHaveLength(2);
    const reads = seen.filter(({ sql }) => /\bFROM events\b/.test(sql));
    // Both shards are read, each through its own ranges.
    for (const db of SHARDS) expect(reads.filter((r) => r.db === db).length).toBeGreaterThanOrEqual(2);
    for (const { db, sql, params } of reads) {
      const plan = await db
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .bind(...params)
        .all<{ detail: string }>();
      const details = plan.results.map((r) => r.detail);
      expect(
        details.filter((d) => /^SCAN (e|events)\b/.test(d)),
        `${sql}\n${details.join("\n")}`,
      ).toEqual([]);
    }
  });
});
