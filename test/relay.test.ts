import { env } from "cloudflare:workers";
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import type { AlertMessage, DeliveryMessage } from "../src/core/messages.ts";
import {
  decideUpdate,
  DEFAULT_TRANSITIONS,
  orderState,
  relayIdempotencyKey,
  transitionCycle,
  type OrderEventRow,
} from "../src/core/relay.ts";
import { shardOfEventId } from "../src/core/event-id.ts";
import { signStandardWebhook } from "../src/core/signatures/standard-webhooks.ts";
import {
  captureDeliveryQueue,
  dbOfEvent,
  deliveriesOf,
  fixture,
  gatesOfItsOwn,
  ManualClock,
  refusingEventInserts,
  ROUTER,
  stubDestinations,
  visible,
  weedmapsSignature,
} from "./helpers.ts";
import { TEST_SECRETS } from "./secrets.ts";

/**
 * The status relay (src/relay, src/ingest/relay.ts, docs/relay.md) through the real Worker, D1, queue consumer and
 * the Orders API destination's Durable Object. Weedmaps' API is a fetch spy that keeps its documented rules: the
 * token endpoint (one request a minute, the same token until day 7) and 420 requests per 10 s, on the test's clock.
 */
let queue: ReturnType<typeof captureDeliveryQueue>;
let clock: ManualClock;
let worker: ReturnType<typeof createWorker>;
let bindings: Env;
let api: ReturnType<typeof weedmapsApi>;

beforeEach(() => {
  queue = captureDeliveryQueue();
  clock = new ManualClock(Date.now() + 86_400_000);
  worker = createWorker({ clock });
  // Each test's Orders API object (its token, its rate limit) is its own.
  bindings = { ...env, DESTINATION_GATE: gatesOfItsOwn() } as Env;
  api = weedmapsApi(clock);
});
afterEach(() => vi.restoreAllMocks());

const API = "https://api-g.weedmaps.test";
type Answer = { status: number; headers?: Record<string, string>; body?: string };

/** Weedmaps' Orders API as documented, on the test's clock; `next` answers the next PUTs instead. */
function weedmapsApi(clock: ManualClock) {
  const state = {
    tokenRequests: [] as { at: number; body: Record<string, string> }[],
    puts: [] as { at: number; path: string; auth: string | null; body: string }[],
    token: null as { value: string; at: number } | null,
    next: [] as Answer[],
    requests: [] as number[],
    tooMany: 0,
  };
  stubDestinations(async (request) => {
    const url = new URL(request.url);
    // The configured base has a path of its own (and a trailing slash): every request stays below it.
    expect(url.origin).toBe(API);
    expect(url.pathname.startsWith("/v/")).toBe(true);
    url.pathname = url.pathname.slice("/v".length);
    const now = clock.now();
    state.requests.push(now);
    if (state.requests.filter((t) => t > now - 10_000).length > 420) {
      state.tooMany++;
      return new Response("{}", { status: 429, headers: { "Retry-After": "10" } });
    }
    if (url.pathname === "/auth/token") {
      const body = await request.json<Record<string, string>>();
      const last = state.tokenRequests.at(-1);
      state.tokenRequests.push({ at: now, body });
      if (last && now - last.at < 60_000) return new Response("{}", { status: 429, headers: { "Retry-After": "60" } });
      if (body.client_secret !== TEST_SECRETS.WEEDMAPS_API_CLIENT_SECRET) return new Response("{}", { status: 401 });
      if (!state.token || now - state.token.at >= 7 * 86_400_000)
        state.token = { value: `tok-${state.tokenRequests.length}`, at: now };
      return Response.json(
        { access_token: state.token.value, token_type: "Bearer", expires_in: 1_209_600, scope: body.scope },
        { status: 201 },
      );
    }
    state.puts.push({
      at: now,
      path: url.pathname,
      auth: request.headers.get("authorization"),
      body: await request.text(),
    });
    const scripted = state.next.shift();
    if (scripted) return new Response(scripted.body ?? "", { status: scripted.status, headers: scripted.headers });
    if (request.headers.get("authorization") !== `Bearer ${state.token?.value}`)
      return new Response("{}", { status: 401 });
    return Response.json({ ok: true });
  });
  return state;
}

/** `settled`: also waits for what the answer left in waitUntil (the capacity record, alerts), as the runtime would. */
async function send(path: string, init: RequestInit, settled = false): Promise<Response> {
  const ctx = createExecutionContext();
  const request = new Request(`${ROUTER}${path}`, init) as Parameters<typeof worker.fetch>[0];
  const res = await worker.fetch(request, bindings, ctx);
  if (settled) await waitOnExecutionContext(ctx);
  return res;
}

