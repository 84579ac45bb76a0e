import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { confirmDraft } from "../scripts/pricing.mjs";
import { createWorker } from "../src/app/worker.ts";
import { checkWeedmapsAnswer } from "../src/core/providers/weedmaps.ts";
import {
  adminFetch,
  captureDeliveryQueue,
  dbOfEvent,
  deliveriesOf,
  fixture,
  gatesOfItsOwn,
  ManualClock,
  ROUTER,
  stubDestinations,
  storedPayloads,
  stubSilentDestination,
  weedmapsSignature,
} from "./helpers.ts";
import { shownIn } from "./pii.ts";

afterEach(() => vi.restoreAllMocks());

/** Every shard: an order's events are in the one its digest places them in. */
const SHARDS = [env.DB, env.SHARD_1];

/** The first row of a query over every shard, in shard order. */
async function firstInShards<T>(sql: string, ...params: unknown[]): Promise<T | null> {
  for (const db of SHARDS) {
    const row = await db
      .prepare(sql)
      .bind(...params)
      .first<T>();
    if (row) return row;
  }
  return null;
}

type Order = Record<string, unknown> & {
  lineItems: { quantity: number; originalPrice: string; adjustedPrice?: string | null; id: string }[];
};

/** A pricing engine's answer, as Weedmaps documents it: the same order with confirmed taxes and totals. */
function confirm(requestBody: string, change: (order: Order) => void = () => undefined): Order {
  const order = JSON.parse(requestBody) as Order;
  order.taxes = [
    { name: "State Excise Tax", taxType: "EXCISE", amount: "7.41" },
    { name: "Local Sales Tax", taxType: "SALES", amount: "4.69" },
  ];
  Object.assign(order, {
    subtotal: "51.00",
    discountTotal: "1.60",
    taxTotal: "12.10",
    feeTotal: "1.00",
    grandTotal: "62.50",
  });
  change(order);
  return order;
}

const json = (value: unknown, init: ResponseInit = {}) =>
  new Response(JSON.stringify(value), {
    status: 200,
    headers: { "content-type": "application/json; charset=utf-8" },
    ...init,
  });

/** A responder that answers every Draft with `answer(request body)`. */
function responder(answer: (body: string) => Response | Promise<Response>) {
  return stubDestinations(async (request) => answer(await request.text()));
}

const draftBody = (orderId: string) => fixture("weedmaps/draft").body.replace("9779604", orderId);

/**
 * Posts a draft to a Worker and waits for the work it left in `waitUntil` (storing the draft, copying it on), so
 * a test reads the stored row without polling.
 */
async function postDraft(
  path: string,
  body: string,
  headers?: Record<string, string>,
  worker = createWorker(),
  started: (request: Promise<Response>) => Promise<void> = async () => undefined,
): Promise<Response> {
  const ctx = createExecutionContext();
  const request = new Request(`${ROUTER}${path}`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", ...(headers ?? { Signature: await weedmapsSignature(body) }) },
  });
  const pending = worker.fetch(request as Parameters<typeof worker.fetch>[0], env, ctx);
  await started(pending);
  const response = await pending;
  await waitOnExecutionContext(ctx);
  return response;
}

async function storedDraft(orderId: string) {
  return firstInShards<{
    id: string;
    event_type: string;
    responder: string;
    responder_status: number | null;
    responder_latency_ms: number;
    responder_error: string | null;
  }>(
    `SELECT id, event_type, responder, responder_status, responder_latency_ms, responder_error FROM events WHERE provider_id = ?1`,
    orderId,
  );
}

