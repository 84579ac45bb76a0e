import pLimit, { type LimitFunction } from "p-limit";
import { loadPayloadProtection } from "../config/keys.ts";
import { loadConfig, readVar } from "../config/load.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import type { RouterDeps } from "../core/deps.ts";
import type { ProviderRegistry } from "../core/providers/contract.ts";
import { deathsToCount, type GateOutcome } from "../core/controls.ts";
import {
  applyOutcomes,
  findDelivery,
  HELD_DUE,
  markDead,
  markHeld,
  markStale,
  PAYLOAD_PURGED,
  SUPERSEDED,
  type AttemptOutcome,
  type DeadMark,
  type DeliveryRef,
  type DeliveryState,
} from "../core/delivery-state.ts";
import type { StoredEvent } from "../core/event.ts";
import {
  alertMessage,
  messageFor,
  QueueMessageSchema,
  type AlertMessage,
  type DeliveryMessage,
} from "../core/messages.ts";
import { admitAll, bearerToken, reportAll, type AdmitItem, type Decision } from "../control/client.ts";
import type { TokenAnswer } from "../control/weedmaps-token.ts";
import type { DestinationConfig } from "../core/config/schema.ts";
import { putOrderStatus } from "../outbound/weedmaps-orders.ts";
import { RELAY_ROUTE } from "../core/relay.ts";
import type { OutboundResult } from "../outbound/client.ts";
import { sendAlert } from "../outbound/alerts.ts";
import { BACKOFF_BASE_SECONDS, backoffDelaySeconds, classifyAttempt, errorClassOf } from "../core/retry-policy.ts";
import { EXCERPT_CHARS, keepHeaders } from "../core/response-view.ts";
import { sendToDestination } from "../outbound/client.ts";
import { updateDeliveries } from "../storage/delivery-writes.ts";
import { loadDeliveryWork } from "../storage/events.ts";
import type { EventPayloads } from "../storage/payloads.ts";
import { latestDeliveredIn, recordDelivered } from "../storage/ordering.ts";
import { enqueueDeliveries } from "../storage/queue.ts";
import type { DeliverySnapshot } from "../storage/rows.ts";
import { logEvent } from "../telemetry/log.ts";
import { runReplayPage } from "./replay.ts";
import { errorMessage } from "../core/errors.ts";
import { objectDigest, shardOfEventId } from "../core/event-id.ts";
import { shardsInWindow, writableShards } from "../core/shards.ts";
import { shardMaps } from "../storage/shard-maps.ts";
import { configuredShardDb, eventDbOrNull } from "./shards.ts";

/** `RETRY_BACKOFF_BASE_SECONDS` shortens the schedule for local walkthroughs; production keeps 30 s. */
export function backoffBaseSeconds(env: Env): number {
  const configured = Number(readVar(env, "RETRY_BACKOFF_BASE_SECONDS"));
  return Number.isFinite(configured) && configured >= 1 ? configured : BACKOFF_BASE_SECONDS;
}

/**
 * A Worker may have only 6 connections waiting for response headers; further fetches wait for a slot while their
 * AbortSignal.timeout keeps running. Holding our own slot before starting the timer keeps every destination's
 * timeout honest, and one slot stays free for D1 and Queues.
 */
export const MAX_CONCURRENT_REQUESTS = 5;

/** The object an event's ordering is kept for: its provider id, within the kind of object its type is about. */
function orderingKey(providers: ProviderRegistry, config: RouterConfig, event: StoredEvent): string {
  const source = config.sources[event.source];
  const kind = (source && providers[source.provider]?.orderingKind?.(event.eventType)) ?? "object";
  return `${kind}:${event.providerId}`;
}

function orderingOf(config: RouterConfig, route: string): "none" | "latest" {
  // A status update that a later one of its order overtook is never sent: it would move the order back.
  if (route === RELAY_ROUTE) return "latest";
  return config.routes.find((r) => r.name === route)?.ordering ?? "none";
}

/** A delivery on a route with `"ordering": "latest"`, of an event that says which object and state it is. */
function isOrdered(config: RouterConfig, event: StoredEvent, delivery: DeliveryState): boolean {
  return (
    orderingOf(config, delivery.route) === "latest" && event.providerTimestamp !== null && event.providerId !== null
  );
}

