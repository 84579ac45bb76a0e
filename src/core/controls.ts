/**
 * Destination controls, as pure rules over one destination's gate state: pause, the 410 disable, the circuit breaker
 * (closed → open → one probe → closed, or open again with a longer cool-down), the rate limit's token bucket, and the
 * alert throttle. The Durable Object in src/control/ keeps the state and applies these rules; nothing here does I/O.
 */
import type { RollupOutcome } from "./rollups.ts";

export const HOLD_REASONS = ["paused", "circuit_open", "disabled_by_410", "backlog"] as const;
/** Why a delivery waits without an attempt. `backlog`: older held deliveries of the destination go first. */
export type HoldReason = (typeof HOLD_REASONS)[number];

export interface CircuitSettings {
  enabled: boolean;
  /** Opens after this many failures in a row. */
  consecutiveFailures: number;
  /** Or when at least `minAttempts` attempts in `windowSeconds` failed at this rate or more. */
  failureRate: number;
  minAttempts: number;
  windowSeconds: number;
  /** The first cool-down; each failed probe doubles it, up to `maxCoolDownSeconds`. */
  coolDownSeconds: number;
  maxCoolDownSeconds: number;
}

export interface RateSettings {
  maxPerSecond: number | null;
  maxInFlight: number | null;
}

/** What the gate needs to know of a destination's config; sent with every call, so the object never reads config. */
export interface GateSettings {
  circuit: CircuitSettings;
  rate: RateSettings;
  /** The destination's own timeout: a send not reported after this (and a margin) no longer holds its slot. */
  timeoutMs: number;
  alertThrottleMs: number;
  backlogAlertMs: number;
}

export type CircuitPhase = "closed" | "open" | "half_open";

export type GateTransition = "opened" | "probe" | "closed" | "reopened" | "paused" | "resumed" | "disabled" | "enabled";

export interface GateHistoryEntry {
  at: number;
  kind: GateTransition;
  /** The error class that decided it (circuit), or the operator's reason (pause). Never a payload value. */
  detail: string | null;
  /** The token id of the operator, for pause, resume and enable. */
  by?: string;
}

export interface ProbeRef {
  eventId: string;
  generation: number;
  startedAt: number;
}

export interface GateState {
  paused: { reason: string; by: string; at: number } | null;
  disabled: { at: number; eventId: string | null } | null;
  circuit: {
    phase: CircuitPhase;
    coolDownMs: number;
    probeAt: number | null;
    probe: ProbeRef | null;
    lastError: string | null;
  };
  consecutiveFailures: number;
  window: { startedAt: number; attempts: number; failures: number };
  history: GateHistoryEntry[];
  /** Per alert kind: when one last went out and how many were held back since. */
  alerts: Record<string, { sentAt: number; suppressed: number }>;
  /** The held delivery a backlog alert was last sent for; a new alert waits for a new backlog. */
  backlogAlertedAt: number | null;
}

export const HISTORY_LIMIT = 50;

export function initialGate(now: number): GateState {
  return {
    paused: null,
    disabled: null,
    circuit: { phase: "closed", coolDownMs: 0, probeAt: null, probe: null, lastError: null },
    consecutiveFailures: 0,
    window: { startedAt: now, attempts: 0, failures: 0 },
    history: [],
    alerts: {},
    backlogAlertedAt: null,
  };
}

function withHistory(state: GateState, entry: GateHistoryEntry): GateState {
  return { ...state, history: [...state.history, entry].slice(-HISTORY_LIMIT) };
}

/**
 * A probe not reported after this long is taken as lost (its consumer died, or its message waits behind a backlog
 * in the queue): another goes out. One that arrives late still counts as a probe (src/control/gate.ts).
 */
export const probeExpiry = (settings: GateSettings) => settings.timeoutMs + 120_000;

export type Admission = { kind: "open" } | { kind: "probe" } | { kind: "hold"; reason: Exclude<HoldReason, "backlog"> };

/** Whether a delivery may be attempted now, before the rate limit is consulted. */
/**
 * A delivery that is here while a probe has been out longer than a send takes may probe as well: the one out is
 * most likely waiting in the queue. At most one such probe per this interval.
 */
