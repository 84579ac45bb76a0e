import { env } from "cloudflare:workers";
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import {
  admission,
  initialGate,
  recordOutcomes,
  startProbe,
  takeTokens,
  throttleAlert,
  type GateOutcome,
  type GateSettings,
} from "../src/core/controls.ts";
import type { AlertMessage, DeliveryMessage } from "../src/core/messages.ts";
import {
  adminFetch,
  captureDeliveryQueue,
  dbOfEvent,
  deliveriesOf,
  ManualClock,
  post,
  stubDestinations,
  type FetchHandler,
} from "./helpers.ts";
import { piiValues, shownIn } from "./pii.ts";
import { fixture } from "./helpers.ts";

/**
 * Destination controls (src/control, src/core/controls.ts) through the real consumer, the real Durable Object and
 * D1. The consumer runs on a manual clock set a day ahead of the machine's, so an alarm the object sets for a time
 * on that clock never fires by itself during a test; each test drives the object's alarm with `tick`.
 */
let queue: ReturnType<typeof captureDeliveryQueue>;
let clock: ManualClock;
let worker: ReturnType<typeof createWorker>;
const alertConfig = {
  channels: {
    ops: { type: "webhook", url: "https://alerts.example.test/hook" },
    chat: { type: "slack", urlSecret: "SLACK_ALERT_URL" },
  },
  throttleMinutes: 15,
  backlogMinutes: 30,
};
const bindings = {
  ...env,
  ROUTER_CONFIG: JSON.stringify({ ...JSON.parse(env.ROUTER_CONFIG as string), alerts: alertConfig }),
  SLACK_ALERT_URL: "https://chat.example.test/services/T000/B000/XXXX",
} as Env;

beforeEach(() => {
  queue = captureDeliveryQueue();
  clock = new ManualClock(Date.now() + 86_400_000);
  worker = createWorker({ clock });
});
afterEach(() => vi.restoreAllMocks());

const gate = (name: string) => env.DESTINATION_GATE.get(env.DESTINATION_GATE.idFromName(name));
const tick = (name: string) => gate(name).tick(clock.now());

let counter = 0;
async function ingest(kind: string): Promise<{ eventId: string; message: DeliveryMessage }> {
  // On the consumer's clock: a delivery's age (the backlog alerts) is measured from its receipt.
  const res = await post(`/webhooks/lab/${kind}`, JSON.stringify({ id: `ctl-${++counter}`, kind }), {}, (request) =>
    worker.fetch(request as Parameters<typeof worker.fetch>[0], bindings, createExecutionContext()),
  );
  expect(res.status).toBe(200);
  const { eventId } = await res.json<{ eventId: string }>();
  const index = queue.messages.findIndex((m) => m.body.eventId === eventId && !("kind" in m.body));
  const [{ body: message }] = queue.messages.splice(index, 1) as [{ body: DeliveryMessage }];
  return { eventId, message };
}

let messageCounter = 0;
async function runQueue(bodies: unknown[], attempts = 1) {
  const messages = bodies.map((body) => ({ id: `ctl-msg-${++messageCounter}`, timestamp: new Date(), attempts, body }));
  const batch = createMessageBatch("webhook-deliveries", messages);
  const ctx = createExecutionContext();
  await worker.queue(batch, bindings);
  return getQueueResult(batch, ctx);
}

/** What the queue got since the last call, split into deliveries and alerts. */
function drainQueue(): { deliveries: { body: DeliveryMessage; delaySeconds?: number }[]; alerts: AlertMessage[] } {
  const all = queue.messages.splice(0);
  return {
    deliveries: all.filter((m) => !("kind" in m.body)),
    alerts: all.filter((m) => "kind" in m.body).map((m) => m.body as unknown as AlertMessage),
  };
}

const hostOf = (request: Request) => new URL(request.url).hostname;
const ok = () => new Response("ok");
const fail = () => new Response("down", { status: 503 });

async function controls(name: string) {
  const res = await adminFetch("GET", "/destinations/health");
  expect(res.status).toBe(200);
  const body = await res.json<{
    destinations: {
      name: string;
      controls: Record<string, unknown> & { history: { kind: string }[]; held: { count: number } };
    }[];
  }>();
  return body.destinations.find((d) => d.name === name)!.controls;
}

