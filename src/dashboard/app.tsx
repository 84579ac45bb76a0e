/** @jsxImportSource hono/jsx */
import { Hono } from "hono";
import { csrf } from "hono/csrf";
import { loadPayloadProtection } from "../config/keys.ts";
import { loadConfig, readVar } from "../config/load.ts";
import { decodeCursor, DeliveryCursorSchema, EventCursorSchema, nextCursor } from "../core/cursor.ts";
import { HELD_DUE } from "../core/delivery-state.ts";
import type { RouterDeps } from "../core/deps.ts";
import { RouterError } from "../core/errors.ts";
import { piiPathsOf, redactedPayloadOf, type PayloadView } from "../core/payload-view.ts";
import { REDACTED } from "../core/redact.ts";
import { controlDestination, destinationControls } from "../control/client.ts";
import { replayEvent } from "../delivery/replay.ts";
import { destinationHealth, getEventDetail, listCurrentDeliveries, listEvents, type EventFilter, type EventStatusFilter } from "../storage/admin-queries.ts";
import { auditId, insertAudit } from "../storage/audit.ts";
import { isSealedText } from "../storage/payloads.ts";
import { tokenId } from "../core/signatures/token-id.ts";
import { iso, Page } from "./layout.tsx";
import { endSession, hasSession, startSession, tokenMatches } from "./session.ts";

type DashboardEnv = { Bindings: Env };
const PAGE_SIZE = 50;
const STATUSES: EventStatusFilter[] = ["routed", "unrouted", "delivered", "failing", "dead", "quarantined"];

/** A JSON payload, indented for reading; anything else as it is. */
function pretty(view: PayloadView): string {
  if (view.encoding !== "utf8") return view.data;
  try {
    return JSON.stringify(JSON.parse(view.data), null, 2);
  } catch {
    return view.data;
  }
}

const msOf = (value: string | undefined) => {
  if (!value) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
};
const text = (value: string | undefined, max = 255) => (value && value.length <= max ? value : undefined);

/**
 * The dashboard at /dashboard: sign-in with the admin token, then events (search and keyset pages), one event with
 * its payload (redacted) and every attempt, dead letters, and destinations with their controls. Every read is a
 * bounded, keyset or indexed query; every state-changing form is a same-origin POST (Hono's csrf check).
 */
