import type { RouterConfig } from "../config/schema";
import { RouterError } from "../errors";
import { logEvent } from "../log";
import { insertOutbox, listCurrentDeliveries, updateDeliveriesOfEvents, type DeliveryKey } from "../storage/db";
import { enqueueDeliveries, messagesFor, REPLAY_PAGE_SIZE, type ReplayPageMessage } from "./messages";
import { addGenerations } from "./state";

/**
 * A replay adds a new generation of each delivery, so the old attempts stay as history; the internal system gets
 * the same `webhook-id` (the event id) with a fresh attempt count. Disabled or removed destinations are refused.
 */
export function assertReplayable(config: RouterConfig, destination: string): void {
  const configured = config.destinations[destination];
  if (!configured) throw new RouterError("unknown_destination", { message: `Destination "${destination}" is not in the active configuration.` });
  if (!configured.enabled) throw new RouterError("destination_disabled", { message: `Destination "${destination}" is disabled in the active configuration.` });
}

export async function replayDeliveries(
  env: Env,
  targets: readonly { eventId: string; destination: string; route: string }[],
): Promise<{ keys: DeliveryKey[]; enqueued: boolean }> {
  const now = Date.now();
  const added = await updateDeliveriesOfEvents(
    env.DB,
    targets.map((t) => t.eventId),
    (eventId, deliveries) => addGenerations(deliveries, targets.filter((t) => t.eventId === eventId), now),
  );
  const keys = [...added].flatMap(([eventId, refs]) => refs.map((ref) => ({ eventId, ...ref })));
  const messages = messagesFor(keys);
  try {
    await enqueueDeliveries(env.DELIVERY_QUEUE, messages);
    return { keys, enqueued: true };
  } catch (err) {
    // The new generations are stored; their messages wait in the outbox for the sweeper. If the outbox fails too,
    // the request fails, and replaying again supersedes the generations that have no message.
    logEvent("warn", "replay_enqueue_failed", { deliveries: keys.length, errorMessage: err instanceof Error ? err.message : String(err) });
    await insertOutbox(env.DB, messages.map((m) => m.body), now);
    return { keys, enqueued: false };
  }
}

/** One page of a bulk replay, run by the queue consumer; enqueues the next page before it is acknowledged. */
export async function runReplayPage(env: Env, config: RouterConfig, page: ReplayPageMessage): Promise<void> {
  const current = await listCurrentDeliveries(env.DB, page.filter, page.after, REPLAY_PAGE_SIZE);
  const replayable = current.filter((d) => config.destinations[d.destination]?.enabled === true);
  const skipped = current.length - replayable.length;
  const { keys } = await replayDeliveries(env, replayable);
  const last = current.at(-1);
  if (current.length === REPLAY_PAGE_SIZE && last) {
    await enqueueDeliveries(env.DELIVERY_QUEUE, [{ body: { ...page, after: { eventId: last.eventId, destination: last.destination } } }]);
  }
  logEvent("info", "replay_page", { replayId: page.replayId, replayed: keys.length, skippedDisabled: skipped, more: current.length === REPLAY_PAGE_SIZE });
}
