import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import { MAX_CONCURRENT_REQUESTS } from "../src/delivery/consumer.ts";
import type { DeliveryMessage } from "../src/core/messages.ts";
import { plannedDeliveries } from "../src/core/delivery-state.ts";
import {
  OUTBOX_CLAIM_MS,
  SWEEP_CURSOR,
  sweep as sweepAll,
  sweepOutbox as sweepOutboxes,
  sweepOverdue as sweepOverdueAll,
  SWEEP_GRACE_MS,
} from "../src/delivery/sweeper.ts";
import { loadConfig } from "../src/config/load.ts";
import { shardOfEventId } from "../src/core/event-id.ts";
import { insertOutbox } from "../src/storage/outbox.ts";
import {
  captureDeliveryQueue,
  dbOfEvent,
  deferred,
  deliveriesOf,
  fixture,
  ManualClock,
  post,
  postWeedmaps,
  runDeliveryQueue,
  runQueueOn,
  runScheduled,
  storedPayloads,
  stubDestinations,
  stubSilentDestination,
  type FetchHandler,
} from "./helpers.ts";

/** Both shards of the test config (shard 0 is DB, also the control database). */
const shards = [env.DB, env.SHARD_1];
const config = () => loadConfig(env);
const sweep = (e: Env, now: number, graceMs?: number) => sweepAll(e, config(), now, graceMs);
const sweepOutbox = (e: Env, now: number) => sweepOutboxes(e, config(), now);
const sweepOverdue = (e: Env, now: number, scan?: { pageRows: number; pages: number }) =>
  sweepOverdueAll(e, config(), now, scan);

let queue: ReturnType<typeof captureDeliveryQueue>;
beforeEach(async () => {
  queue = captureDeliveryQueue();
  // The tests of this file share its databases. Each test's walk starts from the first event of each shard, and its
  // outbox sweep finds only the rows it put there, whatever an earlier test left.
  for (const db of shards) await db.batch([db.prepare("DELETE FROM sweeper_state"), db.prepare("DELETE FROM outbox")]);
});
afterEach(() => vi.restoreAllMocks());

let counter = 0;

/** Ingests an unsigned `lab` event whose route sends it to the destinations named by `kind`. */
async function ingestLab(kind: string): Promise<{ eventId: string; body: string; message: DeliveryMessage }> {
  const body = JSON.stringify({ id: `lab-${++counter}`, kind, at: "2026-11-23T10:00:00Z" });
  const res = await post(`/webhooks/lab/${kind}`, body);
  expect(res.status).toBe(200);
  const { eventId } = await res.json<{ eventId: string }>();
  const message = queue.messages.find((m) => m.body.eventId === eventId)!.body;
  queue.messages.length = 0;
  return { eventId, body, message };
}

function byHost(handlers: Record<string, FetchHandler>): FetchHandler {
  return (request) => {
    const handler = handlers[new URL(request.url).hostname];
    if (!handler) throw new TypeError(`no stub for ${request.url}`);
    return handler(request);
  };
}

function sequence(...responses: (() => Response | Promise<Response>)[]): FetchHandler {
  let call = 0;
  return () => responses[Math.min(call++, responses.length - 1)]!();
}

const ok = () => new Response("ok", { status: 200 });
const status =
  (code: number, headers: Record<string, string> = {}) =>
  () =>
    new Response(`status ${code}`, { status: code, headers });

