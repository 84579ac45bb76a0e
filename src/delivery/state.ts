/**
 * The delivery state of one event, as kept in its row: one element per delivery generation. These rules are pure
 * so that every writer (ingest, consumer, dead-letter consumer, replay) changes the state the same way, and so a
 * write that lost a race can re-apply them to what the winner wrote.
 */

export type DeliveryStatus = "pending" | "delivered" | "dead";

export interface AttemptRecord {
  attempt: number;
  at: number;
  statusCode: number | null;
  latencyMs: number;
  errorClass: string | null;
  responseExcerpt: string | null;
}

export interface DeliveryState {
  destination: string;
  generation: number;
  route: string;
  status: DeliveryStatus;
  attempts: number;
  createdAt: number;
  nextAttemptAt: number;
  lastStatusCode: number | null;
  lastError: string | null;
  completedAt: number | null;
  /** A replay made a newer generation for this destination; this one is history. */
  superseded: boolean;
  log: AttemptRecord[];
}

/** A delivery within its event. */
export interface DeliveryRef {
  destination: string;
  generation: number;
}

export interface AttemptOutcome {
  ref: DeliveryRef;
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

export function plannedDeliveries(plan: readonly { destination: string; route: string }[], at: number): DeliveryState[] {
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
export function pendingDue(deliveries: readonly DeliveryState[]): number | null {
  const due = deliveries.filter((d) => d.status === "pending").map((d) => d.nextAttemptAt);
  return due.length > 0 ? Math.min(...due) : null;
}

/** The current generation of each destination, in the order the destinations were first planned. */
export function currentDeliveries(deliveries: readonly DeliveryState[]): DeliveryState[] {
  return deliveries.filter((d) => !d.superseded);
}

/**
 * Records attempts. An outcome applies only to a delivery still pending with the attempt count it was read with:
 * a concurrent copy of the same message that recorded first owns that attempt, and so its retry.
 */
export function applyOutcomes(deliveries: readonly DeliveryState[], outcomes: readonly AttemptOutcome[]): Change<boolean[]> {
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
    };
  });
  return { deliveries: applied.some(Boolean) ? next : (deliveries as DeliveryState[]), result: applied };
}

/** Marks still-pending deliveries dead without an attempt (destination removed or disabled, queue gave up). */
export function markDead(deliveries: readonly DeliveryState[], marks: readonly DeadMark[], at: number): Change<number> {
  let marked = 0;
  const next = deliveries.map((delivery) => {
    const mark = marks.find((m) => sameRef(m.ref, delivery));
    if (!mark || delivery.status !== "pending") return delivery;
    marked++;
    return { ...delivery, status: "dead" as const, lastError: mark.reason, completedAt: at };
  });
  return { deliveries: marked > 0 ? next : (deliveries as DeliveryState[]), result: marked };
}

/**
 * A replay: each named destination gets its next generation, pending with a fresh attempt count, and its current
 * one becomes history. A destination the event never had starts at generation 1.
 */
export function addGenerations(
  deliveries: readonly DeliveryState[],
  targets: readonly { destination: string; route: string }[],
  at: number,
): Change<DeliveryRef[]> {
  let next = [...deliveries];
  const added: DeliveryRef[] = [];
  for (const { destination, route } of targets) {
    const generation = Math.max(0, ...next.filter((d) => d.destination === destination).map((d) => d.generation)) + 1;
    next = next.map((d) => (d.destination === destination && !d.superseded ? { ...d, superseded: true } : d));
    next.push({ ...plannedDeliveries([{ destination, route }], at)[0]!, generation });
    added.push({ destination, generation });
  }
  return { deliveries: next, result: added };
}

/**
 * The sweeper's claim on deliveries whose message seems lost: each still pending and still due before `overdueBefore`
 * gets `nextAttemptAt = now`, so an overlapping sweep (which re-reads it) no longer sees it as overdue.
 */
export function claimOverdue(deliveries: readonly DeliveryState[], overdueBefore: number, now: number): Change<DeliveryRef[]> {
  const claimed: DeliveryRef[] = [];
  const next = deliveries.map((d) => {
    if (d.status !== "pending" || d.nextAttemptAt >= overdueBefore) return d;
    claimed.push({ destination: d.destination, generation: d.generation });
    return { ...d, nextAttemptAt: now };
  });
  return { deliveries: claimed.length > 0 ? next : (deliveries as DeliveryState[]), result: claimed };
}
