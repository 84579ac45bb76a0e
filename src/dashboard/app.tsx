/** @jsxImportSource hono/jsx */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { csrf } from "hono/csrf";
import { secureHeaders } from "hono/secure-headers";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { RouterDeps } from "../core/deps.ts";
import { RouterError, type ErrorBody } from "../core/errors.ts";
import { readVar } from "../config/load.ts";
import type { ReadinessProblem } from "../core/readiness.ts";
import { readiness } from "../operations/config.ts";
import { signIn } from "../operations/sessions.ts";
import { Page, ReadinessProblems, STYLE, STYLE_PATH } from "./layout.tsx";
import { auditPages } from "./pages/audit.tsx";
import { capacityPages } from "./pages/capacity.tsx";
import { customerDataPages } from "./pages/customer-data.tsx";
import { deadLetterPages } from "./pages/dead-letters.tsx";
import { destinationPages } from "./pages/destinations.tsx";
import { eventPages } from "./pages/events.tsx";
import { keyPages } from "./pages/keys.tsx";
import { overviewPages } from "./pages/overview.tsx";
import { replayPages } from "./pages/replays.tsx";
import { resendPages } from "./pages/resend.tsx";
import { routingPages } from "./pages/routing.tsx";
import { endAllSessions, endSession, hasSession, setSessionCookie } from "./session.ts";
import { actorFor, contextFor, originFor, type DashboardEnv } from "./shared.ts";

/** A dashboard form holds a payload or a config at most: the admin API's limit. */
const MAX_FORM_BYTES = 1024 * 1024;

/**
 * The dashboard's headers (Hono's secure-headers): styles from this origin only and nothing else loads (no script at
 * all), forms post only here, no framing (frame-ancestors and X-Frame-Options for older browsers), no referrer, no
 * MIME sniffing.
 */
const SECURITY_HEADERS = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
  },
  xFrameOptions: "DENY",
  referrerPolicy: "no-referrer",
  xContentTypeOptions: "nosniff",
});

/**
 * The dashboard at /dashboard: sign-in with the admin token, then the overview (rollups only), events (bounded
 * searches), one event with its payload (redacted unless revealed, audited) and every attempt, dead letters with a
 * counted bulk redrive, bulk replay jobs (start, progress, cancel), destinations with their controls, the routing dry
 * run, a customer's deletion request, the payload key ring and the audit log. Server-rendered, no script.
 */
export function createDashboard(deps: RouterDeps) {
  const app = new Hono<DashboardEnv>();
  app.use("*", SECURITY_HEADERS);
  // Every answer may carry customer data or a session: no browser or proxy keeps a copy. Only the stylesheet, which
  // holds neither and changes its URL with its content, may be kept.
  app.use("*", async function noStore(c, next) {
    await next();
    if (c.req.path !== `/dashboard${STYLE_PATH}`) c.header("Cache-Control", "no-store");
  });
  // A form posted from another origin is refused (403) before anything else runs.
  app.use("*", csrf());
  app.use(
    "*",
    bodyLimit({
      maxSize: MAX_FORM_BYTES,
      onError: () => {
        throw new RouterError("payload_too_large", { detail: `dashboard form over ${MAX_FORM_BYTES} bytes` });
      },
    }),
  );

  app.get(STYLE_PATH, (c) =>
    c.body(STYLE, 200, {
      "Content-Type": "text/css; charset=utf-8",
      "Cache-Control": "public, max-age=86400, immutable",
    }),
  );
  app.get("/sign-in", (c) =>
    c.html(
      <SignIn
        disabled={readVar(c.env, "ADMIN_TOKEN") === undefined}
        failed={c.req.query("failed") === "1"}
        everywhere={c.req.query("everywhere") === "1"}
      />,
    ),
  );
  app.post("/sign-in", async (c) => {
    const form = await c.req.parseBody();
    const session = await signIn(contextFor(c, deps), originFor(c), typeof form.token === "string" ? form.token : "");
    if (!session) return c.redirect("/dashboard/sign-in?failed=1", 303);
    await setSessionCookie(c, session);
    return c.redirect("/dashboard/overview", 303);
  });
  app.post("/sign-out", async (c) => {
    await endSession(c, contextFor(c, deps), await actorFor(c));
    return c.redirect("/dashboard/sign-in", 303);
  });

  // Everything below needs a session; without one, a page sends the browser to sign in.
  app.use("*", async (c, next) => {
    if (!(await hasSession(c, contextFor(c, deps)))) return c.redirect("/dashboard/sign-in", 303);
    await next();
  });

  app.post("/sign-out-everywhere", async (c) => {
    await endAllSessions(c, contextFor(c, deps), await actorFor(c));
    return c.redirect("/dashboard/sign-in?everywhere=1", 303);
  });
  // While the config or a secret it needs is wrong, every page names the fields at fault. A config that does not
  // load leaves no page to show but Routing, whose Validate checks a corrected one.
  app.use("*", async function readinessProblems(c, next) {
    const report = await readiness(contextFor(c, deps));
    if (report.ready) return next();
    if (!report.config && !ROUTING_PATHS.has(c.req.path))
      return c.html(
        <Page title="Configuration invalid" signedIn>
          <ReadinessProblems problems={report.problems} />
          <p>
            No page can be shown until the config loads. <a href="/dashboard/routing">Routing</a> validates a corrected
            one.
          </p>
        </Page>,
        503,
      );
    await next();
    await withProblems(c, report.problems);
  });
  app.get("/", (c) => c.redirect("/dashboard/overview", 303));
  for (const pages of [
    overviewPages,
    resendPages,
    eventPages,
    deadLetterPages,
    replayPages,
    destinationPages,
    routingPages,
    customerDataPages,
    keyPages,
    auditPages,
    capacityPages,
  ])
    pages(app, deps);
  return app;
}

