/** @jsxImportSource hono/jsx */
import { keyStatus } from "../../operations/customer-data.ts";
import { Page } from "../layout.tsx";
import { contextFor, type Pages } from "../shared.ts";

type Lap = Awaited<ReturnType<typeof keyStatus>>["walk"]["lap"];

const STATE_MEANS = {
  primary: "wraps new data keys",
  draining: "in the ring, may still protect rows",
  retired: "a full lap found nothing it protects: the ring may drop it",
  missing: "still protects rows but is not in the ring: ingest refuses this ring until it is back",
  unused: "in the ring, never used",
} as const;

function LapRow(props: { label: string; lap: Lap }) {
  const { lap } = props;
  return (
    <tr>
      <th scope="row">{props.label}</th>
      {lap ? (
        <>
          <td>{lap.startedAt}</td>
          <td>{lap.completedAt ?? "not yet"}</td>
          <td>{lap.walked}</td>
          <td>
            {Object.entries(lap.byKey)
              .map(([keyId, rows]) => `${keyId}: ${rows}`)
              .join(", ") || "—"}
          </td>
        </>
      ) : (
        <td colspan={4}>none yet</td>
      )}
    </tr>
  );
}

/** The payload key ring for a rotation (the admin API's GET /admin/keys): key ids and counts, never key material. */
export const keyPages: Pages = (app, deps) => {
  app.get("/keys", async (c) => {
    const status = await keyStatus(contextFor(c, deps));
    return c.html(
      <Page title="Payload keys" signedIn>
        <table>
          <tbody>
            <tr>
              <th scope="row">Encryption</th>
              <td>{status.encryption}</td>
            </tr>
            <tr>
              <th scope="row">Primary key</th>
              <td>{status.primary ?? "none"}</td>
            </tr>
          </tbody>
        </table>
        <p class="muted">
          Key ids only: the key material never leaves the <code>PAYLOAD_KEYS</code> secret.
        </p>
        <table>
          <caption class="notice">
            {status.keys.length === 0
              ? "No keys in the ring or the registry."
              : `${status.keys.length} key${status.keys.length === 1 ? "" : "s"}`}
          </caption>
          <thead>
            <tr>
              <th scope="col">Key id</th>
              <th scope="col">State</th>
              <th scope="col">In the ring</th>
              <th scope="col">Rows (last full lap)</th>
              <th scope="col">First used</th>
              <th scope="col">Demoted</th>
              <th scope="col">Retired</th>
              <th scope="col">Removable</th>
            </tr>
          </thead>
          <tbody>
            {status.keys.map((k) => (
              <tr>
                <td>{k.keyId}</td>
                <td class={k.state === "missing" ? "bad" : ""}>
                  {k.state}
                  <br />
                  <span class="muted">{STATE_MEANS[k.state]}</span>
                </td>
                <td>{k.inRing ? "yes" : "no"}</td>
                <td>{k.lastLapRows ?? "—"}</td>
                <td>{k.firstUsedAt ?? "—"}</td>
                <td>{k.demotedAt ?? "—"}</td>
                <td>{k.retiredAt ?? "—"}</td>
                <td>{k.removable ? "yes" : "no"}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <h2>Maintenance walk</h2>
        <p class="muted">
          The Cron's walk re-wraps every data key under the primary key; a key is retired once a full lap, started after
          it stopped being primary, found none it protects.
        </p>
        <table>
          <thead>
            <tr>
              <th scope="col">Lap</th>
              <th scope="col">Started</th>
              <th scope="col">Completed</th>
              <th scope="col">Rows walked</th>
              <th scope="col">Rows per key</th>
            </tr>
          </thead>
          <tbody>
            <LapRow label="Current" lap={status.walk.lap} />
            <LapRow label="Last complete" lap={status.walk.lastLap} />
          </tbody>
        </table>
      </Page>,
    );
  });
};