export const liveProbeAfter = (settings: GateSettings) => settings.timeoutMs + 5_000;

/**
 * Whether a delivery may be attempted now, before the rate limit is consulted. `by` is who asks: a delivery that
 * the consumer has in hand (`live`) may probe again sooner than the alarm sends a held one through the queue.
 */
export function admission(
  state: GateState,
  settings: GateSettings,
  now: number,
  by: "live" | "alarm" = "live",
): Admission {
  if (state.paused) return { kind: "hold", reason: "paused" };
  if (state.disabled) return { kind: "hold", reason: "disabled_by_410" };
  const { circuit } = state;
  if (circuit.phase === "closed") return { kind: "open" };
  if (circuit.phase === "open")
    return circuit.probeAt !== null && now >= circuit.probeAt
      ? { kind: "probe" }
      : { kind: "hold", reason: "circuit_open" };
  // Half open: one probe is out; a lost or delayed one is replaced.
  const after = by === "live" ? liveProbeAfter(settings) : probeExpiry(settings);
  return circuit.probe && now - circuit.probe.startedAt > after
    ? { kind: "probe" }
    : { kind: "hold", reason: "circuit_open" };
}

export function startProbe(state: GateState, ref: { eventId: string; generation: number }, now: number): GateState {
  return withHistory(
    { ...state, circuit: { ...state.circuit, phase: "half_open", probe: { ...ref, startedAt: now } } },
    { at: now, kind: "probe", detail: `${ref.eventId}#${ref.generation}` },
  );
}

export interface GateOutcome {
  eventId: string;
  generation: number;
  /** A 2xx. */
  ok: boolean;
  /** Counts against the circuit: no answer, a timeout, 5xx, 408, 429. A 4xx the destination meant is not sickness. */
  failure: boolean;
  /** 410 Gone: the destination asked to receive nothing more. */
  gone: boolean;
  errorClass: string | null;
  /** The delivery ended dead (attempts exhausted, a permanent answer, or settled without an attempt). */
  dead: boolean;
  /** Dead because Weedmaps' Orders API refused access (403, 404, 423): alerted as `integration_paused`. */
  accessRefused?: boolean;
  /** What it adds to the destination's hourly counters (src/core/rollups.ts); absent, nothing. */
  rollup?: RollupOutcome;
}

/**
 * Deaths settled without an attempt (the dead-letter queue, a purge, a destination gone from the config) as their
 * destinations' objects count them: a dead letter each in the hour's counters, moving no circuit, raising no
 * delivery_dead alert (the dead-letter queue raises its own; a purge is an operator's act).
 */
export function deathsToCount(
  eventId: string,
  refs: readonly { destination: string; generation: number }[],
): Map<string, GateOutcome[]> {
  const byDestination = new Map<string, GateOutcome[]>();
  for (const ref of refs) {
    const outcome: GateOutcome = {
      eventId,
      generation: ref.generation,
      ok: false,
      failure: false,
      gone: false,
      errorClass: null,
      dead: false,
      rollup: { kind: "dead", sinceReceivedMs: null },
    };
    byDestination.set(ref.destination, [...(byDestination.get(ref.destination) ?? []), outcome]);
  }
  return byDestination;
}

export interface Recorded {
  state: GateState;
  transitions: GateHistoryEntry[];
}

function open(
  state: GateState,
  settings: GateSettings,
  now: number,
  error: string | null,
  kind: "opened" | "reopened",
): GateState {
  const base = settings.circuit.coolDownSeconds * 1000;
  const coolDownMs =
    kind === "opened"
      ? base
      : Math.min(Math.max(state.circuit.coolDownMs, base) * 2, settings.circuit.maxCoolDownSeconds * 1000);
  return withHistory(
    {
      ...state,
      consecutiveFailures: 0,
      window: { startedAt: now, attempts: 0, failures: 0 },
      circuit: { phase: "open", coolDownMs, probeAt: now + coolDownMs, probe: null, lastError: error },
    },
    { at: now, kind, detail: error },
  );
}

