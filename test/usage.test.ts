import { env } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { plannedDeliveries } from "../src/core/delivery-state.ts";
import { insertEvent, loadDeliveryWork } from "../src/storage/events.ts";
import { withUsage } from "../src/telemetry/usage.ts";
import { testProtection } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

it("counts D1 rows from result meta and queue messages when USAGE_LOG is on", async () => {
  const log = vi.spyOn(console, "log");
  const { env: tracked, report } = withUsage({ ...env, USAGE_LOG: "true" } as Env, "fetch");
  const event = {
    id: "evt_0123456789abcdef0123456789abcdef",
    idempotencyKey: "k",
    ingestId: "i",
    source: "lab",
    eventType: "single",
    merchantId: null,
    providerId: null,
    contentType: "application/json",
    body: new TextEncoder().encode("{}").buffer as ArrayBuffer,
    bodySha256: "h",
    receivedAt: 1,
    providerTimestamp: null,
    quarantine: null,
  };
  const deliveries = plannedDeliveries(
    ["pos", "erp"].map((destination) => ({ destination, route: "r" })),
    1,
  );
  await insertEvent(tracked.DB, await testProtection(), event, deliveries);
  await loadDeliveryWork(tracked.DB, await testProtection(), event.id);
  await tracked.DB.prepare("SELECT COUNT(*) AS n FROM outbox").first("n");
  await tracked.DELIVERY_QUEUE.sendBatch([{ body: { v: 1 } }, { body: { v: 2 } }]);
  report({ status: 200 });
  const line = JSON.parse(String(log.mock.calls.at(-1)![0]));
  expect(line).toMatchObject({ event: "usage", handler: "fetch", status: 200, d1Queries: 3, queueMessagesSent: 2 });
  // One row for the event and both its deliveries (the table is WITHOUT ROWID on its natural key), one entry of the
  // provider id index that a customer's deletion request looks orders up by (migrations/0006), and one of the
  // received_at index the dashboard's pages and the rollup walk read through (0008). The dead-letter index is
  // partial: nothing for an event with no dead delivery.
  expect(line.d1RowsWritten).toBe(3);
  expect(line.d1RowsRead).toBeGreaterThan(0);
});

it("leaves the bindings untouched and logs nothing when USAGE_LOG is off", () => {
  const log = vi.spyOn(console, "log");
  const { env: same, report } = withUsage(env, "fetch");
  report();
  expect(same).toBe(env);
  expect(log).not.toHaveBeenCalled();
});

it("counts each call to a destination's Durable Object (one billed request each)", async () => {
  const log = vi.spyOn(console, "log");
  const { env: tracked, report } = withUsage({ ...env, USAGE_LOG: "true" } as Env, "fetch");
  const stub = tracked.DESTINATION_GATE.get(tracked.DESTINATION_GATE.idFromName("usage-gate"));
  const settings = {
    circuit: {
      enabled: true,
      consecutiveFailures: 5,
      failureRate: 0.5,
      minAttempts: 20,
      windowSeconds: 60,
      coolDownSeconds: 30,
      maxCoolDownSeconds: 900,
    },
    rate: { maxPerSecond: null, maxInFlight: null },
    timeoutMs: 1000,
    alertThrottleMs: 900_000,
    backlogAlertMs: 1_800_000,
  };
  const now = Date.now() + 86_400_000;
  const decisions = await stub.admit("usage-gate", settings, now, [
    { eventId: "evt_0123456789abcdef0123456789abcdef", generation: 1, receivedAt: now, released: false },
  ]);
  expect(decisions).toEqual([{ kind: "send", lease: null, probe: false }]);
  await stub.report(
    "usage-gate",
    settings,
    now,
    [
      {
        eventId: "evt_0123456789abcdef0123456789abcdef",
        generation: 1,
        ok: true,
        failure: false,
        gone: false,
        errorClass: null,
        dead: false,
      },
    ],
    [],
  );
  report();
  const line = log.mock.calls
    .map(([l]) => JSON.parse(String(l)))
    .find((l) => l.event === "usage" && l.handler === "fetch");
  expect(line).toMatchObject({ gateCalls: 2 });
});
