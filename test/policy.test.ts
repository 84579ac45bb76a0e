import { describe, expect, it } from "vitest";
import { backoffDelaySeconds, classifyAttempt, errorClassOf, parseRetryAfter } from "../src/core/retry-policy.ts";

const status = (statusCode: number) => ({ statusCode, transportError: null });

describe("classifyAttempt", () => {
  it("treats 2xx as delivered; 408, 429, 5xx and transport errors as retryable; other 4xx as permanent", () => {
    expect(classifyAttempt(status(200), [])).toBe("delivered");
    expect(classifyAttempt(status(204), [])).toBe("delivered");
    for (const code of [408, 429, 500, 502, 503, 504]) expect(classifyAttempt(status(code), [])).toBe("retry");
    for (const code of [400, 401, 404, 409, 410, 422]) expect(classifyAttempt(status(code), [])).toBe("permanent");
    expect(classifyAttempt(status(302), [])).toBe("permanent");
    expect(classifyAttempt({ statusCode: null, transportError: "timeout" }, [])).toBe("retry");
    expect(classifyAttempt({ statusCode: null, transportError: "network_error" }, [])).toBe("retry");
  });

  it("lets a destination retry chosen 4xx statuses", () => {
    expect(classifyAttempt(status(409), [409])).toBe("retry");
    expect(classifyAttempt(status(410), [409])).toBe("permanent");
  });

  it("names the error class", () => {
    expect(errorClassOf(status(503))).toBe("http_503");
    expect(errorClassOf(status(200))).toBeNull();
    expect(errorClassOf({ statusCode: null, transportError: "timeout" })).toBe("timeout");
  });
});

describe("backoffDelaySeconds", () => {
  it("doubles from 30 s with jitter between half and all of the step", () => {
    expect(backoffDelaySeconds(1, undefined, () => 0)).toBe(15);
    expect(backoffDelaySeconds(1, undefined, () => 1)).toBe(30);
    expect(backoffDelaySeconds(4, undefined, () => 0)).toBe(120);
    expect(backoffDelaySeconds(4, undefined, () => 1)).toBe(240);
  });

  it("clamps at the Queues maximum of 12 hours", () => {
    expect(backoffDelaySeconds(20, undefined, () => 1)).toBe(43_200);
    expect(backoffDelaySeconds(2, 999_999)).toBe(43_200);
  });

  it("honours Retry-After over the schedule", () => {
    expect(backoffDelaySeconds(1, 120, () => 1)).toBe(120);
    expect(backoffDelaySeconds(9, 5, () => 1)).toBe(5);
    expect(backoffDelaySeconds(1, 0, () => 1)).toBe(1);
  });
});

describe("parseRetryAfter", () => {
  it("reads delta-seconds and HTTP dates", () => {
    const now = Date.parse("2026-11-23T10:00:00Z");
    expect(parseRetryAfter("120", now)).toBe(120);
    expect(parseRetryAfter("Mon, 23 Nov 2026 10:05:00 GMT", now)).toBe(300);
    expect(parseRetryAfter("Mon, 23 Nov 2026 09:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});