/** Applies what the consumer saw; returns the new state and the transitions it caused, in order. */
export function recordOutcomes(
  initial: GateState,
  outcomes: readonly GateOutcome[],
  settings: GateSettings,
  now: number,
): Recorded {
  let state = initial;
  const transitions: GateHistoryEntry[] = [];
  const moved = (next: GateState) => {
    transitions.push(next.history.at(-1)!);
    state = next;
  };
  const windowMs = settings.circuit.windowSeconds * 1000;
  for (const o of outcomes) {
    if (o.gone) {
      if (!state.disabled)
        moved(
          withHistory(
            { ...state, disabled: { at: now, eventId: o.eventId } },
            { at: now, kind: "disabled", detail: "http_410" },
          ),
        );
      continue;
    }
    const probe = state.circuit.probe;
    // Only an answer decides a probe: one settled without an attempt (stale, superseded) leaves it out.
    if (
      state.circuit.phase === "half_open" &&
      probe &&
      probe.eventId === o.eventId &&
      probe.generation === o.generation &&
      (o.ok || o.failure)
    ) {
      moved(
        o.failure
          ? open(state, settings, now, o.errorClass, "reopened")
          : withHistory(
              {
                ...state,
                consecutiveFailures: 0,
                circuit: {
                  phase: "closed",
                  coolDownMs: 0,
                  probeAt: null,
                  probe: null,
                  lastError: state.circuit.lastError,
                },
              },
              { at: now, kind: "closed", detail: null },
            ),
      );
      continue;
    }
    // Sends that started before the circuit opened report while it is open: they neither open nor close it.
    if (state.circuit.phase !== "closed" || (!o.ok && !o.failure)) continue;
    const window =
      now - state.window.startedAt > windowMs ? { startedAt: now, attempts: 0, failures: 0 } : { ...state.window };
    window.attempts += 1;
    if (o.failure) window.failures += 1;
    state = { ...state, window, consecutiveFailures: o.failure ? state.consecutiveFailures + 1 : 0 };
    if (!settings.circuit.enabled || !o.failure) continue;
    const c = settings.circuit;
    const byCount = state.consecutiveFailures >= c.consecutiveFailures;
    const byRate = window.attempts >= c.minAttempts && window.failures / window.attempts >= c.failureRate;
    if (byCount || byRate) moved(open(state, settings, now, o.errorClass, "opened"));
  }
  return { state, transitions };
}

export function pause(state: GateState, reason: string, by: string, now: number): GateState {
  return withHistory({ ...state, paused: { reason, by, at: now } }, { at: now, kind: "paused", detail: reason, by });
}

export function resume(state: GateState, by: string, now: number): GateState {
  return state.paused ? withHistory({ ...state, paused: null }, { at: now, kind: "resumed", detail: null, by }) : state;
}

/** Re-enabling after a 410 also closes the circuit: the operator says the endpoint is back. */
export function enable(state: GateState, by: string, now: number): GateState {
  if (!state.disabled) return state;
  return withHistory(
    {
      ...state,
      disabled: null,
      consecutiveFailures: 0,
      circuit: { phase: "closed", coolDownMs: 0, probeAt: null, probe: null, lastError: state.circuit.lastError },
    },
    { at: now, kind: "enabled", detail: null, by },
  );
}

/** Token bucket: `maxPerSecond` tokens a second, at most one second's worth saved up. */
export interface Bucket {
  tokens: number;
  at: number;
}

export function takeTokens(
  bucket: Bucket | null,
  want: number,
  maxPerSecond: number | null,
  now: number,
): { bucket: Bucket | null; granted: number; waitMs: number } {
  if (maxPerSecond === null) return { bucket: null, granted: want, waitMs: 0 };
  const capacity = Math.max(1, maxPerSecond);
  const start = bucket ?? { tokens: capacity, at: now };
  const tokens = Math.min(capacity, start.tokens + ((now - start.at) / 1000) * maxPerSecond);
  const granted = Math.min(want, Math.floor(tokens));
  const left = tokens - granted;
  // Time until the first of the ones not granted could go.
  const waitMs =
    granted < want
      ? Math.ceil(((1 - (left % 1)) / maxPerSecond) * 1000 + ((want - granted - 1) / maxPerSecond) * 1000)
      : 0;
  return { bucket: { tokens: left, at: now }, granted, waitMs };
}

/**
 * At most one alert of a kind per throttle window. A held-back one is counted; the next alert carries the count,
 * and `flushDue` tells when a count still waiting should go out on its own.
 */
