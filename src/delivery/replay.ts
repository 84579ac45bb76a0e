import type { Clock } from "../core/clock.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import { addGenerations, selectForReplay } from "../core/delivery-state.ts";
import type { DeliveryKey } from "../core/event.ts";
import { messagesFor, REPLAY_PAGE_SIZE, replayPageMessage, type ReplayPageMessage } from "../core/messages.ts";
import { updateDeliveriesInShards } from "../storage/delivery-writes.ts";
import { enqueueDeliveries, enqueueOrKeep } from "../storage/queue.ts";
import {
  decodePosition,
  encodePosition,
  endReplayJob,
  getReplayJob,
  recordReplayPage,
  replayPageEvents,
  type ReplayPosition,
} from "../storage/replay-jobs.ts";
import { logEvent } from "../telemetry/log.ts";
import { configuredShardDb, eventDbOrNull } from "./shards.ts";

/**
 * The write of new delivery generations, and the pages of a bulk replay job, run by the queue consumer. The operator
 * actions that start them (one event, a job, a redrive, a release) are in src/operations/replays.ts, which calls
 * `replayDeliveries` here: one write for a replay, whether an operator or a job's page asked for it. Each event is
 * written in its own shard (its id names it); a message the queue refuses waits in that shard's outbox.
 */
export async function replayDeliveries(
  env: Env,
  config: RouterConfig,
  targets: readonly { eventId: string; destination: string; route: string }[],
  clock: Clock,
): Promise<{ keys: DeliveryKey[]; enqueued: boolean }> {
  const now = clock.now();
  const added = await updateDeliveriesInShards(
    (shard) => configuredShardDb(env, config, shard),
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
  const enqueued = await enqueueOrKeep(
    env,
    messagesFor(keys),
    now,
    (eventId) => eventDbOrNull(env, config, eventId) ?? env.DB,
  );
  return { keys, enqueued };
}

/** The shards a job walks, in the order it walks them. */
export function replayShards(config: RouterConfig): number[] {
  return config.storage.shards.map((s) => s.id).sort((a, b) => a - b);
}

/**
 * One page of a bulk replay, run by the queue consumer: the next slice of one shard's events in the job's window,
 * the deliveries in them the job takes (up to its bound, which counts every shard), then the progress, and the next
 * page before this one is acknowledged. The shards are walked one after the other, each from its first key, so a
 * job reads each event once and `maxCount` bounds the whole job. A cancelled or finished job stops at its next
 * page; a page that is not where the job stands (Queues delivered it twice) does nothing.
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
  const shards = replayShards(config);
  const at: ReplayPosition = { shard: page.shard ?? 0, after: page.after };
  const expected = decodePosition(job.cursor, shards[0] ?? 0);
  if (expected.shard !== at.shard || expected.after !== at.after) {
    logEvent("info", "replay_page_skipped", { replayId: job.id, state: "not_at_cursor", shard: at.shard });
    return;
  }
  // A shard no longer configured has nothing this job can read: the walk goes on with the next.
  const db = configuredShardDb(env, config, at.shard);
  const events = db
    ? await replayPageEvents(db, at.after, job.filter, REPLAY_PAGE_SIZE, job.filter.status === "dead")
    : [];
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
  const { keys } = await replayDeliveries(env, config, targets, clock);
  const nextShard = shards.find((s) => s > at.shard);
  const next: ReplayPosition | null =
    events.length === REPLAY_PAGE_SIZE
      ? { shard: at.shard, after: events.at(-1)!.id }
      : nextShard !== undefined
        ? { shard: nextShard, after: null }
        : null;
  const more = next !== null && job.replayed + keys.length < job.maxCount;
  const reached = next ?? { shard: at.shard, after: events.at(-1)?.id ?? at.after };
  const recorded = await recordReplayPage(
    env.DB,
    job.id,
    {
      cursor: encodePosition(reached),
      scanned: events.length,
      replayed: keys.length,
      skipped,
      state: more ? "running" : "done",
    },
    clock.now(),
    job.cursor,
  );
  if (recorded && more)
    await enqueueDeliveries(env.DELIVERY_QUEUE, [{ body: replayPageMessage(job.id, next.shard, next.after) }]);
  logEvent("info", "replay_page", {
    replayId: job.id,
    shard: at.shard,
    replayed: keys.length,
    skippedDisabled: skipped,
    more: recorded && more,
  });
}

/** A page Queues gave up on: the job is recorded as failed with the reason, so it is neither lost nor silent. */
export async function failBulkReplay(env: Env, replayId: string, reason: string, clock: Clock): Promise<boolean> {
  return endReplayJob(env.DB, replayId, "failed", clock.now(), reason);
}