const DISABLED_BY_410 = "disabled_by_410" as const;

type MessageVerdict = { kind: "ack" } | { kind: "retry"; delaySeconds: number };

interface RetryPlan {
  ref: DeliveryRef;
  delaySeconds: number;
  /** Keeps its place ahead of the destination's held backlog. */
  released: boolean;
  /** Waiting for the rate limit, not retrying a failure: never through the queue's own retry count. */
  wait: boolean;
}

/**
 * An ingest sends its message while it stores the event, so the message can arrive first. Waiting this many
 * deliveries of the message (2 + 4 + 8 + 16 s) covers any insert still in flight; after that the insert failed,
 * the provider was told so, and its retry sends a message of its own.
 */
const UNCOMMITTED_EVENT_ATTEMPTS = 5;

interface Planned {
  message: DeliveryMessage;
  /** The event's shard: every read and write of the event and of its order's ordering state goes there. */
  db: D1Database;
  event: StoredEvent;
  snapshot: DeliverySnapshot;
  payloads: EventPayloads;
  deadWithoutAttempt: DeadMark[];
  stale: DeliveryState[];
  fresh: DeliveryState[];
}

/**
 * The other shards an object's ordering state may be in, besides its event's own. Every event of one order is
 * stored in one shard, but a change of the shard map moves where the order's next events go: within the retry window
 * after it, the state is also read where the map before placed the order (its earlier states were delivered from
 * there) and where the map now places it (for an event stored before the change and delivered after). One extra
 * read, only in the window, only when the placement moved; none otherwise.
 */
async function otherOrderingShards(
  env: Env,
  config: RouterConfig,
  now: number,
  event: StoredEvent,
): Promise<D1Database[]> {
  const maps = await shardMaps(env.DB, (readOnly) => writableShards(config.storage.shards, readOnly), now);
  if (now - maps.current.createdAt >= config.storage.retryWindowHours * 3_600_000) return [];
  const digest = await objectDigest(event.source, event.providerId!);
  // Every shard a map version current within the window placed the order in (ingest matches retries the same way).
  const others = new Set(shardsInWindow(digest, maps.versions, now, config.storage.retryWindowHours * 3_600_000));
  others.delete(shardOfEventId(event.id) ?? -1);
  return [...others].flatMap((shard) => configuredShardDb(env, config, shard) ?? []);
}

/** What one message asks for, before the destinations' controls are asked: what to send, what dies, what is stale. */
async function planDeliveries(
  env: Env,
  config: RouterConfig,
  { providers, clock }: RouterDeps,
  message: DeliveryMessage,
  db: D1Database,
  event: StoredEvent,
  snapshot: DeliverySnapshot,
  payloads: EventPayloads,
): Promise<Planned> {
  const toSend: DeliveryState[] = [];
  const deadWithoutAttempt: DeadMark[] = [];
  for (const ref of message.deliveries) {
    const delivery = findDelivery(snapshot.deliveries, ref);
    // Queues may deliver a message twice: a delivery that is already terminal is acknowledged, never re-sent.
    if (delivery?.status !== "pending") continue;
    const destination = config.destinations[delivery.destination];
    const reason = delivery.superseded
      ? SUPERSEDED
      : !destination
        ? "destination_removed"
        : !destination.enabled
          ? "destination_disabled"
          : delivery.attempts >= destination.maxAttempts
            ? "attempts_exhausted"
            : null;
    if (reason) deadWithoutAttempt.push({ ref, reason });
    else toSend.push(delivery);
  }
  for (const { ref, reason } of deadWithoutAttempt) {
    logEvent("warn", "delivery_dead", {
      eventId: event.id,
      destination: ref.destination,
      generation: ref.generation,
      reason,
    });
  }

  // Routes with `"ordering": "latest"`: a newer state of this object already delivered makes this one stale.
  const ordered = (delivery: DeliveryState) => isOrdered(config, event, delivery);
  const latest = toSend.some(ordered)
    ? await latestDeliveredIn(
        [db, ...(await otherOrderingShards(env, config, clock.now(), event))],
        event.source,
        orderingKey(providers, config, event),
      )
    : new Map<string, number>();
  const stale = toSend.filter((d) => ordered(d) && (latest.get(d.destination) ?? -Infinity) > event.providerTimestamp!);
  for (const d of stale)
    logEvent("info", "delivery_stale", { eventId: event.id, destination: d.destination, generation: d.generation });
  return {
    message,
    db,
    event,
    snapshot,
    payloads,
    deadWithoutAttempt,
    stale,
    fresh: toSend.filter((d) => !stale.includes(d)),
  };
}

