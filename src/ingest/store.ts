import { isStorageFullError, STORAGE_FULL_RETRY_AFTER_SECONDS } from "../core/capacity.ts";
import type { Clock } from "../core/clock.ts";
import type { PayloadProtection } from "../core/envelope.ts";
import { plannedDeliveries } from "../core/delivery-state.ts";
import { errorMessage, RouterError } from "../core/errors.ts";
import { messageFor } from "../core/messages.ts";
import { RETRY_WINDOW_MS } from "../core/event-id.ts";
import { insertEvents } from "../storage/events.ts";
import { insertOutbox } from "../storage/outbox.ts";
import { enqueueDeliveries } from "../storage/queue.ts";
import { latestMapVersion } from "../storage/shard-maps.ts";
import { logEvent } from "../telemetry/log.ts";
import type { PreparedEvent } from "./prepare.ts";

export interface StoreResult extends PreparedEvent {
  duplicate: boolean;
  enqueued: boolean;
}

/**
 * The ingest hot path after verification: one D1 batch (one row per event, whatever the fan-out) and one queue
 * send. D1 and Queues cannot commit together, so both start at once and the ack waits for the slower round trip,
 * not for both. Each message names its ingest, and the consumer acts on it only once that ingest's row is
 * committed, so a message sent for a duplicate or for an insert that failed is dropped there.
 *
 * If the send fails, the outbox keeps the messages for the sweeper. If the outbox cannot take them either, the
 * events are still stored with their deliveries pending, and the sweeper's walk over the events re-enqueues them
 * when it reaches them (within one lap); so the events are acknowledged either way, as they must be (a Draft is
 * never sent again).
 */
/**
 * Whether this insert is inside the providers' retry window after the newest change of ids or of the shard map
 * (src/core/event-id.ts): then it also matches each event's earlier id. Without a map (a database not migrated
 * yet), it is not.
 */
async function inRetryWindow(db: D1Database, now: number): Promise<boolean> {
  const latest = await latestMapVersion(db, now);
  return latest !== null && now - latest.createdAt < RETRY_WINDOW_MS;
}

export async function storeAndEnqueue(
  env: Env,
  protection: PayloadProtection,
  prepared: readonly PreparedEvent[],
  clock: Clock,
): Promise<StoreResult[]> {
  const rows = prepared.map(({ event, decision }) => ({
    event,
    deliveries: plannedDeliveries(decision.deliveries, event.receivedAt),
  }));
  const messages = rows.flatMap(({ event, deliveries }) =>
    deliveries.length > 0 ? [{ body: messageFor(event.id, deliveries, event.ingestId) }] : [],
  );
  const [stored, sent] = await Promise.allSettled([
    inRetryWindow(env.DB, clock.now()).then((checkEarlier) => insertEvents(env.DB, protection, rows, checkEarlier)),
    messages.length > 0 ? enqueueDeliveries(env.DELIVERY_QUEUE, messages) : Promise.resolve(),
  ]);
  if (stored.status === "rejected") {
    // A database D1 says is full answers storage_full (the capacity watch alerts it); any other failure is transient.
    throw isStorageFullError(stored.reason)
      ? new RouterError("storage_full", {
          detail: errorMessage(stored.reason),
          headers: { "Retry-After": String(STORAGE_FULL_RETRY_AFTER_SECONDS) },
        })
      : new RouterError("storage_unavailable", { detail: errorMessage(stored.reason) });
  }
  const outcomes = stored.value;
  const duplicateOf = (i: number) => outcomes[i]!.outcome !== "inserted";
  for (const { outcome, storedId } of outcomes) {
    if (outcome === "divergent_duplicate")
      logEvent("warn", "divergent_retry", {
        eventId: storedId,
        note: "same identity, other bytes; acknowledged as a duplicate",
      });
  }
  // A retry of an event stored under its earlier id answers with that id: the one the provider was given.
  const results = prepared.map((p, i) => ({
    ...p,
    event: { ...p.event, id: outcomes[i]!.storedId },
    duplicate: duplicateOf(i),
    enqueued: false,
  }));
  const ours = messages.filter((m) => !duplicateOf(rows.findIndex((r) => r.event.id === m.body.eventId)));
  if (ours.length === 0) return results;
  if (sent.status === "fulfilled")
    return results.map((r) => ({ ...r, enqueued: !r.duplicate && r.decision.deliveries.length > 0 }));

  try {
    await insertOutbox(
      env.DB,
      ours.map((m) => m.body),
      clock.now(),
    );
    logEvent("warn", "enqueue_failed", {
      eventIds: ours.map((m) => m.body.eventId),
      errorMessage: errorMessage(sent.reason),
      note: "messages kept in the outbox for the sweeper",
    });
  } catch (outboxError) {
    logEvent("error", "enqueue_failed", {
      eventIds: ours.map((m) => m.body.eventId),
      errorMessage: errorMessage(sent.reason),
      outboxError: errorMessage(outboxError),
      note: "stored with their deliveries pending; the sweeper's walk re-enqueues them when it reaches them",
    });
  }
  return results;
}
