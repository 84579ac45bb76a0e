import type { Clock } from "../core/clock.ts";
import { plannedDeliveries } from "../core/delivery-state.ts";
import { RouterError } from "../core/errors.ts";
import type { NewEvent } from "../core/event.ts";
import { messageFor } from "../core/messages.ts";
import type { PlannedDelivery } from "../core/routing.ts";
import { insertEvent } from "../storage/events.ts";
import { insertOutbox } from "../storage/outbox.ts";
import { enqueueDeliveries } from "../storage/queue.ts";
import { logEvent } from "../telemetry/log.ts";

export interface StoreResult {
  duplicate: boolean;
  enqueued: boolean;
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * The ingest hot path after verification: one D1 statement (one row, whatever the fan-out) and one queue send.
 * D1 and Queues cannot commit together, so both start at once and the ack waits for the slower round trip, not
 * for both. The message names this ingest, and the consumer acts on it only once this ingest's row is committed,
 * so a message sent for a duplicate or for an insert that failed is dropped there.
 *
 * If the send fails, the outbox keeps the message for the sweeper. If the outbox cannot take it either, the event
 * is still stored with its deliveries pending, and the sweeper's walk over the events re-enqueues them when it
 * reaches the event (within one lap); so the event is acknowledged either way, as it must be (a Draft is never
 * sent again).
 */
export async function storeAndEnqueue(env: Env, event: NewEvent, plan: readonly PlannedDelivery[], clock: Clock): Promise<StoreResult> {
  const deliveries = plannedDeliveries(plan, event.receivedAt);
  const message = deliveries.length > 0 ? messageFor(event.id, deliveries, event.ingestId) : null;
  const [stored, sent] = await Promise.allSettled([
    insertEvent(env.DB, event, deliveries),
    message ? enqueueDeliveries(env.DELIVERY_QUEUE, [{ body: message }]) : Promise.resolve(),
  ]);
  if (stored.status === "rejected") throw new RouterError("storage_unavailable", { detail: messageOf(stored.reason) });
  const { duplicate } = stored.value;
  if (duplicate || !message) return { duplicate, enqueued: false };
  if (sent.status === "fulfilled") return { duplicate, enqueued: true };

  try {
    await insertOutbox(env.DB, [message], clock.now());
    logEvent("warn", "enqueue_failed", { eventId: event.id, errorMessage: messageOf(sent.reason), note: "message kept in the outbox for the sweeper" });
  } catch (outboxError) {
    logEvent("error", "enqueue_failed", {
      eventId: event.id,
      errorMessage: messageOf(sent.reason),
      outboxError: messageOf(outboxError),
      note: "stored with its deliveries pending; the sweeper's walk re-enqueues them when it reaches the event",
    });
  }
  return { duplicate, enqueued: false };
}
