import pLimit, { type LimitFunction } from "p-limit";
import { loadConfig, readVar } from "../config/load";
import type { RouterConfig } from "../config/schema";
import { logEvent } from "../log";
import {
  loadDeliveryWork,
  markDeliveriesDead,
  recordAttemptOutcomes,
  type AttemptOutcome,
  type Delivery,
  type DeliveryKey,
} from "../storage/db";
import { DeliveryMessageSchema, enqueueDeliveries, messageFor, QueueMessageSchema, type DeliveryMessage } from "./messages";
import { sendToDestination } from "./outbound";
import { runReplayPage } from "./replay";
import { BACKOFF_BASE_SECONDS, backoffDelaySeconds, classifyAttempt, errorClassOf } from "./policy";

/** `RETRY_BACKOFF_BASE_SECONDS` shortens the schedule for local walkthroughs; production keeps 30 s. */
function backoffBaseSeconds(env: Env): number {
  const configured = Number(readVar(env, "RETRY_BACKOFF_BASE_SECONDS"));
  return Number.isFinite(configured) && configured >= 1 ? configured : BACKOFF_BASE_SECONDS;
}

/**
 * A Worker may have only 6 connections waiting for response headers; further fetches wait for a slot while their
 * AbortSignal.timeout keeps running. Holding our own slot before starting the timer keeps every destination's
 * timeout honest, and one slot stays free for D1 and Queues.
 */
export const MAX_CONCURRENT_REQUESTS = 5;

type MessageVerdict = { kind: "ack" } | { kind: "retry"; delaySeconds: number };

interface RetryPlan {
  key: DeliveryKey;
  delaySeconds: number;
}

async function attemptDeliveries(
  env: Env,
  config: RouterConfig,
  limit: LimitFunction,
  message: DeliveryMessage,
): Promise<{ retries: RetryPlan[] }> {
  const { event, deliveries } = await loadDeliveryWork(env.DB, message.eventId);
  if (!event) {
    logEvent("error", "delivery_event_missing", { eventId: message.eventId });
    return { retries: [] };
  }
  const byKey = new Map(deliveries.map((d) => [`${d.destination}#${d.generation}`, d]));
  const now = Date.now();
  const toSend: Delivery[] = [];
  const deadWithoutAttempt: { key: DeliveryKey; reason: string }[] = [];
  for (const wanted of message.deliveries) {
    const delivery = byKey.get(`${wanted.destination}#${wanted.generation}`);
    // Queues may deliver a message twice: a delivery that is already terminal is acknowledged, never re-sent.
    if (!delivery || delivery.status !== "pending") continue;
    const destination = config.destinations[delivery.destination];
    if (!destination) deadWithoutAttempt.push({ key: delivery, reason: "destination_removed" });
    else if (!destination.enabled) deadWithoutAttempt.push({ key: delivery, reason: "destination_disabled" });
    else if (delivery.attempts >= destination.maxAttempts) deadWithoutAttempt.push({ key: delivery, reason: "attempts_exhausted" });
    else toSend.push(delivery);
  }
  if (deadWithoutAttempt.length > 0) {
    for (const { key, reason } of deadWithoutAttempt) {
      logEvent("warn", "delivery_dead", { eventId: key.eventId, destination: key.destination, generation: key.generation, reason });
    }
    await markDeliveriesDead(env.DB, deadWithoutAttempt, now);
  }

  const attempts = await Promise.all(
    toSend.map((delivery) =>
      limit(async () => {
        const destination = config.destinations[delivery.destination]!;
        const attempt = delivery.attempts + 1;
        const at = Date.now();
        const result = await sendToDestination(env, destination, event, {
          attempt,
          timeoutMs: destination.timeoutMs,
        });
        return { delivery, destination, attempt, at, result };
      }),
    ),
  );

  const retries: RetryPlan[] = [];
  const outcomes: AttemptOutcome[] = attempts.map(({ delivery, destination, attempt, at, result }) => {
    const verdict = classifyAttempt(result, destination.retryOnStatus);
    const errorClass = errorClassOf(result);
    const exhausted = verdict === "retry" && attempt >= destination.maxAttempts;
    const delaySeconds = verdict === "retry" && !exhausted ? backoffDelaySeconds(attempt, result.retryAfterSeconds, Math.random, backoffBaseSeconds(env)) : 0;
    const status = verdict === "delivered" ? "delivered" : verdict === "permanent" || exhausted ? "dead" : "pending";
    const lastError =
      errorClass === null ? null : verdict === "permanent" ? `${errorClass} (permanent)` : exhausted ? `${errorClass} (after ${attempt} attempts)` : errorClass;
    logEvent(status === "dead" ? "warn" : "info", `delivery_${status === "pending" ? "retry_scheduled" : status}`, {
      eventId: delivery.eventId,
      destination: delivery.destination,
      generation: delivery.generation,
      attempt,
      statusCode: result.statusCode,
      errorClass,
      latencyMs: result.latencyMs,
      delaySeconds: delaySeconds || undefined,
    });
    if (status === "pending") retries.push({ key: delivery, delaySeconds });
    return {
      key: delivery,
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
        responseExcerpt: result.responseExcerpt?.slice(0, 256) ?? null,
      },
    };
  });
  const changes = await recordAttemptOutcomes(env.DB, outcomes);
  // A concurrent copy of this message recorded the attempt first; that copy owns the retry.
  const recorded = new Set(outcomes.filter((_, i) => changes[i] === 1).map((o) => `${o.key.destination}#${o.key.generation}`));
  return { retries: retries.filter((r) => recorded.has(`${r.key.destination}#${r.key.generation}`)) };
}

