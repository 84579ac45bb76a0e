/**
 * The Worker's side of the destination controls: one call to a destination's Durable Object per consumer batch to
 * admit its deliveries, one to report what they did, and the admin actions. A gate that cannot be reached fails
 * open (the delivery goes, logged): the controls protect a destination, they must never stop delivery on their own.
 */
import type { AlertDetails, AlertKind, GateOutcome, GateSettings } from "../core/controls.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import type { DeliveryHour } from "../core/rollups.ts";
import { logEvent } from "../telemetry/log.ts";
import type { AdmitItem, ControlView, Decision, ResponderDecision } from "./gate.ts";
import { errorMessage } from "../core/errors.ts";
import { tokenSettings, type TokenAnswer } from "./weedmaps-token.ts";

export type { AdmitItem, ControlView, Decision, ResponderDecision } from "./gate.ts";

/** The object that throttles router-wide alerts (the dead-letter queue); not a valid destination name. */
export const ROUTER_GATE = "~router";

const ROUTER_SETTINGS_BASE = {
  circuit: {
    enabled: false,
    consecutiveFailures: 1,
    failureRate: 1,
    minAttempts: 1,
    windowSeconds: 1,
    coolDownSeconds: 1,
    maxCoolDownSeconds: 1,
  },
  rate: { maxPerSecond: null, maxInFlight: null },
  timeoutMs: 10_000,
};

export function gateSettings(config: RouterConfig, destination: string): GateSettings {
  const d = config.destinations[destination];
  const alerts = {
    alertThrottleMs: config.alerts.throttleMinutes * 60_000,
    backlogAlertMs: config.alerts.backlogMinutes * 60_000,
  };
  if (!d) return { ...ROUTER_SETTINGS_BASE, ...alerts };
  return { circuit: d.circuit, rate: d.rateLimit, timeoutMs: d.timeoutMs, ...alerts };
}

function gate(env: Env, name: string) {
  return env.DESTINATION_GATE.get(env.DESTINATION_GATE.idFromName(name));
}

/** Decisions for each destination's items, in the order given; one call per destination. */
export async function admitAll(
  env: Env,
  config: RouterConfig,
  now: number,
  byDestination: Map<string, AdmitItem[]>,
): Promise<Map<string, Decision[]>> {
  const entries = await Promise.all(
    [...byDestination].map(async ([destination, items]): Promise<[string, Decision[]]> => {
      try {
        return [
          destination,
          await gate(env, destination).admit(destination, gateSettings(config, destination), now, items),
        ];
      } catch (err) {
        logEvent("error", "gate_unavailable", {
          destination,
          step: "admit",
          errorMessage: errorMessage(err),
          note: "delivering without the controls",
        });
        return [destination, items.map(() => ({ kind: "send", lease: null, probe: false }))];
      }
    }),
  );
  return new Map(entries);
}

export async function reportAll(
  env: Env,
  config: RouterConfig,
  now: number,
  byDestination: Map<string, { outcomes: GateOutcome[]; leases: string[] }>,
): Promise<void> {
  await Promise.all(
    [...byDestination].map(async ([destination, { outcomes, leases }]) => {
      try {
        await gate(env, destination).report(destination, gateSettings(config, destination), now, outcomes, leases);
      } catch (err) {
        logEvent("error", "gate_unavailable", {
          destination,
          step: "report",
          outcomes: outcomes.length,
          errorMessage: errorMessage(err),
        });
      }
    }),
  );
}

export function controlDestination(
  env: Env,
  config: RouterConfig,
  destination: string,
  now: number,
  action: "pause" | "resume" | "enable",
  by: string,
  reason: string | null,
): Promise<ControlView> {
  return gate(env, destination).control(destination, gateSettings(config, destination), now, action, by, reason);
}

export function destinationControls(env: Env, destination: string, now: number): Promise<ControlView> {
  return gate(env, destination).health(destination, now);
}

/** The controls and the last 24 hours of delivery counters, in one call. */
export function destinationOverview(
  env: Env,
  destination: string,
  now: number,
): Promise<{ controls: ControlView; hours: DeliveryHour[] }> {
  return gate(env, destination).overview(destination, now);
}

/** A router-wide alert; a failure is logged, never thrown: an alert must not stop what raised it. */
export async function raiseRouterAlert(
  env: Env,
  config: RouterConfig,
  now: number,
  kind: AlertKind,
  details: AlertDetails,
): Promise<void> {
  try {
    await gate(env, ROUTER_GATE).raiseAlert(gateSettings(config, ROUTER_GATE), now, kind, details);
  } catch (err) {
    logEvent("error", "alert_failed", { kind, step: "raise", errorMessage: errorMessage(err) });
  }
}

