import { logEvent } from "../log";
import { claimOverdueDeliveries } from "../storage/db";
import { enqueueDeliveries, messagesFor } from "./messages";

/**
 * How far past its due time a pending delivery must be before the sweeper treats its message as lost. A healthy
 * queue hands a message to the consumer within seconds of its due time, so a delivery simply in flight is never
 * swept; one whose queue send failed at ingest is picked up on the first run after this.
 */
export const SWEEP_GRACE_MS = 10 * 60 * 1000;
const SWEEP_BATCH = 100;
const SWEEP_ROUNDS = 10;

export async function sweepDeliveries(env: Env, now: number = Date.now()): Promise<{ reenqueued: number }> {
  let reenqueued = 0;
  for (let round = 0; round < SWEEP_ROUNDS; round++) {
    const claimed = await claimOverdueDeliveries(env.DB, now, SWEEP_GRACE_MS, SWEEP_BATCH);
    if (claimed.length === 0) break;
    // Claimed first, sent second: if this send fails the claim just pushes the due time to now, and a later run
    // picks the deliveries up again once they are overdue by the grace period.
    await enqueueDeliveries(env.DELIVERY_QUEUE, messagesFor(claimed));
    reenqueued += claimed.length;
    if (claimed.length < SWEEP_BATCH) break;
  }
  logEvent(reenqueued > 0 ? "warn" : "info", "sweep_finished", { reenqueued });
  return { reenqueued };
}