async function processDeliveryMessage(
  env: Env,
  config: RouterConfig,
  limit: LimitFunction,
  message: DeliveryMessage,
): Promise<MessageVerdict> {
  const { retries } = await attemptDeliveries(env, config, limit, message);
  if (retries.length === 0) return { kind: "ack" };
  if (message.deliveries.length === 1 && retries.length === 1) return { kind: "retry", delaySeconds: retries[0]!.delaySeconds };
  // Each failing delivery gets a message of its own with its own delay, so healthy destinations are never repeated
  // or held back. The send must succeed before this message is acked.
  await enqueueDeliveries(
    env.DELIVERY_QUEUE,
    retries.map((r) => ({ body: messageFor(message.eventId, [r.key]), delaySeconds: r.delaySeconds })),
  );
  return { kind: "ack" };
}

export async function handleDeliveryBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const config = loadConfig(env);
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
          await runReplayPage(env, config, body);
          message.ack();
          return;
        }
        const verdict = await processDeliveryMessage(env, config, limit, body);
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

/**
 * Messages land here when Queues gave up on them (the consumer kept failing) or when the consumer forwarded a
 * malformed one. D1 stays the record replay reads from: a DLQ without a consumer deletes after 4 days.
 */
export async function handleDeadLetterBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  for (const message of batch.messages) {
    const parsed = DeliveryMessageSchema.safeParse(message.body);
    if (!parsed.success) {
      logEvent("error", "dead_letter_unprocessable", { messageId: message.id });
      message.ack();
      continue;
    }
    try {
      const dead = parsed.data.deliveries.map((d) => ({ key: { eventId: parsed.data.eventId, ...d }, reason: "queue_retries_exhausted" }));
      const marked = await markDeliveriesDead(env.DB, dead, Date.now());
      logEvent("warn", "dead_letter_received", { messageId: message.id, eventId: parsed.data.eventId, markedDead: marked });
      message.ack();
    } catch (err) {
      logEvent("error", "dead_letter_failed", { messageId: message.id, errorMessage: err instanceof Error ? err.message : String(err) });
      message.retry();
    }
  }
}
