/**
 * The dashboard's overview, from rollups only: event counts from the Cron's walk, delivery counters from each
 * destination's object, and the dead-letter count through each shard's index. Its health strip adds each
 * destination's controls (the same objects), the newest dead letters (that index) and the oldest pending delivery
 * (the held ones from the objects, and a bounded look at each shard's newest events through its received_at index).
 * Nothing here reads the events table but through those two indexes.
 */
import { shardsOf } from "../config/shards.ts";
import { DAY_HOURS, HOUR_MS, hourOf, type DeliveryHour } from "../core/rollups.ts";
import { listDeadLetters as listStoredDeadLetters, type DeadLetter } from "../storage/admin-queries.ts";
import { deadLetterTotals, oldestPendingAmongNewest, readEventCounts, readRollupCursors } from "../storage/rollups.ts";
import { configOf, type OperationContext } from "./context.ts";
import { destinationDays, type ControlView, type DestinationDay } from "./destinations.ts";

/**
 * The dead deliveries of every shard, exact, one row read each (src/storage/rollups.ts), the shards at once: the sum,
 * and how many of them are in purged events (counted, but a redrive cannot send them: its count leaves them out).
 */
async function deadInShards(ctx: OperationContext) {
  const totals = await Promise.all(shardsOf(ctx.env, configOf(ctx)).map(({ db }) => deadLetterTotals(db)));
  return {
    dead: totals.reduce((sum, t) => sum + t.dead, 0),
    purged: totals.reduce((sum, t) => sum + t.purged, 0),
  };
}

/** How many of each shard's newest events the oldest-pending look reads (src/storage/rollups.ts). */
export const PENDING_LOOK_AT = 500;

/**
 * Why a destination is in the overview's health strip, worst first: the first is its pill. `unknown`: its controls
 * could not be read.
 */
export const CONCERNS = [
  "unknown",
  "disabled by 410",
  "circuit open",
  "circuit half open",
  "failing",
  "paused",
  "held",
  "dead letters",
] as const;
export type Concern = (typeof CONCERNS)[number];

/** One destination that is not healthy: what is wrong, why, since when, and when it is next tried. */
export interface DestinationConcern {
  destination: string;
  /** Every concern that applies, worst first; `concerns[0]` is its state. */
  concerns: Concern[];
  /** The worst concern's reason: the circuit's error class, the operator's pause reason, the last dead error. */
  reason: string | null;
  /** When the worst concern began (the circuit opened, the pause, the 410, the oldest held or dead delivery). */
  since: number | null;
  /** When an open circuit sends its next probe, or since when a half-open one's probe is out. */
  nextProbeAt: number | null;
  probeOutSince: number | null;
  /** Retryable failures in a row (the circuit's count), while its circuit is closed. */
  consecutiveFailures: number;
  held: { count: number; oldestHeldAt: number | null };
  /** Its dead letters among the newest events holding one (`more`: the look was full, so there may be others). */
  dead: { count: number; more: boolean; lastError: string | null; firstAt: number | null };
  pausedBy: string | null;
}

/** When the current open-circuit episode began: its latest "opened" (a failed probe "reopened" continues it). */
function openedAt(controls: ControlView): number | null {
  for (let i = controls.history.length - 1; i >= 0; i--) {
    const entry = controls.history[i]!;
    if (entry.kind === "opened") return entry.at;
    if (entry.kind === "closed" || entry.kind === "enabled") break;
  }
  // The history is bounded: an episode longer than it shows starts at its oldest reopening.
  return controls.history.find((e) => e.kind === "reopened")?.at ?? null;
}

/** The start of the unbroken run of hours, up to the newest, in which attempts failed (the day's counters). */
function failingSinceHour(hours: readonly DeliveryHour[]): number | null {
  let since: number | null = null;
  for (let i = hours.length - 1; i >= 0; i--) {
    const h = hours[i]!;
    if (h.failed + h.dead === 0) {
      if (since !== null) break;
      continue;
    }
    since = h.hour;
  }
  return since;
}

/**
 * One destination's concerns from its controls, its day of counters and its dead letters (pure): null when it is
 * healthy (closed circuit, no failure in a row, not paused, disabled or holding anything, no dead letter).
 */
