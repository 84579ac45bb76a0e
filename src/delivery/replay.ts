import { loadPayloadProtection } from "../config/keys.ts";
import type { Clock } from "../core/clock.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import { addGenerations, plannedDeliveries, selectForReplay } from "../core/delivery-state.ts";
import { RouterError } from "../core/errors.ts";
import type { DeliveryKey } from "../core/event.ts";
import { readScalar } from "../core/fields.ts";
import { intake } from "../core/intake.ts";
import type { EventIdentity, ProviderRegistry } from "../core/providers/contract.ts";
import { sha256Hex } from "../core/signatures/inbound.ts";
import { loadQuarantined, releaseQuarantined } from "../storage/events.ts";
import { messageFor, messagesFor, REPLAY_PAGE_SIZE, replayPageMessage, type ReplayFilter, type ReplayPageMessage } from "../core/messages.ts";
import { countCurrentDeliveries, countDeadLetters, getEventDetail } from "../storage/admin-queries.ts";
import { endReplayJob, getReplayJob, insertReplayJob, recordReplayPage, replayPageEvents, type ReplayJob } from "../storage/replay-jobs.ts";
import { updateDeliveriesOfEvents } from "../storage/delivery-writes.ts";
import { enqueueDeliveries, enqueueOrKeep } from "../storage/queue.ts";
import { logEvent } from "../telemetry/log.ts";

/**
 * The replay service: the one part of delivery that admin calls. A replay adds a new generation of each delivery,
 * so the old attempts stay as history; the internal system gets the same `webhook-id` (the event id) with a fresh
 * attempt count. Disabled or removed destinations are refused.
 */
export function assertReplayable(config: RouterConfig, destination: string): void {
  const configured = config.destinations[destination];
  if (!configured) throw new RouterError("unknown_destination", { message: `Destination "${destination}" is not in the active configuration.` });
  if (!configured.enabled) throw new RouterError("destination_disabled", { message: `Destination "${destination}" is disabled in the active configuration.` });
}

/**
 * Replays one event to all of its destinations, or to the ones named: a new generation of each delivery, the old
 * ones kept as history. Refuses a purged event (nothing to send), one held in quarantine (its release routes it),
 * and a destination not configured or disabled.
 */
export async function replayEvent(env: Env, config: RouterConfig, eventId: string, named: readonly string[] | undefined, clock: Clock) {
  const found = await getEventDetail(env.DB, await loadPayloadProtection(env, config), eventId);
  if (!found) throw new RouterError("not_found");
  if (found.event.payloadPurgedAt !== null) throw new RouterError("payload_purged");
  // A held event goes anywhere only through its release, which routes it with the signed merchant.
  if (found.event.quarantine && found.event.quarantine.releasedAt === undefined) throw new RouterError("event_quarantined");
  const routeOf = new Map(found.deliveries.map((d) => [d.destination, d.route]));
  const destinations = named ?? [...routeOf.keys()];
  if (destinations.length === 0) throw new RouterError("no_destinations");
  destinations.forEach((destination) => assertReplayable(config, destination));
  return replayDeliveries(env, destinations.map((destination) => ({ eventId, destination, route: routeOf.get(destination) ?? "replay" })), clock);
}

export async function replayDeliveries(
  env: Env,
  targets: readonly { eventId: string; destination: string; route: string }[],
  clock: Clock,
): Promise<{ keys: DeliveryKey[]; enqueued: boolean }> {
  const now = clock.now();
  const added = await updateDeliveriesOfEvents(
    env.DB,
    targets.map((t) => t.eventId),
    (eventId, deliveries) => addGenerations(deliveries, targets.filter((t) => t.eventId === eventId), now),
  );
  const keys = [...added].flatMap(([eventId, refs]) => refs.map((ref) => ({ eventId, ...ref })));
  // If the outbox fails too, the request fails; the new generations are pending, and the sweeper's walk or a
  // second replay (which supersedes them) sends them.
  const enqueued = await enqueueOrKeep(env, messagesFor(keys), now);
  return { keys, enqueued };
}

/** The most deliveries one bulk replay may take; a bigger redrive is several jobs, each with its window. */
export const MAX_REPLAY_COUNT = 100_000;

/**
 * Starts a bulk replay job: counts what the filter matches now, records the job (its filter, its bound, its start)
 * and enqueues its first page. The pages run in the consumer (runReplayPage), so no request holds the whole set.
 */
export async function startBulkReplay(
  env: Env,
  config: RouterConfig,
  filter: ReplayFilter & { since: number; until: number },
  maxCount: number,
  clock: Clock,
): Promise<{ replayId: string; matched: number; job: ReplayJob }> {
  if (filter.destination !== undefined) assertReplayable(config, filter.destination);
  // Dead letters are counted through their own index, over the same window the walk takes (when the event was
  // received); other states have no index and are counted by a scan (admin API only).
  const matched = filter.status === "dead" ? await countDeadLetters(env.DB, filter) : await countCurrentDeliveries(env.DB, filter);
  const replayId = `rpl_${crypto.randomUUID().replace(/-/g, "")}`;
  const startedAt = clock.now();
  await insertReplayJob(env.DB, { id: replayId, filter, maxCount, startedAt });
  if (matched === 0) {
    await recordReplayPage(env.DB, replayId, { cursor: null, scanned: 0, replayed: 0, skipped: 0, state: "done" }, startedAt);
  } else {
    try {
      await enqueueDeliveries(env.DELIVERY_QUEUE, [{ body: replayPageMessage(replayId, null) }]);
    } catch (err) {
      await endReplayJob(env.DB, replayId, "failed", clock.now(), "the first page could not be enqueued");
      throw new RouterError("storage_unavailable", { detail: `replay ${replayId}: ${err instanceof Error ? err.message : String(err)}` });
    }
  }
  return { replayId, matched, job: (await getReplayJob(env.DB, replayId))! };
}

