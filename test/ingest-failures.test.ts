import { env } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { captureDeliveryQueue, deliveriesOf, fixture, postWeedmaps } from "./helpers";

// Storage is isolated per test file, so breaking the schema here affects no other file.
afterEach(() => vi.restoreAllMocks());

it("answers 503 when D1 fails at ingest, and acknowledges and enqueues nothing", async () => {
  const queue = captureDeliveryQueue();
  await env.DB.exec("ALTER TABLE deliveries RENAME TO deliveries_offline");
  try {
    const res = await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", fixture("weedmaps-create").body);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: { code: "storage_unavailable", message: expect.any(String), requestId: expect.any(String) } });
    expect(queue.messages).toEqual([]);
    // The event insert was in the same transaction as the failed delivery insert, so it rolled back too.
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM events").first("n")).toBe(0);
  } finally {
    await env.DB.exec("ALTER TABLE deliveries_offline RENAME TO deliveries");
  }
  // Once D1 is back, the provider's retry is accepted as a new event, not a duplicate.
  const retry = await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", fixture("weedmaps-create").body);
  expect(await retry.json()).toMatchObject({ duplicate: false, deliveries: 2, enqueued: true });
});

it("answers 200 when the queue send fails after the commit, leaving the deliveries pending for the sweeper", async () => {
  vi.spyOn(env.DELIVERY_QUEUE, "sendBatch").mockRejectedValue(new Error("queue unavailable"));
  const body = fixture("weedmaps-create").body.replace("9763822", "queue-down-1");
  const res = await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", body);
  expect(res.status).toBe(200);
  const json = await res.json<{ eventId: string; enqueued: boolean }>();
  expect(json.enqueued).toBe(false);
  expect((await deliveriesOf(json.eventId)).map((d) => [d.destination, d.status])).toEqual([
    ["erp", "pending"],
    ["pos", "pending"],
  ]);
});