describe("delivery", () => {
  it("POSTs the original bytes with the original content type, routing headers, static headers and a Standard Webhooks signature", async () => {
    const seen = stubDestinations(ok);
    const f = fixture("weedmaps/create");
    const res = await post("/webhooks/weedmaps?merchant_id=4242", f.body, {
      Signature: f.signature,
      "content-type": "application/json; charset=utf-8",
    });
    const { eventId } = await res.json<{ eventId: string }>();
    const { result, ids } = await runDeliveryQueue([queue.messages[0]!.body]);
    expect(result.explicitAcks).toEqual(ids);
    expect(result.retryMessages).toEqual([]);

    expect(seen.requests.map((r) => r.url).sort()).toEqual([
      "https://erp.example.test/webhooks",
      "https://pos.example.test/orders",
    ]);
    for (const [i, request] of seen.requests.entries()) {
      expect(request.method).toBe("POST");
      expect(seen.bodies[i]).toBe(f.body);
      expect(request.headers.get("content-type")).toBe("application/json; charset=utf-8");
      expect(request.headers.get("webhook-id")).toBe(eventId);
      expect(request.headers.get("x-router-event-id")).toBe(eventId);
      expect(request.headers.get("x-router-source")).toBe("weedmaps");
      expect(request.headers.get("x-router-event-type")).toBe("create");
      expect(request.headers.get("x-router-merchant-id")).toBe("4242");
      expect(request.headers.get("x-router-attempt")).toBe("1");
      const secret = request.url.includes("pos.") ? env.POS_SIGNING_SECRET : env.ERP_SIGNING_SECRET;
      expect(new Webhook(secret as string).verify(seen.bodies[i]!, Object.fromEntries(request.headers))).toEqual(
        JSON.parse(f.body),
      );
      expect(() =>
        new Webhook(env.PRICING_SIGNING_SECRET as string).verify(seen.bodies[i]!, Object.fromEntries(request.headers)),
      ).toThrow();
    }
    const pos = seen.requests.find((r) => r.url.includes("pos."))!;
    expect(pos.headers.get("authorization")).toBe(`Bearer ${env.POS_API_TOKEN}`);

    const deliveries = await deliveriesOf(eventId);
    expect(deliveries.map((d) => [d.destination, d.status, d.attempts, d.last_status_code])).toEqual([
      ["erp", "delivered", 1, 200],
      ["pos", "delivered", 1, 200],
    ]);
    const [attempt] = JSON.parse(deliveries[0]!.attempt_log);
    // What the destination answered is kept sealed with the event's data key, like its body.
    expect(attempt).toEqual({
      attempt: 1,
      at: expect.any(Number),
      statusCode: 200,
      latencyMs: expect.any(Number),
      errorClass: null,
      responseExcerpt: expect.stringMatching(/^pe1:/),
    });
    expect(await (await storedPayloads(eventId)).payloads.openText("excerpt", attempt.responseExcerpt)).toBe("ok");
  });

  it("retries a 500 with backoff and delivers on a later attempt, recording every attempt", async () => {
    stubDestinations(byHost({ "pos.example.test": sequence(status(500), status(502), ok) }));
    const { eventId, message } = await ingestLab("single");
    const first = await runDeliveryQueue([message]);
    expect(first.result.explicitAcks).toEqual([]);
    expect(first.result.retryMessages).toEqual([{ msgId: first.ids[0], delaySeconds: expect.any(Number) }]);
    const delay = (first.result.retryMessages[0] as { delaySeconds: number }).delaySeconds;
    expect(delay).toBeGreaterThanOrEqual(15);
    expect(delay).toBeLessThanOrEqual(30);
    await runDeliveryQueue([message], 2);
    const third = await runDeliveryQueue([message], 3);
    expect(third.result.explicitAcks).toEqual(third.ids);
    const [delivery] = await deliveriesOf(eventId);
    expect(delivery).toMatchObject({ status: "delivered", attempts: 3, last_status_code: 200, last_error: null });
    expect(
      JSON.parse(delivery!.attempt_log).map((a: { statusCode: number; errorClass: string | null }) => [
        a.statusCode,
        a.errorClass,
      ]),
    ).toEqual([
      [500, "http_500"],
      [502, "http_502"],
      [200, null],
    ]);
  });

  it("times a slow destination out when its timeout passes, and retries it", async () => {
    const clock = new ManualClock();
    const arrived = stubSilentDestination();
    const { eventId, message } = await ingestLab("single");
    const run = runQueueOn(createWorker({ clock }), [message]);
    const request = await arrived;
    clock.advance(1_999);
    expect(request.signal.aborted).toBe(false);
    // The pos destination's timeoutMs is 2,000.
    clock.advance(1);
    const { result } = await run;
    expect(request.signal.aborted).toBe(true);
    expect(result.retryMessages).toHaveLength(1);
    const [delivery] = await deliveriesOf(eventId);
    expect(delivery).toMatchObject({ status: "pending", attempts: 1, last_status_code: null, last_error: "timeout" });
    expect(JSON.parse(delivery!.attempt_log)[0]).toMatchObject({ latencyMs: 2_000, errorClass: "timeout" });
  });

  it("honours Retry-After on a 429", async () => {
    stubDestinations(status(429, { "retry-after": "120" }));
    const { eventId, message } = await ingestLab("single");
    const { result, ids } = await runDeliveryQueue([message]);
    expect(result.retryMessages).toEqual([{ msgId: ids[0], delaySeconds: 120 }]);
    const [delivery] = await deliveriesOf(eventId);
    expect(delivery).toMatchObject({ status: "pending", last_status_code: 429, last_error: "http_429" });
    expect(delivery!.next_attempt_at - JSON.parse(delivery!.attempt_log)[0].at).toBe(120_000);
  });

  it("fails a 4xx the destination meant (422) permanently at once, with no retry", async () => {
    const seen = stubDestinations(status(422));
    const { eventId, message } = await ingestLab("single");
    const { result, ids } = await runDeliveryQueue([message]);
    expect(result.explicitAcks).toEqual(ids);
    expect(result.retryMessages).toEqual([]);
    expect(seen.requests).toHaveLength(1);
    expect((await deliveriesOf(eventId))[0]).toMatchObject({
      status: "dead",
      attempts: 1,
      last_status_code: 422,
      last_error: "http_422 (permanent)",
    });
  });

  it("retries a 4xx the destination lists in retryOnStatus", async () => {
    stubDestinations(status(409));
    const { eventId, message } = await ingestLab("conflict");
    const { result } = await runDeliveryQueue([message]);
    expect(result.retryMessages).toHaveLength(1);
    expect((await deliveriesOf(eventId))[0]).toMatchObject({ status: "pending", last_error: "http_409" });
  });

  it("marks a delivery dead after its last attempt, with the last error, and stops retrying", async () => {
    stubDestinations(status(503));
    const { eventId, message } = await ingestLab("single");
    for (let attempt = 1; attempt <= 2; attempt++) {
      expect((await runDeliveryQueue([message], attempt)).result.retryMessages).toHaveLength(1);
    }
    const last = await runDeliveryQueue([message], 3);
    expect(last.result.explicitAcks).toEqual(last.ids);
    expect((await deliveriesOf(eventId))[0]).toMatchObject({
      status: "dead",
      attempts: 3,
      last_error: "http_503 (after 3 attempts)",
    });
  });

  it("acknowledges a redelivered message for a delivered delivery without POSTing again", async () => {
    const seen = stubDestinations(ok);
    const { message } = await ingestLab("single");
    await runDeliveryQueue([message]);
    expect(seen.requests).toHaveLength(1);
    const again = await runDeliveryQueue([message], 1);
    expect(again.result.explicitAcks).toEqual(again.ids);
    expect(seen.requests).toHaveLength(1);
  });

  it("sends a malformed message to the dead-letter queue with a log line, without crashing its batch", async () => {
    const dlq = vi.spyOn(env.DEAD_LETTER_QUEUE, "send");
    const errors = vi.spyOn(console, "error");
    const seen = stubDestinations(ok);
    const { eventId, message } = await ingestLab("single");
    const { result, ids } = await runDeliveryQueue([{ v: 1, eventId: "not-an-id" }, message, "garbage"]);
    expect(result.outcome).toBe("ok");
    expect(result.explicitAcks.sort()).toEqual([...ids].sort());
    expect(dlq).toHaveBeenCalledTimes(2);
    expect(dlq.mock.calls[0]![0]).toMatchObject({ malformed: true, messageId: ids[0] });
    expect(errors.mock.calls.map((c) => JSON.parse(String(c[0])).event)).toContain("delivery_message_malformed");
    expect(seen.requests).toHaveLength(1);
    expect((await deliveriesOf(eventId))[0]!.status).toBe("delivered");
  });

  it("gives each message of a mixed batch its own ack or retry", async () => {
    stubDestinations(
      byHost({ "pos.example.test": ok, "erp.example.test": status(500), "conflicty.example.test": status(422) }),
    );
    const a = await ingestLab("single");
    const b = await ingestLab("pair");
    const c = await ingestLab("conflict");
    queue.messages.length = 0;
    const { result, ids } = await runDeliveryQueue([a.message, b.message, c.message]);
    // a: delivered; b: pos delivered, erp split off into its own delayed message; c: permanent failure.
    expect(result.explicitAcks.sort()).toEqual([...ids].sort());
    expect(result.retryMessages).toEqual([]);
    // Besides the retry, c's dead delivery raised an alert (its own message, see test/controls.test.ts).
    expect(queue.messages.filter((m) => !("kind" in m.body))).toEqual([
      {
        body: { v: 1, eventId: b.eventId, deliveries: [{ destination: "erp", generation: 1 }] },
        delaySeconds: expect.any(Number),
      },
    ]);
    expect(
      queue.messages
        .filter((m) => "kind" in m.body)
        .map((m) => (m.body as unknown as { alert: { kind: string } }).alert.kind),
    ).toEqual(["delivery_dead"]);
    expect((await deliveriesOf(b.eventId)).map((d) => [d.destination, d.status])).toEqual([
      ["erp", "pending"],
      ["pos", "delivered"],
    ]);
    expect((await deliveriesOf(c.eventId))[0]!.status).toBe("dead");
  });

  it("records the outcomes of several messages of one event handled at once, none lost to the race", async () => {
    stubDestinations(ok);
    const { eventId } = await ingestLab("ten");
    // Ten split-off retries of one fan-out in one batch: ten writers of the same row, each starting from version 0.
    const messages = Array.from({ length: 10 }, (_, i) => ({
      v: 1,
      eventId,
      deliveries: [{ destination: `d${String(i + 1).padStart(2, "0")}`, generation: 1 }],
    }));
    const { result, ids } = await runDeliveryQueue(messages);
    expect(result.explicitAcks.sort()).toEqual([...ids].sort());
    const deliveries = await deliveriesOf(eventId);
    expect(deliveries.map((d) => [d.status, d.attempts, JSON.parse(d.attempt_log).length])).toEqual(
      Array(10).fill(["delivered", 1, 1]),
    );
    const version = await dbOfEvent(eventId)
      .prepare("SELECT version FROM events WHERE id = ?1")
      .bind(eventId)
      .first<number>("version");
    expect(version).toBe(10);
  });

  it("retries a message whose processing fails, and never acks it", async () => {
    stubDestinations(ok);
    const { eventId, message } = await ingestLab("single");
    const db = dbOfEvent(eventId);
    await db.exec("ALTER TABLE events RENAME TO events_offline");
    try {
      const { result, ids } = await runDeliveryQueue([message]);
      expect(result.explicitAcks).toEqual([]);
      expect(result.retryMessages).toEqual([{ msgId: ids[0], delaySeconds: expect.any(Number) }]);
    } finally {
      await db.exec("ALTER TABLE events_offline RENAME TO events");
    }
  });

  it("fans out to ten destinations holding at most the connection bound, each timeout starting when its request does", async () => {
    // Ten destinations with 400 ms timeouts that each answer after 250 ms. Through a bound of five connections, the
    // second five start 250 ms late: if their timeouts had started with the batch, they would fire at 400 ms.
    const clock = new ManualClock();
    const waiting: { request: Request; answer: (response: Response) => void }[] = [];
    let arrivals = deferred();
    let maxInFlight = 0;
    stubDestinations(
      (request) =>
        new Promise<Response>((answer, reject) => {
          waiting.push({ request, answer });
          maxInFlight = Math.max(maxInFlight, waiting.length);
          request.signal.addEventListener("abort", () => reject(request.signal.reason));
          if (waiting.length === MAX_CONCURRENT_REQUESTS) arrivals.resolve();
        }),
    );
    const { eventId, message } = await ingestLab("ten");
    expect(message.deliveries).toHaveLength(10);
    const run = runQueueOn(createWorker({ clock }), [message]);
    for (let wave = 0; wave < 2; wave++) {
      await arrivals.promise;
      arrivals = deferred();
      clock.advance(250);
      for (const { answer } of waiting.splice(0)) answer(new Response("ok"));
    }
    const { result, ids } = await run;
    expect(result.explicitAcks).toEqual(ids);
    expect(maxInFlight).toBe(MAX_CONCURRENT_REQUESTS);
    const deliveries = await deliveriesOf(eventId);
    expect(deliveries.map((d) => d.status)).toEqual(Array(10).fill("delivered"));
    expect(deliveries.map((d) => JSON.parse(d.attempt_log)[0].latencyMs)).toEqual(Array(10).fill(250));
  });

  it("never delays or repeats the healthy destinations of a fan-out when one fails", async () => {
    const calls: string[] = [];
    stubDestinations((request) => {
      const host = new URL(request.url).hostname;
      calls.push(host);
      return host === "d07.example.test" ? status(503)() : ok();
    });
    const { eventId, message } = await ingestLab("ten");
    await runDeliveryQueue([message]);
    const retry = queue.messages.find((m) => m.body.eventId === eventId)!;
    expect(retry.body.deliveries).toEqual([{ destination: "d07", generation: 1 }]);
    await runDeliveryQueue([retry.body], 1);
    expect(calls.filter((h) => h === "d01.example.test")).toHaveLength(1);
    expect(calls.filter((h) => h === "d07.example.test")).toHaveLength(2);
  });

  it("treats a missing signing secret as a retryable configuration error", async () => {
    const seen = stubDestinations(ok);
    const { eventId, message } = await ingestLab("nosecret");
    await runDeliveryQueue([message]);
    expect(seen.requests).toHaveLength(0);
    expect((await deliveriesOf(eventId))[0]).toMatchObject({ status: "pending", last_error: "config_error" });
    await runDeliveryQueue([message], 2);
    expect((await deliveriesOf(eventId))[0]).toMatchObject({
      status: "dead",
      last_error: "config_error (after 2 attempts)",
    });
  });

  it("marks pending deliveries dead, without sending, when their destination was disabled or removed after ingest", async () => {
    const seen = stubDestinations(ok);
    const { eventId } = await ingestLab("paused");
    // As if the config had changed since ingest: deliveries to a now-disabled and a now-removed destination.
    const [paused, ghost] = plannedDeliveries(
      ["paused", "ghost"].map((destination) => ({ destination, route: "lab-paused" })),
      0,
    ).map((d) => JSON.stringify(d));
    await dbOfEvent(eventId)
      .prepare(
        `UPDATE events SET deliveries = json_insert(deliveries, '$[#]', json(?2), '$[#]', json(?3)) WHERE id = ?1`,
      )
      .bind(eventId, paused, ghost)
      .run();
    const { result, ids } = await runDeliveryQueue([
      {
        v: 1,
        eventId,
        deliveries: [
          { destination: "paused", generation: 1 },
          { destination: "ghost", generation: 1 },
        ],
      },
    ]);
    expect(result.explicitAcks).toEqual(ids);
    expect(seen.requests).toHaveLength(0);
    expect((await deliveriesOf(eventId)).map((d) => [d.destination, d.status, d.last_error])).toEqual([
      ["erp", "pending", null],
      ["ghost", "dead", "destination_removed"],
      ["paused", "dead", "destination_disabled"],
    ]);
  });

  it("creates no delivery for a disabled destination", async () => {
    const { eventId, message } = await ingestLab("paused");
    expect(message.deliveries).toEqual([{ destination: "erp", generation: 1 }]);
    expect((await deliveriesOf(eventId)).map((d) => d.destination)).toEqual(["erp"]);
  });
});

