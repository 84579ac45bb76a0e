import pLimit, { type LimitFunction } from "p-limit";
import { loadPayloadProtection } from "../config/keys.ts";
import { loadConfig, readVar } from "../config/load.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import type { RouterDeps } from "../core/deps.ts";
import type { ProviderRegistry } from "../core/providers/contract.ts";
import { applyOutcomes, findDelivery, markDead, markStale, PAYLOAD_PURGED, SUPERSEDED, type AttemptOutcome, type DeadMark, type DeliveryRef, type DeliveryState } from "../core/delivery-state.ts";
import type { StoredEvent } from "../core/event.ts";
import { messageFor, QueueMessageSchema, type DeliveryMessage } from "../core/messages.ts";
import { BACKOFF_BASE_SECONDS, backoffDelaySeconds, classifyAttempt, errorClassOf } from "../core/retry-policy.ts";
import { sendToDestination } from "../outbound/client.ts";
import { updateDeliveries } from "../storage/delivery-writes.ts";
import { loadDeliveryWork } from "../storage/events.ts";
import type { EventPayloads } from "../storage/payloads.ts";
import { latestDelivered, recordDelivered } from "../storage/ordering.ts";
import { enqueueDeliveries } from "../storage/queue.ts";
import type { DeliverySnapshot } from "../storage/rows.ts";
import { logEvent } from "../telemetry/log.ts";
import { runReplayPage } from "./replay.ts";

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
  return config.routes.find((r) => r.name === route)?.ordering ?? "none";
}

type MessageVerdict = { kind: "ack" } | { kind: "retry"; delaySeconds: number };

interface RetryPlan {
  ref: DeliveryRef;
  delaySeconds: number;
}

/**
 * An ingest sends its message while it stores the event, so the message can arrive first. Waiting this many
 * deliveries of the message (2 + 4 + 8 + 16 s) covers any insert still in flight; after that the insert failed,
 * the provider was told so, and its retry sends a message of its own.
 */
const UNCOMMITTED_EVENT_ATTEMPTS = 5;

