import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { IdentifyInput } from "../../src/core/providers/contract.ts";
import { leaftrade } from "../../src/core/providers/leaftrade.ts";
import {
  adminFetch,
  captureDeliveryQueue,
  dbOfEvent,
  deliveriesOf,
  expectIngested,
  fixture,
  hexSignature,
  identifierFor,
  post,
  runDeliveryQueue,
  storedPayloads,
  stubDestinations,
} from "../helpers.ts";

/** Events stored in every shard. */
async function eventCount(): Promise<number> {
  let n = 0;
  for (const db of [env.DB, env.SHARD_1])
    n += (await db.prepare("SELECT COUNT(*) AS n FROM events").first<number>("n"))!;
  return n;
}

afterEach(() => vi.restoreAllMocks());

const identifyResult = identifierFor(leaftrade);

function identify(overrides: Partial<IdentifyInput>) {
  const result = identifyResult(overrides);
  if (!result.ok) throw new Error(`${result.code}: ${result.detail}`);
  return result.events;
}

const body = (name: string) =>
  JSON.parse(fixture(`leaftrade/${name}`).body) as Record<string, unknown> & { results?: unknown[] };

async function postSigned(path: string, payload: string) {
  return post(path, payload, { "X-Signature": await hexSignature(payload, env.LEAFTRADE_WEBHOOK_SECRET as string) });
}