describe("dead-letter queue consumer", () => {
  it("marks the deliveries of a message Queues gave up on as dead, leaving finished ones alone", async () => {
    stubDestinations(byHost({ "pos.example.test": ok, "erp.example.test": status(500) }));
    const { eventId, message } = await ingestLab("pair");
    await runDeliveryQueue([message]);
    const { result, ids } = await runDeliveryQueue([message], 1, "webhook-deliveries-dlq");
    expect(result.explicitAcks).toEqual(ids);
    expect((await deliveriesOf(eventId)).map((d) => [d.destination, d.status, d.last_error])).toEqual([
      ["erp", "dead", "queue_retries_exhausted"],
      ["pos", "delivered", null],
    ]);
  });

  it("ignores a message sent by a duplicate ingest, which names deliveries another request owns", async () => {
    const { eventId, message } = await ingestLab("single");
    const { result, ids } = await runDeliveryQueue(
      [{ ...message, ingestId: "another-request" }],
      1,
      "webhook-deliveries-dlq",
    );
    expect(result.explicitAcks).toEqual(ids);
    expect((await deliveriesOf(eventId)).map((d) => d.status)).toEqual(["pending"]);
  });
});

describe("outbox sweeper", () => {
  const outboxRows = async () => {
    let n = 0;
    for (const db of shards) n += (await db.prepare("SELECT COUNT(*) AS n FROM outbox").first<number>("n"))!;
    return n;
  };

  /** A Create whose queue send fails at ingest: its message goes to the outbox. */
  async function ingestWithQueueDown(orderId: string) {
    const body = fixture("weedmaps/create").body.replace("9763822", orderId);
    // The capturing spy from beforeEach fails this one send, then records the later sends.
    vi.mocked(env.DELIVERY_QUEUE.sendBatch).mockRejectedValueOnce(new Error("queue unavailable"));
    const res = await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", body);
    expect(res.status).toBe(200);
    const json = await res.json<{ eventId: string; enqueued: boolean }>();
    expect(json.enqueued).toBe(false);
    expect(await outboxRows()).toBe(1);
    return json.eventId;
  }

  it("sends a message kept in the outbox by a queue failure at ingest, once, and it is then delivered", async () => {
    const eventId = await ingestWithQueueDown("swept-1");
    expect(await sweepOutbox(env, Date.now())).toEqual({ sent: 1 });
    // Sent rows are deleted, so a second run (or an overlapping one) sends nothing again.
    expect(await sweepOutbox(env, Date.now())).toEqual({ sent: 0 });
    expect(await outboxRows()).toBe(0);
    const swept = queue.messages.filter((m) => m.body.eventId === eventId);
    expect(swept).toHaveLength(1);
    expect(swept[0]!.body).toEqual({
      v: 1,
      eventId,
      ingestId: expect.any(String),
      deliveries: expect.arrayContaining([
        { destination: "pos", generation: 1 },
        { destination: "erp", generation: 1 },
      ]),
    });

    stubDestinations(ok);
    await runDeliveryQueue([swept[0]!.body]);
    expect((await deliveriesOf(eventId)).map((d) => d.status)).toEqual(["delivered", "delivered"]);
  });

  it("keeps a row whose send fails during the sweep, and sends it once its claim has run out", async () => {
    const eventId = await ingestWithQueueDown("swept-2");
    const now = Date.now();
    vi.mocked(env.DELIVERY_QUEUE.sendBatch).mockRejectedValueOnce(new Error("queue still unavailable"));
    await expect(sweepOutbox(env, now)).rejects.toThrow("queue still unavailable");
    expect(await outboxRows()).toBe(1);
    // Claimed: an overlapping run in the claim period leaves it alone.
    expect(await sweepOutbox(env, now + 60_000)).toEqual({ sent: 0 });
    expect(await sweepOutbox(env, now + OUTBOX_CLAIM_MS + 1)).toEqual({ sent: 1 });
    expect(queue.messages.filter((m) => m.body.eventId === eventId)).toHaveLength(1);
    expect(await outboxRows()).toBe(0);
  });

  it("keeps a row whose deliveries it could not claim, and sends it once its claim has run out", async () => {
    const eventId = await ingestWithQueueDown("swept-unclaimed-1");
    // Every write of this event's delivery state silently changes nothing: to the claim it is a race lost every time.
    const db = dbOfEvent(eventId);
    await db.exec(
      `CREATE TRIGGER hold_${eventId} BEFORE UPDATE ON events WHEN OLD.id = '${eventId}' BEGIN SELECT RAISE(IGNORE); END`,
    );
    const now = Date.now();
    try {
      expect(await sweepOutbox(env, now)).toEqual({ sent: 0 });
      expect(await outboxRows()).toBe(1);
    } finally {
      await db.exec(`DROP TRIGGER hold_${eventId}`);
    }
    expect(await sweepOutbox(env, now + OUTBOX_CLAIM_MS + 1)).toEqual({ sent: 1 });
    expect(queue.messages.filter((m) => m.body.eventId === eventId)).toHaveLength(1);
    expect(await outboxRows()).toBe(0);
  });

  it("runs from the Cron Trigger's scheduled handler", async () => {
    const eventId = await ingestWithQueueDown("swept-3");
    expect((await runScheduled()).outcome).toBe("ok");
    expect(queue.messages.map((m) => m.body)).toContainEqual(expect.objectContaining({ v: 1, eventId }));
    expect(await outboxRows()).toBe(0);
  });
});

