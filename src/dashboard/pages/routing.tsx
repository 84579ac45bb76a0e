/** @jsxImportSource hono/jsx */
import { RouterError } from "../../core/errors.ts";
import {
  routingDryRun,
  runningConfig,
  validateConfig,
  type DryRunEvent,
  type RouterConfig,
} from "../../operations/config.ts";
import { DryRunBody, parseInput, ProposedConfig } from "../../operations/inputs.ts";
import { Page } from "../layout.tsx";
import { contextFor, field, type DashboardContext, type Pages } from "../shared.ts";

/** What the forms were given, so a page with a result or an error keeps what was typed. */
interface Typed {
  source?: string;
  eventType?: string;
  merchant?: string;
  payload?: string;
  config?: string;
}

type ConfigCheck = { valid: true } | { valid: false; errors: string[] } | null;

function RoutingPage(props: {
  /** Null while the running config does not load: only Validate is offered, with its text. */
  config: RouterConfig | null;
  configText: string;
  running: string;
  typed: Typed;
  results?: DryRunEvent[];
  error?: RouterError;
  check: ConfigCheck;
}) {
  const { config, typed, results, error, check } = props;
  return (
    <Page title="Routing" signedIn>
      <h2>Dry run</h2>
      <p class="muted">
        Which routes an event would match and which destinations would get it, with the checks ingest makes. Nothing is
        stored or sent.
      </p>
      {!config && <p>There is no dry run while the running config is invalid: validate a corrected one below.</p>}
      <form method="post" action="/dashboard/routing/dry-run">
        <fieldset>
          <legend>Event</legend>
          <label>
            Source
            <select name="source">
              {Object.keys(config?.sources ?? {})
                .sort()
                .map((name) => (
                  <option value={name} selected={name === typed.source}>
                    {name}
                  </option>
                ))}
            </select>
          </label>
          <label>
            Event type
            <input
              name="eventType"
              value={typed.eventType ?? ""}
              placeholder="as the path gives it: create, order-v4"
            />
          </label>
          <label>
            Merchant
            <input name="merchant" value={typed.merchant ?? ""} placeholder="the query's merchant, if any" />
          </label>
        </fieldset>
        <label>
          Payload
          <textarea name="payload" rows={12} required>
            {typed.payload ?? ""}
          </textarea>
        </label>
        <p>
          <button type="submit">Dry run</button>
        </p>
      </form>
      {error && (
        <div class="bad" role="alert">
          {error.code}: {error.message}
          {error.details && (
            <ul>
              {error.details.map((d) => (
                <li>{d}</li>
              ))}
            </ul>
          )}
        </div>
      )}
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
                <thead>
                  <tr>
                    <th scope="col">Route</th>
                    <th scope="col">Matched</th>
                    <th scope="col">Why</th>
                  </tr>
                </thead>
                <tbody>
                  {r.routes.map((route) => (
                    <tr>
                      <td>{route.route}</td>
                      <td>{route.matched ? "yes" : "no"}</td>
                      <td>{route.reason}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <h3>Destinations</h3>
              {r.deliveries.length === 0 && !r.responder ? (
                <p>No destination would get it.</p>
              ) : (
                <ul>
                  {r.responder && (
                    <li>
                      {r.responder.destination} (route {r.responder.route}, answers the Draft)
                    </li>
                  )}
                  {r.deliveries.map((d) => (
                    <li>
                      {d.destination} (route {d.route})
                    </li>
                  ))}
                  {r.skippedDisabled.map((d) => (
                    <li>
                      {d.destination} (route {d.route}): skipped, disabled
                    </li>
                  ))}
                </ul>
              )}
            </>
          ))}
        </section>
      )}
      <h2>Config</h2>
      <p>
        The running config is {config ? "valid" : "invalid: its fields are named above"}. It comes from {props.running}.
        A change is applied by deploying it, never from here.
      </p>
      <form method="post" action="/dashboard/routing/validate">
        <label>
          Config JSON
          <textarea name="config" rows={14} required>
            {typed.config ?? props.configText}
          </textarea>
        </label>
        <p>
          <button type="submit">Validate</button>
        </p>
      </form>
      {check?.valid === true && (
        <p class="notice" role="status">
          Valid.
        </p>
      )}
      {check?.valid === false && (
        <div class="bad" role="alert">
          Not valid:
          <ul>
            {check.errors.map((e) => (
              <li>{e}</li>
            ))}
          </ul>
        </div>
      )}
    </Page>
  );
}

/** What was typed, kept as it was typed so the page shows it again. */
function typedOf(form: Record<string, unknown>): Typed {
  const typed = (value: unknown) => (typeof value === "string" ? value : undefined);
  return {
    source: typed(form.source),
    eventType: typed(form.eventType),
    merchant: typed(form.merchant),
    payload: typed(form.payload),
    config: typed(form.config),
  };
}

/** A JSON text field, parsed, or refused naming the field: a form cannot send JSON as the API's body does. */
function jsonField(name: string, value: string | undefined): unknown {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch {
    throw new RouterError("invalid_request", { details: [`${name}: is not JSON`] });
  }
}

/** Routing: the dry run over the running config, and validation of a proposed one. */
export const routingPages: Pages = (app, deps) => {
  const page = (
    c: DashboardContext,
    props: { typed: Typed; results?: DryRunEvent[]; error?: RouterError; check: ConfigCheck },
  ) => {
    const { origin, config, text } = runningConfig(contextFor(c, deps));
    const running = origin === "ROUTER_CONFIG" ? "the ROUTER_CONFIG variable" : "router.config.json";
    return c.html(
      <RoutingPage config={config} configText={text} running={running} {...props} />,
      props.error?.status ?? 200,
    );
  };

  /** A refusal is shown on the page, beside what was typed; anything unexpected is the error page. */
  const refusal = (err: unknown): RouterError => {
    if (err instanceof RouterError) return err;
    throw err;
  };

  app.get("/routing", (c) => page(c, { typed: {}, check: null }));

  app.post("/routing/dry-run", async (c) => {
    const typed = typedOf(await c.req.parseBody());
    try {
      const request = parseInput(DryRunBody, {
        source: field(typed.source),
        eventType: field(typed.eventType),
        merchantId: field(typed.merchant),
        payload: jsonField("payload", typed.payload),
      });
      return page(c, { typed, results: await routingDryRun(contextFor(c, deps), request), check: null });
    } catch (err) {
      return page(c, { typed, error: refusal(err), check: null });
    }
  });

  app.post("/routing/validate", async (c) => {
    const typed = typedOf(await c.req.parseBody());
    let proposed: unknown;
    try {
      proposed = JSON.parse(typed.config ?? "");
    } catch {
      // Not a config at all: said as the validation's own first error, as before.
      return page(c, { typed, check: { valid: false, errors: ["(root): is not JSON"] } });
    }
    try {
      const result = validateConfig(contextFor(c, deps), parseInput(ProposedConfig, proposed));
      return page(c, { typed, check: result.valid ? { valid: true } : { valid: false, errors: result.errors } });
    } catch (err) {
      return page(c, { typed, error: refusal(err), check: null });
    }
  });
};
