/**
 * The overview's counters, as pure rules: events by hour, source and type (counted by the Cron's walk over new
 * events), and per destination by hour the deliveries, failed attempts, dead letters and a histogram of the time
 * from receipt to delivery (kept by the destination's Durable Object, which sees every outcome already).
 */
export const HOUR_MS = 3_600_000;
export const DAY_HOURS = 24;

export const hourOf = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS;

/**
 * Upper bounds of the time-to-delivery buckets, in ms; one more bucket holds everything slower. A percentile is
 * read as the bound of the bucket it falls in, so p50 "≤ 2.5 s" means half were delivered within 2.5 s.
 */
export const LATENCY_BOUNDS_MS = [
  100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000, 21_600_000,
] as const;

export interface DeliveryHour {
  hour: number;
  delivered: number;
  /** Attempts that failed and will be retried (or held); a delivery that dies counts under `dead` instead. */
  failed: number;
  dead: number;
  /** Deliveries per LATENCY_BOUNDS_MS bucket, plus the open-ended last one. */
  latency: number[];
}

/** What one recorded outcome adds. */
export interface RollupOutcome {
  kind: "delivered" | "failed" | "dead" | "none";
  /** From the event's receipt to this delivery, for `delivered`. */
  sinceReceivedMs: number | null;
}

const emptyHour = (hour: number): DeliveryHour => ({
  hour,
  delivered: 0,
  failed: 0,
  dead: 0,
  latency: Array(LATENCY_BOUNDS_MS.length + 1).fill(0),
});

export function latencyBucket(ms: number): number {
  const i = LATENCY_BOUNDS_MS.findIndex((bound) => ms <= bound);
  return i === -1 ? LATENCY_BOUNDS_MS.length : i;
}

/** Adds outcomes to the hour of `now`, and forgets hours older than a day and one. */
export function recordDeliveryOutcomes(
  hours: readonly DeliveryHour[],
  outcomes: readonly RollupOutcome[],
  now: number,
): DeliveryHour[] {
  const counted = outcomes.filter((o) => o.kind !== "none");
  const oldest = hourOf(now) - DAY_HOURS * HOUR_MS;
  const kept = hours.filter((h) => h.hour >= oldest);
  if (counted.length === 0) return kept.length === hours.length ? [...hours] : kept;
  const hour = hourOf(now);
  const current = kept.find((h) => h.hour === hour);
  const next: DeliveryHour = current ? { ...current, latency: [...current.latency] } : emptyHour(hour);
  for (const o of counted) {
    if (o.kind === "delivered") {
      next.delivered += 1;
      if (o.sinceReceivedMs !== null) next.latency[latencyBucket(Math.max(0, o.sinceReceivedMs))]! += 1;
    } else if (o.kind === "failed") next.failed += 1;
    else next.dead += 1;
  }
  return [...kept.filter((h) => h.hour !== hour), next].sort((a, b) => a.hour - b.hour);
}

/** The last 24 hours ending with the hour of `now`, oldest first, an empty hour where nothing was counted. */
export function lastDay<T extends { hour: number }>(hours: readonly T[], now: number, empty: (hour: number) => T): T[] {
  const end = hourOf(now);
  const byHour = new Map(hours.map((h) => [h.hour, h]));
  return Array.from({ length: DAY_HOURS }, (_, i) => {
    const hour = end - (DAY_HOURS - 1 - i) * HOUR_MS;
    return byHour.get(hour) ?? empty(hour);
  });
}

export const lastDayOfDeliveries = (hours: readonly DeliveryHour[], now: number) => lastDay(hours, now, emptyHour);

export interface DeliveryTotals {
  delivered: number;
  failed: number;
  dead: number;
  /** Bucket bounds in ms; null when nothing was delivered, Infinity when past the last bound. */
  p50Ms: number | null;
  p99Ms: number | null;
}

export function percentileOf(latency: readonly number[], p: number): number | null {
  const total = latency.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.ceil(p * total);
  let seen = 0;
  for (const [i, n] of latency.entries()) {
    seen += n;
    if (seen >= rank) return LATENCY_BOUNDS_MS[i] ?? Number.POSITIVE_INFINITY;
  }
  return Number.POSITIVE_INFINITY;
}

export function totalsOf(hours: readonly DeliveryHour[]): DeliveryTotals {
  const latency = Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
  let delivered = 0;
  let failed = 0;
  let dead = 0;
  for (const h of hours) {
    delivered += h.delivered;
    failed += h.failed;
    dead += h.dead;
    for (const [i, n] of h.latency.entries()) latency[i]! += n;
  }
  return { delivered, failed, dead, p50Ms: percentileOf(latency, 0.5), p99Ms: percentileOf(latency, 0.99) };
}

export interface EventCount {
  hour: number;
  source: string;
  eventType: string;
  events: number;
}

/** One slice of the walk, counted by hour, source and type: the rows it adds or increments. */
export function countEvents(rows: readonly { receivedAt: number; source: string; eventType: string }[]): EventCount[] {
  const counts = new Map<string, EventCount>();
  for (const row of rows) {
    const hour = hourOf(row.receivedAt);
    const key = JSON.stringify([hour, row.source, row.eventType]);
    const count = counts.get(key) ?? { hour, source: row.source, eventType: row.eventType, events: 0 };
    count.events += 1;
    counts.set(key, count);
  }
  return [...counts.values()];
}
