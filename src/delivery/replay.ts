import type { Clock } from "../core/clock.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import { addGenerations, selectForReplay } from "../core/delivery-state.ts";
import type { DeliveryKey } from "../core/event.ts";
import { messagesFor, REPLAY_PAGE_SIZE, replayPageMessage, type ReplayPageMessage } from "../core/messages.ts";
import { updateDeliveriesOfEvents } from "../storage/delivery-writes.ts";
import { enqueueDeliveries, enqueueOrKeep } from "../storage/queue.ts";
import { endReplayJob, getReplayJob, recordReplayPage, replayPageEvents } from "../storage/replay-jobs.ts";
import { logEvent } from "../telemetry/log.ts";

/**
 * The write of new delivery generations, and the pages of a bulk replay job, run by the queue consumer. The operator
 * actions that start them (one event, a job, a redrive, a release) are in src/operations/replays.ts, which calls
 * `replayDeliveries` here: one write for a replay, whether an operator or a job's page asked for it.
 */
export async function replayDeliveries(
  env: Env,
  targets: readonly { eventId: string; destination: string; route: string }[],
  clock: Clock,
): Promise<{ keys: DeliveryKey[]; enqueued: boolean }> {
  const now = clock.now();
  const added = await updateDeliveriesOfEvents(
    env.DB,
    targets.map((t) => t.eventId),
    (eventId, deliveries) =>
      addGenerations(
        deliveries,
        targets.filter((t) => t.eventId === eventId),
        now,
      ),
  );
  const keys = [...added].flatMap(([eventId, refs]) => refs.map((ref) => ({ eventId, ...ref })));
  // If the outbox fails too, the request fails; the new generations are pending, and the sweeper's walk or a
  // second replay (which supersedes them) sends them.
  const enqueued = await enqueueOrKeep(env, messagesFor(keys), now);
  return { keys, enqueued };
}

/**
 * One page of a bulk replay, run by the queue consumer: the next slice of the events in the job's window, the
 * deliveries in them the job takes (up to its bound), then the progress, and the next page before this one is
 * acknowledged. A cancelled or finished job stops at its next page.
 */
export async function runReplayPage(
  env: Env,
  config: RouterConfig,
  page: ReplayPageMessage,
  clock: Clock,
): Promise<void> {
  const job = await getReplayJob(env.DB, page.replayId);
  if (job?.state !== "running") {
    logEvent("info", "replay_page_skipped", { replayId: page.replayId, state: job?.state ?? "missing" });
    return;
  }
  const events = await replayPageEvents(env.DB, page.after, job.filter, REPLAY_PAGE_SIZE, job.filter.status === "dead");
  let room = job.maxCount - job.replayed;
  const targets: { eventId: string; destination: string; route: string }[] = [];
  let skipped = 0;
  for (const event of events) {
    for (const delivery of selectForReplay(event.deliveries, job.filter, job.startedAt)) {
      if (config.destinations[delivery.destination]?.enabled !== true) {
        skipped++;
        continue;
      }
      if (room-- <= 0) break;
      targets.push({ eventId: event.id, destination: delivery.destination, route: delivery.route });
    }
  }
  const { keys } = await replayDeliveries(env, targets, clock);
  const more = events.length === REPLAY_PAGE_SIZE && job.replayed + keys.length < job.maxCount;
  const cursor = events.at(-1)?.id ?? page.after;
  const recorded = await recordReplayPage(
    env.DB,
    job.id,
    { cursor, scanned: events.length, replayed: keys.length, skipped, state: more ? "running" : "done" },
    clock.now(),
  );
  if (recorded && more) await enqueueDeliveries(env.DELIVERY_QUEUE, [{ body: replayPageMessage(job.id, cursor) }]);
  logEvent("info", "replay_page", {
    replayId: job.id,
    replayed: keys.length,
    skippedDisabled: skipped,
    more: recorded && more,
  });
}

/** A page Queues gave up on: the job is recorded as failed with the reason, so it is neither lost nor silent. */
export async function failBulkReplay(env: Env, replayId: string, reason: string, clock: Clock): Promise<boolean> {
  return endReplayJob(env.DB, replayId, "failed", clock.now(), reason);
}
