import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { DeliveryMessage } from "../src/core/messages.ts";
import {
  captureDeliveryQueue,
  dbOfEvent,
  deliveriesOf,
  fixture,
  hexSignature,
  post,
  postWeedmaps,
  ROUTER,
  runDeliveryQueue,
  storedPayloads,
  stubDestinations,
} from "./helpers.ts";
import { shownIn } from "./pii.ts";

afterEach(() => vi.restoreAllMocks());

interface Accepted {
  received: true;
  eventId: string;
  duplicate: boolean;
  routing?: string;
  deliveries?: number;
  enqueued?: boolean;
}

/** An order's events in every shard (the one its digest places them in holds them all). */
async function countInShards(sql: string): Promise<number> {
  let n = 0;
  for (const db of [env.DB, env.SHARD_1]) n += (await db.prepare(sql).first<number>("n"))!;
  return n;
}

async function storedEvent(eventId: string) {
  const row = await dbOfEvent(eventId)
    .prepare(`SELECT id, source, event_type, merchant_id, provider_id, routing, content_type FROM events WHERE id = ?1`)
    .bind(eventId)
    .first<{
      id: string;
      source: string;
      event_type: string;
      merchant_id: string | null;
      provider_id: string | null;
      routing: string;
      content_type: string;
    }>();
  return row && { ...row, body: (await storedPayloads(row.id)).body! };
}

const bytesOf = (stored: { body: Uint8Array } | null) => stored!.body;

function errorBodyShape(code: string) {
  return { error: { code, message: expect.any(String), requestId: expect.stringMatching(/^[0-9a-f-]{36}$/) } };
}

