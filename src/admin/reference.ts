/**
 * `/admin/reference`: the admin API's reference, readable in a browser without the token and without the network.
 * The renderer is Swagger UI from the `swagger-ui-dist` package (pinned in package.json), bundled into the Worker as
 * text (wrangler.toml `rules`) and served from here under its version, so nothing is fetched from a CDN. A person
 * enters the admin token in Swagger UI's own "Authorize" dialog; it stays in the page's memory (never a cookie,
 * storage or a URL) and goes out only as the `Authorization: Bearer` header of the "Try it out" calls, which are
 * checked like every other admin call. The page holds no data: the document it renders is the API's shape
 * (docs/admin-api.md, "The reference page").
 */
import { Hono } from "hono";
import { secureHeaders } from "hono/secure-headers";
import SWAGGER_UI_JS from "swagger-ui-dist/swagger-ui-bundle.js";
import SWAGGER_UI_CSS from "swagger-ui-dist/swagger-ui.css";
import swaggerUiPackage from "swagger-ui-dist/package.json";
import type { AdminEnv } from "./openapi.ts";

/** The version the assets' URLs carry: a new `swagger-ui-dist` is a new URL, so a browser may keep each for a year. */
export const SWAGGER_UI_VERSION: string = swaggerUiPackage.version;

/** Under `/admin` (src/app/worker.ts mounts the admin app there, and the document's `servers` says so). */
const ASSETS = `/reference/assets/swagger-ui-${SWAGGER_UI_VERSION}`;
const SCRIPT_PATH = "/reference/reference.js";

/**
 * Swagger UI over the document. `persistAuthorization: false` keeps the token in memory only (true would write it
 * to localStorage); `validatorUrl: null` stops the badge's call to validator.swagger.io; `queryConfigEnabled: false`
 * ignores configuration (another document's URL) in the page's query string.
 */
const SCRIPT = `"use strict";
window.ui = SwaggerUIBundle({
  url: "/admin/openapi.json",
  dom_id: "#reference",
  persistAuthorization: false,
  validatorUrl: null,
  queryConfigEnabled: false,
  deepLinking: false,
});
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Webhook router admin API</title>
<link rel="stylesheet" href="/admin${ASSETS}/swagger-ui.css">
</head>
<body>
<noscript><p>This reference needs JavaScript. The OpenAPI document is at <a href="/admin/openapi.json">/admin/openapi.json</a>.</p></noscript>
<div id="reference"></div>
<script src="/admin${ASSETS}/swagger-ui-bundle.js"></script>
<script src="/admin${SCRIPT_PATH}"></script>
</body>
</html>
`;

/**
 * Scripts and styles from this origin only, none inline; calls (the document, "Try it out") to this origin only;
 * images from here or `data:` (Swagger UI's stylesheet draws its icons as data: SVGs, which cannot run script); no
 * framing, no referrer, no MIME sniffing.
 */
const SECURITY_HEADERS = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", "data:"],
    connectSrc: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
  },
  xFrameOptions: "DENY",
  referrerPolicy: "no-referrer",
  xContentTypeOptions: "nosniff",
});

const IMMUTABLE = "public, max-age=31536000, immutable";

/**
 * The page, its script and the pinned renderer. Mounted before the admin app's token check and its `no-store`, so
 * every answer here sets its own caching: the page and the script are re-read on each visit (they change with a
 * deploy), the renderer's files are kept for a year under their version.
 */
export function referenceRoutes() {
  // Per route, not `use("*")`: mounted at the admin app's root, a sub-app's "*" middleware would run for every route.
  const app = new Hono<AdminEnv>();
  app.get("/reference", SECURITY_HEADERS, (c) => c.html(PAGE, 200, { "Cache-Control": "no-store" }));
  app.get(SCRIPT_PATH, SECURITY_HEADERS, (c) =>
    c.body(SCRIPT, 200, { "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-cache" }),
  );
  app.get(`${ASSETS}/swagger-ui-bundle.js`, SECURITY_HEADERS, (c) =>
    c.body(SWAGGER_UI_JS, 200, { "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": IMMUTABLE }),
  );
  app.get(`${ASSETS}/swagger-ui.css`, SECURITY_HEADERS, (c) =>
    c.body(SWAGGER_UI_CSS, 200, { "Content-Type": "text/css; charset=utf-8", "Cache-Control": IMMUTABLE }),
  );
  return app;
}
