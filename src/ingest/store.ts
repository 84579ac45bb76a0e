import { RouterError } from "../errors";
import { logEvent } from "../log";
import { enqueueDeliveries, messageFor } from "../delivery/messages";
import { plannedDeliveries } from "../delivery/state";
import { deleteIngestedEvent, insertEvent, insertOutbox, type NewDelivery, type NewEvent } from "../storage/db";

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
 * If the send fails, the outbox keeps the message for the sweeper. If the outbox cannot take it either, the
 * insert is undone and the provider told to retry: acknowledging an event with nothing scheduled to deliver it
 * would lose it, since the provider's retry would then be a duplicate.
 */
export async function storeAndEnqueue(env: Env, event: NewEvent, plan: readonly NewDelivery[]): Promise<StoreResult> {
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

  logEvent("warn", "enqueue_failed", { eventId: event.id, deliveries: deliveries.length, errorMessage: messageOf(sent.reason), note: "message kept in the outbox for the sweeper" });
  try {
    await insertOutbox(env.DB, [message], Date.now());
    return { duplicate, enqueued: false };
  } catch (outboxError) {
    try {
      await deleteIngestedEvent(env.DB, event.id, event.ingestId);
    } catch (deleteError) {
      logEvent("error", "delivery_unscheduled", {
        eventId: event.id,
        errorMessage: messageOf(deleteError),
        note: "event stored with no queue message; replay it from the admin API",
      });
    }
    throw new RouterError("storage_unavailable", { detail: `queue and outbox unavailable: ${messageOf(outboxError)}` });
  }
}