let orders = 0;
/** A verified Create of a new order for `merchant`: the router now knows it. */
async function createOrder(merchant = "4242", settled = false): Promise<string> {
  const orderId = `relay-order-${++orders}-${crypto.randomUUID().slice(0, 8)}`;
  // The signed seller is the merchant: a route that pins the URL's merchant to seller.id must not hold the order.
  const body = fixture("weedmaps/create")
    .body.replace("9763822", orderId)
    .replace('"seller":{"id":"4242"', `"seller":{"id":"${merchant}"`);
  const res = await send(
    `/webhooks/weedmaps?merchant_id=${merchant}`,
    {
      method: "POST",
      headers: { "content-type": "application/json", Signature: await weedmapsSignature(body) },
      body,
    },
    settled,
  );
  expect(res.status).toBe(200);
  queue.messages.splice(0);
  return orderId;
}

function relay(orderId: string, update: unknown, headers: Record<string, string> = {}) {
  return send(`/relay/weedmaps/orders/${encodeURIComponent(orderId)}/status`, {
    method: "PUT",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${TEST_SECRETS.RELAY_POS_TOKEN}`,
      ...headers,
    },
    body: typeof update === "string" ? update : JSON.stringify(update),
  });
}

async function accepted(orderId: string, update: unknown): Promise<{ updateId: string; duplicate: boolean }> {
  const res = await relay(orderId, update);
  expect(res.status, await res.clone().text()).toBe(202);
  return res.json();
}

async function refused(res: Response, status: number, code: string): Promise<void> {
  expect(res.status).toBe(status);
  const body = await res.json<{ error: { code: string } }>();
  expect(body.error.code).toBe(code);
  expect(JSON.stringify(body)).not.toContain(TEST_SECRETS.RELAY_POS_TOKEN);
}

let messageCounter = 0;
/** Runs the real consumer over what the queue got, in batches of 10, as Queues would. */
async function deliverQueued(): Promise<{ retries: { msgId: string; delaySeconds?: number }[] }> {
  const bodies = queue.messages.splice(0).map((m) => m.body);
  const retries: { msgId: string; delaySeconds?: number }[] = [];
  for (let i = 0; i < bodies.length; i += 10) {
    const messages = bodies.slice(i, i + 10).map((body) => ({
      id: `relay-msg-${++messageCounter}`,
      timestamp: new Date(),
      attempts: 1,
      body,
    }));
    const batch = createMessageBatch("webhook-deliveries", messages);
    const ctx = createExecutionContext();
    await worker.queue(batch, bindings, ctx);
    retries.push(...(await getQueueResult(batch, ctx)).retryMessages);
  }
  return { retries };
}

const deliveryMessages = () => queue.messages.filter((m) => !("kind" in m.body)).map((m) => m.body as DeliveryMessage);

describe("PUT /relay/<source>/orders/<orderId>/status", () => {
  it("accepts an update for a known order and PUTs only its status to the order's listing, with the bearer token", async () => {
    const orderId = await createOrder("4242");
    const { updateId, duplicate } = await accepted(orderId, { status: "IN_PROGRESS" });
    expect(updateId).toMatch(/^evt_\d+_[0-9a-f]{32}$/);
    expect(duplicate).toBe(false);
    expect(deliveryMessages()).toHaveLength(1);

    await deliverQueued();
    expect(api.tokenRequests).toHaveLength(1);
    expect(api.tokenRequests[0]!.body).toEqual({
      client_id: TEST_SECRETS.WEEDMAPS_API_CLIENT_ID,
      client_secret: TEST_SECRETS.WEEDMAPS_API_CLIENT_SECRET,
      grant_type: "client_credentials",
      scope: "orders",
    });
    expect(api.puts).toHaveLength(1);
    expect(api.puts[0]!.path).toBe(`/oos/2026-01/merchants/4242/orders/${orderId}`);
    expect(api.puts[0]!.auth).toBe("Bearer tok-1");
    expect(JSON.parse(api.puts[0]!.body)).toEqual({ status: "IN_PROGRESS" });
    const [delivery] = await deliveriesOf(updateId);
    expect(delivery).toMatchObject({ destination: "wm-api", status: "delivered", attempts: 1 });
  });

  it("sends a cancel's reason, and keeps who asked in the stored update", async () => {
    const orderId = await createOrder();
    const { updateId } = await accepted(orderId, { status: "CANCELED_SELLER", canceledReason: "OUT_OF_STOCK" });
    await deliverQueued();
    expect(JSON.parse(api.puts[0]!.body)).toEqual({ status: "CANCELED_SELLER", canceledReason: "OUT_OF_STOCK" });
    const row = await dbOfEvent(updateId)
      .prepare("SELECT event_type, provider_id, merchant_id FROM events WHERE id = ?1")
      .bind(updateId)
      .first();
    expect(row).toEqual({ event_type: "relay.canceled_seller", provider_id: orderId, merchant_id: "4242" });
  });

  it("goes forward only: back, or out of an ending, is 409 relay_transition_refused", async () => {
    const orderId = await createOrder();
    await accepted(orderId, { status: "READY_FOR_ATTAINMENT" });
    const back = await relay(orderId, { status: "IN_PROGRESS" });
    expect(back.status).toBe(409);
    const body = await back.json<{ error: { code: string; details: string[] } }>();
    expect(body.error).toMatchObject({
      code: "relay_transition_refused",
      details: ["current status: READY_FOR_ATTAINMENT"],
    });
    await accepted(orderId, { status: "COMPLETE" });
    await refused(await relay(orderId, { status: "FAILED" }), 409, "relay_transition_refused");
    await refused(
      await relay(orderId, { status: "CANCELED_CUSTOMER", canceledReason: "CUSTOMER_REQUEST" }),
      409,
      "relay_transition_refused",
    );
  });

  it("takes the same update twice as one: one stored update, one PUT", async () => {
    const orderId = await createOrder();
    const first = await accepted(orderId, { status: "IN_PROGRESS" });
    const again = await accepted(orderId, { status: "IN_PROGRESS" });
    expect(again).toMatchObject({ updateId: first.updateId, duplicate: true });
    // Concurrent copies of the next update race for one id: one is stored, all answer with it.
    const raced = await Promise.all(Array.from({ length: 5 }, () => accepted(orderId, { status: "COMPLETE" })));
    expect(new Set(raced.map((r) => r.updateId)).size).toBe(1);
    expect(raced.filter((r) => !r.duplicate)).toHaveLength(1);
    await deliverQueued();
    expect(api.puts.map((p) => JSON.parse(p.body).status)).toEqual(["IN_PROGRESS", "COMPLETE"]);
  });

  it("lets one of two conflicting concurrent updates through, and decides the other against it", async () => {
    const orderId = await createOrder();
    await accepted(orderId, { status: "READY_FOR_ATTAINMENT" });
    const [complete, cancel] = await Promise.all([
      relay(orderId, { status: "COMPLETE" }),
      relay(orderId, { status: "CANCELED_CUSTOMER", canceledReason: "CUSTOMER_NO_SHOW" }),
    ]);
    // Both were allowed from READY; the loser of the race reads the winner's ending and is refused.
    expect([complete.status, cancel.status].sort()).toEqual([202, 409]);
  });

  it("moves with Weedmaps' own callbacks: after a COMPLETE callback the POS cannot set IN_PROGRESS", async () => {
    const orderId = await createOrder();
    const body = fixture("weedmaps/complete").body.replace("9763822", orderId);
    const res = await send("/webhooks/weedmaps?merchant_id=4242", {
      method: "POST",
      headers: { "content-type": "application/json", Signature: await weedmapsSignature(body) },
      body,
    });
    expect(res.status).toBe(200);
    await refused(await relay(orderId, { status: "IN_PROGRESS" }), 409, "relay_transition_refused");
    // The status Weedmaps already has is not sent again.
    const same = await accepted(orderId, { status: "COMPLETE" });
    expect(same).toMatchObject({ updateId: null, duplicate: true });
  });

  it("refuses every bad request with its own code", async () => {
    const orderId = await createOrder();
    await refused(await relay("no-such-order", { status: "IN_PROGRESS" }), 404, "relay_order_unknown");
    await refused(await relay(orderId, { status: "SHIPPED" }), 422, "relay_invalid_update");
    await refused(await relay(orderId, { status: "PENDING" }), 422, "relay_invalid_update");
    await refused(await relay(orderId, { status: "IN_PROGRESS", note: "x" }), 422, "relay_invalid_update");
    await refused(
      await relay(orderId, { status: "CANCELED_SELLER", canceledReason: "BORED" }),
      422,
      "relay_invalid_update",
    );
    await refused(
      await relay(orderId, { status: "COMPLETE", canceledReason: "OTHER" }),
      422,
      "relay_reason_not_allowed",
    );
    await refused(await relay(orderId, "{not json"), 400, "invalid_json");
    await refused(
      await relay(orderId, { status: "IN_PROGRESS" }, { "content-type": "text/plain" }),
      415,
      "unsupported_media_type",
    );
    await refused(
      await relay(orderId, { status: "IN_PROGRESS" }, { authorization: "Bearer wrong" }),
      401,
      "unauthorized",
    );
    await refused(await relay(orderId, { status: "IN_PROGRESS" }, { authorization: "" }), 401, "unauthorized");
    await refused(await relay("x".repeat(256), { status: "IN_PROGRESS" }), 400, "invalid_order_id");
    await refused(
      await relay(orderId, JSON.stringify({ status: "IN_PROGRESS", pad: "x".repeat(5_000) })),
      413,
      "payload_too_large",
    );
    await refused(
      await send(`/relay/leaftrade/orders/${orderId}/status`, { method: "PUT", body: "{}" }),
      404,
      "relay_not_configured",
    );
    await refused(await send(`/relay/weedmaps/orders/${orderId}/status`, { method: "GET" }), 405, "method_not_allowed");
    // Nothing of these was stored or sent.
    expect(deliveryMessages()).toHaveLength(0);
  });

  it("authenticates a system by its Standard Webhooks signature, within five minutes", async () => {
    const orderId = await createOrder();
    const body = JSON.stringify({ status: "IN_PROGRESS" });
    const sign = async (at: number) => {
      const id = `msg_${crypto.randomUUID()}`;
      const ts = Math.floor(at / 1000);
      return {
        authorization: "",
        "webhook-id": id,
        "webhook-timestamp": String(ts),
        "webhook-signature": await signStandardWebhook(
          TEST_SECRETS.RELAY_ERP_SIGNING_SECRET,
          id,
          ts,
          new TextEncoder().encode(body),
        ),
      };
    };
    await refused(await relay(orderId, body, await sign(clock.now() - 301_000)), 401, "unauthorized");
    const res = await relay(orderId, body, await sign(clock.now()));
    expect(res.status).toBe(202);
    const { updateId } = await res.json<{ updateId: string }>();
    const row = await dbOfEvent(updateId).prepare("SELECT id FROM events WHERE id = ?1").bind(updateId).first();
    expect(row).not.toBeNull();
  });
});

describe("storage, watched as ingest's is", () => {
  /** A known order whose Create is in `shard`: Creates are placed by their order's digest. */
  async function orderIn(shard: number): Promise<string> {
    for (;;) {
      const orderId = await createOrder("4242", true);
      const row = await [env.DB, env.SHARD_1]
        [shard]!.prepare("SELECT id FROM events WHERE provider_id = ?1")
        .bind(orderId)
        .first<{ id: string }>();
      if (row) return orderId;
    }
  }

  /** The PUT with the record and alerts its answer leaves in waitUntil done, as the runtime would. */
  async function relayed(orderId: string, update: unknown, overrides: Record<string, unknown> = {}) {
    const ctx = createExecutionContext();
    const request = new Request(`${ROUTER}/relay/weedmaps/orders/${encodeURIComponent(orderId)}/status`, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: `Bearer ${TEST_SECRETS.RELAY_POS_TOKEN}` },
      body: JSON.stringify(update),
    }) as Parameters<typeof worker.fetch>[0];
    const res = await worker.fetch(request, { ...bindings, ...overrides } as Env, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  }

  const capacityOf = (shard: number) =>
    env.DB.prepare("SELECT measured_at, window_events FROM shard_capacity WHERE shard_id = ?1")
      .bind(shard)
      .first<{ measured_at: number; window_events: number }>();
  const updatesOf = async (orderId: string) =>
    (
      await Promise.all(
        [env.DB, env.SHARD_1].map((db) =>
          db
            .prepare("SELECT COUNT(*) AS n FROM events WHERE provider_id = ?1 AND event_type LIKE 'relay.%'")
            .bind(orderId)
            .first<number>("n"),
        ),
      )
    ).reduce<number>((sum, n) => sum + (n ?? 0), 0);
  const tight = () => {
    const config = JSON.parse(env.ROUTER_CONFIG as string) as { limits: Record<string, unknown> };
    return JSON.stringify({ ...config, limits: { ...config.limits, capacity: { limitBytes: 4_096 } } });
  };

  it("records an accepted update in its shard's size and rate, as an ingested event is", async () => {
    const orderId = await orderIn(1);
    // No record yet (another test's clock may have written one days ahead of this one's, which a record never
    // overwrites), and an isolate that has done nothing else: whatever it records, the relay's request made it see.
    await env.DB.exec("DELETE FROM shard_capacity");
    worker = createWorker({ clock });
    clock.advance(1_000);
    const res = await relayed(orderId, { status: "IN_PROGRESS" });
    expect(res.status).toBe(202);
    const { updateId } = await res.json<{ updateId: string }>();
    const shard = shardOfEventId(updateId)!;
    expect(await capacityOf(shard)).toEqual({ measured_at: clock.now(), window_events: 1 });
  });

  it("answers 503 storage_full with Retry-After, storing nothing, when no shard has room; a known status still answers", async () => {
    const [inZero, inOne] = [await orderIn(0), await orderIn(1)];
    // This isolate has seen both shards: each Create was stored in one, and the relay reads the order everywhere.
    expect((await relayed(inZero, { status: "IN_PROGRESS" })).status).toBe(202);
    expect((await relayed(inOne, { status: "IN_PROGRESS" })).status).toBe(202);
    const before = await updatesOf(inOne);
    const res = await relayed(inOne, { status: "COMPLETE" }, { ROUTER_CONFIG: tight() });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("300");
    expect(await res.json()).toMatchObject({ error: { code: "storage_full" } });
    expect(await updatesOf(inOne)).toBe(before);
    const alerts = queue.messages.flatMap((m) => {
      const body = m.body as unknown as { kind?: string; alert?: { kind: string; reason: string } };
      return body.kind === "alert" && body.alert ? [body.alert] : [];
    });
    expect(alerts.filter((a) => a.kind === "storage_full")).toEqual([
      expect.objectContaining({ reason: expect.stringContaining("(every shard past its read-only line)") }),
    ]);
    // The status the order already has stores nothing, so it is answered all the same.
    const same = await relayed(inOne, { status: "IN_PROGRESS" }, { ROUTER_CONFIG: tight() });
    expect(same.status).toBe(202);
    expect(await same.json()).toMatchObject({ duplicate: true });
  });

  it("answers 503 storage_full when D1 itself refuses the write as full", async () => {
    const orderId = await orderIn(0);
    const res = await relayed(
      orderId,
      { status: "IN_PROGRESS" },
      { DB: refusingEventInserts(env.DB), SHARD_1: refusingEventInserts(env.SHARD_1) },
    );
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("300");
    expect(await res.json()).toMatchObject({ error: { code: "storage_full" } });
    expect(await updatesOf(orderId)).toBe(0);
  });

  it("writes an operator's forced update past the read-only line, and answers storage_full only when D1 refuses it", async () => {
    const orderId = await orderIn(0);
    const force = async (status: string, overrides: Record<string, unknown>) => {
      const request = new Request(`${ROUTER}/admin/relay/weedmaps/orders/${encodeURIComponent(orderId)}/status`, {
        method: "POST",
        headers: { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ status, reason: "the store asked" }),
      }) as Parameters<typeof worker.fetch>[0];
      const ctx = createExecutionContext();
      const res = await worker.fetch(request, { ...bindings, ...overrides } as Env, ctx);
      await waitOnExecutionContext(ctx);
      return res;
    };
    // The line that refuses a POS's update (the test above) leaves room for the operator's.
    expect((await relayed(orderId, { status: "IN_PROGRESS" }, { ROUTER_CONFIG: tight() })).status).toBe(503);
    expect((await force("IN_PROGRESS", { ROUTER_CONFIG: tight() })).status).toBe(202);
    expect(await updatesOf(orderId)).toBe(1);
    const full = await force("READY_FOR_ATTAINMENT", {
      DB: refusingEventInserts(env.DB),
      SHARD_1: refusingEventInserts(env.SHARD_1),
    });
    expect(full.status).toBe(503);
    expect(full.headers.get("retry-after")).toBe("300");
    expect(await full.json()).toMatchObject({ error: { code: "storage_full" } });
    expect(await updatesOf(orderId)).toBe(1);
  });
});

describe("delivery to Weedmaps' Orders API", () => {
  it("fetches one token for many concurrent batches, reuses it until day 7, and never asks twice a minute", async () => {
    const ids = await Promise.all(Array.from({ length: 30 }, () => createOrder()));
    for (const id of ids) await accepted(id, { status: "IN_PROGRESS" });
    const bodies = queue.messages.splice(0).map((m) => m.body);
    // Three consumer invocations at once, as Queues may run them: one fetch, joined by all.
    await Promise.all(
      [0, 10, 20].map(async (start) => {
        const batch = createMessageBatch(
          "webhook-deliveries",
          bodies.slice(start, start + 10).map((body) => ({
            id: `relay-msg-${++messageCounter}`,
            timestamp: new Date(),
            attempts: 1,
            body,
          })),
        );
        await worker.queue(batch, bindings, createExecutionContext());
      }),
    );
    expect(api.tokenRequests).toHaveLength(1);
    expect(api.puts).toHaveLength(30);
    expect(new Set(api.puts.map((p) => p.auth))).toEqual(new Set(["Bearer tok-1"]));

    clock.advance(6 * 86_400_000);
    for (const id of ids.slice(0, 3)) await accepted(id, { status: "READY_FOR_ATTAINMENT" });
    await deliverQueued();
    expect(api.tokenRequests).toHaveLength(1);
    clock.advance(86_400_000);
    for (const id of ids.slice(0, 3)) await accepted(id, { status: "COMPLETE" });
    await deliverQueued();
    expect(api.tokenRequests).toHaveLength(2);
    expect(api.puts.at(-1)!.auth).toBe("Bearer tok-2");
  });

  it("on a 401 drops the token and fetches a new one, at most once a minute", async () => {
    const orderId = await createOrder();
    await accepted(orderId, { status: "IN_PROGRESS" });
    await deliverQueued();
    expect(api.tokenRequests).toHaveLength(1);
    // Weedmaps stops taking the token (revoked): the next PUT is a 401.
    const other = await createOrder();
    const { updateId } = await accepted(other, { status: "IN_PROGRESS" });
    api.next.push({ status: 401, body: "{}" });
    const { retries } = await deliverQueued();
    expect(retries).toHaveLength(1);
    expect((await deliveriesOf(updateId))[0]).toMatchObject({ status: "pending", attempts: 1, last_status_code: 401 });
    const message = { v: 1, eventId: updateId, deliveries: [{ destination: "wm-api", generation: 1 }] };
    // Within the minute after the last fetch the object has no token to give: the update waits, unsent.
    clock.advance(30_000);
    await runOne(message);
    expect(api.tokenRequests).toHaveLength(1);
    expect(api.puts).toHaveLength(2);
    expect((await deliveriesOf(updateId))[0]).toMatchObject({ status: "pending", last_error: "token_unavailable" });
    clock.advance(31_000);
    await runOne(message);
    expect(api.tokenRequests).toHaveLength(2);
    expect(api.puts).toHaveLength(3);
    expect((await deliveriesOf(updateId))[0]).toMatchObject({ status: "delivered", attempts: 3 });
  });

  it("retries 429 and 5xx after Retry-After; 422 dies with Weedmaps' answer kept; 423 dies and alerts", async () => {
    const [a, b, c] = [await createOrder(), await createOrder(), await createOrder()];
    const ua = await accepted(a, { status: "IN_PROGRESS" });
    api.next.push({ status: 429, headers: { "Retry-After": "17" }, body: "{}" });
    const at = clock.now();
    let { retries } = await deliverQueued();
    expect(retries).toHaveLength(1);
    // Weedmaps' Retry-After sets the next attempt (the plugin's queue result drops the delay itself).
    expect((await deliveriesOf(ua.updateId))[0]).toMatchObject({
      status: "pending",
      last_status_code: 429,
      next_attempt_at: at + 17_000,
    });

    const ub = await accepted(b, { status: "IN_PROGRESS" });
    api.next.push({ status: 422, body: '{"errors":[{"detail":"status transition not allowed"}]}' });
    await deliverQueued();
    const [dead] = await deliveriesOf(ub.updateId);
    expect(dead).toMatchObject({ status: "dead", last_status_code: 422, last_error: "http_422 (permanent)" });
    const log = JSON.parse(dead!.attempt_log) as { responseExcerpt: string }[];
    // Kept sealed, like every answer: readable through the admin API, not in the row.
    expect(log[0]!.responseExcerpt).not.toContain("transition");
    const shown = await send(`/admin/events/${ub.updateId}?reveal=true`, {
      headers: {
        authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}`,
        "x-reveal-token": TEST_SECRETS.ADMIN_REVEAL_TOKEN,
      },
    });
    expect(await shown.text()).toContain("status transition not allowed");

    const uc = await accepted(c, { status: "IN_PROGRESS" });
    api.next.push({ status: 423, body: "{}" });
    ({ retries } = await deliverQueued());
    expect((await deliveriesOf(uc.updateId))[0]).toMatchObject({
      status: "dead",
      last_error: "http_423 (integration paused or no access)",
    });
    const alerts = queue.messages.filter((m) => "kind" in m.body).map((m) => m.body as unknown as AlertMessage);
    expect(alerts.map((m) => m.alert.kind)).toContain("integration_paused");
    expect(alerts.find((m) => m.alert.kind === "integration_paused")!.alert).toMatchObject({
      destination: "wm-api",
      eventIds: [uc.updateId],
    });
  });
});

