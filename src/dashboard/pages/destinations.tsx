/** @jsxImportSource hono/jsx */
import { loadConfig, readVar } from "../../config/load.ts";
import { controlDestination, destinationOverview, type ControlView } from "../../control/client.ts";
import type { RouterConfig } from "../../core/config/schema.ts";
import { RouterError } from "../../core/errors.ts";
import { totalsOf, type DeliveryHour } from "../../core/rollups.ts";
import { tokenId } from "../../core/signatures/token-id.ts";
import { auditId, insertAudit } from "../../storage/audit.ts";
import { Page } from "../layout.tsx";
import { stateOf, type Pages } from "../shared.ts";

export interface DestinationView {
  name: string;
  controls: ControlView | null;
  hours: DeliveryHour[];
}

/** Each configured destination's controls and last day of counters: one Durable Object call each, no D1 read. */
export async function destinationViews(env: Env, config: RouterConfig, now: number): Promise<DestinationView[]> {
  const names = Object.keys(config.destinations).sort();
  return Promise.all(
    names.map(async (name) => {
      // An object that cannot be reached shows "unknown"; the page still renders.
      const view = await destinationOverview(env, name, now).catch(() => null);
      return { name, controls: view?.controls ?? null, hours: view?.hours ?? [] };
    }),
  );
}

/** Destinations: the last day's counts, the controls' state, and pause (with a reason) / resume / re-enable. */
export const destinationPages: Pages = (app, { providers, clock }) => {
  app.get("/destinations", async (c) => {
    const config = loadConfig(c.env, providers);
    const views = await destinationViews(c.env, config, clock.now());
    return c.html(
      <Page title="Destinations" signedIn>
        <table>
          <caption class="notice">Last 24 hours</caption>
          <thead><tr><th scope="col">Destination</th><th scope="col">Delivered</th><th scope="col">Failed attempts</th><th scope="col">Dead</th><th scope="col">State</th><th scope="col">Held</th><th scope="col">Control</th></tr></thead>
          <tbody>
            {views.map(({ name, controls: ctl, hours }) => {
              const totals = totalsOf(hours);
              return (
                <tr>
                  <td>{name}</td>
                  <td>{totals.delivered}</td>
                  <td>{totals.failed}</td>
                  <td class={totals.dead ? "bad" : ""}>{totals.dead}</td>
                  <td>{stateOf(ctl)}{ctl?.paused ? ` (${ctl.paused.reason})` : ""}{ctl?.circuit.lastError ? ` (last error ${ctl.circuit.lastError})` : ""}</td>
                  <td>{ctl?.held.count ?? 0}</td>
                  <td>
                    {ctl?.paused ? (
                      <form class="inline" method="post" action={`/dashboard/destinations/${name}/resume`}>
                        <button type="submit">Resume {name}</button>
                      </form>
                    ) : (
                      <form class="inline" method="post" action={`/dashboard/destinations/${name}/pause`}>
                        <label>Reason to pause {name}<input name="reason" required maxlength={200} /></label>
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

  app.post("/destinations/:name{[a-z0-9][a-z0-9_-]{0,62}}/:action{pause|resume|enable}", async (c) => {
    const name = c.req.param("name");
    const action = c.req.param("action") as "pause" | "resume" | "enable";
    const config = loadConfig(c.env, providers);
    if (!config.destinations[name]) throw new RouterError("not_found");
    const form = await c.req.parseBody();
    const reason = typeof form.reason === "string" ? form.reason.trim().slice(0, 200) : "";
    if (action === "pause" && !reason) throw new RouterError("invalid_request", { message: "A pause needs a reason." });
    const now = clock.now();
    const by = await tokenId(readVar(c.env, "ADMIN_TOKEN")!);
    await controlDestination(c.env, config, name, now, action, by, action === "pause" ? reason : null).catch(() => {
      throw new RouterError("controls_unavailable");
    });
    await insertAudit(c.env.DB, { id: auditId(now), at: now, action: `destination_${action}`, tokenId: by, eventId: null, detail: { destination: name, reason: action === "pause" ? reason : null, via: "dashboard" } });
    return c.redirect("/dashboard/destinations", 303);
  });
};
