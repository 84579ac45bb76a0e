import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { parseConfig } from "../../src/core/config/parse.ts";
import type { EventIdentity, IdentifyInput } from "../../src/core/providers/contract.ts";
import { leaftrade } from "../../src/core/providers/leaftrade.ts";
import { expectIngested, fixture, post } from "../helpers.ts";

afterEach(() => vi.restoreAllMocks());

const parsed = parseConfig({
  sources: { s: { provider: "leaftrade", verify: { type: "hmac", secrets: ["A"] }, merchant: { field: "dispensary_location.license_number" } } },
  destinations: {},
  routes: [],
});
if (!parsed.ok) throw new Error(parsed.errors.join("; "));
const SOURCE = parsed.config.sources.s!;

function input(overrides: Partial<IdentifyInput>): IdentifyInput {
  return { sourceName: "s", source: SOURCE, pathEvent: undefined, queryMerchant: undefined, payload: {}, bodySha256: "h".repeat(64), ...overrides };
}

function identify(overrides: Partial<IdentifyInput>): EventIdentity {
  const result = leaftrade.identify(input(overrides));
  if ("error" in result) throw new Error(result.error);
  return result;
}

describe("Leaf Trade adapter", () => {
  it("needs the webhook type from the path", () => {
    expect(leaftrade.identify(input({}))).toEqual({ error: "missing_event_type" });
  });

  it("reads the order inside a one-item `results` list (Order V4) and a bare object (Order V3)", () => {
    const v4 = identify({ pathEvent: "order-v4", payload: JSON.parse(fixture("leaftrade/order-v4").body) });
    expect(v4).toMatchObject({ eventType: "order-v4", providerId: "ord_abc123", merchantId: "C10-0000456-LIC" });
    expect(v4.idempotencyKey).toBe("leaftrade:s:order-v4:ord_abc123:approved:2025-11-14T18%3A32%3A00Z");
    const v3 = identify({ pathEvent: "order-v3", payload: JSON.parse(fixture("leaftrade/order-v3").body) });
    expect(v3).toMatchObject({ providerId: "ord_abc124", merchantId: "C10-0000456-LIC" });
  });

  it("distinguishes status transitions of one object, and falls back to the body hash without an id", () => {
    const base = JSON.parse(fixture("leaftrade/product-issue").body);
    const open = identify({ pathEvent: "product-issue", payload: { ...base, status: "open" } });
    const resolved = identify({ pathEvent: "product-issue", payload: base });
    expect(open.idempotencyKey).not.toBe(resolved.idempotencyKey);
    const anonymous = identify({ pathEvent: "product-issue", payload: { status: "open" } });
    expect(anonymous.idempotencyKey).toBe(`leaftrade:s:product-issue:sha256:${"h".repeat(64)}`);
  });

  it("lists the entries of a `results` envelope as its records", () => {
    expect(leaftrade.records({ results: [{ id: "a" }, { id: "b" }] })).toEqual([{ id: "a" }, { id: "b" }]);
    expect(leaftrade.records({ id: "a" })).toEqual([{ id: "a" }]);
  });
});

describe("Leaf Trade webhooks through the Worker, one URL per type", () => {
  for (const [type, destinations] of [
    ["order-v4", ["erp"]],
    ["order-v3", ["erp"]],
    ["product-issue", ["pos", "erp"]],
  ] as const) {
    it(`accepts ${type} at /webhooks/leaftrade/${type}`, async () => {
      await expectIngested({ url: `/webhooks/leaftrade/${type}`, fixture: fixture(`leaftrade/${type}`), eventType: type, destinations: [...destinations] });
    });
  }

  it("takes the merchant from the signed dispensary license when the URL has none", async () => {
    const f = fixture("leaftrade/order-v4");
    const { eventId } = await (await post("/webhooks/leaftrade/order-v4?unused=1", f.body, f.headers)).json<{ eventId: string }>();
    const row = await env.DB.prepare("SELECT merchant_id, provider_id FROM events WHERE id = ?1").bind(eventId).first();
    expect(row).toEqual({ merchant_id: "C10-0000456-LIC", provider_id: "ord_abc123" });
  });

  it("accepts the custom-header authentication, compared in constant time", async () => {
    const body = fixture("leaftrade/order-v3").body;
    expect((await post("/webhooks/leaftrade-bearer/order-v3", body, { Authorization: "Bearer partner-token-abc123" })).status).toBe(200);
    const wrong = await post("/webhooks/leaftrade-bearer/order-v3", body, { Authorization: "Bearer partner-token-abc124" });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ error: { code: "invalid_signature", message: expect.any(String), requestId: expect.any(String) } });
  });
});
