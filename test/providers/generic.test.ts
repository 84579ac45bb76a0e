import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/core/config/parse.ts";
import type { SourceConfig } from "../../src/core/config/schema.ts";
import type { EventIdentity, IdentifyInput, IdentifyResult } from "../../src/core/providers/contract.ts";
import { generic } from "../../src/core/providers/generic.ts";

function source(raw: unknown): SourceConfig {
  const parsed = parseConfig({ sources: { s: raw }, destinations: {}, routes: [] });
  if (!parsed.ok) throw new Error(parsed.errors.join("; "));
  return parsed.config.sources.s!;
}

const ACME_DEFAULT = source({ provider: "generic", verify: { type: "none", unsigned: true } });

function input(overrides: Partial<IdentifyInput>): IdentifyInput {
  return {
    sourceName: "s",
    source: ACME_DEFAULT,
    pathEvent: undefined,
    payload: {},
    bodySha256: "h".repeat(64),
    ...overrides,
  };
}

function identity(result: IdentifyResult): EventIdentity {
  if (!result.ok) throw new Error(result.code);
  return result.events[0]!;
}

describe("generic adapter", () => {
  const ACME = source({
    provider: "generic",
    verify: { type: "hmac", secrets: ["A"], header: "X-Sig", encoding: "hex" },
    eventTypeField: "type",
    idempotencyFields: ["id"],
    merchant: { query: "store", field: "store_id" },
  });

  it("reads the event type and identity from the configured fields", () => {
    const result = identity(
      generic.identify(input({ source: ACME, payload: { id: "a-1", type: "Order.Created", store_id: "store-9" } })),
    );
    expect(result).toMatchObject({
      eventType: "order.created",
      providerId: "a-1",
      idempotencyKey: "generic:s:order.created:a-1",
    });
  });

  it("falls back to the body hash when an identity field is missing", () => {
    const result = identity(generic.identify(input({ source: ACME, payload: { type: "ping" } })));
    expect(result.idempotencyKey).toBe(`generic:s:ping:sha256:${"h".repeat(64)}`);
  });

  it("refuses a path that names another type than the configured field, and keys a path-typed event without the path", () => {
    expect(
      generic.identify(
        input({ source: ACME, pathEvent: "order.deleted", payload: { id: "a-1", type: "order.created" } }),
      ),
    ).toMatchObject({ ok: false, code: "event_type_mismatch" });
    const a = identity(generic.identify(input({ pathEvent: "single", payload: { id: 1 } })));
    const b = identity(generic.identify(input({ pathEvent: "pair", payload: { id: 1 } })));
    expect([a.eventType, b.eventType]).toEqual(["single", "pair"]);
    expect(a.idempotencyKey).toBe(b.idempotencyKey);
  });
});
