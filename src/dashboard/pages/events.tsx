/** @jsxImportSource hono/jsx */
import { loadPayloadProtection } from "../../config/keys.ts";
import { loadConfig, readVar } from "../../config/load.ts";
import { decodeCursor, EventCursorSchema, encodeCursor } from "../../core/cursor.ts";
import { HELD_DUE } from "../../core/delivery-state.ts";
import { RouterError } from "../../core/errors.ts";
import { payloadOf, piiPathsOf, redactedPayloadOf, type PayloadView } from "../../core/payload-view.ts";
import { REDACTED } from "../../core/redact.ts";
import { tokenId } from "../../core/signatures/token-id.ts";
import { replayEvent } from "../../delivery/replay.ts";
import { getEventDetail, searchEvents, SEARCH_WINDOW, type EventFilter, type EventStatusFilter } from "../../storage/admin-queries.ts";
import { failAttempt, guardAttempt, passAttempt } from "../../storage/attempts.ts";
import { auditId, insertAudit } from "../../storage/audit.ts";
import { isSealedText } from "../../storage/payloads.ts";
import { Page } from "../layout.tsx";
import { revealTokenMatches } from "../session.ts";
import { attemptOf, iso, msOf, PAGE_SIZE, pretty, text, type DashboardContext, type Pages } from "../shared.ts";

const STATUSES: EventStatusFilter[] = ["routed", "unrouted", "delivered", "failing", "dead", "quarantined"];
const EVENT_ID = "evt_[0-9a-f]{32}";