describe("accepting webhooks (each provider's own URLs are tested in test/providers/)", () => {
  it("serves any other configured HMAC source at /webhooks/<name>, with its prefix and fields", async () => {
    const body = JSON.stringify({
      id: "acme-1",
      type: "order.created",
      store_id: "store-9",
      channel: "web",
      total_cents: 1200,
    });
    const signature = `sha256=${await hexSignature(body, env.ACME_SIGNING_SECRET as string)}`;
    const json = await (await post("/webhooks/acme", body, { "X-Acme-Signature": signature })).json<Accepted>();
    expect(json).toMatchObject({ routing: "routed", deliveries: 1 });
    expect(await storedEvent(json.eventId)).toMatchObject({
      source: "acme",
      event_type: "order.created",
      merchant_id: "store-9",
      provider_id: "acme-1",
    });
  });

  it("stores a Weedmaps status it has never seen as an event of its own, unrouted, and acknowledges it", async () => {
    const body = JSON.stringify({ status: "ON_HOLD", orderId: "888", seller: { id: "4242" } });
    const queue = captureDeliveryQueue();
    const json = await (await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", body)).json<Accepted>();
    expect(json).toMatchObject({ duplicate: false, routing: "unrouted", deliveries: 0 });
    expect(await storedEvent(json.eventId)).toMatchObject({ routing: "unrouted", event_type: "on_hold" });
    expect(await deliveriesOf(json.eventId)).toEqual([]);
    expect(queue.messages).toEqual([]);
  });

  it("treats one body posted under two generic paths as one event: the path is not signed", async () => {
    const body = JSON.stringify({ id: "lab-two-paths", kind: "single" });
    const first = await (await post("/webhooks/lab/single", body)).json<Accepted>();
    const second = await (await post("/webhooks/lab/pair", body)).json<Accepted>();
    expect(second).toEqual({ received: true, eventId: first.eventId, duplicate: true });
  });

  it("stores and forwards a body that is not UTF-8 byte for byte, on a source that accepts non-JSON", async () => {
    const bytes = new Uint8Array([0x7b, 0xff, 0x00, 0xfe, 0x7d, 0x0a]);
    const json = await (
      await post("/webhooks/lab/binary", bytes.buffer as ArrayBuffer, { "content-type": "application/octet-stream" })
    ).json<Accepted>();
    const stored = await storedEvent(json.eventId);
    expect(stored!.body).not.toBeTypeOf("string");
    expect(bytesOf(stored)).toEqual(bytes);
  });

  it("keeps a byte-order mark and a NUL exactly as sent", async () => {
    const withBom = `\uFEFF${JSON.stringify({ status: "PENDING", orderId: "bom-1", seller: { id: "4242" } })}`;
    const bom = await (await post("/webhooks/lab/text", withBom)).json<Accepted>();
    expect(bytesOf(await storedEvent(bom.eventId))).toEqual(new TextEncoder().encode(withBom));
    const withNul = "a raw NUL: \u0000 end"; // the escape makes a real U+0000 character
    const nul = await (await post("/webhooks/lab/text", withNul)).json<Accepted>();
    expect(bytesOf(await storedEvent(nul.eventId))).toEqual(new TextEncoder().encode(withNul));
  });

  it("stores the raw bytes verbatim, whitespace and all", async () => {
    const body =
      '{ "status" : "PENDING",\n  "orderId": "raw-1", "seller": {"id":"4242"}, "note": "caf\u00e9 \u{1F33F}" }\n';
    const json = await (await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", body)).json<Accepted>();
    const stored = await storedEvent(json.eventId);
    expect(bytesOf(stored)).toEqual(new TextEncoder().encode(body));
  });
});

describe("duplicates", () => {
  /**
   * Every request sends its message while it stores the event, duplicates too; the consumer acts only on the
   * message of the request whose insert won, so each destination gets the event once.
   */
  async function expectDeliveredOnce(eventId: string, messages: DeliveryMessage[]) {
    const seen = stubDestinations(() => new Response("ok"));
    const mine = messages.filter((m) => m.eventId === eventId);
    expect(mine.length).toBeGreaterThan(1);
    const { result, ids } = await runDeliveryQueue(mine);
    expect(result.explicitAcks.sort()).toEqual([...ids].sort());
    expect(seen.requests.map((r) => new URL(r.url).hostname).sort()).toEqual(["erp.example.test", "pos.example.test"]);
    expect((await deliveriesOf(eventId)).map((d) => [d.destination, d.status, d.attempts])).toEqual([
      ["erp", "delivered", 1],
      ["pos", "delivered", 1],
    ]);
  }

  it("acknowledges a provider retry with 200 and fans out once", async () => {
    const queue = captureDeliveryQueue();
    const body = fixture("weedmaps/create").body.replace("9763822", "retried-1");
    const first = await (await postWeedmaps("/webhooks/weedmaps/create?merchant_id=4242", body)).json<Accepted>();
    expect(first.duplicate).toBe(false);
    const again = await postWeedmaps("/webhooks/weedmaps/create?merchant_id=4242", body);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ received: true, eventId: first.eventId, duplicate: true });
    expect(await deliveriesOf(first.eventId)).toHaveLength(2);
    await expectDeliveredOnce(
      first.eventId,
      queue.messages.map((m) => m.body),
    );
  });

  it("stores one event and fans out once for concurrent identical Weedmaps Create callbacks", async () => {
    const queue = captureDeliveryQueue();
    const body = fixture("weedmaps/create").body.replace("9763822", "concurrent-1");
    const responses = await Promise.all(
      Array.from({ length: 8 }, () => postWeedmaps("/webhooks/weedmaps?merchant_id=4242", body)),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(8).fill(200));
    const results = await Promise.all(responses.map((r) => r.json<Accepted>()));
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(new Set(results.map((r) => r.eventId)).size).toBe(1);
    const eventId = results[0]!.eventId;
    expect(await countInShards(`SELECT COUNT(*) AS n FROM events WHERE provider_id = 'concurrent-1'`)).toBe(1);
    expect(await deliveriesOf(eventId)).toHaveLength(2);
    await expectDeliveredOnce(
      eventId,
      queue.messages.map((m) => m.body),
    );
  });

  it("treats a Leaf Trade status change of the same order as a new event", async () => {
    const f = fixture("leaftrade/order-v3");
    const a = await (
      await post("/webhooks/leaftrade/order-v3", f.body, { "X-Signature": f.signature })
    ).json<Accepted>();
    const changed = f.body.replace('"revised"', '"approved"');
    const b = await (
      await post("/webhooks/leaftrade/order-v3", changed, {
        "X-Signature": await hexSignature(changed, env.LEAFTRADE_WEBHOOK_SECRET as string),
      })
    ).json<Accepted>();
    expect(b.duplicate).toBe(false);
    expect(b.eventId).not.toBe(a.eventId);
  });
});

