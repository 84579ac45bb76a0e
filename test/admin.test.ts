import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ERROR_CODES } from "../src/core/errors.ts";
import { shardOfEventId } from "../src/core/event-id.ts";
import type { DeliveryMessage, ReplayPageMessage } from "../src/core/messages.ts";
import {
  adminFetch,
  captureDeliveryQueue,
  dbOfEvent,
  deliveriesOf,
  fixture,
  post,
  postWeedmaps,
  runDeliveryQueue,
  stubDestinations,
} from "./helpers.ts";

let queue: ReturnType<typeof captureDeliveryQueue>;
beforeEach(() => {
  queue = captureDeliveryQueue();
});
afterEach(() => vi.restoreAllMocks());

async function adminJson<T = Record<string, unknown>>(
  method: string,
  path: string,
  body?: unknown,
  expected = 200,
): Promise<T> {
  const res = await adminFetch(method, path, body);
  const text = await res.text();
  expect(res.status, text).toBe(expected);
  return JSON.parse(text) as T;
}

let counter = 0;
async function ingestLab(
  kind: string,
  extra: Record<string, unknown> = {},
): Promise<{ eventId: string; message: DeliveryMessage }> {
  const res = await post(`/webhooks/lab/${kind}`, JSON.stringify({ id: `adm-${++counter}`, kind, ...extra }));
  const { eventId } = await res.json<{ eventId: string }>();
  const message = queue.messages.find((m) => m.body.eventId === eventId)?.body as DeliveryMessage;
  return { eventId, message };
}

/** Runs the consumer over whatever the Worker enqueued until nothing is left, as the real queue would. */
async function drainQueue(maxRounds = 20): Promise<void> {
  for (let round = 0; round < maxRounds; round++) {
    const pending = queue.messages.splice(0).map((m) => m.body);
    if (pending.length === 0) return;
    await runDeliveryQueue(pending);
  }
  throw new Error("queue did not drain");
}

const invalidRequest = (details: unknown) => ({
  error: { code: "invalid_request", message: expect.any(String), requestId: expect.any(String), details },
});

describe("GET /admin/events", () => {
  it("lists newest first and filters by source, event type, merchant, order id, status and time", async () => {
    stubDestinations((request) =>
      request.url.includes("pos.") ? new Response("gone", { status: 422 }) : new Response("ok"),
    );
    const before = new Date(Date.now() - 1).toISOString();
    const body = fixture("weedmaps/create").body.replace("9763822", "list-order-1");
    const created = await (await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", body)).json<{ eventId: string }>();
    await drainQueue();
    const single = await ingestLab("unmatched-kind");

    const all = await adminJson<{ events: { id: string }[] }>("GET", `/events?since=${encodeURIComponent(before)}`);
    expect(all.events.map((e) => e.id)).toEqual([single.eventId, created.eventId]);

    const byOrder = await adminJson<{ events: Record<string, unknown>[] }>("GET", "/events?orderId=list-order-1");
    expect(byOrder.events).toEqual([
      {
        id: created.eventId,
        source: "weedmaps",
        eventType: "create",
        merchantId: "4242",
        providerOrderId: "list-order-1",
        routing: "routed",
        receivedAt: expect.any(String),
        providerTimestamp: "2026-11-23T17:05:43.000Z",
        deliveries: { pending: 0, delivered: 1, failing: 0, dead: 1, stale: 0 },
        quarantine: null,
        divergentRetries: 0,
      },
    ]);
    expect(
      (
        await adminJson<{ events: { id: string }[] }>(
          "GET",
          "/events?status=dead&source=weedmaps&merchantId=4242&eventType=create",
        )
      ).events.map((e) => e.id),
    ).toContain(created.eventId);
    expect(
      (await adminJson<{ events: { id: string }[] }>("GET", "/events?status=delivered")).events.map((e) => e.id),
    ).not.toContain(created.eventId);
    expect(
      (await adminJson<{ events: { id: string }[] }>("GET", "/events?status=unrouted")).events.map((e) => e.id),
    ).toContain(single.eventId);
    expect(
      (
        await adminJson<{ events: unknown[] }>(
          "GET",
          `/events?until=${encodeURIComponent(before)}&orderId=list-order-1`,
        )
      ).events,
    ).toEqual([]);
  });

  it("rejects bad filters with the field named", async () => {
    expect(await adminJson("GET", "/events?limit=0&status=lost", undefined, 400)).toEqual(
      invalidRequest(expect.arrayContaining([expect.stringMatching(/^limit:/), expect.stringMatching(/^status:/)])),
    );
    expect(await adminJson("GET", "/events?since=yesterday", undefined, 400)).toEqual(
      invalidRequest([expect.stringMatching(/^since:/)]),
    );
    expect(await adminJson("GET", "/events?cursor=bm90LWEtY3Vyc29y", undefined, 400)).toEqual(
      invalidRequest(["cursor: is not a cursor this API issued"]),
    );
  });

  it("paginates without skipping or repeating an event while new events arrive", async () => {
    const marker = `page-${Date.now()}`;
    const original: string[] = [];
    for (let i = 0; i < 23; i++) original.push((await ingestLab("unmatched-kind", { marker, i })).eventId);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { events: { id: string }[]; nextCursor: string | null } = await adminJson(
        "GET",
        `/events?source=lab&limit=5${cursor ? `&cursor=${cursor}` : ""}`,
      );
      seen.push(...page.events.map((e) => e.id));
      cursor = page.nextCursor;
      await ingestLab("unmatched-kind", { marker, arrivedDuringPaging: true });
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining(original));
  });
});

