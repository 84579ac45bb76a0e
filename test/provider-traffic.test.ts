import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import {
  captureDeliveryQueue,
  dbOfEvent,
  deliveriesOf,
  fixture,
  gatesOfItsOwn,
  hexSignature,
  ROUTER,
  storedPayloads,
  weedmapsSignature,
} from "./helpers.ts";

// Issue #22: real provider traffic. A verified body is never refused for not fitting our assumptions: it is stored
// held, alerted and releasable. One request's cost is bounded. The URL may select only what the signed body agrees
// with. Everything here goes through the real Worker, D1 and the queue producer.

afterEach(() => vi.restoreAllMocks());

const worker = createWorker();
const testConfig = JSON.parse(env.ROUTER_CONFIG as string) as {
  limits: Record<string, number>;
  sources: Record<string, Record<string, unknown>>;
};

/** The test config with larger bodies allowed and URL tokens on the Leaf Trade source, bound as a Worker would be. */
const configured = {
  ...env,
  ROUTER_CONFIG: JSON.stringify({
    ...testConfig,
    limits: { ...testConfig.limits, maxBodyBytes: 700_000, maxRecordsPerBody: 1_000 },
    sources: {
      ...testConfig.sources,
      "leaftrade-tokens": {
        ...testConfig.sources.leaftrade,
        urlToken: { secrets: { "order-v4": "LT_URL_TOKEN_V4", "order-v3": "LT_URL_TOKEN_V3" } },
      },
    },
  }),
  LT_URL_TOKEN_V4: "v4-url-token-7f3a9c",
  LT_URL_TOKEN_V3: "v3-url-token-21be04",
} as unknown as Env;

let bindings: Env;
// Held events alert at most once per reason in a throttle window, so each test gets gates (the throttle is one) of
// its own: another test holding an event for the same reason must not silence the alert this one expects.
beforeEach(() => {
  bindings = { ...configured, DESTINATION_GATE: gatesOfItsOwn() };
});

async function call(request: Request): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, bindings, ctx);
  // The held event's alert is raised after the answer: wait for it, as the runtime would.
  await waitOnExecutionContext(ctx);
  return res;
}

async function postLeafTrade(path: string, body: string): Promise<Response> {
  const signature = await hexSignature(body, env.LEAFTRADE_WEBHOOK_SECRET as string);
  return call(
    new Request(`${ROUTER}${path}`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json", "X-Signature": signature },
    }),
  );
}

async function postWeedmaps(path: string, body: string): Promise<Response> {
  return call(
    new Request(`${ROUTER}${path}`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json", Signature: await weedmapsSignature(body) },
    }),
  );
}

interface Accepted {
  eventId: string;
  duplicate: boolean;
  routing: string;
  deliveries: number;
}

/** Every shard: each event is in the one its id names. */
const SHARDS = [env.DB, env.SHARD_1];

/** A query's rows from every shard. */
async function allInShards<T>(sql: string, ...params: unknown[]): Promise<T[]> {
  const pages = await Promise.all(
    SHARDS.map(
      async (db) =>
        (
          await db
            .prepare(sql)
            .bind(...params)
            .all<T>()
        ).results,
    ),
  );
  return pages.flat();
}

async function storedRow(eventId: string) {
  const row = await dbOfEvent(eventId)
    .prepare(
      "SELECT event_type, merchant_id, provider_id, routing, quarantine, length(body) AS stored_chars FROM events WHERE id = ?1",
    )
    .bind(eventId)
    .first<{
      event_type: string;
      merchant_id: string | null;
      provider_id: string | null;
      routing: string;
      quarantine: string | null;
      stored_chars: number;
    }>();
  return { ...row!, quarantine: row!.quarantine ? (JSON.parse(row!.quarantine) as Record<string, unknown>) : null };
}