/** The pages that work with a config that does not load: Routing shows it and validates a corrected one. */
const ROUTING_PATHS = new Set(["/dashboard/routing", "/dashboard/routing/validate"]);

/**
 * Puts the readiness problems at the top of a page that rendered: the pages stay as they are, and each one shows
 * them. Only HTML pages; a redirect or the stylesheet passes as it is.
 */
async function withProblems(c: Context<DashboardEnv>, problems: readonly ReadinessProblem[]): Promise<void> {
  if (!c.res.headers.get("content-type")?.startsWith("text/html")) return;
  const html = await c.res.text();
  const notice = String(await (<ReadinessProblems problems={problems} />).toString());
  // A function as the replacement: the notice is HTML, and `$` in it must stay as it is.
  c.res = new Response(
    html.replace("<main>", () => `<main>${notice}`),
    c.res,
  );
}

/** The app's one error handler answers dashboard paths with this page: the same code and message as the API. */
export function errorPage(
  c: Context,
  body: ErrorBody,
  status: ContentfulStatusCode,
  headers?: Record<string, string>,
): Response | Promise<Response> {
  return c.html(
    <Page title="Something went wrong" signedIn={false}>
      <p class="bad" role="alert">
        {body.error.code}: {body.error.message}
      </p>
      {body.error.details && (
        <ul>
          {body.error.details.map((d) => (
            <li>{d}</li>
          ))}
        </ul>
      )}
      <p class="muted">Request {body.error.requestId}</p>
      <p>
        <a href="/dashboard/overview">Back to the dashboard</a>
      </p>
    </Page>,
    status,
    headers,
  );
}

function SignIn(props: { disabled: boolean; failed: boolean; everywhere: boolean }) {
  if (props.disabled)
    return (
      <Page title="Sign in" signedIn={false}>
        <p class="bad" role="alert">
          The admin surface (this dashboard and the admin API) is disabled: ADMIN_TOKEN is not set.
        </p>
        <p>
          To enable it, set ADMIN_TOKEN to a long random value (<code>openssl rand -hex 32</code>): locally in
          .dev.vars, then restart <code>npm run dev</code>; on a deployment with{" "}
          <code>npx wrangler secret put ADMIN_TOKEN</code>. Then reload this page and sign in with that token.
        </p>
      </Page>
    );
  return (
    <Page title="Sign in" signedIn={false}>
      {props.failed && (
        <p class="bad" role="alert">
          That token is not the admin token.
        </p>
      )}
      {props.everywhere && (
        <p class="notice" role="status">
          Every dashboard session has been signed out.
        </p>
      )}
      <form method="post" action="/dashboard/sign-in">
        <label>
          Admin token
          <input name="token" type="password" autocomplete="current-password" required />
        </label>
        <p>
          <button type="submit">Sign in</button>
        </p>
      </form>
    </Page>
  );
}