/** Weedmaps' 403, 404 and 423: the integration is paused or has no access to the order. */
const ACCESS_REFUSED = new Set([403, 404, 423]);

/** Each Orders API destination's token, asked of its object once per batch. */
type Tokens = Map<string, Promise<TokenAnswer>>;

/**
 * A status update to Weedmaps' Orders API (src/relay): the destination's bearer token, then the PUT. A 401 tells
 * the object the token was refused, so the next attempt has a new one (fetched at most once a minute).
 */
async function sendStatusUpdate(
  env: Env,
  config: RouterConfig,
  name: string,
  destination: DestinationConfig,
  event: StoredEvent,
  clock: RouterDeps["clock"],
  tokens: Tokens,
): Promise<OutboundResult> {
  let asked = tokens.get(name);
  if (!asked) {
    asked = bearerToken(env, config, name, clock.now());
    tokens.set(name, asked);
  }
  const answer = await asked;
  if (!("token" in answer))
    return {
      statusCode: null,
      transportError: "token_unavailable",
      latencyMs: 0,
      responseExcerpt: answer.unavailable,
      retryAfterSeconds: Math.ceil(answer.retryInMs / 1000),
    };
  const result = await putOrderStatus(destination, event, answer.token, { timeoutMs: destination.timeoutMs, clock });
  if (result.statusCode === 401) {
    tokens.delete(name);
    await bearerToken(env, config, name, clock.now(), answer.token);
  }
  return result;
}

/**
 * The batch's plans in groups run one after another: each order's status updates to Weedmaps' Orders API in the
 * order they were accepted, every other plan a group of its own.
 */
function sequencedUpdates<P extends { plan: Planned }>(config: RouterConfig, plans: readonly P[]): P[][] {
  const groups = new Map<string, P[]>();
  const alone: P[][] = [];
  for (const planned of plans) {
    const { event } = planned.plan;
    const update = planned.plan.fresh.some((d) => config.destinations[d.destination]?.weedmapsOrders);
    if (!update || event.providerId === null) {
      alone.push([planned]);
      continue;
    }
    const key = `${event.source}\u0000${event.providerId}`;
    groups.set(key, [...(groups.get(key) ?? []), planned]);
  }
  for (const group of groups.values())
    group.sort((a, b) => (a.plan.event.providerTimestamp ?? 0) - (b.plan.event.providerTimestamp ?? 0));
  return [...alone, ...groups.values()];
}

/** What the destinations' controls said of each fresh delivery, keyed by destination and generation. */
type Decisions = Map<string, Decision>;
const decisionKey = (eventId: string, ref: DeliveryRef) => `${eventId} ${ref.destination} ${ref.generation}`;

/** An outcome that moves no circuit: only tells a destination's object that a delivery it released is settled. */
const neutral = (eventId: string, generation: number): GateOutcome => ({
  eventId,
  generation,
  ok: false,
  failure: false,
  gone: false,
  errorClass: null,
  dead: false,
});

/** What an executed message tells the destinations' objects, and what it leaves to send later. */
interface Executed {
  retries: RetryPlan[];
  gate: { destination: string; outcome: GateOutcome; lease: string | null }[];
}

