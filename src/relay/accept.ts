/**
 * Accepting a status update (docs/relay.md): read the order's state from its events, decide, and store the update
 * as an event of the order with one delivery, to the Weedmaps Orders API destination, sent through the queue like
 * any delivery. The internal system's request (src/ingest/relay.ts) and an operator's forced update
 * (src/operations/relay.ts) both come here.
 */
import { shardDb } from "../config/shards.ts";
import { writeFailure } from "../core/capacity.ts";
import type { Clock } from "../core/clock.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import { plannedDeliveries } from "../core/delivery-state.ts";
import type { PayloadProtection } from "../core/envelope.ts";
import { errorMessage, RouterError } from "../core/errors.ts";
import type { NewEvent } from "../core/event.ts";
import { eventDigests } from "../core/event-id.ts";
import { messageFor } from "../core/messages.ts";
import {
  decideUpdate,
  orderState,
  relayEventType,
  relayIdempotencyKey,
  RELAY_ROUTE,
  type OrderState,
  type RelayBody,
  type RelayRequest,
} from "../core/relay.ts";
import { placeEvent, writableShards } from "../core/shards.ts";
import { sha256Hex } from "../core/signatures/inbound.ts";
import { insertEvents } from "../storage/events.ts";
import { objectEventRows, objectEventsIn } from "../storage/object-events.ts";
import { enqueueOrKeep } from "../storage/queue.ts";
import { shardMaps } from "../storage/shard-maps.ts";
import { logEvent } from "../telemetry/log.ts";
import { shardOfEventId } from "../core/event-id.ts";

/** Two requests that read one state race for one id; the loser reads again. Past this, the caller retries. */
const ACCEPT_ROUNDS = 3;

export interface AcceptInput {
  env: Env;
  config: RouterConfig;
  clock: Clock;
  protection: PayloadProtection;
  source: string;
  orderId: string;
  request: RelayRequest;
  /** The internal system's name, or `operator:<token id>` for a forced update. */
  requestedBy: string;
  forced: boolean;
  /**
   * Called before a new update is stored, with the shards that take new events: the request path refuses here when
   * none has room (503 storage_full), as ingest does. A duplicate or a refused update stores nothing and is not asked.
   */
  beforeStore?: (writable: readonly number[]) => Promise<void>;
}

export interface Accepted {
  updateId: string | null;
  /** Nothing new was stored: the order already had this status (or an identical request won the race). */
  duplicate: boolean;
  /** The order's status before this request. */
  previous: string | null;
}

export async function readOrderState(
  env: Env,
  config: RouterConfig,
  source: string,
  orderId: string,
): Promise<OrderState> {
  // Every shard the order's events may be in (the map may have moved it), for its source.
  const object = await objectEventsIn(
    config.storage.shards.map((s) => s.id),
    [source],
    orderId,
    source,
  );
  const rows = await Promise.all(
    config.storage.shards.map(({ id }) => objectEventRows(shardDb(env, config, id), id, object)),
  );
  return orderState(rows.flat(), config.relay[source]!.transitions);
}

export async function acceptUpdate(input: AcceptInput): Promise<Accepted> {
  const { env, config, clock, source, orderId, request } = input;
  const relay = config.relay[source]!;
  for (let round = 0; round < ACCEPT_ROUNDS; round++) {
    const state = await readOrderState(env, config, source, orderId);
    const decision = decideUpdate(state, request, relay.transitions, input.forced);
    if (decision.kind === "refused") throw new RouterError(decision.code, { detail: decision.detail });
    if (decision.kind === "conflict")
      throw new RouterError("relay_transition_refused", {
        detail: decision.detail,
        details: [`current status: ${decision.current}`],
      });
    if (decision.kind === "unchanged") return { updateId: decision.updateId, duplicate: true, previous: state.status };

    const stored = await storeUpdate(input, state, clock.now());
    if (stored !== null) return { updateId: stored, duplicate: false, previous: state.status };
    // Another request took this update's place first: decided again against it (the same update is then unchanged).
    logEvent("info", "relay_update_raced", { source, round });
  }
  throw new RouterError("relay_busy", { detail: "the order kept changing under concurrent updates" });
}

async function storeUpdate(
  { env, config, protection, source, orderId, request, requestedBy, forced, beforeStore }: AcceptInput,
  state: OrderState,
  now: number,
): Promise<string | null> {
  const relay = config.relay[source]!;
  const idempotencyKey = relayIdempotencyKey(source, orderId, state.updates + 1);
  const maps = await shardMaps(env.DB, (readOnly) => writableShards(config.storage.shards, readOnly), now);
  await beforeStore?.(maps.current.writable);
  const placement = placeEvent(
    await eventDigests({ source, providerId: orderId, idempotencyKey }),
    maps.versions,
    now,
    config.storage.retryWindowHours * 3_600_000,
  );
  const body: RelayBody = {
    status: request.status,
    ...(request.canceledReason === undefined ? {} : { canceledReason: request.canceledReason }),
    requestedBy,
    forced,
  };
  const bytes = new TextEncoder().encode(JSON.stringify(body)).buffer as ArrayBuffer;
  const event: NewEvent = {
    id: placement.id,
    idempotencyKey,
    ingestId: crypto.randomUUID(),
    source,
    eventType: relayEventType(request.status),
    merchantId: state.create!.merchantId,
    providerId: orderId,
    contentType: "application/json",
    body: bytes,
    bodySha256: await sha256Hex(bytes),
    receivedAt: now,
    // Its place among the order's updates: a delivery overtaken by a later update is stale, never sent.
    providerTimestamp: now,
    quarantine: null,
  };
  const deliveries = plannedDeliveries([{ destination: relay.destination, route: RELAY_ROUTE }], now);
  let result: Awaited<ReturnType<typeof insertEvents>>[number] | undefined;
  try {
    [result] = await insertEvents(shardDb(env, config, placement.shard), protection, [{ event, deliveries }], false);
  } catch (err) {
    // A database D1 says is full answers storage_full, so the system retries later; anything else is transient.
    throw writeFailure(err);
  }
  if (result!.outcome !== "inserted") return null;
  // Stored with its delivery pending: if neither the queue nor the outbox takes the message, the sweeper's walk
  // finds the row; the update is accepted either way.
  await enqueueOrKeep(env, [{ body: messageFor(event.id, deliveries, event.ingestId) }], now, (id) =>
    shardDb(env, config, shardOfEventId(id) ?? 0),
  ).catch((err: unknown) =>
    logEvent("error", "enqueue_failed", {
      eventIds: [event.id],
      errorMessage: errorMessage(err),
      note: "stored with its delivery pending; the sweeper's walk re-enqueues it when it reaches it",
    }),
  );
  logEvent("debug", "relay_update_accepted", {
    eventId: event.id,
    source,
    status: request.status,
    requestedBy,
    forced: forced || undefined,
  });
  return event.id;
}
