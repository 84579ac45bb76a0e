import { env } from "cloudflare:workers";
import { createExecutionContext, createMessageBatch } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import type { DeliveryMessage } from "../src/core/messages.ts";
import { deleteEvents } from "../src/storage/retention.ts";
import {
  captureDeliveryQueue,
  dbOfEvent,
  deliveriesOf,
  gatesOfItsOwn,
  ManualClock,
  ROUTER,
  stubDestinations,
} from "./helpers.ts";

/**
 * Issue #27, item 1: a destination's counters (delivered, failed attempts, dead letters: the hourly rollup its
 * Durable Object keeps, which the overview and the health strip show) agree with the delivery rows, whichever way
 * a delivery ends and whoever ends it, with two copies of a message racing.
 */
let clock: ManualClock;
let worker: ReturnType<typeof createWorker>;
let bindings: Env;
let queue: ReturnType<typeof captureDeliveryQueue>;

/** The parts of the test config these tests change. */
type LabConfig = {
  sources: Record<string, Record<string, unknown>>;
  destinations: Record<string, Record<string, unknown>>;
  alerts?: Record<string, unknown>;
};

function configWith(change: (config: LabConfig & { destinations: { ctl9: Record<string, unknown> } }) => void): string {
  const config = JSON.parse(env.ROUTER_CONFIG as string) as LabConfig & {
    destinations: { ctl9: Record<string, unknown> };
  };
  // The lab source names its events by `id`, so an operator can purge one as an order.
  config.sources.lab = { ...config.sources.lab, idempotencyFields: ["id"] };
  config.destinations.ctl9 = {
    ...config.destinations.ctl9,
    maxAttempts: 2,
    disableOnGone: false,
    circuit: { enabled: false },
  };
  change(config);
  return JSON.stringify(config);
}

beforeEach(() => {
  clock = new ManualClock(Date.now() + 86_400_000);
  worker = createWorker({ clock });
  bindings = { ...env, ROUTER_CONFIG: configWith(() => undefined), DESTINATION_GATE: gatesOfItsOwn() } as Env;
  queue = captureDeliveryQueue();
});
afterEach(() => vi.restoreAllMocks());

async function call(path: string, init: RequestInit = {}, on: Env = bindings): Promise<Response> {
  const request = new Request(`${ROUTER}${path}`, init) as Parameters<typeof worker.fetch>[0];
  return worker.fetch(request, on, createExecutionContext());
}

/** A lab event for ctl9 and its delivery message. */
async function ingest(id: string): Promise<{ eventId: string; message: DeliveryMessage }> {
  const res = await call("/webhooks/lab/ctl9", { method: "POST", body: JSON.stringify({ id, kind: "ctl9" }) });
  expect(res.status).toBe(200);
  const { eventId } = await res.json<{ eventId: string }>();
  const i = queue.messages.findIndex((m) => m.body.eventId === eventId && !("kind" in m.body));
  const body = queue.messages.splice(i, 1)[0]!.body;
  return { eventId, message: body as DeliveryMessage };
}

