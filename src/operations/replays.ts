/**
 * Sending events again: one event (all its destinations, or the ones named), a bulk replay job by filter, a redrive
 * of dead letters, and the release of a held event. Each adds new delivery generations (the old attempts stay as
 * history), refuses a destination that is not configured or is disabled, and is audited.
 *
 * The pages of a bulk replay run in the queue consumer (src/delivery/replay.ts `runReplayPage`), which writes new
 * generations the same way one replay does: `replayDeliveries` is that one write, so it stays with the consumer
 * and these actions call it there (the one import from delivery/ that .dependency-cruiser.cjs allows).
 */
import type { z } from "@hono/zod-openapi";
import { loadPayloadProtection } from "../config/keys.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import { plannedDeliveries } from "../core/delivery-state.ts";
import { errorMessage, RouterError } from "../core/errors.ts";
import { readScalar } from "../core/fields.ts";
import { intake } from "../core/intake.ts";
import { messageFor, replayPageMessage, type ReplayFilter } from "../core/messages.ts";
import type { EventIdentity } from "../core/providers/contract.ts";
import { sha256Hex } from "../core/signatures/inbound.ts";
import { replayDeliveries, replayShards } from "../delivery/replay.ts";
import { eventDb, shardsOf } from "../config/shards.ts";
import { countCurrentDeliveries, countDeadLetters, getEventDetail } from "../storage/admin-queries.ts";
import { loadQuarantined, releaseQuarantined } from "../storage/events.ts";
import { enqueueDeliveries, enqueueOrKeep } from "../storage/queue.ts";
import {
  endReplayJob,
  getReplayJob,
  insertReplayJob,
  recordReplayPage,
  type ReplayJob,
} from "../storage/replay-jobs.ts";
import { logEvent } from "../telemetry/log.ts";
import { configOf, recordAction, type Actor, type OperationContext } from "./context.ts";
import type { BulkReplayBody, RedriveBody } from "./inputs.ts";

export type { ReplayJob } from "../storage/replay-jobs.ts";

/** Disabled or removed destinations are refused: a replay goes only where the active configuration sends. */
function assertReplayable(config: RouterConfig, destination: string): void {
  const configured = config.destinations[destination];
  if (!configured) {
    throw new RouterError("unknown_destination", {
      message: `Destination "${destination}" is not in the active configuration.`,
    });
  }
  if (!configured.enabled) {
    throw new RouterError("destination_disabled", {
      message: `Destination "${destination}" is disabled in the active configuration.`,
    });
  }
}

/**
 * Replays one event to all of its destinations, or to the ones named: a new generation of each delivery, with the
 * same `webhook-id` (the event id) and a fresh attempt count. Refuses a purged event (nothing to send), one held in
 * quarantine (its release routes it), and a destination not configured or disabled.
 */
export async function replayEvent(
  ctx: OperationContext,
  actor: Actor,
  eventId: string,
  named: readonly string[] | undefined,
) {
  const config = configOf(ctx);
  // The event's own shard: its id names it.
  const db = eventDb(ctx.env, config, eventId);
  const found = await getEventDetail(db, await loadPayloadProtection(ctx.env, config), eventId);
  if (!found) throw new RouterError("not_found", { detail: `event ${eventId}` });
  if (found.event.payloadPurgedAt !== null) throw new RouterError("payload_purged", { detail: `event ${eventId}` });
  // A held event goes anywhere only through its release, which routes it with the signed merchant.
  if (found.event.quarantine && found.event.quarantine.releasedAt === undefined) {
    throw new RouterError("event_quarantined", { detail: `event ${eventId}` });
  }
  const routeOf = new Map(found.deliveries.map((d) => [d.destination, d.route]));
  const destinations = named ?? [...routeOf.keys()];
  if (destinations.length === 0) throw new RouterError("no_destinations", { detail: `event ${eventId}` });
  for (const destination of destinations) assertReplayable(config, destination);
  const targets = destinations.map((destination) => ({
    eventId,
    destination,
    route: routeOf.get(destination) ?? "replay",
  }));
  const { keys, enqueued } = await replayDeliveries(ctx.env, config, targets, ctx.clock);
  const deliveries = keys.map(({ destination, generation }) => ({ destination, generation }));
  await recordAction(ctx, actor, "replay", eventId, { deliveries, enqueued });
  return { eventId, deliveries, enqueued };
}

