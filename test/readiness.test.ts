import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import { TEST_SECRETS } from "./secrets.ts";
import { visible } from "./helpers.ts";

/**
 * Fail before traffic, through the real Worker: `GET /readyz` (503 naming each failing check by field and secret
 * name, never a value), `/healthz` (liveness, always 200), and the dashboard, which names the fields at fault on
 * every page and says how to enable the admin surface when ADMIN_TOKEN is unset. `npm run validate` runs the same
 * rules from the command line (test/scripts/validate.test.mjs).
 */
const ORIGIN = "https://router.example.test";
const worker = createWorker();

/** A small config every secret of which the tests bind: ready as it is. */
function readyConfig() {
  return {
    storage: { shards: [{ id: 0, binding: "DB" }] },
    sources: {
      weedmaps: {
        provider: "weedmaps",
        verify: { type: "hmac", secrets: ["WEEDMAPS_CLIENT_SECRET", "WEEDMAPS_ROTATED_AWAY"] },
      },
    },
    destinations: {
      pos: {
        url: "https://pos.example.test/orders",
        signingSecret: "POS_SIGNING_SECRET",
        headers: { Authorization: { secret: "POS_API_TOKEN", prefix: "Bearer " } },
      },
    },
    routes: [{ name: "orders", source: "weedmaps", events: ["create"], destinations: ["pos"] }],
  };
}

const secretValues = Object.values(TEST_SECRETS);

async function call(path: string, overrides: Record<string, unknown>, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`${ORIGIN}${path}`, { redirect: "manual", ...init }) as Request<unknown, IncomingRequestCfProperties>,
    { ...env, ...overrides } as Env,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

const withConfig = (config: unknown, overrides: Record<string, unknown> = {}) => ({
  ROUTER_CONFIG: typeof config === "string" ? config : JSON.stringify(config),
  ...overrides,
});

async function readyz(overrides: Record<string, unknown>) {
  const res = await call("/readyz", overrides);
  const text = await res.text();
  for (const value of secretValues) expect(text).not.toContain(value);
  return { status: res.status, body: JSON.parse(text), cache: res.headers.get("cache-control") };
}

async function expectLive(overrides: Record<string, unknown>) {
  const res = await call("/healthz", overrides);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ ok: true });
}

describe("GET /readyz and /healthz", () => {
  it("answers 200 when the config loads and every secret and binding it needs is there", async () => {
    const overrides = withConfig(readyConfig());
    expect(await readyz(overrides)).toEqual({ status: 200, body: { ready: true, checks: [] }, cache: "no-store" });
    await expectLive(overrides);
  });

  it("answers 503 naming a missing secret by its field and name, never a value; /healthz stays 200", async () => {
    const overrides = withConfig(readyConfig(), { POS_SIGNING_SECRET: "" });
    expect(await readyz(overrides)).toEqual({
      status: 503,
      body: {
        ready: false,
        checks: [
          {
            check: "secret",
            reason: "not_set",
            field: "destinations.pos.signingSecret",
            names: ["POS_SIGNING_SECRET"],
          },
        ],
      },
      cache: "no-store",
    });
    await expectLive(overrides);
  });

  it("names each bad field of an invalid config, without the config's own words; /healthz stays 200", async () => {
    const config = readyConfig();
    config.routes[0]!.destinations = ["nowhere"];
    Object.assign(config.destinations.pos, { timeoutMs: 5 });
    const overrides = withConfig(config);
    const { status, body } = await readyz(overrides);
    expect(status).toBe(503);
    expect(body).toEqual({
      ready: false,
      checks: [
        { check: "config", reason: "invalid", field: "destinations.pos.timeoutMs" },
        { check: "config", reason: "invalid", field: "routes[0].destinations[0]" },
      ],
    });
    // The config's words ("unknown destination \"nowhere\"") are the operator's: the dashboard and validate show them.
    expect(JSON.stringify(body)).not.toContain("nowhere");
    await expectLive(overrides);
  });

  it("says a ROUTER_CONFIG that is not JSON is the whole config's problem", async () => {
    expect((await readyz(withConfig("{not json"))).body).toEqual({
      ready: false,
      checks: [{ check: "config", reason: "invalid", field: "(root)" }],
    });
  });

  it("needs one secret of a rotation set and a well-formed PAYLOAD_KEYS (not ADMIN_TOKEN); a shard needs its binding", async () => {
    const config = readyConfig();
    config.storage.shards.push({ id: 1, binding: "NO_SUCH_SHARD" });
    const overrides = withConfig(config, { WEEDMAPS_CLIENT_SECRET: "", ADMIN_TOKEN: "", PAYLOAD_KEYS: "k1:short" });
    const { status, body } = await readyz(overrides);
    expect(status).toBe(503);
    expect(body.checks).toEqual([
      {
        check: "secret",
        reason: "none_set",
        field: "sources.weedmaps.verify.secrets",
        names: ["WEEDMAPS_CLIENT_SECRET", "WEEDMAPS_ROTATED_AWAY"],
      },
      { check: "binding", reason: "not_bound", field: "storage.shards[1].binding", names: ["NO_SUCH_SHARD"] },
      { check: "secret", reason: "malformed", field: "payloadEncryption", names: ["PAYLOAD_KEYS"] },
    ]);
    expect(JSON.stringify(body)).not.toContain("k1:short");
    await expectLive(overrides);
  });

  it("leaves a disabled destination's secrets and the reveal token optional", async () => {
    const config = readyConfig();
    Object.assign(config.destinations, {
      later: { url: "https://later.example.test/hook", enabled: false, signingSecret: "LATER_SIGNING_SECRET" },
    });
    expect((await readyz(withConfig(config, { ADMIN_REVEAL_TOKEN: "" }))).body).toEqual({ ready: true, checks: [] });
  });
});

