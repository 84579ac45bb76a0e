import { type Shard, shardsOf } from "../config/shards.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import { claimNamed, claimOverdue, type DeliveryRef } from "../core/delivery-state.ts";
import { DeliveryMessageSchema, messageFor, messagesFor, type DeliveryMessage } from "../core/messages.ts";
import { updateDeliveriesInShards, updateDeliveriesOfEvents } from "../storage/delivery-writes.ts";
import { claimDueOutbox, deleteOutbox } from "../storage/outbox.ts";
import { enqueueDeliveries, enqueueOrKeep } from "../storage/queue.ts";
import { getSweeperState, scanForOverdueDeliveries, setSweeperState } from "../storage/sweep-cursor.ts";
import { logEvent } from "../telemetry/log.ts";
import { errorMessage } from "../core/errors.ts";
import { configuredShardDb, eventDbOrNull } from "./shards.ts";

/*
 * Both passes run in every shard (src/config/shards.ts), read-only ones too (they still hold deliveries), the shards
 * at once and each on its own: its own bound per run, its own walk cursor in its own `sweeper_state`, and a failing
 * shard never holds up the others.
 */

/**
 * A claimed outbox row whose send fails comes due again this long after the claim. Longer than a sweep takes, so
 * overlapping runs never send the same row twice.
 */
export const OUTBOX_CLAIM_MS = 10 * 60 * 1000;

/**
 * How far past its due time a pending delivery must be before the sweeper treats its message as lost. A healthy
 * queue hands a message to the consumer within seconds of its due time, so a delivery simply in flight is never
 * swept.
 */
export const SWEEP_GRACE_MS = 10 * 60 * 1000;

/**
 * The walk over each shard's events reads at most this many rows per run, resuming where the last run stopped, so a
 * run costs the same however many events the shard keeps: 20,000 rows × 8,640 runs a month is about $0.17 of D1
 * reads per shard. A lap takes one run per 20,000 events a shard keeps (a million events in one shard: 50 runs,
 * about 4 hours). The rows it reads are short: the payload is the last column (migrations/0002), so reading
 * `pending_due` does not read it.
 */
export const OVERDUE_SCAN = { pageRows: 2000, pages: 10 };

const OUTBOX_BATCH = 100;
const OUTBOX_ROUNDS = 10;
export const SWEEP_CURSOR = "overdue_scan_after";

/** What one shard's part of a pass did; `error` when it failed (the other shards' parts ran all the same). */
export interface ShardOutbox {
  shard: number;
  sent: number;
  error?: string;
}

/**
 * One shard's outbox: its due rows, claimed, sent, then deleted. Each message's deliveries are claimed first, in
 * the event's own shard (its id names it; normally this one), as the walk claims them, so the walk does not send them
 * a second time; deliveries settled meanwhile are left out, and a message with none left is not sent.
 */
async function sweepShardOutbox(env: Env, config: RouterConfig, shard: Shard, now: number): Promise<number> {
  let sent = 0;
  for (let round = 0; round < OUTBOX_ROUNDS; round++) {
    const claimed = await claimDueOutbox(shard.db, now, OUTBOX_CLAIM_MS, OUTBOX_BATCH);
    if (claimed.length === 0) break;
    const rows = claimed.flatMap((row) => {
      const parsed = DeliveryMessageSchema.safeParse(row.message);
      if (parsed.success && eventDbOrNull(env, config, parsed.data.eventId))
        return [{ id: row.id, message: parsed.data }];
      // Only this Worker writes the outbox; a row it cannot read, or whose event is in no configured shard, can
      // never be delivered, so it is logged and dropped.
      logEvent("error", "outbox_row_unreadable", { id: row.id, shard: shard.id });
      return [];
    });
    const refsByEvent = new Map<string, DeliveryRef[]>();
    for (const { message } of rows)
      refsByEvent.set(message.eventId, [...(refsByEvent.get(message.eventId) ?? []), ...message.deliveries]);
    const unclaimed = new Set<string>();
    const stillPending = await updateDeliveriesInShards(
      (id) => (id === shard.id ? shard.db : configuredShardDb(env, config, id)),
      [...refsByEvent.keys()],
      (eventId, deliveries) => claimNamed(deliveries, refsByEvent.get(eventId)!, now),
      unclaimed,
    );
    // Each claimed delivery goes out in one message, however many rows name it.
    const messages: { body: DeliveryMessage }[] = rows.flatMap(({ message }) => {
      const claimedRefs = stillPending.get(message.eventId) ?? [];
      const left = message.deliveries.filter((ref) => {
        const i = claimedRefs.findIndex((p) => p.destination === ref.destination && p.generation === ref.generation);
        if (i >= 0) claimedRefs.splice(i, 1);
        return i >= 0;
      });
      return left.length > 0 ? [{ body: messageFor(message.eventId, left, message.ingestId) }] : [];
    });
    await enqueueDeliveries(env.DELIVERY_QUEUE, messages);
    // Sent first, deleted second: a failed delete leaves rows that are sent once more, and the consumer ignores
    // deliveries that are no longer pending. A row whose deliveries could not be claimed stays, and comes due again
    // when its own claim runs out, instead of being left to the slow walk.
    const keep = new Set(rows.filter(({ message }) => unclaimed.has(message.eventId)).map(({ id }) => id));
    await deleteOutbox(
      shard.db,
      claimed.filter((row) => !keep.has(row.id)).map((row) => row.id),
    );
    sent += messages.length;
    if (claimed.length < OUTBOX_BATCH) break;
  }
  return sent;
}