describe("Weedmaps Draft is answered synchronously by the responder", () => {
  it("passes a valid answer byte for byte, then stores the draft, what Weedmaps was answered and why, and copies it on", async () => {
    const queue = captureDeliveryQueue();
    // Whitespace and key order of its own: the answer is relayed as the responder wrote it.
    const answer = (body: string) =>
      `{ "orderId" : ${JSON.stringify(JSON.parse(body).orderId)},\n${JSON.stringify(confirm(body)).slice(1)}`;
    let answered = "";
    const seen = responder((body) => {
      answered = answer(body);
      return new Response(answered, { status: 200, headers: { "content-type": "application/json; charset=utf-8" } });
    });
    const f = fixture("weedmaps/draft");
    const res = await postDraft("/webhooks/weedmaps?merchant_id=4242", f.body, f.headers);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(await res.text()).toBe(answered);

    expect(seen.requests).toHaveLength(1);
    const call = seen.requests[0]!;
    expect(call.url).toBe("https://pricing.example.test/draft");
    expect(seen.bodies[0]).toBe(f.body);
    expect(call.headers.get("x-router-event-type")).toBe("draft");
    const verified = new Webhook(env.PRICING_SIGNING_SECRET as string).verify(
      seen.bodies[0]!,
      Object.fromEntries(call.headers),
    );
    expect(verified).toEqual(JSON.parse(f.body));

    const stored = (await storedDraft("9779604"))!;
    expect(stored).toMatchObject({
      event_type: "draft",
      responder: "pricing",
      responder_status: 200,
      responder_error: null,
    });
    const audit = await dbOfEvent(stored.id)
      .prepare("SELECT draft_answer_status, draft_verdict FROM events WHERE id = ?1")
      .bind(stored.id)
      .first<{ draft_answer_status: number; draft_verdict: string }>();
    expect(audit).toEqual({
      draft_answer_status: 200,
      draft_verdict: JSON.stringify({ outcome: "passed", repaired: [], warnings: [] }),
    });
    // The answer is kept as Weedmaps got it, sealed like the body.
    expect(new TextDecoder().decode((await storedPayloads(stored.id)).answer!)).toBe(answered);
    expect((await deliveriesOf(stored.id)).map((d) => [d.destination, d.status])).toEqual([["erp", "pending"]]);
    expect(queue.messages.map((m) => m.body.eventId)).toContain(stored.id);
  });

  it("answers 504 when the deadline passes before the responder answers, and records the timeout", async () => {
    const clock = new ManualClock();
    const arrived = stubSilentDestination();
    const body = fixture("weedmaps/draft").body.replace("9779604", "slow-draft-1");
    const res = await postDraft(
      "/webhooks/weedmaps/draft?merchant_id=4242",
      body,
      undefined,
      createWorker({ clock }),
      async () => {
        const request = await arrived;
        // The test config's draftDeadlineMs is 300.
        clock.advance(299);
        expect(request.signal.aborted).toBe(false);
        clock.advance(1);
      },
    );
    expect(res.status).toBe(504);
    expect(await res.json()).toEqual({
      error: { code: "responder_timeout", message: expect.any(String), requestId: expect.any(String) },
    });
    expect(await storedDraft("slow-draft-1")).toMatchObject({
      responder_status: null,
      responder_error: "timeout",
      responder_latency_ms: 300,
    });
  });

  it("answers 502 when the responder errors or cannot be reached, without passing its body through", async () => {
    stubDestinations(() => new Response("stack trace from the pricing service", { status: 500 }));
    const failing = await postDraft(
      "/webhooks/weedmaps/draft?merchant_id=4242",
      fixture("weedmaps/draft").body.replace("9779604", "err-draft-1"),
    );
    expect(failing.status).toBe(502);
    const text = await failing.text();
    expect(JSON.parse(text).error.code).toBe("responder_unavailable");
    expect(text).not.toContain("stack trace");
    expect(await storedDraft("err-draft-1")).toMatchObject({ responder_status: 500, responder_error: "http_500" });

    vi.restoreAllMocks();
    stubDestinations(() => {
      throw new TypeError("connection refused");
    });
    const unreachable = await postDraft(
      "/webhooks/weedmaps/draft?merchant_id=4242",
      fixture("weedmaps/draft").body.replace("9779604", "err-draft-2"),
    );
    expect(unreachable.status).toBe(502);
    expect(await storedDraft("err-draft-2")).toMatchObject({ responder_error: "network_error" });
  });

  it("still answers a repeated draft (a reloaded checkout) while storing it once", async () => {
    responder((body) => json(confirm(body)));
    const body = draftBody("reload-1");
    const first = await postDraft("/webhooks/weedmaps?merchant_id=4242", body);
    const second = await postDraft("/webhooks/weedmaps?merchant_id=4242", body);
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(await second.json()).toEqual(confirm(body));
    let n = 0;
    for (const db of SHARDS)
      n += (await db.prepare(`SELECT COUNT(*) AS n FROM events WHERE provider_id = 'reload-1'`).first<number>("n"))!;
    expect(n).toBe(1);
  });

  it("rejects a bad signature before calling the responder", async () => {
    const seen = responder((body) => json(confirm(body)));
    const res = await postDraft(
      "/webhooks/weedmaps/draft?merchant_id=4242",
      fixture("weedmaps/draft").body,
      fixture("weedmaps/create").headers,
    );
    expect(res.status).toBe(401);
    expect(seen.requests).toHaveLength(0);
  });
});

