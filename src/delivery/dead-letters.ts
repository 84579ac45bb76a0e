import type { Clock } from "../core/clock.ts";
import { deathsToCount, type GateOutcome } from "../core/controls.ts";
import { findDelivery, markDead } from "../core/delivery-state.ts";
import { AlertMessageSchema, DeliveryMessageSchema, ReplayPageMessageSchema } from "../core/messages.ts";
import { loadConfig } from "../config/load.ts";
import type { ProviderRegistry } from "../core/providers/contract.ts";
import { raiseRouterAlert, reportAll } from "../control/client.ts";
import { updateDeliveries } from "../storage/delivery-writes.ts";
import { loadDeliveryOwner } from "../storage/events.ts";
import { logEvent } from "../telemetry/log.ts";
import { failBulkReplay } from "./replay.ts";
import { errorMessage } from "../core/errors.ts";
import { eventDbOrNull } from "./shards.ts";

/**
 * Messages land here when Queues gave up on them (the consumer kept failing) or when the consumer forwarded a
 * malformed one. D1 stays the record replay reads from: a DLQ without a consumer deletes after 4 days.
 */
export async function handleDeadLetterBatch(
  batch: MessageBatch<unknown>,
  env: Env,
  clock: Clock,
  providers: ProviderRegistry,
): Promise<void> {
  const received: string[] = [];
  const counted = new Map<string, { outcomes: GateOutcome[]; leases: string[] }>();
  let messages = 0;
  for (const message of batch.messages) {
    const alert = AlertMessageSchema.safeParse(message.body);
    if (alert.success) {
      // An alert the consumer kept failing on: logged here, and never alerted on, or alerts would feed themselves.
      logEvent("error", "alert_undelivered", {
        alertId: alert.data.alert.id,
        kind: alert.data.alert.kind,
        channel: alert.data.channel,
        reason: "queue_retries_exhausted",
      });
      message.ack();
      continue;
    }
    messages++;
    const page = ReplayPageMessageSchema.safeParse(message.body);
    if (page.success) {
      // A bulk replay page that kept failing is recorded on its job as failed: visible in the admin API with the
      // progress it made, never dropped silently, and not re-driven into the same failure forever.
      try {
        const failed = await failBulkReplay(env, page.data.replayId, "queue_retries_exhausted", clock);
        logEvent("warn", "dead_letter_replay_page", {
          messageId: message.id,
          replayId: page.data.replayId,
          jobFailed: failed,
        });
        message.ack();
      } catch (err) {
        logEvent("error", "dead_letter_failed", {
          messageId: message.id,
          replayId: page.data.replayId,
          errorMessage: errorMessage(err),
        });
        message.retry();
      }
      continue;
    }
    const parsed = DeliveryMessageSchema.safeParse(message.body);
    if (!parsed.success) {
      // Only what the consumer forwarded as malformed lands here unparsed; the log line is its record.
      logEvent("error", "dead_letter_unprocessable", { messageId: message.id });
      message.ack();
      continue;
    }
    const { eventId, ingestId, deliveries } = parsed.data;
    try {
      // The event's own shard (its id names it); an id naming no configured shard has nothing to mark.
      const db = eventDbOrNull(env, loadConfig(env, providers), eventId);
      const work = db ? await loadDeliveryOwner(db, eventId) : null;
      // A message from a duplicate ingest names deliveries that belong to the request that stored the event.
      let diedHere: typeof deliveries = [];
      const marked =
        db && work && (!ingestId || ingestId === work.ingestId)
          ? await updateDeliveries(
              db,
              eventId,
              (d) => {
                diedHere = deliveries.filter((ref) => findDelivery(d, ref)?.status === "pending");
                return markDead(
                  d,
                  deliveries.map((ref) => ({ ref, reason: "queue_retries_exhausted" })),
                  clock.now(),
                );
              },
              work.snapshot,
            )
          : 0;
      // Each death counted once, in its destination's dead letters, by the write that made it.
      if (marked)
        for (const [destination, outcomes] of deathsToCount(eventId, diedHere)) {
          const report = counted.get(destination) ?? { outcomes: [], leases: [] };
          report.outcomes.push(...outcomes);
          counted.set(destination, report);
        }
      logEvent("warn", "dead_letter_received", { messageId: message.id, eventId, markedDead: marked });
      received.push(eventId);
      message.ack();
    } catch (err) {
      logEvent("error", "dead_letter_failed", { messageId: message.id, errorMessage: errorMessage(err) });
      message.retry();
    }
  }
  if (counted.size > 0) await reportAll(env, loadConfig(env, providers), clock.now(), counted);
  if (messages > 0) {
    await raiseRouterAlert(env, loadConfig(env, providers), clock.now(), "dead_letter", {
      reason: "queue_retries_exhausted",
      counts: { messages },
      eventIds: received.slice(0, 20),
    });
  }
}