/**
 * The Orders API destination's bearer token, from its object. An object that cannot be reached gives no token:
 * the update is retried like a failed attempt (the token is what authorises it; there is no sending without it).
 */
export async function bearerToken(
  env: Env,
  config: RouterConfig,
  destination: string,
  now: number,
  rejected?: string,
): Promise<TokenAnswer> {
  const settings = tokenSettings(config.destinations[destination]!);
  if (!settings) return { unavailable: "token_config_error", retryInMs: 60_000 };
  try {
    return await gate(env, destination).bearerToken(settings, now, rejected);
  } catch (err) {
    logEvent("error", "gate_unavailable", { destination, step: "bearerToken", errorMessage: errorMessage(err) });
    return { unavailable: "token_unavailable", retryInMs: 5_000 };
  }
}

/**
 * How long an isolate trusts a responder it just saw answer well, without asking its object again: a checkout does
 * not wait for a Durable Object round trip while the responder is healthy. A pause reaches this isolate within it;
 * a failure here ends the trust at once. The same window holds a "do not call" (paused, disabled, circuit open, the
 * last never past the circuit's next probe), so an outage costs a checkout no round trip either.
 */
export const RESPONDER_TRUST_MS = 2_000;
/**
 * What this isolate knows of each responder, per Durable Object namespace binding (one in production; a test that
 * binds objects of its own, on a clock of its own, gets its own).
 */
interface ResponderKnowledge {
  trustedUntil: Map<string, number>;
  /** A responder its object just said not to call: held here too, without asking, for as long (at most the window). */
  heldUntil: Map<string, { until: number; reason: ResponderDecision & { call: false } }>;
  /** Successes while trusted, kept to go with the next report: the circuit's window counts every answer. */
  unreported: Map<string, GateOutcome[]>;
}
const knowledge = new WeakMap<object, ResponderKnowledge>();
function knowledgeOf(env: Env): ResponderKnowledge {
  let known = knowledge.get(env.DESTINATION_GATE);
  if (!known) {
    known = { trustedUntil: new Map(), heldUntil: new Map(), unreported: new Map() };
    knowledge.set(env.DESTINATION_GATE, known);
  }
  return known;
}
/** More successes than a 2 s window could hold at any sane Draft rate; past it the oldest are dropped. */
const MAX_UNREPORTED = 1_000;

/**
 * What a Draft's call to its responder did: it renews or ends this isolate's trust, and returns the outcomes to
 * report to the responder's object now. A success while trusted waits for the next report (at most the trust
 * window later), so a healthy responder costs one object request per isolate every 2 s, not one per Draft; a
 * failure, a probe's answer and the first success after a decision by the object go at once, with what waited.
 */
export function responderAnswered(env: Env, destination: string, outcome: GateOutcome, now: number): GateOutcome[] {
  const { trustedUntil, unreported } = knowledgeOf(env);
  const trusted = (trustedUntil.get(destination) ?? 0) > now;
  const waiting = unreported.get(destination) ?? [];
  if (outcome.ok && trusted) {
    unreported.set(destination, [...waiting, outcome].slice(-MAX_UNREPORTED));
    return [];
  }
  unreported.delete(destination);
  if (outcome.ok) trustedUntil.set(destination, now + RESPONDER_TRUST_MS);
  else trustedUntil.delete(destination);
  return [...waiting, outcome];
}

/**
 * Whether a Draft's responder may be called (src/ingest/draft.ts). An object that cannot be reached lets the call
 * go, as it lets a delivery go: the controls must never stop a checkout on their own.
 */
export async function admitResponder(
  env: Env,
  config: RouterConfig,
  destination: string,
  now: number,
  ref: { eventId: string; generation: number },
): Promise<ResponderDecision> {
  const { trustedUntil, heldUntil } = knowledgeOf(env);
  if ((trustedUntil.get(destination) ?? 0) > now) return { call: true, probe: false };
  const held = heldUntil.get(destination);
  if (held && held.until > now) return held.reason;
  try {
    const decision = await gate(env, destination).admitResponder(
      destination,
      gateSettings(config, destination),
      now,
      ref,
    );
    if (decision.call) heldUntil.delete(destination);
    else
      heldUntil.set(destination, {
        until: Math.min(now + RESPONDER_TRUST_MS, decision.until ?? Number.POSITIVE_INFINITY),
        reason: decision,
      });
    return decision;
  } catch (err) {
    logEvent("error", "gate_unavailable", {
      destination,
      step: "admitResponder",
      errorMessage: errorMessage(err),
      note: "calling the responder without the controls",
    });
    return { call: true, probe: false };
  }
}
