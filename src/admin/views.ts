/** The operations' results as the admin API shows them: times as ISO strings, held deliveries without a due time. */
import type { z } from "@hono/zod-openapi";
import { HELD_DUE } from "../core/delivery-state.ts";
import type { Quarantine } from "../core/event.ts";
import type { DeadLetter } from "../operations/dead-letters.ts";
import type { ControlView, DestinationConfig } from "../operations/destinations.ts";
import type { EventSummary, EventView } from "../operations/events.ts";
import type { ReplayJob } from "../operations/replays.ts";
import { iso } from "./openapi.ts";
import type * as S from "./schemas.ts";

/** A destination's controls as the API shows them. */
export function controlsView(v: ControlView, destination: DestinationConfig | null): z.infer<typeof S.ControlsSchema> {
  const at = (ms: number | null | undefined) => iso(ms);
  const phase = v.circuit.phase;
  const circuitState = phase === "open" ? "circuit_open" : phase === "half_open" ? "circuit_half_open" : "open";
  const state = v.paused ? "paused" : v.disabled ? "disabled_by_410" : circuitState;
  return {
    state,
    paused: v.paused && { reason: v.paused.reason, by: v.paused.by, at: at(v.paused.at)! },
    disabled: v.disabled && { reason: "disabled_by_410", at: at(v.disabled.at)!, eventId: v.disabled.eventId },
    circuit: {
      phase,
      coolDownSeconds: Math.round(v.circuit.coolDownMs / 1000),
      probeAt: at(v.circuit.probeAt),
      lastError: v.circuit.lastError,
      consecutiveFailures: v.consecutiveFailures,
    },
    held: { count: v.held.count, oldestHeldAt: at(v.held.oldestHeldAt), oldestReceivedAt: at(v.held.oldestReceivedAt) },
    inFlight: v.inFlight,
    rateLimit: destination ? destination.rateLimit : null,
    history: v.history.map((h) => ({ at: at(h.at)!, kind: h.kind, detail: h.detail, ...(h.by ? { by: h.by } : {}) })),
  };
}

export function jobView(job: ReplayJob) {
  const { id, filter, startedAt, updatedAt, ...progress } = job;
  return {
    ...progress,
    replayId: id,
    filter: { ...filter, since: iso(filter.since)!, until: iso(filter.until)! },
    startedAt: iso(startedAt)!,
    updatedAt: iso(updatedAt)!,
  };
}

function holdView(quarantine: Quarantine | null) {
  if (!quarantine) return null;
  const { at, releasedAt, ...hold } = quarantine;
  return { ...hold, at: iso(at)!, releasedAt: iso(releasedAt) };
}

export function eventSummaryView(e: EventSummary) {
  return {
    ...e,
    providerOrderId: e.providerId,
    receivedAt: iso(e.receivedAt)!,
    providerTimestamp: iso(e.providerTimestamp),
    quarantine: holdView(e.quarantine),
  };
}

export function deadLetterView({ nextAttemptAt: _due, ...d }: DeadLetter) {
  return {
    ...d,
    heldReason: d.heldReason ?? null,
    createdAt: iso(d.createdAt)!,
    completedAt: iso(d.completedAt),
    receivedAt: iso(d.receivedAt)!,
  };
}

export function eventDetailView({ event, payload, answered, deliveries, revealed }: EventView) {
  return {
    event: {
      ...event,
      ...eventSummaryView(event),
      payload,
      payloadPurgedAt: iso(event.payloadPurgedAt),
      payloadKey: event.payloadKey,
      revealed,
      lastDivergentRetry: event.lastDivergentRetry && {
        at: iso(event.lastDivergentRetry.at)!,
        bodySha256: event.lastDivergentRetry.bodySha256,
      },
      responder: event.responder && {
        ...event.responder,
        answered: { status: event.responder.answered.status, payload: answered },
      },
    },
    deliveries: deliveries.map((d) => ({
      ...d,
      createdAt: iso(d.createdAt)!,
      // A held delivery is due when its destination's object releases it, not at a time.
      nextAttemptAt: d.status === "pending" && d.nextAttemptAt < HELD_DUE ? iso(d.nextAttemptAt) : null,
      heldReason: d.heldReason ?? null,
      completedAt: iso(d.completedAt),
      attemptLog: d.attemptLog.map(({ headers, ...a }) => ({ ...a, responseHeaders: headers, at: iso(a.at)! })),
    })),
  };
}
