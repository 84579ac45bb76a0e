/**
 * The delivery state of one event, as kept in its row: one element per delivery generation. These rules are pure
 * so that every writer (ingest, consumer, dead-letter consumer, replay) changes the state the same way, and so a
 * write that lost a race can re-apply them to what the winner wrote.
 */

import { z } from "zod";
import { HOLD_REASONS, type HoldReason } from "./controls.ts";

/**
 * `stale`: settled without an attempt on a route with `"ordering": "latest"`, because a newer state of the same
 * object had already been delivered to the destination (lastError `superseded_stale`).
 */
export const DELIVERY_STATUSES = ["pending", "delivered", "dead", "stale"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export const AttemptRecordSchema = z.strictObject({
  attempt: z.number().int(),
  at: z.number(),
  statusCode: z.number().int().nullable(),
  latencyMs: z.number(),
  errorClass: z.string().nullable(),
  responseExcerpt: z.string().nullable(),
  /**
   * A failed attempt's response headers, bounded (src/core/response-view.ts `keepHeaders`) and sealed like the
   * excerpt. Absent on successful attempts and on attempts recorded before it was kept.
   */
  responseHeaders: z.string().nullable().optional(),
});

export type AttemptRecord = z.infer<typeof AttemptRecordSchema>;

/**
 * The one definition of a delivery's JSON in the event row (`events.deliveries`). Storage parses every read with
 * it, and builds its SQL over the JSON from these keys through `deliveryKey`, so renaming a field fails the
 * typecheck there and the migration test (which parses what migrations/0002 wrote) rather than silently.
 */
export const DeliveryStateSchema = z.strictObject({
  destination: z.string(),
  generation: z.number().int().positive(),
  route: z.string(),
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.number().int().nonnegative(),
  createdAt: z.number(),
  nextAttemptAt: z.number(),
  lastStatusCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  completedAt: z.number().nullable(),
  /** A replay made a newer generation for this destination; this one is history. */
  superseded: z.boolean(),
  log: z.array(AttemptRecordSchema),
  /** Attempts left out of `log` to keep the row within D1's size limit (see serializeDeliveries). */
  logOmitted: z.number().int().optional(),
  /**
   * Pending but held by its destination's controls (paused, circuit open, disabled by a 410, or behind an older
   * held backlog): not attempted and not due until the destination's Durable Object releases it.
   */
  heldReason: z.enum(HOLD_REASONS).optional(),
});

export type DeliveryState = z.infer<typeof DeliveryStateSchema>;

export const DeliveryStatesSchema = z.array(DeliveryStateSchema);

/** A key of the delivery JSON, checked by the compiler: SQL that reads the JSON names its keys through this. */
export function deliveryKey<K extends keyof DeliveryState>(key: K): K {
  return key;
}

/** A delivery within its event. */
export interface DeliveryRef {
  destination: string;
  generation: number;
}

export interface AttemptOutcome {
  ref: DeliveryRef;
  /** Still pending after this attempt, but held (a 410 disabled the destination). */
  heldReason?: HoldReason;
  /** The attempt count read before sending: the outcome only applies if nobody recorded an attempt since. */
  previousAttempts: number;
  status: DeliveryStatus;
  nextAttemptAt: number;
  lastError: string | null;
  record: AttemptRecord;
}

export interface DeadMark {
  ref: DeliveryRef;
  reason: string;
}

/** What a rule did: the new state (the same array if nothing changed, so the caller can skip the write). */
export interface Change<R> {
  deliveries: DeliveryState[];
  result: R;
}

const sameRef = (a: DeliveryRef, b: DeliveryRef) => a.destination === b.destination && a.generation === b.generation;

export function plannedDeliveries(
  plan: readonly { destination: string; route: string }[],
  at: number,
): DeliveryState[] {
  return plan.map(({ destination, route }) => ({
    destination,
    generation: 1,
    route,
    status: "pending",
    attempts: 0,
    createdAt: at,
    nextAttemptAt: at,
    lastStatusCode: null,
    lastError: null,
    completedAt: null,
    superseded: false,
    log: [],
  }));
}

export function findDelivery(deliveries: readonly DeliveryState[], ref: DeliveryRef): DeliveryState | undefined {
  return deliveries.find((d) => sameRef(d, ref));
}

/**
 * The earliest due time among the pending deliveries, or null when none is pending. Kept in its own column beside
 * the JSON, so the sweeper can tell an event with overdue work without unpacking its deliveries.
 */
/** The current (not superseded) deliveries that are dead: the `dead_deliveries` column the dead-letter index keys on. */
export function deadDeliveries(deliveries: readonly DeliveryState[]): number {
  return deliveries.filter((d) => d.status === "dead" && !d.superseded).length;
}

export function pendingDue(deliveries: readonly DeliveryState[]): number | null {
  const due = deliveries.filter((d) => d.status === "pending").map((d) => d.nextAttemptAt);
  return due.length > 0 ? Math.min(...due) : null;
}

/**
 * Records attempts. An outcome applies only to a delivery still pending with the attempt count it was read with:
 * a concurrent copy of the same message that recorded first owns that attempt, and so its retry.
 */
export function applyOutcomes(
  deliveries: readonly DeliveryState[],
  outcomes: readonly AttemptOutcome[],
): Change<boolean[]> {
  const applied = outcomes.map(() => false);
  const next = deliveries.map((delivery) => {
    const i = outcomes.findIndex((o) => sameRef(o.ref, delivery));
    const outcome = outcomes[i];
    if (!outcome || delivery.status !== "pending" || delivery.attempts !== outcome.previousAttempts) return delivery;
    applied[i] = true;
    return {
      ...delivery,
      status: outcome.status,
      attempts: outcome.record.attempt,
      nextAttemptAt: outcome.nextAttemptAt,
      lastStatusCode: outcome.record.statusCode,
      lastError: outcome.lastError,
      completedAt: outcome.status === "pending" ? null : outcome.record.at,
      log: [...delivery.log, outcome.record],
      heldReason: outcome.status === "pending" ? outcome.heldReason : undefined,
    };
  });
  return { deliveries: applied.some(Boolean) ? next : (deliveries as DeliveryState[]), result: applied };
}

/**
 * The due time of a held delivery: never, as far as the sweeper and the retention walk can tell (the column is
 * non-null, so the walk keeps the event; no overdue scan ever reaches it). Its destination's object releases it.
 */
export const HELD_DUE = 8_640_000_000_000_000;

/** Holds pending deliveries for their destination's controls; returns how many it marked. */
export function markHeld(
  deliveries: readonly DeliveryState[],
  refs: readonly { ref: DeliveryRef; reason: HoldReason }[],
): Change<number> {
  let marked = 0;
  const next = deliveries.map((delivery) => {
    const hold = refs.find((h) => sameRef(h.ref, delivery));
    if (
      !hold ||
      delivery.status !== "pending" ||
      (delivery.heldReason === hold.reason && delivery.nextAttemptAt === HELD_DUE)
    )
      return delivery;
    marked++;
    return { ...delivery, heldReason: hold.reason, nextAttemptAt: HELD_DUE };
  });
  return { deliveries: marked > 0 ? next : (deliveries as DeliveryState[]), result: marked };
}

/** Settles still-pending deliveries without an attempt, with the reason as their last error. */
function settleWithoutAttempt(
  deliveries: readonly DeliveryState[],
  marks: readonly DeadMark[],
  at: number,
  status: "dead" | "stale",
): Change<number> {
  let marked = 0;
  const next = deliveries.map((delivery) => {
    const mark = marks.find((m) => sameRef(m.ref, delivery));
    if (!mark || delivery.status !== "pending") return delivery;
    marked++;
    return { ...delivery, status, lastError: mark.reason, completedAt: at, heldReason: undefined };
  });
  return { deliveries: marked > 0 ? next : (deliveries as DeliveryState[]), result: marked };
}

/** Marks still-pending deliveries dead without an attempt (destination removed or disabled, queue gave up). */
export const markDead = (deliveries: readonly DeliveryState[], marks: readonly DeadMark[], at: number) =>
  settleWithoutAttempt(deliveries, marks, at, "dead");

export const SUPERSEDED_STALE = "superseded_stale";

/** Settles deliveries a newer delivered state of the same object made stale: not sent, not dead. */
export const markStale = (deliveries: readonly DeliveryState[], refs: readonly DeliveryRef[], at: number) =>
  settleWithoutAttempt(
    deliveries,
    refs.map((ref) => ({ ref, reason: SUPERSEDED_STALE })),
    at,
    "stale",
  );

/**
 * A replay: each named destination gets its next generation, pending with a fresh attempt count, and its current
 * one becomes history. A destination the event never had starts at generation 1. A generation still pending is
 * closed as dead (`superseded_by_replay`) so it is neither sent nor counted as waiting.
 */
export function addGenerations(
  deliveries: readonly DeliveryState[],
  targets: readonly { destination: string; route: string }[],
  at: number,
): Change<DeliveryRef[]> {
  let next = [...deliveries];
  const added: DeliveryRef[] = [];
  for (const { destination, route } of targets) {
    if (added.some((ref) => ref.destination === destination)) continue;
    const generation = Math.max(0, ...next.filter((d) => d.destination === destination).map((d) => d.generation)) + 1;
    next = next.map((d) =>
      d.destination !== destination || d.superseded
        ? d
        : d.status === "pending"
          ? { ...d, superseded: true, status: "dead" as const, lastError: SUPERSEDED, completedAt: at }
          : { ...d, superseded: true },
    );
    next.push({ ...plannedDeliveries([{ destination, route }], at)[0]!, generation });
    added.push({ destination, generation });
  }
  return { deliveries: next, result: added };
}

export const SUPERSEDED = "superseded_by_replay";

/** A delivery still pending when its event's payload was purged (a customer's deletion request): nothing to send. */
export const PAYLOAD_PURGED = "payload_purged";

/**
 * Every response excerpt and kept response header dropped: what a purge leaves of the attempt log (statuses, times,
 * error classes).
 */
export function withoutExcerpts(deliveries: readonly DeliveryState[]): DeliveryState[] {
  return deliveries.map((d) => ({
    ...d,
    log: d.log.map(({ responseHeaders: _headers, ...a }) => ({ ...a, responseExcerpt: null })),
  }));
}

/**
 * The sweeper's claim on deliveries it is about to re-send: each still pending and matching `which` gets
 * `nextAttemptAt = now`, so an overlapping sweep (which re-reads it) no longer sees it as overdue.
 */
export function claimPending(
  deliveries: readonly DeliveryState[],
  which: (d: DeliveryState) => boolean,
  now: number,
): Change<DeliveryRef[]> {
  const claimed: DeliveryRef[] = [];
  const next = deliveries.map((d) => {
    if (d.status !== "pending" || !which(d)) return d;
    claimed.push({ destination: d.destination, generation: d.generation });
    return { ...d, nextAttemptAt: now };
  });
  return { deliveries: claimed.length > 0 ? next : (deliveries as DeliveryState[]), result: claimed };
}

export const claimOverdue = (deliveries: readonly DeliveryState[], overdueBefore: number, now: number) =>
  claimPending(deliveries, (d) => d.nextAttemptAt < overdueBefore, now);

/**
 * Claims the named deliveries that are due: one claimed already in this sweep (due time = now) or waiting out a
 * retry delay (its own message is queued) is left alone, so two outbox rows naming it send it once.
 */
export const claimNamed = (deliveries: readonly DeliveryState[], refs: readonly DeliveryRef[], now: number) =>
  claimPending(deliveries, (d) => d.nextAttemptAt < now && refs.some((ref) => sameRef(ref, d)), now);

/**
 * The most the JSON of one event's deliveries may take. D1 refuses a row over 2 MB (not enforced locally); with a
 * body of at most 700 KB (`limits.maxBodyBytes`, 933 KB sealed) and a Draft answer of at most 256 KB (341 KB
 * sealed), this keeps the whole row under it.
 */
export const MAX_DELIVERIES_JSON_BYTES = 512 * 1024;

// A UTF-8 character takes at most three bytes per UTF-16 unit, so most strings are known to fit without encoding.
const fits = (text: string, maxBytes: number) =>
  text.length * 3 <= maxBytes || new TextEncoder().encode(text).byteLength <= maxBytes;

/**
 * Serializes the deliveries for their row, compacting them in steps only if they would not fit (hundreds of
 * destinations with long attempt logs, or many replays): attempt logs keep their first and last three entries and
 * count the rest in `logOmitted`; then response excerpts (and headers) go; then settled replay history; then logs keep only the
 * last attempt. The current generations, their states and attempt counts are always kept; if even that is too
 * big, the write fails in D1 and the message is retried, with the error logged.
 */
export function serializeDeliveries(
  deliveries: readonly DeliveryState[],
  maxBytes = MAX_DELIVERIES_JSON_BYTES,
): string {
  const steps: ((d: DeliveryState[]) => DeliveryState[])[] = [
    (ds) =>
      ds.map((d) =>
        d.log.length <= 4
          ? d
          : { ...d, log: [d.log[0]!, ...d.log.slice(-3)], logOmitted: (d.logOmitted ?? 0) + d.log.length - 4 },
      ),
    withoutExcerpts,
    // Settled history only: a superseded generation still pending (left by migrations/0002) stays until it is closed.
    (ds) => ds.filter((d) => !d.superseded || d.status === "pending"),
    (ds) =>
      ds.map((d) =>
        d.log.length <= 1 ? d : { ...d, log: d.log.slice(-1), logOmitted: (d.logOmitted ?? 0) + d.log.length - 1 },
      ),
  ];
  let current = deliveries as DeliveryState[];
  let json = JSON.stringify(current);
  for (const step of steps) {
    if (fits(json, maxBytes)) break;
    current = step(current);
    json = JSON.stringify(current);
  }
  return json;
}

/**
 * The current deliveries of one event a bulk replay takes: not replay history, in the filter's state (and
 * destination), and created before the job started, so the job's own new generations never match it again and a
 * page that runs twice replays nothing twice.
 */
export function selectForReplay(
  deliveries: readonly DeliveryState[],
  filter: { status: "dead" | "failing" | "delivered" | "pending"; destination?: string },
  startedAt: number,
): DeliveryState[] {
  return deliveries.filter(
    (d) =>
      !d.superseded &&
      d.createdAt < startedAt &&
      (filter.destination === undefined || d.destination === filter.destination) &&
      (filter.status === "failing" ? d.status === "pending" && d.attempts > 0 : d.status === filter.status),
  );
}