describe("pause and resume", () => {
  it("holds a paused destination's deliveries without attempts, and resumes them in the order received", async () => {
    const seen = stubDestinations(ok);
    const paused = await adminFetch("POST", "/destinations/ctl1/pause", { reason: "POS maintenance" });
    expect(paused.status).toBe(200);
    const pausedBody = await paused.json<{ auditId: string; controls: { state: string; paused: { by: string } } }>();
    expect(pausedBody.controls.state).toBe("paused");
    expect(pausedBody.controls.paused.by).toMatch(/^tok_[0-9a-f]{16}$/);

    const events = [];
    for (let i = 0; i < 5; i++) {
      events.push(await ingest("ctl1"));
      clock.advance(1000);
    }
    // Delivered in two batches, the newer first: holding keeps them in the order received all the same.
    const heldAt = clock.now();
    const result = [
      await runQueue(events.slice(3).map((e) => e.message)),
      await runQueue(events.slice(0, 3).map((e) => e.message)),
    ];
    expect(result.flatMap((r) => r.retryMessages)).toEqual([]);
    expect(seen.requests).toHaveLength(0);
    for (const { eventId } of events) {
      const [d] = await deliveriesOf(eventId);
      expect(d).toMatchObject({ status: "pending", attempts: 0 });
      expect(
        await dbOfEvent(eventId)
          .prepare("SELECT pending_due FROM events WHERE id = ?1")
          .bind(eventId)
          .first<number>("pending_due"),
      ).toBe(8_640_000_000_000_000);
    }
    expect((await controls("ctl1")).held.count).toBe(5);
    // The admin API shows a held delivery as such: pending, why, and no due time.
    const detail = await adminFetch("GET", `/events/${events[0]!.eventId}`);
    expect(detail.status).toBe(200);
    expect((await detail.json<{ deliveries: unknown[] }>()).deliveries).toEqual([
      expect.objectContaining({
        destination: "ctl1",
        status: "pending",
        attempts: 0,
        heldReason: "paused",
        nextAttemptAt: null,
      }),
    ]);
    expect((await adminFetch("GET", "/events?status=failing")).status).toBe(200);
    // Paused, the object's only alarm is the backlog alert's; once that has gone, an idle pause costs nothing.
    expect(await runInGateAlarm("ctl1")).toBe(heldAt + 30 * 60_000);
    clock.advance(30 * 60_000);
    await tick("ctl1");
    expect(drainQueue().alerts.map((a) => [a.alert.kind, a.alert.reason, a.alert.counts])).toEqual([
      ["backlog_old", "paused", { held: 5, oldestMinutes: 30 }],
    ]);
    expect(await runInGateAlarm("ctl1")).toBeNull();

    expect((await adminFetch("POST", "/destinations/ctl1/resume")).status).toBe(200);
    clock.advance(1000);
    await tick("ctl1");
    const released = drainQueue().deliveries;
    expect(released.map((m) => m.body.eventId)).toEqual(events.map((e) => e.eventId));
    expect(released.every((m) => m.body.released === true)).toBe(true);
    await runQueue(released.map((m) => m.body));
    expect(seen.requests.map((r) => r.headers.get("webhook-id"))).toEqual(events.map((e) => e.eventId));
    for (const { eventId } of events)
      expect((await deliveriesOf(eventId))[0]).toMatchObject({ status: "delivered", attempts: 1 });
    expect((await controls("ctl1")).history.map((h) => h.kind)).toEqual(["paused", "resumed"]);

    const audit = await (await adminFetch("GET", "/audit")).json<{
      entries: { action: string; detail: Record<string, unknown> }[];
    }>();
    expect(audit.entries.slice(0, 2).map((e) => [e.action, e.detail.destination])).toEqual([
      ["destination_resume", "ctl1"],
      ["destination_pause", "ctl1"],
    ]);
  });

  it("answers 404 for a destination that is not configured and 400 for a pause without a reason", async () => {
    expect((await adminFetch("POST", "/destinations/nowhere/pause", { reason: "x" })).status).toBe(404);
    const bad = await adminFetch("POST", "/destinations/ctl1/pause", {});
    expect(bad.status).toBe(400);
    expect((await bad.json<{ error: { code: string } }>()).error.code).toBe("invalid_request");
  });
});

