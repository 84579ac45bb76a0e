/** @jsxImportSource hono/jsx */
import { capacityReport } from "../../operations/capacity.ts";
import { Page } from "../layout.tsx";
import { contextFor, iso, type Pages } from "../shared.ts";

/** Bytes as counted, with separators: the admin API's figure, readable. */
const byteCount = (bytes: number | null) => (bytes === null ? "—" : `${bytes.toLocaleString("en-US")} bytes`);
const percent = (share: number | null) => (share === null ? "—" : `${(share * 100).toFixed(1)}%`);
const number = (value: number | null) => (value === null ? "—" : value.toLocaleString("en-US"));

/** Each shard's size against D1's limit (the admin API's GET /admin/capacity, through the same operation). */
export const capacityPages: Pages = (app, deps) => {
  app.get("/capacity", async (c) => {
    const { now, thresholds, allFull, shards } = await capacityReport(contextFor(c, deps));
    return c.html(
      <Page title="Capacity" signedIn>
        <p class="muted">
          Each D1 database's size as D1 reports it after every write, recorded at most once a minute, to {iso(now)}.
        </p>
        {allFull && (
          <p class="bad" role="alert">
            No shard has room under {thresholds.readOnlyPercent}%: ingest answers 503 storage_full and the providers
            retry. Free space (retention) or add a shard.
          </p>
        )}
        <table>
          <thead>
            <tr>
              <th scope="col">Shard</th>
              <th scope="col">State</th>
              <th scope="col">Size</th>
              <th scope="col">Of {byteCount(thresholds.limitBytes)}</th>
              <th scope="col">Events / day</th>
              <th scope="col">Rows written / event</th>
              <th scope="col">Bytes / event</th>
              <th scope="col">Days until full</th>
              <th scope="col">Measured</th>
            </tr>
          </thead>
          <tbody>
            {shards.map((s) => (
              <tr>
                <td>
                  {s.id} ({s.binding})
                </td>
                <td>
                  {s.state.replace("_", "-")}
                  {s.readOnly ? ` since ${iso(s.readOnly.since)} (${s.readOnly.reason})` : ""}
                </td>
                <td>{byteCount(s.sizeBytes)}</td>
                <td class={s.level === "critical" || s.level === "full" ? "bad" : ""}>
                  {percent(s.share)}
                  {s.level && s.level !== "ok" ? ` (${s.level})` : ""}
                </td>
                <td>{number(s.eventsPerDay)}</td>
                <td>{number(s.rowsWrittenPerEvent)}</td>
                <td>{number(s.bytesPerEvent)}</td>
                <td>{s.daysUntilFull === null ? "not growing" : number(s.daysUntilFull)}</td>
                <td>{iso(s.measuredAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <p class="muted">
          Alerts at {thresholds.warnPercent}% and {thresholds.criticalPercent}%. Past {thresholds.readOnlyPercent}% a
          shard takes no new events, so the rest stays for the deliveries of events already accepted: the router makes
          it read-only (audited, alerted) while another shard has room. A read-only shard still serves reads, replays
          and retention. Days until full count to that line at the growth of the last day.
        </p>
      </Page>,
    );
  });
};
