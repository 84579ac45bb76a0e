import { RouterError } from "../errors";
import { logEvent } from "../log";
import { enqueueDeliveries, messageFor } from "../delivery/messages";
import { insertEventWithDeliveries, type NewDelivery, type NewEvent } from "../storage/db";

export interface StoreResult {
  duplicate: boolean;
  enqueued: boolean;
}

/**
 * The ingest hot path after verification: one D1 batch, then one queue send. D1 and Queues cannot commit
 * together, so a failed send leaves the deliveries pending (and durable) for the sweeper instead of failing
 * a request whose event is already stored.
 */
export async function storeAndEnqueue(env: Env, event: NewEvent, deliveries: readonly NewDelivery[]): Promise<StoreResult> {
  let duplicate: boolean;
  try {
    ({ duplicate } = await insertEventWithDeliveries(env.DB, event, deliveries));
  } catch (err) {
    throw new RouterError("storage_unavailable", { detail: err instanceof Error ? err.message : String(err) });
  }
  if (duplicate || deliveries.length === 0) return { duplicate, enqueued: false };
  try {
    await enqueueDeliveries(env.DELIVERY_QUEUE, [
      { body: messageFor(event.id, deliveries.map((d) => ({ destination: d.destination, generation: 1 }))) },
    ]);
    return { duplicate, enqueued: true };
  } catch (err) {
    logEvent("error", "enqueue_failed", {
      eventId: event.id,
      deliveries: deliveries.length,
      errorMessage: err instanceof Error ? err.message : String(err),
      note: "event stored; deliveries stay pending for the sweeper",
    });
    return { duplicate, enqueued: false };
  }
}