/** The time of the object's alarm, or null when none is set. */
async function runInGateAlarm(name: string): Promise<number | null> {
  const { runInDurableObject } = await import("cloudflare:test");
  return runInDurableObject(gate(name), (_instance, state) => state.storage.getAlarm());
}

describe("circuit breaker", () => {
  it("opens after consecutive failures, holds, probes after the cool-down, reopens longer on failure and closes on success", async () => {
    let healthy = false;
    const seen = stubDestinations(() => (healthy ? ok() : fail()));
    // Three failures in a row (the destination's `consecutiveFailures`) open it.
    for (let i = 0; i < 3; i++) await runQueue([(await ingest("ctl2")).message]);
    expect(seen.requests).toHaveLength(3);
    let c = await controls("ctl2");
    expect(c).toMatchObject({
      state: "circuit_open",
      circuit: { phase: "open", coolDownSeconds: 60, lastError: "http_503" },
    });
    drainQueue();

    // While open, new deliveries are held: no attempt, not dead.
    const held = await ingest("ctl2");
    await runQueue([held.message]);
    expect(seen.requests).toHaveLength(3);
    expect((await deliveriesOf(held.eventId))[0]).toMatchObject({ status: "pending", attempts: 0 });

    // Cool-down over: the oldest held delivery is the probe. It fails: open again, with twice the cool-down.
    clock.advance(60_000);
    await tick("ctl2");
    const probe = drainQueue().deliveries;
    expect(probe.map((m) => m.body.eventId)).toEqual([held.eventId]);
    const failedProbe = await runQueue(probe.map((m) => m.body));
    expect(seen.requests).toHaveLength(4);
    c = await controls("ctl2");
    expect(c).toMatchObject({ state: "circuit_open", circuit: { coolDownSeconds: 120 } });
    // The failed probe is retried like any failure; back while the circuit is open, it is held again.
    expect(failedProbe.retryMessages).toHaveLength(1);
    await runQueue(
      probe.map((m) => m.body),
      2,
    );
    expect(seen.requests).toHaveLength(4);

    // After the longer cool-down the probe succeeds: closed, and what was held is released.
    healthy = true;
    clock.advance(120_000);
    await tick("ctl2");
    await runQueue(drainQueue().deliveries.map((m) => m.body));
    expect((await deliveriesOf(held.eventId))[0]).toMatchObject({ status: "delivered", attempts: 2 });
    c = await controls("ctl2");
    expect(c.state).toBe("open");
    expect(c.history.map((h) => h.kind)).toEqual(["opened", "probe", "reopened", "probe", "closed"]);
    const alerts = drainQueue().alerts.map((a) => a.alert.kind);
    expect(alerts).toContain("circuit_closed");
  });

  it("makes a delivery that arrives after the cool-down the probe at once, without waiting for the queue", async () => {
    let healthy = false;
    const seen = stubDestinations(() => (healthy ? ok() : fail()));
    for (let i = 0; i < 3; i++) await runQueue([(await ingest("ctl7")).message]);
    const held = await ingest("ctl7");
    await runQueue([held.message]);
    drainQueue();
    clock.advance(60_000);
    healthy = true;
    const live = await ingest("ctl7");
    await runQueue([live.message]);
    expect(seen.requests).toHaveLength(4);
    expect((await deliveriesOf(live.eventId))[0]).toMatchObject({ status: "delivered", attempts: 1 });
    const c = await controls("ctl7");
    expect(c.history.map((h) => h.kind)).toEqual(["opened", "probe", "closed"]);
    // Closed: what was held goes out from the next alarm, oldest first.
    clock.advance(1_000);
    await tick("ctl7");
    expect(drainQueue().deliveries.map((m) => m.body.eventId)).toEqual([held.eventId]);
  });

  it("lets a delivery in hand probe again when the probe sent through the queue has not come back in time", async () => {
    let healthy = false;
    const seen = stubDestinations(() => (healthy ? ok() : fail()));
    for (let i = 0; i < 3; i++) await runQueue([(await ingest("ctl10")).message]);
    await runQueue([(await ingest("ctl10")).message]); // held
    drainQueue();
    clock.advance(60_000);
    await tick("ctl10"); // the oldest held goes out as the probe, into a queue that is slow today
    expect(drainQueue().deliveries).toHaveLength(1);
    healthy = true;
    // Within a send's time, a delivery that arrives is held: the probe is out.
    const early = await ingest("ctl10");
    await runQueue([early.message]);
    expect((await deliveriesOf(early.eventId))[0]).toMatchObject({ status: "pending", attempts: 0, last_error: null });
    // Past it (timeout 2 s + 5 s), the next one probes, succeeds, and the circuit closes.
    clock.advance(7_001);
    const late = await ingest("ctl10");
    await runQueue([late.message]);
    expect((await deliveriesOf(late.eventId))[0]).toMatchObject({ status: "delivered", attempts: 1 });
    expect((await controls("ctl10")).state).toBe("open");
    expect(seen.requests).toHaveLength(4);
  });

  it("takes a probe that reaches the consumer late, behind a backlog, as the probe", async () => {
    let healthy = false;
    stubDestinations(() => (healthy ? ok() : fail()));
    for (let i = 0; i < 3; i++) await runQueue([(await ingest("ctl9")).message]);
    await runQueue([(await ingest("ctl9")).message]);
    await runQueue([(await ingest("ctl9")).message]);
    drainQueue();
    clock.advance(60_000);
    await tick("ctl9");
    const first = drainQueue().deliveries;
    expect(first.map((m) => [m.body.eventId, m.body.released, m.delaySeconds])).toEqual([
      [expect.any(String), true, undefined],
    ]);
    // The first probe's message is stuck in the queue; past the probe's expiry another probe goes out (and the first,
    // released but never reported, is sent again).
    clock.advance(125_000);
    await tick("ctl9");
    const second = drainQueue().deliveries.map((m) => m.body.eventId);
    expect(second).toHaveLength(2);
    expect(second).toContain(first[0]!.body.eventId);
    // The first arrives now, the destination is back: it is the probe, and the circuit closes.
    healthy = true;
    await runQueue(first.map((m) => m.body));
    expect((await controls("ctl9")).state).toBe("open");
    expect((await deliveriesOf(first[0]!.body.eventId))[0]).toMatchObject({ status: "delivered" });
  });

  it("opens on the failure rate over its window too", () => {
    const settings: GateSettings = {
      circuit: {
        enabled: true,
        consecutiveFailures: 100,
        failureRate: 0.5,
        minAttempts: 10,
        windowSeconds: 60,
        coolDownSeconds: 30,
        maxCoolDownSeconds: 900,
      },
      rate: { maxPerSecond: null, maxInFlight: null },
      timeoutMs: 1000,
      alertThrottleMs: 900_000,
      backlogAlertMs: 1_800_000,
    };
    const outcome = (failure: boolean, i: number): GateOutcome => ({
      eventId: `e${i}`,
      generation: 1,
      ok: !failure,
      failure,
      gone: false,
      errorClass: failure ? "timeout" : null,
      dead: false,
    });
    // Alternating success and failure never makes 100 in a row, but is a 50% rate.
    // The 11th outcome is a failure with 6 of 11 failed: over the rate, with at least minAttempts.
    const { state, transitions } = recordOutcomes(
      initialGate(0),
      Array.from({ length: 11 }, (_, i) => outcome(i % 2 === 0, i)),
      settings,
      1_000,
    );
    expect(transitions.map((t) => t.kind)).toEqual(["opened"]);
    expect(admission(state, settings, 1_000)).toEqual({ kind: "hold", reason: "circuit_open" });
    expect(admission(state, settings, 31_000)).toEqual({ kind: "probe" });
    // A probe settled without an answer (stale, superseded) neither closes nor reopens the circuit.
    const probing = startProbe(state, { eventId: "p1", generation: 1 }, 31_000);
    const settled: GateOutcome = {
      eventId: "p1",
      generation: 1,
      ok: false,
      failure: false,
      gone: false,
      errorClass: null,
      dead: false,
    };
    expect(recordOutcomes(probing, [settled], settings, 32_000).state.circuit.phase).toBe("half_open");
    expect(recordOutcomes(probing, [{ ...settled, ok: true }], settings, 32_000).state.circuit.phase).toBe("closed");
    // A 4xx the destination meant is not sickness.
    const meant: GateOutcome = { ...outcome(false, 99), ok: false };
    expect(recordOutcomes(initialGate(0), Array(20).fill(meant), settings, 1).transitions).toEqual([]);
  });
});

