import { writeFailure } from "../core/capacity.ts";
import type { Clock } from "../core/clock.ts";
import type { PayloadProtection } from "../core/envelope.ts";
import { plannedDeliveries } from "../core/delivery-state.ts";
import { errorMessage } from "../core/errors.ts";
import { messageFor } from "../core/messages.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import type { NewEvent } from "../core/event.ts";
import { shardOfEventId } from "../core/event-id.ts";
import { findInEarlierShards, insertEvents, type InsertResult } from "../storage/events.ts";
import { shardDb } from "../config/shards.ts";
import { insertOutbox } from "../storage/outbox.ts";
import { enqueueDeliveries } from "../storage/queue.ts";
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
export async function storeAndEnqueue(
  env: Env,
  config: RouterConfig,
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
    storeInShards(env, config, protection, rows),
    messages.length > 0 ? enqueueDeliveries(env.DELIVERY_QUEUE, messages) : Promise.resolve(),
  ]);
  if (stored.status === "rejected") {
    // A database D1 says is full answers storage_full (the capacity watch alerts it); any other failure is transient.
    throw writeFailure(stored.reason);
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
    // Each message waits in its event's shard, where the sweeper of that shard finds it.
    await Promise.all(
      [...groupBy(ours, (m) => shardOfEventId(m.body.eventId) ?? 0)].map(([shard, kept]) =>
        insertOutbox(
          shardDb(env, config, shard),
          kept.map((m) => m.body),
          clock.now(),
        ),
      ),
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

function groupBy<T>(items: readonly T[], keyOf: (item: T) => number): Map<number, T[]> {
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    groups.set(key, [...(groups.get(key) ?? []), item]);
  }
  return groups;
}

/**
 * Each shard's events in one batch, the shards at once. A request's events in several shards (a V4 envelope of
 * orders placed apart) are stored per shard: if one shard fails, the request fails and the provider's retry stores
 * the rest, those already stored being duplicates. A retry whose previous placement was another shard is matched
 * there first.
 */
async function storeInShards(
  env: Env,
  config: RouterConfig,
  protection: PayloadProtection,
  rows: readonly { event: NewEvent; deliveries: ReturnType<typeof plannedDeliveries> }[],
): Promise<InsertResult[]> {
  const results: InsertResult[] = new Array(rows.length);
  // An earlier map may name a shard the config no longer has (shards are never to be removed, docs/configuration.md):
  // nothing there is reachable, so it is not looked in, rather than failing every insert of the retry window.
  const configured = new Set(config.storage.shards.map((s) => s.id));
  const found = await Promise.all(
    rows.map(({ event }) =>
      findInEarlierShards((shard) => shardDb(env, config, shard), {
        ...event,
        earlier: event.earlier?.filter((e) => configured.has(e.shard)),
      }),
    ),
  );
  const toInsert = rows
    .map((row, i) => ({ row, i }))
    .filter(({ i }) => {
      const earlier = found[i];
      if (earlier) results[i] = earlier;
      return !earlier;
    });
  await Promise.all(
    [...groupBy(toInsert, ({ row }) => shardOfEventId(row.event.id) ?? 0)].map(async ([shard, group]) => {
      const inserted = await insertEvents(
        shardDb(env, config, shard),
        protection,
        group.map(({ row }) => row),
      );
      group.forEach(({ i }, j) => {
        results[i] = inserted[j]!;
      });
    }),
  );
  return results;
}
