/** @jsxImportSource hono/jsx */
import { lastDay, totalsOf } from "../../core/rollups.ts";
import { overview } from "../../operations/overview.ts";
import { BarChart } from "../charts.tsx";
import { Page } from "../layout.tsx";
import { contextFor, duration, iso, stateOf, type Pages } from "../shared.ts";

/** A percentile read from a histogram: the bound of its bucket ("≤ 2.5 s"), or past the last one ("over 6 h"). */
const bound = (ms: number | null) => (ms === null ? "—" : Number.isFinite(ms) ? `≤ ${duration(ms)}` : duration(ms));

const hourLabel = (hour: number) => `${new Date(hour).toISOString().slice(11, 16)}Z`;

/**
 * The last 24 hours from rollups only: event counts from the Cron's walk (a day of hours × the source/type pairs),
 * delivery counts from each destination's Durable Object, and the dead-letter count through its index. Nothing here
 * reads the events table.
 */
export const overviewPages: Pages = (app, deps) => {
  app.get("/overview", async (c) => {
    const { now, counts, countedTo, dead, destinations } = await overview(contextFor(c, deps));
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
        <p class="muted">The last 24 hours, to {iso(now)}.</p>
        <h2>Events by source and type</h2>
        {pairs.size === 0 ? (
          <p>No events in the last 24 hours.</p>
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
        <h2>Deliveries by destination</h2>
        <table>
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
                  <td>
                    <a href="/dashboard/destinations">{d.name}</a>
                  </td>
                  <td>{t.delivered}</td>
                  <td>{t.failed}</td>
                  <td class={t.dead ? "bad" : ""}>{t.dead}</td>
                  <td>{bound(t.p50Ms)}</td>
                  <td>{bound(t.p99Ms)}</td>
                  <td>{stateOf(d.controls)}</td>
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
        <h2>Dead letters</h2>
        <p>
          <span class={dead.dead ? "bad" : ""}>
            {dead.capped ? `More than ${dead.dead}` : dead.dead} dead deliver{dead.dead === 1 ? "y" : "ies"}
          </span>{" "}
          waiting. <a href="/dashboard/dead-letters">Dead letters</a>
        </p>
      </Page>,
    );
  });
};