async function verdictOf(orderId: string) {
  const row = await firstInShards<{
    id: string;
    draft_answer_status: number;
    draft_verdict: string;
    responder_error: string | null;
  }>("SELECT id, draft_answer_status, draft_verdict, responder_error FROM events WHERE provider_id = ?1", orderId);
  const { answer } = await storedPayloads(row!.id);
  const { id: _id, ...rest } = row!;
  return {
    ...rest,
    draft_answer: answer && new TextDecoder().decode(answer),
    draft_verdict: JSON.parse(row!.draft_verdict) as Record<string, unknown>,
  };
}

describe("only a valid answer reaches checkout: each misbehaving responder gets a 502 naming the rule", () => {
  const cases: { name: string; answer: (body: string) => Response; rule: string; path: string }[] = [
    {
      name: "a 201",
      answer: (body) => json(confirm(body), { status: 201 }),
      rule: "draft_answer_status",
      path: "(status)",
    },
    { name: "a 204", answer: () => new Response(null, { status: 204 }), rule: "draft_answer_status", path: "(status)" },
    {
      name: "an HTML error page",
      answer: () => new Response("<html><body>Bad gateway</body></html>", { headers: { "content-type": "text/html" } }),
      rule: "draft_answer_not_json",
      path: "(content-type)",
    },
    {
      name: "invalid JSON",
      answer: () => new Response('{"orderId": "9779', { headers: { "content-type": "application/json" } }),
      rule: "draft_answer_not_json",
      path: "(body)",
    },
    {
      name: "a missing orderId",
      answer: (body) => json(confirm(body, (o) => delete o.orderId)),
      rule: "draft_answer_order_id",
      path: "orderId",
    },
    {
      name: "a changed orderId",
      answer: (body) => json(confirm(body, (o) => (o.orderId = "someone-else"))),
      rule: "draft_answer_order_id",
      path: "orderId",
    },
    {
      name: "a changed customer",
      answer: (body) => json(confirm(body, (o) => ((o.customer as Record<string, unknown>).dob = "2011-01-01"))),
      rule: "draft_answer_immutable",
      path: "customer",
    },
    {
      name: "changed documents",
      answer: (body) => json(confirm(body, (o) => (o.documents = []))),
      rule: "draft_answer_immutable",
      path: "documents",
    },
    {
      name: "a dropped Service Fee",
      answer: (body) => json(confirm(body, (o) => (o.fees = [{ name: "Delivery", amount: "3.00" }]))),
      rule: "draft_answer_service_fee",
      path: "fees",
    },
    {
      name: "a changed Service Fee",
      answer: (body) =>
        json(
          confirm(body, (o) => (o.fees = [{ name: "Weedmaps Service Fee", feeType: "SERVICE_FEE", amount: "0.00" }])),
        ),
      rule: "draft_answer_service_fee",
      path: "fees",
    },
    {
      name: "a line item whose price is a number",
      answer: (body) => json(confirm(body, (o) => ((o.lineItems[0] as Record<string, unknown>).originalPrice = 35))),
      rule: "draft_answer_invalid_order",
      path: "lineItems.0.originalPrice",
    },
  ];

  for (const [i, c] of cases.entries()) {
    it(`refuses ${c.name} with 502 ${c.rule}, records the rule and the path, and Weedmaps keeps its estimate`, async () => {
      responder(c.answer);
      const orderId = `rule-${i}`;
      const res = await postDraft("/webhooks/weedmaps?merchant_id=4242", draftBody(orderId));
      expect(res.status).toBe(502);
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({
        error: { code: c.rule, message: expect.any(String), requestId: expect.any(String) },
      });
      expect(shownIn(text, ["Jordan", "MR-2026-118822", "1990-04-12", "Bad gateway"])).toEqual([]);
      expect(await verdictOf(orderId)).toMatchObject({
        draft_answer: null,
        draft_answer_status: 502,
        draft_verdict: { outcome: "rejected", rule: c.rule, path: c.path },
      });
    });
  }

  it("refuses a 50 MB answer without reading it, with a Content-Length and without one", async () => {
    let pulled = 0;
    const huge = (declared: boolean) => {
      const chunk = new Uint8Array(64 * 1024).fill(0x20);
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled++;
          sent += chunk.byteLength;
          if (sent > 50 * 1024 * 1024) controller.close();
          else controller.enqueue(chunk);
        },
      });
      return new Response(stream, {
        headers: {
          "content-type": "application/json",
          ...(declared ? { "content-length": String(50 * 1024 * 1024) } : {}),
        },
      });
    };
    for (const declared of [true, false]) {
      pulled = 0;
      responder(() => huge(declared));
      const orderId = `huge-${declared}`;
      const res = await postDraft("/webhooks/weedmaps?merchant_id=4242", draftBody(orderId));
      expect(res.status).toBe(502);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("draft_answer_too_large");
      // 256 KB is four chunks of 64 KB: the rest of the 800 are never pulled.
      expect(pulled).toBeLessThan(declared ? 3 : 10);
      expect((await verdictOf(orderId)).draft_verdict).toMatchObject({
        outcome: "rejected",
        rule: "draft_answer_too_large",
      });
      vi.restoreAllMocks();
    }
  });

  it("passes an unavailable item at quantity 0, and records totals that disagree as a warning, not a refusal", async () => {
    responder((body) =>
      json(
        confirm(body, (o) => {
          o.lineItems[1]!.quantity = 0;
          o.grandTotal = "99.99";
        }),
      ),
    );
    const res = await postDraft("/webhooks/weedmaps?merchant_id=4242", draftBody("qty-zero-1"));
    expect(res.status).toBe(200);
    const answered = (await res.json()) as Order;
    expect(answered.lineItems[1]!.quantity).toBe(0);
    expect((await verdictOf("qty-zero-1")).draft_verdict).toEqual({
      outcome: "passed",
      repaired: [],
      warnings: ["totals: subtotal", "totals: grandTotal"],
    });
  });

  it("on a repair route, puts the Draft's own customer, documents and Service Fee back, records it, and answers the mended order", async () => {
    responder((body) =>
      json(
        confirm(body, (o) => {
          o.customer = { id: "cus_551092" };
          o.documents = [];
          o.fees = [];
        }),
      ),
    );
    // The repair route answers merchant 5050's drafts, pinned to the signed seller.
    const body = draftBody("repair-1").replace('"seller":{"id":"4242"', '"seller":{"id":"5050"');
    const res = await postDraft("/webhooks/weedmaps?merchant_id=5050", body);
    expect(res.status).toBe(200);
    const answered = (await res.json()) as Order;
    const asked = JSON.parse(body) as Order;
    expect(answered.customer).toEqual(asked.customer);
    expect(answered.documents).toEqual(asked.documents);
    expect(answered.fees).toEqual(asked.fees);
    expect(answered.taxTotal).toBe("12.10");
    const verdict = await verdictOf("repair-1");
    expect(verdict.draft_verdict).toMatchObject({
      outcome: "repaired",
      repaired: ["customer", "documents", "fees (Weedmaps Service Fee)"],
    });
    expect(JSON.parse(verdict.draft_answer!)).toEqual(answered);
  });

  it("refuses another order's answer even on a repair route", async () => {
    responder((body) => json(confirm(body, (o) => (o.orderId = "another-cart"))));
    const body = draftBody("repair-2").replace('"seller":{"id":"4242"', '"seller":{"id":"5050"');
    const res = await postDraft("/webhooks/weedmaps?merchant_id=5050", body);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("draft_answer_order_id");
  });

  it("ends a failure inside the Draft path in a 502, never a 500, and still answers when storing the draft fails", async () => {
    responder((body) => json(confirm(body)));
    // Header building that fails (here the Standard Webhooks signature) is a 502 like any responder failure.
    const headers = { Signature: await weedmapsSignature(draftBody("throws-1")) };
    vi.spyOn(crypto.subtle, "sign").mockRejectedValueOnce(new Error("signing blew up"));
    const unsigned = await postDraft("/webhooks/weedmaps?merchant_id=4242", draftBody("throws-1"), headers);
    expect(unsigned.status).toBe(502);
    expect(((await unsigned.json()) as { error: { code: string } }).error.code).toBe("responder_unavailable");
    expect((await verdictOf("throws-1")).responder_error).toBe("config_error");
    // And anything unexpected (a timer that cannot be started) too.
    const brokenClock = {
      now: () => Date.now(),
      timeout: () => {
        throw new Error("timer failed");
      },
    };
    const broken = await postDraft(
      "/webhooks/weedmaps?merchant_id=4242",
      draftBody("throws-2"),
      undefined,
      createWorker({ clock: brokenClock }),
    );
    expect(broken.status).toBe(502);
    expect(((await broken.json()) as { error: { code: string } }).error.code).toBe("responder_unavailable");
    expect((await verdictOf("throws-2")).responder_error).toBe("internal_error");

    const errors = vi.spyOn(console, "error");
    // Every shard's table, wherever the order is placed.
    for (const db of SHARDS) await db.exec("ALTER TABLE events RENAME TO events_offline");
    try {
      const res = await postDraft("/webhooks/weedmaps?merchant_id=4242", draftBody("store-fails-1"));
      expect(res.status).toBe(200);
    } finally {
      for (const db of SHARDS) await db.exec("ALTER TABLE events_offline RENAME TO events");
    }
    expect(errors.mock.calls.map((c) => JSON.parse(String(c[0])).event)).toContain("draft_store_failed");
  });

  it("shows, in the admin API, what Weedmaps asked and what it was answered, side by side", async () => {
    responder((body) => json(confirm(body)));
    const body = draftBody("audit-1");
    const answered = await (await postDraft("/webhooks/weedmaps?merchant_id=4242", body)).text();
    const { events } = await (await adminFetch("GET", "/events?orderId=audit-1&eventType=draft")).json<{
      events: { id: string }[];
    }>();
    // Both sides carry the customer: redacted alike by default, shown as stored with a reveal.
    const redacted = await (await adminFetch("GET", `/events/${events[0]!.id}`)).json<{
      event: {
        payload: { data: string; redacted: string[] };
        responder: { answered: { payload: { redacted: string[] } } };
      };
    }>();
    expect(redacted.event.payload.redacted).toContain("customer");
    expect(redacted.event.responder.answered.payload.redacted).toContain("customer");
    const detail = await (
      await adminFetch("GET", `/events/${events[0]!.id}?reveal=true`, undefined, {
        "x-reveal-token": env.ADMIN_REVEAL_TOKEN as string,
      })
    ).json<{ event: { payload: { data: string }; responder: Record<string, unknown> } }>();
    expect(detail.event.payload.data).toBe(body);
    expect(detail.event.responder).toEqual({
      destination: "pricing",
      status: 200,
      latencyMs: expect.any(Number),
      error: null,
      answered: { status: 200, payload: { encoding: "utf8", data: answered, redacted: [] } },
      verdict: { outcome: "passed", repaired: [], warnings: [] },
    });
  });
});