describe("outbox and walk together", () => {
  it("sends a delivery kept in the outbox once, though it is also overdue when the queue comes back", async () => {
    const body = fixture("weedmaps/create").body.replace("9763822", "swept-both-1");
    vi.mocked(env.DELIVERY_QUEUE.sendBatch).mockRejectedValueOnce(new Error("queue unavailable"));
    const { eventId } = await (await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", body)).json<{
      eventId: string;
    }>();
    // The outage outlasted the grace period: the outbox pass and the walk both see this event in one run.
    await sweep(env, Date.now() + SWEEP_GRACE_MS + 60_000);
    expect(queue.messages.filter((m) => m.body.eventId === eventId)).toHaveLength(1);
  });

  it("sends a delivery named by two outbox rows once", async () => {
    const { eventId, message } = await ingestLab("single");
    await insertOutbox(
      dbOfEvent(eventId),
      [message, { v: 1, eventId, deliveries: message.deliveries }],
      Date.now() - 1,
    );
    await sweepOutbox(env, Date.now());
    expect(queue.messages.filter((m) => m.body.eventId === eventId)).toHaveLength(1);
  });

  it("sends a row kept in another shard's outbox once, claiming its deliveries in the event's own shard", async () => {
    const { eventId, message } = await ingestLab("single");
    const other = shards[1 - shardOfEventId(eventId)!]!;
    await insertOutbox(other, [message], Date.now() - 1);
    const now = Date.now();
    expect(await sweepOutbox(env, now)).toEqual({ sent: 1 });
    expect(await sweepOutbox(env, now)).toEqual({ sent: 0 });
    expect(queue.messages.filter((m) => m.body.eventId === eventId)).toHaveLength(1);
    expect((await deliveriesOf(eventId))[0]).toMatchObject({ status: "pending", next_attempt_at: now });
    expect(await other.prepare("SELECT COUNT(*) AS n FROM outbox").first("n")).toBe(0);
  });

  it("does not send an outbox message whose deliveries were settled meanwhile, and deletes it", async () => {
    stubDestinations(ok);
    const body = fixture("weedmaps/create").body.replace("9763822", "swept-both-2");
    vi.mocked(env.DELIVERY_QUEUE.sendBatch).mockRejectedValueOnce(new Error("queue unavailable"));
    const { eventId } = await (await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", body)).json<{
      eventId: string;
    }>();
    await runDeliveryQueue([
      {
        v: 1,
        eventId,
        deliveries: [
          { destination: "pos", generation: 1 },
          { destination: "erp", generation: 1 },
        ],
      },
    ]);
    await sweepOutbox(env, Date.now());
    expect(queue.messages.filter((m) => m.body.eventId === eventId)).toEqual([]);
    expect(
      await dbOfEvent(eventId)
        .prepare("SELECT COUNT(*) AS n FROM outbox WHERE message ->> 'eventId' = ?1")
        .bind(eventId)
        .first("n"),
    ).toBe(0);
  });

  it("runs the walk even when the outbox pass fails, and reports the run as failed", async () => {
    const { eventId } = await ingestLab("single");
    const db = dbOfEvent(eventId);
    await db.exec("ALTER TABLE outbox RENAME TO outbox_offline");
    try {
      await expect(sweep(env, Date.now() + SWEEP_GRACE_MS + 60_000)).rejects.toThrow(
        new RegExp(`sweep failed: outbox shard ${shardOfEventId(eventId)}`),
      );
    } finally {
      await db.exec("ALTER TABLE outbox_offline RENAME TO outbox");
    }
    expect(queue.messages.map((m) => m.body)).toContainEqual({
      v: 1,
      eventId,
      deliveries: [{ destination: "pos", generation: 1 }],
    });
  });

  it("keeps the walk's messages in the outbox when the queue refuses them", async () => {
    const { eventId } = await ingestLab("single");
    const later = Date.now() + SWEEP_GRACE_MS + 60_000;
    vi.mocked(env.DELIVERY_QUEUE.sendBatch).mockRejectedValue(new Error("queue unavailable"));
    await sweepOverdue(env, later, { pageRows: 1000, pages: 10 });
    const row = await dbOfEvent(eventId)
      .prepare("SELECT message FROM outbox WHERE message ->> 'eventId' = ?1")
      .bind(eventId)
      .first<{ message: string }>();
    expect(JSON.parse(row!.message)).toEqual({ v: 1, eventId, deliveries: [{ destination: "pos", generation: 1 }] });
  });
});

