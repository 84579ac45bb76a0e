/** @jsxImportSource hono/jsx */
import { readVar } from "../../config/load.ts";
import { HELD_DUE } from "../../core/delivery-state.ts";
import type { DraftDiff, EntryChange, ValueChange } from "../../core/draft-diff.ts";
import { ERROR_CODES, RouterError, type ErrorCode } from "../../core/errors.ts";
import type { PayloadView } from "../../core/payload-view.ts";
import { EXCERPT_CHARS } from "../../core/response-view.ts";
import {
  revealEvent,
  searchEvents,
  SEARCH_WINDOW,
  viewEvent,
  type AttemptView,
  type DeliveryView,
  type EventView,
} from "../../operations/events.ts";
import { EVENT_STATUSES, EventIdParams, ListEventsQuery, parseInput } from "../../operations/inputs.ts";
import { releaseQuarantinedEvent } from "../../operations/replays.ts";
import { orderRelayView } from "../../operations/relay.ts";
import { configOf } from "../../operations/context.ts";
import { logEvent } from "../../telemetry/log.ts";
import { EventTable } from "../event-list.tsx";
import { Page } from "../layout.tsx";
import { Pill } from "../pills.tsx";
import { replayHref, ResendLink } from "./resend.tsx";
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
    const ctx = contextFor(c, deps);
    const found = await searchEvents(ctx, search);
    const now = ctx.clock.now();
    // An order's search also says where the order stands at Weedmaps, for each source with a status relay.
    const relaySources = search.orderId
      ? Object.keys(configOf(ctx).relay).filter((s) => search.source === undefined || s === search.source)
      : [];
    const orderId = search.orderId;
    const standing =
      orderId === undefined
        ? []
        : (await Promise.all(relaySources.map((s) => orderRelayView(ctx, s, orderId).catch(() => null)))).filter(
            (v) => v !== null && v.status !== null,
          );
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
        {standing.map((order) => (
          <p class="order-status">
            Order <code>{order!.orderId}</code> at Weedmaps ({order!.source}): <strong>{order!.status}</strong>,{" "}
            {order!.setBy ? (
              <>
                set by the update <a href={`/dashboard/events/${order!.setBy}`}>{order!.setBy}</a> sent through the
                status relay
              </>
            ) : (
              "as Weedmaps' own callback said"
            )}
            . Updates out are the <code>relay.*</code> events below; each one's page shows what Weedmaps answered.
          </p>
        ))}
        <EventTable
          events={found.events}
          now={now}
          caption={`${summary}${
            found.scanned !== null
              ? ` among the ${found.scanned} event${found.scanned === 1 ? "" : "s"} looked at (a page looks at ${SEARCH_WINDOW} at most in each shard; "Older events" goes on).`
              : "."
          }`}
        />
        {next && <a href={next}>Older events</a>}
      </Page>,
    );
  });

  /**
   * The event page, built for triage: what happened to each delivery first (every attempt, and what a failing
   * destination answered: status, headers, the response excerpt), a Draft's verdict and what the POS changed, and
   * the payload collapsed below. Redacted, or revealed by an audited reveal just now (`view.auditId`).
   */
  function eventPage(c: DashboardContext, view: EventView, refused: RouterError | null = null) {
    const { event, deliveries, payload, answered, answerDiff, revealed: reveal, auditId: revealedAs } = view;
    const flash = c.req.query("replayed");
    const released = c.req.query("released") === "1";
    const canReveal = readVar(c.env, "ADMIN_REVEAL_TOKEN") !== undefined && event.body !== null && !reveal;
    // Replay history: only each destination's newest generation can be replayed.
    const latest = new Map<string, number>();
    for (const d of deliveries) latest.set(d.destination, Math.max(latest.get(d.destination) ?? 0, d.generation));
    const redactedNote = (view: PayloadView) =>
      reveal
        ? "Unredacted."
        : view.redacted.length > 0
          ? `Customer data redacted: ${view.redacted.join(", ")}.`
          : "Nothing to redact.";
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
            Customer data shown, in the payload and in what the destinations answered. This reveal is recorded in the
            audit log ({revealedAs}).
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
        {event.responder && <DraftAnswer responder={event.responder} diff={answerDiff} purged={!event.body} />}
        <h2>Deliveries</h2>
        {deliveries.length === 0 && (
          <p>None: no route matched{event.quarantine ? ", or it is held in quarantine" : ""}.</p>
        )}
        {deliveries.map((d) => (
          <DeliverySection
            delivery={d}
            eventId={event.id}
            replayable={d.generation === latest.get(d.destination) && event.body !== null}
          />
        ))}
        {event.body && deliveries.some((d) => d.generation === latest.get(d.destination) && lacksIt(d)) && (
          <p class="actions">
            <a class="button secondary" href={replayHref(event.id)}>
              Replay to every destination that lacks it…
            </a>
          </p>
        )}
        {canReveal && (
          <form method="post" action={`/dashboard/events/${event.id}/reveal`}>
            <label>
              Reveal token
              <input name="reveal_token" type="password" autocomplete="off" required />
            </label>
            <p>
              <button type="submit">Reveal customer data</button>{" "}
              <span class="muted">
                Shows the payload and the destinations' answers unredacted. Each reveal is recorded in the audit log.
              </span>
            </p>
          </form>
        )}
        <h2>Payload</h2>
        {payload ? (
          <>
            <p>{redactedNote(payload)}</p>
            <details>
              <summary>{event.responder ? "What Weedmaps sent" : "The payload"}</summary>
              <pre>{pretty(payload)}</pre>
            </details>
            {event.responder && (
              <details>
                <summary>What it was answered ({event.responder.answered.status ?? "no answer"})</summary>
                <pre>{answered ? pretty(answered) : (event.responder.error ?? "—")}</pre>
              </details>
            )}
          </>
        ) : (
          <p>Purged on {iso(event.payloadPurgedAt)} (retention or a deletion request).</p>
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

  // Replay and send again (their confirmations and their POSTs) are in ./resend.tsx.

  app.post("/events/:id/release", async (c) => {
    const eventId = eventIdOf(c);
    await releaseQuarantinedEvent(contextFor(c, deps), await actorFor(c), eventId);
    return c.redirect(`/dashboard/events/${eventId}?released=1`, 303);
  });
};

/*
 * The event page's parts. A failing destination's answer and a Draft's verdict are what an on-call engineer opens the
 * page for, so they come first and are laid out to fit a phone: tables scroll inside themselves, long text is in
 * blocks that scroll inside themselves, and nothing makes the page wider than the window.
 */

/** As the confirmation judges it (./resend.tsx): a destination that does not have the event yet. */
const lacksIt = (d: DeliveryView) => d.status !== "delivered" && d.status !== "stale";

/** An excerpt at a glance, in the attempts table: one line of at most 80 characters (the whole one is below). */
const oneLine = (text: string) => {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length <= 80 ? line : `${line.slice(0, 79)}…`;
};

const failed = (a: AttemptView) => a.statusCode === null || a.statusCode < 200 || a.statusCode >= 300;

/** One delivery generation: its state, every attempt, and what the destination answered each failed one. */
function DeliverySection(props: { delivery: DeliveryView; eventId: string; replayable: boolean }) {
  const d = props.delivery;
  const answers = d.attemptLog.filter((a) => failed(a) && (a.responseExcerpt !== null || a.headers !== null));
  // The newest failed answer is open unless the destination has since taken the event.
  const newest = answers.at(-1);
  return (
    <section aria-label={`Delivery to ${d.destination}, generation ${d.generation}`}>
      <h3>
        {d.destination} · generation {d.generation} · <Pill status={d.status} />
        {d.heldReason ? (
          <>
            {" "}
            <Pill status="held" label={`held: ${d.heldReason.replaceAll("_", " ")}`} />
          </>
        ) : (
          ""
        )}
      </h3>
      <p>
        {d.attempts} attempt{d.attempts === 1 ? "" : "s"}
        {d.lastError ? `, last error ${d.lastError}` : ""}
        {d.status === "pending" && d.nextAttemptAt < HELD_DUE ? `, next at ${iso(d.nextAttemptAt)}` : ""}
      </p>
      {d.attemptLog.length > 0 && (
        <table class="stack">
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
                <td data-label="#">{a.attempt}</td>
                <td data-label="At">{iso(a.at)}</td>
                <td data-label="Status">{a.statusCode ?? "—"}</td>
                <td data-label="Latency">{Math.round(a.latencyMs)} ms</td>
                <td data-label="Error">{a.errorClass ?? "—"}</td>
                <td data-label="Response">{a.responseExcerpt === null ? "—" : oneLine(a.responseExcerpt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {answers.map((a) => (
        <details open={a === newest && d.status !== "delivered"}>
          <summary>
            {a.statusCode === null
              ? `Attempt ${a.attempt}: the router's note (${a.errorClass ?? "no answer"})`
              : `Attempt ${a.attempt}: what ${d.destination} answered (${a.statusCode})`}
          </summary>
          <AttemptAnswer attempt={a} />
        </details>
      ))}
      {props.replayable && (
        <p class="actions">
          <ResendLink eventId={props.eventId} destination={d.destination} status={d.status} />
        </p>
      )}
    </section>
  );
}

/** A failed attempt's answer: its headers and its excerpt, redacted as payloads are unless this view is a reveal. */
function AttemptAnswer(props: { attempt: AttemptView }) {
  const a = props.attempt;
  const headers = a.headers;
  return (
    <>
      {headers && (
        <>
          <h4>Response headers</h4>
          <pre>
            {headers.headers.map((h) => `${h.name}: ${h.value ?? "(value not kept)"}`).join("\n")}
            {headers.omitted > 0 ? `\n(${headers.omitted} more not kept)` : ""}
          </pre>
          {headers.redacted && (
            <p class="muted">Only descriptive headers show their values; a reveal shows the rest.</p>
          )}
        </>
      )}
      {a.responseExcerpt !== null && (
        <>
          <h4>{a.statusCode === null ? "Note" : `Response body (first ${EXCERPT_CHARS} characters)`}</h4>
          <pre>
            {a.responseJson ? pretty({ encoding: "utf8", data: a.responseExcerpt, redacted: [] }) : a.responseExcerpt}
          </pre>
          {a.responseRedacted.length > 0 && (
            <p class="muted">Customer data redacted: {a.responseRedacted.join(", ")}.</p>
          )}
        </>
      )}
    </>
  );
}

type Responder = NonNullable<EventView["event"]["responder"]>;

const OUTCOME_WORDS = {
  passed: "passed",
  repaired: "repaired",
  rejected: "refused",
  unchecked: "unchecked",
  no_answer: "no answer",
} as const;

/** Why a Draft answer was refused: the rule's own words (docs/errors.md) and the field that broke it. */
function refusalOf(rule: string | undefined, path: string | undefined): string {
  const words = rule && rule in ERROR_CODES ? ERROR_CODES[rule as ErrorCode][1] : "The answer broke a rule.";
  return `${words.replace(/\.$/, "")} (${rule ?? "unknown rule"}${path ? `, at ${path}` : ""})`;
}

/** A Weedmaps Draft: the verdict and why, the responder and its latency, and what the POS changed. */
function DraftAnswer(props: { responder: Responder; diff: DraftDiff | null; purged: boolean }) {
  const r = props.responder;
  const verdict = r.verdict;
  const word = verdict ? OUTCOME_WORDS[verdict.outcome] : "not recorded";
  const tone = verdict?.outcome === "no_answer" ? "bad" : verdict?.outcome === "unchecked" ? "warn" : undefined;
  return (
    <section aria-label="Draft answer">
      <h2>Draft answer</h2>
      <table>
        <tbody>
          <tr>
            <th scope="row">Verdict</th>
            <td>
              <Pill status={word} tone={tone} />{" "}
              {verdict?.outcome === "rejected"
                ? `Refused: ${refusalOf(verdict.rule, verdict.path)}. Weedmaps kept its estimate.`
                : verdict?.outcome === "no_answer"
                  ? `No usable answer (${r.error ?? "none"}). Weedmaps kept its estimate.`
                  : verdict?.outcome === "repaired"
                    ? `Relayed with what the POS may not change put back from the Draft: ${verdict.repaired.join(", ")}.`
                    : verdict?.outcome === "passed"
                      ? "The answer was the order, within the rules, and was relayed as it came."
                      : verdict?.outcome === "unchecked"
                        ? "Relayed without the checks (the route's draftAnswer is unchecked)."
                        : ""}
              {verdict && verdict.warnings.length > 0 ? ` Noted: ${verdict.warnings.join(", ")}.` : ""}
            </td>
          </tr>
          <tr>
            <th scope="row">Responder</th>
            <td>
              {r.destination || "none"}
              {r.status !== null ? `, answered ${r.status}` : ""}
              {r.error ? ` (${r.error})` : ""}
            </td>
          </tr>
          <tr>
            <th scope="row">Latency</th>
            <td>{r.latencyMs === null ? "—" : `${Math.round(r.latencyMs)} ms`}</td>
          </tr>
          <tr>
            <th scope="row">Weedmaps received</th>
            <td>{r.answered.status ?? "—"}</td>
          </tr>
        </tbody>
      </table>
      <h3>What the POS changed</h3>
      {props.diff === null ? (
        <p>
          {props.purged
            ? "Nothing to compare: the payload was purged."
            : "Nothing to compare: no order was relayed, so Weedmaps kept its own estimate."}
        </p>
      ) : props.diff.unchanged ? (
        <p>Nothing: the answer is the Draft as Weedmaps sent it.</p>
      ) : (
        <DiffTables diff={props.diff} />
      )}
    </section>
  );
}

const change = (v: ValueChange) => (
  <>
    <td data-label="Weedmaps sent">{v.asked ?? "—"}</td>
    <td data-label="Answered">{v.answered ?? "—"}</td>
    <td data-label="Change">{v.delta ?? "—"}</td>
  </>
);

function DiffTables(props: { diff: DraftDiff }) {
  const { diff } = props;
  const parts: [string, EntryChange[]][] = [
    ["Line items", diff.lineItems],
    ["Taxes", diff.taxes],
    ["Fees", diff.fees],
    ["Discounts", diff.discounts],
  ];
  return (
    <>
      {parts.map(
        ([title, entries]) =>
          entries.length > 0 && (
            <table class="stack">
              <caption>{title}</caption>
              <thead>
                <tr>
                  <th scope="col">Item</th>
                  <th scope="col">Field</th>
                  <th scope="col">Weedmaps sent</th>
                  <th scope="col">Answered</th>
                  <th scope="col">Change</th>
                </tr>
              </thead>
              <tbody>
                {entries.flatMap((e) => [
                  ...e.fields.map((v) => (
                    <tr>
                      <th scope="row">
                        {e.label}
                        {e.change !== "changed" ? ` (${e.change})` : ""}
                        {e.unavailable ? " (unavailable)" : ""}
                      </th>
                      <td data-label="Field">{v.field}</td>
                      {change(v)}
                    </tr>
                  )),
                  ...(e.others.length > 0 || e.fields.length === 0
                    ? [
                        <tr>
                          <th scope="row">
                            {e.label}
                            {e.change !== "changed" ? ` (${e.change})` : ""}
                          </th>
                          <td colspan={4} data-label="Changed">
                            {e.others.length > 0 ? `Also changed: ${e.others.join(", ")}` : `${e.change}`}
                          </td>
                        </tr>,
                      ]
                    : []),
                ])}
              </tbody>
            </table>
          ),
      )}
      {diff.totals.length > 0 && (
        <table class="stack">
          <caption>Totals</caption>
          <thead>
            <tr>
              <th scope="col">Total</th>
              <th scope="col">Weedmaps sent</th>
              <th scope="col">Answered</th>
              <th scope="col">Change</th>
            </tr>
          </thead>
          <tbody>
            {diff.totals.map((v) => (
              <tr>
                <th scope="row">{v.field}</th>
                {change(v)}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {diff.others.length > 0 && (
        <p>Other fields the answer changed (names only; the payload below shows them): {diff.others.join(", ")}.</p>
      )}
    </>
  );
}
