import { DurableObject } from "cloudflare:workers";
import {
  admission,
  alertKindFor,
  alertsToFlush,
  enable,
  initialGate,
  nextFlushAt,
  pause,
  probeExpiry,
  recordOutcomes,
  resume,
  startProbe,
  takeTokens,
  throttleAlert,
  type Alert,
  type AlertDetails,
  type AlertKind,
  type Bucket,
  type GateOutcome,
  type GateSettings,
  type GateState,
  type HoldReason,
} from "../core/controls.ts";
import { alertMessage, messageFor } from "../core/messages.ts";
import { lastDayOfDeliveries, recordDeliveryOutcomes, type DeliveryHour } from "../core/rollups.ts";
import {
  countHeld,
  ensureGateSchema,
  readRollup,
  writeRollup,
  forgetReleased,
  heldSummary,
  holdDeliveries,
  oldestHeld,
  oldestHeldAt,
  oldestReleasedAt,
  readGateState,
  releasedBefore,
  releaseHeld,
  writeGateState,
} from "../storage/gate-store.ts";
import { enqueueDeliveries } from "../storage/queue.ts";
import { logEvent } from "../telemetry/log.ts";
import { gateUsage } from "../telemetry/usage.ts";
import { errorMessage } from "../core/errors.ts";
import { TokenHolder, type TokenAnswer, type TokenSettings } from "./weedmaps-token.ts";

export interface AdmitItem {
  eventId: string;
  generation: number;
  receivedAt: number;
  /**
   * Since when this delivery has been pending: its generation's creation (a replay's, not the event's receipt). One
   * pending longer than the backlog alert's age raises `backlog_old` for deliveries in hand too, not only held ones.
   */
  pendingSince?: number;
  /** It has a failed attempt behind it: an old backlog of these is `retrying`, otherwise `waiting`. */
  retrying?: boolean;
  /** Sent by this object's release: goes ahead of what is still held. */
  released: boolean;
}

/** A Draft's responder: called (perhaps as the circuit's probe), or not, and why. */
export type ResponderDecision =
  | { call: true; probe: boolean }
  /** `until`: nothing changes before then but an operator's act (an open circuit's next probe); null: unknown. */
  | { call: false; reason: HoldReason; until: number | null };

export type Decision =
  | { kind: "send"; lease: string | null; probe: boolean }
  | { kind: "hold"; reason: HoldReason }
  | { kind: "wait"; delayMs: number };

export interface ControlView {
  destination: string;
  paused: { reason: string; by: string; at: number } | null;
  disabled: { at: number; eventId: string | null } | null;
  circuit: GateState["circuit"];
  consecutiveFailures: number;
  history: GateState["history"];
  held: { count: number; oldestHeldAt: number | null; oldestReceivedAt: number | null };
  inFlight: number;
}

interface Stored {
  destination: string;
  settings: GateSettings;
  gate: GateState;
}

/** Released per alarm when the destination has no rate limit: a backlog drains at most this fast. */
const RELEASE_PER_TICK_UNLIMITED = 50;
const TICK_MS = 1_000;

/** A released delivery not reported after this long is released again. */
const releaseExpiry = (settings: GateSettings) => settings.timeoutMs + 60_000;

/**
 * The hourly counters are kept in memory and written at most this often: on a busy destination one row per ten
 * seconds, not one per delivery. An eviction or restart forgets at most the last ten seconds of counts.
 */
const ROLLUP_WRITE_MS = 10_000;

const newAlertId = () => `alr_${crypto.randomUUID().replace(/-/g, "")}`;

/**
 * One destination's controls (or, named `~router`, the router's own alerts). Every call carries the destination's
 * settings from the config, so the object never parses config itself; it keeps the last ones for its alarm.
 *
 * Holding costs nothing while idle: a paused or disabled destination sets no alarm (except one for the backlog
 * alert); an open circuit sets one for its probe; a release drains at the rate limit, one alarm a second, and stops
 * when nothing is left.
 */