async function attemptDeliveries(
  env: Env,
  config: RouterConfig,
  { providers, clock }: RouterDeps,
  limit: LimitFunction,
  plan: Planned,
  decisions: Decisions,
  tokens: Tokens,
): Promise<Executed> {
  const { message, event, snapshot, payloads, deadWithoutAttempt, stale } = plan;
  const now = clock.now();
  const decided = plan.fresh.map((delivery) => ({
    delivery,
    decision: decisions.get(decisionKey(event.id, delivery)) ?? ({ kind: "send", lease: null, probe: false } as const),
  }));
  const held = decided.flatMap(({ delivery, decision }) =>
    decision.kind === "hold"
      ? [{ ref: { destination: delivery.destination, generation: delivery.generation }, reason: decision.reason }]
      : [],
  );
  for (const h of held) logEvent("info", "delivery_held", { eventId: event.id, ...h.ref, reason: h.reason });
  // Waiting for the rate limit: sent again after the delay, without using an attempt.
  const waits: RetryPlan[] = decided.flatMap(({ delivery, decision }) =>
    decision.kind === "wait"
      ? [
          {
            ref: { destination: delivery.destination, generation: delivery.generation },
            delaySeconds: Math.max(1, Math.ceil(decision.delayMs / 1000)),
            released: message.released === true,
            wait: true,
          },
        ]
      : [],
  );
  const fresh = decided.filter((d) => d.decision.kind === "send");
  const leaseOf = new Map(
    fresh.map(({ delivery, decision }) => [delivery, decision.kind === "send" ? decision.lease : null]),
  );

  const attempts = await Promise.all(
    fresh.map(({ delivery }) =>
      limit(async () => {
        const destination = config.destinations[delivery.destination]!;
        const attempt = delivery.attempts + 1;
        const at = clock.now();
        const result = destination.weedmapsOrders
          ? await sendStatusUpdate(env, config, delivery.destination, destination, event, clock, tokens)
          : await sendToDestination(env, destination, event, {
              attempt,
              timeoutMs: destination.timeoutMs,
              clock,
            });
        return { delivery, destination, attempt, at, result };
      }),
    ),
  );

  const retries: RetryPlan[] = [];
  // What a destination answered may echo the customer: sealed with the event's data key, like its body. A note of
  // the router's own (no status: the header it could not build) stays readable. A failed answer's headers are kept
  // too, bounded, so an operator can read why (docs/customer-data.md); a successful one's are not, so they cost nothing.
  const kept = await Promise.all(
    attempts.map(async ({ result }) => {
      const excerpt = result.responseExcerpt?.slice(0, EXCERPT_CHARS) ?? null;
      const headers = result.responseHeaders ? keepHeaders(result.responseHeaders) : null;
      return {
        excerpt: excerpt !== null && result.statusCode !== null ? await payloads.sealText("excerpt", excerpt) : excerpt,
        headers: headers === null ? null : await payloads.sealText("headers", headers),
      };
    }),
  );
  const outcomes: AttemptOutcome[] = attempts.map(({ delivery, destination, attempt, at, result }, i) => {
    const ref = { destination: delivery.destination, generation: delivery.generation };
    const api = destination.weedmapsOrders !== undefined;
    // Weedmaps' 401 is a token it no longer takes: the next attempt has a new one.
    const verdict = classifyAttempt(result, api ? [...destination.retryOnStatus, 401] : destination.retryOnStatus);
    const errorClass = errorClassOf(result);
    // 410 Gone (Standard Webhooks): the destination asked for nothing more. Its object disables it, and this delivery
    // is held with the rest until an operator re-enables it. Weedmaps' API is no Standard Webhooks receiver.
    const gone = result.statusCode === 410 && destination.disableOnGone && !api;
    const accessRefused = api && verdict === "permanent" && ACCESS_REFUSED.has(result.statusCode ?? 0);
    const exhausted = verdict === "retry" && attempt >= destination.maxAttempts;
    const delaySeconds =
      verdict === "retry" && !exhausted
        ? backoffDelaySeconds(attempt, result.retryAfterSeconds, Math.random, backoffBaseSeconds(env))
        : 0;
    const status = gone
      ? "pending"
      : verdict === "delivered"
        ? "delivered"
        : verdict === "permanent" || exhausted
          ? "dead"
          : "pending";
    const lastError =
      errorClass === null
        ? null
        : gone
          ? `${errorClass} (destination disabled)`
          : accessRefused
            ? `${errorClass} (integration paused or no access)`
            : verdict === "permanent"
              ? `${errorClass} (permanent)`
              : exhausted
                ? `${errorClass} (after ${attempt} attempts)`
                : errorClass;
    logEvent(
      status === "dead" ? "warn" : status === "pending" ? "info" : "debug",
      gone ? "delivery_held" : `delivery_${status === "pending" ? "retry_scheduled" : status}`,
      {
        eventId: event.id,
        ...ref,
        attempt,
        statusCode: result.statusCode,
        errorClass,
        latencyMs: result.latencyMs,
        delaySeconds: delaySeconds || undefined,
        reason: gone ? DISABLED_BY_410 : undefined,
      },
    );
    if (status === "pending" && !gone)
      retries.push({ ref, delaySeconds, released: message.released === true, wait: false });
    return {
      ref,
      previousAttempts: delivery.attempts,
      status,
      ...(gone ? { heldReason: DISABLED_BY_410 } : {}),
      nextAttemptAt: gone ? HELD_DUE : status === "pending" ? at + delaySeconds * 1000 : at,
      lastError,
      record: {
        attempt,
        at,
        statusCode: result.statusCode,
        latencyMs: result.latencyMs,
        errorClass,
        responseExcerpt: kept[i]!.excerpt,
        ...(kept[i]!.headers !== null ? { responseHeaders: kept[i]!.headers } : {}),
      },
    };
  });
  // Every outcome of this message, the holds and the deliveries that died without an attempt, in one row write.
  // The deaths this write made (a concurrent copy of the message may have made them first): only those are counted.
  let diedHere: DeadMark[] = [];
  const applied = await updateDeliveries(
    plan.db,
    event.id,
    (deliveries) => {
      diedHere = stillPending(deliveries, deadWithoutAttempt);
      return applyOutcomes(
        markHeld(markStale(markDead(deliveries, deadWithoutAttempt, now).deliveries, stale, now).deliveries, held)
          .deliveries,
        outcomes,
      );
    },
    snapshot,
  );
  const ordered = (delivery: DeliveryState) => isOrdered(config, event, delivery);
  const deliveredInOrder = outcomes.filter(
    (o, i) => o.status === "delivered" && applied?.[i] === true && ordered(findDelivery(snapshot.deliveries, o.ref)!),
  );
  if (deliveredInOrder.length > 0) {
    // After the delivery is recorded: if this write fails, the next older state is sent (and the receiver, which
    // has the provider timestamp in a header, can still tell); nothing is lost.
    await recordDelivered(
      plan.db,
      event.source,
      orderingKey(providers, config, event),
      event.providerTimestamp!,
      deliveredInOrder.map((o) => o.ref.destination),
    ).catch((err: unknown) =>
      logEvent("error", "ordering_record_failed", { eventId: event.id, errorMessage: errorMessage(err) }),
    );
  }
  const gate: Executed["gate"] = attempts.map(({ delivery, result }, i) => {
    const o = outcomes[i]!;
    const dead = o.status === "dead" && applied?.[i] === true;
    return {
      destination: delivery.destination,
      lease: leaseOf.get(delivery) ?? null,
      outcome: {
        eventId: event.id,
        generation: delivery.generation,
        ok: o.status === "delivered",
        // A token not yet to be had says nothing of the API's health.
        failure:
          classifyAttempt(result, []) === "retry" &&
          result.transportError !== "config_error" &&
          result.transportError !== "token_unavailable",
        gone: o.heldReason === DISABLED_BY_410,
        errorClass: o.record.errorClass,
        dead,
        ...(dead && o.lastError?.endsWith("(integration paused or no access)") ? { accessRefused: true } : {}),
        // Counted once: by the copy whose write recorded the attempt.
        rollup: {
          kind:
            applied?.[i] !== true
              ? "none"
              : o.status === "delivered"
                ? "delivered"
                : o.status === "dead"
                  ? "dead"
                  : "failed",
          sinceReceivedMs: o.status === "delivered" ? o.record.at + o.record.latencyMs - event.receivedAt : null,
        },
      },
    };
  });
  for (const { ref, reason } of deadWithoutAttempt) {
    const died = applied !== null && diedHere.some((d) => d.ref === ref);
    gate.push({
      destination: ref.destination,
      lease: null,
      outcome: {
        eventId: event.id,
        generation: ref.generation,
        ok: false,
        failure: false,
        gone: false,
        errorClass: reason,
        dead: died,
        // Counted once: by the copy whose write settled it.
        rollup: { kind: died ? "dead" : "none", sinceReceivedMs: null },
      },
    });
  }
  if (message.released) {
    // Released, but settled meanwhile (delivered by another copy, stale, superseded): the object can forget it.
    const acted = new Set([
      ...decided.map(({ delivery }) => delivery.destination),
      ...deadWithoutAttempt.map((d) => d.ref.destination),
    ]);
    for (const ref of message.deliveries)
      if (!acted.has(ref.destination))
        gate.push({ destination: ref.destination, lease: null, outcome: neutral(event.id, ref.generation) });
  }
  // A concurrent copy of this message recorded the attempt first; that copy owns the retry.
  return {
    retries: [...retries.filter((r) => applied?.[outcomes.findIndex((o) => o.ref === r.ref)] === true), ...waits],
    gate,
  };
}