describe("overdue sweeper", () => {
  // A wide scan, so each run covers every event this file has stored.
  const wide = { pageRows: 1000, pages: 10 };

  it("re-enqueues a delivery whose message was lost, once, and leaves one simply in flight alone", async () => {
    stubDestinations(ok);
    // Its message is captured and never handed to the consumer: lost.
    const { eventId } = await ingestLab("single");
    const swept = () => queue.messages.filter((m) => m.body.eventId === eventId);

    await sweepOverdue(env, Date.now() + 60_000, wide);
    expect(swept()).toEqual([]);
    const later = Date.now() + SWEEP_GRACE_MS + 60_000;
    expect((await sweepOverdue(env, later, wide)).reenqueued).toBeGreaterThanOrEqual(1);
    // Claimed: a second (or overlapping) run at the same time sends nothing again.
    await sweepOverdue(env, later, wide);
    expect(swept().map((m) => m.body)).toEqual([
      { v: 1, eventId, deliveries: [{ destination: "pos", generation: 1 }] },
    ]);

    await runDeliveryQueue([swept()[0]!.body]);
    expect((await deliveriesOf(eventId)).map((d) => d.status)).toEqual(["delivered"]);
    // Delivered: no later run picks it up.
    await sweepOverdue(env, later + 2 * SWEEP_GRACE_MS, wide);
    expect(swept()).toHaveLength(1);
  });

  it("reads a bounded slice per run in each shard and resumes where the last run stopped, so every event is reached", async () => {
    const events = [await ingestLab("single"), await ingestLab("single"), await ingestLab("single")];
    const totals = await Promise.all(
      shards.map(async (db) => (await db.prepare("SELECT COUNT(*) AS n FROM events").first<number>("n"))!),
    );
    const later = Date.now() + SWEEP_GRACE_MS + 60_000;
    const slice = { pageRows: 2, pages: 1 };
    const scanned = totals.map(() => 0);
    // One lap of each shard: ceil(its events / 2) runs of at most 2 of its rows each, and every stored event's lost
    // delivery comes back.
    for (let run = 0; run < Math.max(...totals.map((n) => Math.ceil(n / 2))); run++) {
      const result = await sweepOverdue(env, later, slice);
      for (const s of result.shards) {
        expect(s.scanned).toBeLessThanOrEqual(2);
        if (run < Math.ceil(totals[s.shard]! / 2)) scanned[s.shard]! += s.scanned;
      }
    }
    expect(scanned).toEqual(totals);
    for (const { eventId } of events) expect(queue.messages.map((m) => m.body.eventId)).toContain(eventId);
  });

  it("walks and drains every shard in one run, each shard from its own cursor in its own database", async () => {
    // Events until each shard holds two of them (placement is by the order's digest, so deterministic).
    const byShard = new Map<number, string[]>();
    const short = () => [0, 1].some((shard) => (byShard.get(shard)?.length ?? 0) < 2);
    for (let i = 0; i < 40 && short(); i++) {
      const { eventId } = await ingestLab("single");
      const shard = shardOfEventId(eventId)!;
      byShard.set(shard, [...(byShard.get(shard) ?? []), eventId]);
    }
    const lost = [byShard.get(0)![0]!, byShard.get(1)![0]!];
    const kept = [byShard.get(0)![1]!, byShard.get(1)![1]!];
    // One message of each shard waits in its shard's outbox, as a queue failure at ingest leaves it; the other
    // events' messages were lost.
    for (const eventId of kept)
      await insertOutbox(
        dbOfEvent(eventId),
        [{ v: 1, eventId, deliveries: [{ destination: "pos", generation: 1 }] }],
        0,
      );
    const later = Date.now() + SWEEP_GRACE_MS + 60_000;
    const summary = await sweep(env, later);
    expect(summary.shards.map((s) => s.shard)).toEqual([0, 1]);
    expect(summary.shards.every((s) => s.scanned > 0 && s.sentFromOutbox === 1)).toBe(true);
    expect(summary.sentFromOutbox).toBe(2);
    const sent = queue.messages.map((m) => m.body.eventId);
    for (const eventId of [...lost, ...kept])
      expect(
        sent.filter((id) => id === eventId),
        eventId,
      ).toHaveLength(1);
    for (const db of shards) expect(await db.prepare("SELECT COUNT(*) AS n FROM outbox").first("n")).toBe(0);

    // Each shard's walk keeps its cursor in its own sweeper_state: one row per slice, the last key read there.
    for (const db of shards) await db.prepare("DELETE FROM sweeper_state").run();
    const slice = await sweepOverdue(env, later, { pageRows: 1, pages: 1 });
    expect(slice.shards.map((s) => [s.shard, s.scanned])).toEqual([
      [0, 1],
      [1, 1],
    ]);
    for (const [shard, db] of shards.entries()) {
      const cursor = await db
        .prepare("SELECT value FROM sweeper_state WHERE name = ?1")
        .bind(SWEEP_CURSOR)
        .first("value");
      expect(cursor).toBe(slice.shards[shard]!.cursor);
      expect(shardOfEventId(cursor as string)).toBe(shard);
    }
    // The next run of each shard starts after its own cursor.
    const next = await sweepOverdue(env, later, { pageRows: 1, pages: 1 });
    for (const s of next.shards) expect(s.cursor > slice.shards[s.shard]!.cursor).toBe(true);
  });
});