describe("Leaf Trade adapter", () => {
  it("identifies the guide's own Order V4 example, and minimal bodies of each type (id, status, updated_at)", () => {
    expect(identify({ pathEvent: "order-v4", payload: body("order-v4") })).toEqual([
      {
        eventType: "order-v4",
        providerId: "ord_abc123",
        providerTimestamp: Date.parse("2025-11-14T18:32:00Z"),
        idempotencyKey: "leaftrade:s:order-v4:ord_abc123:approved:2025-11-14T18%3A32%3A00Z",
        subject: body("order-v4").results![0],
      },
    ]);
    for (const [type, id] of [
      ["order-v4", "ord_min401"],
      ["order-v3", "ord_min301"],
      ["product-issue", "pi_min1"],
    ] as const) {
      const [event] = identify({ pathEvent: type, payload: body(`${type}--minimal`) });
      expect(event, type).toMatchObject({ eventType: type, providerId: id });
      expect(event!.hold, type).toBeUndefined();
    }
  });

  it("decides the type by the path and refuses only a body that clearly is another type: a results list off the V4 URL", () => {
    for (const path of ["order-v3", "product-issue"]) {
      expect(identifyResult({ pathEvent: path, payload: body("order-v4") })).toMatchObject({
        ok: false,
        code: "event_type_mismatch",
      });
    }
    // The guide shows no field that tells an order from an issue: a single object is the type its URL names.
    expect(identify({ pathEvent: "order-v3", payload: body("product-issue") })[0]).toMatchObject({
      eventType: "order-v3",
      providerId: "pi_7731",
    });
    expect(identify({ pathEvent: "product-issue", payload: body("order-v3") })[0]).toMatchObject({
      eventType: "product-issue",
      providerId: "ord_abc124",
    });
    expect(identify({ pathEvent: "order-v3", payload: { hello: "world" } })[0]).toMatchObject({
      eventType: "order-v3",
      providerId: null,
    });
  });

  it("holds, never refuses, a signed body it cannot identify: one event, keyed by its bytes", () => {
    const held = (payload: unknown, pathEvent = "order-v4") => identifyResult({ pathEvent, payload });
    for (const [payload, detail] of [
      [body("order-v3"), "a single object on the Order V4 URL, not a results list"],
      [{ count: 0, previous: null, results: [] }, "an Order V4 envelope with no orders"],
      [{ count: 1, results: ["ord_abc123"] }, "an Order V4 entry is not an object"],
      [[{ id: "ord_abc123" }], "the body is not a JSON object"],
    ] as const) {
      expect(held(payload), detail).toEqual({
        ok: true,
        events: [
          {
            eventType: "order-v4",
            providerId: null,
            providerTimestamp: null,
            idempotencyKey: `leaftrade:s:order-v4:held:sha256:${"h".repeat(64)}`,
            subject: payload,
            hold: { reason: "unidentified", detail },
          },
        ],
      });
    }
    expect(held([1, 2], "product-issue")).toMatchObject({
      ok: true,
      events: [{ eventType: "product-issue", hold: { reason: "unidentified" } }],
    });
  });

  it("keys on type, id, status and updated_at; never on the path", () => {
    const [v4] = identify({ pathEvent: "order-v4", payload: body("order-v4") });
    expect(v4!.idempotencyKey).toBe("leaftrade:s:order-v4:ord_abc123:approved:2025-11-14T18%3A32%3A00Z");
    expect(v4!.providerTimestamp).toBe(Date.parse("2025-11-14T18:32:00Z"));
  });

  it("falls back to the body hash without updated_at, with date_created as the provider's time, so two bodies never collapse", () => {
    const [a] = identify({
      pathEvent: "product-issue",
      payload: body("product-issue--reported"),
      bodySha256: "a".repeat(64),
    });
    const [b] = identify({
      pathEvent: "product-issue",
      payload: { ...body("product-issue--reported"), quantity: 4 },
      bodySha256: "b".repeat(64),
    });
    expect(a!.idempotencyKey).toBe(`leaftrade:s:product-issue:pi_7740:open:sha256:${"a".repeat(64)}`);
    expect(b!.idempotencyKey).not.toBe(a!.idempotencyKey);
    expect(a!.providerTimestamp).toBe(Date.parse("2025-11-18T08:41:09Z"));
    expect(
      identify({ pathEvent: "product-issue", payload: { product_variant: { id: 1 }, reason: "damaged" } })[0]!
        .idempotencyKey,
    ).toBe(`leaftrade:s:product-issue:sha256:${"h".repeat(64)}`);
  });

  it("makes each order of a V4 envelope its own event, stored as the envelope with that order alone", () => {
    const events = identify({ pathEvent: "order-v4", payload: body("order-v4--three-orders") });
    expect(events.map((e) => [e.providerId, (e.subject as { status: string }).status])).toEqual([
      ["ord_abc201", "approved"],
      ["ord_abc202", "new"],
      ["ord_abc203", "rejected"],
    ]);
    for (const e of events)
      expect(JSON.parse(e.body!)).toMatchObject({ count: 1, next: null, previous: null, results: [e.subject] });
    // A one-order envelope is stored as it came, byte for byte.
    expect(identify({ pathEvent: "order-v4", payload: body("order-v4") })[0]!.body).toBeUndefined();
  });

  it("cuts each order's body from the signed text: its bytes as sent, the envelope's small fields once each, count 1", () => {
    const text =
      '{"count": 2, "previous": null, "results": [ {"id": "ord_1", "status": "new", "total": 1.50, "note": "a \\"quoted\\" ] , {"} ,{"id":"ord_2","status":"new","total":1e400} ]}';
    const events = identify({ pathEvent: "order-v4", payload: JSON.parse(text), text });
    expect(events.map((e) => e.body)).toEqual([
      '{"previous": null,"count":1,"results":[{"id": "ord_1", "status": "new", "total": 1.50, "note": "a \\"quoted\\" ] , {"}]}',
      '{"previous": null,"count":1,"results":[{"id":"ord_2","status":"new","total":1e400}]}',
    ]);
  });

  it("holds a body whole past the records cap, or when copying the envelope's own fields per order would multiply it", () => {
    const three = body("order-v4--three-orders");
    const text = JSON.stringify(three);
    expect(identifyResult({ pathEvent: "order-v4", payload: three, text, maxRecords: 2 })).toMatchObject({
      ok: true,
      events: [
        {
          eventType: "order-v4",
          providerId: null,
          idempotencyKey: `leaftrade:s:order-v4:held:sha256:${"h".repeat(64)}`,
          hold: { reason: "too_many_records", detail: "3 orders in one body, over the limit of 2" },
        },
      ],
    });
    expect(identify({ pathEvent: "order-v4", payload: three, text, maxRecords: 3 })).toHaveLength(3);
    const padded = { ...three, report: "x".repeat(1_100) };
    expect(identifyResult({ pathEvent: "order-v4", payload: padded, text: JSON.stringify(padded) })).toMatchObject({
      ok: true,
      events: [{ hold: { reason: "large_envelope_fields" } }],
    });
    // One order is stored as it came, whatever its envelope holds: nothing is copied.
    const single = { count: 1, report: "x".repeat(1_100), results: [three.results![0]] };
    const [one] = identify({ pathEvent: "order-v4", payload: single, text: JSON.stringify(single) });
    expect([one!.providerId, one!.body, one!.hold]).toEqual(["ord_abc201", undefined, undefined]);
  });

  it("names the dispensary license as the merchant field, orders and issues as kinds of object, and only its three webhook types", () => {
    expect(leaftrade.merchantField).toBe("dispensary_location.license_number");
    expect(["order-v4", "order-v3", "product-issue"].map((t) => leaftrade.orderingKind!(t))).toEqual([
      "order",
      "order",
      "product-issue",
    ]);
    expect(leaftrade.eventTypes).toEqual(["order-v4", "order-v3", "product-issue"]);
  });
});

