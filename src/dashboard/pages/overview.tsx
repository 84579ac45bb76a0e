/** @jsxImportSource hono/jsx */
import { lastDay, totalsOf } from "../../core/rollups.ts";
import { overview, PENDING_LOOK_AT, type DestinationConcern } from "../../operations/overview.ts";
import { BarChart } from "../charts.tsx";
import { Page } from "../layout.tsx";
import { Pill, When } from "../pills.tsx";
import { contextFor, duration, iso, stateOf, type Pages } from "../shared.ts";

/** A percentile read from a histogram: the bound of its bucket ("≤ 2.5 s"), or past the last one ("over 6 h"). */
const bound = (ms: number | null) => (ms === null ? "—" : Number.isFinite(ms) ? `≤ ${duration(ms)}` : duration(ms));

const hourLabel = (hour: number) => `${new Date(hour).toISOString().slice(11, 16)}Z`;

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** One unhealthy destination on one line: its worst state as a pill, why, since when, the next probe, the rest. */
function ConcernLine(props: { concern: DestinationConcern; now: number }) {
  const { concern: c, now } = props;
  const [worst, ...others] = c.concerns;
  return (
    <li>
      <Pill status={worst!} /> <a href="/dashboard/destinations">{c.destination}</a>
      {c.reason && (
        <>
          : <span class="reason">{c.reason}</span>
        </>
      )}
      {c.since !== null && (
        <>
          {" "}
          · since <When at={c.since} now={now} />
        </>
      )}
      {c.nextProbeAt !== null && (
        <>
          {" "}
          · next probe <When at={c.nextProbeAt} now={now} />
        </>
      )}
      {c.probeOutSince !== null && (
        <>
          {" "}
          · probe out since <When at={c.probeOutSince} now={now} />
        </>
      )}
      {c.pausedBy && worst === "paused" && <> · by {c.pausedBy}</>}
      {others.includes("held") && worst !== "held" && (
        <>
          {" "}
          · {plural(c.held.count, "delivery", "deliveries")} held
          {c.held.oldestHeldAt !== null && (
            <>
              {" "}
              since <When at={c.held.oldestHeldAt} now={now} />
            </>
          )}
        </>
      )}
      {others.includes("failing") && (
        <> · {plural(c.consecutiveFailures, "failed attempt", "failed attempts")} in a row</>
      )}
      {c.dead.count > 0 && (
        <>
          {" "}
          ·{" "}
          <a href={`/dashboard/dead-letters?destination=${encodeURIComponent(c.destination)}`}>
            {c.dead.more ? "at least " : ""}
            {plural(c.dead.count, "dead letter", "dead letters")}
          </a>
          {worst !== "dead letters" && c.dead.lastError ? ` (last error ${c.dead.lastError})` : ""}
        </>
      )}
    </li>
  );
}

/**
 * The overview's first lines, for the 3 a.m. look: every destination that is not healthy (circuit open or half open,
 * failing, paused, disabled by a 410, holding deliveries, with dead letters) with its state as a pill, the reason,
 * since when and the next probe; the dead-letter count; the age of the oldest pending delivery. All well is one
 * green line.
 */
function HealthStrip(props: {
  health: { concerns: DestinationConcern[]; off: string[]; oldestPendingReceivedAt: number | null };
  dead: { dead: number; purged: number };
  now: number;
  watched: number;
}) {
  const { health, dead, now } = props;
  const deadText = plural(dead.dead, "dead letter", "dead letters");
  const purged = dead.purged > 0 ? ` (${dead.purged} of them in purged events: a redrive cannot send those again)` : "";
  const pending =
    health.oldestPendingReceivedAt === null ? (
      "nothing pending"
    ) : (
      <>
        oldest pending delivery received <When at={health.oldestPendingReceivedAt} now={now} />
      </>
    );
  const off = health.off.length > 0 ? ` (${health.off.join(", ")} turned off in the config, so not watched)` : "";
  if (health.concerns.length === 0 && dead.dead === 0)
    return (
      <section class="health health-ok" aria-label="Health">
        <p>
          <Pill status="healthy" /> All {plural(props.watched, "destination", "destinations")} healthy{off} · no dead
          letters · {pending}
        </p>
      </section>
    );
  return (
    <section class="health health-bad" aria-label="Health">
      <h2>Needs attention</h2>
      {health.concerns.length > 0 && (
        <ul>
          {health.concerns.map((concern) => (
            <ConcernLine concern={concern} now={now} />
          ))}
        </ul>
      )}
      <p>
        <a href="/dashboard/dead-letters" class={dead.dead > 0 ? "bad" : ""}>
          {deadText[0]!.toUpperCase() + deadText.slice(1)}
        </a>{" "}
        waiting{purged} · {pending}
        {off}
      </p>
      <p class="muted">
        The oldest pending delivery is looked for among held deliveries and each shard's newest {PENDING_LOOK_AT}{" "}
        events. Times are UTC on hover.
      </p>
    </section>
  );
}