export function throttleAlert(
  state: GateState,
  kind: string,
  throttleMs: number,
  now: number,
): { state: GateState; send: boolean; suppressed: number } {
  const entry = state.alerts[kind];
  if (entry && now - entry.sentAt < throttleMs) {
    return {
      state: { ...state, alerts: { ...state.alerts, [kind]: { ...entry, suppressed: entry.suppressed + 1 } } },
      send: false,
      suppressed: 0,
    };
  }
  return {
    state: { ...state, alerts: { ...state.alerts, [kind]: { sentAt: now, suppressed: 0 } } },
    send: true,
    suppressed: entry?.suppressed ?? 0,
  };
}

/** The kinds whose held-back count should be sent now (their window has passed with no new alert to carry it). */
export function alertsToFlush(state: GateState, throttleMs: number, now: number): string[] {
  return Object.entries(state.alerts)
    .filter(([, a]) => a.suppressed > 0 && now - a.sentAt >= throttleMs)
    .map(([kind]) => kind);
}

export function nextFlushAt(state: GateState, throttleMs: number): number | null {
  const due = Object.values(state.alerts)
    .filter((a) => a.suppressed > 0)
    .map((a) => a.sentAt + throttleMs);
  return due.length > 0 ? Math.min(...due) : null;
}

/**
 * `event_held`: a verified event was stored held (quarantine) and waits for an operator's release.
 * `capacity_warning`, `capacity_critical`: a shard's size rose past `limits.capacity.warnPercent` /
 * `criticalPercent` (src/core/capacity.ts). `shard_read_only`: a shard passed `readOnlyPercent` while another had
 * room, so the router made it read-only (new events go to the others from the next shard map). `storage_full`: no
 * shard has room below its read-only line, so ingest answers 503 until an operator acts. Each carries the shard id,
 * its size and percentage, never customer data. `integration_paused`: Weedmaps' Orders API answered a status
 * update 403, 404 or 423 (the integration is paused or has no access to the order); the update is dead.
 */
export const ALERT_KINDS = [
  "delivery_dead",
  "circuit_opened",
  "circuit_closed",
  "destination_disabled",
  "dead_letter",
  "backlog_old",
  "event_held",
  "capacity_warning",
  "capacity_critical",
  "shard_read_only",
  "storage_full",
  "integration_paused",
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** What raising an alert gives besides its kind. */
export interface AlertDetails {
  reason?: string | null;
  counts?: Record<string, number>;
  eventIds?: string[];
  /**
   * What the throttle counts by, `<kind>:<sub-kind>`; by default the kind. Held events are throttled per hold
   * reason, so a broken callback URL is not silenced by an unidentified body an hour's window earlier.
   */
  throttleKey?: string;
}

/** What an alert says: ids, counts and reasons, never a payload value. */
export interface Alert {
  id: string;
  kind: AlertKind;
  destination: string | null;
  at: number;
  reason: string | null;
  /** How many alerts of this kind for this destination the throttle held back before this one. */
  suppressed: number;
  counts: Record<string, number>;
  eventIds: string[];
}

export function alertKindFor(transition: GateTransition): AlertKind | null {
  return transition === "opened" || transition === "reopened"
    ? "circuit_opened"
    : transition === "closed"
      ? "circuit_closed"
      : transition === "disabled"
        ? "destination_disabled"
        : null;
}

/** One line for a chat channel (Slack's `{"text": …}`). */
export function alertText(alert: Alert): string {
  const where = alert.destination ? ` for destination ${alert.destination}` : "";
  const counts = Object.entries(alert.counts)
    .map(([k, v]) => `${k}: ${v}`)
    .join(", ");
  const extra = [
    alert.reason ? `reason: ${alert.reason}` : "",
    counts,
    alert.suppressed > 0 ? `${alert.suppressed} similar alert(s) suppressed` : "",
    alert.eventIds.length > 0 ? `events: ${alert.eventIds.join(", ")}` : "",
  ]
    .filter(Boolean)
    .join("; ");
  return `[webhook router] ${alert.kind.replace(/_/g, " ")}${where}${extra ? ` (${extra})` : ""}`;
}