/** The marks whose delivery is still pending in `deliveries`: the ones a write of them settles. */
function stillPending(deliveries: readonly DeliveryState[], marks: readonly DeadMark[]): DeadMark[] {
  return marks.filter((m) => findDelivery(deliveries, m.ref)?.status === "pending");
}

async function settlePurged(
  db: D1Database,
  message: DeliveryMessage,
  now: number,
  count: (destination: string, outcome: GateOutcome) => void,
): Promise<void> {
  const marks = message.deliveries.map((ref) => ({ ref, reason: PAYLOAD_PURGED }));
  let diedHere: DeadMark[] = [];
  const settled = await updateDeliveries(db, message.eventId, (deliveries) => {
    diedHere = stillPending(deliveries, marks);
    return markDead(deliveries, marks, now);
  });
  if (settled !== null)
    for (const [destination, outcomes] of deathsToCount(
      message.eventId,
      diedHere.map((d) => d.ref),
    ))
      for (const outcome of outcomes) count(destination, outcome);
  logEvent("warn", "delivery_dead", {
    eventId: message.eventId,
    destinations: message.deliveries.map((d) => d.destination),
    reason: PAYLOAD_PURGED,
  });
}

/** The first step of a delivery message: its event, or the verdict when there is nothing to attempt. */
async function prepareMessage(
  env: Env,
  config: RouterConfig,
  deps: RouterDeps,
  message: DeliveryMessage,
  messageAttempts: number,
  count: (destination: string, outcome: GateOutcome) => void,
): Promise<MessageVerdict | Planned> {
  const db = eventDbOrNull(env, config, message.eventId);
  if (!db) {
    // The id names a shard the config does not list (removed, or never this deployment's): nothing can deliver it.
    logEvent("error", "delivery_event_missing", { eventId: message.eventId, reason: "shard_not_configured" });
    return { kind: "ack" };
  }
  const work = await loadDeliveryWork(db, await loadPayloadProtection(env, config), message.eventId);
  if (!work) {
    if (message.ingestId && messageAttempts < UNCOMMITTED_EVENT_ATTEMPTS)
      return { kind: "retry", delaySeconds: 2 ** messageAttempts };
    logEvent(message.ingestId ? "warn" : "error", "delivery_event_missing", {
      eventId: message.eventId,
      ingestId: message.ingestId,
    });
    return { kind: "ack" };
  }
  if (message.ingestId && message.ingestId !== work.ingestId) {
    // Sent by a concurrent or retried duplicate of an event another request stored; that request's message delivers it.
    logEvent("debug", "delivery_message_duplicate", { eventId: message.eventId });
    return { kind: "ack" };
  }
  if (!work.event) {
    // Purged (a customer's deletion request) while a delivery was still pending: nothing is left to send.
    await settlePurged(db, message, deps.clock.now(), count);
    return { kind: "ack" };
  }
  return planDeliveries(env, config, deps, message, db, work.event, work.snapshot, work.payloads);
}

