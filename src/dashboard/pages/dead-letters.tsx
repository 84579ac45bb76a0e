/** @jsxImportSource hono/jsx */
import { countRedrive, listDeadLetters } from "../../operations/dead-letters.ts";
import { configOf } from "../../operations/context.ts";
import { DeadLettersQuery, parseInput, RedriveBody, RedriveWindow } from "../../operations/inputs.ts";
import { destinationDays } from "../../operations/destinations.ts";
import { redriveDeadLetters } from "../../operations/replays.ts";
import { Page } from "../layout.tsx";
import { Pill, When } from "../pills.tsx";
import { ResendLink } from "./resend.tsx";
import {
  actorFor,
  contextFor,
  field,
  iso,
  localInput,
  numberField,
  PAGE_SIZE,
  stateOf,
  timeField,
  type Pages,
} from "../shared.ts";

const DAY_MS = 86_400_000;

/** The window a bulk redrive names, from its form: the destination (or any), and when the events were received. */
const windowOf = (form: Record<string, unknown>) => ({
  destination: field(form.destination),
  since: timeField(form.since),
  until: timeField(form.until),
});

/** Dead letters: the list through the dead-letter index, redrive one, or redrive a window after seeing its count. */
export const deadLetterPages: Pages = (app, deps) => {
  app.get("/dead-letters", async (c) => {
    const q = c.req.query();
    const ctx = contextFor(c, deps);
    const list = parseInput(DeadLettersQuery, {
      destination: field(q.destination),
      cursor: field(q.cursor),
      limit: PAGE_SIZE,
    });
    const destination = list.destination;
    const [{ deadLetters, nextCursor: next }, days] = await Promise.all([
      listDeadLetters(ctx, list),
      // Each destination's state now: whether a redrive would go out, or wait behind an open circuit or a pause.
      destinationDays(ctx),
    ]);
    const stateNow = new Map(days.map((d) => [d.name, stateOf(d.controls)]));
    // Only what a redrive's own redirect can say: a job id and a count.
    const started =
      q.started && /^rpl_[0-9a-f]{32}$/.test(q.started) && /^[0-9]{1,6}$/.test(q.count ?? "") ? q.started : null;
    const now = ctx.clock.now();
    const config = configOf(ctx);
    return c.html(
      <Page title="Dead letters" signedIn>
        {started && (
          <p class="notice" role="status">
            Redrive started for {q.count} deliveries (job <a href={`/dashboard/replays/${started}`}>{started}</a>).
          </p>
        )}
        {destination && (
          <p>
            Dead deliveries to {destination} only. <a href="/dashboard/dead-letters">Every destination</a>
          </p>
        )}
        <table class="stack">
          <caption class="notice">
            {deadLetters.length === 0
              ? "No dead deliveries."
              : `${deadLetters.length} dead deliver${deadLetters.length === 1 ? "y" : "ies"}, newest event first`}
          </caption>
          <thead>
            <tr>
              <th scope="col">Event</th>
              <th scope="col">Destination</th>
              <th scope="col">Attempts</th>
              <th scope="col">Last error</th>
              <th scope="col">Destination now</th>
              <th scope="col">Redrive</th>
            </tr>
          </thead>
          <tbody>
            {deadLetters.map((d) => (
              <tr>
                <td data-label="Event">
                  <a href={`/dashboard/events/${d.eventId}`}>{d.eventId}</a>
                  <br />
                  <span class="muted">
                    {d.source} / {d.eventType}, received <When at={d.receivedAt} now={now} />
                  </span>
                </td>
                <td data-label="Destination">{d.destination}</td>
                <td data-label="Attempts">{d.attempts}</td>
                <td data-label="Last error">{d.lastError ?? "—"}</td>
                <td data-label="Destination now">
                  <Pill status={stateNow.get(d.destination) ?? "unknown"} />
                </td>
                <td data-label="Redrive">
                  <ResendLink
                    eventId={d.eventId}
                    destination={d.destination}
                    status={d.status}
                    verb="Redrive"
                    label={`Redrive ${d.eventId} to ${d.destination}`}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {next && (
          <p>
            <a
              href={`/dashboard/dead-letters?${destination ? `destination=${encodeURIComponent(destination)}&` : ""}cursor=${next}`}
            >
              More
            </a>
          </p>
        )}
        <form method="get" action="/dashboard/dead-letters/redrive">
          <fieldset>
            <legend>Redrive in bulk</legend>
            <label>
              Destination
              <select name="destination">
                <option value="">any</option>
                {Object.keys(config.destinations)
                  .sort()
                  .map((name) => (
                    <option value={name} selected={name === destination}>
                      {name}
                    </option>
                  ))}
              </select>
            </label>
            <label>
              Since (UTC, received)
              <input name="since" type="datetime-local" value={localInput(now - DAY_MS)} aria-label="Since" />
            </label>
            <label>
              Until (UTC, received)
              <input name="until" type="datetime-local" value={localInput(now + 60_000)} aria-label="Until" />
            </label>
            <button type="submit">Count</button>
          </fieldset>
        </form>
      </Page>,
    );
  });

  // The confirmation: a read, so it is a GET; it shows how many would go before anything does.
  app.get("/dead-letters/redrive", async (c) => {
    const ctx = contextFor(c, deps);
    const [{ count, ...w }, days] = await Promise.all([
      countRedrive(ctx, parseInput(RedriveWindow, windowOf(c.req.query()))),
      destinationDays(ctx),
    ]);
    const states = days.filter((d) => w.destination === undefined || d.name === w.destination);
    return c.html(
      <Page title="Redrive dead letters" signedIn>
        <p class="notice" role="status">
          {count} dead deliver{count === 1 ? "y matches" : "ies match"}.
        </p>
        <p>
          Events received from {iso(w.since)} to {iso(w.until)}, to {w.destination ?? "any destination"}. A redrive
          sends each again as a new generation, with the same webhook-id; its receiver dedupes on it.
        </p>
        <p>
          Now:{" "}
          {states.map((d, i) => (
            <>
              {i > 0 ? ", " : ""}
              {d.name} <Pill status={stateOf(d.controls)} />
            </>
          ))}
          . A delivery to a paused destination or one whose circuit is open waits, held, until it takes deliveries
          again.
        </p>
        {count > 0 && (
          <form method="post" action="/dashboard/dead-letters/redrive">
            <input type="hidden" name="destination" value={w.destination ?? ""} />
            <input type="hidden" name="since" value={new Date(w.since).toISOString()} />
            <input type="hidden" name="until" value={new Date(w.until).toISOString()} />
            <input type="hidden" name="maxCount" value={String(count)} />
            <button type="submit">Redrive {count} deliveries</button>
          </form>
        )}
        <p>
          <a href="/dashboard/dead-letters">Back to dead letters</a>
        </p>
      </Page>,
    );
  });

  app.post("/dead-letters/redrive", async (c) => {
    const form = await c.req.parseBody();
    // At most what the operator saw: deliveries that died since the count wait for the next look.
    const body = parseInput(RedriveBody, { ...windowOf(form), maxCount: numberField(form.maxCount) });
    const { job, matched } = await redriveDeadLetters(contextFor(c, deps), await actorFor(c), body);
    return c.redirect(`/dashboard/dead-letters?started=${job.id}&count=${Math.min(matched, body.maxCount)}`, 303);
  });
};
