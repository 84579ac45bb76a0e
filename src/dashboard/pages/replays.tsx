/** @jsxImportSource hono/jsx */
import type { Child } from "hono/jsx";
import { configOf } from "../../operations/context.ts";
import { countRedrive } from "../../operations/dead-letters.ts";
import { BulkReplayBody, parseInput, RedriveWindow, ReplayIdParams } from "../../operations/inputs.ts";
import { cancelBulkReplay, replayJob, startBulkReplay, type ReplayJob } from "../../operations/replays.ts";
import { Page } from "../layout.tsx";
import { Pill } from "../pills.tsx";
import {
  actorFor,
  contextFor,
  field,
  iso,
  localInput,
  numberField,
  timeField,
  type DashboardContext,
  type Pages,
} from "../shared.ts";

const DAY_MS = 86_400_000;
/** The delivery states a bulk replay takes: BulkReplayBody's `status`, dead first (its default). */
const REPLAY_STATUSES = ["dead", "failing", "delivered", "pending"] as const;

/** A bulk replay request from its form, in POST /admin/replays' schema. */
const replayOf = (form: Record<string, unknown>) =>
  parseInput(BulkReplayBody, {
    status: field(form.status),
    destination: field(form.destination),
    since: timeField(form.since),
    until: timeField(form.until),
    maxCount: numberField(form.maxCount),
  });

/** The job id of a page's path, refused as the admin API refuses it. */
const replayIdOf = (c: DashboardContext) => parseInput(ReplayIdParams, { replayId: c.req.param("id") }).replayId;