async function finishMessage(env: Env, message: DeliveryMessage, retries: RetryPlan[]): Promise<MessageVerdict> {
  if (retries.length === 0) return { kind: "ack" };
  // One delivery failing alone: the message itself is retried, which Queues bills as one more read, not a new message.
  if (message.deliveries.length === 1 && retries.length === 1 && !retries[0]!.wait)
    return { kind: "retry", delaySeconds: retries[0]!.delaySeconds };
  // Each delivery still to send gets a message of its own with its own delay, so healthy destinations are never
  // repeated or held back, and a wait for the rate limit never counts towards the queue's own retry limit. The send
  // must succeed before this message is acked.
  await enqueueDeliveries(
    env.DELIVERY_QUEUE,
    retries.map((r) => ({
      body: messageFor(message.eventId, [r.ref], undefined, r.released),
      delaySeconds: r.delaySeconds,
    })),
  );
  return { kind: "ack" };
}

const errorFields = (err: unknown) => ({
  errorName: err instanceof Error ? err.name : "unknown",
  errorMessage: errorMessage(err),
});

/** An alert: fanned out into one message per channel, then each sent and retried on its own. */
async function handleAlert(
  env: Env,
  config: RouterConfig,
  clock: RouterDeps["clock"],
  body: AlertMessage,
  message: Message<unknown>,
): Promise<void> {
  const channels = Object.keys(config.alerts.channels);
  if (body.channel === undefined) {
    if (channels.length === 0) {
      logEvent("warn", "alert_no_channel", {
        alertId: body.alert.id,
        kind: body.alert.kind,
        destination: body.alert.destination,
      });
    } else {
      await enqueueDeliveries(
        env.DELIVERY_QUEUE,
        channels.map((channel) => ({ body: alertMessage(body.alert, channel) })),
      );
    }
    message.ack();
    return;
  }
  const result = await sendAlert(env, config, body.channel, body.alert, clock);
  if (result.ok) {
    logEvent("info", "alert_sent", { alertId: body.alert.id, kind: body.alert.kind, channel: body.channel });
    message.ack();
  } else if (result.permanent || message.attempts >= ALERT_ATTEMPTS) {
    logEvent("error", "alert_undelivered", {
      alertId: body.alert.id,
      kind: body.alert.kind,
      channel: body.channel,
      error: result.error,
      attempts: message.attempts,
    });
    message.ack();
  } else {
    logEvent("warn", "alert_retry_scheduled", {
      alertId: body.alert.id,
      kind: body.alert.kind,
      channel: body.channel,
      error: result.error,
      attempts: message.attempts,
    });
    message.retry({
      delaySeconds: backoffDelaySeconds(message.attempts, undefined, Math.random, backoffBaseSeconds(env)),
    });
  }
}