describe("GET /admin/events/{eventId}", () => {
  it("shows metadata, the payload and every attempt of every delivery", async () => {
    let calls = 0;
    stubDestinations(() => (++calls === 1 ? new Response("busy", { status: 503 }) : new Response("ok")));
    const { eventId, message } = await ingestLab("single");
    await runDeliveryQueue([message]);
    await runDeliveryQueue([message], 2);
    const detail = await adminJson<{ event: Record<string, unknown>; deliveries: Record<string, unknown>[] }>(
      "GET",
      `/events/${eventId}`,
    );
    expect(detail.event).toMatchObject({
      id: eventId,
      source: "lab",
      eventType: "single",
      contentType: "application/json",
      payload: { encoding: "utf8", data: expect.stringContaining('"kind":"single"') },
    });
    expect(detail.deliveries).toEqual([
      expect.objectContaining({
        destination: "pos",
        generation: 1,
        status: "delivered",
        attempts: 2,
        attemptLog: [
          expect.objectContaining({
            attempt: 1,
            statusCode: 503,
            errorClass: "http_503",
            // Text with no customer data in it: shown as it came (src/core/response-view.ts).
            responseExcerpt: "busy",
          }),
          expect.objectContaining({ attempt: 2, statusCode: 200, errorClass: null }),
        ],
      }),
    ]);
  });

  it("answers 404 for an unknown event and 400 for a malformed id", async () => {
    expect(await adminJson("GET", "/events/evt_00000000000000000000000000000000", undefined, 404)).toMatchObject({
      error: { code: "not_found" },
    });
    expect(await adminJson("GET", "/events/not-an-id", undefined, 400)).toEqual(
      invalidRequest([expect.stringMatching(/^eventId:/)]),
    );
  });
});