describe("rate limit", () => {
  it("lets maxPerSecond through and makes the rest wait, with no attempt used and no failure counted", async () => {
    const seen = stubDestinations(ok);
    const events = [];
    for (let i = 0; i < 5; i++) events.push(await ingest("ctl3"));
    const result = await runQueue(events.map((e) => e.message));
    expect(result.retryMessages).toEqual([]);
    // ctl3: maxPerSecond 2, maxInFlight 2.
    expect(seen.requests).toHaveLength(2);
    const waiting = drainQueue().deliveries;
    expect(waiting).toHaveLength(3);
    expect(waiting.every((m) => (m.delaySeconds ?? 0) >= 1)).toBe(true);
    for (const { eventId } of events.slice(2))
      expect((await deliveriesOf(eventId))[0]).toMatchObject({ status: "pending", attempts: 0, last_error: null });
    const c = await controls("ctl3");
    expect(c).toMatchObject({ state: "open", circuit: { consecutiveFailures: 0 }, inFlight: 0 });
    // A second later the bucket has refilled: the waiting ones go.
    clock.advance(1_000);
    await runQueue(waiting.slice(0, 2).map((m) => m.body));
    expect(seen.requests).toHaveLength(4);
  });

  it("refills its token bucket at the configured rate, at most a second's worth", () => {
    const first = takeTokens(null, 5, 2, 0);
    expect(first).toMatchObject({ granted: 2 });
    expect(first.waitMs).toBeGreaterThan(0);
    expect(takeTokens(first.bucket, 5, 2, 500).granted).toBe(1);
    expect(takeTokens(first.bucket, 5, 2, 60_000).granted).toBe(2);
    expect(takeTokens(null, 7, null, 0)).toMatchObject({ granted: 7, waitMs: 0 });
  });
});

