/** @jsxImportSource hono/jsx */
import { readVar } from "../../config/load.ts";
import { HELD_DUE } from "../../core/delivery-state.ts";
import { RouterError } from "../../core/errors.ts";
import { revealEvent, searchEvents, SEARCH_WINDOW, viewEvent, type EventView } from "../../operations/events.ts";
import {
  EVENT_STATUSES,
  EventIdParams,
  ListEventsQuery,
  parseInput,
  ReplayEventBody,
} from "../../operations/inputs.ts";
import { releaseQuarantinedEvent, replayEvent } from "../../operations/replays.ts";
import { logEvent } from "../../telemetry/log.ts";
import { Page } from "../layout.tsx";
import {
  actorFor,
  contextFor,
  field,
  iso,
  PAGE_SIZE,
  pretty,
  timeField,
  type DashboardContext,
  type Pages,
} from "../shared.ts";

/** The event id of a page's path, refused as the admin API refuses it. */
const eventIdOf = (c: DashboardContext) => parseInput(EventIdParams, { eventId: c.req.param("id") }).eventId;

/** Events: the search (every page a bounded read), one event with its attempts, replay, and the audited reveal. */
export const eventPages: Pages = (app, deps) => {
  app.get("/events", async (c) => {
    const q = c.req.query();
    const search = parseInput(ListEventsQuery, {
      source: field(q.source),
      eventType: field(q.type),
      merchantId: field(q.merchant),
      orderId: field(q.orderId),
      status: field(q.status),
      since: timeField(q.since),
      until: timeField(q.until),
      limit: PAGE_SIZE,
      cursor: field(q.cursor),
    });
    const status = search.status;
    const found = await searchEvents(contextFor(c, deps), search);
    const query = new URLSearchParams(Object.entries(q).filter(([k, v]) => k !== "cursor" && v));
    const next =
      found.nextCursor &&
      `/dashboard/events?${query.toString() ? `${query.toString()}&` : ""}cursor=${found.nextCursor}`;
    const summary =
      found.events.length === 0
        ? "No events match"
        : `${found.events.length} event${found.events.length === 1 ? "" : "s"}, newest first`;
    return c.html(
      <Page title="Events" signedIn>
        <form method="get" action="/dashboard/events">
          <fieldset>
            <legend>Search</legend>
            <label>
              Source
              <input name="source" value={q.source ?? ""} />
            </label>
            <label>
              Event type
              <input name="type" value={q.type ?? ""} />
            </label>
            <label>
              Merchant
              <input name="merchant" value={q.merchant ?? ""} />
            </label>
            <label>
              Order id
              <input name="orderId" value={q.orderId ?? ""} />
            </label>
            <label>
              Status
              <select name="status">
                <option value="">any</option>
                {EVENT_STATUSES.map((s) => (
                  <option value={s} selected={s === status}>
                    {s}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Since (UTC)
              <input name="since" type="datetime-local" value={q.since ?? ""} aria-label="Since" />
            </label>
            <label>
              Until (UTC)
              <input name="until" type="datetime-local" value={q.until ?? ""} aria-label="Until" />
            </label>
            <button type="submit">Search</button>
          </fieldset>
        </form>
        <table>
          <caption class="notice">
            {summary}
            {found.scanned !== null
              ? ` among the ${found.scanned} event${found.scanned === 1 ? "" : "s"} looked at (a page looks at ${SEARCH_WINDOW} at most in each shard; "Older events" goes on).`
              : "."}
          </caption>
          <thead>
            <tr>
              <th scope="col">Received</th>
              <th scope="col">Source / type</th>
              <th scope="col">Merchant</th>
              <th scope="col">Order</th>
              <th scope="col">Deliveries</th>
            </tr>
          </thead>
          <tbody>
            {found.events.map((e) => (
              <tr>
                <td>
                  <a href={`/dashboard/events/${e.id}`}>{iso(e.receivedAt)}</a>
                </td>
                <td>
                  {e.source} / {e.eventType}
                </td>
                <td>{e.merchantId ?? "—"}</td>
                <td>{e.providerId ?? "—"}</td>
                <td>
                  {e.quarantine ? "quarantined " : ""}
                  {e.deliveries.delivered} delivered, {e.deliveries.pending + e.deliveries.failing} pending,{" "}
                  <span class={e.deliveries.dead ? "bad" : ""}>{e.deliveries.dead} dead</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {next && <a href={next}>Older events</a>}
      </Page>,
    );
  });

  /** The event page: redacted, or revealed by an audited reveal just now (`view.auditId`). */
  function eventPage(c: DashboardContext, view: EventView, refused: RouterError | null = null) {
    const { event, deliveries: shown, payload, answered, revealed: reveal, auditId: revealedAs } = view;
    const deliveries = shown;
    const flash = c.req.query("replayed");
    const released = c.req.query("released") === "1";
    const canReveal = readVar(c.env, "ADMIN_REVEAL_TOKEN") !== undefined && event.body !== null && !reveal;
    // Replay history: only each destination's newest generation can be replayed.
    const latest = new Map<string, number>();
    for (const d of deliveries) latest.set(d.destination, Math.max(latest.get(d.destination) ?? 0, d.generation));
    return c.html(
      <Page title={`${event.source} / ${event.eventType}`} signedIn>
        {flash && (
          <p class="notice" role="status">
            Replay enqueued for {flash}.
          </p>
        )}
        {released && (
          <p class="notice" role="status">
            Released from quarantine.
          </p>
        )}
        {reveal && (
          <p class="notice" role="status">
            Customer data shown. This reveal is recorded in the audit log ({revealedAs}).
          </p>
        )}
        {refused && (
          <p class="bad" role="alert">
            {refused.code === "reveal_token_required"
              ? "A reveal needs the reveal token."
              : "That is not the reveal token."}{" "}
            Nothing was shown.
          </p>
        )}
        <table>
          <tbody>
            <tr>
              <th scope="row">Event</th>
              <td>{event.id}</td>
            </tr>
            <tr>
              <th scope="row">Received</th>
              <td>{iso(event.receivedAt)}</td>
            </tr>
            <tr>
              <th scope="row">Merchant</th>
              <td>{event.merchantId ?? "—"}</td>
            </tr>
            <tr>
              <th scope="row">Order id</th>
              <td>{event.providerId ?? "—"}</td>
            </tr>
            <tr>
              <th scope="row">Body SHA-256</th>
              <td>{event.bodySha256}</td>
            </tr>
            {event.quarantine && (
              <tr>
                <th scope="row">Quarantine</th>
                <td>
                  {event.quarantine.releasedAt
                    ? `released ${iso(event.quarantine.releasedAt)}`
                    : `held: ${event.quarantine.reason}`}
                </td>
              </tr>
            )}
          </tbody>
        </table>
        {event.quarantine && !event.quarantine.releasedAt && event.body && (
          <form method="post" action={`/dashboard/events/${event.id}/release`}>
            <p>
              <button type="submit">Release from quarantine</button>{" "}
              <span class="muted">Routes it with the merchant its signed body names. Recorded in the audit log.</span>
            </p>
          </form>
        )}
        <h2>Payload</h2>
        {payload ? (
          <>
            <p>
              {reveal
                ? "Unredacted."
                : payload.redacted.length > 0
                  ? `Customer data redacted: ${payload.redacted.join(", ")}.`
                  : "Nothing to redact."}
            </p>
            {event.responder ? (
              <div class="columns">
                <section aria-label="What Weedmaps asked">
                  <h3>What Weedmaps asked</h3>
                  <pre>{pretty(payload)}</pre>
                </section>
                <section aria-label="What it was answered">
                  <h3>What it was answered ({event.responder.answered.status ?? "no answer"})</h3>
                  <pre>{answered ? pretty(answered) : (event.responder.error ?? "—")}</pre>
                </section>
              </div>
            ) : (
              <pre>{pretty(payload)}</pre>
            )}
            {canReveal && (
              <form method="post" action={`/dashboard/events/${event.id}/reveal`}>
                <label>
                  Reveal token
                  <input name="reveal_token" type="password" autocomplete="off" required />
                </label>
                <p>
                  <button type="submit">Reveal customer data</button>{" "}
                  <span class="muted">Each reveal is recorded in the audit log.</span>
                </p>
              </form>
            )}
          </>
        ) : (
          <p>Purged on {iso(event.payloadPurgedAt)} (retention or a deletion request).</p>
        )}
        <h2>Deliveries</h2>
        {shown.length === 0 && <p>None: no route matched{event.quarantine ? ", or it is held in quarantine" : ""}.</p>}
        {shown.map((d) => (
          <section aria-label={`Delivery to ${d.destination}, generation ${d.generation}`}>
            <h3>
              {d.destination} · generation {d.generation} · <span class={`status-${d.status}`}>{d.status}</span>
              {d.heldReason ? ` (held: ${d.heldReason})` : ""}
            </h3>
            <p>
              {d.attempts} attempt{d.attempts === 1 ? "" : "s"}
              {d.lastError ? `, last error ${d.lastError}` : ""}
              {d.status === "pending" && d.nextAttemptAt < HELD_DUE ? `, next at ${iso(d.nextAttemptAt)}` : ""}
            </p>
            <table>
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">At</th>
                  <th scope="col">Status</th>
                  <th scope="col">Latency</th>
                  <th scope="col">Error</th>
                  <th scope="col">Response</th>
                </tr>
              </thead>
              <tbody>
                {d.attemptLog.map((a) => (
                  <tr>
                    <td>{a.attempt}</td>
                    <td>{iso(a.at)}</td>
                    <td>{a.statusCode ?? "—"}</td>
                    <td>{Math.round(a.latencyMs)} ms</td>
                    <td>{a.errorClass ?? "—"}</td>
                    <td>{a.responseExcerpt ?? "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {d.generation === latest.get(d.destination) && event.body && (
              <form class="inline" method="post" action={`/dashboard/events/${event.id}/replay`}>
                <input type="hidden" name="destination" value={d.destination} />
                <button type="submit">Replay to {d.destination}</button>
              </form>
            )}
          </section>
        ))}
        {event.body && deliveries.length > 0 && (
          <form method="post" action={`/dashboard/events/${event.id}/replay`}>
            <p>
              <button type="submit">Replay to all its destinations</button>
            </p>
          </form>
        )}
      </Page>,
      refused ? refused.status : 200,
    );
  }

  app.get("/events/:id", async (c) => eventPage(c, await viewEvent(contextFor(c, deps), eventIdOf(c))));

  app.post("/events/:id/reveal", async (c) => {
    const eventId = eventIdOf(c);
    const form = await c.req.parseBody();
    const typed = typeof form.reveal_token === "string" && form.reveal_token !== "" ? form.reveal_token : undefined;
    const ctx = contextFor(c, deps);
    try {
      return eventPage(c, await revealEvent(ctx, await actorFor(c), eventId, typed));
    } catch (err) {
      // A wrong or missing token shows the event as it was, redacted, with the refusal; every other error (a
      // lockout, an unknown event) is the error page.
      if (!(err instanceof RouterError) || (err.code !== "reveal_forbidden" && err.code !== "reveal_token_required"))
        throw err;
      logEvent("warn", "request_rejected", {
        requestId: c.get("requestId") ?? null,
        code: err.code,
        status: err.status,
        eventId,
        detail: err.detail,
      });
      return eventPage(c, await viewEvent(ctx, eventId), err);
    }
  });

  app.post("/events/:id/replay", async (c) => {
    const eventId = eventIdOf(c);
    const form = await c.req.parseBody();
    // No destination field: every destination. A field that is there must name one.
    const body = parseInput(ReplayEventBody, "destination" in form ? { destinations: [form.destination] } : {});
    await replayEvent(contextFor(c, deps), await actorFor(c), eventId, body.destinations);
    return c.redirect(
      `/dashboard/events/${eventId}?replayed=${encodeURIComponent(body.destinations?.[0] ?? "all")}`,
      303,
    );
  });

  app.post("/events/:id/release", async (c) => {
    const eventId = eventIdOf(c);
    await releaseQuarantinedEvent(contextFor(c, deps), await actorFor(c), eventId);
    return c.redirect(`/dashboard/events/${eventId}?released=1`, 303);
  });
};