async function attemptDeliveries(
  env: Env,
  config: RouterConfig,
  { providers, clock }: RouterDeps,
  limit: LimitFunction,
  message: DeliveryMessage,
  event: StoredEvent,
  snapshot: DeliverySnapshot,
  payloads: EventPayloads,
): Promise<RetryPlan[]> {
  const now = clock.now();
  const toSend: DeliveryState[] = [];
  const deadWithoutAttempt: DeadMark[] = [];
  for (const ref of message.deliveries) {
    const delivery = findDelivery(snapshot.deliveries, ref);
    // Queues may deliver a message twice: a delivery that is already terminal is acknowledged, never re-sent.
    if (!delivery || delivery.status !== "pending") continue;
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
    logEvent("warn", "delivery_dead", { eventId: event.id, destination: ref.destination, generation: ref.generation, reason });
  }

  // Routes with `"ordering": "latest"`: a newer state of this object already delivered makes this one stale.
  const ordered = (delivery: DeliveryState) => orderingOf(config, delivery.route) === "latest" && event.providerTimestamp !== null && event.providerId !== null;
  const latest = toSend.some(ordered)
    ? await latestDelivered(env.DB, event.source, orderingKey(providers, config, event))
    : new Map<string, number>();
  const stale = toSend.filter((d) => ordered(d) && (latest.get(d.destination) ?? -Infinity) > event.providerTimestamp!);
  for (const d of stale) logEvent("info", "delivery_stale", { eventId: event.id, destination: d.destination, generation: d.generation });
  const fresh = toSend.filter((d) => !stale.includes(d));

  const attempts = await Promise.all(
    fresh.map((delivery) =>
      limit(async () => {
        const destination = config.destinations[delivery.destination]!;
        const attempt = delivery.attempts + 1;
        const at = clock.now();
        const result = await sendToDestination(env, destination, event, {
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
  // the router's own (no status: the header it could not build) stays readable.
  const excerpts = await Promise.all(
    attempts.map(({ result }) => {
      const excerpt = result.responseExcerpt?.slice(0, 256) ?? null;
      return excerpt !== null && result.statusCode !== null ? payloads.sealText("excerpt", excerpt) : excerpt;
    }),
  );
  const outcomes: AttemptOutcome[] = attempts.map(({ delivery, destination, attempt, at, result }, i) => {
    const ref = { destination: delivery.destination, generation: delivery.generation };
    const verdict = classifyAttempt(result, destination.retryOnStatus);
    const errorClass = errorClassOf(result);
    const exhausted = verdict === "retry" && attempt >= destination.maxAttempts;
    const delaySeconds = verdict === "retry" && !exhausted ? backoffDelaySeconds(attempt, result.retryAfterSeconds, Math.random, backoffBaseSeconds(env)) : 0;
    const status = verdict === "delivered" ? "delivered" : verdict === "permanent" || exhausted ? "dead" : "pending";
    const lastError =
      errorClass === null ? null : verdict === "permanent" ? `${errorClass} (permanent)` : exhausted ? `${errorClass} (after ${attempt} attempts)` : errorClass;
    logEvent(status === "dead" ? "warn" : status === "pending" ? "info" : "debug", `delivery_${status === "pending" ? "retry_scheduled" : status}`, {
      eventId: event.id,
      ...ref,
      attempt,
      statusCode: result.statusCode,
      errorClass,
      latencyMs: result.latencyMs,
      delaySeconds: delaySeconds || undefined,
    });
    if (status === "pending") retries.push({ ref, delaySeconds });
    return {
      ref,
      previousAttempts: delivery.attempts,
      status,
      nextAttemptAt: status === "pending" ? at + delaySeconds * 1000 : at,
      lastError,
      record: {
        attempt,
        at,
        statusCode: result.statusCode,
        latencyMs: result.latencyMs,
        errorClass,
        responseExcerpt: excerpts[i]!,
      },
    };
  });
  // Every outcome of this message, and the deliveries that died without an attempt, in one row write.
  const applied = await updateDeliveries(
    env.DB,
    event.id,
    (deliveries) => applyOutcomes(markStale(markDead(deliveries, deadWithoutAttempt, now).deliveries, stale, now).deliveries, outcomes),
    snapshot,
  );
  const deliveredInOrder = outcomes.filter((o, i) => o.status === "delivered" && applied?.[i] === true && ordered(findDelivery(fresh, o.ref)!));
  if (deliveredInOrder.length > 0) {
    // After the delivery is recorded: if this write fails, the next older state is sent (and the receiver, which
    // has the provider timestamp in a header, can still tell); nothing is lost.
    await recordDelivered(env.DB, event.source, orderingKey(providers, config, event), event.providerTimestamp!, deliveredInOrder.map((o) => o.ref.destination)).catch((err: unknown) =>
      logEvent("error", "ordering_record_failed", { eventId: event.id, errorMessage: err instanceof Error ? err.message : String(err) }),
    );
  }
  // A concurrent copy of this message recorded the attempt first; that copy owns the retry.
  return retries.filter((r) => applied?.[outcomes.findIndex((o) => o.ref === r.ref)] === true);
}

async function settlePurged(env: Env, message: DeliveryMessage, now: number): Promise<void> {
  const marks = message.deliveries.map((ref) => ({ ref, reason: PAYLOAD_PURGED }));
  await updateDeliveries(env.DB, message.eventId, (deliveries) => markDead(deliveries, marks, now));
  logEvent("warn", "delivery_dead", { eventId: message.eventId, destinations: message.deliveries.map((d) => d.destination), reason: PAYLOAD_PURGED });
}

async function processDeliveryMessage(
  env: Env,
  config: RouterConfig,
  deps: RouterDeps,
  limit: LimitFunction,
  message: DeliveryMessage,
  messageAttempts: number,
): Promise<MessageVerdict> {
  const work = await loadDeliveryWork(env.DB, await loadPayloadProtection(env, config), message.eventId);
  if (!work) {
    if (message.ingestId && messageAttempts < UNCOMMITTED_EVENT_ATTEMPTS) return { kind: "retry", delaySeconds: 2 ** messageAttempts };
    logEvent(message.ingestId ? "warn" : "error", "delivery_event_missing", { eventId: message.eventId, ingestId: message.ingestId });
    return { kind: "ack" };
  }
  if (message.ingestId && message.ingestId !== work.ingestId) {
    // Sent by a concurrent or retried duplicate of an event another request stored; that request's message delivers it.
    logEvent("debug", "delivery_message_duplicate", { eventId: message.eventId });
    return { kind: "ack" };
  }
  if (!work.event) {
    // Purged (a customer's deletion request) while a delivery was still pending: nothing is left to send.
    await settlePurged(env, message, deps.clock.now());
    return { kind: "ack" };
  }
  const retries = await attemptDeliveries(env, config, deps, limit, message, work.event, work.snapshot, work.payloads);
  if (retries.length === 0) return { kind: "ack" };
  if (message.deliveries.length === 1 && retries.length === 1) return { kind: "retry", delaySeconds: retries[0]!.delaySeconds };
  // Each failing delivery gets a message of its own with its own delay, so healthy destinations are never repeated
  // or held back. The send must succeed before this message is acked.
  await enqueueDeliveries(
    env.DELIVERY_QUEUE,
    retries.map((r) => ({ body: messageFor(message.eventId, [r.ref]), delaySeconds: r.delaySeconds })),
  );
  return { kind: "ack" };
}

export async function handleDeliveryBatch(batch: MessageBatch<unknown>, env: Env, deps: RouterDeps): Promise<void> {
  const { providers, clock } = deps;
  const config = loadConfig(env, providers);
  const limit = pLimit(MAX_CONCURRENT_REQUESTS);
  await Promise.all(
    batch.messages.map(async (message) => {
      const parsed = QueueMessageSchema.safeParse(message.body);
      if (!parsed.success) {
        logEvent("error", "delivery_message_malformed", {
          messageId: message.id,
          issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`),
        });
        try {
          await env.DEAD_LETTER_QUEUE.send({ malformed: true, messageId: message.id, body: message.body }, { contentType: "json" });
          message.ack();
        } catch {
          message.retry();
        }
        return;
      }
      const body = parsed.data;
      try {
        if ("kind" in body) {
          await runReplayPage(env, config, body, clock);
          message.ack();
          return;
        }
        const verdict = await processDeliveryMessage(env, config, deps, limit, body, message.attempts);
        if (verdict.kind === "ack") message.ack();
        else message.retry({ delaySeconds: verdict.delaySeconds });
      } catch (err) {
        logEvent("error", "delivery_message_failed", {
          messageId: message.id,
          ...("kind" in body ? { replayId: body.replayId } : { eventId: body.eventId }),
          errorName: err instanceof Error ? err.name : "unknown",
          errorMessage: err instanceof Error ? err.message : String(err),
        });
        message.retry({ delaySeconds: backoffDelaySeconds(message.attempts, undefined, Math.random, backoffBaseSeconds(env)) });
      }
    }),
  );
}