/** Events: the search (every page a bounded read), one event with its attempts, replay, and the audited reveal. */
export const eventPages: Pages = (app, { providers, clock }) => {
  app.get("/events", async (c) => {
    const q = c.req.query();
    const status = STATUSES.find((s) => s === q.status);
    const filter: EventFilter = {
      source: text(q.source, 63),
      eventType: text(q.type, 63),
      merchantId: text(q.merchant),
      providerId: text(q.orderId),
      status,
      since: msOf(q.since),
      until: msOf(q.until),
    };
    const cursor = q.cursor ? decodeCursor(q.cursor, EventCursorSchema) : null;
    const found = await searchEvents(c.env.DB, filter, cursor ? { receivedAt: cursor[0], id: cursor[1] } : null, PAGE_SIZE);
    const query = new URLSearchParams(Object.entries(q).filter(([k, v]) => k !== "cursor" && v));
    const next = found.next && `/dashboard/events?${query.toString() ? `${query.toString()}&` : ""}cursor=${encodeCursor([found.next.receivedAt, found.next.id])}`;
    const summary =
      found.events.length === 0 ? "No events match" : `${found.events.length} event${found.events.length === 1 ? "" : "s"}, newest first`;
    return c.html(
      <Page title="Events" signedIn>
        <form method="get" action="/dashboard/events">
          <fieldset>
            <legend>Search</legend>
            <label>Source<input name="source" value={q.source ?? ""} /></label>
            <label>Event type<input name="type" value={q.type ?? ""} /></label>
            <label>Merchant<input name="merchant" value={q.merchant ?? ""} /></label>
            <label>Order id<input name="orderId" value={q.orderId ?? ""} /></label>
            <label>
              Status
              <select name="status">
                <option value="">any</option>
                {STATUSES.map((s) => (
                  <option value={s} selected={s === status}>{s}</option>
                ))}
              </select>
            </label>
            <label>Since (UTC)<input name="since" type="datetime-local" value={q.since ?? ""} aria-label="Since" /></label>
            <label>Until (UTC)<input name="until" type="datetime-local" value={q.until ?? ""} aria-label="Until" /></label>
            <button type="submit">Search</button>
          </fieldset>
        </form>
        <table>
          <caption class="notice">
            {summary}
            {found.scanned !== null ? ` among the ${found.scanned} event${found.scanned === 1 ? "" : "s"} looked at (a page looks at ${SEARCH_WINDOW} at most; "Older events" goes on).` : "."}
          </caption>
          <thead>
            <tr><th scope="col">Received</th><th scope="col">Source / type</th><th scope="col">Merchant</th><th scope="col">Order</th><th scope="col">Deliveries</th></tr>
          </thead>
          <tbody>
            {found.events.map((e) => (
              <tr>
                <td><a href={`/dashboard/events/${e.id}`}>{iso(e.receivedAt)}</a></td>
                <td>{e.source} / {e.eventType}</td>
                <td>{e.merchantId ?? "—"}</td>
                <td>{e.providerId ?? "—"}</td>
                <td>
                  {e.quarantine ? "quarantined " : ""}
                  {e.deliveries.delivered} delivered, {e.deliveries.pending + e.deliveries.failing} pending, <span class={e.deliveries.dead ? "bad" : ""}>{e.deliveries.dead} dead</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {next && <a href={next}>Older events</a>}
      </Page>,
    );
  });

  /** The event page, redacted unless `revealedAs` names the audit entry of a reveal made just now. */
  async function eventPage(c: DashboardContext, eventId: string, revealedAs: string | null, refused = false) {
    const config = loadConfig(c.env, providers);
    const found = await getEventDetail(c.env.DB, await loadPayloadProtection(c.env, config), eventId);
    if (!found) throw new RouterError("not_found");
    const { event, deliveries } = found;
    const paths = piiPathsOf(config, providers, event.source);
    const reveal = revealedAs !== null;
    const show = (bytes: Uint8Array): PayloadView => (reveal ? payloadOf(bytes) : redactedPayloadOf(bytes, paths));
    const payload = event.body && show(event.body);
    const answered = event.responder?.answered.body ? show(event.responder.answered.body) : null;
    const excerpt = async (stored: string | null) =>
      stored === null || !isSealedText(stored) ? stored ?? "—" : reveal ? await event.payloads.openText("excerpt", stored) : REDACTED;
    const shown = await Promise.all(deliveries.map(async (d) => ({ ...d, log: await Promise.all(d.attemptLog.map(async (a) => ({ ...a, excerpt: await excerpt(a.responseExcerpt) }))) })));
    const flash = c.req.query("replayed");
    const canReveal = readVar(c.env, "ADMIN_REVEAL_TOKEN") !== undefined && event.body !== null && !reveal;
    // Replay history: only each destination's newest generation can be replayed.
    const latest = new Map<string, number>();
    for (const d of deliveries) latest.set(d.destination, Math.max(latest.get(d.destination) ?? 0, d.generation));
    return c.html(
      <Page title={`${event.source} / ${event.eventType}`} signedIn>
        {flash && <p class="notice" role="status">Replay enqueued for {flash}.</p>}
        {reveal && <p class="notice" role="status">Customer data shown. This reveal is recorded in the audit log ({revealedAs}).</p>}
        {refused && <p class="bad" role="alert">That is not the reveal token. Nothing was shown.</p>}
        <table>
          <tbody>
            <tr><th scope="row">Event</th><td>{event.id}</td></tr>
            <tr><th scope="row">Received</th><td>{iso(event.receivedAt)}</td></tr>
            <tr><th scope="row">Merchant</th><td>{event.merchantId ?? "—"}</td></tr>
            <tr><th scope="row">Order id</th><td>{event.providerId ?? "—"}</td></tr>
            <tr><th scope="row">Body SHA-256</th><td>{event.bodySha256}</td></tr>
            {event.quarantine && <tr><th scope="row">Quarantine</th><td>{event.quarantine.releasedAt ? `released ${iso(event.quarantine.releasedAt)}` : `held: ${event.quarantine.reason}`}</td></tr>}
          </tbody>
        </table>
        <h2>Payload</h2>
        {payload ? (
          <>
            <p>{reveal ? "Unredacted." : payload.redacted.length > 0 ? `Customer data redacted: ${payload.redacted.join(", ")}.` : "Nothing to redact."}</p>
            {event.responder ? (
              <div class="columns">
                <section aria-label="What Weedmaps asked"><h3>What Weedmaps asked</h3><pre>{pretty(payload)}</pre></section>
                <section aria-label="What it was answered">
                  <h3>What it was answered ({event.responder.answered.status ?? "no answer"})</h3>
                  <pre>{answered ? pretty(answered) : event.responder.error ?? "—"}</pre>
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
                <p><button type="submit">Reveal customer data</button> <span class="muted">Each reveal is recorded in the audit log.</span></p>
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
              {d.attempts} attempt{d.attempts === 1 ? "" : "s"}{d.lastError ? `, last error ${d.lastError}` : ""}
              {d.status === "pending" && d.nextAttemptAt < HELD_DUE ? `, next at ${iso(d.nextAttemptAt)}` : ""}
            </p>
            <table>
              <thead><tr><th scope="col">#</th><th scope="col">At</th><th scope="col">Status</th><th scope="col">Latency</th><th scope="col">Error</th><th scope="col">Response</th></tr></thead>
              <tbody>
                {d.log.map((a) => (
                  <tr>
                    <td>{a.attempt}</td>
                    <td>{iso(a.at)}</td>
                    <td>{a.statusCode ?? "—"}</td>
                    <td>{Math.round(a.latencyMs)} ms</td>
                    <td>{a.errorClass ?? "—"}</td>
                    <td>{a.excerpt}</td>
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
            <p><button type="submit">Replay to all its destinations</button></p>
          </form>
        )}
      </Page>,
      refused ? 403 : 200,
    );
  }

  app.get(`/events/:id{${EVENT_ID}}`, (c) => eventPage(c, c.req.param("id"), null));

  app.post(`/events/:id{${EVENT_ID}}/reveal`, async (c) => {
    const eventId = c.req.param("id");
    const form = await c.req.parseBody();
    const typed = typeof form.reveal_token === "string" ? form.reveal_token : "";
    const token = readVar(c.env, "ADMIN_REVEAL_TOKEN");
    if (!token) throw new RouterError("reveal_forbidden", { detail: "ADMIN_REVEAL_TOKEN is not set: revealing is off" });
    const now = clock.now();
    const attempt = attemptOf(c, "reveal", now, eventId);
    const standing = await guardAttempt(attempt);
    if (!revealTokenMatches(c.env, typed)) {
      await failAttempt(attempt, typed ? "token_mismatch" : "token_missing");
      return eventPage(c, eventId, null, true);
    }
    await passAttempt(attempt, standing);
    const config = loadConfig(c.env, providers);
    const id = auditId(now);
    const found = await getEventDetail(c.env.DB, await loadPayloadProtection(c.env, config), eventId);
    if (!found) throw new RouterError("not_found");
    // Recorded before anything is shown: a reveal the log does not hold never happened.
    await insertAudit(c.env.DB, {
      id,
      at: now,
      action: "reveal",
      tokenId: await tokenId(token),
      eventId,
      detail: { fields: piiPathsOf(config, providers, found.event.source), answer: found.event.responder?.answered.body ? true : false, via: "dashboard", requestId: c.get("requestId") ?? null },
    });
    return eventPage(c, eventId, id);
  });

  app.post(`/events/:id{${EVENT_ID}}/replay`, async (c) => {
    const eventId = c.req.param("id");
    const form = await c.req.parseBody();
    const destination = text(form.destination, 63);
    await replayEvent(c.env, loadConfig(c.env, providers), eventId, destination ? [destination] : undefined, clock);
    return c.redirect(`/dashboard/events/${eventId}?replayed=${encodeURIComponent(destination ?? "all")}`, 303);
  });
};
