import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { captureDeliveryQueue, deliveriesOf, fixture, post, postWeedmaps, stubDestinations } from "./helpers";

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

function waitForAbort(request: Request, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    request.signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(request.signal.reason);
    });
  });
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
    const f = fixture("weedmaps-draft");
    const res = await post("/webhooks/weedmaps?merchant_id=4242", f.body, { Signature: f.base64 });
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

    await vi.waitFor(async () => expect(await storedDraft("9779604")).toMatchObject({ event_type: "draft", responder: "pricing", responder_status: 200, responder_error: null }));
    const stored = (await storedDraft("9779604"))!;
    expect(stored.responder_latency_ms).toBeGreaterThanOrEqual(0);
    expect((await deliveriesOf(stored.id)).map((d) => [d.destination, d.status])).toEqual([["erp", "pending"]]);
    await vi.waitFor(() => expect(queue.messages.map((m) => m.body.eventId)).toContain(stored.id));
  });

  it("answers 504 within the deadline when the responder is slow, and records the timeout", async () => {
    stubDestinations(async (request) => {
      await waitForAbort(request, 5_000);
      return new Response(CONFIRMED);
    });
    const body = fixture("weedmaps-draft").body.replace("9779604", "slow-draft-1");
    const started = Date.now();
    const res = await postWeedmaps("/webhooks/weedmaps/draft?merchant_id=4242", body);
    const elapsed = Date.now() - started;
    expect(res.status).toBe(504);
    expect(await res.json()).toEqual({ error: { code: "responder_timeout", message: expect.any(String), requestId: expect.any(String) } });
    // The configured deadline is 300 ms; the responder would have taken 5 s.
    expect(elapsed).toBeLessThan(2_000);
    await vi.waitFor(async () => expect(await storedDraft("slow-draft-1")).toMatchObject({ responder_status: null, responder_error: "timeout" }));
  });

  it("answers 502 when the responder errors or cannot be reached, without passing its body through", async () => {
    stubDestinations(() => new Response("stack trace from the pricing service", { status: 500 }));
    const failing = await postWeedmaps("/webhooks/weedmaps/draft?merchant_id=4242", fixture("weedmaps-draft").body.replace("9779604", "err-draft-1"));
    expect(failing.status).toBe(502);
    const text = await failing.text();
    expect(JSON.parse(text).error.code).toBe("responder_unavailable");
    expect(text).not.toContain("stack trace");
    await vi.waitFor(async () => expect(await storedDraft("err-draft-1")).toMatchObject({ responder_status: 500, responder_error: "http_500" }));

    vi.restoreAllMocks();
    stubDestinations(() => {
      throw new TypeError("connection refused");
    });
    const unreachable = await postWeedmaps("/webhooks/weedmaps/draft?merchant_id=4242", fixture("weedmaps-draft").body.replace("9779604", "err-draft-2"));
    expect(unreachable.status).toBe(502);
    await vi.waitFor(async () => expect(await storedDraft("err-draft-2")).toMatchObject({ responder_error: "network_error" }));
  });

  it("still answers a repeated draft (a reloaded checkout) while storing it once", async () => {
    stubDestinations(() => new Response(CONFIRMED, { headers: { "content-type": "application/json" } }));
    const body = fixture("weedmaps-draft").body.replace("9779604", "reload-1");
    const first = await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", body);
    const second = await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", body);
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(await second.text()).toBe(CONFIRMED);
    await vi.waitFor(async () => {
      const { n } = (await env.DB.prepare(`SELECT COUNT(*) AS n FROM events WHERE provider_id = 'reload-1'`).first<{ n: number }>())!;
      expect(n).toBe(1);
    });
  });

  it("rejects a bad signature before calling the responder", async () => {
    const seen = stubDestinations(() => new Response(CONFIRMED));
    const res = await post("/webhooks/weedmaps/draft?merchant_id=4242", fixture("weedmaps-draft").body, { Signature: fixture("weedmaps-create").base64 });
    expect(res.status).toBe(401);
    expect(seen.requests).toHaveLength(0);
  });
});