describe("Leaf Trade webhooks through the Worker, one URL per type", () => {
  for (const [type, destinations] of [
    ["order-v4", ["erp"]],
    ["order-v3", ["erp"]],
    ["product-issue", ["pos", "erp"]],
  ] as const) {
    it(`accepts ${type} at /webhooks/leaftrade/${type}`, async () => {
      await expectIngested({
        url: `/webhooks/leaftrade/${type}`,
        fixture: fixture(`leaftrade/${type}`),
        eventType: type,
        destinations: [...destinations],
      });
    });
  }

  it("refuses one signed body replayed as the other two types, and a type the config does not name, storing nothing", async () => {
    const queue = captureDeliveryQueue();
    const f = fixture("leaftrade/order-v4");
    const before = await eventCount();
    for (const type of ["order-v3", "product-issue"]) {
      const res = await post(`/webhooks/leaftrade/${type}`, f.body, f.headers);
      expect(res.status).toBe(422);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("event_type_mismatch");
    }
    for (const made of ["order-v5", "orders", "invoice"]) {
      const res = await post(`/webhooks/leaftrade/${made}`, f.body, f.headers);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unknown_event_type");
    }
    expect(await eventCount()).toBe(before);
    expect(queue.messages).toEqual([]);
  });

  it("accepts two different product issues without updated_at as two events, each delivered", async () => {
    const f = fixture("leaftrade/product-issue--reported");
    const first = await (await post("/webhooks/leaftrade/product-issue", f.body, f.headers)).json<{
      eventId: string;
      duplicate: boolean;
    }>();
    const changed = f.body.replace('"quantity":3', '"quantity":4').replace("Three pre-rolls", "Four pre-rolls");
    const second = await (await postSigned("/webhooks/leaftrade/product-issue", changed)).json<{
      eventId: string;
      duplicate: boolean;
    }>();
    expect([first.duplicate, second.duplicate]).toEqual([false, false]);
    expect(second.eventId).not.toBe(first.eventId);
    expect((await deliveriesOf(second.eventId)).map((d) => d.destination)).toEqual(["erp", "pos"]);
  });

  it("fans a V4 envelope of three orders out as three events, each with its own merchant, id and deliveries", async () => {
    const queue = captureDeliveryQueue();
    const f = fixture("leaftrade/order-v4--three-orders");
    const res = await post("/webhooks/leaftrade/order-v4", f.body, f.headers);
    const json = await res.json<{
      events: { eventId: string; duplicate: boolean; routing: string; deliveries: number }[];
    }>();
    expect(res.status).toBe(200);
    expect(json.events.map((e) => [e.duplicate, e.routing, e.deliveries])).toEqual(Array(3).fill([false, "routed", 1]));
    // Each order in the shard its own digest places it in.
    const rows = await Promise.all(
      json.events.map(
        async ({ eventId }) =>
          (await dbOfEvent(eventId)
            .prepare(`SELECT id, provider_id, merchant_id, event_type FROM events WHERE id = ?1`)
            .bind(eventId)
            .first<{ id: string; provider_id: string; merchant_id: string; event_type: string }>())!,
      ),
    );
    rows.sort((a, b) => (a.provider_id < b.provider_id ? -1 : 1));
    expect(rows.map((r) => [r.provider_id, r.merchant_id, r.event_type])).toEqual([
      ["ord_abc201", "C10-0000456-LIC", "order-v4"],
      ["ord_abc202", "C10-0000789-LIC", "order-v4"],
      ["ord_abc203", "C10-0000456-LIC", "order-v4"],
    ]);
    for (const r of rows) {
      const stored = new TextDecoder().decode((await storedPayloads(r.id)).body!);
      expect(JSON.parse(stored).results.map((o: { id: string }) => o.id)).toEqual([r.provider_id]);
    }
    // One queue send for the request, one message per event.
    expect(vi.mocked(env.DELIVERY_QUEUE.sendBatch)).toHaveBeenCalledTimes(1);
    expect(queue.messages.map((m) => m.body.eventId).sort()).toEqual(json.events.map((e) => e.eventId).sort());
    // The same envelope again is three duplicates.
    const again = await (await post("/webhooks/leaftrade/order-v4", f.body, f.headers)).json<{
      events: { duplicate: boolean }[];
    }>();
    expect(again.events.map((e) => e.duplicate)).toEqual([true, true, true]);
  });

  it("routes with the signed license, not the URL's merchant: a contradicting URL holds the order in quarantine, and release routes it", async () => {
    const queue = captureDeliveryQueue();
    const order = fixture("leaftrade/order-v3").body.replace("ord_abc124", "ord_quarantine_1");
    const res = await postSigned("/webhooks/leaftrade/order-v3?merchant_id=C10-9999999-OTHER", order);
    expect(res.status).toBe(200);
    const held = await res.json<{ eventId: string; routing: string; deliveries: number }>();
    expect(held).toMatchObject({ routing: "quarantined", deliveries: 0 });
    // Nothing to deliver (its alert is test/provider-traffic.test.ts's to check).
    expect(queue.messages.filter((m) => !("kind" in m.body))).toEqual([]);
    queue.messages.splice(0);
    const row = await dbOfEvent(held.eventId)
      .prepare("SELECT merchant_id, routing, quarantine FROM events WHERE id = ?1")
      .bind(held.eventId)
      .first<{ merchant_id: string; routing: string; quarantine: string }>();
    expect(row!.merchant_id).toBe("C10-0000456-LIC");
    expect(JSON.parse(row!.quarantine)).toMatchObject({
      reason: "merchant_mismatch",
      field: "dispensary_location.license_number",
      route: null,
      queryMerchant: "C10-9999999-OTHER",
      signedMerchant: "C10-0000456-LIC",
    });
    expect(await deliveriesOf(held.eventId)).toEqual([]);

    // Released, it is routed with the signed license.
    const release = await adminFetch("POST", `/events/${held.eventId}/release`);
    expect(release.status).toBe(202);
    expect(await release.json()).toEqual({
      eventId: held.eventId,
      merchantId: "C10-0000456-LIC",
      deliveries: [{ destination: "erp", route: "lt-orders" }],
      enqueued: true,
    });
    expect((await deliveriesOf(held.eventId)).map((d) => [d.destination, d.status])).toEqual([["erp", "pending"]]);
    expect(queue.messages.map((m) => m.body).filter((b) => !("kind" in b))).toEqual([
      { v: 1, eventId: held.eventId, deliveries: [{ destination: "erp", generation: 1 }] },
    ]);

    // The same body with no merchant in the URL, or the right one, is routed with the license.
    const plain = fixture("leaftrade/order-v3").body.replace("ord_abc124", "ord_quarantine_2");
    const routed = await (await postSigned("/webhooks/leaftrade/order-v3?merchant_id=C10-0000456-LIC", plain)).json<{
      routing: string;
    }>();
    expect(routed.routing).toBe("routed");
  });

  it("delivers a late retry of an older state only where the route does not ask for the latest", async () => {
    // lt-orders routes to erp with ordering: latest; "rejected" at 19:00 is delivered, then "new" at 18:00 arrives.
    const seen = stubDestinations(() => new Response("ok"));
    const queue = captureDeliveryQueue();
    const base = fixture("leaftrade/order-v3").body.replace("ord_abc124", "ord_order_1");
    const rejected = base
      .replace('"status":"revised"', '"status":"rejected"')
      .replace("2025-11-14T19:05:12Z", "2025-11-14T19:00:00Z");
    const olderNew = base
      .replace('"status":"revised"', '"status":"new"')
      .replace("2025-11-14T19:05:12Z", "2025-11-14T18:00:00Z");
    const a = await (await postSigned("/webhooks/leaftrade/order-v3", rejected)).json<{ eventId: string }>();
    await runDeliveryQueue(queue.messages.splice(0).map((m) => m.body));
    const b = await (await postSigned("/webhooks/leaftrade/order-v3", olderNew)).json<{ eventId: string }>();
    await runDeliveryQueue(queue.messages.splice(0).map((m) => m.body));
    expect(
      seen.requests.map((r) => [r.headers.get("x-router-event-id"), r.headers.get("webhook-provider-timestamp")]),
    ).toEqual([[a.eventId, "2025-11-14T19:00:00.000Z"]]);
    expect((await deliveriesOf(b.eventId)).map((d) => [d.destination, d.status, d.last_error, d.attempts])).toEqual([
      ["erp", "stale", "superseded_stale", 0],
    ]);
    // A newer state still goes out.
    const revised = base.replace("2025-11-14T19:05:12Z", "2025-11-14T20:00:00Z");
    const c = await (await postSigned("/webhooks/leaftrade/order-v3", revised)).json<{ eventId: string }>();
    await runDeliveryQueue(queue.messages.splice(0).map((m) => m.body));
    expect((await deliveriesOf(c.eventId)).map((d) => d.status)).toEqual(["delivered"]);
  });

  it("accepts the custom-header authentication, compared in constant time", async () => {
    const payload = fixture("leaftrade/order-v3").body;
    expect(
      (await post("/webhooks/leaftrade-bearer/order-v3", payload, { Authorization: "Bearer partner-token-abc123" }))
        .status,
    ).toBe(200);
    const wrong = await post("/webhooks/leaftrade-bearer/order-v3", payload, {
      Authorization: "Bearer partner-token-abc124",
    });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({
      error: { code: "invalid_signature", message: expect.any(String), requestId: expect.any(String) },
    });
  });
});