describe("every delivery of every accepted event ends delivered or dead", () => {
  it("drives a mix of healthy, flaky, failing and gone destinations to a terminal state", async () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    stubDestinations((request) => {
      const host = new URL(request.url).hostname;
      if (host === "d03.example.test") return status(503)();
      if (host === "d05.example.test") return status(404)();
      return random() < 0.4 ? status(500)() : ok();
    });
    const events = [await ingestLab("ten"), await ingestLab("pair"), await ingestLab("single"), await ingestLab("ten")];
    let pending: { body: DeliveryMessage; attempts: number }[] = events.map((e) => ({ body: e.message, attempts: 1 }));
    for (let round = 0; round < 10 && pending.length > 0; round++) {
      queue.messages.length = 0;
      const { result, ids } = await runDeliveryQueue(
        pending.map((p) => p.body),
        round + 1,
      );
      const retried = new Set(result.retryMessages.map((r) => r.msgId));
      pending = [
        ...pending.filter((_, i) => retried.has(ids[i]!)).map((p) => ({ ...p, attempts: p.attempts + 1 })),
        ...queue.messages.map((m) => ({ body: m.body, attempts: 1 })),
      ];
    }
    expect(pending).toEqual([]);
    const rows = (await Promise.all(events.map((e) => deliveriesOf(e.eventId)))).flat();
    expect(rows).toHaveLength(23);
    expect(rows.filter((r) => r.status !== "delivered" && r.status !== "dead")).toEqual([]);
    expect(rows.filter((r) => r.destination === "d03").every((r) => r.status === "dead" && r.attempts === 3)).toBe(
      true,
    );
    expect(rows.filter((r) => r.destination === "d05").every((r) => r.status === "dead" && r.attempts === 1)).toBe(
      true,
    );
  });
});