describe("410 Gone", () => {
  it("disables the destination, holds its deliveries with disabled_by_410, alerts, and an operator re-enables it", async () => {
    let gone = true;
    const seen = stubDestinations(() => (gone ? new Response("gone", { status: 410 }) : ok()));
    const first = await ingest("ctl4");
    await runQueue([first.message]);
    expect((await deliveriesOf(first.eventId))[0]).toMatchObject({
      status: "pending",
      attempts: 1,
      last_status_code: 410,
      last_error: "http_410 (destination disabled)",
    });
    const second = await ingest("ctl4");
    await runQueue([second.message]);
    expect(seen.requests).toHaveLength(1);
    expect(await controls("ctl4")).toMatchObject({ state: "disabled_by_410", held: { count: 1 } });
    expect(drainQueue().alerts.map((a) => [a.alert.kind, a.alert.destination])).toEqual([
      ["destination_disabled", "ctl4"],
    ]);

    gone = false;
    expect((await adminFetch("POST", "/destinations/ctl4/enable")).status).toBe(200);
    clock.advance(1_000);
    await tick("ctl4");
    await runQueue(drainQueue().deliveries.map((m) => m.body));
    // The 410'd delivery was held in the row, not by the object: released by the operator with a replay-free path.
    expect((await deliveriesOf(second.eventId))[0]).toMatchObject({ status: "delivered" });
  });
});

