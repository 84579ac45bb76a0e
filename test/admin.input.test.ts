import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import { ATTEMPT_POLICY } from "../src/storage/attempts.ts";
import { ManualClock, post, ROUTER } from "./helpers.ts";

/**
 * Bad input never becomes a 500 (issue #22, item 6), the admin API's answers are never cached, and its reveal is
 * throttled and audited like the dashboard's (item 7). Through the real Worker.
 */
afterEach(() => vi.restoreAllMocks());

type WorkerRequest = Parameters<ReturnType<typeof createWorker>["fetch"]>[0];
const ctx = {
  waitUntil: () => undefined,
  passThroughOnException: () => undefined,
  props: {},
} as unknown as ExecutionContext;

function admin(
  method: string,
  path: string,
  { body, headers = {} }: { body?: string; headers?: Record<string, string> } = {},
): Promise<Response> {
  return exports.default.fetch(
    new Request(`${ROUTER}/admin${path}`, {
      method,
      headers: { Authorization: `Bearer ${env.ADMIN_TOKEN}`, ...headers },
      body,
    }),
  );
}

const invalid = (details: string[]) => ({
  error: { code: "invalid_request", message: "The request is invalid.", requestId: expect.any(String), details },
});

describe("admin POSTs without a body", () => {
  // Before: the routes' bodies were optional, so the validator let an absent body through as `{}` and D1 refused
  // the undefined fields (D1_TYPE_ERROR) as a 500 internal_error.
  const cases: [string, string[]][] = [
    [
      "/replays",
      [
        "since: Invalid input: expected string, received undefined",
        "until: Invalid input: expected string, received undefined",
        "maxCount: Invalid input: expected number, received undefined",
      ],
    ],
    [
      "/dead-letters/redrive",
      [
        "since: Invalid input: expected string, received undefined",
        "until: Invalid input: expected string, received undefined",
        "maxCount: Invalid input: expected number, received undefined",
      ],
    ],
    ["/customer-data/purge", ["providerOrderId: Invalid input: expected string, received undefined"]],
    [
      "/routing/dry-run",
      [
        "source: Invalid input: expected string, received undefined",
        "payload: Invalid input: expected nonoptional, received undefined",
      ],
    ],
  ];
  for (const [path, details] of cases) {
    it(`POST ${path} answers 400 naming the missing fields, with no body, an empty JSON body, or no content type`, async () => {
      const errors = vi.spyOn(console, "error");
      for (const request of [
        {},
        { headers: { "content-type": "application/json" } },
        { body: "", headers: { "content-type": "application/json" } },
        { body: "  \n", headers: { "content-type": "application/json" } },
      ]) {
        const res = await admin("POST", path, request);
        const json = await res.json();
        expect(res.status, `${JSON.stringify(request)}: ${JSON.stringify(json)}`).toBe(400);
        expect(json).toEqual(invalid(details));
      }
      expect(errors).not.toHaveBeenCalled();
    });
  }

  it("POST /config/validate with no body says which sections the config lacks, not 500", async () => {
    for (const request of [{}, { headers: { "content-type": "application/json" } }]) {
      const res = await admin("POST", "/config/validate", request);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        valid: false,
        errors: expect.arrayContaining([expect.stringMatching(/^sources: /)]),
      });
    }
  });

  it("still replays one event with no body (its body is optional): every destination", async () => {
    const res = await admin("POST", `/events/evt_${"0".repeat(32)}/replay`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: "not_found" } });
  });
});