/**
 * One page of a bulk replay, run by the queue consumer: the next slice of the events in the job's window, the
 * deliveries in them the job takes (up to its bound), then the progress, and the next page before this one is
 * acknowledged. A cancelled or finished job stops at its next page.
 */
export async function runReplayPage(env: Env, config: RouterConfig, page: ReplayPageMessage, clock: Clock): Promise<void> {
  const job = await getReplayJob(env.DB, page.replayId);
  if (!job || job.state !== "running") {
    logEvent("info", "replay_page_skipped", { replayId: page.replayId, state: job?.state ?? "missing" });
    return;
  }
  const events = await replayPageEvents(env.DB, page.after, job.filter, REPLAY_PAGE_SIZE, job.filter.status === "dead");
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
  const { keys } = await replayDeliveries(env, targets, clock);
  const more = events.length === REPLAY_PAGE_SIZE && job.replayed + keys.length < job.maxCount;
  const cursor = events.at(-1)?.id ?? page.after;
  const recorded = await recordReplayPage(env.DB, job.id, { cursor, scanned: events.length, replayed: keys.length, skipped, state: more ? "running" : "done" }, clock.now());
  if (recorded && more) await enqueueDeliveries(env.DELIVERY_QUEUE, [{ body: replayPageMessage(job.id, cursor) }]);
  logEvent("info", "replay_page", { replayId: job.id, replayed: keys.length, skippedDisabled: skipped, more: recorded && more });
}

/** Stops a running replay job; its next page sees it and ends. */
export async function cancelBulkReplay(env: Env, replayId: string, clock: Clock): Promise<ReplayJob> {
  const job = await getReplayJob(env.DB, replayId);
  if (!job) throw new RouterError("not_found");
  if (job.state !== "running" || !(await endReplayJob(env.DB, replayId, "cancelled", clock.now()))) {
    throw new RouterError("replay_not_running", { detail: `${replayId} is ${job.state}` });
  }
  return (await getReplayJob(env.DB, replayId))!;
}

/** A page Queues gave up on: the job is recorded as failed with the reason, so it is neither lost nor silent. */
export async function failBulkReplay(env: Env, replayId: string, reason: string, clock: Clock): Promise<boolean> {
  return endReplayJob(env.DB, replayId, "failed", clock.now(), reason);
}

/**
 * Releases a quarantined event and enqueues what its routing plans. The stored bytes were verified when they came
 * in. A merchant hold identifies them again with the provider's adapter and routes them with the merchant the
 * signed body names (none, for a URL merchant that could not be one and a body that names none). A body hold
 * (unidentified, ambiguous, over the records cap, oversized envelope fields) is the operator's call that the body
 * is what it was stored as: it is routed whole, as its stored type, with the merchant it was stored with.
 */
export async function releaseQuarantinedEvent(
  env: Env,
  config: RouterConfig,
  providers: ProviderRegistry,
  eventId: string,
  clock: Clock,
): Promise<{ eventId: string; merchantId: string | null; deliveries: { destination: string; route: string }[]; enqueued: boolean }> {
  const held = await loadQuarantined(env.DB, await loadPayloadProtection(env, config), eventId);
  if (!held) throw new RouterError("not_found");
  const hold = held.quarantine;
  if (!hold || hold.releasedAt !== undefined) throw new RouterError("not_quarantined");
  if (!held.body) throw new RouterError("payload_purged");
  const source = config.sources[held.source];
  const adapter = source ? providers[source.provider] : undefined;
  if (!source || !adapter) throw new RouterError("source_misconfigured", { detail: `source ${held.source} is no longer configured` });
  const text = new TextDecoder().decode(held.body);
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch {
    payload = undefined;
  }
  let identity: EventIdentity | undefined;
  let queryMerchant: string | undefined;
  if (hold.reason === "merchant_mismatch" || hold.reason === "merchant_url") {
    const identified = adapter.identify({ sourceName: held.source, source, pathEvent: held.eventType, payload, text, bodySha256: await sha256Hex(held.body) });
    identity = identified.ok ? identified.events.find((e) => e.idempotencyKey === held.idempotencyKey) ?? identified.events[0] : undefined;
    queryMerchant = identity && hold.field ? readScalar(identity.subject, hold.field) : undefined;
    if (!identity || (hold.reason === "merchant_mismatch" && queryMerchant === undefined)) {
      throw new RouterError("not_releasable", { detail: `${eventId}: ${hold.field ?? "the merchant field"} is not in the body` });
    }
  } else {
    identity = { eventType: held.eventType, providerId: held.providerId, providerTimestamp: null, idempotencyKey: held.idempotencyKey, subject: payload };
    queryMerchant = held.merchantId ?? undefined;
  }
  const { decision, quarantine, merchantId } = intake(identity, { config, sourceName: held.source, source, adapter, queryMerchant });
  if (quarantine) throw new RouterError("not_releasable", { detail: `${eventId}: still contradicts ${quarantine.field ?? quarantine.reason}` });
  const now = clock.now();
  const deliveries = plannedDeliveries(decision.deliveries, now);
  const applied = await releaseQuarantined(env.DB, eventId, held.version, merchantId, deliveries, now);
  if (!applied) throw new RouterError("not_quarantined", { detail: `${eventId}: released or changed meanwhile` });
  const enqueued = await enqueueOrKeep(env, deliveries.length > 0 ? [{ body: messageFor(eventId, deliveries) }] : [], now);
  logEvent("info", "quarantine_released", { eventId, reason: hold.reason, deliveries: deliveries.length });
  return { eventId, merchantId, deliveries: decision.deliveries, enqueued };
}
