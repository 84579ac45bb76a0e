import { logEvent } from "../log";
import { claimDueOutbox, deleteOutbox } from "../storage/db";
import { enqueueDeliveries, type QueueMessage } from "./messages";

/**
 * A claimed outbox row whose send fails comes due again this long after the claim. Longer than a sweep takes, so
 * overlapping runs never send the same row twice.
 */
export const OUTBOX_CLAIM_MS = 10 * 60 * 1000;
const SWEEP_BATCH = 100;
const SWEEP_ROUNDS = 10;

/**
 * Sends the queue messages that were kept in the outbox because their send failed (at ingest, on replay), then
 * deletes them. The outbox holds nothing else, so a run on a healthy system reads an empty table.
 */
export async function sweepOutbox(env: Env, now: number = Date.now()): Promise<{ sent: number }> {
  let sent = 0;
  for (let round = 0; round < SWEEP_ROUNDS; round++) {
    const claimed = await claimDueOutbox(env.DB, now, OUTBOX_CLAIM_MS, SWEEP_BATCH);
    if (claimed.length === 0) break;
    // Rows hold messages this Worker built; the consumer validates every message it is handed.
    await enqueueDeliveries(env.DELIVERY_QUEUE, claimed.map((row) => ({ body: row.message as QueueMessage })));
    // Sent first, deleted second: a failed delete leaves a row that is sent once more, and the consumer ignores
    // deliveries that are no longer pending.
    await deleteOutbox(env.DB, claimed.map((row) => row.id));
    sent += claimed.length;
    if (claimed.length < SWEEP_BATCH) break;
  }
  logEvent(sent > 0 ? "warn" : "info", "sweep_finished", { sent });
  return { sent };
}