describe("the Draft answer is strict only where Weedmaps' documentation is", () => {
  it("passes a faithful answer the documentation allows: a tax with no name, a numeric version, nulls and fields it does not list", async () => {
    responder((body) =>
      json(
        confirm(body, (o) => {
          // Before: 502 draft_answer_invalid_order at taxes.0.name, then at version.
          o.taxes = [
            { taxType: "EXCISE", amount: "7.41" },
            { name: null, amount: "4.69", jurisdiction: "Oakland" },
          ];
          o.version = 20240701;
          Object.assign(o.lineItems[0]!, { brand: null, weightBreakpoint: null, posSku: "BD-35-EC" });
          o.discounts = [{ amount: "1.60", appliesTo: "LINE_ITEM" }];
          o.posReference = { ticket: 88231 };
        }),
      ),
    );
    const res = await postDraft("/webhooks/weedmaps?merchant_id=4242", draftBody("lenient-1"));
    expect(res.status).toBe(200);
    expect((await verdictOf("lenient-1")).draft_verdict).toEqual({ outcome: "passed", repaired: [], warnings: [] });
  });

  const strict: { name: string; change: (o: Order) => void; rule: string; path: string }[] = [
    {
      name: "a negative grandTotal",
      change: (o) => (o.grandTotal = "-0.60"),
      rule: "draft_answer_total",
      path: "grandTotal",
    },
    {
      name: "a grandTotal that is not a number",
      change: (o) => (o.grandTotal = "NaN"),
      rule: "draft_answer_total",
      path: "grandTotal",
    },
    {
      name: "a grandTotal sent as a JSON number",
      change: (o) => (o.grandTotal = 62.5),
      rule: "draft_answer_total",
      path: "grandTotal",
    },
    {
      name: "a tax amount sent as a JSON number",
      change: (o) => ((o.taxes as Record<string, unknown>[])[0]!.amount = 7.41),
      rule: "draft_answer_invalid_order",
      path: "taxes.0.amount",
    },
    {
      name: "a negative quantity",
      change: (o) => (o.lineItems[0]!.quantity = -1),
      rule: "draft_answer_invalid_order",
      path: "lineItems.0.quantity",
    },
    {
      name: "a fractional quantity",
      change: (o) => (o.lineItems[0]!.quantity = 1.5),
      rule: "draft_answer_invalid_order",
      path: "lineItems.0.quantity",
    },
  ];
  for (const [i, c] of strict.entries()) {
    it(`refuses ${c.name} with 502 ${c.rule}`, async () => {
      responder((body) => json(confirm(body, c.change)));
      const orderId = `strict-${i}`;
      const res = await postDraft("/webhooks/weedmaps?merchant_id=4242", draftBody(orderId));
      expect(res.status).toBe(502);
      expect(await res.json()).toEqual({
        error: { code: c.rule, message: expect.any(String), requestId: expect.any(String) },
      });
      expect((await verdictOf(orderId)).draft_verdict).toMatchObject({
        outcome: "rejected",
        rule: c.rule,
        path: c.path,
      });
    });
  }

  it("refuses a negative grandTotal on a repair route too: the total is the POS's pricing, which the Draft cannot supply", async () => {
    responder((body) => json(confirm(body, (o) => (o.grandTotal = "-3.00"))));
    const body = draftBody("total-repair-1").replace('"seller":{"id":"4242"', '"seller":{"id":"5050"');
    const res = await postDraft("/webhooks/weedmaps?merchant_id=5050", body);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("draft_answer_total");
  });

  it("refuses an answer nested 100,000 levels deep (200 KB, under the size limit) with 502 draft_answer_not_json, at limits.maxJsonDepth", async () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    responder((body) => {
      const text = JSON.stringify(confirm(body, (o) => (o.posTrace = "DEEP")));
      return new Response(text.replace('"DEEP"', deep), { headers: { "content-type": "application/json" } });
    });
    const res = await postDraft("/webhooks/weedmaps?merchant_id=4242", draftBody("deep-answer-1"));
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({
      error: { code: "draft_answer_not_json", message: expect.any(String), requestId: expect.any(String) },
    });
    expect(await verdictOf("deep-answer-1")).toMatchObject({
      draft_answer: null,
      draft_verdict: { outcome: "rejected", rule: "draft_answer_not_json", path: "(depth)" },
    });
  });
});