let counter = 0;
async function run(bodies: unknown[], attempts = 1, on: Env = bindings, name = "webhook-deliveries") {
  const batch = createMessageBatch(
    name,
    bodies.map((body) => ({ id: `cnt-${++counter}`, timestamp: new Date(), attempts, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, on, ctx);
}

const admin = (method: string, path: string, body?: unknown) =>
  call(`/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

const totalsOf = (db: D1Database) =>
  db
    .prepare("SELECT dead, purged FROM dead_letter_totals WHERE id = 0")
    .first<{ dead: number; purged: number }>()
    .then((r) => r!);
async function allTotals() {
  const all = await Promise.all([env.DB, env.SHARD_1].map((db) => totalsOf(db)));
  return { dead: all.reduce((n, t) => n + t.dead, 0), purged: all.reduce((n, t) => n + t.purged, 0) };
}

/** Each shard's kept totals equal a count of its rows (the current generation of each delivery). */
async function expectTotalsMatchRows() {
  for (const db of [env.DB, env.SHARD_1]) {
    const counted = await db
      .prepare(
        `SELECT COALESCE(SUM(dead_deliveries), 0) AS dead,
                COALESCE(SUM(CASE WHEN payload_purged_at IS NOT NULL THEN dead_deliveries END), 0) AS purged FROM events`,
      )
      .first<{ dead: number; purged: number }>();
    expect(await totalsOf(db)).toEqual(counted);
  }
}

describe("a destination's counters and its rows", () => {
  it("agree after deliveries end every way, with racing copies of a message", async () => {
    const before = await allTotals();
    const answers = new Map<string, number[]>();
    stubDestinations(async (request) => {
      const id = JSON.parse(await request.text()).id as string;
      const status = answers.get(id)?.shift() ?? 200;
      return new Response("{}", { status });
    });
    const events: string[] = [];
    const end = async (id: string, statuses: number[]) => {
      answers.set(id, statuses);
      const { eventId, message } = await ingest(id);
      events.push(eventId);
      return { eventId, message };
    };

    // Delivered at once; exhausted after a failed attempt and its retry; permanent 422; 410 (disableOnGone off).
    for (const [id, statuses] of [
      ["ok", [200]],
      ["exhausted", [500, 500]],
      ["permanent", [422]],
      ["gone", [410]],
    ] as const) {
      const { message } = await end(id, [...statuses]);
      await run([message]);
      if (id === "exhausted") await run([message], 2);
    }
    // Two copies of one message, racing, the destination disabled meanwhile: it dies once, without an attempt.
    const disabled = {
      ...bindings,
      ROUTER_CONFIG: configWith((c) => {
        c.destinations.ctl9.enabled = false;
      }),
    } as Env;
    const raced = await end("raced", []);
    await Promise.all([run([raced.message], 1, disabled), run([raced.message], 1, disabled)]);
    // Two copies racing, delivered: counted once.
    const racedOk = await end("raced-ok", [200, 200]);
    await Promise.all([run([racedOk.message]), run([racedOk.message])]);
    // Queues gave up on a message: the dead-letter queue settles it.
    const lost = await end("lost", []);
    await run([lost.message], 31, bindings, "webhook-deliveries-dlq");
    // A customer's deletion request while a delivery is pending.
    await end("purged", []);
    const purge = await admin("POST", "/customer-data/purge", { providerOrderId: "purged", source: "lab" });
    expect(purge.status, await purge.clone().text()).toBe(200);
    // A redrive of the permanent failure, delivered this time.
    const permanentId = events[2]!;
    const replay = await admin("POST", `/events/${permanentId}/replay`, {});
    expect(replay.status, await replay.clone().text()).toBeLessThan(300);
    await run(queue.messages.splice(0).map((m) => m.body));

    // The rows: every generation of every delivery, and every attempt.
    const rows = (await Promise.all(events.map((id) => deliveriesOf(id)))).flat();
    const attempts = rows.flatMap((d) =>
      (JSON.parse(d.attempt_log) as { statusCode: number | null }[]).map((a, i, all) => ({
        ok: a.statusCode !== null && a.statusCode >= 200 && a.statusCode < 300,
        last: i === all.length - 1,
        dead: d.status === "dead",
      })),
    );
    const fromRows = {
      delivered: rows.filter((d) => d.status === "delivered").length,
      dead: rows.filter((d) => d.status === "dead").length,
      // A failed attempt that was retried: every failed one but the last of a dead delivery.
      failed: attempts.filter((a) => !a.ok && !(a.last && a.dead)).length,
    };
    expect(fromRows).toEqual({ delivered: 3, dead: 6, failed: 1 });
    expect(
      rows
        .filter((d) => d.status === "dead")
        .map((d) => d.last_error)
        .sort(),
    ).toEqual(
      [
        "destination_disabled",
        "http_410 (permanent)",
        "http_422 (permanent)",
        "http_500 (after 2 attempts)",
        "payload_purged",
        "queue_retries_exhausted",
      ].sort(),
    );
    // The redriven delivery: its first generation died (counted), its second was delivered (counted).
    expect(rows.filter((d) => d.generation === 2)).toEqual([expect.objectContaining({ status: "delivered" })]);

    // The exact dead-letter totals each shard keeps by trigger agree with its rows: the dead of the current
    // generations, and of those, the ones in purged events (which a redrive leaves out).
    const totals = await allTotals();
    expect({ dead: totals.dead - before.dead, purged: totals.purged - before.purged }).toEqual({ dead: 5, purged: 1 });
    await expectTotalsMatchRows();
    // Retention deletes an event holding a dead delivery: its count goes with it.
    const exhaustedId = events[1]!;
    expect(await deleteEvents(dbOfEvent(exhaustedId), [exhaustedId])).toBe(1);
    expect((await allTotals()).dead).toBe(totals.dead - 1);
    await expectTotalsMatchRows();

    const gate = bindings.DESTINATION_GATE.get(bindings.DESTINATION_GATE.idFromName("ctl9"));
    const { hours } = await gate.overview("ctl9", clock.now());
    const counters = hours.reduce(
      (sum, h) => ({ delivered: sum.delivered + h.delivered, dead: sum.dead + h.dead, failed: sum.failed + h.failed }),
      { delivered: 0, dead: 0, failed: 0 },
    );
    expect(counters).toEqual(fromRows);
  });
});

describe("an age alert for every backlog (issue #27, item 4)", () => {
  /** The backlog_old alerts the queue got since the last call. */
  const alerts = () =>
    queue.messages
      .splice(0)
      .filter((m) => "kind" in m.body && (m.body as { kind: string }).kind === "alert")
      .map((m) => (m.body as unknown as { alert: { kind: string; reason: string; eventIds: string[] } }).alert)
      .filter((a) => a.kind === "backlog_old");

  it("raises backlog_old when a retrying delivery, never held, is older than backlogMinutes, throttled like the others", async () => {
    bindings = {
      ...bindings,
      ROUTER_CONFIG: configWith((c) => {
        c.destinations.ctl9.maxAttempts = 10;
        // Failures alternate with successes: the circuit never opens, so nothing is ever held.
        c.destinations.ctl9.circuit = { consecutiveFailures: 5, minAttempts: 1_000 };
        c.alerts = { channels: {}, throttleMinutes: 15, backlogMinutes: 30 };
      }),
    } as Env;
    stubDestinations(async (request) => {
      const id = JSON.parse(await request.text()).id as string;
      return new Response("{}", { status: id.startsWith("fine") ? 200 : 500 });
    });
    const stuck = await ingest("stuck");
    let attempt = 1;
    const retry = async (minutes: number) => {
      clock.advance(minutes * 60_000);
      const fine = await ingest(`fine-${attempt}`);
      await run([stuck.message, fine.message], attempt++);
    };
    await retry(0);
    await retry(29);
    expect(alerts()).toEqual([]);
    // 31 minutes pending: the next time it is in hand, the backlog is alerted, with its age and the delivery.
    await retry(2);
    expect(alerts()).toEqual([
      expect.objectContaining({ kind: "backlog_old", reason: "retrying", eventIds: [stuck.eventId] }),
    ]);
    // Throttled: not again within throttleMinutes, then again after.
    await retry(5);
    expect(alerts()).toEqual([]);
    await retry(15);
    expect(alerts()).toHaveLength(1);
    expect((await deliveriesOf(stuck.eventId))[0]).toMatchObject({ status: "pending", attempts: 5 });
  });
  it("raises backlog_old (waiting) when first attempts wait for the rate limit longer than backlogMinutes", async () => {
    bindings = {
      ...bindings,
      ROUTER_CONFIG: configWith((c) => {
        c.destinations.ctl9.rateLimit = { maxPerSecond: 1 };
        c.alerts = { channels: {}, throttleMinutes: 15, backlogMinutes: 1 };
      }),
    } as Env;
    stubDestinations(() => new Response("{}"));
    const events = [await ingest("wait-1"), await ingest("wait-2"), await ingest("wait-3")];
    // One token a second: the first goes, the other two wait without an attempt.
    await run(events.map((e) => e.message));
    expect((await deliveriesOf(events[1]!.eventId))[0]).toMatchObject({ status: "pending", attempts: 0 });
    expect(alerts()).toEqual([]);
    // Back in hand after a minute and more, still never attempted: the backlog is as old as they are.
    clock.advance(61_000);
    await run([events[1]!.message, events[2]!.message], 2);
    expect(alerts()).toEqual([
      expect.objectContaining({
        kind: "backlog_old",
        reason: "waiting",
        eventIds: [events[1]!.eventId, events[2]!.eventId],
      }),
    ]);
  });
});
