import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { parseConfig } from "../../src/core/config/parse.ts";
import type { EventIdentity, IdentifyInput } from "../../src/core/providers/contract.ts";
import { weedmaps } from "../../src/core/providers/weedmaps.ts";
import { expectIngested, fixture, post, weedmapsSignature } from "../helpers.ts";

afterEach(() => vi.restoreAllMocks());

const parsed = parseConfig({
  sources: { s: { provider: "weedmaps", verify: { type: "hmac", secrets: ["A"] }, merchant: { field: "seller.id" } } },
  destinations: {},
  routes: [],
});
if (!parsed.ok) throw new Error(parsed.errors.join("; "));
const SOURCE = parsed.config.sources.s!;

function identify(overrides: Partial<IdentifyInput>): EventIdentity {
  const result = weedmaps.identify({ sourceName: "s", source: SOURCE, pathEvent: undefined, queryMerchant: undefined, payload: {}, bodySha256: "h".repeat(64), ...overrides });
  if ("error" in result) throw new Error(result.error);
  return result;
}

describe("Weedmaps adapter", () => {
  it("takes the event type from the path, else DRAFT means draft and anything else create", () => {
    const draft = JSON.parse(fixture("weedmaps/draft").body);
    expect(identify({ payload: draft }).eventType).toBe("draft");
    expect(identify({ payload: { status: "PENDING" } }).eventType).toBe("create");
    expect(identify({ payload: { status: "READY_FOR_ATTAINMENT" } }).eventType).toBe("create");
    expect(identify({ payload: {} }).eventType).toBe("create");
    expect(identify({ payload: draft, pathEvent: "create" }).eventType).toBe("create");
    expect(identify({ payload: draft, pathEvent: "order-updated" }).eventType).toBe("order-updated");
  });

  it("prefers the merchant in the query and falls back to the configured signed field", () => {
    const payload = JSON.parse(fixture("weedmaps/create").body);
    expect(identify({ payload, queryMerchant: "777" }).merchantId).toBe("777");
    expect(identify({ payload }).merchantId).toBe("4242");
  });

  it("keys on source, event, orderId and body hash: a retry collides, a new body about the same order does not", () => {
    const payload = JSON.parse(fixture("weedmaps/create").body);
    const a = identify({ payload });
    const b = identify({ payload });
    const c = identify({ payload, bodySha256: "0".repeat(64) });
    const d = identify({ payload, sourceName: "weedmaps-second-store" });
    expect(a.idempotencyKey).toBe(b.idempotencyKey);
    expect(a.idempotencyKey).toBe(`weedmaps:s:create:9763822:${"h".repeat(64)}`);
    expect(new Set([a.idempotencyKey, c.idempotencyKey, d.idempotencyKey]).size).toBe(3);
    expect(a.providerId).toBe("9763822");
  });

  it("declares Draft as its one synchronous event and base64 HMAC in Signature as its scheme", () => {
    expect(weedmaps.synchronousEvents).toEqual(["draft"]);
    expect(weedmaps.signature).toEqual({ header: "Signature", encoding: "base64" });
    expect(weedmaps.records(JSON.parse(fixture("weedmaps/create").body))).toHaveLength(1);
  });
});

describe("Weedmaps callbacks through the Worker", () => {
  it("accepts a Create on the default URL", async () => {
    await expectIngested({ url: "/webhooks/weedmaps?merchant_id=4242", fixture: fixture("weedmaps/create"), eventType: "create", destinations: ["pos", "erp"] });
  });

  it("accepts a Create on its own URL", async () => {
    await expectIngested({ url: "/webhooks/weedmaps/create?merchant_id=4242", fixture: fixture("weedmaps/create-other-order"), eventType: "create", destinations: ["pos", "erp"] });
  });

  it("accepts a callback signed with the previous secret during rotation", async () => {
    const body = fixture("weedmaps/create").body.replace("9763822", "9763823");
    const res = await post("/webhooks/weedmaps?merchant_id=4242", body, { Signature: await weedmapsSignature(body, env.WEEDMAPS_CLIENT_SECRET_PREVIOUS as string) });
    expect(res.status).toBe(200);
  });
});