/** Every shard's outbox, the shards at once: each shard's part is reported, and a failing one stops no other. */
export async function sweepOutboxes(
  env: Env,
  config: RouterConfig,
  now: number,
): Promise<{ sent: number; shards: ShardOutbox[] }> {
  const shards = await Promise.all(
    shardsOf(env, config).map((shard) =>
      sweepShardOutbox(env, config, shard, now).then(
        (sent): ShardOutbox => ({ shard: shard.id, sent }),
        (err: unknown): ShardOutbox => {
          logEvent("error", "sweep_outbox_failed", { shard: shard.id, errorMessage: errorMessage(err) });
          return { shard: shard.id, sent: 0, error: errorMessage(err) };
        },
      ),
    ),
  );
  return { sent: shards.reduce((sum, s) => sum + s.sent, 0), shards };
}

/**
 * Sends the queue messages kept in the outboxes because their send failed (at ingest, on replay, in the walk), then
 * deletes them. Throws, once every shard has had its turn, if any shard's part failed.
 */
export async function sweepOutbox(env: Env, config: RouterConfig, now: number): Promise<{ sent: number }> {
  const { sent, shards } = await sweepOutboxes(env, config, now);
  const failed = shards.filter((s) => s.error !== undefined);
  if (failed.length > 0) throw new Error(failed.map((s) => `shard ${s.shard}: ${s.error}`).join("; "));
  return { sent };
}

/** What one shard's walk did in a run, and where its next run starts. */
export interface ShardWalk {
  shard: number;
  scanned: number;
  reenqueued: number;
  failedPages: number;
  /** The last key read (the next run starts after it); "" when the walk reached the end and starts a new lap. */
  cursor: string;
  error?: string;
}

async function walkShard(
  env: Env,
  shard: Shard,
  now: number,
  scan: typeof OVERDUE_SCAN,
  overdueBefore: number,
): Promise<ShardWalk> {
  const { db } = shard;
  let cursor = (await getSweeperState(db, SWEEP_CURSOR)) ?? "";
  let scanned = 0;
  let reenqueued = 0;
  let failedPages = 0;
  try {
    for (let page = 0; page < scan.pages; page++) {
      const slice = await scanForOverdueDeliveries(db, cursor, scan.pageRows, overdueBefore);
      scanned += slice.scanned;
      try {
        const claimed = await updateDeliveriesOfEvents(db, slice.overdueEventIds, (_, deliveries) =>
          claimOverdue(deliveries, overdueBefore, now),
        );
        const keys = [...claimed].flatMap(([eventId, refs]) => refs.map((ref) => ({ eventId, ...ref })));
        // The events of this walk are this shard's: what the queue refuses waits in this shard's outbox.
        await enqueueOrKeep(env, messagesFor(keys), now, () => db);
        reenqueued += keys.length;
      } catch (err) {
        failedPages++;
        logEvent("error", "sweep_page_failed", {
          shard: shard.id,
          after: cursor,
          events: slice.overdueEventIds.length,
          errorMessage: errorMessage(err),
        });
      }
      // The end of the table: the next run starts the next lap from the first key.
      if (slice.scanned < scan.pageRows || slice.lastId === null) {
        cursor = "";
        break;
      }
      cursor = slice.lastId;
    }
  } finally {
    // Saved whatever happened, so the next run resumes after the pages done; a failure here must not hide the
    // error that got us here, if any.
    await setSweeperState(db, SWEEP_CURSOR, cursor).catch((err: unknown) =>
      logEvent("error", "sweep_cursor_not_saved", { shard: shard.id, cursor, errorMessage: errorMessage(err) }),
    );
  }
  return { shard: shard.id, scanned, reenqueued, failedPages, cursor };
}

