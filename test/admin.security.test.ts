import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createAdmin } from "../src/admin/app.ts";
import { SYSTEM_CLOCK } from "../src/core/clock.ts";
import { BUILTIN_PROVIDERS } from "../src/core/providers/registry.ts";
import { SWAGGER_UI_VERSION } from "../src/admin/reference.ts";
import worker from "../src/index.ts";
import { ROUTER } from "./helpers.ts";

/**
 * One security test for every route the admin app registers, read from the app itself: a route added later is
 * covered without anyone remembering to add it here.
 */
const ALL_ROUTES = createAdmin({ providers: BUILTIN_PROVIDERS, clock: SYSTEM_CLOCK })
  .routes.filter((route) => route.method !== "ALL")
  .map((route) => ({
    method: route.method,
    path: route.path
      .replace("{eventId}", "evt_0123456789abcdef0123456789abcdef")
      .replace(":eventId", "evt_0123456789abcdef0123456789abcdef"),
  }))
  // A route with its own middleware is listed once for each handler.
  .filter((route, i, all) => all.findIndex((r) => r.method === route.method && r.path === route.path) === i);

/**
 * The only routes that answer without the token: the reference page, its script, the pinned renderer and the
 * OpenAPI document, which hold the API's shape and no data (docs/admin-api.md, "The reference page").
 */
const PUBLIC = [
  "GET /reference",
  "GET /reference/reference.js",
  `GET /reference/assets/swagger-ui-${SWAGGER_UI_VERSION}/swagger-ui-bundle.js`,
  `GET /reference/assets/swagger-ui-${SWAGGER_UI_VERSION}/swagger-ui.css`,
  "GET /openapi.json",
];
const ROUTES = ALL_ROUTES.filter((route) => !PUBLIC.includes(`${route.method} ${route.path}`));

function request(method: string, path: string, headers: Record<string, string> = {}): Request {
  return new Request(`${ROUTER}/admin${path}`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: method === "GET" ? undefined : "{}",
  });
}

const unauthorized = {
  error: { code: "unauthorized", message: "Missing or invalid bearer token.", requestId: expect.any(String) },
};

describe("every admin route is protected", () => {
  it("covers all registered routes but the reference page, its files and the document", () => {
    const paths = ROUTES.map((r) => `${r.method} ${r.path}`);
    expect(paths).toEqual(
      expect.arrayContaining(["GET /events", "POST /replays", "POST /config/validate", "GET /capacity"]),
    );
    expect(ROUTES.length).toBeGreaterThanOrEqual(12);
    expect(ALL_ROUTES.map((r) => `${r.method} ${r.path}`)).toEqual(expect.arrayContaining(PUBLIC));
  });

  it("answers without the token only on the public routes", async () => {
    const open: string[] = [];
    for (const { method, path } of ALL_ROUTES) {
      const res = await exports.default.fetch(request(method, path));
      await res.body?.cancel();
      if (res.status !== 401) open.push(`${method} ${path}`);
    }
    expect(open.sort()).toEqual([...PUBLIC].sort());
  });

  for (const { method, path } of ROUTES) {
    it(`${method} ${path} answers 401 without the token, with a wrong one, or with another scheme`, async () => {
      const attempts: Record<string, string>[] = [
        {},
        { Authorization: "Bearer wrong-token" },
        { Authorization: `Basic ${env.ADMIN_TOKEN}` },
        { Authorization: `Bearer ${env.ADMIN_TOKEN}x` },
      ];
      for (const headers of attempts) {
        const res = await exports.default.fetch(request(method, path, headers));
        expect(res.status).toBe(401);
        expect(res.headers.get("www-authenticate")).toBe('Bearer realm="admin"');
        expect(await res.json()).toEqual(unauthorized);
      }
    });

    it(`${method} ${path} is disabled with 503 when ADMIN_TOKEN is not set`, async () => {
      const req = request(method, path, { Authorization: "Bearer " }) as Parameters<typeof worker.fetch>[0];
      const res = await worker.fetch(
        req,
        { ...env, ADMIN_TOKEN: "" } as Env,
        {
          waitUntil: () => undefined,
          passThroughOnException: () => undefined,
          props: {},
        } as unknown as ExecutionContext,
      );
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({
        error: { code: "admin_disabled", message: expect.any(String), requestId: expect.any(String) },
      });
    });
  }

  it("protects unknown admin paths too", async () => {
    expect((await exports.default.fetch(request("GET", "/nothing"))).status).toBe(401);
  });
});
