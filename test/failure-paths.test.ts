import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import type { DeliveryMessage } from "../src/core/messages.ts";
import {
  adminFetch,
  captureDeliveryQueue,
  deliveriesOf,
  post,
  postWeedmaps,
  ROUTER,
  runDeliveryQueue,
  stubDestinations,
} from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

const errorShape = (code: string) => ({ error: { code, message: expect.any(String), requestId: expect.any(String) } });

describe("a header value that cannot be sent settles its destination alone", () => {
  it("marks the POS delivery dead with config_error and the header's name, never its value, and delivers the ERP copy", async () => {
    const queue = captureDeliveryQueue();
    const seen = stubDestinations(() => new Response("ok"));
    const { eventId } = await (
      await post("/webhooks/lab/pair", JSON.stringify({ id: "bad-header-1", kind: "pair" }))
    ).json<{ eventId: string }>();
    const message = queue.messages.find((m) => m.body.eventId === eventId)!.body as DeliveryMessage;
    // The POS destination's Authorization header comes from this secret: a CR/LF in it can never be a header value.
    const brokenEnv = { ...env, POS_API_TOKEN: "pos-token\r\nX-Injected: 1" } as Env;
    const batch = createMessageBatch("webhook-deliveries", [
      { id: "m-bad-header", timestamp: new Date(), attempts: 1, body: message },
    ]);
    const ctx = createExecutionContext();
    await createWorker().queue(batch, brokenEnv);
    expect(await getQueueResult(batch, ctx)).toMatchObject({ explicitAcks: ["m-bad-header"], retryMessages: [] });
    expect(seen.requests.map((r) => new URL(r.url).hostname)).toEqual(["erp.example.test"]);
    const deliveries = await deliveriesOf(eventId);
    expect(deliveries.map((d) => [d.destination, d.status, d.last_error, d.attempts])).toEqual([
      ["erp", "delivered", null, 1],
      ["pos", "dead", "config_error (permanent)", 1],
    ]);
    const [attempt] = JSON.parse(deliveries[1]!.attempt_log);
    expect(attempt.responseExcerpt).toBe("header Authorization has a value that is not a valid header value");
    expect(deliveries[1]!.attempt_log).not.toContain("pos-token");
  });
});

describe("the dead-letter consumer handles every message kind", () => {
  it("marks a running job failed with the reason when its page dead-letters", async () => {
    stubDestinations(() => new Response("gone", { status: 422 }));
    const queue = captureDeliveryQueue();
    const { eventId } = await (
      await post("/webhooks/lab/single", JSON.stringify({ id: "dlq-job-1", kind: "single" }))
    ).json<{ eventId: string }>();
    await runDeliveryQueue([queue.messages.find((m) => m.body.eventId === eventId)!.body]);
    const since = new Date(Date.now() - 60_000).toISOString();
    const until = new Date(Date.now() + 60_000).toISOString();
    const started = await (
      await adminFetch("POST", "/replays", { status: "dead", destination: "pos", since, until, maxCount: 10 })
    ).json<{ replayId: string; state: string }>();
    expect(started.state).toBe("running");
    const { result, ids } = await runDeliveryQueue(
      [{ v: 1, kind: "replay-page", replayId: started.replayId, after: null }],
      1,
      "webhook-deliveries-dlq",
    );
    expect(result.explicitAcks).toEqual(ids);
    expect(await (await adminFetch("GET", `/replays/${started.replayId}`)).json()).toMatchObject({
      state: "failed",
      error: "queue_retries_exhausted",
      replayed: 0,
    });
  });
});

describe("admin errors map to the one shape", () => {
  const raw = (method: string, path: string, body: string, contentType: string) =>
    exports.default.fetch(
      new Request(`${ROUTER}/admin${path}`, {
        method,
        body,
        headers: { Authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": contentType },
      }),
    );

  it("400 invalid_request for malformed JSON and 415 unsupported_media_type for a body that is not JSON, never a 500", async () => {
    const malformed = await raw("POST", "/replays", '{"status": "dead",', "application/json");
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toEqual(errorShape("invalid_request"));
    for (const type of ["application/x-www-form-urlencoded", "text/plain"]) {
      const wrongType = await raw("POST", "/config/validate", "sources=none", type);
      expect(wrongType.status).toBe(415);
      expect(await wrongType.json()).toEqual(errorShape("unsupported_media_type"));
    }
  });

  it("413 payload_too_large for an admin body over a megabyte", async () => {
    const res = await raw(
      "POST",
      "/config/validate",
      JSON.stringify({ pad: "x".repeat(1_100_000) }),
      "application/json",
    );
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual(errorShape("payload_too_large"));
  });

  it("400 for a cursor holding NaN, Infinity, an object or a string where the time belongs", async () => {
    const cursor = (value: string) => btoa(value).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    for (const bad of [
      '[NaN,"evt_0123456789abcdef0123456789abcdef"]',
      '[1e999,"evt_0123456789abcdef0123456789abcdef"]',
      '[{},"x"]',
      '["1","evt_0123456789abcdef0123456789abcdef"]',
      '{"a":1}',
    ]) {
      const res = await adminFetch("GET", `/events?cursor=${cursor(bad)}`);
      expect(res.status, bad).toBe(400);
      expect(await res.json()).toEqual({
        error: {
          code: "invalid_request",
          message: expect.any(String),
          requestId: expect.any(String),
          details: ["cursor: is not a cursor this API issued"],
        },
      });
    }
    expect((await adminFetch("GET", `/dead-letters?cursor=${cursor("[1,2]")}`)).status).toBe(400);
  });
});

describe("inputs without a limit now have one", () => {
  it("refuses JSON nested deeper than limits.maxJsonDepth (64) with 400 invalid_json, storing nothing", async () => {
    // 30,000 levels (the test config takes bodies up to 64 KB; the reported one was 120,000 levels).
    const deep = `${"[".repeat(30_000)}${"]".repeat(30_000)}`;
    // Both shards: an event goes to one of them by its order.
    const events = async () => {
      let n = 0;
      for (const db of [env.DB, env.SHARD_1])
        n += (await db.prepare("SELECT COUNT(*) AS n FROM events").first<number>("n"))!;
      return n;
    };
    const before = await events();
    for (const source of ["/webhooks/lab/single", "/webhooks/weedmaps"]) {
      const res = source.includes("weedmaps") ? await postWeedmaps(source, deep) : await post(source, deep);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual(errorShape("invalid_json"));
    }
    expect(await events()).toBe(before);
    // Brackets inside strings do not count, and 64 levels pass.
    const nested = JSON.stringify({
      id: "depth-ok",
      kind: "single",
      note: "[[[[{{{{".repeat(50),
      deep: JSON.parse(`${"[".repeat(60)}1${"]".repeat(60)}`),
    });
    expect((await post("/webhooks/lab/single", nested)).status).toBe(200);
  });

  it("echoes a client X-Request-Id only when it is a short token of safe characters", async () => {
    const withId = (id: string) =>
      exports.default.fetch(new Request(`${ROUTER}/nothing`, { headers: { "X-Request-Id": id } }));
    const good = await withId("trace-123_abc=");
    expect(good.headers.get("x-request-id")).toBe("trace-123_abc=");
    expect(((await good.json()) as { error: { requestId: string } }).error.requestId).toBe("trace-123_abc=");
    for (const bad of ["<script>alert(1)</script>", "a b", "x".repeat(65), "id;drop"]) {
      const res = await withId(bad);
      const echoed = ((await res.json()) as { error: { requestId: string } }).error.requestId;
      expect(echoed).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.headers.get("x-request-id")).toBe(echoed);
    }
  });
});
