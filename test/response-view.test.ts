import { describe, expect, it } from "vitest";
import { BUILTIN_PROVIDERS } from "../src/core/providers/registry.ts";
import {
  customerValuesOf,
  ECHOED_VALUES,
  EXCERPT_CHARS,
  HEADER_LIMITS,
  headersView,
  keepHeaders,
  redactedExcerpt,
  revealedExcerpt,
} from "../src/core/response-view.ts";
import { fixture } from "./helpers.ts";

/**
 * What a destination answered, as kept and as shown (src/core/response-view.ts): the headers of a failed attempt,
 * bounded, and an excerpt redacted by the payload's rules. The Worker-level checks (stored sealed, shown on the event
 * page, revealed, never logged) are in test/dashboard.test.ts.
 */
const PATHS = BUILTIN_PROVIDERS.weedmaps!.piiPaths;
const create = JSON.parse(fixture("weedmaps/create").body) as { customer: Record<string, string> };
const VALUES = customerValuesOf(create, PATHS);

describe("a failed attempt's headers", () => {
  it("keeps the descriptive ones first, a cookie's name without its value, each value cut to its bound, and not the connection's own", () => {
    const kept = keepHeaders([
      ["Connection", "keep-alive"],
      ["Set-Cookie", "sid=destination-session"],
      ["X-Internal-Trace", "t".repeat(500)],
      ["Content-Type", "application/json"],
      ["Retry-After", "120"],
    ])!;
    expect(JSON.parse(kept)).toEqual({
      headers: [
        ["content-type", "application/json"],
        ["retry-after", "120"],
        ["set-cookie", null],
        ["x-internal-trace", `${"t".repeat(HEADER_LIMITS.valueChars - 1)}…`],
      ],
      omitted: 0,
    });
    expect(kept).not.toContain("destination-session");
    expect(keepHeaders([])).toBeNull();
  });

  it("keeps at most 16 headers and 1,024 characters, and counts the rest", () => {
    const many = Array.from({ length: 40 }, (_, i) => [`x-header-${i}`, "v".repeat(100)] as const);
    const kept = keepHeaders([...many, ["content-type", "text/html"]])!;
    expect(kept.length).toBeLessThanOrEqual(HEADER_LIMITS.jsonChars);
    const parsed = JSON.parse(kept) as { headers: [string, string][]; omitted: number };
    expect(parsed.headers[0]).toEqual(["content-type", "text/html"]);
    expect(parsed.headers.length).toBeLessThanOrEqual(HEADER_LIMITS.count);
    expect(parsed.headers.length + parsed.omitted).toBe(41);
  });

  it("shows the descriptive values unrevealed and the rest redacted; a reveal shows every value kept", () => {
    const kept = keepHeaders([
      ["content-type", "application/json"],
      ["x-request-id", "req-7d1f"],
      ["x-customer-email", "jordan@example.com"],
      ["set-cookie", "sid=1"],
    ])!;
    expect(headersView(kept, false)).toEqual({
      headers: [
        { name: "content-type", value: "application/json" },
        { name: "x-request-id", value: "req-7d1f" },
        { name: "x-customer-email", value: "[redacted]" },
        { name: "set-cookie", value: null },
      ],
      omitted: 0,
      redacted: true,
    });
    expect(headersView(kept, true)?.headers).toContainEqual({ name: "x-customer-email", value: "jordan@example.com" });
    expect(headersView(kept, true)?.redacted).toBe(false);
    expect(headersView("not json", false)).toBeNull();
  });
});

describe("a response excerpt, unrevealed", () => {
  it("hides a JSON excerpt's customer fields, at any depth, and keeps its error code and message readable", () => {
    const body = JSON.stringify({
      error: { code: "invalid_field", message: "customer.phone must be E.164", field: "customer.phone" },
      order: { orderId: "9763822", customer: { phone: "555 0123", firstName: "J." } },
      shippingAddress: { address1: "1 Main St" },
    });
    const shown = redactedExcerpt(body, PATHS, VALUES);
    expect(shown.json).toBe(true);
    expect(JSON.parse(shown.text)).toEqual({
      error: { code: "invalid_field", message: "customer.phone must be E.164", field: "customer.phone" },
      order: { orderId: "9763822", customer: "[redacted]" },
      shippingAddress: "[redacted]",
    });
    expect(shown.redacted).toEqual(["order.customer", "shippingAddress"]);
  });

  it("cuts out any value of the event's own customer data it echoes, whatever its case", () => {
    const shown = redactedExcerpt('{"error":"duplicate customer JORDAN Rivera, phone +15555550123"}', PATHS, VALUES);
    expect(shown.text).toBe('{"error":"duplicate customer [redacted] [redacted], phone [redacted]"}');
    expect(shown.redacted).toEqual([ECHOED_VALUES]);
    const text = redactedExcerpt("Customer Jordan Rivera (1990-04-12) is under age", PATHS, VALUES);
    expect(text).toEqual({
      text: "Customer [redacted] [redacted] ([redacted]) is under age",
      json: false,
      redacted: [ECHOED_VALUES],
    });
  });

  it("hides a PII key's value in JSON cut short at the excerpt's length, and shows plain text as it came", () => {
    const long = JSON.stringify({
      errors: [{ code: "E_CUSTOMER", message: "date of birth missing" }],
      customer: { firstName: "Sam", lastName: "Ortega", notes: "x".repeat(400) },
    }).slice(0, EXCERPT_CHARS);
    const shown = redactedExcerpt(long, PATHS, VALUES);
    expect(shown.json).toBe(false);
    expect(shown.text).toBe(
      '{"errors":[{"code":"E_CUSTOMER","message":"date of birth missing"}],"customer":"[redacted]"',
    );
    expect(shown.redacted).toEqual(["customer"]);
    expect(redactedExcerpt("Bad Request", PATHS, VALUES)).toEqual({ text: "Bad Request", json: false, redacted: [] });
  });

  it("hides the whole excerpt when the whole payload is customer data (a source no longer configured)", () => {
    expect(redactedExcerpt('{"error":"nope"}', ["*"], [])).toEqual({
      text: "[redacted]",
      json: false,
      redacted: ["(excerpt)"],
    });
  });

  it("does not search a marker it put in again, and a reveal shows the excerpt as stored", () => {
    expect(redactedExcerpt('{"customer":{"a":1},"note":"act now"}', ["customer"], ["act"]).text).toBe(
      '{"customer":"[redacted]","note":"[redacted] now"}',
    );
    expect(revealedExcerpt('{"customer":{"phone":"+15555550123"}}')).toEqual({
      text: '{"customer":{"phone":"+15555550123"}}',
      json: true,
      redacted: [],
    });
  });
});
