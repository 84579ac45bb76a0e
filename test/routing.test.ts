import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/core/config/parse.ts";
import type { RouterConfig } from "../src/core/config/schema.ts";
import { routeEvent } from "../src/core/routing.ts";

function config(routes: unknown[], destinations: Record<string, unknown> = {}): RouterConfig {
  const parsed = parseConfig({
    sources: { wm: { provider: "weedmaps", verify: { type: "hmac", secrets: ["S"] } } },
    destinations: {
      pos: { url: "https://pos.example.test", signingSecret: "K" },
      erp: { url: "https://erp.example.test", signingSecret: "K" },
      pricing: { url: "https://pricing.example.test", signingSecret: "K" },
      off: { url: "https://off.example.test", signingSecret: "K", enabled: false },
      ...destinations,
    },
    routes,
  });
  if (!parsed.ok) throw new Error(parsed.errors.join("; "));
  return parsed.config;
}

const order = { status: "PENDING", seller: { id: "4242" }, fulfillmentType: "DELIVERY", grandTotal: "67.50" };

describe("routeEvent", () => {
  it("matches on source, event type and merchant, and explains each miss", () => {
    const cfg = config([
      { name: "creates", source: "wm", events: ["create"], destinations: ["pos"] },
      { name: "store-4242", source: "wm", merchants: ["4242"], destinations: ["erp"] },
      { name: "drafts", source: "wm", events: ["draft"], responder: "pricing", destinations: ["erp"] },
    ]);
    const decision = routeEvent(cfg, { source: "wm", eventType: "create", merchantId: "9000", subject: order });
    expect(decision.deliveries).toEqual([{ destination: "pos", route: "creates" }]);
    expect(decision.explanations).toEqual([
      { route: "creates", matched: true, reason: "source, event type, merchant and conditions match" },
      { route: "store-4242", matched: false, reason: "merchant 9000 is not in [4242]" },
      { route: "drafts", matched: false, reason: "event type create is not in [draft]" },
    ]);
    expect(
      routeEvent(cfg, { source: "wm", eventType: "create", merchantId: null, subject: order }).explanations[1]!.reason,
    ).toBe("no merchant given");
  });

  it("routes event types it has never seen when a route does not restrict them", () => {
    const cfg = config([{ name: "all", source: "wm", destinations: ["erp"] }]);
    expect(
      routeEvent(cfg, { source: "wm", eventType: "order-refunded", merchantId: null, subject: {} }).deliveries,
    ).toHaveLength(1);
  });

  it("evaluates equals, in and exists conditions on the signed payload", () => {
    const cfg = config([
      {
        name: "deliveries-over-50",
        source: "wm",
        match: [
          { field: "fulfillmentType", equals: "DELIVERY" },
          { field: "status", in: ["PENDING", "IN_PROGRESS"] },
          { field: "customerNote", exists: false },
        ],
        destinations: ["pos"],
      },
    ]);
    expect(
      routeEvent(cfg, { source: "wm", eventType: "create", merchantId: null, subject: order }).deliveries,
    ).toHaveLength(1);
    const pickup = routeEvent(cfg, {
      source: "wm",
      eventType: "create",
      merchantId: null,
      subject: { ...order, fulfillmentType: "PICKUP" },
    });
    expect(pickup.deliveries).toHaveLength(0);
    expect(pickup.explanations[0]!.reason).toBe('fulfillmentType is not "DELIVERY"');
    const noted = routeEvent(cfg, {
      source: "wm",
      eventType: "create",
      merchantId: null,
      subject: { ...order, customerNote: "hi" },
    });
    expect(noted.explanations[0]!.reason).toBe("customerNote is present");
  });

  it("creates one delivery per destination even when several routes name it", () => {
    const cfg = config([
      { name: "a", source: "wm", destinations: ["pos", "erp"] },
      { name: "b", source: "wm", destinations: ["erp"] },
    ]);
    expect(routeEvent(cfg, { source: "wm", eventType: "create", merchantId: null, subject: {} }).deliveries).toEqual([
      { destination: "pos", route: "a" },
      { destination: "erp", route: "a" },
    ]);
  });

  it("flags a merchant that differs from the required signed field", () => {
    const cfg = config([{ name: "checked", source: "wm", requireMerchantField: "seller.id", destinations: ["pos"] }]);
    expect(
      routeEvent(cfg, { source: "wm", eventType: "create", merchantId: "4242", subject: order }).merchantMismatch,
    ).toBeUndefined();
    expect(
      routeEvent(cfg, { source: "wm", eventType: "create", merchantId: "1", subject: order }).merchantMismatch,
    ).toEqual({ route: "checked", field: "seller.id" });
    expect(
      routeEvent(cfg, { source: "wm", eventType: "create", merchantId: null, subject: order }).merchantMismatch,
    ).toBeDefined();
  });

  it("skips disabled destinations and reports them", () => {
    const cfg = config([{ name: "r", source: "wm", destinations: ["off", "pos"] }]);
    const decision = routeEvent(cfg, { source: "wm", eventType: "create", merchantId: null, subject: {} });
    expect(decision.deliveries).toEqual([{ destination: "pos", route: "r" }]);
    expect(decision.skippedDisabled).toEqual([{ destination: "off", route: "r" }]);
  });

  it("picks the responder of the first matching draft route", () => {
    const cfg = config([
      { name: "drafts", source: "wm", events: ["draft"], responder: "pricing", destinations: ["erp"] },
    ]);
    const decision = routeEvent(cfg, { source: "wm", eventType: "draft", merchantId: null, subject: {} });
    expect(decision.responder).toEqual({ destination: "pricing", route: "drafts" });
    expect(decision.deliveries).toEqual([{ destination: "erp", route: "drafts" }]);
  });
});