const alertsIn = (queue: ReturnType<typeof captureDeliveryQueue>) =>
  queue.messages.flatMap((m) =>
    "kind" in m.body && (m.body as { kind: string }).kind === "alert"
      ? [
          (
            m.body as unknown as {
              alert: { kind: string; reason: string; eventIds: string[]; counts: Record<string, number> };
            }
          ).alert,
        ]
      : [],
  );

const createWith = (changes: Record<string, unknown>) =>
  JSON.stringify({ ...(JSON.parse(fixture("weedmaps/create").body) as object), ...changes });

const order = (id: string, status = "new", extra: Record<string, unknown> = {}) => ({
  id,
  status,
  updated_at: "2025-11-21T10:00:00Z",
  ...extra,
});

describe("Leaf Trade: the guide's own example, and nothing signed refused for its shape", () => {
  it("stores and routes the guide's Order V4 example as it came", async () => {
    const f = fixture("leaftrade/order-v4");
    const res = await postLeafTrade("/webhooks/leaftrade/order-v4", f.body);
    expect(res.status).toBe(200);
    const json = await res.json<Accepted>();
    expect(json).toMatchObject({ duplicate: false, routing: "routed", deliveries: 1 });
    expect(await storedRow(json.eventId)).toMatchObject({
      event_type: "order-v4",
      provider_id: "ord_abc123",
      routing: "routed",
      quarantine: null,
    });
    expect(new TextDecoder().decode((await storedPayloads(json.eventId)).body!)).toBe(f.body);
  });

  it("holds a body it cannot identify (a single object on the V4 URL): stored, alerted, listed, and routed once released", async () => {
    const queue = captureDeliveryQueue();
    const body = JSON.stringify(order("ord_held_1", "approved"));
    const res = await postLeafTrade("/webhooks/leaftrade/order-v4", body);
    expect(res.status).toBe(200);
    const json = await res.json<Accepted>();
    expect(json).toMatchObject({ duplicate: false, routing: "quarantined", deliveries: 0 });
    expect(await storedRow(json.eventId)).toMatchObject({
      event_type: "order-v4",
      quarantine: {
        reason: "unidentified",
        detail: "a single object on the Order V4 URL, not a results list",
        field: null,
      },
    });
    expect(alertsIn(queue)).toEqual([
      expect.objectContaining({
        kind: "event_held",
        reason: "leaftrade: unidentified: a single object on the Order V4 URL, not a results list",
        eventIds: [json.eventId],
        counts: { events: 1 },
      }),
    ]);
    // A retry of the same bytes is the same held event.
    expect(await (await postLeafTrade("/webhooks/leaftrade/order-v4", body)).json()).toMatchObject({
      eventId: json.eventId,
      duplicate: true,
    });

    const admin = (method: string, path: string) =>
      call(new Request(`${ROUTER}/admin${path}`, { method, headers: { Authorization: `Bearer ${env.ADMIN_TOKEN}` } }));
    const listed = await (await admin("GET", "/events?status=quarantined&source=leaftrade")).json<{
      events: { id: string; quarantine: { reason: string } }[];
    }>();
    expect(listed.events.find((e) => e.id === json.eventId)?.quarantine.reason).toBe("unidentified");
    const released = await admin("POST", `/events/${json.eventId}/release`);
    expect(released.status).toBe(202);
    expect(await released.json()).toEqual({
      eventId: json.eventId,
      merchantId: null,
      deliveries: [{ destination: "erp", route: "lt-orders" }],
      enqueued: true,
    });
    expect((await deliveriesOf(json.eventId)).map((d) => [d.destination, d.status])).toEqual([["erp", "pending"]]);
  });

  it("still refuses a V4 results list posted to another type's URL (a cross-type replay), storing nothing", async () => {
    const body = JSON.stringify({ count: 1, previous: null, results: [order("ord_cross_1")] });
    for (const type of ["order-v3", "product-issue"]) {
      const res = await postLeafTrade(`/webhooks/leaftrade/${type}`, body);
      expect(res.status).toBe(422);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("event_type_mismatch");
    }
    expect(await allInShards("SELECT id FROM events WHERE provider_id = 'ord_cross_1'")).toEqual([]);
  });
});