async function runOne(body: unknown) {
  const batch = createMessageBatch("webhook-deliveries", [
    { id: `relay-msg-${++messageCounter}`, timestamp: new Date(), attempts: 2, body },
  ]);
  const ctx = createExecutionContext();
  await worker.queue(batch, bindings, ctx);
  return getQueueResult(batch, ctx);
}

describe("the Orders API's rate limit", () => {
  it("holds 420 requests per 10 s under a burst of 2,000 updates for 50 merchants, counted by the API", async () => {
    const merchants = Array.from({ length: 50 }, (_, i) => String(7000 + i));
    // 2,000 updates: 667 orders, three steps each (one order two), 50 merchants, all accepted before any is sent.
    const ids: string[] = [];
    for (let i = 0; i < 667; i += 50)
      ids.push(...(await Promise.all(merchants.slice(0, Math.min(50, 667 - i)).map((m) => createOrder(m)))));
    const steps = ["IN_PROGRESS", "READY_FOR_ATTAINMENT", "COMPLETE"];
    const updates = ids.flatMap((id, i) =>
      steps.slice(0, i === ids.length - 1 ? 2 : 3).map((status) => ({ id, status })),
    );
    expect(updates).toHaveLength(2_000);
    for (const status of steps) {
      const now = updates.filter((u) => u.status === status);
      for (let i = 0; i < now.length; i += 50)
        await Promise.all(now.slice(i, i + 50).map((u) => accepted(u.id, { status: u.status })));
    }
    // Queues as a clock: each message is handed to the consumer when its delay is over, ten at a time.
    let due = queue.messages.splice(0).map((m) => ({ body: m.body, at: clock.now() }));
    for (let second = 0; due.length > 0 && second < 600; second++) {
      const ready = due.filter((m) => m.at <= clock.now());
      due = due.filter((m) => m.at > clock.now());
      for (let i = 0; i < ready.length; i += 10) {
        const batch = createMessageBatch(
          "webhook-deliveries",
          ready.slice(i, i + 10).map(({ body }) => ({
            id: `relay-msg-${++messageCounter}`,
            timestamp: new Date(),
            attempts: 1,
            body,
          })),
        );
        await worker.queue(batch, bindings, createExecutionContext());
      }
      due.push(
        ...queue.messages
          .splice(0)
          .filter((m) => !("kind" in m.body))
          .map((m) => ({ body: m.body, at: clock.now() + (m.delaySeconds ?? 0) * 1000 })),
      );
      clock.advance(1_000);
    }
    const puts = api.puts.length;
    expect(puts).toBe(2_000);
    expect(api.tooMany).toBe(0);
    const busiest = Math.max(...api.requests.map((t) => api.requests.filter((u) => u >= t && u < t + 10_000).length));
    expect(busiest).toBeLessThanOrEqual(420);
    expect(api.tokenRequests).toHaveLength(1);
  }, 120_000);
});

