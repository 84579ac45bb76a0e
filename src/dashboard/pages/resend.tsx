/** @jsxImportSource hono/jsx */
/**
 * Sending one event again, always through a confirmation page first. Two actions, never one for the other:
 * - replay (a redrive, when the delivery is dead): for a destination that does NOT have the event yet (dead,
 *   failing, held, pending);
 * - send again: for a destination that already HAS it (delivered), which then gets it a second time.
 *
 * Route shapes (the event page and the dead-letter list link to the GET ones; the POSTs are the confirmations' forms):
 *   GET  /dashboard/events/:id/replay?destination=NAME      confirm a replay to one destination
 *   GET  /dashboard/events/:id/replay                       confirm a replay to every destination that lacks it
 *   POST /dashboard/events/:id/replay      confirm=1 [destination=NAME …]   does it; without confirm=1 → the GET
 *   GET  /dashboard/events/:id/send-again?destination=NAME  confirm sending again to a destination that has it
 *   POST /dashboard/events/:id/send-again  confirm=1 destination=NAME        does it; without confirm=1 → the GET
 * Either POST that names a destination in the other action's state goes to that action's confirmation instead. Both
 * end on the event page with `?replayed=<destination or "all">`.
 *
 * Helpers for links to them: `replayHref`, `sendAgainHref`, and `<ResendLink>` (the right one of the two for a
 * delivery's status, as a link styled as a button).
 */
import type { DeliveryDetail } from "../../operations/events.ts";
import { viewEvent } from "../../operations/events.ts";
import { EventIdParams, parseInput, ReplayEventBody } from "../../operations/inputs.ts";
import { replayEvent } from "../../operations/replays.ts";
import { Page } from "../layout.tsx";
import { Pill, When } from "../pills.tsx";
import { actorFor, contextFor, type DashboardContext, type Pages } from "../shared.ts";

const base = (eventId: string) => `/dashboard/events/${encodeURIComponent(eventId)}`;

/** The confirmation of a replay to `destination`, or to every destination that lacks the event. */
export const replayHref = (eventId: string, destination?: string) =>
  `${base(eventId)}/replay${destination === undefined ? "" : `?destination=${encodeURIComponent(destination)}`}`;

/** The confirmation of sending an event again to a destination that has it. */
export const sendAgainHref = (eventId: string, destination: string) =>
  `${base(eventId)}/send-again?destination=${encodeURIComponent(destination)}`;

/**
 * The one action a delivery offers, as a link to its confirmation: "Send again to NAME…" when it was delivered,
 * else "Replay to NAME…" (`verb` "Redrive" on the dead-letter list).
 */
export function ResendLink(props: {
  eventId: string;
  destination: string;
  status: string;
  verb?: string;
  /** The link's accessible name where its text repeats on the page (one per row), e.g. "Redrive <event> to erp". */
  label?: string;
}) {
  const delivered = props.status === "delivered";
  const text = delivered ? `Send again to ${props.destination}…` : `${props.verb ?? "Replay"} to ${props.destination}…`;
  return (
    <a
      class={delivered ? "button secondary" : "button"}
      aria-label={props.label}
      href={delivered ? sendAgainHref(props.eventId, props.destination) : replayHref(props.eventId, props.destination)}
    >
      {text}
    </a>
  );
}

/** Each destination's current delivery: its newest generation (older ones are replay history). */
function currentDeliveries(deliveries: readonly DeliveryDetail[]): DeliveryDetail[] {
  const newest = new Map<string, DeliveryDetail>();
  for (const d of deliveries) {
    const seen = newest.get(d.destination);
    if (!seen || d.generation > seen.generation) newest.set(d.destination, d);
  }
  return [...newest.values()].sort((a, b) => (a.destination < b.destination ? -1 : 1));
}

/** Replay is for a destination that lacks the event; a stale one was superseded by a newer state on purpose. */
const lacksIt = (d: DeliveryDetail) => d.status !== "delivered" && d.status !== "stale";

const eventIdOf = (c: DashboardContext) => parseInput(EventIdParams, { eventId: c.req.param("id") }).eventId;

/** A destination named in a query or a form: refused as the admin API refuses a bad one. */
function namedDestinations(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  const list = Array.isArray(value) ? value : [value];
  return parseInput(ReplayEventBody, { destinations: list }).destinations;
}

function DeliveryFacts(props: { delivery: DeliveryDetail; now: number }) {
  const { delivery: d, now } = props;
  return (
    <li>
      {d.destination}: <Pill status={d.status} /> generation {d.generation}, {d.attempts} attempt
      {d.attempts === 1 ? "" : "s"}
      {d.lastStatusCode !== null ? `, last answer ${d.lastStatusCode}` : ""}
      {d.lastError ? `, last error ${d.lastError}` : ""}
      {d.completedAt !== null && (
        <>
          , {d.status === "delivered" ? "delivered" : "ended"} <When at={d.completedAt} now={now} exact />
        </>
      )}
    </li>
  );
}