export function destinationConcern(
  day: DestinationDay,
  deadLetters: readonly DeadLetter[],
  deadMore: boolean,
): DestinationConcern | null {
  const c = day.controls;
  const mine = deadLetters.filter((d) => d.destination === day.name);
  const dead = {
    count: mine.length,
    more: deadMore && mine.length > 0,
    // The list is newest event first: its first is the latest death's error.
    lastError: mine[0]?.lastError ?? null,
    firstAt: mine.reduce<number | null>((min, d) => {
      const at = d.completedAt ?? d.receivedAt;
      return min === null || at < min ? at : min;
    }, null),
  };
  const concerns: Concern[] = [];
  if (!c) concerns.push("unknown");
  else {
    if (c.disabled) concerns.push("disabled by 410");
    if (c.circuit.phase === "open") concerns.push("circuit open");
    if (c.circuit.phase === "half_open") concerns.push("circuit half open");
    if (c.circuit.phase === "closed" && c.consecutiveFailures > 0) concerns.push("failing");
    if (c.paused) concerns.push("paused");
    if (c.held.count > 0) concerns.push("held");
  }
  if (dead.count > 0) concerns.push("dead letters");
  if (concerns.length === 0) return null;
  const worst = concerns[0]!;
  const reasonAndSince: Record<Concern, () => [string | null, number | null]> = {
    unknown: () => ["its controls could not be read", null],
    "disabled by 410": () => [
      `it answered 410 Gone${c?.disabled?.eventId ? ` (event ${c.disabled.eventId})` : ""}`,
      c?.disabled?.at ?? null,
    ],
    "circuit open": () => [c?.circuit.lastError ?? null, c ? openedAt(c) : null],
    "circuit half open": () => [c?.circuit.lastError ?? null, c ? openedAt(c) : null],
    failing: () => [
      `${c?.consecutiveFailures ?? 0} failed attempt${c?.consecutiveFailures === 1 ? "" : "s"} in a row`,
      failingSinceHour(day.hours),
    ],
    paused: () => [c?.paused?.reason ?? null, c?.paused?.at ?? null],
    held: () => [
      `${c?.held.count ?? 0} deliver${c?.held.count === 1 ? "y" : "ies"} held`,
      c?.held.oldestHeldAt ?? null,
    ],
    "dead letters": () => [dead.lastError, dead.firstAt],
  };
  const [reason, since] = reasonAndSince[worst]();
  return {
    destination: day.name,
    concerns,
    reason,
    since,
    nextProbeAt: c?.circuit.phase === "open" ? c.circuit.probeAt : null,
    probeOutSince: c?.circuit.phase === "half_open" ? (c.circuit.probe?.startedAt ?? null) : null,
    consecutiveFailures: c?.consecutiveFailures ?? 0,
    held: { count: c?.held.count ?? 0, oldestHeldAt: c?.held.oldestHeldAt ?? null },
    dead,
    pausedBy: c?.paused?.by ?? null,
  };
}

/**
 * The oldest pending delivery: the oldest held one (each destination's controls count every one) or the oldest among
 * each shard's newest PENDING_LOOK_AT events, whichever was received first.
 */
function oldestPending(
  looks: readonly { oldestReceivedAt: number | null }[],
  destinations: readonly DestinationDay[],
): number | null {
  const candidates = [
    ...looks.map((l) => l.oldestReceivedAt),
    ...destinations.map((d) => d.controls?.held.oldestReceivedAt ?? null),
  ].filter((at): at is number => at !== null);
  return candidates.length === 0 ? null : Math.min(...candidates);
}

/** The dead letters the health strip groups by destination: the newest events holding one, every shard at once. */
const HEALTH_DEAD_LOOK = 50;

export async function overview(ctx: OperationContext) {
  const now = ctx.clock.now();
  const since = hourOf(now) - (DAY_HOURS - 1) * HOUR_MS;
  const config = configOf(ctx);
  const shards = config.storage.shards.map((s) => s.id);
  const [counts, cursors, dead, destinations, deadList, looks] = await Promise.all([
    readEventCounts(ctx.env.DB, since),
    // Counted up to where every shard's walk has reached: the oldest of their cursors.
    readRollupCursors(ctx.env.DB, shards),
    deadInShards(ctx),
    destinationDays(ctx),
    listStoredDeadLetters(shardsOf(ctx.env, config), {}, null, HEALTH_DEAD_LOOK),
    Promise.all(shardsOf(ctx.env, config).map(({ db }) => oldestPendingAmongNewest(db, PENDING_LOOK_AT))),
  ]);
  const deadLetters = deadList.deadLetters;
  const concerns = destinations
    .filter((d) => config.destinations[d.name]?.enabled !== false)
    .map((d) => destinationConcern(d, deadLetters, deadList.next !== null))
    .filter((c): c is DestinationConcern => c !== null);
  const health = {
    concerns,
    /** Destinations turned off in the config: not watched, so not in the strip. */
    off: destinations.filter((d) => config.destinations[d.name]?.enabled === false).map((d) => d.name),
    oldestPendingReceivedAt: oldestPending(looks, destinations),
  };
  return { now, counts, countedTo: cursors.countedUntil, dead, destinations, health };
}
