import { z } from "zod";
import { ALERT_KINDS, type Alert } from "./controls.ts";
import { EVENT_ID_PATTERN } from "./event-id.ts";

/**
 * The queue messages, their schemas and their constructors: the one place a message is built. Queue messages carry
 * ids, never payloads: the payload stays in D1, encrypted (src/storage/payloads.ts).
 *
 * One message per event covers all of its deliveries: Queues bills every write, read and delete, so a message per
 * delivery would triple the queue cost of a three-destination event. Retries split off per delivery.
 */
export const DeliveryMessageSchema = z.strictObject({
  v: z.literal(1),
  eventId: z.string().regex(EVENT_ID_PATTERN),
  /**
   * Set on the message an ingest sends. Ingest sends it while the event is being stored, so the consumer may find
   * the event not yet committed, never committed, or committed by a concurrent duplicate; it acts only on the
   * event row this ingest wrote.
   */
  ingestId: z.string().min(1).max(64).optional(),
  deliveries: z
    .array(z.strictObject({ destination: z.string().min(1).max(63), generation: z.number().int().positive() }))
    .min(1)
    .max(100),
  /** Sent by a destination's object releasing what it held: it goes ahead of the deliveries still held. */
  released: z.literal(true).optional(),
});

export type DeliveryMessage = z.infer<typeof DeliveryMessageSchema>;

/** Which current deliveries a bulk replay takes: by state, optionally one destination, created in a window. */
export const ReplayFilterSchema = z.strictObject({
  destination: z.string().min(1).max(63).optional(),
  status: z.enum(["dead", "failing", "delivered", "pending"]),
  since: z.number().int().optional(),
  until: z.number().int().optional(),
});

export type ReplayFilter = z.infer<typeof ReplayFilterSchema>;

/**
 * Bulk replay works through large sets a page at a time: each page message names its job (a row in D1 with the
 * filter, the bound and the progress) and the last event the walk reached, and enqueues the next page, so no
 * request has to hold the whole set.
 */
export const ReplayPageMessageSchema = z.strictObject({
  v: z.literal(1),
  kind: z.literal("replay-page"),
  replayId: z.string().min(1).max(64),
  /** The shard the page reads (src/core/shards.ts); absent in pages sent before shards, which read shard 0. */
  shard: z.number().int().min(0).max(999).optional(),
  after: z.string().max(64).nullable(),
});

export type ReplayPageMessage = z.infer<typeof ReplayPageMessageSchema>;

/** Events a replay page reads. */
export const REPLAY_PAGE_SIZE = 100;

export const AlertSchema = z.strictObject({
  id: z.string().min(1).max(64),
  kind: z.enum(ALERT_KINDS),
  destination: z.string().max(63).nullable(),
  at: z.number(),
  reason: z.string().max(200).nullable(),
  suppressed: z.number().int().nonnegative(),
  counts: z.record(z.string().max(40), z.number()),
  eventIds: z.array(z.string().max(64)).max(20),
});

/**
 * An alert on its way out. Without `channel` it is fanned out into one message per configured channel, so a channel
 * that is down is retried alone and never repeats the alert on the others.
 */
export const AlertMessageSchema = z.strictObject({
  v: z.literal(1),
  kind: z.literal("alert"),
  alert: AlertSchema,
  channel: z.string().max(63).optional(),
});

export type AlertMessage = z.infer<typeof AlertMessageSchema>;

export function alertMessage(alert: Alert, channel?: string): AlertMessage {
  return { v: 1, kind: "alert", alert, ...(channel === undefined ? {} : { channel }) };
}

export const QueueMessageSchema = z.union([DeliveryMessageSchema, ReplayPageMessageSchema, AlertMessageSchema]);

export type QueueMessage = z.infer<typeof QueueMessageSchema>;

/** Queues' limits (developers.cloudflare.com/queues/platform/limits). */
export const MAX_QUEUE_DELAY_SECONDS = 43_200;
export const SEND_BATCH_MAX = 100;

/** Groups delivery keys into one message per event. */
export function messagesFor(
  keys: readonly { eventId: string; destination: string; generation: number }[],
): { body: DeliveryMessage }[] {
  const byEvent = new Map<string, { destination: string; generation: number }[]>();
  for (const key of keys) byEvent.set(key.eventId, [...(byEvent.get(key.eventId) ?? []), key]);
  return [...byEvent].map(([eventId, deliveries]) => ({ body: messageFor(eventId, deliveries) }));
}

export function messageFor(
  eventId: string,
  deliveries: readonly { destination: string; generation: number }[],
  ingestId?: string,
  released = false,
): DeliveryMessage {
  return {
    v: 1,
    eventId,
    ...(ingestId === undefined ? {} : { ingestId }),
    deliveries: deliveries.map(({ destination, generation }) => ({ destination, generation })),
    ...(released ? { released: true as const } : {}),
  };
}

/**
 * A page of a bulk replay: the first (the first shard, `after` null) when a replay starts, then each next one from
 * the last event read, or from the start of the next shard once one is read to its end.
 */
export function replayPageMessage(replayId: string, shard: number, after: string | null): ReplayPageMessage {
  return { v: 1, kind: "replay-page", replayId, shard, after };
}
