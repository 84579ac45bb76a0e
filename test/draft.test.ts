import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import { captureDeliveryQueue, deferred, deliveriesOf, fixture, ManualClock, ROUTER, stubDestinations, weedmapsSignature } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

const CONFIRMED = JSON.stringify({
  status: "DRAFT",
  orderId: "9779604",
  lineItems: [
    { id: "li_1", quantity: 1, unitPrice: "35.00", subtotal: "35.00" },
    { id: "li_2", quantity: 0, unitPrice: "8.00", subtotal: "0.00" },
  ],
  taxes: [{ name: "State Excise Tax", amount: "5.25" }],
  fees: [{ name: "Service Fee", amount: "1.00" }],
  grandTotal: "41.25",
});

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
  return env.DB.prepare(`SELECT id, event_type, responder, responder_status, responder_latency_ms, responder_error FROM events WHERE provider_id = ?1`)
    .bind(orderId)
    .first<{ id: string; event_type: string; responder: string; responder_status: number | null; responder_latency_ms: number; responder_error: string | null }>();
}

describe("Weedmaps Draft is answered synchronously by the responder", () => {
  it("returns the responder's status, body and content type verbatim, then stores the draft and copies it on", async () => {
    const queue = captureDeliveryQueue();
    const seen = stubDestinations(() => new Response(CONFIRMED, { status: 200, headers: { "content-type": "application/json; charset=utf-8" } }));
    const f = fixture("weedmaps/draft");
    const res = await postDraft("/webhooks/weedmaps?merchant_id=4242", f.body, f.headers);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(await res.text()).toBe(CONFIRMED);

    expect(seen.requests).toHaveLength(1);
    const call = seen.requests[0]!;
    expect(call.url).toBe("https://pricing.example.test/draft");
    expect(seen.bodies[0]).toBe(f.body);
    expect(call.headers.get("x-router-event-type")).toBe("draft");
    const verified = new Webhook(env.PRICING_SIGNING_SECRET as string).verify(seen.bodies[0]!, Object.fromEntries(call.headers));
    expect(verified).toEqual(JSON.parse(f.body));

    const stored = (await storedDraft("9779604"))!;
    expect(stored).toMatchObject({ event_type: "draft", responder: "pricing", responder_status: 200, responder_error: null });
    expect((await deliveriesOf(stored.id)).map((d) => [d.destination, d.status])).toEqual([["erp", "pending"]]);
    expect(queue.messages.map((m) => m.body.eventId)).toContain(stored.id);
  });

  it("answers 504 when the deadline passes before the responder answers, and records the timeout", async () => {
    const clock = new ManualClock();
    const arrived = deferred<Request>();
    stubDestinations((request) => {
      arrived.resolve(request);
      return new Promise<Response>((_, reject) => request.signal.addEventListener("abort", () => reject(request.signal.reason)));
    });
    const body = fixture("weedmaps/draft").body.replace("9779604", "slow-draft-1");
    const res = await postDraft("/webhooks/weedmaps/draft?merchant_id=4242", body, undefined, createWorker({ clock }), async () => {
      const request = await arrived.promise;
      // The test config's draftDeadlineMs is 300.
      clock.advance(299);
      expect(request.signal.aborted).toBe(false);
      clock.advance(1);
    });
    expect(res.status).toBe(504);
    expect(await res.json()).toEqual({ error: { code: "responder_timeout", message: expect.any(String), requestId: expect.any(String) } });
    expect(await storedDraft("slow-draft-1")).toMatchObject({ responder_status: null, responder_error: "timeout", responder_latency_ms: 300 });
  });

  it("answers 502 when the responder errors or cannot be reached, without passing its body through", async () => {
    stubDestinations(() => new Response("stack trace from the pricing service", { status: 500 }));
    const failing = await postDraft("/webhooks/weedmaps/draft?merchant_id=4242", fixture("weedmaps/draft").body.replace("9779604", "err-draft-1"));
    expect(failing.status).toBe(502);
    const text = await failing.text();
    expect(JSON.parse(text).error.code).toBe("responder_unavailable");
    expect(text).not.toContain("stack trace");
    expect(await storedDraft("err-draft-1")).toMatchObject({ responder_status: 500, responder_error: "http_500" });

    vi.restoreAllMocks();
    stubDestinations(() => {
      throw new TypeError("connection refused");
    });
    const unreachable = await postDraft("/webhooks/weedmaps/draft?merchant_id=4242", fixture("weedmaps/draft").body.replace("9779604", "err-draft-2"));
    expect(unreachable.status).toBe(502);
    expect(await storedDraft("err-draft-2")).toMatchObject({ responder_error: "network_error" });
  });

  it("still answers a repeated draft (a reloaded checkout) while storing it once", async () => {
    stubDestinations(() => new Response(CONFIRMED, { headers: { "content-type": "application/json" } }));
    const body = fixture("weedmaps/draft").body.replace("9779604", "reload-1");
    const first = await postDraft("/webhooks/weedmaps?merchant_id=4242", body);
    const second = await postDraft("/webhooks/weedmaps?merchant_id=4242", body);
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(await second.text()).toBe(CONFIRMED);
    const { n } = (await env.DB.prepare(`SELECT COUNT(*) AS n FROM events WHERE provider_id = 'reload-1'`).first<{ n: number }>())!;
    expect(n).toBe(1);
  });

  it("rejects a bad signature before calling the responder", async () => {
    const seen = stubDestinations(() => new Response(CONFIRMED));
    const res = await postDraft("/webhooks/weedmaps/draft?merchant_id=4242", fixture("weedmaps/draft").body, fixture("weedmaps/create").headers);
    expect(res.status).toBe(401);
    expect(seen.requests).toHaveLength(0);
  });
});