/**
 * Re-enqueues pending deliveries overdue by more than the grace period: their message was lost somewhere the outbox
 * does not see. Each shard is walked from its own cursor, at most `scan` rows a run. Each delivery is claimed (its
 * due time moved to now, conditionally) before it is sent, so overlapping runs send it once; if the queue refuses
 * it, its shard's outbox keeps it. A page that fails is logged and skipped, so one bad page cannot stop the walk;
 * its deliveries come round again on the next lap. A shard whose walk fails is reported in `shards`.
 */
export async function sweepOverdue(
  env: Env,
  config: RouterConfig,
  now: number,
  scan = OVERDUE_SCAN,
  graceMs = SWEEP_GRACE_MS,
): Promise<{ scanned: number; reenqueued: number; failedPages: number; shards: ShardWalk[] }> {
  const overdueBefore = now - graceMs;
  const shards = await Promise.all(
    shardsOf(env, config).map((shard) =>
      walkShard(env, shard, now, scan, overdueBefore).catch((err: unknown): ShardWalk => {
        logEvent("error", "sweep_walk_failed", { shard: shard.id, errorMessage: errorMessage(err) });
        return { shard: shard.id, scanned: 0, reenqueued: 0, failedPages: 0, cursor: "", error: errorMessage(err) };
      }),
    ),
  );
  return {
    scanned: shards.reduce((sum, s) => sum + s.scanned, 0),
    reenqueued: shards.reduce((sum, s) => sum + s.reenqueued, 0),
    failedPages: shards.reduce((sum, s) => sum + s.failedPages, 0),
    shards,
  };
}

/**
 * The Cron Trigger's run: both passes in every shard, each whatever the other did; it fails (and shows so) if any
 * shard's part of either failed.
 */
export async function sweep(env: Env, config: RouterConfig, now: number, graceMs = SWEEP_GRACE_MS) {
  const failures: string[] = [];
  const outbox = await sweepOutboxes(env, config, now).catch((err: unknown) => {
    failures.push(`outbox: ${errorMessage(err)}`);
    return { sent: 0, shards: [] as ShardOutbox[] };
  });
  for (const s of outbox.shards) if (s.error !== undefined) failures.push(`outbox shard ${s.shard}: ${s.error}`);
  const walk = await sweepOverdue(env, config, now, OVERDUE_SCAN, graceMs).catch((err: unknown) => {
    failures.push(`walk: ${errorMessage(err)}`);
    return { scanned: 0, reenqueued: 0, failedPages: 0, shards: [] as ShardWalk[] };
  });
  for (const s of walk.shards) {
    if (s.error !== undefined) failures.push(`walk shard ${s.shard}: ${s.error}`);
    if (s.failedPages > 0) failures.push(`walk shard ${s.shard}: ${s.failedPages} page(s) failed`);
  }
  const summary = {
    sentFromOutbox: outbox.sent,
    scanned: walk.scanned,
    reenqueued: walk.reenqueued,
    failedPages: walk.failedPages,
    shards: walk.shards.map(({ shard, scanned, reenqueued, cursor }) => ({
      shard,
      sentFromOutbox: outbox.shards.find((o) => o.shard === shard)?.sent ?? 0,
      scanned,
      reenqueued,
      cursor,
    })),
  };
  logEvent(failures.length > 0 ? "error" : outbox.sent + walk.reenqueued > 0 ? "warn" : "info", "sweep_finished", {
    ...summary,
    failures,
  });
  if (failures.length > 0) throw new Error(`sweep failed: ${failures.join("; ")}`);
  return summary;
}