describe("Leaf Trade: a per-type token in the URL", () => {
  const v4 = () => JSON.stringify({ count: 1, previous: null, results: [order(`ord_tok_${crypto.randomUUID()}`)] });

  it("accepts each type only with its own token, and neither stores nor logs the token", async () => {
    const lines: string[] = [];
    for (const level of ["log", "info", "warn", "error", "debug"] as const)
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
    for (const [query, status] of [
      ["", 401],
      ["?token=v3-url-token-21be04", 401],
      ["?token=v4-url-token-7f3a9", 401],
      ["?token=v4-url-token-7f3a9c&token=v4-url-token-7f3a9c", 401],
      ["?token=v4-url-token-7f3a9c", 200],
    ] as const) {
      const res = await postLeafTrade(`/webhooks/leaftrade-tokens/order-v4${query}`, v4());
      expect(res.status, query).toBe(status);
      if (status === 401)
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe("url_token_invalid");
    }
    // A V3 body seen by a destination cannot be replayed to the product-issue URL, which has no token at all.
    expect(
      (
        await postLeafTrade(
          "/webhooks/leaftrade-tokens/product-issue?token=v3-url-token-21be04",
          JSON.stringify(order("pi_tok_1")),
        )
      ).status,
    ).toBe(401);
    expect(
      (
        await postLeafTrade(
          "/webhooks/leaftrade-tokens/order-v3?token=v3-url-token-21be04",
          JSON.stringify(order("ord_tok_v3")),
        )
      ).status,
    ).toBe(200);
    const rows = await allInShards("SELECT * FROM events WHERE source = 'leaftrade-tokens'");
    expect(rows).toHaveLength(2);
    expect(JSON.stringify(rows)).not.toMatch(/url-token/);
    expect(lines.join("\n")).not.toMatch(/url-token/);
  });
});

