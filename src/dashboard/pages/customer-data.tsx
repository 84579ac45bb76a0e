/** @jsxImportSource hono/jsx */
import { configOf } from "../../operations/context.ts";
import { purgeCustomerOrder } from "../../operations/customer-data.ts";
import { searchEvents } from "../../operations/events.ts";
import { CustomerPurgeBody, ListEventsQuery, parseInput } from "../../operations/inputs.ts";
import { Page } from "../layout.tsx";
import { actorFor, contextFor, field, iso, type Pages } from "../shared.ts";

/** The most events of the order the confirmation lists: the search's largest page. */
const LISTED = 200;

/** A purge request from its form: the order, the source (or every source), and the reason for the audit log. */
const purgeOf = (form: Record<string, unknown>) =>
  parseInput(CustomerPurgeBody, {
    providerOrderId: field(form.providerOrderId),
    source: field(form.source),
    reason: field(form.reason),
  });

/** The request again, as hidden fields: what the confirmation posts, and what "Purge again" posts. */
function PurgeFields(props: { providerOrderId: string; source?: string; reason?: string }) {
  return (
    <>
      <input type="hidden" name="providerOrderId" value={props.providerOrderId} />
      <input type="hidden" name="source" value={props.source ?? ""} />
      <input type="hidden" name="reason" value={props.reason ?? ""} />
    </>
  );
}

/**
 * A customer's deletion request: the order (and source) in a form, then a page that lists the events it would purge,
 * then an explicit POST that purges them (audited) and shows what was purged.
 */
export const customerDataPages: Pages = (app, deps) => {
  app.get("/customer-data", (c) => {
    const sources = Object.keys(configOf(contextFor(c, deps)).sources).sort();
    return c.html(
      <Page title="Customer data" signedIn>
        <p>
          A customer's deletion request purges the body, the Draft answer, the response excerpts and the data key of
          every event of one order, now, whatever the retention horizon. The events stay (ids, dedup key, body hash,
          delivery state); deliveries still pending end dead (<code>payload_purged</code>). Each purge is recorded in
          the <a href="/dashboard/audit">audit log</a>.
        </p>
        <form method="get" action="/dashboard/customer-data/purge">
          <fieldset>
            <legend>Purge an order</legend>
            <label>
              Order id (Weedmaps orderId, Leaf Trade order id)
              <input name="providerOrderId" required maxlength={255} />
            </label>
            <label>
              Source
              <select name="source">
                <option value="">every source</option>
                {sources.map((name) => (
                  <option value={name}>{name}</option>
                ))}
              </select>
            </label>
            <label>
              Reason (for the audit log, e.g. a ticket number; no customer data)
              <input name="reason" maxlength={200} />
            </label>
            <button type="submit">Review</button>
          </fieldset>
        </form>
        <p class="muted">
          The next page lists the events it would purge; nothing is purged until you confirm there.{" "}
          <a href="/dashboard/keys">Payload keys</a> shows the key ring.
        </p>
      </Page>,
    );
  });

  // The confirmation: a read, so it is a GET; the events of the order through its index, before anything is purged.
  app.get("/customer-data/purge", async (c) => {
    const body = purgeOf(c.req.query());
    const found = await searchEvents(
      contextFor(c, deps),
      parseInput(ListEventsQuery, { orderId: body.providerOrderId, source: body.source, limit: LISTED }),
    );
    const n = found.events.length;
    return c.html(
      <Page title="Purge an order" signedIn>
        <p class="notice" role="status">
          {n === 0
            ? "No stored event has this order id."
            : `${found.nextCursor ? `More than ${n}` : n} event${n === 1 ? "" : "s"} of order ${body.providerOrderId}${body.source ? ` from ${body.source}` : ""} will have their payloads purged.`}
        </p>
        <p>
          Purged: each event's body, its Draft answer, its destination response excerpts and its data key. Kept: the
          events' ids, dedup key, body hash and delivery state. Deliveries still pending end dead. This cannot be
          undone; events already purged are counted as such. Reason recorded: {body.reason ?? "none"}.
        </p>
        {n > 0 && (
          <table>
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col">Received</th>
                <th scope="col">Source / type</th>
              </tr>
            </thead>
            <tbody>
              {found.events.map((e) => (
                <tr>
                  <td>
                    <a href={`/dashboard/events/${e.id}`}>{e.id}</a>
                  </td>
                  <td>{iso(e.receivedAt)}</td>
                  <td>
                    {e.source} / {e.eventType}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {n > 0 && (
          <form method="post" action="/dashboard/customer-data/purge">
            <PurgeFields {...body} />
            <button type="submit">Purge order {body.providerOrderId}</button>
          </form>
        )}
        <p>
          <a href="/dashboard/customer-data">Back to customer data</a>
        </p>
      </Page>,
    );
  });

  // The purge itself. Its result is this answer, not a redirect: the event ids it names go nowhere else.
  app.post("/customer-data/purge", async (c) => {
    const body = purgeOf(await c.req.parseBody());
    const result = await purgeCustomerOrder(contextFor(c, deps), await actorFor(c), body);
    return c.html(
      <Page title="Order purged" signedIn>
        <p class="notice" role="status">
          Order {result.providerOrderId}: {result.purged.length} event{result.purged.length === 1 ? "" : "s"} purged
          now, {result.alreadyPurged} already purged. Recorded in the audit log ({result.auditId}).
        </p>
        {result.purged.length > 0 && (
          <ul aria-label="Purged events">
            {result.purged.map((id) => (
              <li>
                <a href={`/dashboard/events/${id}`}>{id}</a>
              </li>
            ))}
          </ul>
        )}
        {result.retry.length > 0 && (
          <>
            <p class="bad" role="alert">
              {result.retry.length} event{result.retry.length === 1 ? "" : "s"} changed while being purged (a delivery
              was written meanwhile) and {result.retry.length === 1 ? "is" : "are"} not purged yet: purge again.
            </p>
            <ul aria-label="Events to purge again">
              {result.retry.map((id) => (
                <li>
                  <a href={`/dashboard/events/${id}`}>{id}</a>
                </li>
              ))}
            </ul>
            <form method="post" action="/dashboard/customer-data/purge">
              <PurgeFields {...body} />
              <button type="submit">Purge again</button>
            </form>
          </>
        )}
        <p>
          <a href="/dashboard/customer-data">Back to customer data</a>
        </p>
      </Page>,
    );
  });
};
