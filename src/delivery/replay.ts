import type { Clock } from "../core/clock.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import { addGenerations } from "../core/delivery-state.ts";
import { RouterError } from "../core/errors.ts";
import type { DeliveryKey } from "../core/event.ts";
import { messagesFor, REPLAY_PAGE_SIZE, replayPageMessage, type ReplayFilter, type ReplayPageMessage } from "../core/messages.ts";
import { countCurrentDeliveries, listCurrentDeliveries } from "../storage/admin-queries.ts";
import { updateDeliveriesOfEvents } from "../storage/delivery-writes.ts";
import { enqueueDeliveries, enqueueOrKeep } from "../storage/queue.ts";
import { logEvent } from "../telemetry/log.ts";

/**
 * The replay service: the one part of delivery that admin calls. A replay adds a new generation of each delivery,
 * so the old attempts stay as history; the internal system gets the same `webhook-id` (the event id) with a fresh
 * attempt count. Disabled or removed destinations are refused.
 */
export function assertReplayable(config: RouterConfig, destination: string): void {
  const configured = config.destinations[destination];
  if (!configured) throw new RouterError("unknown_destination", { message: `Destination "${destination}" is not in the active configuration.` });
  if (!configured.enabled) throw new RouterError("destination_disabled", { message: `Destination "${destination}" is disabled in the active configuration.` });
}

export async function replayDeliveries(
  env: Env,
  targets: readonly { eventId: string; destination: string; route: string }[],
  clock: Clock,
): Promise<{ keys: DeliveryKey[]; enqueued: boolean }> {
  const now = clock.now();
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

/**
 * Starts a bulk replay: counts what the filter matches now and, if anything, enqueues its first page. The pages
 * run in the consumer (runReplayPage), so no request holds the whole set.
 */
export async function startBulkReplay(env: Env, config: RouterConfig, filter: ReplayFilter): Promise<{ replayId: string; matched: number }> {
  if (filter.destination !== undefined) assertReplayable(config, filter.destination);
  const matched = await countCurrentDeliveries(env.DB, filter);
  const replayId = `rpl_${crypto.randomUUID().replace(/-/g, "")}`;
  if (matched > 0) await enqueueDeliveries(env.DELIVERY_QUEUE, [{ body: replayPageMessage(replayId, filter, null) }]);
  return { replayId, matched };
}

/** One page of a bulk replay, run by the queue consumer; enqueues the next page before it is acknowledged. */
export async function runReplayPage(env: Env, config: RouterConfig, page: ReplayPageMessage, clock: Clock): Promise<void> {
  const current = await listCurrentDeliveries(env.DB, page.filter, page.after, REPLAY_PAGE_SIZE);
  const replayable = current.filter((d) => config.destinations[d.destination]?.enabled === true);
  const skipped = current.length - replayable.length;
  const { keys } = await replayDeliveries(env, replayable, clock);
  const last = current.at(-1);
  if (current.length === REPLAY_PAGE_SIZE && last) {
    await enqueueDeliveries(env.DELIVERY_QUEUE, [{ body: replayPageMessage(page.replayId, page.filter, last) }]);
  }
  logEvent("info", "replay_page", { replayId: page.replayId, replayed: keys.length, skippedDisabled: skipped, more: current.length === REPLAY_PAGE_SIZE });
}