describe("POST /admin/events/{eventId}/replay", () => {
  it("replays a dead delivery as a new generation with the same webhook-id and a fresh attempt count", async () => {
    let healthy = false;
    const seen = stubDestinations(() => (healthy ? new Response("ok") : new Response("gone", { status: 422 })));
    const { eventId, message } = await ingestLab("single");
    await runDeliveryQueue([message]);
    expect((await deliveriesOf(eventId))[0]!.status).toBe("dead");

    healthy = true;
    queue.messages.length = 0;
    const replay = await adminJson("POST", `/events/${eventId}/replay`, {}, 202);
    expect(replay).toEqual({ eventId, deliveries: [{ destination: "pos", generation: 2 }], enqueued: true });
    await drainQueue();
    expect((await deliveriesOf(eventId)).map((d) => [d.generation, d.status])).toEqual([
      [1, "dead"],
      [2, "delivered"],
    ]);
    const [first, second] = seen.requests;
    expect(second!.headers.get("webhook-id")).toBe(first!.headers.get("webhook-id"));
    expect(second!.headers.get("x-router-attempt")).toBe("1");
  });

  it("supersedes a delivery still pending: its old message marks it dead instead of sending it twice", async () => {
    const seen = stubDestinations(() => new Response("ok"));
    const { eventId, message } = await ingestLab("single");
    queue.messages.length = 0;
    await adminJson("POST", `/events/${eventId}/replay`, {}, 202);
    await runDeliveryQueue([message]);
    expect(seen.requests).toHaveLength(0);
    await drainQueue();
    expect(seen.requests).toHaveLength(1);
    expect((await deliveriesOf(eventId)).map((d) => [d.generation, d.status, d.last_error])).toEqual([
      [1, "dead", "superseded_by_replay"],
      [2, "delivered", null],
    ]);
  });

  it("keeps a replay's message in the outbox when the queue is down", async () => {
    const { eventId } = await ingestLab("single");
    vi.mocked(env.DELIVERY_QUEUE.sendBatch).mockRejectedValueOnce(new Error("queue unavailable"));
    expect(await adminJson("POST", `/events/${eventId}/replay`, {}, 202)).toEqual({
      eventId,
      deliveries: [{ destination: "pos", generation: 2 }],
      enqueued: false,
    });
    // Kept in the event's own shard, where that shard's sweeper finds it.
    const row = await dbOfEvent(eventId)
      .prepare("SELECT message FROM outbox WHERE message ->> 'eventId' = ?1")
      .bind(eventId)
      .first<{ message: string }>();
    expect(JSON.parse(row!.message)).toEqual({ v: 1, eventId, deliveries: [{ destination: "pos", generation: 2 }] });
  });

  it("replays only the destinations named", async () => {
    stubDestinations(() => new Response("ok"));
    const { eventId, message } = await ingestLab("pair");
    await runDeliveryQueue([message]);
    const replay = await adminJson<{ deliveries: unknown[] }>(
      "POST",
      `/events/${eventId}/replay`,
      { destinations: ["erp"] },
      202,
    );
    expect(replay.deliveries).toEqual([{ destination: "erp", generation: 2 }]);
  });

  it("refuses a destination that has since been disabled, or is not configured, and an unknown event", async () => {
    const { eventId } = await ingestLab("paused");
    expect(await adminJson("POST", `/events/${eventId}/replay`, { destinations: ["paused"] }, 409)).toEqual({
      error: {
        code: "destination_disabled",
        message: 'Destination "paused" is disabled in the active configuration.',
        requestId: expect.any(String),
      },
    });
    expect(await adminJson("POST", `/events/${eventId}/replay`, { destinations: ["nowhere"] }, 422)).toMatchObject({
      error: { code: "unknown_destination" },
    });
    expect(await adminJson("POST", "/events/evt_00000000000000000000000000000000/replay", {}, 404)).toMatchObject({
      error: { code: "not_found" },
    });
    const unrouted = await ingestLab("unmatched-kind");
    expect(await adminJson("POST", `/events/${unrouted.eventId}/replay`, {}, 409)).toMatchObject({
      error: { code: "no_destinations" },
    });
    expect(await adminJson("POST", `/events/${eventId}/replay`, { destinations: [] }, 400)).toMatchObject({
      error: { code: "invalid_request" },
    });
  });
});