export const resendPages: Pages = (app, deps) => {
  // The replay confirmation: a read, so it is a GET; what would be sent where, before anything is.
  app.get("/events/:id/replay", async (c) => {
    const eventId = eventIdOf(c);
    const named = namedDestinations(c.req.queries("destination"));
    const ctx = contextFor(c, deps);
    const { event, deliveries } = await viewEvent(ctx, eventId);
    const now = ctx.clock.now();
    const current = currentDeliveries(deliveries);
    const chosen = named ? current.filter((d) => named.includes(d.destination)) : current.filter(lacksIt);
    // A destination that has it is sent again only through its own, explicit action.
    const delivered = chosen.find((d) => d.status === "delivered");
    if (named && delivered) return c.redirect(sendAgainHref(eventId, delivered.destination), 303);
    // Named but never routed there: replayEvent decides (it sends to a configured destination by the "replay" route).
    const unrouted = (named ?? []).filter((name) => !current.some((d) => d.destination === name));
    const targets = [...chosen.map((d) => d.destination), ...unrouted];
    const dead = chosen.length > 0 && chosen.every((d) => d.status === "dead");
    return c.html(
      <Page title={dead ? "Redrive an event" : "Replay an event"} signedIn>
        <p>
          <a href={base(eventId)}>{eventId}</a> ({event.source} / {event.eventType}, received{" "}
          <When at={event.receivedAt} now={now} exact />
          ).
        </p>
        {targets.length === 0 ? (
          <p class="notice" role="status">
            Every destination already has this event. To deliver it to one a second time, use its "Send again" on the{" "}
            <a href={base(eventId)}>event page</a>.
          </p>
        ) : (
          <>
            <p class="notice" role="status">
              {dead ? "Redrive" : "Replay"} to {targets.join(", ")}: {targets.length === 1 ? "it does" : "they do"} not
              have this event yet.
            </p>
            {chosen.length > 0 && (
              <ul>
                {chosen.map((d) => (
                  <DeliveryFacts delivery={d} now={now} />
                ))}
              </ul>
            )}
            <p>
              Each is sent again as a new generation, with the same webhook-id (its receiver dedupes on it). Recorded in
              the audit log.
            </p>
            <form method="post" action={replayHref(eventId)} class="actions">
              <input type="hidden" name="confirm" value="1" />
              {targets.map((name) => (
                <input type="hidden" name="destination" value={name} />
              ))}
              <button type="submit">
                {dead ? "Redrive" : "Replay"} to {targets.join(", ")}
              </button>
              <a href={base(eventId)}>Cancel</a>
            </form>
          </>
        )}
      </Page>,
    );
  });

  // Sending again to a destination that has the event: its own confirmation, which says it will get it twice.
  app.get("/events/:id/send-again", async (c) => {
    const eventId = eventIdOf(c);
    const [destination] = namedDestinations(c.req.query("destination")) ?? [];
    if (destination === undefined) return c.redirect(replayHref(eventId), 303);
    const ctx = contextFor(c, deps);
    const { event, deliveries } = await viewEvent(ctx, eventId);
    const now = ctx.clock.now();
    const d = currentDeliveries(deliveries).find((x) => x.destination === destination);
    if (d?.status !== "delivered") return c.redirect(replayHref(eventId, destination), 303);
    return c.html(
      <Page title="Send an event again" signedIn>
        <p>
          <a href={base(eventId)}>{eventId}</a> ({event.source} / {event.eventType}, received{" "}
          <When at={event.receivedAt} now={now} exact />
          ).
        </p>
        <p class="notice" role="status">
          {destination} already has this event: it was delivered.
        </p>
        <ul>
          <DeliveryFacts delivery={d} now={now} />
        </ul>
        <p>
          Sending again delivers it to {destination} a second time, as a new generation with the same webhook-id: a
          receiver that dedupes on it ignores the copy; one that does not processes it twice. Recorded in the audit log.
        </p>
        <form method="post" action={`${base(eventId)}/send-again`} class="actions">
          <input type="hidden" name="confirm" value="1" />
          <input type="hidden" name="destination" value={destination} />
          <button type="submit">Send again to {destination}</button>
          <a href={base(eventId)}>Cancel</a>
        </form>
      </Page>,
    );
  });

  app.post("/events/:id/replay", async (c) => {
    const eventId = eventIdOf(c);
    const form = await c.req.parseBody({ all: true });
    const named = namedDestinations(form.destination);
    // Only the confirmation's own form replays: any other post (an older page's button) is shown it first.
    if (form.confirm !== "1") return c.redirect(replayHref(eventId, named?.length === 1 ? named[0] : undefined), 303);
    const ctx = contextFor(c, deps);
    const current = currentDeliveries((await viewEvent(ctx, eventId)).deliveries);
    const delivered = current.find((d) => d.status === "delivered" && named?.includes(d.destination));
    if (delivered) return c.redirect(sendAgainHref(eventId, delivered.destination), 303);
    // An event with no delivery at all is the operation's to refuse (no_destinations), as the admin API does.
    const targets = named ?? (current.length === 0 ? undefined : current.filter(lacksIt).map((d) => d.destination));
    if (targets?.length === 0) return c.redirect(replayHref(eventId), 303);
    const { deliveries } = await replayEvent(ctx, await actorFor(c), eventId, targets);
    const sent = deliveries.map((d) => d.destination);
    return c.redirect(`${base(eventId)}?replayed=${encodeURIComponent(sent.length === 1 ? sent[0]! : "all")}`, 303);
  });

  app.post("/events/:id/send-again", async (c) => {
    const eventId = eventIdOf(c);
    const form = await c.req.parseBody();
    const [destination] = namedDestinations(form.destination) ?? [];
    if (destination === undefined) return c.redirect(replayHref(eventId), 303);
    if (form.confirm !== "1") return c.redirect(sendAgainHref(eventId, destination), 303);
    const ctx = contextFor(c, deps);
    const d = currentDeliveries((await viewEvent(ctx, eventId)).deliveries).find((x) => x.destination === destination);
    if (d?.status !== "delivered") return c.redirect(replayHref(eventId, destination), 303);
    await replayEvent(ctx, await actorFor(c), eventId, [destination]);
    return c.redirect(`${base(eventId)}?replayed=${encodeURIComponent(destination)}`, 303);
  });
};
