import { claimNamed, claimOverdue, type DeliveryRef } from "../core/delivery-state.ts";
import { DeliveryMessageSchema, messageFor, messagesFor, type DeliveryMessage } from "../core/messages.ts";
import { updateDeliveriesOfEvents } from "../storage/delivery-writes.ts";
import { claimDueOutbox, deleteOutbox } from "../storage/outbox.ts";
import { enqueueDeliveries, enqueueOrKeep } from "../storage/queue.ts";
import { getSweeperState, scanForOverdueDeliveries, setSweeperState } from "../storage/sweep-cursor.ts";
import { logEvent } from "../telemetry/log.ts";
import { errorMessage } from "../core/errors.ts";

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
 * The walk over the events reads at most this many rows per run, resuming where the last run stopped, so a run
 * costs the same however many events are kept: 20,000 rows × 8,640 runs a month is about $0.17 of D1 reads. A
 * lap takes one run per 20,000 events kept (a million events: 50 runs, about 4 hours). The rows it reads are short:
 * the payload is the last column (migrations/0002), so reading `pending_due` does not read it.
 */
export const OVERDUE_SCAN = { pageRows: 2000, pages: 10 };

const OUTBOX_BATCH = 100;
const OUTBOX_ROUNDS = 10;
export const SWEEP_CURSOR = "overdue_scan_after";

/**
 * Sends the queue messages kept in the outbox because their send failed (at ingest, on replay, in the walk), then
 * deletes them. Each message's deliveries are claimed first, as the walk claims them, so the walk does not send
 * them a second time; deliveries settled meanwhile are left out, and a message with none left is not sent.
 */
export async function sweepOutbox(env: Env, now: number): Promise<{ sent: number }> {
  let sent = 0;
  for (let round = 0; round < OUTBOX_ROUNDS; round++) {
    const claimed = await claimDueOutbox(env.DB, now, OUTBOX_CLAIM_MS, OUTBOX_BATCH);
    if (claimed.length === 0) break;
    const rows = claimed.flatMap((row) => {
      const parsed = DeliveryMessageSchema.safeParse(row.message);
      if (parsed.success) return [{ id: row.id, message: parsed.data }];
      // Only this Worker writes the outbox; a row it cannot read can never be delivered, so it is logged and dropped.
      logEvent("error", "outbox_row_unreadable", { id: row.id });
      return [];
    });
    const refsByEvent = new Map<string, DeliveryRef[]>();
    for (const { message } of rows)
      refsByEvent.set(message.eventId, [...(refsByEvent.get(message.eventId) ?? []), ...message.deliveries]);
    const unclaimed = new Set<string>();
    const stillPending = await updateDeliveriesOfEvents(
      env.DB,
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
      env.DB,
      claimed.filter((row) => !keep.has(row.id)).map((row) => row.id),
    );
    sent += messages.length;
    if (claimed.length < OUTBOX_BATCH) break;
  }
  return { sent };
}

/**
 * Re-enqueues pending deliveries overdue by more than the grace period: their message was lost somewhere the outbox
 * does not see. Each is claimed (its due time moved to now, conditionally) before it is sent, so overlapping runs
 * send it once; if the queue refuses it, the outbox keeps it. A page that fails is logged and skipped, so one bad
 * page cannot stop the walk; its deliveries come round again on the next lap.
 */
export async function sweepOverdue(
  env: Env,
  now: number,
  scan = OVERDUE_SCAN,
  graceMs = SWEEP_GRACE_MS,
): Promise<{ scanned: number; reenqueued: number; failedPages: number }> {
  const overdueBefore = now - graceMs;
  let cursor = (await getSweeperState(env.DB, SWEEP_CURSOR)) ?? "";
  let scanned = 0;
  let reenqueued = 0;
  let failedPages = 0;
  try {
    for (let page = 0; page < scan.pages; page++) {
      const slice = await scanForOverdueDeliveries(env.DB, cursor, scan.pageRows, overdueBefore);
      scanned += slice.scanned;
      try {
        const claimed = await updateDeliveriesOfEvents(env.DB, slice.overdueEventIds, (_, deliveries) =>
          claimOverdue(deliveries, overdueBefore, now),
        );
        const keys = [...claimed].flatMap(([eventId, refs]) => refs.map((ref) => ({ eventId, ...ref })));
        await enqueueOrKeep(env, messagesFor(keys), now);
        reenqueued += keys.length;
      } catch (err) {
        failedPages++;
        logEvent("error", "sweep_page_failed", {
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
    await setSweeperState(env.DB, SWEEP_CURSOR, cursor).catch((err: unknown) =>
      logEvent("error", "sweep_cursor_not_saved", { cursor, errorMessage: errorMessage(err) }),
    );
  }
  return { scanned, reenqueued, failedPages };
}

/** The Cron Trigger's run: both passes, each whatever the other did; it fails (and shows so) if either failed. */
export async function sweep(env: Env, now: number, graceMs = SWEEP_GRACE_MS) {
  const failures: string[] = [];
  const outbox = await sweepOutbox(env, now).catch((err: unknown) => {
    failures.push(`outbox: ${errorMessage(err)}`);
    return { sent: 0 };
  });
  const walk = await sweepOverdue(env, now, OVERDUE_SCAN, graceMs).catch((err: unknown) => {
    failures.push(`walk: ${errorMessage(err)}`);
    return { scanned: 0, reenqueued: 0, failedPages: 0 };
  });
  if (walk.failedPages > 0) failures.push(`walk: ${walk.failedPages} page(s) failed`);
  const summary = { sentFromOutbox: outbox.sent, ...walk };
  logEvent(failures.length > 0 ? "error" : outbox.sent + walk.reenqueued > 0 ? "warn" : "info", "sweep_finished", {
    ...summary,
    failures,
  });
  if (failures.length > 0) throw new Error(`sweep failed: ${failures.join("; ")}`);
  return summary;
}
