import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/config/load";
import type { SourceConfig } from "../src/config/schema";
import { generic } from "../src/ingest/providers/generic";
import { leaftrade } from "../src/ingest/providers/leaftrade";
import type { EventIdentity, IdentifyInput } from "../src/ingest/providers/types";
import { weedmaps } from "../src/ingest/providers/weedmaps";
import { fixture } from "./helpers";

function source(raw: unknown): SourceConfig {
  const parsed = parseConfig({ sources: { s: raw }, destinations: {}, routes: [] });
  if (!parsed.ok) throw new Error(parsed.errors.join("; "));
  return parsed.config.sources.s!;
}

const WEEDMAPS = source({ provider: "weedmaps", verify: { type: "hmac", secrets: ["A"] }, merchant: { field: "seller.id" } });
const LEAFTRADE = source({ provider: "leaftrade", verify: { type: "hmac", secrets: ["A"] }, merchant: { field: "dispensary_location.license_number" } });

function input(overrides: Partial<IdentifyInput>): IdentifyInput {
  return { sourceName: "s", source: WEEDMAPS, pathEvent: undefined, queryMerchant: undefined, payload: {}, bodySha256: "h".repeat(64), ...overrides };
}

function identity(result: EventIdentity | { error: string }): EventIdentity {
  if ("error" in result) throw new Error(result.error);
  return result;
}

describe("Weedmaps adapter", () => {
  it("takes the event type from the path, else DRAFT means draft and anything else create", () => {
    const draft = JSON.parse(fixture("weedmaps-draft").body);
    expect(identity(weedmaps.identify(input({ payload: draft }))).eventType).toBe("draft");
    expect(identity(weedmaps.identify(input({ payload: { status: "PENDING" } }))).eventType).toBe("create");
    expect(identity(weedmaps.identify(input({ payload: { status: "READY_FOR_ATTAINMENT" } }))).eventType).toBe("create");
    expect(identity(weedmaps.identify(input({ payload: {} }))).eventType).toBe("create");
    expect(identity(weedmaps.identify(input({ payload: draft, pathEvent: "create" }))).eventType).toBe("create");
    expect(identity(weedmaps.identify(input({ payload: draft, pathEvent: "order-updated" }))).eventType).toBe("order-updated");
  });

  it("prefers the merchant in the query and falls back to the configured signed field", () => {
    const payload = JSON.parse(fixture("weedmaps-create").body);
    expect(identity(weedmaps.identify(input({ payload, queryMerchant: "777" }))).merchantId).toBe("777");
    expect(identity(weedmaps.identify(input({ payload }))).merchantId).toBe("4242");
  });

  it("keys on source, event, orderId and body hash: a retry collides, a new body about the same order does not", () => {
    const payload = JSON.parse(fixture("weedmaps-create").body);
    const a = identity(weedmaps.identify(input({ payload })));
    const b = identity(weedmaps.identify(input({ payload })));
    const c = identity(weedmaps.identify(input({ payload, bodySha256: "0".repeat(64) })));
    const d = identity(weedmaps.identify(input({ payload, sourceName: "weedmaps-second-store" })));
    expect(a.idempotencyKey).toBe(b.idempotencyKey);
    expect(a.idempotencyKey).toBe(`weedmaps:s:create:9763822:${"h".repeat(64)}`);
    expect(new Set([a.idempotencyKey, c.idempotencyKey, d.idempotencyKey]).size).toBe(3);
    expect(a.providerId).toBe("9763822");
  });
});

describe("Leaf Trade adapter", () => {
  it("needs the webhook type from the path", () => {
    expect(leaftrade.identify(input({ source: LEAFTRADE }))).toEqual({ error: "missing_event_type" });
  });

  it("reads the order inside a one-item `results` list (Order V4) and a bare object (Order V3)", () => {
    const v4 = identity(leaftrade.identify(input({ source: LEAFTRADE, pathEvent: "order-v4", payload: JSON.parse(fixture("leaftrade-order-v4").body) })));
    expect(v4).toMatchObject({ eventType: "order-v4", providerId: "ord_abc123", merchantId: "C10-0000456-LIC" });
    expect(v4.idempotencyKey).toBe("leaftrade:s:order-v4:ord_abc123:approved:2025-11-14T18%3A32%3A00Z");
    const v3 = identity(leaftrade.identify(input({ source: LEAFTRADE, pathEvent: "order-v3", payload: JSON.parse(fixture("leaftrade-order-v3").body) })));
    expect(v3).toMatchObject({ providerId: "ord_abc124", merchantId: "C10-0000456-LIC" });
  });

  it("distinguishes status transitions of one object, and falls back to the body hash without an id", () => {
    const base = JSON.parse(fixture("leaftrade-product-issue").body);
    const open = identity(leaftrade.identify(input({ source: LEAFTRADE, pathEvent: "product-issue", payload: { ...base, status: "open" } })));
    const resolved = identity(leaftrade.identify(input({ source: LEAFTRADE, pathEvent: "product-issue", payload: base })));
    expect(open.idempotencyKey).not.toBe(resolved.idempotencyKey);
    const anonymous = identity(leaftrade.identify(input({ source: LEAFTRADE, pathEvent: "product-issue", payload: { status: "open" } })));
    expect(anonymous.idempotencyKey).toBe(`leaftrade:s:product-issue:sha256:${"h".repeat(64)}`);
  });
});

describe("generic adapter", () => {
  const ACME = source({
    provider: "generic",
    verify: { type: "hmac", secrets: ["A"], header: "X-Sig", encoding: "hex" },
    eventTypeField: "type",
    idempotencyFields: ["id"],
    merchant: { query: "store", field: "store_id" },
  });

  it("reads the event type and identity from the configured fields", () => {
    const result = identity(generic.identify(input({ source: ACME, payload: { id: "a-1", type: "Order.Created", store_id: "store-9" } })));
    expect(result).toMatchObject({ eventType: "order.created", merchantId: "store-9", providerId: "a-1", idempotencyKey: "generic:s:order.created:a-1" });
  });

  it("falls back to the body hash when an identity field is missing", () => {
    const result = identity(generic.identify(input({ source: ACME, payload: { type: "ping" } })));
    expect(result.idempotencyKey).toBe(`generic:s:ping:sha256:${"h".repeat(64)}`);
  });
});