describe("alerts", () => {
  it("fire once per destination and kind in the throttle window, count what they held back, and carry no customer data", async () => {
    const posts: { host: string; body: string }[] = [];
    const handler: FetchHandler = async (request) => {
      const host = hostOf(request);
      if (host.endsWith("alerts.example.test") || host.endsWith("chat.example.test")) {
        posts.push({ host, body: await request.clone().text() });
        return ok();
      }
      return new Response("no", { status: 422 });
    };
    stubDestinations(handler);
    // Three dead deliveries (a permanent 422) in one window: one delivery_dead alert.
    for (let i = 0; i < 3; i++) await runQueue([(await ingest("ctl5")).message]);
    const raised = drainQueue().alerts;
    expect(raised.map((a) => a.alert.kind)).toEqual(["delivery_dead"]);
    // The consumer fans it out to each channel, then sends each.
    await runQueue(raised);
    const perChannel = drainQueue().alerts;
    expect(perChannel.map((a) => a.channel).sort()).toEqual(["chat", "ops"]);
    await runQueue(perChannel);
    expect(posts.map((p) => p.host).sort()).toEqual(["alerts.example.test", "chat.example.test"]);
    const webhook = JSON.parse(posts.find((p) => p.host === "alerts.example.test")!.body);
    expect(webhook).toMatchObject({
      type: "router.alert",
      kind: "delivery_dead",
      destination: "ctl5",
      counts: { dead: 1 },
      suppressed: 0,
    });
    expect(JSON.parse(posts.find((p) => p.host === "chat.example.test")!.body).text).toMatch(
      /^\[webhook router\] delivery dead for destination ctl5/,
    );

    // When the window has passed, the held-back count goes out on its own.
    clock.advance(15 * 60_000);
    await tick("ctl5");
    const flushed = drainQueue().alerts;
    expect(flushed.map((a) => [a.alert.kind, a.alert.suppressed])).toEqual([["delivery_dead", 2]]);

    // Weedmaps' customer fields never reach an alert: a dead Weedmaps Create to a destination alerts with ids only.
    const pii = piiValues({ create: fixture("weedmaps/create").body });
    for (const p of posts) expect(shownIn(p.body, pii)).toEqual([]);
    for (const a of [...raised, ...flushed]) expect(shownIn(JSON.stringify(a), pii)).toEqual([]);
  });

  it("raises circuit_opened once, and the backlog alert when a held delivery waits past backlogMinutes", async () => {
    stubDestinations(fail);
    for (let i = 0; i < 3; i++) await runQueue([(await ingest("ctl6")).message]);
    await runQueue([(await ingest("ctl6")).message]); // held
    expect(drainQueue().alerts.map((a) => a.alert.kind)).toEqual(["circuit_opened"]);
    // A 60 s cool-down, then probes that keep failing: the throttle keeps a second circuit_opened back.
    clock.advance(60_000);
    await tick("ctl6");
    await runQueue(drainQueue().deliveries.map((m) => m.body));
    expect(drainQueue().alerts).toEqual([]);
    // Held for 30 minutes: backlog_old, with the count and age.
    await runQueue([(await ingest("ctl6")).message]);
    clock.advance(31 * 60_000);
    await tick("ctl6");
    const backlog = drainQueue().alerts.filter((a) => a.alert.kind === "backlog_old");
    expect(backlog).toHaveLength(1);
    expect(backlog[0]!.alert).toMatchObject({
      destination: "ctl6",
      reason: "circuit_open",
      counts: { held: expect.any(Number), oldestMinutes: expect.any(Number) },
    });
  });

  it("raises dead_letter for messages the dead-letter queue receives", async () => {
    const { eventId } = await ingest("ctl7");
    const batch = createMessageBatch("webhook-deliveries-dlq", [
      {
        id: "dlq-1",
        timestamp: new Date(),
        attempts: 1,
        body: { v: 1, eventId, deliveries: [{ destination: "ctl7", generation: 1 }] },
      },
    ]);
    await worker.queue(batch, bindings);
    const alerts = drainQueue().alerts;
    expect(alerts.map((a) => [a.alert.kind, a.alert.destination, a.alert.counts])).toEqual([
      ["dead_letter", null, { messages: 1 }],
    ]);
  });

  it("a channel that is down is retried on its own and never holds up deliveries", async () => {
    stubDestinations((request) =>
      hostOf(request) === "alerts.example.test"
        ? new Response("down", { status: 503 })
        : hostOf(request) === "chat.example.test"
          ? ok()
          : new Response("no", { status: 422 }),
    );
    await runQueue([(await ingest("ctl8")).message]);
    const raised = drainQueue().alerts;
    await runQueue(raised);
    const perChannel = drainQueue().alerts;
    // Deliveries and alerts in one batch: the delivery is attempted and settled whatever the alert channel does.
    const next = await ingest("ctl8");
    const result = await runQueue([...perChannel, next.message]);
    expect((await deliveriesOf(next.eventId))[0]).toMatchObject({ status: "dead", attempts: 1 });
    expect(result.retryMessages).toHaveLength(1); // the webhook channel's message, to be retried
    expect(result.explicitAcks).toHaveLength(2); // the chat channel's, and the delivery's
  });
});