/**
 * The health strip first (src/operations/overview.ts), then the last 24 hours from rollups: delivery counts from each
 * destination's Durable Object, event counts from the Cron's walk (a day of hours × the source/type pairs). The
 * events table is read only through its indexes (dead letters, the newest events).
 */
export const overviewPages: Pages = (app, deps) => {
  app.get("/overview", async (c) => {
    const { now, counts, countedTo, dead, destinations, health } = await overview(contextFor(c, deps));
    const pairs = new Map<string, { source: string; eventType: string; events: number }>();
    for (const row of counts) {
      const key = `${row.source}/${row.eventType}`;
      const pair = pairs.get(key) ?? { source: row.source, eventType: row.eventType, events: 0 };
      pair.events += row.events;
      pairs.set(key, pair);
    }
    const perHour = new Map<number, number>();
    for (const row of counts) perHour.set(row.hour, (perHour.get(row.hour) ?? 0) + row.events);
    const eventHours = lastDay(
      [...perHour].map(([hour, events]) => ({ hour, events })),
      now,
      (hour) => ({ hour, events: 0 }),
    );
    return c.html(
      <Page title="Overview" signedIn>
        <HealthStrip health={health} dead={dead} now={now} watched={destinations.length - health.off.length} />
        <h2>Deliveries by destination</h2>
        <table class="stack">
          <caption class="muted">Last 24 hours, to {iso(now)}.</caption>
          <thead>
            <tr>
              <th scope="col">Destination</th>
              <th scope="col">Delivered</th>
              <th scope="col">Failed attempts</th>
              <th scope="col">Dead</th>
              <th scope="col">p50</th>
              <th scope="col">p99</th>
              <th scope="col">State</th>
            </tr>
          </thead>
          <tbody>
            {destinations.map((d) => {
              const t = totalsOf(d.hours);
              return (
                <tr>
                  <td data-label="Destination">
                    <a href="/dashboard/destinations">{d.name}</a>
                  </td>
                  <td data-label="Delivered">{t.delivered}</td>
                  <td data-label="Failed attempts">{t.failed}</td>
                  <td data-label="Dead" class={t.dead ? "bad" : ""}>
                    {t.dead}
                  </td>
                  <td data-label="p50">{bound(t.p50Ms)}</td>
                  <td data-label="p99">{bound(t.p99Ms)}</td>
                  <td data-label="State">
                    <Pill status={stateOf(d.controls)} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
        <p class="muted">
          Time to delivery: from the event's receipt to the destination's 2xx, read from hourly histograms (a bucket's
          upper bound).
        </p>
        <div class="grid">
          {destinations.map((d) => (
            <BarChart
              label={`Deliveries per hour for ${d.name}`}
              unit="delivered"
              bars={d.hours.map((h) => ({ label: hourLabel(h.hour), value: h.delivered }))}
            />
          ))}
        </div>
        <h2>Events by source and type</h2>
        {pairs.size === 0 ? (
          <p>No events counted in the last 24 hours.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Source</th>
                <th scope="col">Type</th>
                <th scope="col">Events (24 h)</th>
              </tr>
            </thead>
            <tbody>
              {[...pairs.values()]
                .sort((a, b) => b.events - a.events)
                .map((p) => (
                  <tr>
                    <td>{p.source}</td>
                    <td>{p.eventType}</td>
                    <td>{p.events}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        )}
        <BarChart
          label="Events per hour, last 24 hours"
          unit="events"
          bars={eventHours.map((h) => ({ label: hourLabel(h.hour), value: h.events }))}
        />
        <p class="muted">
          Counted up to {iso(countedTo)} by the Cron's rollup walk. It runs every 5 minutes and stays two minutes behind
          the clock, so the newest events appear on a later run.
        </p>
      </Page>,
    );
  });
};
