/** The status relay's operator action: an update forced past the forward-only rule, audited (docs/relay.md). */
import type { z } from "@hono/zod-openapi";
import { loadPayloadProtection } from "../config/keys.ts";
import { RouterError } from "../core/errors.ts";
import { reasonProblem, RELAY_TYPE_PREFIX } from "../core/relay.ts";
import { acceptUpdate, readOrderState } from "../relay/accept.ts";
import { searchEvents } from "./events.ts";
import { configOf, recordAction, type Actor, type OperationContext } from "./context.ts";
import { ListEventsQuery, type RelayForceBody } from "./inputs.ts";

export async function forceRelayUpdate(
  ctx: OperationContext,
  actor: Actor,
  source: string,
  orderId: string,
  body: z.output<typeof RelayForceBody>,
) {
  const config = configOf(ctx);
  if (!Object.hasOwn(config.relay, source))
    throw new RouterError("relay_not_configured", { detail: `no relay for "${source}"` });
  const request = {
    status: body.status,
    ...(body.canceledReason === undefined ? {} : { canceledReason: body.canceledReason }),
  };
  const problem = reasonProblem(request);
  if (problem) throw new RouterError("relay_reason_not_allowed", { detail: problem });
  const accepted = await acceptUpdate({
    env: ctx.env,
    config,
    clock: ctx.clock,
    protection: await loadPayloadProtection(ctx.env, config),
    source,
    orderId,
    request,
    requestedBy: `operator:${actor.tokenId}`,
    forced: true,
  });
  const auditId = await recordAction(ctx, actor, "relay_force", accepted.updateId, {
    source,
    status: body.status,
    previous: accepted.previous,
    reason: body.reason,
  });
  return { ...accepted, auditId };
}

/** The most events an order's timeline shows: more than any order has (a Draft, a Create, a handful of statuses). */
const TIMELINE_EVENTS = 100;

/**
 * An order as the relay sees it: its Weedmaps status now and what set it, and its timeline, newest first: the
 * callbacks that came in (the Draft, the Create, Weedmaps' later statuses) and the updates that went out, each with
 * its delivery to Weedmaps (the update's own page has every attempt and what Weedmaps answered).
 */
export async function orderRelayView(ctx: OperationContext, source: string, orderId: string) {
  const config = configOf(ctx);
  if (!Object.hasOwn(config.relay, source))
    throw new RouterError("relay_not_configured", { detail: `no relay for "${source}"` });
  const [state, timeline] = await Promise.all([
    readOrderState(ctx.env, config, source, orderId),
    searchEvents(ctx, ListEventsQuery.parse({ source, orderId, limit: TIMELINE_EVENTS })),
  ]);
  if (!state.create && timeline.events.length === 0)
    throw new RouterError("relay_order_unknown", { detail: "no event of this order is stored" });
  return {
    source,
    orderId,
    status: state.status,
    setBy: state.updateId,
    createEventId: state.create?.id ?? null,
    listingId: state.create?.merchantId ?? null,
    updates: state.updates,
    destination: config.relay[source]!.destination,
    events: timeline.events.map((e) => ({
      ...e,
      direction: e.eventType.startsWith(RELAY_TYPE_PREFIX) ? ("out" as const) : ("in" as const),
    })),
  };
}