export class DestinationGate extends DurableObject<Env> {
  private stored: Stored | null = null;
  private heldCount = 0;
  /** Released, their outcome not yet reported. */
  private releasedCount = 0;
  private bucket: Bucket | null = null;
  /** When the next delivery waiting for the rate limit is told to come back (memory only: lost, waits bunch again). */
  private waitCursor = 0;
  private readonly leases = new Map<string, number>();
  private rollup: DeliveryHour[] = [];
  private rollupDirty = false;
  private rollupWrittenAt = 0;
  private rollupAlarmSet = false;

  private readonly usage: ReturnType<typeof gateUsage>;
  /** Queue messages this call sent (releases and alerts), for the usage line. */
  private sent = 0;
  private readonly sql: SqlStorage;
  /** Only for Weedmaps' Orders API: its bearer token, shared by every consumer (src/control/weedmaps-token.ts). */
  private tokens: TokenHolder | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.usage = gateUsage(env);
    this.sql = this.usage.track(ctx.storage.sql);
    void ctx.blockConcurrencyWhile(async () => {
      ensureGateSchema(this.sql);
      this.stored = readGateState<Stored>(this.sql);
      const counts = countHeld(this.sql);
      this.heldCount = counts.held;
      this.releasedCount = counts.released;
      this.rollup = readRollup<DeliveryHour[]>(this.sql) ?? [];
    });
  }

  private logUsage(method: string, extra: Record<string, unknown> = {}): void {
    this.usage.report(method, { queueMessagesSent: this.sent, ...extra });
    this.sent = 0;
  }

  private load(destination: string, settings: GateSettings | null, now: number): Stored {
    const current = this.stored ?? { destination, settings: settings!, gate: initialGate(now) };
    return { ...current, destination, settings: settings ?? current.settings };
  }

  private save(next: Stored): void {
    writeGateState(this.sql, next);
    this.stored = next;
  }

  private inFlight(now: number): number {
    for (const [id, expires] of this.leases) if (expires <= now) this.leases.delete(id);
    return this.leases.size;
  }

  private hold(items: readonly AdmitItem[], reason: HoldReason, now: number): void {
    if (items.length === 0) return;
    const released = items.filter((i) => i.released).length;
    this.releasedCount = Math.max(0, this.releasedCount - released);
    this.heldCount += holdDeliveries(
      this.sql,
      items.map((i) => ({
        eventId: i.eventId,
        generation: i.generation,
        receivedAt: i.receivedAt,
        heldAt: now,
        reason,
      })),
    );
  }

  async admit(destination: string, settings: GateSettings, now: number, items: AdmitItem[]): Promise<Decision[]> {
    let stored = this.load(destination, settings, now);
    const startState = stored.gate;
    const decisions: Decision[] = [];
    const toHold: { item: AdmitItem; reason: HoldReason }[] = [];
    const candidates: number[] = [];
    let lateProbe = false;
    for (const [i, item] of items.entries()) {
      const probe = stored.gate.circuit.probe;
      const probing = stored.gate.circuit.phase === "half_open" && !stored.gate.paused && !stored.gate.disabled;
      if (probing && probe && probe.eventId === item.eventId && probe.generation === item.generation) {
        decisions[i] = { kind: "send", lease: null, probe: true };
        continue;
      }
      if (probing && item.released && !lateProbe) {
        lateProbe = true;
        // A probe released earlier that reaches the consumer late (behind a backlog in the queue): it is as good a
        // probe as the newest one, and it is here. It becomes the probe; the newer one, when it comes, is held.
        stored = { ...stored, gate: startProbe(stored.gate, item, now) };
        decisions[i] = { kind: "send", lease: null, probe: true };
        continue;
      }
      const gate = admission(stored.gate, settings, now);
      if (gate.kind === "hold") {
        toHold.push({ item, reason: gate.reason });
        decisions[i] = { kind: "hold", reason: gate.reason };
      } else if (gate.kind === "probe") {
        // The cool-down is over and this delivery is here: it is the probe, now. Waiting for the alarm to send the
        // oldest held one instead would put the probe behind whatever backlog the queue holds (minutes, in an
        // outage); the held ones keep their order among themselves when the circuit closes.
        stored = { ...stored, gate: startProbe(stored.gate, item, now) };
        decisions[i] = { kind: "send", lease: null, probe: true };
      } else if (this.heldCount > 0 && !item.released) {
        toHold.push({ item, reason: "backlog" });
        decisions[i] = { kind: "hold", reason: "backlog" };
      } else {
        candidates.push(i);
      }
    }
    // The rate limit, over what may go: the first ones in the order given, the rest wait.
    const slots =
      settings.rate.maxInFlight === null
        ? candidates.length
        : Math.max(0, settings.rate.maxInFlight - this.inFlight(now));
    const taken = takeTokens(this.bucket, Math.min(candidates.length, slots), settings.rate.maxPerSecond, now);
    this.bucket = taken.bucket;
    const leaseMs = settings.timeoutMs + 5_000;
    candidates.forEach((index, n) => {
      if (n < taken.granted) {
        const lease = settings.rate.maxInFlight === null ? null : crypto.randomUUID();
        if (lease) this.leases.set(lease, now + leaseMs);
        decisions[index] = { kind: "send", lease, probe: false };
      } else {
        // Waiting for a token, or for a slot (a send reports within its timeout). Waits for a token are spaced at
        // the rate across batches too: a burst of thousands comes back a second's worth at a time, not all at once
        // every second (which would cost a queue message per waiting delivery per second).
        const perToken = settings.rate.maxPerSecond ? 1000 / settings.rate.maxPerSecond : 0;
        let delayMs: number;
        if (n >= slots) delayMs = Math.max(1000, perToken);
        else {
          this.waitCursor = Math.max(this.waitCursor, now + taken.waitMs);
          delayMs = Math.max(this.waitCursor - now, 1000);
          this.waitCursor += perToken;
        }
        decisions[index] = { kind: "wait", delayMs: Math.ceil(delayMs) };
      }
    });
    // A backlog that is not held (deliveries retrying through failures that never open the circuit, or waiting for
    // the rate limit) is as old as its oldest delivery in hand: alerted like a held one, throttled on its own key.
    const overdue = items.filter(
      (item, i) =>
        decisions[i]!.kind !== "hold" &&
        item.pendingSince !== undefined &&
        now - item.pendingSince >= settings.backlogAlertMs,
    );
    if (overdue.length > 0) {
      const oldest = Math.min(...overdue.map((item) => item.pendingSince!));
      // `retrying`: failures that never open the circuit; `waiting`: first attempts behind the rate limit or a queue
      // that is slow to bring them. Each is throttled on its own key.
      const reason = overdue.some((item) => item.retrying) ? "retrying" : "waiting";
      stored = await this.raise(stored, "backlog_old", now, {
        reason,
        counts: { overdue: overdue.length, oldestMinutes: Math.floor((now - oldest) / 60_000) },
        eventIds: overdue.map((item) => item.eventId).slice(0, 20),
        throttleKey: `backlog_old:${reason}`,
      });
    }
    for (const reason of new Set(toHold.map((h) => h.reason))) {
      this.hold(
        toHold.filter((h) => h.reason === reason).map((h) => h.item),
        reason,
        now,
      );
    }
    if (stored.gate !== startState || !this.stored) this.save(stored);
    if (toHold.length > 0) await this.scheduleAlarm(now);
    this.logUsage("admit", { items: items.length, held: toHold.length });
    return decisions;
  }

  /**
   * Whether a Draft's responder may be called now: not while paused, disabled by a 410 or its circuit open, except
   * as the probe once the cool-down is over. Nothing is held: a Draft cannot wait, it is answered 502 at once. The
   * outcome comes back through `report`, where it moves the circuit as any delivery's does.
   */
  async admitResponder(
    destination: string,
    settings: GateSettings,
    now: number,
    ref: { eventId: string; generation: number },
  ): Promise<ResponderDecision> {
    const stored = this.load(destination, settings, now);
    const gate = admission(stored.gate, settings, now);
    let decision: ResponderDecision;
    if (gate.kind === "hold")
      decision = {
        call: false,
        reason: gate.reason,
        until:
          gate.reason === "circuit_open" && stored.gate.circuit.phase === "open" ? stored.gate.circuit.probeAt : null,
      };
    else if (gate.kind === "probe") {
      this.save({ ...stored, gate: startProbe(stored.gate, ref, now) });
      decision = { call: true, probe: true };
    } else decision = { call: true, probe: false };
    if (!this.stored) this.save(stored);
    this.logUsage("admitResponder");
    return decision;
  }

  /** The Orders API's bearer token: kept, fetched once at a time, at most once a minute. */
  async bearerToken(settings: TokenSettings, now: number, rejected?: string): Promise<TokenAnswer> {
    this.tokens ??= new TokenHolder(this.ctx.storage, this.env);
    const answer = await this.tokens.get(settings, now, rejected);
    this.logUsage("bearerToken");
    return answer;
  }

  /** What the sends admitted earlier did: frees their slots, moves the circuit, raises alerts. */
  async report(
    destination: string,
    settings: GateSettings,
    now: number,
    outcomes: GateOutcome[],
    leases: string[],
  ): Promise<void> {
    for (const lease of leases) this.leases.delete(lease);
    if (this.releasedCount > 0)
      this.releasedCount = Math.max(0, this.releasedCount - forgetReleased(this.sql, outcomes));
    const stored = this.load(destination, settings, now);
    const { state, transitions } = recordOutcomes(
      stored.gate,
      outcomes.filter((o) => !o.dead || o.ok || o.failure || o.gone),
      settings,
      now,
    );
    let next: Stored = { ...stored, gate: state };
    for (const t of transitions) {
      const kind = alertKindFor(t.kind);
      if (kind)
        next = await this.raise(next, kind, now, {
          reason: t.detail,
          eventIds: t.kind === "disabled" && state.disabled?.eventId ? [state.disabled.eventId] : [],
        });
    }
    const dead = outcomes.filter((o) => o.dead);
    // Weedmaps' 403, 404 and 423: the integration is paused or lacks access, which no retry mends.
    const refused = dead.filter((o) => o.accessRefused);
    const others = dead.filter((o) => !o.accessRefused);
    if (refused.length > 0) {
      next = await this.raise(next, "integration_paused", now, {
        counts: { dead: refused.length },
        eventIds: refused.map((o) => o.eventId).slice(0, 20),
        reason: refused[0]!.errorClass,
      });
    }
    if (others.length > 0) {
      next = await this.raise(next, "delivery_dead", now, {
        counts: { dead: others.length },
        eventIds: others.map((o) => o.eventId).slice(0, 20),
        reason: others[0]!.errorClass,
      });
    }
    // Written when something an eviction must not forget changed: a transition, an alert's throttle, a failure
    // count. A report of successes only updates memory (an evicted object then counts the failure rate over fewer
    // attempts, which errs towards opening); on the happy path only the hourly counters are written, every 10 s.
    const failed = outcomes.some((o) => o.failure) || stored.gate.consecutiveFailures !== next.gate.consecutiveFailures;
    if (transitions.length > 0 || dead.length > 0 || failed || !this.stored) this.save(next);
    else this.stored = next;
    const counted = outcomes.flatMap((o) => (o.rollup && o.rollup.kind !== "none" ? [o.rollup] : []));
    if (counted.length > 0) {
      this.rollup = recordDeliveryOutcomes(this.rollup, counted, now);
      this.rollupDirty = true;
    }
    // One alarm carries a deferred write, not one setAlarm per report.
    const deferred = !this.writeRollup(now) && !this.rollupAlarmSet;
    if (transitions.length > 0 || dead.length > 0 || deferred) await this.scheduleAlarm(now);
    this.logUsage("report", { outcomes: outcomes.length });
  }

  /** Pause, resume, or re-enable after a 410. Resume and enable release what was held, in order. */
  async control(
    destination: string,
    settings: GateSettings,
    now: number,
    action: "pause" | "resume" | "enable",
    by: string,
    reason: string | null,
  ): Promise<ControlView> {
    const stored = this.load(destination, settings, now);
    const gate =
      action === "pause"
        ? pause(stored.gate, reason ?? "", by, now)
        : action === "resume"
          ? resume(stored.gate, by, now)
          : enable(stored.gate, by, now);
    this.save({ ...stored, gate });
    await this.scheduleAlarm(now);
    this.logUsage(action);
    return this.view(now);
  }

  async health(destination: string, now: number): Promise<ControlView> {
    if (!this.stored) return this.emptyView(destination, now);
    return this.view(now);
  }

  /** The controls and the last 24 hours of counters, oldest hour first: what the dashboard shows. */
  async overview(destination: string, now: number): Promise<{ controls: ControlView; hours: DeliveryHour[] }> {
    return { controls: await this.health(destination, now), hours: lastDayOfDeliveries(this.rollup, now) };
  }

  /** Writes the counters if they changed and the last write is old enough; false when it waits for the alarm. */
  private writeRollup(now: number, force = false): boolean {
    if (!this.rollupDirty) return true;
    if (!force && now - this.rollupWrittenAt < ROLLUP_WRITE_MS) return false;
    writeRollup(this.sql, this.rollup);
    this.rollupDirty = false;
    this.rollupWrittenAt = now;
    return true;
  }

  /** A router-wide alert (the dead-letter queue), throttled per kind like a destination's. */
  async raiseAlert(settings: GateSettings, now: number, kind: AlertKind, details: AlertDetails): Promise<void> {
    const stored = this.load("~router", settings, now);
    this.save(await this.raise(stored, kind, now, details));
    await this.scheduleAlarm(now);
  }

  private emptyView(destination: string, now: number): ControlView {
    const gate = initialGate(now);
    return {
      destination,
      paused: null,
      disabled: null,
      circuit: gate.circuit,
      consecutiveFailures: 0,
      history: [],
      held: { count: 0, oldestHeldAt: null, oldestReceivedAt: null },
      inFlight: 0,
    };
  }

  private view(now: number): ControlView {
    const { destination, gate } = this.stored!;
    return {
      destination,
      paused: gate.paused,
      disabled: gate.disabled,
      circuit: gate.circuit,
      consecutiveFailures: gate.consecutiveFailures,
      history: gate.history,
      held: heldSummary(this.sql),
      inFlight: this.inFlight(now),
    };
  }

  /** Throttles, then queues the alert for the consumer to send; a failed send is logged and never stops the caller. */
  private async raise(stored: Stored, kind: AlertKind, now: number, details: AlertDetails): Promise<Stored> {
    const throttled = throttleAlert(stored.gate, details.throttleKey ?? kind, stored.settings.alertThrottleMs, now);
    const next = { ...stored, gate: throttled.state };
    if (!throttled.send) return next;
    const alert: Alert = {
      id: newAlertId(),
      kind,
      destination: stored.destination === "~router" ? null : stored.destination,
      at: now,
      reason: details.reason ?? null,
      suppressed: throttled.suppressed,
      counts: details.counts ?? {},
      eventIds: details.eventIds ?? [],
    };
    await this.send(alert);
    return next;
  }

  private async send(alert: Alert): Promise<void> {
    logEvent("warn", "alert_raised", {
      alertId: alert.id,
      kind: alert.kind,
      destination: alert.destination,
      reason: alert.reason,
      counts: alert.counts,
      suppressed: alert.suppressed,
    });
    try {
      await enqueueDeliveries(this.env.DELIVERY_QUEUE, [{ body: alertMessage(alert) }]);
      this.sent += 1;
    } catch (err) {
      logEvent("error", "alert_enqueue_failed", {
        alertId: alert.id,
        kind: alert.kind,
        errorMessage: errorMessage(err),
      });
    }
  }

  override async alarm(): Promise<void> {
    await this.tick(Date.now());
  }

  /**
   * The alarm's work at `now`: held-back alert counts whose window passed, the backlog alert, the probe when the
   * cool-down is over, and the release of held deliveries (at the rate limit) when the destination is open again.
   */
  async tick(now: number): Promise<void> {
    this.rollupAlarmSet = false;
    this.writeRollup(now, true);
    if (!this.stored) return;
    let stored = this.stored;
    const { settings } = stored;
    for (const throttleKey of alertsToFlush(stored.gate, settings.alertThrottleMs, now)) {
      // Nothing new came to carry the count: it goes out on its own (the throttle lets it through, its window over).
      const kind = throttleKey.split(":")[0] as AlertKind;
      stored = await this.raise(stored, kind, now, { reason: "similar alerts held back by the throttle", throttleKey });
    }
    if (this.releasedCount > 0) {
      // Released but never reported (the message was lost, or its consumer died): sent again. A copy that does
      // arrive twice finds the delivery settled and is acknowledged without a second POST.
      const stale = releasedBefore(this.sql, now - releaseExpiry(settings), 100);
      if (stale.length > 0) await this.release(stale, now, true);
    }
    if (this.heldCount > 0) {
      const heldSince = oldestHeldAt(this.sql);
      if (stored.gate.backlogAlertedAt === null && heldSince !== null && now - heldSince >= settings.backlogAlertMs) {
        stored = { ...stored, gate: { ...stored.gate, backlogAlertedAt: now } };
        stored = await this.raise(stored, "backlog_old", now, {
          reason: stored.gate.paused
            ? "paused"
            : stored.gate.disabled
              ? "disabled_by_410"
              : stored.gate.circuit.phase !== "closed"
                ? "circuit_open"
                : "backlog",
          counts: { held: this.heldCount, oldestMinutes: Math.floor((now - heldSince) / 60_000) },
        });
      }
      const gate = admission(stored.gate, settings, now, "alarm");
      if (gate.kind === "probe") {
        const [first] = oldestHeld(this.sql, 1);
        if (first) {
          stored = { ...stored, gate: startProbe(stored.gate, first, now) };
          await this.release([first], now);
        }
      } else if (gate.kind === "open") {
        const perTick =
          settings.rate.maxPerSecond === null
            ? RELEASE_PER_TICK_UNLIMITED
            : Math.max(1, Math.floor(settings.rate.maxPerSecond));
        await this.release(oldestHeld(this.sql, perTick), now);
      }
    }
    if (this.heldCount === 0 && stored.gate.backlogAlertedAt !== null)
      stored = { ...stored, gate: { ...stored.gate, backlogAlertedAt: null } };
    this.save(stored);
    await this.scheduleAlarm(now);
    this.logUsage("alarm", { stillHeld: this.heldCount });
  }

  /** Sends held deliveries back to the queue, oldest first, then forgets them; a failed send keeps them held. */
  private async release(items: { eventId: string; generation: number }[], now: number, again = false): Promise<void> {
    if (items.length === 0) return;
    const destination = this.stored!.destination;
    await enqueueDeliveries(
      this.env.DELIVERY_QUEUE,
      items.map((i) => ({ body: messageFor(i.eventId, [{ destination, generation: i.generation }], undefined, true) })),
    );
    this.sent += items.length;
    releaseHeld(this.sql, items, now);
    if (!again) {
      this.heldCount = Math.max(0, this.heldCount - items.length);
      this.releasedCount += items.length;
    }
    logEvent("info", "destination_released", { destination, released: items.length, stillHeld: this.heldCount });
  }

  /** The one alarm, at the earliest thing due; none when nothing is. */
  private async scheduleAlarm(now: number): Promise<void> {
    if (!this.stored) return;
    const { gate, settings } = this.stored;
    const due: number[] = [];
    const flush = nextFlushAt(gate, settings.alertThrottleMs);
    if (flush !== null) due.push(flush);
    // Whatever replaces the alarm now carries a deferred counter write, or none is pending.
    this.rollupAlarmSet = this.rollupDirty;
    if (this.rollupDirty) due.push(this.rollupWrittenAt + ROLLUP_WRITE_MS);
    if (this.releasedCount > 0) {
      const oldest = oldestReleasedAt(this.sql);
      if (oldest !== null) due.push(oldest + releaseExpiry(settings));
    }
    if (this.heldCount > 0) {
      const heldSince = gate.backlogAlertedAt === null ? oldestHeldAt(this.sql) : null;
      if (heldSince !== null) due.push(heldSince + settings.backlogAlertMs);
      const state = admission(gate, settings, now, "alarm");
      // Open: the next release a tick from now (a drain at the rate limit); a probe that is due: now.
      if (state.kind === "open" || state.kind === "probe") due.push(state.kind === "open" ? now + TICK_MS : now);
      else if (state.reason === "circuit_open")
        due.push(
          gate.circuit.phase === "open"
            ? (gate.circuit.probeAt ?? now)
            : (gate.circuit.probe?.startedAt ?? now) + probeExpiry(settings),
        );
      // Paused or disabled: nothing until an operator acts (or the backlog alert above).
    }
    if (due.length === 0) {
      await this.ctx.storage.deleteAlarm();
      return;
    }
    await this.ctx.storage.setAlarm(Math.max(Math.min(...due), now));
  }
}