describe("the throttle and the admission rules", () => {
  it("sends the first alert of a kind, counts the rest within the window, and reports the count with the next", () => {
    let state = initialGate(0);
    const first = throttleAlert(state, "delivery_dead", 900_000, 0);
    expect(first).toMatchObject({ send: true, suppressed: 0 });
    state = first.state;
    for (let i = 1; i <= 3; i++) state = throttleAlert(state, "delivery_dead", 900_000, i * 1000).state;
    expect(throttleAlert(state, "circuit_opened", 900_000, 5000).send).toBe(true);
    expect(throttleAlert(state, "delivery_dead", 900_000, 900_000)).toMatchObject({ send: true, suppressed: 3 });
  });
});

describe("the overview's delivery counters", () => {
  it("are counted per hour in memory, written at most every 10 s (a deferred write rides one alarm), and then nothing more", async () => {
    const name = "counters-only";
    const settings: GateSettings = {
      circuit: {
        enabled: false,
        consecutiveFailures: 5,
        failureRate: 1,
        minAttempts: 10,
        windowSeconds: 60,
        coolDownSeconds: 30,
        maxCoolDownSeconds: 600,
      },
      rate: { maxPerSecond: null, maxInFlight: null },
      timeoutMs: 1_000,
      alertThrottleMs: 900_000,
      backlogAlertMs: 1_800_000,
    };
    const outcome = (kind: "delivered" | "failed" | "dead", i: number): GateOutcome => ({
      eventId: `evt_${i.toString(16).padStart(32, "0")}`,
      generation: 1,
      ok: kind === "delivered",
      failure: kind === "failed",
      gone: false,
      errorClass: kind === "delivered" ? null : "http_500",
      dead: kind === "dead",
      rollup: { kind, sinceReceivedMs: kind === "delivered" ? 800 : null },
    });
    const stored = async () => {
      const { runInDurableObject } = await import("cloudflare:test");
      return runInDurableObject(gate(name), (_i, state) =>
        state.storage.sql
          .exec<{ hours: string }>("SELECT hours FROM rollup")
          .toArray()
          .map((r) => JSON.parse(r.hours) as { delivered: number; failed: number; dead: number }[]),
      );
    };
    const t0 = clock.now();
    await gate(name).report(name, settings, t0, [outcome("delivered", 1)], []);
    expect((await stored())[0]?.at(-1)).toMatchObject({ delivered: 1 });
    expect(await runInGateAlarm(name)).toBeNull();
    // Within 10 s of that write: kept in memory, one alarm set for the write.
    await gate(name).report(name, settings, t0 + 1_000, [outcome("delivered", 2), outcome("failed", 3)], []);
    await gate(name).report(name, settings, t0 + 2_000, [outcome("dead", 4)], []);
    expect((await stored())[0]?.at(-1)).toMatchObject({ delivered: 1, failed: 0, dead: 0 });
    expect(await runInGateAlarm(name)).toBe(t0 + 10_000);
    const view = await gate(name).overview(name, t0 + 2_000);
    expect(view.hours).toHaveLength(24);
    expect(view.hours.at(-1)).toMatchObject({ delivered: 2, failed: 1, dead: 1 });
    await gate(name).tick(t0 + 10_000);
    expect((await stored())[0]?.at(-1)).toMatchObject({ delivered: 2, failed: 1, dead: 1 });
    expect(await runInGateAlarm(name)).toBeNull();
  });
});
