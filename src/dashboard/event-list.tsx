/** @jsxImportSource hono/jsx */
import type { EventSummary } from "../operations/events.ts";
import { Pill, When } from "./pills.tsx";

type CurrentDelivery = EventSummary["destinations"][number];

/** Past this many destinations on one page, their states share one column instead of a column each. */
const MAX_DESTINATION_COLUMNS = 6;

/** A current delivery's state in one word: held and failing (pending, attempted) are told apart from pending. */
export function deliveryState(d: CurrentDelivery): string {
  if (d.status !== "pending") return d.status;
  if (d.heldReason) return "held";
  return d.attempts > 0 ? "failing" : "pending";
}

function DeliveryPill(props: { delivery: CurrentDelivery; named?: boolean }) {
  const { delivery: d } = props;
  const state = deliveryState(d);
  const detail = d.heldReason
    ? `held: ${d.heldReason.replaceAll("_", " ")}`
    : `${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`;
  return (
    <Pill
      status={state}
      label={props.named ? `${d.destination}: ${state}` : state}
      title={`${d.destination}: ${state}, ${detail}`}
    />
  );
}

/** What stands in for an event's deliveries when it has none: unrouted, or held in quarantine. */
function withoutDeliveries(e: EventSummary): string | null {
  if (e.quarantine && !e.quarantine.releasedAt) return "quarantined";
  if (e.routing === "unrouted") return "unrouted";
  return e.destinations.length === 0 ? "none" : null;
}

/**
 * The events list's table: when each event was received (relative, the exact UTC time on hover), what it is, and
 * each destination's state as a pill, a column per destination seen on the page. An unrouted event says so instead
 * of "0 delivered". On a phone each row stacks, every cell under its column's name.
 */
export function EventTable(props: { events: EventSummary[]; now: number; caption: string }) {
  const { events, now } = props;
  const names = [...new Set(events.flatMap((e) => e.destinations.map((d) => d.destination)))].sort();
  const perColumn = names.length > 0 && names.length <= MAX_DESTINATION_COLUMNS;
  const span = perColumn ? names.length : 1;
  return (
    <table class="stack">
      <caption class="notice">{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">Received</th>
          <th scope="col">Source / type</th>
          <th scope="col">Merchant</th>
          <th scope="col">Order</th>
          {perColumn ? names.map((name) => <th scope="col">{name}</th>) : <th scope="col">Deliveries</th>}
        </tr>
      </thead>
      <tbody>
        {events.map((e) => {
          const instead = withoutDeliveries(e);
          const of = new Map(e.destinations.map((d) => [d.destination, d]));
          return (
            <tr>
              <td data-label="Received">
                <a href={`/dashboard/events/${e.id}`}>
                  <When at={e.receivedAt} now={now} />
                </a>
              </td>
              <td data-label="Source / type">
                {e.source} / {e.eventType}
              </td>
              <td data-label="Merchant">{e.merchantId ?? "—"}</td>
              <td data-label="Order">{e.providerId ?? "—"}</td>
              {instead !== null && e.destinations.length === 0 ? (
                <td data-label="Deliveries" colspan={span}>
                  <Pill status={instead} />
                </td>
              ) : perColumn ? (
                names.map((name) => {
                  const d = of.get(name);
                  return (
                    <td data-label={name}>
                      {d ? (
                        <DeliveryPill delivery={d} />
                      ) : (
                        <span class="muted" title={`not sent to ${name}`}>
                          —
                        </span>
                      )}
                    </td>
                  );
                })
              ) : (
                <td data-label="Deliveries">
                  <ul class="pills">
                    {e.destinations.map((d) => (
                      <li>
                        <DeliveryPill delivery={d} named />
                      </li>
                    ))}
                  </ul>
                </td>
              )}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