export function createDashboard({ providers, clock }: RouterDeps) {
  const app = new Hono<DashboardEnv>();
  // A form posted from another origin is refused (403) before anything else runs.
  app.use("*", csrf());

  app.get("/sign-in", (c) => c.html(<SignIn failed={c.req.query("failed") === "1"} />));
  app.post("/sign-in", async (c) => {
    const form = await c.req.parseBody();
    const typed = typeof form.token === "string" ? form.token : "";
    if (!tokenMatches(c.env, typed)) return c.redirect("/dashboard/sign-in?failed=1", 303);
    await startSession(c, clock.now());
    return c.redirect("/dashboard/events", 303);
  });
  app.post("/sign-out", (c) => {
    endSession(c);
    return c.redirect("/dashboard/sign-in", 303);
  });

  // Everything below needs a session; without one, a page sends the browser to sign in.
  app.use("*", async (c, next) => {
    if (!(await hasSession(c, clock.now()))) return c.redirect("/dashboard/sign-in", 303);
    await next();
  });

  app.get("/", (c) => c.redirect("/dashboard/events", 303));

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
    const events = await listEvents(c.env.DB, filter, cursor ? { receivedAt: cursor[0], id: cursor[1] } : null, PAGE_SIZE);
    const next = nextCursor(events, PAGE_SIZE, (e) => [e.receivedAt, e.id]);
    const query = new URLSearchParams(Object.entries(q).filter(([k, v]) => k !== "cursor" && v));
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
            <label>Since<input name="since" type="datetime-local" value={q.since ?? ""} /></label>
            <label>Until<input name="until" type="datetime-local" value={q.until ?? ""} /></label>
            <button type="submit">Search</button>
          </fieldset>
        </form>
        <table>
          <caption class="notice">{events.length === 0 ? "No events match." : `${events.length} event(s), newest first`}</caption>
          <thead>
            <tr><th scope="col">Received</th><th scope="col">Source / type</th><th scope="col">Merchant</th><th scope="col">Order</th><th scope="col">Deliveries</th></tr>
          </thead>
          <tbody>
            {events.map((e) => (
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
        {next && <a href={`/dashboard/events?${query.toString() ? `${query.toString()}&` : ""}cursor=${next}`}>Older events</a>}
      </Page>,
    );
  });

  app.get("/events/:id{evt_[0-9a-f]{32}}", async (c) => {
    const eventId = c.req.param("id");
    const config = loadConfig(c.env, providers);
    const found = await getEventDetail(c.env.DB, await loadPayloadProtection(c.env, config), eventId);
    if (!found) throw new RouterError("not_found");
    const { event, deliveries } = found;
    const paths = piiPathsOf(config, providers, event.source);
    const payload = event.body && redactedPayloadOf(event.body, paths);
    const answered = event.responder?.answered.body ? redactedPayloadOf(event.responder.answered.body, paths) : null;
    const flash = c.req.query("replayed");
    // Replay history: only each destination's newest generation can be replayed.
    const latest = new Map<string, number>();
    for (const d of deliveries) latest.set(d.destination, Math.max(latest.get(d.destination) ?? 0, d.generation));
    return c.html(
      <Page title={`${event.source} / ${event.eventType}`} signedIn>
        {flash && <p class="notice" role="status">Replay enqueued for {flash}.</p>}
        <table>
          <tbody>
            <tr><th scope="row">Event</th><td>{event.id}</td></tr>
            <tr><th scope="row">Received</th><td>{iso(event.receivedAt)}</td></tr>
            <tr><th scope="row">Merchant</th><td>{event.merchantId ?? "—"}</td></tr>
            <tr><th scope="row">Order id</th><td>{event.providerId ?? "—"}</td></tr>
            <tr><th scope="row">Body SHA-256</th><td>{event.bodySha256}</td></tr>
          </tbody>
        </table>
        <h2>Payload</h2>
        {payload ? (
          <>
            <p>{payload.redacted.length > 0 ? `Customer data redacted: ${payload.redacted.join(", ")}.` : "Nothing to redact."}</p>
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
          </>
        ) : (
          <p>Purged on {iso(event.payloadPurgedAt)} (retention or a deletion request).</p>
        )}
        <h2>Deliveries</h2>
        {deliveries.map((d) => (
          <section aria-label={`Delivery to ${d.destination}, generation ${d.generation}`}>
            <h3>
              {d.destination} · generation {d.generation} · <span class={`status-${d.status}`}>{d.status}</span>
              {d.heldReason ? ` (held: ${d.heldReason})` : ""}
            </h3>
            <p>
              {d.attempts} attempt(s){d.lastError ? `, last error ${d.lastError}` : ""}
              {d.status === "pending" && d.nextAttemptAt < HELD_DUE ? `, next at ${iso(d.nextAttemptAt)}` : ""}
            </p>
            <table>
              <thead><tr><th scope="col">#</th><th scope="col">At</th><th scope="col">Status</th><th scope="col">Latency</th><th scope="col">Error</th><th scope="col">Response</th></tr></thead>
              <tbody>
                {d.attemptLog.map((a) => (
                  <tr>
                    <td>{a.attempt}</td>
                    <td>{iso(a.at)}</td>
                    <td>{a.statusCode ?? "—"}</td>
                    <td>{Math.round(a.latencyMs)} ms</td>
                    <td>{a.errorClass ?? "—"}</td>
                    <td>{a.responseExcerpt === null ? "—" : isSealedText(a.responseExcerpt) ? REDACTED : a.responseExcerpt}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {d.generation === latest.get(d.destination) && event.body && (
              <form class="inline" method="post" action={`/dashboard/events/${event.id}/replay`}>
                <input type="hidden" name="destination" value={d.destination} />
                <button type="submit" aria-label={`Replay to ${d.destination}`}>Replay to {d.destination}</button>
              </form>
            )}
          </section>
        ))}
        {event.body && deliveries.length > 0 && (
          <form method="post" action={`/dashboard/events/${event.id}/replay`}>
            <button type="submit">Replay to all its destinations</button>
          </form>
        )}
      </Page>,
    );
  });

  app.post("/events/:id{evt_[0-9a-f]{32}}/replay", async (c) => {
    const eventId = c.req.param("id");
    const form = await c.req.parseBody();
    const destination = typeof form.destination === "string" && form.destination ? form.destination : undefined;
    const config = loadConfig(c.env, providers);
    await replayEvent(c.env, config, eventId, destination ? [destination] : undefined, clock);
    return c.redirect(`/dashboard/events/${eventId}?replayed=${encodeURIComponent(destination ?? "all")}`, 303);
  });

  app.get("/dead-letters", async (c) => {
    const q = c.req.query();
    const cursor = q.cursor ? decodeCursor(q.cursor, DeliveryCursorSchema) : null;
    const dead = await listCurrentDeliveries(c.env.DB, { status: "dead", destination: text(q.destination, 63) }, cursor ? { eventId: cursor[0], destination: cursor[1] } : null, PAGE_SIZE);
    const next = nextCursor(dead, PAGE_SIZE, (d) => [d.eventId, d.destination]);
    return c.html(
      <Page title="Dead letters" signedIn>
        <table>
          <caption class="notice">{dead.length === 0 ? "No dead deliveries." : `${dead.length} dead deliver${dead.length === 1 ? "y" : "ies"}`}</caption>
          <thead><tr><th scope="col">Event</th><th scope="col">Destination</th><th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Redrive</th></tr></thead>
          <tbody>
            {dead.map((d) => (
              <tr>
                <td><a href={`/dashboard/events/${d.eventId}`}>{d.eventId}</a></td>
                <td>{d.destination}</td>
                <td>{d.attempts}</td>
                <td>{d.lastError ?? "—"}</td>
                <td>
                  <form class="inline" method="post" action={`/dashboard/events/${d.eventId}/replay`}>
                    <input type="hidden" name="destination" value={d.destination} />
                    <button type="submit" aria-label={`Redrive ${d.eventId} to ${d.destination}`}>Redrive</button>
                  </form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {next && <a href={`/dashboard/dead-letters?cursor=${next}`}>More</a>}
      </Page>,
    );
  });

  app.get("/destinations", async (c) => {
    const config = loadConfig(c.env, providers);
    const since = clock.now() - 24 * 3_600_000;
    const rows = new Map((await destinationHealth(c.env.DB, since)).map((r) => [r.destination, r]));
    const names = Object.keys(config.destinations).sort();
    const controls = new Map(await Promise.all(names.map(async (name) => [name, await destinationControls(c.env, name, clock.now()).catch(() => null)] as const)));
    return c.html(
      <Page title="Destinations" signedIn>
        <table>
          <caption class="notice">Last 24 hours</caption>
          <thead><tr><th scope="col">Destination</th><th scope="col">Delivered</th><th scope="col">Failing</th><th scope="col">Dead</th><th scope="col">State</th><th scope="col">Held</th><th scope="col">Control</th></tr></thead>
          <tbody>
            {names.map((name) => {
              const row = rows.get(name);
              const ctl = controls.get(name);
              const state = !ctl ? "unknown" : ctl.paused ? "paused" : ctl.disabled ? "disabled by 410" : ctl.circuit.phase === "closed" ? "open" : `circuit ${ctl.circuit.phase.replace("_", " ")}`;
              return (
                <tr>
                  <td>{name}</td>
                  <td>{row?.delivered ?? 0}</td>
                  <td>{row?.failing ?? 0}</td>
                  <td class={row?.dead ? "bad" : ""}>{row?.dead ?? 0}</td>
                  <td>{state}{ctl?.circuit.lastError ? ` (last error ${ctl.circuit.lastError})` : ""}</td>
                  <td>{ctl?.held.count ?? 0}</td>
                  <td>
                    {ctl?.paused ? (
                      <form class="inline" method="post" action={`/dashboard/destinations/${name}/resume`}>
                        <button type="submit" aria-label={`Resume ${name}`}>Resume</button>
                      </form>
                    ) : (
                      <form class="inline" method="post" action={`/dashboard/destinations/${name}/pause`}>
                        <label>Reason<input name="reason" required maxlength={200} /></label>
                        <button type="submit" aria-label={`Pause ${name}`}>Pause</button>
                      </form>
                    )}
                    {ctl?.disabled && (
                      <form class="inline" method="post" action={`/dashboard/destinations/${name}/enable`}>
                        <button type="submit" aria-label={`Re-enable ${name}`}>Re-enable</button>
                      </form>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </Page>,
    );
  });

  app.post("/destinations/:name{[a-z0-9][a-z0-9_-]{0,62}}/:action{pause|resume|enable}", async (c) => {
    const name = c.req.param("name");
    const action = c.req.param("action") as "pause" | "resume" | "enable";
    const config = loadConfig(c.env, providers);
    if (!config.destinations[name]) throw new RouterError("not_found");
    const form = await c.req.parseBody();
    const reason = typeof form.reason === "string" ? form.reason.trim().slice(0, 200) : "";
    if (action === "pause" && !reason) throw new RouterError("invalid_request", { message: "A pause needs a reason." });
    const now = clock.now();
    const by = await tokenId(readVar(c.env, "ADMIN_TOKEN")!);
    await controlDestination(c.env, config, name, now, action, by, action === "pause" ? reason : null).catch(() => {
      throw new RouterError("controls_unavailable");
    });
    await insertAudit(c.env.DB, { id: auditId(now), at: now, action: `destination_${action}`, tokenId: by, eventId: null, detail: { destination: name, reason: action === "pause" ? reason : null, via: "dashboard" } });
    return c.redirect("/dashboard/destinations", 303);
  });

  return app;
}

function SignIn(props: { failed: boolean }) {
  return (
    <Page title="Sign in" signedIn={false}>
      {props.failed && <p class="bad" role="alert">That token is not the admin token.</p>}
      <form method="post" action="/dashboard/sign-in">
        <label>
          Admin token
          <input name="token" type="password" autocomplete="current-password" required />
        </label>
        <p><button type="submit">Sign in</button></p>
      </form>
    </Page>
  );
}