describe("bad input gets one error shape with a stable code", () => {
  it("401 for a missing signature", async () => {
    const res = await post("/webhooks/weedmaps?merchant_id=4242", fixture("weedmaps/create").body);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual(errorBodyShape("invalid_signature"));
  });

  it("401 for a wrong signature, a signature from another secret, and a tampered body, with the same generic message", async () => {
    const f = fixture("weedmaps/create");
    const bodies = await Promise.all([
      post("/webhooks/weedmaps?merchant_id=4242", f.body, { Signature: "AAAA" }),
      post("/webhooks/weedmaps?merchant_id=4242", f.body, { Signature: fixture("weedmaps/draft").signature }),
      post("/webhooks/weedmaps?merchant_id=4242", f.body.replace("67.50", "0.01"), { Signature: f.signature }),
    ]);
    const messages = new Set<string>();
    for (const res of bodies) {
      expect(res.status).toBe(401);
      const json = await res.json<{ error: { code: string; message: string } }>();
      expect(json).toEqual(errorBodyShape("invalid_signature"));
      messages.add(json.error.message);
    }
    expect(messages.size).toBe(1);
  });

  it("404 for an unknown source, and for Leaf Trade without a webhook type", async () => {
    const unknown = await post("/webhooks/dutchie", "{}");
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual(errorBodyShape("unknown_source"));
    const untyped = await post("/webhooks/leaftrade", fixture("leaftrade/order-v3").body, {
      "X-Signature": fixture("leaftrade/order-v3").signature,
    });
    expect(untyped.status).toBe(404);
    expect(await untyped.json()).toEqual(errorBodyShape("not_found"));
    const elsewhere = await exports.default.fetch(`${ROUTER}/nothing-here`);
    expect(elsewhere.status).toBe(404);
    expect(await elsewhere.json()).toEqual(errorBodyShape("not_found"));
  });

  it("405 for a wrong method, with Allow: POST", async () => {
    for (const method of ["GET", "PUT", "DELETE"]) {
      const res = await exports.default.fetch(new Request(`${ROUTER}/webhooks/weedmaps`, { method }));
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("POST");
      expect(await res.json()).toEqual(errorBodyShape("method_not_allowed"));
    }
  });

  it("413 for a body over the configured limit, before any verification, declared or streamed", async () => {
    const big = JSON.stringify({ status: "PENDING", orderId: "big", pad: "x".repeat(70_000) });
    const declared = await post("/webhooks/weedmaps?merchant_id=4242", big, { Signature: "irrelevant" });
    expect(declared.status).toBe(413);
    expect(await declared.json()).toEqual(errorBodyShape("payload_too_large"));
    const stream = new Blob([big]).stream();
    const streamed = await exports.default.fetch(
      new Request(`${ROUTER}/webhooks/weedmaps`, {
        method: "POST",
        body: stream,
        headers: { Signature: "irrelevant" },
        duplex: "half",
      } as RequestInit),
    );
    expect(streamed.status).toBe(413);
  });

  it("400 for a signed body that is not JSON", async () => {
    const body = "status=PENDING&orderId=1";
    const res = await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", body);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual(errorBodyShape("invalid_json"));
    const scalar = await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", '"just a string"');
    expect(scalar.status).toBe(400);
  });

  it("holds a Create whose URL merchant differs from the signed seller in quarantine: stored, acknowledged, delivered nowhere", async () => {
    const queue = captureDeliveryQueue();
    const body = fixture("weedmaps/create").body.replace("9763822", "mismatch-1");
    const res = await postWeedmaps("/webhooks/weedmaps?merchant_id=9999", body);
    expect(res.status).toBe(200);
    const json = await res.json<Accepted>();
    expect(json).toMatchObject({ duplicate: false, routing: "quarantined", deliveries: 0, enqueued: false });
    const row = await dbOfEvent(json.eventId)
      .prepare("SELECT merchant_id, quarantine FROM events WHERE id = ?1")
      .bind(json.eventId)
      .first<{ merchant_id: string; quarantine: string }>();
    expect(row!.merchant_id).toBe("4242");
    expect(JSON.parse(row!.quarantine)).toEqual({
      reason: "merchant_mismatch",
      detail: "the URL names another merchant than the signed seller.id (route wm-create)",
      field: "seller.id",
      route: "wm-create",
      queryMerchant: "9999",
      signedMerchant: "4242",
      at: expect.any(Number),
    });
    expect(await deliveriesOf(json.eventId)).toEqual([]);
    // Nothing to deliver (its alert is test/provider-traffic.test.ts's to check).
    expect(queue.messages.filter((m) => !("kind" in m.body))).toEqual([]);
  });

  it("routes a Create with no merchant in the URL by the signed seller its route pins", async () => {
    const body = fixture("weedmaps/create").body.replace("9763822", "no-url-merchant-1");
    const json = await (await postWeedmaps("/webhooks/weedmaps", body)).json<Accepted>();
    expect(json).toMatchObject({ routing: "routed", deliveries: 2 });
    expect(await storedEvent(json.eventId)).toMatchObject({ merchant_id: "4242" });
  });

  it("400 invalid_merchant for a merchant with CR/LF or control characters, before anything is stored", async () => {
    const queue = captureDeliveryQueue();
    const body = fixture("weedmaps/create").body.replace("9763822", "bad-merchant-1");
    for (const query of [
      "merchant_id=42%0D%0AX-Injected:%201",
      "merchant_id=42%00",
      "merchant_id=4%1B2",
      "merchant_id=4242&merchant_id=42%0A",
    ]) {
      const res = await postWeedmaps(`/webhooks/weedmaps?${query}`, body);
      expect(res.status, query).toBe(400);
      expect(await res.json()).toEqual(errorBodyShape("invalid_merchant"));
    }
    // The same value twice is one merchant.
    expect((await postWeedmaps("/webhooks/weedmaps?merchant_id=4242&merchant_id=4242", body)).status).toBe(200);
    expect(queue.messages.map((m) => m.body.eventId)).toHaveLength(1);
    expect(await countInShards("SELECT COUNT(*) AS n FROM events WHERE provider_id = 'bad-merchant-1'")).toBe(1);
  });

  it("503 when a source's secrets are not set, rather than accepting unsigned traffic", async () => {
    const res = await post("/webhooks/halfset", "{}", { "X-Sig": "00" });
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual(errorBodyShape("source_misconfigured"));
  });

  it("500 with a generic body and no stack for an unexpected error", async () => {
    vi.spyOn(crypto.subtle, "digest").mockRejectedValue(new Error("kaboom at secret-internal-path.ts:42"));
    const res = await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", fixture("weedmaps/create").body);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual(errorBodyShape("internal_error"));
    expect(text).not.toMatch(/kaboom|secret-internal|\.ts/);
  });

  it("never echoes secrets or payload data in an error", async () => {
    const f = fixture("weedmaps/create");
    const texts = await Promise.all([
      post("/webhooks/weedmaps/draft?merchant_id=4242", f.body, f.headers).then((r) => r.text()),
      post("/webhooks/weedmaps?merchant_id=4242", f.body.replace("Jordan", "Jordon"), f.headers).then((r) => r.text()),
      post("/webhooks/weedmaps?merchant_id=42%0A42", f.body, f.headers).then((r) => r.text()),
    ]);
    for (const text of texts) {
      expect(text).not.toContain(env.WEEDMAPS_CLIENT_SECRET as string);
      expect(shownIn(text, ["Jordan", "MR-2026-118822", "seller.id", "4242", "9763822", "PENDING"])).toEqual([]);
    }
  });
});