async function signIn(overrides: Record<string, unknown>): Promise<string> {
  const res = await call("/dashboard/sign-in", overrides, {
    method: "POST",
    body: new URLSearchParams({ token: env.ADMIN_TOKEN as string }).toString(),
    headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN },
  });
  expect(res.status).toBe(303);
  expect(res.headers.get("location")).toBe("/dashboard/overview");
  return res.headers.get("set-cookie")!.split(";")[0]!;
}

async function dashboard(path: string, cookie: string, overrides: Record<string, unknown>, form?: object) {
  const res = await call(
    `/dashboard${path}`,
    overrides,
    form
      ? {
          method: "POST",
          body: new URLSearchParams(form as Record<string, string>).toString(),
          headers: { cookie, "content-type": "application/x-www-form-urlencoded", origin: ORIGIN },
        }
      : { headers: { cookie } },
  );
  const html = await res.text();
  for (const value of secretValues) expect(html).not.toContain(value);
  return { status: res.status, text: visible(html), html };
}

const PAGES = ["/overview", "/events", "/dead-letters", "/replays", "/destinations", "/keys", "/audit", "/capacity"];

describe("the dashboard while the router is not ready", () => {
  it("names each bad field of an invalid config on every page, instead of a bare config_invalid", async () => {
    const config = readyConfig();
    config.routes[0]!.destinations = ["nowhere"];
    const overrides = withConfig(config);
    const cookie = await signIn(overrides);
    for (const path of PAGES) {
      const page = await dashboard(path, cookie, overrides);
      expect(page.status, path).toBe(503);
      expect(page.text, path).toContain("Configuration invalid");
      expect(page.text, path).toContain('routes[0].destinations[0] : unknown destination "nowhere"');
      expect(page.text, path).not.toContain("Something went wrong");
    }
  });

  it("keeps Routing → Validate working: the running config's fields above, a proposed one checked", async () => {
    const broken = readyConfig();
    broken.routes[0]!.destinations = ["nowhere"];
    const overrides = withConfig(broken);
    const cookie = await signIn(overrides);

    const routing = await dashboard("/routing", cookie, overrides);
    expect(routing.status).toBe(200);
    expect(routing.text).toContain('routes[0].destinations[0] : unknown destination "nowhere"');
    expect(routing.text).toContain("The running config is invalid: its fields are named above.");
    // The running config's own text (ROUTER_CONFIG, as it was given), ready to correct and validate.
    expect(routing.text).toContain(`Config JSON ${JSON.stringify(broken)}`);

    const stillBroken = await dashboard("/routing/validate", cookie, overrides, { config: JSON.stringify(broken) });
    expect(stillBroken.status).toBe(200);
    expect(stillBroken.text).toContain('Not valid: routes[0].destinations[0]: unknown destination "nowhere"');

    const fixed = await dashboard("/routing/validate", cookie, overrides, { config: JSON.stringify(readyConfig()) });
    expect(fixed.status).toBe(200);
    expect(fixed.text).toContain("Valid.");
  });

  it("shows a missing secret by field and name at the top of every page, which still works", async () => {
    const overrides = withConfig(readyConfig(), { POS_API_TOKEN: "" });
    const cookie = await signIn(overrides);
    for (const path of [...PAGES, "/routing"]) {
      const page = await dashboard(path, cookie, overrides);
      expect(page.status, path).toBe(200);
      expect(page.text, path).toContain("Not ready for traffic");
      expect(page.text, path).toContain(
        "destinations.pos.headers.Authorization.secret : POS_API_TOKEN is not set: the Authorization header sent to pos",
      );
    }
  });

  it("shows no notice when the router is ready", async () => {
    const overrides = withConfig(readyConfig());
    const cookie = await signIn(overrides);
    const page = await dashboard("/overview", cookie, overrides);
    expect(page.status).toBe(200);
    expect(page.html).not.toContain("Configuration problems");
  });

  it("says the admin surface is disabled, and how to enable it, when ADMIN_TOKEN is unset", async () => {
    const overrides = withConfig(readyConfig(), { ADMIN_TOKEN: "" });
    // A choice, not a fault: the router is ready to take traffic without an admin surface.
    expect(await readyz(overrides)).toMatchObject({ status: 200, body: { ready: true, checks: [] } });
    for (const path of ["/sign-in", "/sign-in?failed=1"]) {
      const res = await call(`/dashboard${path}`, overrides);
      expect(res.status).toBe(200);
      const html = await res.text();
      const text = visible(html);
      expect(text).toContain(
        "The admin surface (this dashboard and the admin API) is disabled: ADMIN_TOKEN is not set.",
      );
      expect(text).toContain("npx wrangler secret put ADMIN_TOKEN");
      expect(text).toContain(".dev.vars");
      expect(text).not.toContain("That token is not the admin token");
      expect(html).not.toContain('name="token"');
    }
    const posted = await call("/dashboard/sign-in", overrides, {
      method: "POST",
      body: new URLSearchParams({ token: "anything" }).toString(),
      headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN },
    });
    expect(posted.status).toBe(303);
    expect(posted.headers.get("set-cookie")).toBeNull();
  });
});
