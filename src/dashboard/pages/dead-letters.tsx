/** @jsxImportSource hono/jsx */
import { loadConfig } from "../../config/load.ts";
import { decodeCursor, encodeCursor, EventCursorSchema } from "../../core/cursor.ts";
import { RouterError } from "../../core/errors.ts";
import { startBulkReplay } from "../../delivery/replay.ts";
import { countDeadLetters, listDeadLetters } from "../../storage/admin-queries.ts";
import { Page } from "../layout.tsx";
import { iso, localInput, msOf, PAGE_SIZE, text, type Pages } from "../shared.ts";

const DAY_MS = 86_400_000;

/** The window a bulk redrive names, from its form: the destination (or any), and when the events were received. */
function windowOf(form: Record<string, unknown>, now: number) {
  const destination = text(form.destination, 63);
  const since = msOf(text(form.since, 40)) ?? now - DAY_MS;
  const until = msOf(text(form.until, 40)) ?? now + 60_000;
  if (until <= since) throw new RouterError("invalid_request", { details: ["until: must be after since"] });
  return { destination, since, until };
}

/** Dead letters: the list through the dead-letter index, redrive one, or redrive a window after seeing its count. */
export const deadLetterPages: Pages = (app, { providers, clock }) => {
  app.get("/dead-letters", async (c) => {
    const q = c.req.query();
    const config = loadConfig(c.env, providers);
    const destination = text(q.destination, 63);
    const cursor = q.cursor ? decodeCursor(q.cursor, EventCursorSchema) : null;
    const { deadLetters, next } = await listDeadLetters(c.env.DB, { destination }, cursor ? { receivedAt: cursor[0], id: cursor[1] } : null, PAGE_SIZE);
    // Only what a redrive's own redirect can say: a job id and a count.
    const started = q.started && /^rpl_[0-9a-f]{32}$/.test(q.started) && /^[0-9]{1,6}$/.test(q.count ?? "") ? q.started : null;
    const now = clock.now();
    return c.html(
      <Page title="Dead letters" signedIn>
        {started && <p class="notice" role="status">Redrive started for {q.count} deliveries (job {started}).</p>}
        <table>
          <caption class="notice">{deadLetters.length === 0 ? "No dead deliveries." : `${deadLetters.length} dead deliver${deadLetters.length === 1 ? "y" : "ies"}, newest event first`}</caption>
          <thead><tr><th scope="col">Event</th><th scope="col">Destination</th><th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Redrive</th></tr></thead>
          <tbody>
            {deadLetters.map((d) => (
              <tr>
                <td><a href={`/dashboard/events/${d.eventId}`}>{d.eventId}</a><br /><span class="muted">{d.source} / {d.eventType}, {iso(d.receivedAt)}</span></td>
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
        {next && <p><a href={`/dashboard/dead-letters?${destination ? `destination=${encodeURIComponent(destination)}&` : ""}cursor=${encodeCursor([next.receivedAt, next.id])}`}>More</a></p>}
        <form method="get" action="/dashboard/dead-letters/redrive">
          <fieldset>
            <legend>Redrive in bulk</legend>
            <label>
              Destination
              <select name="destination">
                <option value="">any</option>
                {Object.keys(config.destinations).sort().map((name) => (
                  <option value={name}>{name}</option>
                ))}
              </select>
            </label>
            <label>Since (UTC, received)<input name="since" type="datetime-local" value={localInput(now - DAY_MS)} aria-label="Since" /></label>
            <label>Until (UTC, received)<input name="until" type="datetime-local" value={localInput(now + 60_000)} aria-label="Until" /></label>
            <button type="submit">Count</button>
          </fieldset>
        </form>
      </Page>,
    );
  });

  // The confirmation: a read, so it is a GET; it shows how many would go before anything does.
  app.get("/dead-letters/redrive", async (c) => {
    const w = windowOf(c.req.query(), clock.now());
    const count = await countDeadLetters(c.env.DB, w);
    return c.html(
      <Page title="Redrive dead letters" signedIn>
        <p class="notice" role="status">{count} dead deliver{count === 1 ? "y matches" : "ies match"}.</p>
        <p>
          Events received from {iso(w.since)} to {iso(w.until)}, to {w.destination ?? "any destination"}. A redrive sends each again as a new
          generation, with the same webhook-id; its receiver dedupes on it.
        </p>
        {count > 0 && (
          <form method="post" action="/dashboard/dead-letters/redrive">
            <input type="hidden" name="destination" value={w.destination ?? ""} />
            <input type="hidden" name="since" value={new Date(w.since).toISOString()} />
            <input type="hidden" name="until" value={new Date(w.until).toISOString()} />
            <input type="hidden" name="expected" value={String(count)} />
            <button type="submit">Redrive {count} deliveries</button>
          </form>
        )}
        <p><a href="/dashboard/dead-letters">Back to dead letters</a></p>
      </Page>,
    );
  });

  app.post("/dead-letters/redrive", async (c) => {
    const form = await c.req.parseBody();
    const w = windowOf(form, clock.now());
    const expected = Number(form.expected);
    if (!Number.isInteger(expected) || expected < 1 || expected > 100_000) throw new RouterError("invalid_request", { details: ["expected: the count confirmed, 1 to 100000"] });
    // At most what the operator saw: deliveries that died since the count wait for the next look.
    const { replayId, matched } = await startBulkReplay(c.env, loadConfig(c.env, providers), { status: "dead", ...w }, expected, clock);
    return c.redirect(`/dashboard/dead-letters?started=${replayId}&count=${Math.min(matched, expected)}`, 303);
  });
};
