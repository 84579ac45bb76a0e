import { describe, expect, it } from "vitest";
import {
  addGenerations,
  applyOutcomes,
  claimNamed,
  claimOverdue,
  markDead,
  pendingDue,
  plannedDeliveries,
  serializeDeliveries,
  type AttemptOutcome,
  type DeliveryState,
} from "../src/core/delivery-state.ts";

const planned = () =>
  plannedDeliveries(
    [
      { destination: "pos", route: "r" },
      { destination: "erp", route: "r" },
    ],
    1000,
  );

function outcome(
  destination: string,
  previousAttempts: number,
  status: AttemptOutcome["status"],
  at = 2000,
): AttemptOutcome {
  return {
    ref: { destination, generation: 1 },
    previousAttempts,
    status,
    nextAttemptAt: status === "pending" ? at + 30_000 : at,
    lastError: status === "delivered" ? null : "http_500",
    record: {
      attempt: previousAttempts + 1,
      at,
      statusCode: status === "delivered" ? 200 : 500,
      latencyMs: 5,
      errorClass: null,
      responseExcerpt: null,
    },
  };
}

describe("delivery state rules", () => {
  it("plans one pending generation-1 delivery per destination", () => {
    expect(
      planned().map((d) => [d.destination, d.generation, d.status, d.attempts, d.createdAt, d.superseded, d.log]),
    ).toEqual([
      ["pos", 1, "pending", 0, 1000, false, []],
      ["erp", 1, "pending", 0, 1000, false, []],
    ]);
  });

  it("records an outcome with its attempt in the log, and only on the attempt count it was read with", () => {
    const first = applyOutcomes(planned(), [outcome("pos", 0, "pending"), outcome("erp", 0, "delivered")]);
    expect(first.result).toEqual([true, true]);
    expect(first.deliveries.map((d) => [d.destination, d.status, d.attempts, d.completedAt, d.log.length])).toEqual([
      ["pos", "pending", 1, null, 1],
      ["erp", "delivered", 1, 2000, 1],
    ]);
    // A second copy of the same message, which read attempts = 0 too, loses: nothing changes, and the same array
    // comes back so the caller skips the write.
    const again = applyOutcomes(first.deliveries, [outcome("pos", 0, "pending"), outcome("erp", 0, "delivered")]);
    expect(again.result).toEqual([false, false]);
    expect(again.deliveries).toBe(first.deliveries);
    // The next attempt of the pending one applies.
    const next = applyOutcomes(first.deliveries, [outcome("pos", 1, "delivered", 40_000)]);
    expect(next.result).toEqual([true]);
    expect(next.deliveries[0]).toMatchObject({ status: "delivered", attempts: 2, completedAt: 40_000 });
    expect(next.deliveries[0]!.log.map((a) => a.attempt)).toEqual([1, 2]);
  });

  it("marks only pending deliveries dead, with the reason", () => {
    const delivered = applyOutcomes(planned(), [outcome("erp", 0, "delivered")]).deliveries;
    const marks = ["pos", "erp"].map((destination) => ({
      ref: { destination, generation: 1 },
      reason: "queue_retries_exhausted",
    }));
    const { deliveries, result } = markDead(delivered, marks, 3000);
    expect(result).toBe(1);
    expect(deliveries.map((d) => [d.destination, d.status, d.lastError])).toEqual([
      ["pos", "dead", "queue_retries_exhausted"],
      ["erp", "delivered", null],
    ]);
    expect(markDead(deliveries, marks, 4000).deliveries).toBe(deliveries);
  });

  it("replays as a new generation and keeps the old one as history; a new destination starts at 1", () => {
    const settled = applyOutcomes(planned(), [outcome("erp", 0, "delivered")]).deliveries;
    const targets = ["pos", "erp", "crm", "pos"].map((destination) => ({ destination, route: "replay" }));
    const { deliveries, result } = addGenerations(settled, targets, 5000);
    // A destination named twice gets one new generation.
    expect(result).toEqual([
      { destination: "pos", generation: 2 },
      { destination: "erp", generation: 2 },
      { destination: "crm", generation: 1 },
    ]);
    // pos#1 was still pending: closed as dead so it is neither sent nor counted as waiting; erp#1 keeps its outcome.
    expect(deliveries.map((d) => [d.destination, d.generation, d.superseded, d.status, d.lastError])).toEqual([
      ["pos", 1, true, "dead", "superseded_by_replay"],
      ["erp", 1, true, "delivered", null],
      ["pos", 2, false, "pending", null],
      ["erp", 2, false, "pending", null],
      ["crm", 1, false, "pending", null],
    ]);
    expect(pendingDue(deliveries)).toBe(5000);
    expect(deliveries.filter((d) => !d.superseded).map((d) => `${d.destination}#${d.generation}`)).toEqual([
      "pos#2",
      "erp#2",
      "crm#1",
    ]);
    const twice = addGenerations(deliveries, [{ destination: "pos", route: "replay" }], 6000);
    expect(twice.result).toEqual([{ destination: "pos", generation: 3 }]);
    expect(twice.deliveries.filter((d) => !d.superseded && d.destination === "pos")).toHaveLength(1);
  });
});