type JobFilter = ReplayFilter & { since: number; until: number };

/**
 * Starts a bulk replay job: counts what the filter matches now in every shard, records the job (its filter, its
 * bound, its start) in the control database and enqueues its first page, at the start of the first shard. The pages
 * run in the consumer, one shard after the other, so no request holds the whole set.
 */
async function startJob(
  ctx: OperationContext,
  actor: Actor,
  action: "bulk_replay_start" | "redrive",
  filter: JobFilter,
  maxCount: number,
) {
  const { env, clock } = ctx;
  const config = configOf(ctx);
  if (filter.destination !== undefined) assertReplayable(config, filter.destination);
  // Dead letters are counted through their own index, over the same window the walk takes (when the event was
  // received); other states have no index and are counted by a scan (admin API only). Each shard counts its own,
  // the shards at once.
  const counts = await Promise.all(
    shardsOf(env, config).map(({ db }) =>
      filter.status === "dead" ? countDeadLetters(db, filter) : countCurrentDeliveries(db, filter),
    ),
  );
  const matched = counts.reduce((sum, n) => sum + n, 0);
  const replayId = `rpl_${crypto.randomUUID().replace(/-/g, "")}`;
  const startedAt = clock.now();
  await insertReplayJob(env.DB, { id: replayId, filter, maxCount, startedAt });
  if (matched === 0) {
    await recordReplayPage(
      env.DB,
      replayId,
      { cursor: null, scanned: 0, replayed: 0, skipped: 0, state: "done" },
      startedAt,
    );
  } else {
    try {
      await enqueueDeliveries(env.DELIVERY_QUEUE, [
        { body: replayPageMessage(replayId, replayShards(config)[0]!, null) },
      ]);
    } catch (err) {
      await endReplayJob(env.DB, replayId, "failed", clock.now(), "the first page could not be enqueued");
      throw new RouterError("storage_unavailable", { detail: `replay ${replayId}: ${errorMessage(err)}` });
    }
  }
  const window = {
    status: filter.status,
    destination: filter.destination ?? null,
    since: filter.since,
    until: filter.until,
  };
  await recordAction(ctx, actor, action, null, { replayId, filter: window, maxCount, matched });
  return { matched, job: (await getReplayJob(env.DB, replayId))! };
}

const windowOf = (body: { since: string; until: string }) => ({
  since: Date.parse(body.since),
  until: Date.parse(body.until),
});

/** A bulk replay by filter: every delivery in a state, to a destination or any, received in a window, at most N. */
export function startBulkReplay(ctx: OperationContext, actor: Actor, body: z.output<typeof BulkReplayBody>) {
  return startJob(
    ctx,
    actor,
    "bulk_replay_start",
    { status: body.status, destination: body.destination, ...windowOf(body) },
    body.maxCount,
  );
}

/** A redrive: the dead deliveries of events received in a window, at most `maxCount` (what the operator saw). */
export function redriveDeadLetters(ctx: OperationContext, actor: Actor, body: z.output<typeof RedriveBody>) {
  return startJob(
    ctx,
    actor,
    "redrive",
    { status: "dead", destination: body.destination, ...windowOf(body) },
    body.maxCount,
  );
}

/** A bulk replay job's state and progress. */
export async function replayJob(ctx: OperationContext, replayId: string): Promise<ReplayJob> {
  const job = await getReplayJob(ctx.env.DB, replayId);
  if (!job) throw new RouterError("not_found", { detail: `replay ${replayId}` });
  return job;
}

/** Stops a running replay job; its next page sees it and ends. */
export async function cancelBulkReplay(ctx: OperationContext, actor: Actor, replayId: string): Promise<ReplayJob> {
  const job = await replayJob(ctx, replayId);
  if (job.state !== "running" || !(await endReplayJob(ctx.env.DB, replayId, "cancelled", ctx.clock.now()))) {
    throw new RouterError("replay_not_running", { detail: `${replayId} is ${job.state}` });
  }
  await recordAction(ctx, actor, "bulk_replay_cancel", null, { replayId, replayed: job.replayed });
  return (await getReplayJob(ctx.env.DB, replayId))!;
}