/** Attempts per alert and channel before it is given up (logged at error level): about an hour at the default base. */
export const ALERT_ATTEMPTS = 8;

export async function handleDeliveryBatch(batch: MessageBatch<unknown>, env: Env, deps: RouterDeps): Promise<void> {
  const { providers, clock } = deps;
  const config = loadConfig(env, providers);
  const limit = pLimit(MAX_CONCURRENT_REQUESTS);
  const deliveries: { message: Message<unknown>; body: DeliveryMessage }[] = [];
  await Promise.all(
    batch.messages.map(async (message) => {
      const parsed = QueueMessageSchema.safeParse(message.body);
      if (!parsed.success) {
        logEvent("error", "delivery_message_malformed", {
          messageId: message.id,
          issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`),
        });
        try {
          await env.DEAD_LETTER_QUEUE.send(
            { malformed: true, messageId: message.id, body: message.body },
            { contentType: "json" },
          );
          message.ack();
        } catch {
          message.retry();
        }
        return;
      }
      const body = parsed.data;
      if (!("kind" in body)) {
        deliveries.push({ message, body });
        return;
      }
      try {
        if (body.kind === "alert") await handleAlert(env, config, clock, body, message);
        else {
          await runReplayPage(env, config, body, clock);
          message.ack();
        }
      } catch (err) {
        logEvent("error", body.kind === "alert" ? "alert_failed" : "delivery_message_failed", {
          messageId: message.id,
          ...(body.kind === "alert" ? { alertId: body.alert.id } : { replayId: body.replayId }),
          ...errorFields(err),
        });
        message.retry({
          delaySeconds: backoffDelaySeconds(message.attempts, undefined, Math.random, backoffBaseSeconds(env)),
        });
      }
    }),
  );
  if (deliveries.length === 0) return;

  const failed = (message: Message<unknown>, body: DeliveryMessage, err: unknown) => {
    logEvent("error", "delivery_message_failed", { messageId: message.id, eventId: body.eventId, ...errorFields(err) });
    message.retry({
      delaySeconds: backoffDelaySeconds(message.attempts, undefined, Math.random, backoffBaseSeconds(env)),
    });
  };
  const reports = new Map<string, { outcomes: GateOutcome[]; leases: string[] }>();
  const toReport = (destination: string, outcome: GateOutcome, lease: string | null) => {
    const report = reports.get(destination) ?? { outcomes: [], leases: [] };
    report.outcomes.push(outcome);
    if (lease) report.leases.push(lease);
    reports.set(destination, report);
  };
  const prepared = await Promise.all(
    deliveries.map(async ({ message, body }) => {
      try {
        const result = await prepareMessage(env, config, deps, body, message.attempts, (destination, outcome) =>
          toReport(destination, outcome, null),
        );
        if ("kind" in result) {
          if (result.kind === "ack" && body.released)
            for (const ref of body.deliveries) toReport(ref.destination, neutral(body.eventId, ref.generation), null);
          if (result.kind === "ack") message.ack();
          else message.retry({ delaySeconds: result.delaySeconds });
          return null;
        }
        return { message, plan: result };
      } catch (err) {
        failed(message, body, err);
        return null;
      }
    }),
  );
  const plans = prepared.filter((p): p is { message: Message<unknown>; plan: Planned } => p !== null);

  // One call per destination for the whole batch: its controls decide what goes now, what waits, what is held.
  const byDestination = new Map<string, AdmitItem[]>();
  const order: { key: string; destination: string }[] = [];
  for (const { plan } of plans) {
    for (const d of plan.fresh) {
      const items = byDestination.get(d.destination) ?? [];
      items.push({
        eventId: plan.event.id,
        generation: d.generation,
        receivedAt: plan.event.receivedAt,
        // Its age, for the backlog alert: retrying after a failure, or waiting (for the rate limit, or in a slow
        // queue) since its generation began. Not one a resume released: its hold was alerted as a held backlog, and
        // the release drains it at the rate limit.
        ...(plan.message.released === true ? {} : { pendingSince: d.createdAt, retrying: d.attempts > 0 }),
        released: plan.message.released === true,
      });
      byDestination.set(d.destination, items);
      order.push({ key: decisionKey(plan.event.id, d), destination: d.destination });
    }
  }
  const admitted =
    byDestination.size > 0 ? await admitAll(env, config, clock.now(), byDestination) : new Map<string, Decision[]>();
  const decisions: Decisions = new Map();
  const position = new Map<string, number>();
  for (const { key, destination } of order) {
    const i = position.get(destination) ?? 0;
    position.set(destination, i + 1);
    decisions.set(key, admitted.get(destination)?.[i] ?? { kind: "send", lease: null, probe: false });
  }

  const tokens: Tokens = new Map();
  const execute = async ({ message, plan }: (typeof plans)[number]) => {
    try {
      const executed = await attemptDeliveries(env, config, deps, limit, plan, decisions, tokens);
      for (const g of executed.gate) toReport(g.destination, g.outcome, g.lease);
      const verdict = await finishMessage(env, plan.message, executed.retries);
      if (verdict.kind === "ack") message.ack();
      else message.retry({ delaySeconds: verdict.delaySeconds });
    } catch (err) {
      failed(message, plan.message, err);
    }
  };
  // Status updates of one order go to Weedmaps one after another, oldest first: sent at once, a later status could
  // arrive first and the earlier one would move the order back.
  await Promise.all(
    [...sequencedUpdates(config, plans)].map(async (group) => {
      for (const planned of group) await execute(planned);
    }),
  );
  // Slots of sends that failed before reporting expire on their own (the destination's timeout and a margin).
  if (reports.size > 0) await reportAll(env, config, clock.now(), reports);
}
