import { env } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { loadConfig } from "../src/config/load.ts";
import { sweepOverdue, SWEEP_GRACE_MS } from "../src/delivery/sweeper.ts";
import {
  captureDeliveryQueue,
  dbOfEvent,
  deliveriesOf,
  fixture,
  postWeedmaps,
  runDeliveryQueue,
  stubDestinations,
} from "./helpers.ts";

// Storage is isolated per test file, so breaking the schema here affects no other file.
afterEach(() => vi.restoreAllMocks());

/** Both shards of the test config: an event goes to one of them by its order. */
const shards = [env.DB, env.SHARD_1];

const eventCount = async () => {
  let n = 0;
  for (const db of shards) n += (await db.prepare("SELECT COUNT(*) AS n FROM events").first<number>("n"))!;
  return n;
};
const outboxCount = async (eventId: string) =>
  (await dbOfEvent(eventId)
    .prepare("SELECT COUNT(*) AS n FROM outbox WHERE message ->> 'eventId' = ?1")
    .bind(eventId)
    .first<number>("n"))!;

/** Takes a table offline in every shard while `run` runs. */
async function offline<T>(table: string, run: () => Promise<T>): Promise<T> {
  for (const db of shards) await db.exec(`ALTER TABLE ${table} RENAME TO ${table}_offline`);
  try {
    return await run();
  } finally {
    for (const db of shards) await db.exec(`ALTER TABLE ${table}_offline RENAME TO ${table}`);
  }
}

it("answers 503 when D1 fails at ingest; the message sent meanwhile delivers nothing, and the retry is a new event", async () => {
  const queue = captureDeliveryQueue();
  const seen = stubDestinations(() => new Response("ok"));
  const body = fixture("weedmaps/create").body.replace("9763822", "d1-down-1");
  const before = await eventCount();
  const res = await offline("events", () => postWeedmaps("/webhooks/weedmaps?merchant_id=4242", body));
  expect(res.status).toBe(503);
  expect(await res.json()).toEqual({
    error: { code: "storage_unavailable", message: expect.any(String), requestId: expect.any(String) },
  });
  expect(await eventCount()).toBe(before);

  // The queue send ran beside the failed insert. Its consumer waits for the insert to commit, then lets it go.
  const [orphan] = queue.messages.map((m) => m.body);
  expect(orphan).toMatchObject({ ingestId: expect.any(String) });
  const early = await runDeliveryQueue([orphan], 1);
  expect(early.result.retryMessages).toEqual([{ msgId: early.ids[0], delaySeconds: 2 }]);
  const late = await runDeliveryQueue([orphan], 5);
  expect(late.result.explicitAcks).toEqual(late.ids);
  expect(seen.requests).toEqual([]);

  // Once D1 is back, the provider's retry is accepted as a new event, not a duplicate.
  const retry = await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", body);
  expect(await retry.json()).toMatchObject({ duplicate: false, deliveries: 2, enqueued: true });
});

it("answers 200 when only the queue send fails, keeping the message in the outbox for the sweeper", async () => {
  vi.spyOn(env.DELIVERY_QUEUE, "sendBatch").mockRejectedValue(new Error("queue unavailable"));
  const body = fixture("weedmaps/create").body.replace("9763822", "queue-down-1");
  const res = await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", body);
  expect(res.status).toBe(200);
  const json = await res.json<{ eventId: string; enqueued: boolean }>();
  expect(json.enqueued).toBe(false);
  expect((await deliveriesOf(json.eventId)).map((d) => [d.destination, d.status])).toEqual([
    ["erp", "pending"],
    ["pos", "pending"],
  ]);
  expect(await outboxCount(json.eventId)).toBe(1);
  const row = await dbOfEvent(json.eventId)
    .prepare("SELECT message FROM outbox WHERE message ->> 'eventId' = ?1")
    .bind(json.eventId)
    .first<{ message: string }>();
  expect(JSON.parse(row!.message)).toMatchObject({
    v: 1,
    eventId: json.eventId,
    deliveries: expect.arrayContaining([{ destination: "pos", generation: 1 }]),
  });
});

it("keeps and acknowledges the event when the queue and the outbox both fail; the sweeper's walk re-enqueues it", async () => {
  const queue = captureDeliveryQueue();
  vi.mocked(env.DELIVERY_QUEUE.sendBatch).mockRejectedValueOnce(new Error("queue unavailable"));
  const body = fixture("weedmaps/create").body.replace("9763822", "queue-down-2");
  const res = await offline("outbox", () => postWeedmaps("/webhooks/weedmaps?merchant_id=4242", body));
  expect(res.status).toBe(200);
  const { eventId, enqueued } = await res.json<{ eventId: string; enqueued: boolean }>();
  expect(enqueued).toBe(false);
  expect(await outboxCount(eventId)).toBe(0);
  expect((await deliveriesOf(eventId)).map((d) => d.status)).toEqual(["pending", "pending"]);

  // The walk resumes from each shard's saved cursor: this one starts from the first event, whatever ran before it.
  for (const db of shards) await db.prepare("DELETE FROM sweeper_state").run();
  await sweepOverdue(env, loadConfig(env), Date.now() + SWEEP_GRACE_MS + 60_000);
  expect(queue.messages.map((m) => m.body)).toContainEqual({
    v: 1,
    eventId,
    deliveries: expect.arrayContaining([
      { destination: "pos", generation: 1 },
      { destination: "erp", generation: 1 },
    ]),
  });
});