describe("pendingDue", () => {
  it("is the earliest due time of a pending delivery, or null when none is pending", () => {
    expect(pendingDue(planned())).toBe(1000);
    const one = applyOutcomes(planned(), [outcome("pos", 0, "pending"), outcome("erp", 0, "delivered")]).deliveries;
    expect(pendingDue(one)).toBe(32_000);
    expect(pendingDue(applyOutcomes(one, [outcome("pos", 1, "dead")]).deliveries)).toBeNull();
    expect(pendingDue([])).toBeNull();
  });
});

describe("claimNamed", () => {
  it("claims a named delivery once per sweep, and not one waiting out a retry delay", () => {
    const waiting = applyOutcomes(planned(), [outcome("erp", 0, "pending")]).deliveries; // erp due at 32,000
    const refs = [
      { destination: "pos", generation: 1 },
      { destination: "erp", generation: 1 },
    ];
    const first = claimNamed(waiting, refs, 9000);
    expect(first.result).toEqual([{ destination: "pos", generation: 1 }]);
    // A second outbox row naming pos in the same sweep (same now) claims nothing.
    expect(claimNamed(first.deliveries, refs, 9000).result).toEqual([]);
  });
});

describe("claimOverdue", () => {
  it("claims only pending deliveries due before the cut-off, moving their due time to now", () => {
    const deliveries = applyOutcomes(planned(), [outcome("erp", 0, "delivered")]).deliveries;
    const { deliveries: claimed, result } = claimOverdue(deliveries, 1500, 9000);
    expect(result).toEqual([{ destination: "pos", generation: 1 }]);
    expect(claimed.map((d) => [d.destination, d.nextAttemptAt])).toEqual([
      ["pos", 9000],
      ["erp", 2000],
    ]);
    // A second claim with the same cut-off finds nothing: the due time is now 9000.
    expect(claimOverdue(claimed, 1500, 9000).result).toEqual([]);
    expect(claimOverdue(planned(), 1000, 9000).result).toEqual([]);
  });
});

describe("serializeDeliveries", () => {
  it("keeps the state as it is while it fits, and compacts history, never current state, when it does not", () => {
    const long = (destination: string, superseded = false): DeliveryState => ({
      ...plannedDeliveries([{ destination, route: "r" }], 0)[0]!,
      superseded,
      attempts: 20,
      log: Array.from({ length: 20 }, (_, i) => ({
        ...outcome(destination, i, "pending").record,
        responseExcerpt: "x".repeat(256),
      })),
    });
    const stillPending = { ...long("legacy", true) };
    const deliveries = [long("old", true), long("pos"), long("erp"), stillPending].map((d, i) =>
      i === 0 ? { ...d, status: "dead" as const } : d,
    );
    const full = JSON.stringify(deliveries);
    expect(serializeDeliveries(deliveries, full.length)).toBe(full);

    // Too big: logs keep their first and last three attempts and count the rest.
    const trimmed = JSON.parse(serializeDeliveries(deliveries, full.length - 1)) as DeliveryState[];
    expect(trimmed.map((d) => [d.destination, d.attempts, d.log.map((a) => a.attempt), d.logOmitted])).toEqual(
      ["old", "pos", "erp", "legacy"].map((name) => [name, 20, [1, 18, 19, 20], 16]),
    );
    // Much too big: the excerpts go, then settled replay history (a superseded generation still pending stays, so
    // pending_due stays true), then every log but its last attempt. State and attempt counts are never touched.
    const smallest = JSON.parse(serializeDeliveries(deliveries, 1000)) as DeliveryState[];
    expect(
      smallest.map((d) => [
        d.destination,
        d.status,
        d.attempts,
        d.log.map((a) => a.attempt),
        d.logOmitted,
        d.log[0]!.responseExcerpt,
      ]),
    ).toEqual([
      ["pos", "pending", 20, [20], 19, null],
      ["erp", "pending", 20, [20], 19, null],
      ["legacy", "pending", 20, [20], 19, null],
    ]);
    expect(pendingDue(smallest)).toBe(pendingDue(deliveries));
  });
});