function JobTable(props: { job: ReplayJob }) {
  const { job } = props;
  const rows: [string, Child][] = [
    ["Job", job.id],
    ["State", <Pill status={job.state} />],
    [
      "Filter",
      `${job.filter.status} deliveries to ${job.filter.destination ?? "any destination"}, of events received from ${iso(job.filter.since)} to ${iso(job.filter.until)}`,
    ],
    ["At most", job.maxCount],
    ["Events read", job.scanned],
    ["Deliveries replayed", job.replayed],
    ["Skipped (destination disabled since)", job.skipped],
    ["Started", iso(job.startedAt)],
    ["Last progress", iso(job.updatedAt)],
  ];
  if (job.error) rows.push(["Error", job.error]);
  return (
    <table>
      <tbody>
        {rows.map(([name, value]) => (
          <tr>
            <th scope="row">{name}</th>
            <td>{value}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * Bulk replays (POST /admin/replays and its job): a filter, then a confirmation (with the count when it is of dead
 * deliveries, which their index counts), then the job, whose progress its page shows and which it can cancel.
 */
export const replayPages: Pages = (app, deps) => {
  app.get("/replays", (c) => {
    const ctx = contextFor(c, deps);
    const now = ctx.clock.now();
    const destinations = Object.keys(configOf(ctx).destinations).sort();
    return c.html(
      <Page title="Replays" signedIn>
        <p>
          A bulk replay sends the deliveries in one state, to one destination or any, of the events received in a
          window, again: each as a new generation with the same webhook-id (its receiver dedupes on it), at most as many
          as you say. It runs as a job through the queue, a page of 100 events at a time, and only on deliveries created
          before it started. Each start and cancel is recorded in the <a href="/dashboard/audit">audit log</a>.
        </p>
        <form method="get" action="/dashboard/replays/new">
          <fieldset>
            <legend>Start a bulk replay</legend>
            <label>
              Deliveries that are
              <select name="status">
                {REPLAY_STATUSES.map((s) => (
                  <option value={s}>{s === "delivered" ? "delivered (send again)" : s}</option>
                ))}
              </select>
            </label>
            <label>
              Destination
              <select name="destination">
                <option value="">any</option>
                {destinations.map((name) => (
                  <option value={name}>{name}</option>
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
            <label>
              At most
              <input name="maxCount" type="number" min={1} max={100_000} value="1000" required />
            </label>
            <button type="submit">Review</button>
          </fieldset>
        </form>
        <form method="get" action="/dashboard/replays/job">
          <fieldset>
            <legend>A job's progress</legend>
            <label>
              Replay id
              <input name="replayId" required placeholder="rpl_…" />
            </label>
            <button type="submit">Open</button>
          </fieldset>
        </form>
        <p class="muted">
          Dead letters have their own redrive, which counts them first:{" "}
          <a href="/dashboard/dead-letters">Dead letters</a>. Every job started is in the audit log, with a link to its
          page.
        </p>
      </Page>,
    );
  });

  // The confirmation: a read, so it is a GET. Dead deliveries are counted through their index; the other states have
  // none, so the job counts them when it starts (a POST), and no page view reads every event of the window.
  app.get("/replays/new", async (c) => {
    const body = replayOf(c.req.query());
    const count =
      body.status === "dead" ? (await countRedrive(contextFor(c, deps), parseInput(RedriveWindow, body))).count : null;
    const what = `${body.status} deliveries to ${body.destination ?? "any destination"}, of events received from ${iso(Date.parse(body.since))} to ${iso(Date.parse(body.until))}`;
    return c.html(
      <Page title="Start a bulk replay" signedIn>
        <p class="notice" role="status">
          {count === null
            ? `Replays ${what}, at most ${body.maxCount}.`
            : `${count} dead deliver${count === 1 ? "y matches" : "ies match"}: ${what}. At most ${body.maxCount} will be replayed.`}
        </p>
        {count === null && <p>The job counts the deliveries that match when it starts; its page shows how many.</p>}
        {body.status === "delivered" && (
          <p class="bad" role="alert">
            Send again: these destinations already have these events. Each gets its event a second time, with the same
            webhook-id: a receiver that dedupes on it ignores the copy; one that does not processes it twice.
          </p>
        )}
        {count !== 0 && (
          <form method="post" action="/dashboard/replays">
            <input type="hidden" name="status" value={body.status} />
            <input type="hidden" name="destination" value={body.destination ?? ""} />
            <input type="hidden" name="since" value={new Date(Date.parse(body.since)).toISOString()} />
            <input type="hidden" name="until" value={new Date(Date.parse(body.until)).toISOString()} />
            <input type="hidden" name="maxCount" value={String(body.maxCount)} />
            <button type="submit">
              {body.status === "delivered" ? "Send again" : "Replay"}{" "}
              {count === null ? `up to ${body.maxCount}` : Math.min(count, body.maxCount)} deliveries
            </button>
          </form>
        )}
        <p>
          <a href="/dashboard/replays">Back to replays</a>
        </p>
      </Page>,
    );
  });

  app.post("/replays", async (c) => {
    const body = replayOf(await c.req.parseBody());
    const { job, matched } = await startBulkReplay(contextFor(c, deps), await actorFor(c), body);
    return c.redirect(`/dashboard/replays/${job.id}?matched=${matched}`, 303);
  });

  // "A job's progress" form: the id typed, refused as the API refuses it, then the job's own page.
  app.get("/replays/job", (c) => {
    const { replayId } = parseInput(ReplayIdParams, { replayId: field(c.req.query("replayId")) });
    return c.redirect(`/dashboard/replays/${replayId}`, 303);
  });

  app.get("/replays/:id", async (c) => {
    const job = await replayJob(contextFor(c, deps), replayIdOf(c));
    // Only what this page's own redirects say: a count, or that it was cancelled.
    const matched = c.req.query("matched");
    const started = matched && /^[0-9]{1,9}$/.test(matched) ? Number(matched) : null;
    const cancelled = c.req.query("cancelled") === "1";
    return c.html(
      <Page title="Bulk replay" signedIn>
        {started !== null && (
          <p class="notice" role="status">
            Started: {started} deliver{started === 1 ? "y" : "ies"} matched, at most {job.maxCount} will be replayed.
          </p>
        )}
        {cancelled && (
          <p class="notice" role="status">
            Cancelled: its next page stops it.
          </p>
        )}
        <JobTable job={job} />
        {job.state === "running" ? (
          <>
            <p>
              <a href={`/dashboard/replays/${job.id}`}>Refresh</a> to see its progress.
            </p>
            <form method="post" action={`/dashboard/replays/${job.id}/cancel`}>
              <button type="submit">Cancel this replay</button>
            </form>
          </>
        ) : null}
        <p>
          <a href="/dashboard/replays">Back to replays</a>
        </p>
      </Page>,
    );
  });

  app.post("/replays/:id/cancel", async (c) => {
    const job = await cancelBulkReplay(contextFor(c, deps), await actorFor(c), replayIdOf(c));
    return c.redirect(`/dashboard/replays/${job.id}?cancelled=1`, 303);
  });
};