describe("Weedmaps: merchant ids as Weedmaps documents them, and a broken callback URL held, not refused", () => {
  it("routes a 255-character Menu ID", async () => {
    const id = `m${"9".repeat(254)}`;
    const body = createWith({
      orderId: "long-merchant-1",
      seller: { ...(JSON.parse(fixture("weedmaps/create").body) as { seller: object }).seller, id },
    });
    const json = await (await postWeedmaps(`/webhooks/weedmaps?merchant_id=${id}`, body)).json<Accepted>();
    expect(json).toMatchObject({ routing: "routed", deliveries: 2 });
    expect((await storedRow(json.eventId)).merchant_id).toBe(id);
  });

  it("holds a Create whose URL kept {{merchantId}}, or whose merchant cannot be an id, and alerts the callback URL problem", async () => {
    const queue = captureDeliveryQueue();
    for (const [i, query, detail] of [
      [1, "merchant_id={{merchantId}}", "the callback URL's {{merchantId}} placeholder was never filled in"],
      [2, "merchant_id=%7B%7BmerchantId%7D%7D", "the callback URL's {{merchantId}} placeholder was never filled in"],
      [
        3,
        `merchant_id=${"9".repeat(256)}`,
        "the callback URL's merchant cannot be a merchant id (up to 255 of A-Z a-z 0-9 . _ : -)",
      ],
      [
        4,
        "merchant_id=42%20or%201",
        "the callback URL's merchant cannot be a merchant id (up to 255 of A-Z a-z 0-9 . _ : -)",
      ],
      [5, "merchant_id=4242&merchant_id=4243", "the callback URL names the merchant twice, with different values"],
    ] as const) {
      const res = await postWeedmaps(`/webhooks/weedmaps?${query}`, createWith({ orderId: `url-merchant-${i}` }));
      expect(res.status, query).toBe(200);
      const json = await res.json<Accepted>();
      expect(json, query).toMatchObject({ routing: "quarantined", deliveries: 0 });
      const row = await storedRow(json.eventId);
      expect(row.quarantine, query).toMatchObject({
        reason: "merchant_url",
        detail,
        field: null,
        signedMerchant: null,
      });
      expect((row.quarantine!.queryMerchant as string).length, query).toBeLessThanOrEqual(255);
    }
    const alerts = alertsIn(queue);
    expect(alerts.map((a) => a.reason)).toContain(
      "weedmaps: merchant_url: the callback URL's {{merchantId}} placeholder was never filled in",
    );
    // An alert names the problem, never what the URL said.
    expect(JSON.stringify(alerts)).not.toMatch(/42 or 1|9{256}/);
  });

  it("stores a Draft whose callback URL kept {{merchantId}} held and alerted; nobody prices it (502)", async () => {
    const queue = captureDeliveryQueue();
    const body = JSON.stringify({ ...(JSON.parse(fixture("weedmaps/draft").body) as object), orderId: "held-draft-1" });
    const res = await postWeedmaps("/webhooks/weedmaps/draft?merchant_id={{merchantId}}", body);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("responder_unavailable");
    const [row] = await allInShards<{ id: string; quarantine: string }>(
      "SELECT id, quarantine FROM events WHERE provider_id = 'held-draft-1'",
    );
    expect(JSON.parse(row!.quarantine)).toMatchObject({ reason: "merchant_url" });
    expect(alertsIn(queue)).toEqual([expect.objectContaining({ kind: "event_held", eventIds: [row!.id] })]);
  });

  it("holds a signed order with no status instead of answering 422", async () => {
    const res = await postWeedmaps(
      "/webhooks/weedmaps?merchant_id=4242",
      JSON.stringify({ orderId: "no-status-1", lineItems: [] }),
    );
    expect(res.status).toBe(200);
    const json = await res.json<Accepted>();
    expect(await storedRow(json.eventId)).toMatchObject({
      event_type: "unidentified",
      provider_id: "no-status-1",
      quarantine: { reason: "unidentified", detail: "the order has no status" },
    });
  });
});

describe("bounded cost per request", () => {
  const envelope = (orders: number, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      count: orders,
      previous: null,
      ...extra,
      results: Array.from({ length: orders }, (_, i) =>
        order(`ord_${crypto.randomUUID()}_${i}`, "approved", { dispensary_location: { id: 12, dispensary_id: 14 } }),
      ),
    });

  async function storedChars(eventIds: string[]): Promise<number> {
    const sums = await allInShards<{ n: number | null }>(
      "SELECT SUM(length(body)) AS n FROM events WHERE id IN (SELECT value FROM json_each(?1))",
      JSON.stringify(eventIds),
    );
    return sums.reduce((total, { n }) => total + (n ?? 0), 0);
  }

  it("stores a 200-order envelope as about its own size plus a small overhead per order, not 200 copies", async () => {
    const body = envelope(200);
    const json = await (await postLeafTrade("/webhooks/leaftrade/order-v4", body)).json<{ events: Accepted[] }>();
    expect(json.events).toHaveLength(200);
    expect(json.events.every((e) => e.routing === "routed")).toBe(true);
    // Sealed bodies are base64 of AES-GCM (4/3 of the bytes, plus a nonce and tag each); the per-order envelope is
    // `{"previous":null,"count":1,"results":[…]}`.
    const stored = await storedChars(json.events.map((e) => e.eventId));
    expect(stored).toBeLessThan((body.length + 200 * 60) * 1.4);
  });

  it("holds an envelope whose own fields are large whole, once, instead of copying 50 KB into each of 200 orders", async () => {
    const queue = captureDeliveryQueue();
    const body = envelope(200, { report: "r".repeat(50_000) });
    const json = await (await postLeafTrade("/webhooks/leaftrade/order-v4", body)).json<Accepted>();
    expect(json).toMatchObject({ routing: "quarantined", deliveries: 0 });
    const row = await storedRow(json.eventId);
    expect(row.quarantine).toMatchObject({ reason: "large_envelope_fields" });
    expect(row.stored_chars).toBeLessThan(body.length * 1.4);
    const sha = await dbOfEvent(json.eventId)
      .prepare("SELECT body_sha256 FROM events WHERE id = ?1")
      .bind(json.eventId)
      .first<string>("body_sha256");
    expect(await allInShards("SELECT id FROM events WHERE body_sha256 = ?1", sha)).toHaveLength(1);
    expect(alertsIn(queue).map((a) => a.kind)).toEqual(["event_held"]);
  });

  it("holds a body over the records cap whole, stored once and alerted, never dropped", async () => {
    const queue = captureDeliveryQueue();
    const body = envelope(1_001);
    const json = await (await postLeafTrade("/webhooks/leaftrade/order-v4", body)).json<Accepted>();
    expect(json).toMatchObject({ routing: "quarantined", deliveries: 0 });
    expect((await storedRow(json.eventId)).quarantine).toMatchObject({
      reason: "too_many_records",
      detail: "1001 orders in one body, over the limit of 1000",
    });
    expect(new TextDecoder().decode((await storedPayloads(json.eventId)).body!)).toBe(body);
    expect(alertsIn(queue)).toEqual([expect.objectContaining({ kind: "event_held", eventIds: [json.eventId] })]);
  });
});