/** The test config with `serviceFee` set on the Weedmaps source, and a Worker that reads it. */
async function postDraftWithServiceFee(serviceFee: unknown, body: string): Promise<Response> {
  const config = JSON.parse(env.ROUTER_CONFIG as string) as { sources: Record<string, Record<string, unknown>> };
  config.sources.weedmaps!.serviceFee = serviceFee;
  const testEnv = { ...env, ROUTER_CONFIG: JSON.stringify(config) } as Env;
  const ctx = createExecutionContext();
  const worker = createWorker();
  const request = new Request(`${ROUTER}/webhooks/weedmaps?merchant_id=4242`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", Signature: await weedmapsSignature(body) },
  });
  const response = await worker.fetch(request as Parameters<typeof worker.fetch>[0], testEnv, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

describe("the Weedmaps Service Fee is recognised by exact fee type or name, set per source", () => {
  const withFees = (orderId: string, fees: unknown[]) => {
    const order = JSON.parse(draftBody(orderId)) as Order;
    order.fees = fees;
    return JSON.stringify(order);
  };
  const SERVICE_FEE = { name: "Weedmaps Service Fee", feeType: "SERVICE_FEE", amount: "1.00" };

  it('by default lets the POS reprice a "Delivery service fee": its name only contains the words', async () => {
    responder((body) =>
      json(
        confirm(
          body,
          (o) => (o.fees = [SERVICE_FEE, { name: "Delivery service fee", feeType: "DELIVERY", amount: "3.00" }]),
        ),
      ),
    );
    const res = await postDraft(
      "/webhooks/weedmaps?merchant_id=4242",
      withFees("fee-delivery-1", [SERVICE_FEE, { name: "Delivery service fee", feeType: "DELIVERY", amount: "5.00" }]),
    );
    expect(res.status).toBe(200);
    expect((await verdictOf("fee-delivery-1")).draft_verdict).toMatchObject({ outcome: "passed" });
  });

  it('by default keeps a fee named "Weedmaps Fee" (any case, surrounding spaces aside), refusing an answer that drops it', async () => {
    responder((body) => json(confirm(body, (o) => (o.fees = []))));
    const res = await postDraft(
      "/webhooks/weedmaps?merchant_id=4242",
      withFees("fee-wm-1", [{ name: " weedmaps fee", amount: "1.50" }]),
    );
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("draft_answer_service_fee");
  });

  it("takes a source's own fee types and names instead of the default", async () => {
    const setting = { feeTypes: ["WM_PLATFORM"], names: ["Platform Fee"] };
    responder((body) => json(confirm(body, (o) => (o.fees = []))));
    // Named in the setting: kept.
    const named = await postDraftWithServiceFee(
      setting,
      withFees("fee-config-1", [{ name: "PLATFORM FEE", amount: "1.00" }]),
    );
    expect(named.status).toBe(502);
    expect(((await named.json()) as { error: { code: string } }).error.code).toBe("draft_answer_service_fee");
    const typed = await postDraftWithServiceFee(
      setting,
      withFees("fee-config-2", [{ name: "Fee", feeType: "wm_platform", amount: "1.00" }]),
    );
    expect(typed.status).toBe(502);
    // The default's SERVICE_FEE is not in this source's setting: the POS may drop it.
    const replaced = await postDraftWithServiceFee(setting, withFees("fee-config-3", [SERVICE_FEE]));
    expect(replaced.status).toBe(200);
  });
});

describe("the sample responder (scripts/pricing.mjs) prices a Draft so that its answer passes", () => {
  const draft = () => JSON.parse(fixture("weedmaps/draft").body) as Order & { discounts: Record<string, unknown>[] };
  /** The sample's answer is the order the Worker's own check accepts, with totals that agree with their parts. */
  const expectPasses = (asked: unknown, answer: Record<string, unknown>) =>
    expect(checkWeedmapsAnswer(asked, answer, "strict")).toEqual({ ok: true, repaired: [], warnings: [] });

  it("drops the discount of an unavailable item instead of moving it onto the items left", () => {
    const asked = draft();
    // The fixture's 10% off the two pre-rolls (1.60).
    const answer = confirmDraft(asked, { unavailable: ["li_77310"] });
    expect(answer).toMatchObject({
      subtotal: "35.00",
      discounts: [],
      discountTotal: "0.00",
      taxTotal: "8.58",
      grandTotal: "44.58",
    });
    expectPasses(asked, answer);
  });

  it("never answers a negative total: discounts take off at most the subtotal", () => {
    const asked = draft();
    asked.discounts = [
      { appliesTo: "SUBTOTAL", discountType: "FLAT", value: "20", amount: "20.00", description: "$20 off" },
    ];
    const answer = confirmDraft(asked, { unavailable: ["li_88231"] });
    expect(answer).toMatchObject({
      subtotal: "16.00",
      discounts: [{ amount: "16.00" }],
      discountTotal: "16.00",
      taxTotal: "0.00",
      grandTotal: "1.00",
    });
    expectPasses(asked, answer);
    const none = confirmDraft(draft(), { unavailable: ["li_88231", "li_77310"] });
    expect(none).toMatchObject({ subtotal: "0.00", discountTotal: "0.00", grandTotal: "1.00" });
  });

  it("does not take a discount off twice when the item's adjustedPrice already shows it", () => {
    const asked = draft();
    asked.lineItems[1]!.adjustedPrice = "7.20";
    const answer = confirmDraft(asked);
    expect(answer).toMatchObject({ subtotal: "49.40", discounts: [], discountTotal: "0.00", grandTotal: "62.50" });
    expectPasses(asked, answer);
  });

  it("is passed by the Worker when every item is unavailable, with a total of the Service Fee alone", async () => {
    responder((body) =>
      json(confirmDraft(JSON.parse(body) as Record<string, unknown>, { unavailable: ["li_88231", "li_77310"] })),
    );
    const res = await postDraft("/webhooks/weedmaps?merchant_id=4242", draftBody("sample-empty-1"));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ grandTotal: "1.00", lineItems: [{ quantity: 0 }, { quantity: 0 }] });
    expect((await verdictOf("sample-empty-1")).draft_verdict).toEqual({
      outcome: "passed",
      repaired: [],
      warnings: [],
    });
  });
});

