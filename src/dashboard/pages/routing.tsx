/** @jsxImportSource hono/jsx */
import { insecureDestinationsAllowed, loadConfig, readVar } from "../../config/load.ts";
import { parseConfig } from "../../core/config/parse.ts";
import type { RouterConfig } from "../../core/config/schema.ts";
import { dryRun, type DryRunEvent } from "../../core/dry-run.ts";
import { RouterError } from "../../core/errors.ts";
import type { ProviderRegistry } from "../../core/providers/contract.ts";
import { Page } from "../layout.tsx";
import { text, type Pages } from "../shared.ts";

/** What the forms were given, so a page with a result or an error keeps what was typed. */
interface Typed {
  source?: string;
  eventType?: string;
  merchant?: string;
  payload?: string;
  config?: string;
}

type ConfigCheck = { valid: true } | { valid: false; errors: string[] } | null;

const MAX_FORM_TEXT = 700_000;

function RoutingPage(props: { config: RouterConfig; running: string; typed: Typed; results?: DryRunEvent[]; error?: string; check: ConfigCheck }) {
  const { config, typed, results, error, check } = props;
  return (
    <Page title="Routing" signedIn>
      <h2>Dry run</h2>
      <p class="muted">Which routes an event would match and which destinations would get it, with the checks ingest makes. Nothing is stored or sent.</p>
      <form method="post" action="/dashboard/routing/dry-run">
        <fieldset>
          <legend>Event</legend>
          <label>
            Source
            <select name="source">
              {Object.keys(config.sources).sort().map((name) => (
                <option value={name} selected={name === typed.source}>{name}</option>
              ))}
            </select>
          </label>
          <label>Event type<input name="eventType" value={typed.eventType ?? ""} placeholder="as the path gives it: create, order-v4" /></label>
          <label>Merchant<input name="merchant" value={typed.merchant ?? ""} placeholder="the query's merchant, if any" /></label>
        </fieldset>
        <label>
          Payload
          <textarea name="payload" rows={12} required>{typed.payload ?? ""}</textarea>
        </label>
        <p><button type="submit">Dry run</button></p>
      </form>
      {error && <p class="bad" role="alert">{error}</p>}
      {results && (
        <section aria-label="Dry run result">
          <h2>Dry run result</h2>
          {results.map((r) => (
            <>
              <p>
                Event type: {r.eventType}. Order: {r.providerOrderId ?? "—"}. Merchant: {r.merchantId ?? "—"}.
                {r.quarantine ? ` It would be held in quarantine (${r.quarantine.reason}), delivered nowhere.` : ""}
              </p>
              <table>
                <thead><tr><th scope="col">Route</th><th scope="col">Matched</th><th scope="col">Why</th></tr></thead>
                <tbody>
                  {r.routes.map((route) => (
                    <tr><td>{route.route}</td><td>{route.matched ? "yes" : "no"}</td><td>{route.reason}</td></tr>
                  ))}
                </tbody>
              </table>
              <h3>Destinations</h3>
              {r.deliveries.length === 0 && !r.responder ? (
                <p>No destination would get it.</p>
              ) : (
                <ul>
                  {r.responder && <li>{r.responder.destination} (route {r.responder.route}, answers the Draft)</li>}
                  {r.deliveries.map((d) => (
                    <li>{d.destination} (route {d.route})</li>
                  ))}
                  {r.skippedDisabled.map((d) => (
                    <li>{d.destination} (route {d.route}): skipped, disabled</li>
                  ))}
                </ul>
              )}
            </>
          ))}
        </section>
      )}
      <h2>Config</h2>
      <p>The running config is valid. It comes from {props.running}; a change is applied by deploying it, never from here.</p>
      <form method="post" action="/dashboard/routing/validate">
        <label>
          Config JSON
          <textarea name="config" rows={14} required>{typed.config ?? JSON.stringify(config, null, 2)}</textarea>
        </label>
        <p><button type="submit">Validate</button></p>
      </form>
      {check?.valid === true && <p class="notice" role="status">Valid.</p>}
      {check?.valid === false && (
        <div class="bad" role="alert">
          Not valid:
          <ul>{check.errors.map((e) => <li>{e}</li>)}</ul>
        </div>
      )}
    </Page>
  );
}

function typedOf(form: Record<string, unknown>): Typed {
  return {
    source: text(form.source, 63),
    eventType: text(form.eventType, 63),
    merchant: text(form.merchant),
    payload: text(form.payload, MAX_FORM_TEXT),
    config: text(form.config, MAX_FORM_TEXT),
  };
}

async function tryDryRun(config: RouterConfig, providers: ProviderRegistry, typed: Typed): Promise<{ results?: DryRunEvent[]; error?: string }> {
  let payload: unknown;
  try {
    payload = JSON.parse(typed.payload ?? "");
  } catch {
    return { error: "invalid_request: the payload is not JSON." };
  }
  try {
    return { results: await dryRun(config, providers, { source: typed.source ?? "", eventType: typed.eventType, merchantId: typed.merchant, payload }) };
  } catch (err) {
    if (err instanceof RouterError) return { error: `${err.code}: ${err.message}${err.details ? ` ${err.details.join("; ")}` : ""}` };
    throw err;
  }
}

/** Routing: the dry run over the running config, and validation of a proposed one. */
export const routingPages: Pages = (app, { providers }) => {
  const running = (env: Env) => (readVar(env, "ROUTER_CONFIG") ? "the ROUTER_CONFIG variable" : "router.config.json");

  app.get("/routing", (c) => c.html(<RoutingPage config={loadConfig(c.env, providers)} running={running(c.env)} typed={{}} check={null} />));

  app.post("/routing/dry-run", async (c) => {
    const config = loadConfig(c.env, providers);
    const typed = typedOf(await c.req.parseBody());
    const outcome = await tryDryRun(config, providers, typed);
    return c.html(<RoutingPage config={config} running={running(c.env)} typed={typed} check={null} {...outcome} />, outcome.error ? 400 : 200);
  });

  app.post("/routing/validate", async (c) => {
    const config = loadConfig(c.env, providers);
    const typed = typedOf(await c.req.parseBody());
    let check: ConfigCheck;
    try {
      const result = parseConfig(JSON.parse(typed.config ?? ""), { providers, allowInsecureDestinations: insecureDestinationsAllowed(c.env) });
      check = result.ok ? { valid: true } : { valid: false, errors: result.errors };
    } catch {
      check = { valid: false, errors: ["(root): is not JSON"] };
    }
    return c.html(<RoutingPage config={config} running={running(c.env)} typed={typed} check={check} />);
  });
};