describe("updates of one order in one batch", () => {
  it("go to Weedmaps oldest first, one after another, and one a later update overtook is never sent", async () => {
    const orderId = await createOrder();
    await accepted(orderId, { status: "IN_PROGRESS" });
    clock.advance(1);
    await accepted(orderId, { status: "READY_FOR_ATTAINMENT" });
    clock.advance(1);
    await accepted(orderId, { status: "COMPLETE" });
    // Queues may hand them over in any order.
    const [first, ...rest] = queue.messages.splice(0);
    queue.messages.push(...rest.reverse());
    await deliverQueued();
    expect(api.puts.map((p) => JSON.parse(p.body).status)).toEqual(["READY_FOR_ATTAINMENT", "COMPLETE"]);
    // The IN_PROGRESS arrives after COMPLETE was delivered: stale, not sent.
    queue.messages.push(first!);
    await deliverQueued();
    expect(api.puts).toHaveLength(2);
    expect((await deliveriesOf(first!.body.eventId as string))[0]).toMatchObject({ status: "stale" });
  });
});

describe("operators and the order's timeline", () => {
  const admin = (method: string, path: string, body?: unknown) =>
    send(`/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  it("an operator forces a move back, audited; the order's timeline shows callbacks in and updates out with Weedmaps' answers", async () => {
    const orderId = await createOrder();
    const complete = await accepted(orderId, { status: "COMPLETE" });
    await deliverQueued();
    const refusedForce = await admin("POST", `/relay/weedmaps/orders/${orderId}/status`, { status: "IN_PROGRESS" });
    expect(refusedForce.status).toBe(400);
    const res = await admin("POST", `/relay/weedmaps/orders/${orderId}/status`, {
      status: "IN_PROGRESS",
      reason: "completed the wrong order",
    });
    expect(res.status).toBe(202);
    const forced = await res.json<{ updateId: string; previous: string; auditId: string }>();
    expect(forced.previous).toBe("COMPLETE");
    await deliverQueued();
    // The order is IN_PROGRESS again: the POS moves it forward from there.
    await accepted(orderId, { status: "READY_FOR_ATTAINMENT" });
    api.next.push({ status: 422, body: '{"errors":[{"detail":"invalid transition"}]}' });
    await deliverQueued();
    expect(api.puts.map((p) => JSON.parse(p.body).status)).toEqual(["COMPLETE", "IN_PROGRESS", "READY_FOR_ATTAINMENT"]);

    const audit = await (await admin("GET", `/audit?eventId=${forced.updateId}`)).json<{
      entries: { action: string; detail: Record<string, unknown> }[];
    }>();
    expect(audit.entries).toEqual([
      expect.objectContaining({
        action: "relay_force",
        detail: expect.objectContaining({
          status: "IN_PROGRESS",
          previous: "COMPLETE",
          reason: "completed the wrong order",
        }),
      }),
    ]);

    const timeline = await (await admin("GET", `/events?orderId=${orderId}&limit=10`)).json<{
      events: { id: string; eventType: string; deliveries: { delivered: number; dead: number } }[];
    }>();
    const byType = Object.fromEntries(timeline.events.map((e) => [e.eventType, e]));
    expect(Object.keys(byType).sort()).toEqual([
      "create",
      "relay.complete",
      "relay.in_progress",
      "relay.ready_for_attainment",
    ]);
    expect(byType["relay.complete"]).toMatchObject({ id: complete.updateId, deliveries: { delivered: 1, dead: 0 } });
    expect(byType["relay.ready_for_attainment"]!.deliveries).toMatchObject({ delivered: 0, dead: 1 });
    const detail = await (await admin("GET", `/events/${byType["relay.ready_for_attainment"]!.id}`)).json<{
      deliveries: { destination: string; status: string; lastStatusCode: number; route: string }[];
    }>();
    expect(detail.deliveries).toEqual([
      expect.objectContaining({ destination: "wm-api", route: "relay", status: "dead", lastStatusCode: 422 }),
    ]);
    const order = await (await admin("GET", `/relay/weedmaps/orders/${orderId}`)).json<{
      status: string;
      setBy: string;
      listingId: string;
      events: { id: string; direction: string; eventType: string }[];
    }>();
    expect(order).toMatchObject({ status: "READY_FOR_ATTAINMENT", listingId: "4242" });
    expect(order.setBy).toBe(byType["relay.ready_for_attainment"]!.id);
    // All at one instant of the test's clock: newest first is then by id, so compare as a set.
    expect(order.events.map((e) => `${e.direction} ${e.eventType}`).sort()).toEqual([
      "in create",
      "out relay.complete",
      "out relay.in_progress",
      "out relay.ready_for_attainment",
    ]);
    // The dashboard's search by order says where the order stands, above its events in and out.
    const signIn = await send("/dashboard/sign-in", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: ROUTER },
      body: new URLSearchParams({ token: TEST_SECRETS.ADMIN_TOKEN }).toString(),
      redirect: "manual",
    });
    const cookie = signIn.headers.get("set-cookie")!.split(";")[0]!;
    const page = await (await send(`/dashboard/events?orderId=${orderId}`, { headers: { cookie } })).text();
    expect(visible(page)).toContain(`Order ${orderId} at Weedmaps (weedmaps): READY_FOR_ATTAINMENT`);
    expect(visible(page)).toContain(`set by the update ${order.setBy} sent through the status relay`);
    for (const type of ["create", "relay.complete", "relay.in_progress", "relay.ready_for_attainment"])
      expect(page).toContain(type);

    // A dead update is a dead letter, replayed like any delivery.
    const dead = byType["relay.ready_for_attainment"]!.id;
    const replay = await admin("POST", `/events/${dead}/replay`, {});
    expect(replay.status, await replay.clone().text()).toBeLessThan(300);
    await deliverQueued();
    expect(api.puts).toHaveLength(4);
    expect((await deliveriesOf(dead)).at(-1)).toMatchObject({ status: "delivered" });
  });
});

describe("an order's state (src/core/relay.ts)", () => {
  const row = (id: string, eventType: string, receivedAt: number, sequence = 0, held = false): OrderEventRow => ({
    id,
    eventType,
    idempotencyKey: sequence ? relayIdempotencyKey("weedmaps", "o-1", sequence) : `weedmaps:weedmaps:${eventType}:o-1`,
    merchantId: "4242",
    receivedAt,
    held,
  });

  it("takes updates in the order they were accepted, whatever clock stamped them, and callbacks only forward", () => {
    const state = orderState(
      [
        row("c", "create", 1_000),
        row("u1", "relay.in_progress", 2_000, 1),
        // Accepted after u1 by an isolate whose clock ran behind.
        row("u2", "relay.ready_for_attainment", 1_990, 2),
        // Weedmaps echoes the IN_PROGRESS late: never back.
        row("cb", "in_progress", 3_000),
        row("d", "draft", 500),
      ],
      DEFAULT_TRANSITIONS,
    );
    expect(state).toEqual({
      create: { id: "c", merchantId: "4242", held: false },
      status: "READY_FOR_ATTAINMENT",
      updateId: "u2",
      updates: 2,
    });
    // Weedmaps' own ending moves it forward, and is then where it stands.
    expect(orderState([row("c", "create", 1), row("x", "complete", 2)], DEFAULT_TRANSITIONS)).toMatchObject({
      status: "COMPLETE",
      updateId: null,
    });
    // A held Create knows the order but says nothing of its state.
    expect(orderState([row("c", "create", 1, 0, true)], DEFAULT_TRANSITIONS)).toMatchObject({
      create: { held: true },
      status: null,
    });
  });

  it("decides: unchanged, accepted, refused going back or out of an ending, or forced", () => {
    const at = (status: string | null) => ({
      create: { id: "c", merchantId: "4242", held: false },
      status: status as never,
      updateId: "u",
      updates: 1,
    });
    expect(decideUpdate(at("IN_PROGRESS"), { status: "IN_PROGRESS" }, DEFAULT_TRANSITIONS, false)).toEqual({
      kind: "unchanged",
      updateId: "u",
    });
    expect(decideUpdate(at(null), { status: "COMPLETE" }, DEFAULT_TRANSITIONS, false)).toEqual({ kind: "accept" });
    expect(decideUpdate(at("COMPLETE"), { status: "FAILED" }, DEFAULT_TRANSITIONS, false)).toMatchObject({
      kind: "conflict",
      current: "COMPLETE",
    });
    expect(decideUpdate(at("COMPLETE"), { status: "IN_PROGRESS" }, DEFAULT_TRANSITIONS, true)).toEqual({
      kind: "accept",
    });
    // A way back from an ending is a cycle, named from where it starts to where it comes back.
    const cycle = transitionCycle({ ...DEFAULT_TRANSITIONS, COMPLETE: ["IN_PROGRESS"] })!;
    expect(cycle[0]).toBe(cycle.at(-1));
    expect(cycle).toContain("COMPLETE");
    expect(transitionCycle(DEFAULT_TRANSITIONS)).toBeNull();
  });
});
