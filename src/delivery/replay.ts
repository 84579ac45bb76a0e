import type { RouterConfig } from "../config/schema";
import { RouterError } from "../errors";
import { logEvent } from "../log";
import { listCurrentDeliveries, updateDeliveriesOfEvents, type DeliveryKey } from "../storage/db";
import { enqueueDeliveries, enqueueOrKeep, messagesFor, REPLAY_PAGE_SIZE, type ReplayPageMessage } from "./messages";
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
  // If the outbox fails too, the request fails; the new generations are pending, and the sweeper's walk or a
  // second replay (which supersedes them) sends them.
  const enqueued = await enqueueOrKeep(env, messagesFor(keys), now);
  return { keys, enqueued };
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