describe("a body cut off before its Content-Length", () => {
  /** A request whose body stream fails as workerd's does when the caller's connection drops mid-body. */
  function cutOff(path: string, headers: Record<string, string>): WorkerRequest {
    let sent = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (!sent) {
          sent = true;
          controller.enqueue(new TextEncoder().encode('{"id":"cut-'));
        } else controller.error(new Error("Network connection lost."));
      },
    });
    return new Request(`${ROUTER}${path}`, {
      method: "POST",
      body,
      headers: { "content-length": "4096", ...headers },
    }) as WorkerRequest;
  }

  it("answers 400 body_incomplete with a warning, not unhandled_error, on ingest, the admin API and the dashboard", async () => {
    const worker = createWorker();
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const requests = [
      cutOff("/webhooks/lab/single", { "content-type": "application/json" }),
      cutOff("/admin/replays", { "content-type": "application/json", authorization: `Bearer ${env.ADMIN_TOKEN}` }),
      cutOff("/dashboard/sign-in", { "content-type": "application/x-www-form-urlencoded", origin: ROUTER }),
    ];
    for (const request of requests) {
      const res = await worker.fetch(request, env, ctx);
      expect(res.status, request.url).toBe(400);
      const text = await res.text();
      expect(text, request.url).toContain("body_incomplete");
    }
    const admin = await worker.fetch(
      cutOff("/admin/replays", { "content-type": "application/json", authorization: `Bearer ${env.ADMIN_TOKEN}` }),
      env,
      ctx,
    );
    expect(await admin.json()).toEqual({
      error: {
        code: "body_incomplete",
        message: "The request body ended before its declared length; send it again.",
        requestId: expect.any(String),
      },
    });
    expect(error).not.toHaveBeenCalled();
    const lines = warn.mock.calls.map(([line]) => JSON.parse(String(line)) as Record<string, unknown>);
    expect(lines.filter((l) => l.code === "body_incomplete")).toHaveLength(4);
    expect(lines[0]).toMatchObject({
      level: "warn",
      event: "request_rejected",
      code: "body_incomplete",
      status: 400,
      path: "/webhooks/lab/single",
    });
  });

  it("keeps an unexpected error an internal_error: only a request that declared a body can have it cut off", async () => {
    const worker = createWorker();
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined);
    vi.spyOn(env.DB, "prepare").mockImplementation(() => {
      throw new Error("Network connection lost.");
    });
    const res = await worker.fetch(
      new Request(`${ROUTER}/admin/events`, { headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` } }),
      env,
      ctx,
    );
    expect(res.status).toBe(500);
    expect(JSON.parse(String(error.mock.calls[0]?.[0]))).toMatchObject({ event: "unhandled_error" });
  });
});

describe("admin answers are never cached", () => {
  it("sends Cache-Control: no-store on payloads, lists, refusals and the reference page", async () => {
    const ingested = await post(
      "/webhooks/lab/single",
      JSON.stringify({ id: `nostore-${crypto.randomUUID()}`, kind: "single" }),
    );
    const { eventId } = await ingested.json<{ eventId: string }>();
    const answers = [
      await admin("GET", `/events/${eventId}`),
      await admin("GET", `/events/${eventId}?reveal=true`, {
        headers: { "x-reveal-token": env.ADMIN_REVEAL_TOKEN as string, "cf-connecting-ip": "192.0.2.200" },
      }),
      await admin("GET", "/events"),
      await admin("GET", "/audit"),
      await admin("GET", "/config"),
      await admin("GET", "/reference"),
      await admin("POST", "/replays"),
      await exports.default.fetch(new Request(`${ROUTER}/admin/events`)),
    ];
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200, 400, 401]);
    for (const res of answers) expect(res.headers.get("cache-control"), res.url).toBe("no-store");
  });
});

describe("the admin API's reveal is throttled per client and every failure audited", () => {
  it(`refuses the client with 429 and Retry-After after ${ATTEMPT_POLICY.maxFailures} wrong tokens, the right one too; others still reveal`, async () => {
    const ingested = await post(
      "/webhooks/lab/single",
      JSON.stringify({ id: `throttle-${crypto.randomUUID()}`, kind: "single" }),
    );
    const { eventId } = await ingested.json<{ eventId: string }>();
    const ip = "198.51.100.77";
    const reveal = (token: string | null, client = ip) =>
      admin("GET", `/events/${eventId}?reveal=true`, {
        headers: { "cf-connecting-ip": client, ...(token === null ? {} : { "x-reveal-token": token }) },
      });
    expect((await reveal(null)).status).toBe(401);
    for (let i = 1; i < ATTEMPT_POLICY.maxFailures; i++)
      expect((await reveal(`wrong-reveal-token-${i}`)).status).toBe(403);
    for (const token of ["wrong-reveal-token-x", env.ADMIN_REVEAL_TOKEN as string]) {
      const locked = await reveal(token);
      expect(locked.status).toBe(429);
      expect(Number(locked.headers.get("retry-after"))).toBeGreaterThan(800);
      expect(Number(locked.headers.get("retry-after"))).toBeLessThanOrEqual(900);
      expect(await locked.json()).toEqual({
        error: { code: "too_many_attempts", message: expect.any(String), requestId: expect.any(String) },
      });
    }
    expect((await reveal(env.ADMIN_REVEAL_TOKEN as string, "198.51.100.78")).status).toBe(200);

    const { results } = await env.DB.prepare(
      `SELECT action, token_id, event_id, detail FROM audit_log WHERE detail LIKE ?1 ORDER BY id`,
    )
      .bind(`%${ip}%`)
      .all<{ action: string; token_id: string; event_id: string; detail: string }>();
    // The lockout's entry shares its millisecond with the failure that started it, so only the counts have an order.
    expect(results.map((r) => r.action).sort()).toEqual([
      "attempts_throttled",
      ...Array<string>(ATTEMPT_POLICY.maxFailures).fill("reveal_failed"),
    ]);
    // Two failures can share a millisecond too, and then their ids' random tails order them: the count does.
    const failures = results
      .filter((r) => r.action === "reveal_failed")
      .map((r) => JSON.parse(r.detail) as { failures: number })
      .sort((a, b) => a.failures - b.failures);
    expect(results.every((r) => r.token_id === "none" && r.event_id === eventId)).toBe(true);
    expect(failures).toEqual(
      Array.from({ length: ATTEMPT_POLICY.maxFailures }, (_, i) => ({
        client: ip,
        via: "api",
        reason: i === 0 ? "token_missing" : "token_mismatch",
        failures: i + 1,
        requestId: expect.any(String),
      })),
    );
    expect(results.map((r) => r.detail).join()).not.toContain("wrong-reveal-token");

    // The window ends 15 minutes after the first failure: then the right token reveals again, and clears the count.
    const later = createWorker({ clock: new ManualClock(Date.now() + ATTEMPT_POLICY.windowMs + 1_000) });
    const again = await later.fetch(
      new Request(`${ROUTER}/admin/events/${eventId}?reveal=true`, {
        headers: {
          authorization: `Bearer ${env.ADMIN_TOKEN}`,
          "x-reveal-token": env.ADMIN_REVEAL_TOKEN as string,
          "cf-connecting-ip": ip,
        },
      }),
      env,
      ctx,
    );
    expect(again.status).toBe(200);
    // A wrong token then starts a new window: refused as wrong (403), not as locked out.
    const wrongAgain = await later.fetch(
      new Request(`${ROUTER}/admin/events/${eventId}?reveal=true`, {
        headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, "x-reveal-token": "wrong", "cf-connecting-ip": ip },
      }),
      env,
      ctx,
    );
    expect(wrongAgain.status).toBe(403);
    expect(
      await env.DB.prepare(`SELECT failures FROM attempt_throttle WHERE client = ?1`).bind(ip).first("failures"),
    ).toBe(1);
  });
});