describe("POST /admin/events/{eventId}/release", () => {
  async function quarantinedCreate(orderId: string): Promise<string> {
    const body = fixture("weedmaps/create").body.replace("9763822", orderId);
    const held = await (await postWeedmaps("/webhooks/weedmaps?merchant_id=9999", body)).json<{
      eventId: string;
      routing: string;
    }>();
    expect(held.routing).toBe("quarantined");
    return held.eventId;
  }

  it("lists a held event under status=quarantined, and release routes it with the signed merchant and delivers it", async () => {
    const seen = stubDestinations(() => new Response("ok"));
    const eventId = await quarantinedCreate("release-1");
    const listed = await adminJson<{ events: { id: string; quarantine: Record<string, unknown> | null }[] }>(
      "GET",
      "/events?status=quarantined&orderId=release-1",
    );
    expect(listed.events).toEqual([
      expect.objectContaining({
        id: eventId,
        merchantId: "4242",
        quarantine: {
          reason: "merchant_mismatch",
          detail: "the URL names another merchant than the signed seller.id (route wm-create)",
          field: "seller.id",
          route: "wm-create",
          queryMerchant: "9999",
          signedMerchant: "4242",
          at: expect.any(String),
          releasedAt: null,
        },
      }),
    ]);
    queue.messages.length = 0;
    const released = await adminJson("POST", `/events/${eventId}/release`, undefined, 202);
    expect(released).toEqual({
      eventId,
      merchantId: "4242",
      deliveries: [
        { destination: "pos", route: "wm-create" },
        { destination: "erp", route: "wm-create" },
      ],
      enqueued: true,
    });
    await drainQueue();
    expect(seen.requests.map((r) => [new URL(r.url).hostname, r.headers.get("x-router-merchant-id")]).sort()).toEqual([
      ["erp.example.test", "4242"],
      ["pos.example.test", "4242"],
    ]);
    expect((await deliveriesOf(eventId)).map((d) => d.status)).toEqual(["delivered", "delivered"]);
    expect(
      (await adminJson<{ events: unknown[] }>("GET", "/events?status=quarantined&orderId=release-1")).events,
    ).toEqual([]);
    const detail = await adminJson<{ event: { quarantine: { releasedAt: string | null } } }>(
      "GET",
      `/events/${eventId}`,
    );
    expect(detail.event.quarantine.releasedAt).toEqual(expect.any(String));
  });

  it("refuses to replay a held event: only its release routes it", async () => {
    const eventId = await quarantinedCreate("release-3");
    expect(await adminJson("POST", `/events/${eventId}/replay`, { destinations: ["pos"] }, 409)).toEqual({
      error: { code: "event_quarantined", message: expect.any(String), requestId: expect.any(String) },
    });
    expect(await deliveriesOf(eventId)).toEqual([]);
  });

  it("answers 409 for an event that is not held, or was released already, and 404 for an unknown one", async () => {
    const eventId = await quarantinedCreate("release-2");
    await adminJson("POST", `/events/${eventId}/release`, undefined, 202);
    expect(await adminJson("POST", `/events/${eventId}/release`, undefined, 409)).toEqual({
      error: { code: "not_quarantined", message: expect.any(String), requestId: expect.any(String) },
    });
    const { eventId: plain } = await ingestLab("single");
    expect(await adminJson("POST", `/events/${plain}/release`, undefined, 409)).toMatchObject({
      error: { code: "not_quarantined" },
    });
    expect(
      await adminJson("POST", "/events/evt_00000000000000000000000000000000/release", undefined, 404),
    ).toMatchObject({ error: { code: "not_found" } });
  });

  it("shows a divergent retry of a Create on the event", async () => {
    const body = fixture("weedmaps/create").body.replace("9763822", "divergent-1");
    const { eventId } = await (await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", body)).json<{
      eventId: string;
    }>();
    await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", JSON.stringify(JSON.parse(body), null, 2));
    const detail = await adminJson<{ event: Record<string, unknown> }>("GET", `/events/${eventId}`);
    expect(detail.event).toMatchObject({
      divergentRetries: 1,
      lastDivergentRetry: { at: expect.any(String), bodySha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
    });
  });
});

describe("bulk replay and dead letters", () => {
  const window = (since: string) => ({ since, until: new Date(Date.now() + 60_000).toISOString() });

  /**
   * `count` events whose one delivery (to conflicty, which answers 422 here) is dead, or more until each shard holds
   * `perShard` of them; returns when they began, and the events.
   */
  async function deadConflicts(count: number, perShard = 0): Promise<{ since: string; events: string[] }> {
    stubDestinations(() => new Response("gone", { status: 422 }));
    const since = new Date().toISOString();
    const messages: DeliveryMessage[] = [];
    const events: string[] = [];
    const inShard = (shard: number) => events.filter((id) => shardOfEventId(id) === shard).length;
    while (events.length < count || (events.length < 60 && [0, 1].some((shard) => inShard(shard) < perShard))) {
      const { eventId, message } = await ingestLab("conflict");
      events.push(eventId);
      messages.push(message);
    }
    await runDeliveryQueue(messages);
    return { since, events };
  }

  /** The generations of each event's conflicty delivery: [1, 2] once replayed once. */
  const conflictyGenerations = async (events: string[]) =>
    Promise.all(
      events.map(async (id) =>
        (await deliveriesOf(id)).filter((d) => d.destination === "conflicty").map((d) => d.generation),
      ),
    );

  it("replays a few hundred dead deliveries as a job, in pages through the queue, until all are delivered", async () => {
    let healthy = false;
    stubDestinations((request) =>
      request.url.includes("erp.") && !healthy ? new Response("down", { status: 422 }) : new Response("ok"),
    );
    const since = new Date().toISOString();
    const events: string[] = [];
    const messages: DeliveryMessage[] = [];
    for (let i = 0; i < 240; i++) {
      const { eventId, message } = await ingestLab("pair");
      events.push(eventId);
      messages.push(message);
    }
    queue.messages.length = 0;
    await runDeliveryQueue(messages);

    const dead = await adminJson<{ deliveries: { destination: string }[]; nextCursor: string | null }>(
      "GET",
      `/dead-letters?destination=erp&since=${encodeURIComponent(since)}&limit=200`,
    );
    expect(dead.deliveries).toHaveLength(200);
    expect(dead.nextCursor).not.toBeNull();

    healthy = true;
    queue.messages.length = 0;
    const started = await adminJson<{ matched: number; replayId: string; state: string }>(
      "POST",
      "/replays",
      { status: "dead", destination: "erp", ...window(since), maxCount: 1000 },
      202,
    );
    expect(started).toMatchObject({ matched: 240, state: "running", replayed: 0, maxCount: 1000 });
    expect(queue.messages.map((m) => m.body as unknown as ReplayPageMessage)).toEqual([
      { v: 1, kind: "replay-page", replayId: started.replayId, shard: 0, after: null },
    ]);
    await drainQueue();

    const rows = (await Promise.all(events.map((id) => deliveriesOf(id)))).flat();
    const erp = rows.filter((r) => r.destination === "erp");
    expect(erp.filter((r) => r.generation === 2 && r.status === "delivered")).toHaveLength(240);
    expect(erp.filter((r) => r.generation === 1 && r.status === "dead")).toHaveLength(240);
    expect(
      rows.filter((r) => r.destination === "pos").every((r) => r.generation === 1 && r.status === "delivered"),
    ).toBe(true);
    expect(
      (
        await adminJson<{ deliveries: unknown[] }>(
          "GET",
          `/dead-letters?destination=erp&since=${encodeURIComponent(since)}`,
        )
      ).deliveries,
    ).toEqual([]);
    const job = await adminJson<{ state: string; replayed: number; scanned: number }>(
      "GET",
      `/replays/${started.replayId}`,
    );
    expect(job).toMatchObject({ state: "done", replayed: 240, error: null });
    // Each event of the window was read once by the walk, not once per page.
    expect(job.scanned).toBe(240);
  }, 60_000);

  it("requires a window and a maxCount, and stops at maxCount", async () => {
    const { since } = await deadConflicts(5);
    for (const body of [
      { status: "dead" },
      { status: "dead", since },
      { status: "dead", ...window(since) },
      { status: "dead", ...window(since), maxCount: 0 },
    ]) {
      expect(await adminJson("POST", "/replays", body, 400)).toMatchObject({ error: { code: "invalid_request" } });
    }
    expect(
      await adminJson("POST", "/replays", { status: "dead", since, until: since, maxCount: 5 }, 400),
    ).toMatchObject({ error: { code: "invalid_request", details: [expect.stringMatching(/^until:/)] } });
    queue.messages.length = 0;
    const started = await adminJson<{ replayId: string }>(
      "POST",
      "/replays",
      { status: "dead", destination: "conflicty", ...window(since), maxCount: 3 },
      202,
    );
    await drainQueue();
    expect(await adminJson("GET", `/replays/${started.replayId}`)).toMatchObject({ state: "done", replayed: 3 });
  });

  it("replays nothing twice when a page runs again, and stops a cancelled job at its next page", async () => {
    const { since, events } = await deadConflicts(4);
    queue.messages.length = 0;
    const first = await adminJson<{ replayId: string }>(
      "POST",
      "/replays",
      { status: "dead", destination: "conflicty", ...window(since), maxCount: 100 },
      202,
    );
    const [page] = queue.messages.map((m) => m.body);
    // The first page, twice before the job moves on (Queues delivers at least once): the second copy is not where
    // the job stands, so it replays nothing.
    await runDeliveryQueue([page]);
    await runDeliveryQueue([page]);
    // The job's further pages (the next shard), leaving the replayed deliveries pending.
    for (let round = 0; round < 10; round++) {
      const pages = queue.messages.filter((m) => "kind" in m.body && m.body.kind === "replay-page").map((m) => m.body);
      queue.messages.length = 0;
      if (pages.length === 0) break;
      await runDeliveryQueue(pages);
    }
    expect(await adminJson("GET", `/replays/${first.replayId}`)).toMatchObject({ state: "done", replayed: 4 });
    // The same page again once the job is done: nothing either.
    await runDeliveryQueue([page]);
    expect(await adminJson("GET", `/replays/${first.replayId}`)).toMatchObject({ replayed: 4 });
    expect(await conflictyGenerations(events)).toEqual(events.map(() => [1, 2]));

    queue.messages.length = 0;
    const second = await adminJson<{ replayId: string }>(
      "POST",
      "/replays",
      { status: "pending", destination: "conflicty", ...window(since), maxCount: 100 },
      202,
    );
    expect(await adminJson("POST", `/replays/${second.replayId}/cancel`, undefined, 200)).toMatchObject({
      state: "cancelled",
    });
    await drainQueue();
    expect(await adminJson("GET", `/replays/${second.replayId}`)).toMatchObject({ state: "cancelled", replayed: 0 });
    expect(await adminJson("POST", `/replays/${second.replayId}/cancel`, undefined, 409)).toMatchObject({
      error: { code: "replay_not_running" },
    });
    expect(await adminJson("GET", "/replays/rpl_00000000000000000000000000000000", undefined, 404)).toMatchObject({
      error: { code: "not_found" },
    });
  });

  it("walks every shard: replays each match once, counts them all, and bounds the whole job by maxCount", async () => {
    const { since, events } = await deadConflicts(0, 2);
    const inShard = (shard: number) => events.filter((id) => shardOfEventId(id) === shard);
    expect(inShard(0).length).toBeGreaterThanOrEqual(2);
    expect(inShard(1).length).toBeGreaterThanOrEqual(2);
    queue.messages.length = 0;
    const all = await adminJson<{ matched: number; replayId: string }>(
      "POST",
      "/replays",
      { status: "dead", destination: "conflicty", ...window(since), maxCount: 1000 },
      202,
    );
    // Counted in both shards.
    expect(all.matched).toBe(events.length);
    // The first page starts at the first shard; each shard read to its end hands over to the next.
    await drainQueue();
    expect(await adminJson("GET", `/replays/${all.replayId}`)).toMatchObject({
      state: "done",
      replayed: events.length,
      scanned: events.length,
      error: null,
    });
    expect(await conflictyGenerations(events)).toEqual(events.map(() => [1, 2]));

    // Dead again (conflicty still answers 422). A bound one past shard 0's matches: all of those, and one of shard 1.
    queue.messages.length = 0;
    const bounded = await adminJson<{ matched: number; replayId: string }>(
      "POST",
      "/replays",
      { status: "dead", destination: "conflicty", ...window(since), maxCount: inShard(0).length + 1 },
      202,
    );
    expect(bounded.matched).toBe(events.length);
    await drainQueue();
    expect(await adminJson("GET", `/replays/${bounded.replayId}`)).toMatchObject({
      state: "done",
      replayed: inShard(0).length + 1,
    });
    const generations = await conflictyGenerations(events);
    const thrice = (ids: string[]) => ids.filter((id) => generations[events.indexOf(id)]!.join(",") === "1,2,3").length;
    expect(thrice(inShard(0))).toBe(inShard(0).length);
    expect(thrice(inShard(1))).toBe(1);
    expect(generations.every((g) => ["1,2", "1,2,3"].includes(g.join(",")))).toBe(true);
  });

  it("redrives dead letters from the page the endpoint enqueued, and refuses a disabled destination", async () => {
    stubDestinations(() => new Response("gone", { status: 422 }));
    const since = new Date().toISOString();
    const { eventId, message } = await ingestLab("conflict");
    await runDeliveryQueue([message]);
    queue.messages.length = 0;
    const result = await adminJson<{ matched: number; replayId: string }>(
      "POST",
      "/dead-letters/redrive",
      { destination: "conflicty", ...window(since), maxCount: 10 },
      202,
    );
    expect(result.matched).toBeGreaterThanOrEqual(1);
    // The page the endpoint enqueued, run by the consumer as Queues would.
    expect(queue.messages.map((m) => m.body)).toEqual([
      { v: 1, kind: "replay-page", replayId: result.replayId, shard: 0, after: null },
    ]);
    vi.mocked(globalThis.fetch).mockRestore();
    stubDestinations(() => new Response("ok"));
    await drainQueue();
    expect((await deliveriesOf(eventId)).at(-1)).toMatchObject({ generation: 2, status: "delivered" });
    expect(
      await adminJson("POST", "/dead-letters/redrive", { destination: "paused", ...window(since), maxCount: 10 }, 409),
    ).toMatchObject({ error: { code: "destination_disabled" } });
    expect(await adminJson("POST", "/replays", { status: "lost", ...window(since), maxCount: 10 }, 400)).toMatchObject({
      error: { code: "invalid_request" },
    });
  });
});

describe("GET /admin/destinations/health", () => {
  it("counts delivered, failing and dead per destination with the last error and last success", async () => {
    type Health = {
      name: string;
      configured: boolean;
      enabled: boolean;
      delivered: number;
      failing: number;
      dead: number;
      pending: number;
      lastSuccessAt: string | null;
      lastError: string | null;
    };
    const health = async () =>
      Object.fromEntries(
        (await adminJson<{ destinations: Health[] }>("GET", "/destinations/health?windowHours=1")).destinations.map(
          (d) => [d.name, d],
        ),
      );
    stubDestinations((request) =>
      request.url.includes("d03.")
        ? new Response("no", { status: 503 })
        : request.url.includes("d05.")
          ? new Response("gone", { status: 422 })
          : new Response("ok"),
    );
    const { message } = await ingestLab("ten");
    // Counted from before the event was delivered: other tests of this file deliver to these destinations too.
    const before = await health();
    expect(before.d01!.pending).toBeGreaterThanOrEqual(1);
    await runDeliveryQueue([message]);
    const after = await health();
    const change = (name: string) => {
      const [b, a] = [before[name]!, after[name]!];
      return {
        delivered: a.delivered - b.delivered,
        failing: a.failing - b.failing,
        dead: a.dead - b.dead,
        pending: a.pending - b.pending,
      };
    };
    expect(change("d01")).toEqual({ delivered: 1, failing: 0, dead: 0, pending: -1 });
    expect(change("d03")).toEqual({ delivered: 0, failing: 1, dead: 0, pending: -1 });
    expect(change("d05")).toEqual({ delivered: 0, failing: 0, dead: 1, pending: -1 });
    expect(after.d01).toMatchObject({ configured: true, enabled: true, lastSuccessAt: expect.any(String) });
    expect(after.d03).toMatchObject({ lastError: "http_503" });
    expect(after.d05).toMatchObject({ lastError: "http_422 (permanent)" });
    expect(after.paused).toMatchObject({
      configured: true,
      enabled: false,
      delivered: 0,
      failing: 0,
      dead: 0,
      pending: 0,
    });
    // Read through the received_at index, bounded, and saying so.
    expect(await adminJson("GET", "/destinations/health?windowHours=1")).toMatchObject({
      complete: true,
      looked: expect.any(Number),
    });
    expect(await adminJson("GET", "/destinations/health?windowHours=0", undefined, 400)).toMatchObject({
      error: { code: "invalid_request" },
    });
  });

  it("counts a replayed delivery once, as its latest generation, and keeps the destination's real last error", async () => {
    const health = async () =>
      Object.fromEntries(
        (
          await adminJson<{
            destinations: { name: string; delivered: number; dead: number; lastError: string | null }[];
          }>("GET", "/destinations/health?windowHours=1")
        ).destinations.map((d) => [d.name, d]),
      );
    let healthy = false;
    stubDestinations((request) =>
      request.url.includes("d07.") && !healthy ? new Response("gone", { status: 422 }) : new Response("ok"),
    );
    const { eventId, message } = await ingestLab("ten");
    await runDeliveryQueue([message]);
    const before = (await health()).d07!;
    expect(before.lastError).toBe("http_422 (permanent)");

    healthy = true;
    await adminJson("POST", `/events/${eventId}/replay`, { destinations: ["d07"] }, 202);
    await drainQueue();
    const after = (await health()).d07!;
    expect([after.dead, after.delivered]).toEqual([before.dead - 1, before.delivered + 1]);
    expect(after.lastError).toBe("http_422 (permanent)");
  });
});

describe("POST /admin/routing/dry-run", () => {
  it("says which routes match and why, and writes nothing", async () => {
    // Rows in either table, plus every write to an event's delivery state, in every shard.
    const count = async () => {
      const counts = await Promise.all(
        [env.DB, env.SHARD_1].map((db) =>
          db
            .prepare(
              "SELECT (SELECT COUNT(*) + COALESCE(SUM(version), 0) FROM events) + (SELECT COUNT(*) FROM outbox) AS n",
            )
            .first<number>("n"),
        ),
      );
      return counts.reduce<number>((sum, n) => sum + n!, 0);
    };
    const before = await count();
    const result = await adminJson("POST", "/routing/dry-run", {
      source: "weedmaps",
      merchantId: "4242",
      payload: JSON.parse(fixture("weedmaps/create").body),
    });
    expect(result).toMatchObject({
      eventType: "create",
      merchantId: "4242",
      deliveries: [
        { destination: "pos", route: "wm-create" },
        { destination: "erp", route: "wm-create" },
      ],
      responder: null,
      merchantMismatch: null,
    });
    expect(
      (result.routes as { route: string; matched: boolean; reason: string }[]).find((r) => r.route === "wm-draft"),
    ).toEqual({
      route: "wm-draft",
      matched: false,
      reason: "event type create is not in [draft]",
    });
    const mismatch = await adminJson("POST", "/routing/dry-run", {
      source: "weedmaps",
      merchantId: "1",
      payload: JSON.parse(fixture("weedmaps/create").body),
    });
    expect(mismatch.merchantMismatch).toEqual({ route: "wm-create", field: "seller.id" });
    expect(mismatch).toMatchObject({
      deliveries: [],
      quarantine: {
        reason: "merchant_mismatch",
        field: "seller.id",
        route: "wm-create",
        queryMerchant: "1",
        signedMerchant: "4242",
      },
    });
    const envelope = await adminJson<{ events: { providerOrderId: string; merchantId: string }[] }>(
      "POST",
      "/routing/dry-run",
      {
        source: "leaftrade",
        eventType: "order-v4",
        payload: JSON.parse(fixture("leaftrade/order-v4--three-orders").body),
      },
    );
    expect(envelope.events.map((e) => [e.providerOrderId, e.merchantId])).toEqual([
      ["ord_abc201", "C10-0000456-LIC"],
      ["ord_abc202", "C10-0000789-LIC"],
      ["ord_abc203", "C10-0000456-LIC"],
    ]);
    expect(
      await adminJson(
        "POST",
        "/routing/dry-run",
        { source: "weedmaps", eventType: "draft", payload: JSON.parse(fixture("weedmaps/create").body) },
        422,
      ),
    ).toMatchObject({ error: { code: "event_type_mismatch" } });
    const paused = await adminJson("POST", "/routing/dry-run", { source: "lab", eventType: "paused", payload: {} });
    expect(paused.skippedDisabled).toEqual([{ destination: "paused", route: "lab-paused" }]);
    expect(await count()).toBe(before);
  });

  it("answers 404 for an unknown source and 400 without the Leaf Trade webhook type", async () => {
    expect(await adminJson("POST", "/routing/dry-run", { source: "nope", payload: {} }, 404)).toMatchObject({
      error: { code: "unknown_source" },
    });
    expect(await adminJson("POST", "/routing/dry-run", { source: "leaftrade", payload: {} }, 400)).toMatchObject({
      error: { code: "invalid_request" },
    });
  });
});

describe("configuration", () => {
  it("shows the active config with secrets by name only", async () => {
    const res = await adminFetch("GET", "/config");
    const text = await res.text();
    const body = JSON.parse(text);
    expect(body.origin).toBe("ROUTER_CONFIG");
    expect(body.secrets).toContainEqual({ name: "WEEDMAPS_CLIENT_SECRET", set: true });
    expect(body.secrets).toContainEqual({ name: "UNSET_SIGNING_SECRET", set: false });
    for (const name of ["WEEDMAPS_CLIENT_SECRET", "POS_SIGNING_SECRET", "POS_API_TOKEN", "ADMIN_TOKEN"] as const)
      expect(text).not.toContain(env[name]);
  });

  it("validates a proposed config without applying it, naming each bad field", async () => {
    const sample = JSON.parse(env.ROUTER_CONFIG);
    expect(await adminJson("POST", "/config/validate", sample)).toEqual({ valid: true, errors: [] });
    sample.routes[1].destinations.push("nowhere");
    sample.destinations.pos.url = "http://pos.internal/orders";
    const result = await adminJson<{ valid: boolean; errors: string[] }>("POST", "/config/validate", sample);
    expect(result.valid).toBe(false);
    expect(result.errors).toContain('routes[1].destinations[1]: unknown destination "nowhere"');
    expect(
      (await adminJson<{ config: { routes: { destinations: string[] }[] } }>("GET", "/config")).config.routes[1]!
        .destinations,
    ).not.toContain("nowhere");
    expect(await adminJson("POST", "/config/validate", [1, 2], 400)).toMatchObject({
      error: { code: "invalid_request" },
    });
  });
});

describe("OpenAPI", () => {
  it("serves an OpenAPI 3.1 document generated from the schemas, and a reference page", async () => {
    const doc = await adminJson<{
      openapi: string;
      paths: Record<string, unknown>;
      components: { securitySchemes: unknown };
    }>("GET", "/openapi.json");
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        "/audit",
        "/capacity",
        "/config",
        "/config/validate",
        "/customer-data/purge",
        "/dead-letters",
        "/dead-letters/redrive",
        "/destinations/health",
        "/destinations/{name}/enable",
        "/destinations/{name}/pause",
        "/destinations/{name}/resume",
        "/events",
        "/events/{eventId}",
        "/events/{eventId}/release",
        "/events/{eventId}/replay",
        "/keys",
        "/relay/{source}/orders/{orderId}",
        "/relay/{source}/orders/{orderId}/status",
        "/replays",
        "/replays/{replayId}",
        "/replays/{replayId}/cancel",
        "/routing/dry-run",
      ].sort(),
    );
    expect(doc.components.securitySchemes).toEqual({
      AdminToken: expect.objectContaining({ type: "http", scheme: "bearer" }),
    });
    // The page renders the document in the browser (test/admin.reference.test.ts); a token does no harm.
    const page = await adminFetch("GET", "/reference");
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(await page.text()).toContain("<title>Webhook router admin API</title>");
  });

  it("publishes the error code as the closed set of src/core/errors.ts", async () => {
    const doc = await adminJson<{
      components: { schemas: { Error: { properties: { error: { properties: { code: { enum: string[] } } } } } } };
    }>("GET", "/openapi.json");
    expect(doc.components.schemas.Error.properties.error.properties.code.enum).toEqual(Object.keys(ERROR_CODES));
  });
});