/** The body as the provider's adapter reads it: JSON when it is JSON; the adapter decides what else means. */
function jsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // Not JSON: the adapter is given the text alone, as ingest gives it.
    return undefined;
  }
}

/**
 * Releases a quarantined event and enqueues what its routing plans. The stored bytes were verified when they came
 * in. A merchant hold identifies them again with the provider's adapter and routes them with the merchant the
 * signed body names (none, for a URL merchant that could not be one and a body that names none). A body hold
 * (unidentified, ambiguous, over the records cap, oversized envelope fields) is the operator's call that the body
 * is what it was stored as: it is routed whole, as its stored type, with the merchant it was stored with.
 */
export async function releaseQuarantinedEvent(ctx: OperationContext, actor: Actor, eventId: string) {
  const { env, providers, clock } = ctx;
  const config = configOf(ctx);
  // The event's own shard (its id names it): the row, its release and, if the queue refuses, its outbox.
  const db = eventDb(env, config, eventId);
  const held = await loadQuarantined(db, await loadPayloadProtection(env, config), eventId);
  if (!held) throw new RouterError("not_found", { detail: `event ${eventId}` });
  const hold = held.quarantine;
  if (!hold || hold.releasedAt !== undefined) throw new RouterError("not_quarantined", { detail: `event ${eventId}` });
  if (!held.body) throw new RouterError("payload_purged", { detail: `event ${eventId}` });
  const source = config.sources[held.source];
  const adapter = source ? providers[source.provider] : undefined;
  if (!source || !adapter)
    throw new RouterError("source_misconfigured", { detail: `source ${held.source} is no longer configured` });
  const text = new TextDecoder().decode(held.body);
  const payload = jsonOrUndefined(text);
  let identity: EventIdentity | undefined;
  let queryMerchant: string | undefined;
  if (hold.reason === "merchant_mismatch" || hold.reason === "merchant_url") {
    const identified = adapter.identify({
      sourceName: held.source,
      source,
      pathEvent: held.eventType,
      payload,
      text,
      bodySha256: await sha256Hex(held.body),
    });
    identity = identified.ok
      ? (identified.events.find((e) => e.idempotencyKey === held.idempotencyKey) ?? identified.events[0])
      : undefined;
    queryMerchant = identity && hold.field ? readScalar(identity.subject, hold.field) : undefined;
    if (!identity || (hold.reason === "merchant_mismatch" && queryMerchant === undefined)) {
      throw new RouterError("not_releasable", {
        detail: `${eventId}: ${hold.field ?? "the merchant field"} is not in the body`,
      });
    }
  } else {
    identity = {
      eventType: held.eventType,
      providerId: held.providerId,
      providerTimestamp: null,
      idempotencyKey: held.idempotencyKey,
      subject: payload,
    };
    queryMerchant = held.merchantId ?? undefined;
  }
  const { decision, quarantine, merchantId } = intake(identity, {
    config,
    sourceName: held.source,
    source,
    adapter,
    queryMerchant,
  });
  if (quarantine)
    throw new RouterError("not_releasable", {
      detail: `${eventId}: still contradicts ${quarantine.field ?? quarantine.reason}`,
    });
  const now = clock.now();
  const deliveries = plannedDeliveries(decision.deliveries, now);
  const applied = await releaseQuarantined(db, eventId, held.version, merchantId, deliveries, now);
  if (!applied) throw new RouterError("not_quarantined", { detail: `${eventId}: released or changed meanwhile` });
  const enqueued = await enqueueOrKeep(
    env,
    deliveries.length > 0 ? [{ body: messageFor(eventId, deliveries) }] : [],
    now,
    () => db,
  );
  logEvent("info", "quarantine_released", { eventId, reason: hold.reason, deliveries: deliveries.length });
  await recordAction(
    ctx,
    actor,
    "quarantine_release",
    eventId,
    { reason: hold.reason, merchantId, deliveries: decision.deliveries },
    now,
  );
  return { eventId, merchantId, deliveries: decision.deliveries, enqueued };
}
