import { describe, expect, it } from "vitest";
import sampleConfig from "../router.config.json";
import { parseConfig } from "../src/core/config/parse.ts";

const base = {
  sources: { weedmaps: { provider: "weedmaps", verify: { type: "hmac", secrets: ["WEEDMAPS_CLIENT_SECRET"] } } },
  destinations: { pos: { url: "https://pos.example.test/orders", signingSecret: "POS_SIGNING_SECRET" } },
  routes: [{ name: "orders", source: "weedmaps", destinations: ["pos"] }],
};

function errorsOf(raw: unknown, options?: { allowInsecureDestinations?: boolean }): string[] {
  const result = parseConfig(raw, options);
  return result.ok ? [] : result.errors;
}

describe("configuration", () => {
  it("accepts the committed sample config and fills documented defaults", () => {
    expect(parseConfig(sampleConfig)).toMatchObject({ ok: true });
    const minimal = parseConfig(base);
    if (!minimal.ok) throw new Error(minimal.errors.join());
    expect(minimal.config.limits).toEqual({
      maxBodyBytes: 262_144,
      draftDeadlineMs: 4_000,
      draftAnswerMaxBytes: 262_144,
      maxJsonDepth: 64,
      maxRecordsPerBody: 1_000,
      capacity: { limitBytes: 10_000_000_000, warnPercent: 70, criticalPercent: 85, readOnlyPercent: 90 },
    });
    expect(minimal.config.destinations.pos).toMatchObject({
      enabled: true,
      timeoutMs: 10_000,
      maxAttempts: 8,
      headers: {},
      retryOnStatus: [],
    });
    expect(minimal.config.sources.weedmaps!.merchant).toEqual({ query: "merchant_id" });
  });

  it("names the bad field of a route that points at nothing", () => {
    expect(
      errorsOf({ ...base, routes: [{ name: "orders", source: "weedmaps", destinations: ["pos", "posx"] }] }),
    ).toEqual(['routes[0].destinations[1]: unknown destination "posx"']);
    expect(errorsOf({ ...base, routes: [{ name: "orders", source: "wm", destinations: ["pos"] }] })).toEqual([
      'routes[0].source: unknown source "wm"',
    ]);
  });

  it("refuses an inlined secret value", () => {
    const inlined = {
      ...base,
      sources: { weedmaps: { provider: "weedmaps", verify: { type: "hmac", secrets: ["3f8e1c52-9a4b-4d7e"] } } },
    };
    expect(errorsOf(inlined)).toEqual([
      "sources.weedmaps.verify.secrets[0]: must be the NAME of a Worker secret in UPPER_SNAKE_CASE, never the secret itself",
    ]);
  });

  it("fails closed on a source without verification unless it is marked unsigned", () => {
    const open = (verify: unknown) => ({ ...base, sources: { open: { provider: "generic", verify } }, routes: [] });
    expect(errorsOf(open({ type: "none" }))[0]).toMatch(
      /^sources\.open\.verify\.unsigned: a source without verification must say/,
    );
    expect(errorsOf(open({ type: "none", unsigned: true }))).toEqual([]);
    expect(errorsOf({ ...base, sources: { open: { provider: "generic" } }, routes: [] })[0]).toMatch(
      /^sources\.open\.verify:/,
    );
  });

  it("requires a signature scheme for generic HMAC sources", () => {
    const generic = {
      ...base,
      sources: { acme: { provider: "generic", verify: { type: "hmac", secrets: ["ACME"], encoding: "hex" } } },
      routes: [],
    };
    expect(errorsOf(generic)).toEqual([
      "sources.acme.verify.header: generic sources have no default signature scheme: set both header and encoding",
    ]);
  });

  it("requires https destinations except on loopback or with the local flag, and refuses credentials", () => {
    const withUrl = (url: string) => ({ ...base, destinations: { pos: { url, signingSecret: "POS_SIGNING_SECRET" } } });
    expect(errorsOf(withUrl("http://pos.internal/orders"))).toEqual([
      "destinations.pos.url: must be https (plain http is allowed only on loopback or with ALLOW_INSECURE_DESTINATIONS=true)",
    ]);
    expect(errorsOf(withUrl("http://pos.internal/orders"), { allowInsecureDestinations: true })).toEqual([]);
    expect(errorsOf(withUrl("http://127.0.0.1:8788/pos"))).toEqual([]);
    expect(errorsOf(withUrl("http://localhost:8788/pos"))).toEqual([]);
    expect(errorsOf(withUrl("https://user:pass@pos.example.test/"))).toEqual([
      "destinations.pos.url: must not carry credentials; use headers with a secret instead",
    ]);
    expect(errorsOf(withUrl("ftp://pos.example.test/"))).toEqual([
      "destinations.pos.url: must be an absolute http(s) URL",
    ]);
  });

  it("holds alert channel URLs to the destinations' rules: https unless loopback or the local flag, no credentials", () => {
    const withAlert = (url: string) => ({ ...base, alerts: { channels: { ops: { type: "webhook", url } } } });
    expect(errorsOf(withAlert("https://user:secret@alerts.example.test/hook"))).toEqual([
      "alerts.channels.ops.url: must not carry credentials; use a slack channel's urlSecret or a destination channel instead",
    ]);
    expect(errorsOf(withAlert("https://:secret@alerts.example.test/hook"))).toHaveLength(1);
    expect(errorsOf(withAlert("http://alerts.internal/hook"))).toEqual([
      "alerts.channels.ops.url: must be https (plain http is allowed only on loopback or with ALLOW_INSECURE_DESTINATIONS=true)",
    ]);
    expect(errorsOf(withAlert("http://alerts.internal/hook"), { allowInsecureDestinations: true })).toEqual([]);
    expect(errorsOf(withAlert("http://127.0.0.1:8788/alerts"))).toEqual([]);
    expect(errorsOf(withAlert("https://alerts.example.test/hook"))).toEqual([]);
    // The local switch allows plain http, never credentials.
    expect(
      errorsOf(withAlert("http://user:secret@alerts.internal/hook"), { allowInsecureDestinations: true }),
    ).toHaveLength(1);
  });

  it("allows a responder only on a Weedmaps draft route, and rejects unknown fields", () => {
    const responderOnCreate = {
      ...base,
      routes: [{ name: "orders", source: "weedmaps", events: ["create"], responder: "pos" }],
    };
    expect(errorsOf(responderOnCreate)).toEqual([
      'routes[0].responder: a responder belongs on a route whose events are all answered synchronously: ["draft"]',
    ]);
    const responderOnAllEvents = { ...base, routes: [{ name: "orders", source: "weedmaps", responder: "pos" }] };
    expect(errorsOf(responderOnAllEvents)).toEqual([
      'routes[0].responder: a responder belongs on a route whose events are all answered synchronously: ["draft"]',
    ]);
    const leaftrade = { provider: "leaftrade", verify: { type: "hmac", secrets: ["LEAFTRADE_WEBHOOK_SECRET"] } };
    const responderOnLeafTrade = {
      ...base,
      sources: { ...base.sources, lt: leaftrade },
      routes: [{ name: "orders", source: "lt", events: ["draft"], responder: "pos" }],
    };
    expect(errorsOf(responderOnLeafTrade)).toEqual([
      "routes[0].responder: a responder belongs on a route of a provider that waits for an answer (Weedmaps Draft)",
    ]);
    expect(
      errorsOf({
        ...base,
        routes: [{ name: "orders", source: "weedmaps", destinations: ["pos"], destination: "pos" }],
      })[0],
    ).toMatch(/^routes\[0\]: Unrecognized key/);
    expect(errorsOf({ ...base, routes: [{ name: "orders", source: "weedmaps" }] })).toEqual([
      "routes[0].destinations: a route names at least one destination",
    ]);
  });

  it("requires a responder route that selects merchants to pin the merchant to a signed field", () => {
    const pricing = { url: "https://pricing.example.test/draft", signingSecret: "PRICING_SIGNING_SECRET" };
    const route = {
      name: "draft-store-9",
      source: "weedmaps",
      events: ["draft"],
      merchants: ["9"],
      responder: "pricing",
    };
    const config = { ...base, destinations: { ...base.destinations, pricing }, routes: [route] };
    expect(errorsOf(config)).toEqual([
      "routes[0].requireMerchantField: a responder route that selects merchants must pin the merchant to a signed field (e.g. seller.id)",
    ]);
    expect(errorsOf({ ...config, routes: [{ ...route, requireMerchantField: "seller.id" }] })).toEqual([]);
  });

  it("takes the capacity lines in rising order, and no limit above D1's 10 GB", () => {
    const withCapacity = (capacity: Record<string, number>) => ({ ...base, limits: { capacity } });
    const parsed = parseConfig(withCapacity({ warnPercent: 60 }));
    expect(parsed.ok && parsed.config.limits.capacity).toEqual({
      limitBytes: 10_000_000_000,
      warnPercent: 60,
      criticalPercent: 85,
      readOnlyPercent: 90,
    });
    expect(errorsOf(withCapacity({ warnPercent: 80, criticalPercent: 75 }))).toEqual([
      "limits.capacity.criticalPercent: must rise: warnPercent < criticalPercent < readOnlyPercent",
    ]);
    expect(errorsOf(withCapacity({ limitBytes: 20_000_000_000 }))[0]).toMatch(/^limits\.capacity\.limitBytes: /);
  });
});
