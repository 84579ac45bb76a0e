import type { RouterConfig } from "../config/schema";
import { RouterError } from "../errors";
import { logEvent } from "../log";
import { insertReplayDeliveries, listCurrentDeliveries, type DeliveryKey } from "../storage/db";
import { enqueueDeliveries, messagesFor, REPLAY_PAGE_SIZE, type ReplayPageMessage } from "./messages";

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
  const keys = await insertReplayDeliveries(env.DB, targets, Date.now());
  try {
    await enqueueDeliveries(env.DELIVERY_QUEUE, messagesFor(keys));
    return { keys, enqueued: true };
  } catch (err) {
    // The new generations are durable and pending; the sweeper sends them once they are overdue.
    logEvent("error", "replay_enqueue_failed", { deliveries: keys.length, errorMessage: err instanceof Error ? err.message : String(err) });
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
