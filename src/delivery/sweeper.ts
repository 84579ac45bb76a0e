import { logEvent } from "../log";
import { claimDueOutbox, deleteOutbox, getSweeperState, scanForOverdueDeliveries, setSweeperState, updateDeliveriesOfEvents } from "../storage/db";
import { enqueueDeliveries, messagesFor, type QueueMessage } from "./messages";
import { claimOverdue } from "./state";

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
 * costs the same however many events are kept: 10,000 rows × 8,640 runs a month is about $0.09 of D1 reads. A full
 * lap takes one run per 10,000 events kept (a million events: about 8 hours).
 */
export const OVERDUE_SCAN = { pageRows: 1000, pages: 10 };

const OUTBOX_BATCH = 100;
const OUTBOX_ROUNDS = 10;
const CURSOR = "overdue_scan_after";

/**
 * Sends the queue messages kept in the outbox because their send failed (at ingest, on replay), then deletes
 * them. The outbox holds nothing else, so a run on a healthy system reads an empty table.
 */
export async function sweepOutbox(env: Env, now: number = Date.now()): Promise<{ sent: number }> {
  let sent = 0;
  for (let round = 0; round < OUTBOX_ROUNDS; round++) {
    const claimed = await claimDueOutbox(env.DB, now, OUTBOX_CLAIM_MS, OUTBOX_BATCH);
    if (claimed.length === 0) break;
    // Rows hold messages this Worker built; the consumer validates every message it is handed.
    await enqueueDeliveries(env.DELIVERY_QUEUE, claimed.map((row) => ({ body: row.message as QueueMessage })));
    // Sent first, deleted second: a failed delete leaves a row that is sent once more, and the consumer ignores
    // deliveries that are no longer pending.
    await deleteOutbox(env.DB, claimed.map((row) => row.id));
    sent += claimed.length;
    if (claimed.length < OUTBOX_BATCH) break;
  }
  return { sent };
}

/**
 * Re-enqueues pending deliveries overdue by more than the grace period: their message was lost somewhere the outbox
 * does not see. Each is claimed (its due time moved to now, conditionally) before it is sent, so overlapping runs
 * send it once, and a failed send leaves it to come due again.
 */
export async function sweepOverdue(env: Env, now: number = Date.now(), scan = OVERDUE_SCAN): Promise<{ scanned: number; reenqueued: number }> {
  const overdueBefore = now - SWEEP_GRACE_MS;
  let cursor = (await getSweeperState(env.DB, CURSOR)) ?? "";
  let scanned = 0;
  let reenqueued = 0;
  for (let page = 0; page < scan.pages; page++) {
    const slice = await scanForOverdueDeliveries(env.DB, cursor, scan.pageRows, overdueBefore);
    scanned += slice.scanned;
    const claimed = await updateDeliveriesOfEvents(env.DB, slice.overdueEventIds, (_, deliveries) => claimOverdue(deliveries, overdueBefore, now));
    const keys = [...claimed].flatMap(([eventId, refs]) => refs.map((ref) => ({ eventId, ...ref })));
    await enqueueDeliveries(env.DELIVERY_QUEUE, messagesFor(keys));
    reenqueued += keys.length;
    // The end of the table: the next run starts the next lap from the first key.
    if (slice.scanned < scan.pageRows || slice.lastId === null) {
      cursor = "";
      break;
    }
    cursor = slice.lastId;
  }
  await setSweeperState(env.DB, CURSOR, cursor);
  return { scanned, reenqueued };
}

export async function sweep(env: Env, now: number = Date.now()): Promise<{ sent: number; scanned: number; reenqueued: number }> {
  const { sent } = await sweepOutbox(env, now);
  const { scanned, reenqueued } = await sweepOverdue(env, now);
  logEvent(sent + reenqueued > 0 ? "warn" : "info", "sweep_finished", { sentFromOutbox: sent, scanned, reenqueued });
  return { sent, scanned, reenqueued };
}