describe("parser differentials", () => {
  it("holds a Create that sends its status twice, and routes one that repeats a field no identity reads", async () => {
    const base = createWith({ orderId: "dup-status-1" });
    const twice = base.replace('"status":"PENDING"', '"status":"CANCELED_CUSTOMER","status":"PENDING"');
    expect(twice).not.toBe(base);
    const held = await (await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", twice)).json<Accepted>();
    expect(held).toMatchObject({ routing: "quarantined" });
    expect((await storedRow(held.eventId)).quarantine).toMatchObject({
      reason: "ambiguous_json",
      detail: "the signed body sends status more than once",
    });
    // An escaped key is the same key.
    const escaped = createWith({ orderId: "dup-status-2" }).replace(
      '"status":"PENDING"',
      '"st\\u0061tus":"DRAFT","status":"PENDING"',
    );
    expect((await (await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", escaped)).json<Accepted>()).routing).toBe(
      "quarantined",
    );
    const note = createWith({ orderId: "dup-note-1" }).replace(
      '"customerNote":',
      '"customerNote":"first","customerNote":',
    );
    expect((await (await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", note)).json<Accepted>()).routing).toBe(
      "routed",
    );
  });

  it("holds a V4 envelope whose one order repeats its status, whole", async () => {
    const body = `{"count":2,"previous":null,"results":[${JSON.stringify(order("ord_dup_a"))},{"id":"ord_dup_b","status":"new","status":"rejected","updated_at":"2025-11-21T10:00:00Z"}]}`;
    const json = await (await postLeafTrade("/webhooks/leaftrade/order-v4", body)).json<Accepted>();
    expect(json).toMatchObject({ routing: "quarantined" });
    expect((await storedRow(json.eventId)).quarantine).toMatchObject({
      reason: "ambiguous_json",
      detail: "the signed body sends results.1.status more than once",
    });
  });

  it("keys ids JSON.parse cannot hold by their text: 1e400 and 2e400 are two orders, never one 'Infinity'", async () => {
    const ids: string[] = [];
    for (const raw of ["1e400", "2e400", "12345678901234567890", "12345678901234567891"]) {
      const json = await (
        await postLeafTrade(
          "/webhooks/leaftrade/order-v3",
          `{"id":${raw},"status":"new","updated_at":"2025-11-21T10:00:00Z"}`,
        )
      ).json<Accepted>();
      expect(json.duplicate, raw).toBe(false);
      expect((await storedRow(json.eventId)).provider_id, raw).toBe(raw);
      ids.push(json.eventId);
    }
    expect(new Set(ids).size).toBe(4);
  });
});
