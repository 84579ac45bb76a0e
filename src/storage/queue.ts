/** The Queue producer: every message the Worker sends goes through here, with the outbox as its fallback. */
import { MAX_QUEUE_DELAY_SECONDS, SEND_BATCH_MAX, type DeliveryMessage, type QueueMessage } from "../core/messages.ts";
import { logEvent } from "../telemetry/log.ts";
import { insertOutbox } from "./outbox.ts";
import { errorMessage } from "../core/errors.ts";

/** Sends in batches of at most 100, each delay clamped to the Queues maximum of 12 hours. */
export async function enqueueDeliveries(
  queue: Queue,
  messages: readonly { body: QueueMessage; delaySeconds?: number }[],
): Promise<void> {
  for (let i = 0; i < messages.length; i += SEND_BATCH_MAX) {
    const chunk = messages.slice(i, i + SEND_BATCH_MAX).map(({ body, delaySeconds }) => ({
      body,
      contentType: "json" as const,
      ...(delaySeconds ? { delaySeconds: Math.min(Math.ceil(delaySeconds), MAX_QUEUE_DELAY_SECONDS) } : {}),
    }));
    await queue.sendBatch(chunk);
  }
}

/**
 * Sends, or keeps the messages in the D1 outbox for the sweeper when the queue refuses them. Returns whether they
 * were sent. Throws only if neither took them. Each message is kept in the outbox `outboxOf` names for its event:
 * its event's shard, where that shard's sweeper finds it (the sweeper claims a row's deliveries in the event's own
 * shard, so a row kept elsewhere, as by the default, is still sent once).
 */
export async function enqueueOrKeep(
  env: Env,
  messages: readonly { body: DeliveryMessage }[],
  now: number,
  outboxOf: (eventId: string) => D1Database = () => env.DB,
): Promise<boolean> {
  if (messages.length === 0) return true;
  try {
    await enqueueDeliveries(env.DELIVERY_QUEUE, messages);
    return true;
  } catch (err) {
    logEvent("warn", "enqueue_failed", {
      messages: messages.length,
      errorMessage: errorMessage(err),
      note: "kept in the outbox",
    });
    const byOutbox = new Map<D1Database, DeliveryMessage[]>();
    for (const { body } of messages) {
      const db = outboxOf(body.eventId);
      byOutbox.set(db, [...(byOutbox.get(db) ?? []), body]);
    }
    await Promise.all([...byOutbox].map(([db, kept]) => insertOutbox(db, kept, now)));
    return false;
  }
}
