import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import packageJson from "../package.json";
import { SWAGGER_UI_VERSION } from "../src/admin/reference.ts";
import worker from "../src/index.ts";
import { ROUTER } from "./helpers.ts";

/** A browser's request: no Authorization header, no cookie. */
const browse = (path: string) => exports.default.fetch(new Request(`${ROUTER}${path}`));

/** Every `src` and `href` of the page's script, link and other elements. */
function urlsOf(html: string): string[] {
  return [...html.matchAll(/\s(?:src|href)="([^"]*)"/g)].map((m) => m[1] as string);
}

/** A Content-Security-Policy header as directive → sources. */
function directives(header: string | null): Record<string, string[]> {
  return Object.fromEntries(
    (header ?? "")
      .split(";")
      .map((part) => part.trim().split(/\s+/))
      .filter(([name]) => name)
      .map(([name, ...sources]) => [name, sources]),
  );
}

describe("the API reference page", () => {
  it("answers 200 without a token, and every script and stylesheet it loads is on this origin and answers 200", async () => {
    const page = await browse("/admin/reference");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("cache-control")).toBe("no-store");
    const html = await page.text();
    const scripts = [...html.matchAll(/<script\b[^>]*\bsrc="([^"]+)"/g)].map((m) => m[1] as string);
    const styles = [...html.matchAll(/<link\b[^>]*\brel="stylesheet"[^>]*\bhref="([^"]+)"/g)].map(
      (m) => m[1] as string,
    );
    expect(scripts).toEqual([
      `/admin/reference/assets/swagger-ui-${SWAGGER_UI_VERSION}/swagger-ui-bundle.js`,
      "/admin/reference/reference.js",
    ]);
    expect(styles).toEqual([`/admin/reference/assets/swagger-ui-${SWAGGER_UI_VERSION}/swagger-ui.css`]);
    for (const url of urlsOf(html)) {
      expect(url, "same origin, by absolute path").toMatch(/^\/admin\//);
      const res = await browse(url);
      expect(res.status, url).toBe(200);
      await res.body?.cancel();
    }
  });

  it("names no external URL: nothing in the page, its script or the document's servers is fetched from elsewhere", async () => {
    const html = await (await browse("/admin/reference")).text();
    const script = await (await browse("/admin/reference/reference.js")).text();
    const doc = await (await browse("/admin/openapi.json")).json<{ servers: { url: string }[] }>();
    // The document's own servers are the only URLs the page may call, and they are this origin's.
    expect(doc.servers).toEqual([{ url: "/admin" }]);
    for (const text of [html, script]) expect(text).not.toMatch(/https?:\/\/|\/\/[a-z0-9.-]+\.[a-z]{2,}/i);
    expect(script).toContain('url: "/admin/openapi.json"');
  });

  it("has no inline script or style, and a policy that allows scripts and styles from this origin only", async () => {
    const page = await browse("/admin/reference");
    const html = await page.text();
    for (const tag of html.match(/<script\b[^>]*>[\s\S]*?<\/script>/g) ?? [])
      expect(tag, "every script is a file").toMatch(/^<script src="[^"]+"><\/script>$/);
    expect(html).not.toMatch(/<style\b|\sstyle=|\son[a-z]+=/i);
    const csp = directives(page.headers.get("content-security-policy"));
    expect(csp).toMatchObject({
      "default-src": ["'none'"],
      "script-src": ["'self'"],
      "style-src": ["'self'"],
      "img-src": ["'self'", "data:"],
      "connect-src": ["'self'"],
      "frame-ancestors": ["'none'"],
      "base-uri": ["'none'"],
    });
    expect(Object.values(csp).flat()).not.toContain("'unsafe-inline'");
    expect(Object.values(csp).flat()).not.toContain("'unsafe-eval'");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
  });

  it("serves the renderer under the pinned swagger-ui-dist version, as JavaScript and CSS kept for a year", async () => {
    // The version in the URL is the exact one package.json pins.
    expect(packageJson.dependencies["swagger-ui-dist"]).toMatch(/^\d+\.\d+\.\d+$/);
    expect(SWAGGER_UI_VERSION).toBe(packageJson.dependencies["swagger-ui-dist"]);
    const base = `/admin/reference/assets/swagger-ui-${SWAGGER_UI_VERSION}`;
    const js = await browse(`${base}/swagger-ui-bundle.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(js.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(js.headers.get("x-content-type-options")).toBe("nosniff");
    const code = await js.text();
    // The package's own file, as text: the browser bundle that defines SwaggerUIBundle, not a module of the Worker.
    expect(code.length).toBeGreaterThan(1_000_000);
    expect(code).toContain("SwaggerUIBundle");
    expect(code).not.toMatch(/^\s*(?:import|export)\b/);
    const css = await browse(`${base}/swagger-ui.css`);
    expect(css.status).toBe(200);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect(css.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(await css.text()).toContain(".swagger-ui");
    // The page's own script changes with a deploy: revalidated, never kept as is.
    const script = await browse("/admin/reference/reference.js");
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(script.headers.get("cache-control")).toBe("no-cache");
    await script.body?.cancel();
  });

  it("serves no other version of the renderer: another version's URL is an admin path like any, behind the token", async () => {
    const other = await browse("/admin/reference/assets/swagger-ui-0.0.1/swagger-ui-bundle.js");
    expect(other.status).toBe(401);
    expect(other.headers.get("cache-control")).toBe("no-store");
    await other.body?.cancel();
  });

  it("keeps the entered token in the page's memory only: Swagger UI's persistence and URL configuration are off", async () => {
    const script = await (await browse("/admin/reference/reference.js")).text();
    // persistAuthorization true would write the token to localStorage; the query string could name another document.
    expect(script).toMatch(/persistAuthorization: false/);
    expect(script).toMatch(/queryConfigEnabled: false/);
    expect(script).toMatch(/validatorUrl: null/);
    expect(script).not.toMatch(/localStorage|sessionStorage|document\.cookie/);
  });
});

describe("the OpenAPI document", () => {
  it("is public: the API's shape, read by the reference page before anyone enters a token, never cached", async () => {
    const res = await browse("/admin/openapi.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const doc = await res.json<{ openapi: string; paths: Record<string, Record<string, { security?: unknown }>> }>();
    expect(doc.openapi).toBe("3.1.0");
    // Every operation declares the bearer scheme, so the reference's Authorize dialog sends the token on each call.
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ at: `${method} ${path}`, security: operation.security })),
    );
    expect(operations.length).toBeGreaterThanOrEqual(20);
    for (const { at, security } of operations) expect(security, at).toEqual([{ AdminToken: [] }]);
  });

  it("holds no data: it is the same whatever this deployment's config and secrets, and names none of them", async () => {
    const ctx = { waitUntil: () => undefined, passThroughOnException: () => undefined, props: {} };
    const documentWith = async (vars: Record<string, unknown>) =>
      (
        await worker.fetch(
          new Request(`${ROUTER}/admin/openapi.json`) as Parameters<typeof worker.fetch>[0],
          { ...env, ...vars } as Env,
          ctx as unknown as ExecutionContext,
        )
      ).text();
    const config = JSON.parse(env.ROUTER_CONFIG as string) as { destinations: Record<string, { url: string }> };
    const moved = structuredClone(config);
    for (const destination of Object.values(moved.destinations)) destination.url = "https://elsewhere.example.test/in";
    const text = await documentWith({});
    expect(await documentWith({ ROUTER_CONFIG: JSON.stringify(moved), ADMIN_TOKEN: "another-admin-token" })).toBe(text);
    for (const destination of Object.values(config.destinations)) expect(text).not.toContain(destination.url);
    expect(text).not.toContain(env.ADMIN_TOKEN as string);
    expect(text).not.toContain(env.ADMIN_REVEAL_TOKEN as string);
  });

  it("the page and the document answer with ADMIN_TOKEN unset too; the calls they make stay disabled", async () => {
    const off = { ...env, ADMIN_TOKEN: "" } as Env;
    const ctx = { waitUntil: () => undefined, passThroughOnException: () => undefined, props: {} };
    const call = (path: string, headers: Record<string, string> = {}) =>
      worker.fetch(
        new Request(`${ROUTER}${path}`, { headers }) as Parameters<typeof worker.fetch>[0],
        off,
        ctx as unknown as ExecutionContext,
      );
    expect((await call("/admin/reference")).status).toBe(200);
    expect((await call("/admin/openapi.json")).status).toBe(200);
    const events = await call("/admin/events", { Authorization: "Bearer anything" });
    expect(events.status).toBe(503);
    expect(await events.json()).toMatchObject({ error: { code: "admin_disabled" } });
  });
});
