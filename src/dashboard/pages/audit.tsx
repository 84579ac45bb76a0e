/** @jsxImportSource hono/jsx */
import { auditLog, type AuditEntry } from "../../operations/audit.ts";
import { AuditQuery, EventId, parseInput, ReplayIdParams } from "../../operations/inputs.ts";
import { Page } from "../layout.tsx";
import { contextFor, field, iso, PAGE_SIZE, type Pages } from "../shared.ts";

const isEventId = (value: string) => EventId.safeParse(value).success;
const isReplayId = (value: string) => ReplayIdParams.shape.replayId.safeParse(value).success;

/**
 * One value of an entry's detail. Details hold field names, counts, ids and the operator's own words, never a
 * payload value or a token (src/operations/context.ts `recordAction`); event and replay ids link to their pages.
 */
function DetailValue(props: { value: unknown }) {
  const { value } = props;
  if (typeof value === "string" && isEventId(value)) return <a href={`/dashboard/events/${value}`}>{value}</a>;
  if (typeof value === "string" && isReplayId(value)) return <a href={`/dashboard/replays/${value}`}>{value}</a>;
  if (typeof value === "string") return <>{value}</>;
  return <>{JSON.stringify(value)}</>;
}

/** The entry's detail as the API gives it, `via` aside (its own column). */
function Detail(props: { entry: AuditEntry }) {
  const { via: _via, ...detail } = props.entry.detail;
  const keys = Object.keys(detail);
  if (keys.length === 0) return <>—</>;
  return (
    <>
      {keys.map((key, i) => (
        <>
          {i > 0 && <br />}
          <span class="muted">{key}:</span> <DetailValue value={detail[key]} />
        </>
      ))}
    </>
  );
}

/** The audit log, newest first, one operation's keyset pages; filtered to one event when asked. */
export const auditPages: Pages = (app, deps) => {
  app.get("/audit", async (c) => {
    const q = c.req.query();
    const query = parseInput(AuditQuery, { eventId: field(q.eventId), cursor: field(q.cursor), limit: PAGE_SIZE });
    const { entries, nextCursor } = await auditLog(contextFor(c, deps), query);
    const older =
      nextCursor &&
      `/dashboard/audit?${new URLSearchParams({ ...(query.eventId ? { eventId: query.eventId } : {}), cursor: nextCursor })}`;
    return c.html(
      <Page title="Audit log" signedIn>
        <form method="get" action="/dashboard/audit">
          <fieldset>
            <legend>Filter</legend>
            <label>
              Event id
              <input name="eventId" value={q.eventId ?? ""} placeholder="evt_…" />
            </label>
            <button type="submit">Show</button>
          </fieldset>
        </form>
        <table>
          <caption class="notice">
            {entries.length === 0
              ? "No entries."
              : `${entries.length} entr${entries.length === 1 ? "y" : "ies"}, newest first${query.eventId ? `, for ${query.eventId}` : ""}. Tokens appear as their ids, never themselves.`}
          </caption>
          <thead>
            <tr>
              <th scope="col">At</th>
              <th scope="col">Action</th>
              <th scope="col">Token id</th>
              <th scope="col">Via</th>
              <th scope="col">Event</th>
              <th scope="col">Detail</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr id={e.id}>
                <td>
                  {iso(e.at)}
                  <br />
                  <span class="muted">{e.id}</span>
                </td>
                <td>{e.action}</td>
                <td>{e.tokenId}</td>
                <td>{typeof e.detail.via === "string" ? e.detail.via : "—"}</td>
                <td>{e.eventId ? <a href={`/dashboard/events/${e.eventId}`}>{e.eventId}</a> : "—"}</td>
                <td>
                  <Detail entry={e} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {older && <a href={older}>Older entries</a>}
      </Page>,
    );
  });
};