describe("the responder's controls (issue #27)", () => {
  const config = JSON.parse(env.ROUTER_CONFIG as string);
  config.destinations.pricing.circuit = { consecutiveFailures: 3, coolDownSeconds: 30 };
  let clock: ManualClock;
  let worker: ReturnType<typeof createWorker>;
  let bindings: Env;

  async function postDraft(): Promise<{ status: number; code: string | null }> {
    const body = draftBody(`ctl-${crypto.randomUUID().slice(0, 12)}`);
    const ctx = createExecutionContext();
    const request = new Request(`${ROUTER}/webhooks/weedmaps?merchant_id=4242`, {
      method: "POST",
      headers: { "content-type": "application/json", Signature: await weedmapsSignature(body) },
      body,
    }) as Parameters<typeof worker.fetch>[0];
    const res = await worker.fetch(request, bindings, ctx);
    // The outcome reaches the responder's object after the answer, in waitUntil.
    await waitOnExecutionContext(ctx);
    const text = await res.text();
    return { status: res.status, code: res.status === 200 ? null : JSON.parse(text).error.code };
  }

  let days = 1;
  function setUp() {
    clock = new ManualClock(Date.now() + 86_400_000 * days++);
    worker = createWorker({ clock });
    bindings = { ...env, ROUTER_CONFIG: JSON.stringify(config), DESTINATION_GATE: gatesOfItsOwn() } as Env;
    captureDeliveryQueue();
  }

  it("a failing responder's circuit opens: Drafts get 502 responder_held at once, uncalled, until a probe after the cool-down closes it", async () => {
    setUp();
    let down = true;
    const seen = responder((body) => (down ? new Response("down", { status: 503 }) : json(confirm(body))));
    const calls = () => seen.requests.filter((r) => new URL(r.url).hostname === "pricing.example.test").length;
    for (let i = 0; i < 3; i++) expect(await postDraft()).toEqual({ status: 502, code: "responder_unavailable" });
    expect(calls()).toBe(3);
    // Open: answered at once, and the responder is not called.
    expect(await postDraft()).toEqual({ status: 502, code: "responder_held" });
    expect(await postDraft()).toEqual({ status: 502, code: "responder_held" });
    expect(calls()).toBe(3);
    // After the cool-down the next Draft is the probe; the responder is back, so it closes the circuit.
    clock.advance(31_000);
    down = false;
    expect(await postDraft()).toEqual({ status: 200, code: null });
    expect(await postDraft()).toEqual({ status: 200, code: null });
    expect(calls()).toBe(5);
  });

  it("a healthy responder costs its object one request per isolate every 2 s, not one per Draft", async () => {
    setUp();
    const calls = { admitResponder: 0, report: 0 };
    const gates = bindings.DESTINATION_GATE;
    // Counts what the Worker asks of the responder's object (the object itself is the real one).
    bindings.DESTINATION_GATE = new Proxy(gates, {
      get(target, property) {
        if (property === "get")
          return (id: DurableObjectId) => {
            const stub = target.get(id);
            return new Proxy(stub, {
              get(s, method) {
                const value = Reflect.get(s, method);
                if (method === "admitResponder" || method === "report")
                  return (...args: unknown[]) => {
                    calls[method]++;
                    return Reflect.apply(value as (...a: unknown[]) => unknown, s, args);
                  };
                return typeof value === "function" ? value.bind(s) : value;
              },
            });
          };
        const value = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    let down = false;
    responder((body) => (down ? new Response("down", { status: 503 }) : json(confirm(body))));
    for (let i = 0; i < 10; i++) {
      expect(await postDraft()).toEqual({ status: 200, code: null });
      clock.advance(100);
    }
    expect(calls).toEqual({ admitResponder: 1, report: 1 });
    // Past the trust window the object decides again, and hears of the nine answers that waited.
    clock.advance(2_000);
    expect(await postDraft()).toEqual({ status: 200, code: null });
    expect(calls).toEqual({ admitResponder: 2, report: 2 });
    // Down: every failure goes to the object at once, and each Draft is its decision, until the circuit opens.
    down = true;
    for (let i = 0; i < 3; i++) await postDraft();
    expect(calls).toEqual({ admitResponder: 4, report: 5 });
    // Open: the first Draft asks, and the isolate holds the answer for the window; no call, no report.
    for (let i = 0; i < 5; i++) {
      expect(await postDraft()).toEqual({ status: 502, code: "responder_held" });
      clock.advance(100);
    }
    expect(calls).toEqual({ admitResponder: 5, report: 5 });
  });

  it("a probe that fails keeps the circuit open; a paused responder is not called either", async () => {
    setUp();
    const seen = responder(() => new Response("down", { status: 500 }));
    const calls = () => seen.requests.filter((r) => new URL(r.url).hostname === "pricing.example.test").length;
    for (let i = 0; i < 3; i++) await postDraft();
    clock.advance(31_000);
    expect(await postDraft()).toEqual({ status: 502, code: "responder_unavailable" });
    expect(calls()).toBe(4);
    expect(await postDraft()).toEqual({ status: 502, code: "responder_held" });
    expect(calls()).toBe(4);

    setUp();
    const paused = await worker.fetch(
      new Request(`${ROUTER}/admin/destinations/pricing/pause`, {
        method: "POST",
        headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ reason: "pricing service deploy" }),
      }) as Parameters<typeof worker.fetch>[0],
      bindings,
      createExecutionContext(),
    );
    expect(paused.status).toBe(200);
    expect(await postDraft()).toEqual({ status: 502, code: "responder_held" });
    expect(calls()).toBe(4);
  });
});
