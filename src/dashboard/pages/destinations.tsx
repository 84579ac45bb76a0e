/** @jsxImportSource hono/jsx */
import { totalsOf } from "../../core/rollups.ts";
import { controlDestination, destinationDays, type ControlAction } from "../../operations/destinations.ts";
import { DestinationParams, parseInput, PauseBody } from "../../operations/inputs.ts";
import { Page } from "../layout.tsx";
import { Pill, When } from "../pills.tsx";
import { actorFor, contextFor, stateOf, type Pages } from "../shared.ts";

/** Destinations: the last day's counts, the controls' state, and pause (with a reason) / resume / re-enable. */
export const destinationPages: Pages = (app, deps) => {
  app.get("/destinations", async (c) => {
    const ctx = contextFor(c, deps);
    const views = await destinationDays(ctx);
    const now = ctx.clock.now();
    return c.html(
      <Page title="Destinations" signedIn>
        <table class="stack">
          <caption class="notice">Last 24 hours</caption>
          <thead>
            <tr>
              <th scope="col">Destination</th>
              <th scope="col">Delivered</th>
              <th scope="col">Failed attempts</th>
              <th scope="col">Dead</th>
              <th scope="col">State</th>
              <th scope="col">Held</th>
              <th scope="col">Control</th>
            </tr>
          </thead>
          <tbody>
            {views.map(({ name, controls: ctl, hours }) => {
              const totals = totalsOf(hours);
              return (
                <tr>
                  <td data-label="Destination">{name}</td>
                  <td data-label="Delivered">{totals.delivered}</td>
                  <td data-label="Failed attempts">{totals.failed}</td>
                  <td data-label="Dead" class={totals.dead ? "bad" : ""}>
                    {totals.dead}
                  </td>
                  <td data-label="State">
                    <Pill status={stateOf(ctl)} />
                    {ctl?.paused ? ` (${ctl.paused.reason})` : ""}
                    {ctl?.circuit.phase === "open" && ctl.circuit.probeAt !== null && (
                      <>
                        {" "}
                        next probe <When at={ctl.circuit.probeAt} now={now} />
                      </>
                    )}
                    {ctl?.circuit.lastError ? ` (last error ${ctl.circuit.lastError})` : ""}
                  </td>
                  <td data-label="Held">
                    {ctl?.held.count ?? 0}
                    {ctl?.held.oldestHeldAt ? (
                      <>
                        {" "}
                        since <When at={ctl.held.oldestHeldAt} now={now} />
                      </>
                    ) : null}
                  </td>
                  <td data-label="Control">
                    {ctl?.paused ? (
                      <form class="inline" method="post" action={`/dashboard/destinations/${name}/resume`}>
                        <button type="submit">Resume {name}</button>
                      </form>
                    ) : (
                      <form class="inline" method="post" action={`/dashboard/destinations/${name}/pause`}>
                        <label>
                          Reason to pause {name}
                          <input name="reason" required maxlength={200} />
                        </label>
                        <button type="submit">Pause {name}</button>
                      </form>
                    )}
                    {ctl?.disabled && (
                      <form class="inline" method="post" action={`/dashboard/destinations/${name}/enable`}>
                        <button type="submit">Re-enable {name}</button>
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

  app.post("/destinations/:name/:action{pause|resume|enable}", async (c) => {
    const { name } = parseInput(DestinationParams, { name: c.req.param("name") });
    const action = c.req.param("action") as ControlAction;
    const form = await c.req.parseBody();
    const reason = action === "pause" ? parseInput(PauseBody, { reason: form.reason }).reason : null;
    await controlDestination(contextFor(c, deps), await actorFor(c), name, action, reason);
    return c.redirect("/dashboard/destinations", 303);
  });
};
