import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { createWorker } from "../../src/app/worker.ts";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { EventIdentity, IdentifyInput } from "../../src/core/providers/contract.ts";
import { parseConfig } from "../../src/core/config/parse.ts";
import {
  checkWeedmapsAnswer,
  DEFAULT_SERVICE_FEE,
  isServiceFee,
  weedmaps,
  weedmapsEventType,
  WeedmapsOrderSchema,
} from "../../src/core/providers/weedmaps.ts";
import {
  captureDeliveryQueue,
  dbOfEvent,
  deliveriesOf,
  expectIngested,
  fixture,
  fixturesOf,
  identifierFor,
  post,
  postWeedmaps,
  weedmapsSignature,
} from "../helpers.ts";

/** A count over every shard (all events by default). */
async function eventCount(sql = "SELECT COUNT(*) AS n FROM events"): Promise<number> {
  let n = 0;
  for (const db of [env.DB, env.SHARD_1]) n += (await db.prepare(sql).first<number>("n"))!;
  return n;
}

afterEach(() => vi.restoreAllMocks());

const identifyResult = identifierFor(weedmaps);

function identify(overrides: Partial<IdentifyInput>): EventIdentity {
  const result = identifyResult(overrides);
  if (!result.ok) throw new Error(result.code);
  expect(result.events).toHaveLength(1);
  return result.events[0]!;
}

const order = (name: string) => JSON.parse(fixture(`weedmaps/${name}`).body) as Record<string, unknown>;

describe("Weedmaps adapter", () => {
  it("maps DRAFT to draft, PENDING to create, and every other status to an event of its own", () => {
    expect(
      ["DRAFT", "PENDING", "CANCELED_CUSTOMER", "READY_FOR_ATTAINMENT", "SOMETHING_NEW"].map(weedmapsEventType),
    ).toEqual(["draft", "create", "canceled_customer", "ready_for_attainment", "something_new"]);
    expect(identify({ payload: order("draft") }).eventType).toBe("draft");
    expect(identify({ payload: order("create") }).eventType).toBe("create");
    expect(identify({ payload: order("canceled-customer") }).eventType).toBe("canceled_customer");
  });

  it("takes a path's event type only when the status agrees with it", () => {
    expect(identify({ payload: order("draft"), pathEvent: "draft" }).eventType).toBe("draft");
    expect(identifyResult({ payload: order("draft"), pathEvent: "create" })).toMatchObject({
      ok: false,
      code: "event_type_mismatch",
    });
    expect(identifyResult({ payload: order("create"), pathEvent: "draft" })).toMatchObject({
      ok: false,
      code: "event_type_mismatch",
    });
    expect(identifyResult({ payload: order("create"), pathEvent: "order-updated" })).toMatchObject({
      ok: false,
      code: "event_type_mismatch",
    });
    // Signed but with no status: held whole under the path's type (or "unidentified"), never refused.
    expect(identifyResult({ payload: { orderId: "1" } })).toMatchObject({
      ok: true,
      events: [
        {
          eventType: "unidentified",
          providerId: "1",
          hold: { reason: "unidentified", detail: "the order has no status" },
        },
      ],
    });
    expect(identifyResult({ payload: { orderId: "1" }, pathEvent: "create" })).toMatchObject({
      ok: true,
      events: [{ eventType: "create", hold: { reason: "unidentified" } }],
    });
    expect(identifyResult({ payload: { orderId: "1", status: "NOT AN EVENT!" } })).toMatchObject({
      ok: true,
      events: [{ hold: { reason: "unidentified", detail: "the order status is not an event name" } }],
    });
  });

  it("keys a Create on source and orderId alone, a Draft on its bytes too, and a later status on lastModifiedAt", () => {
    const create = identify({ payload: order("create") });
    expect(create.idempotencyKey).toBe("weedmaps:s:create:9763822");
    expect(identify({ payload: order("create"), bodySha256: "0".repeat(64) }).idempotencyKey).toBe(
      create.idempotencyKey,
    );
    expect(identify({ payload: order("create"), sourceName: "second-store" }).idempotencyKey).not.toBe(
      create.idempotencyKey,
    );
    expect(identify({ payload: order("draft") }).idempotencyKey).toBe(`weedmaps:s:draft:9779604:${"h".repeat(64)}`);
    const canceled = identify({ payload: order("canceled-customer") });
    expect(canceled).toMatchObject({
      idempotencyKey: "weedmaps:s:canceled_customer:9763822:2026-11-23T18%3A20%3A41Z",
      providerTimestamp: Date.parse("2026-11-23T18:20:41Z"),
    });
    expect(identify({ payload: { status: "COMPLETE", orderId: "5" } }).idempotencyKey).toBe(
      `weedmaps:s:complete:5:sha256:${"h".repeat(64)}`,
    );
  });

  it("declares Draft as its one synchronous event, base64 HMAC in Signature, and no signed merchant field", () => {
    expect(weedmaps.synchronousEvents).toEqual(["draft"]);
    expect(weedmaps.signature).toEqual({ header: "Signature", encoding: "base64" });
    expect(weedmaps.merchantField).toBeUndefined();
  });
});

describe("Weedmaps callbacks through the Worker", () => {
  it("accepts a Create on the default URL", async () => {
    await expectIngested({
      url: "/webhooks/weedmaps?merchant_id=4242",
      fixture: fixture("weedmaps/create"),
      eventType: "create",
      destinations: ["pos", "erp"],
    });
  });

  it("accepts a Create on its own URL", async () => {
    await expectIngested({
      url: "/webhooks/weedmaps/create?merchant_id=4242",
      fixture: fixture("weedmaps/create-other-order"),
      eventType: "create",
      destinations: ["pos", "erp"],
    });
  });

  it("accepts a callback signed with the previous secret during rotation", async () => {
    const body = fixture("weedmaps/create").body.replace("9763822", "9763823");
    const res = await post("/webhooks/weedmaps?merchant_id=4242", body, {
      Signature: await weedmapsSignature(body, env.WEEDMAPS_CLIENT_SECRET_PREVIOUS as string),
    });
    expect(res.status).toBe(200);
  });

  it("refuses a signed Draft posted to /create, and a signed Create posted to /draft, storing nothing and calling no one", async () => {
    const queue = captureDeliveryQueue();
    const fetched = vi.spyOn(globalThis, "fetch");
    const draft = fixture("weedmaps/draft");
    const create = fixture("weedmaps/create");
    for (const [path, f] of [
      ["/webhooks/weedmaps/create?merchant_id=4242", draft],
      ["/webhooks/weedmaps/draft?merchant_id=4242", create],
    ] as const) {
      const res = await post(path, f.body, f.headers);
      expect(res.status).toBe(422);
      expect(await res.json()).toEqual({
        error: { code: "event_type_mismatch", message: expect.any(String), requestId: expect.any(String) },
      });
    }
    expect(fetched).not.toHaveBeenCalled();
    expect(queue.messages).toEqual([]);
    expect(
      await eventCount(
        "SELECT COUNT(*) AS n FROM events WHERE provider_id IN ('9779604', '9763822') AND event_type = 'draft'",
      ),
    ).toBe(0);
  });

  it("refuses made-up event paths for one signed body: no row is added for any of them", async () => {
    const body = fixture("weedmaps/create").body.replace("9763822", "made-up-1");
    const before = await eventCount();
    for (const made of ["order-updated", "create2", "x1", "cancel"]) {
      const res = await postWeedmaps(`/webhooks/weedmaps/${made}?merchant_id=4242`, body);
      expect(res.status).toBe(422);
    }
    expect(await eventCount()).toBe(before);
  });

  it("holds a source's accepted event types to what the body says, not only to the path", async () => {
    const config = {
      sources: {
        weedmaps: {
          provider: "weedmaps",
          verify: { type: "hmac", secrets: ["WEEDMAPS_CLIENT_SECRET"] },
          events: ["draft", "create"],
        },
      },
      destinations: { erp: { url: "https://erp.example.test/webhooks", signingSecret: "ERP_SIGNING_SECRET" } },
      routes: [{ name: "all", source: "weedmaps", destinations: ["erp"] }],
    };
    const worker = createWorker();
    const testEnv = { ...env, ROUTER_CONFIG: JSON.stringify(config) } as Env;
    const fetcher = (request: Request) =>
      worker.fetch(request as Parameters<typeof worker.fetch>[0], testEnv, createExecutionContext());
    const canceled = fixture("weedmaps/canceled-customer");
    const res = await post("/webhooks/weedmaps", canceled.body, canceled.headers, fetcher);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unknown_event_type");
    const create = fixture("weedmaps/create");
    expect(
      (
        await post(
          "/webhooks/weedmaps",
          create.body.replace("9763822", "accepted-type-1"),
          { Signature: await weedmapsSignature(create.body.replace("9763822", "accepted-type-1")) },
          fetcher,
        )
      ).status,
    ).toBe(200);
  });

  it("stores CANCELED_CUSTOMER on the default URL as canceled_customer, routed by its own route and never to a Create route", async () => {
    const eventId = await expectIngested({
      url: "/webhooks/weedmaps?merchant_id=4242",
      fixture: fixture("weedmaps/canceled-customer"),
      eventType: "canceled_customer",
      destinations: ["erp"],
    });
    expect((await deliveriesOf(eventId)).map((d) => d.destination)).toEqual(["erp"]);
  });

  it("acknowledges a re-serialised Create as a duplicate, sends it nowhere, and records it as a divergent retry", async () => {
    const queue = captureDeliveryQueue();
    const original = fixture("weedmaps/create").body.replace("9763822", "reserialised-1");
    const first = await (await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", original)).json<{
      eventId: string;
      duplicate: boolean;
    }>();
    // The same order, its keys in another order and its whitespace changed.
    const parsedOrder = JSON.parse(original) as Record<string, unknown>;
    const reordered = JSON.stringify(Object.fromEntries(Object.entries(parsedOrder).reverse()), null, 1);
    const again = await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", reordered);
    expect(await again.json()).toEqual({ received: true, eventId: first.eventId, duplicate: true });
    expect(first.duplicate).toBe(false);
    // Both requests sent a message; the second's names an ingest that stored nothing, so the consumer drops it.
    expect(queue.messages.filter((m) => m.body.eventId === first.eventId)).toHaveLength(2);
    const row = await dbOfEvent(first.eventId)
      .prepare("SELECT divergent_retries, divergent_last_sha256 FROM events WHERE id = ?1")
      .bind(first.eventId)
      .first<{ divergent_retries: number; divergent_last_sha256: string }>();
    expect(row!.divergent_retries).toBe(1);
    expect(row!.divergent_last_sha256).toMatch(/^[0-9a-f]{64}$/);
    // An identical retry is a plain duplicate: nothing is written.
    await postWeedmaps("/webhooks/weedmaps?merchant_id=4242", original);
    expect(
      await dbOfEvent(first.eventId)
        .prepare("SELECT divergent_retries FROM events WHERE id = ?1")
        .bind(first.eventId)
        .first("divergent_retries"),
    ).toBe(1);
  });
});

describe("the Weedmaps fixtures follow the documented Order object", () => {
  const statuses: Record<string, string> = {
    draft: "draft",
    create: "create",
    "create-other-order": "create",
    "in-progress": "in_progress",
    "ready-for-attainment": "ready_for_attainment",
    complete: "complete",
    "canceled-customer": "canceled_customer",
    "canceled-seller": "canceled_seller",
    failed: "failed",
  };

  for (const [name, { body }] of fixturesOf("weedmaps")) {
    it(`${name} parses as the Order object and is the ${statuses[name]} event`, () => {
      const order = WeedmapsOrderSchema.parse(JSON.parse(body));
      expect(order).toMatchObject({
        version: expect.any(String),
        currency: "USD",
        createdAt: expect.any(String),
        lastModifiedAt: expect.any(String),
      });
      expect(order.customer).toMatchObject({
        dob: expect.any(String),
        hasMedicalRecommendation: true,
        medicalRecommendation: {
          id: expect.any(String),
          expires: expect.any(String),
          caregiverId: expect.any(String),
          province: "CA",
        },
      });
      expect(order.documents).toEqual([
        { documentType: "GOVERNMENT_ISSUED_ID", url: expect.stringMatching(/^https:\/\//) },
      ]);
      expect(order.lineItems[0]).toMatchObject({
        externalId: expect.any(String),
        wmProductId: expect.any(String),
        weightBreakpoint: expect.any(String),
        brand: expect.any(String),
        originalPrice: expect.any(String),
        adjustedPrice: expect.any(String),
      });
      expect(order.shippingAddress).toMatchObject({
        address1: expect.any(String),
        city: expect.any(String),
        province: "CA",
        postalCode: expect.any(String),
        countryCode: "US",
      });
      expect(identify({ payload: JSON.parse(body) }).eventType).toBe(statuses[name]);
    });
  }

  it("a Draft answer made by the sample responder's rules passes, and one that drops the patient's date of birth does not", () => {
    const draft = order("draft");
    const answer = {
      ...draft,
      taxes: [{ name: "State Excise Tax", taxType: "EXCISE", amount: "7.41" }],
      taxTotal: "7.41",
      grandTotal: "57.81",
    };
    expect(checkWeedmapsAnswer(draft, answer, "strict")).toEqual({ ok: true, repaired: [], warnings: [] });
    const { dob: _dob, ...patient } = draft.customer as Record<string, unknown>;
    expect(checkWeedmapsAnswer(draft, { ...answer, customer: patient }, "strict")).toEqual({
      ok: false,
      rule: "draft_answer_immutable",
      path: "customer",
    });
    expect(checkWeedmapsAnswer(draft, { ...answer, customer: patient }, "repair")).toMatchObject({
      ok: true,
      repaired: ["customer"],
      repairedAnswer: { customer: draft.customer },
    });
    expect(isServiceFee({ name: "Weedmaps Service Fee", feeType: "SERVICE_FEE", amount: "1.00" })).toBe(true);
    expect(isServiceFee({ name: "Delivery fee", amount: "3.00" })).toBe(false);
  });

  it("passes an answer to a Draft that carries none of the parts the POS may not change but orderId", () => {
    const {
      customer: _c,
      seller: _s,
      source: _so,
      documents: _d,
      customerNote: _n,
      requestedSchedulingInfo: _r,
      payments: _p,
      ...bare
    } = order("draft") as Record<string, unknown>;
    expect(checkWeedmapsAnswer(bare, bare, "strict")).toMatchObject({ ok: true, repaired: [] });
  });
});

describe("the Weedmaps Service Fee setting", () => {
  it("recognises by default a fee typed SERVICE_FEE or named Weedmaps Service Fee / Weedmaps Fee, whole words only", () => {
    expect(DEFAULT_SERVICE_FEE).toEqual({ feeTypes: ["SERVICE_FEE"], names: ["Weedmaps Service Fee", "Weedmaps Fee"] });
    for (const fee of [
      { feeType: "SERVICE_FEE" },
      { type: "service_fee" },
      { name: "Weedmaps Service Fee" },
      { name: "  WEEDMAPS FEE " },
    ])
      expect(isServiceFee(fee), JSON.stringify(fee)).toBe(true);
    // The old substring rule took the first two and missed "Weedmaps Fee".
    for (const fee of [
      { name: "Delivery service fee" },
      { feeType: "SERVICE" },
      { name: "Weedmaps Fees" },
      { name: "Delivery fee", amount: "3.00" },
      null,
      "SERVICE_FEE",
    ])
      expect(isServiceFee(fee), JSON.stringify(fee)).toBe(false);
    expect(isServiceFee({ name: "Platform fee" }, { feeTypes: [], names: ["platform FEE"] })).toBe(true);
  });

  it("keeps the source's Service Fee in a Draft answer, and only that one", () => {
    const draft = {
      ...order("draft"),
      fees: [
        { name: "Platform fee", amount: "1.00" },
        { name: "Weedmaps Service Fee", feeType: "SERVICE_FEE", amount: "2.00" },
      ],
    };
    const answer = {
      ...draft,
      fees: [{ name: "Weedmaps Service Fee", feeType: "SERVICE_FEE", amount: "2.00" }],
      feeTotal: "2.00",
    };
    const serviceFee = { feeTypes: [], names: ["Platform fee"] };
    expect(checkWeedmapsAnswer(draft, answer, "strict", { serviceFee })).toEqual({
      ok: false,
      rule: "draft_answer_service_fee",
      path: "fees",
    });
    expect(checkWeedmapsAnswer(draft, answer, "repair", { serviceFee })).toMatchObject({
      ok: true,
      repaired: ["fees (Weedmaps Service Fee)"],
      repairedAnswer: { fees: draft.fees },
    });
    expect(checkWeedmapsAnswer(draft, { ...answer, fees: [draft.fees[0]] }, "strict", { serviceFee })).toMatchObject({
      ok: true,
    });
  });

  it("is a per-source config setting: Weedmaps sources only, never empty", () => {
    const base = {
      sources: {
        wm: { provider: "weedmaps", verify: { type: "hmac", secrets: ["WEEDMAPS_CLIENT_SECRET"] } },
        lt: { provider: "leaftrade", verify: { type: "hmac", secrets: ["LT"], header: "X-Sig", encoding: "hex" } },
      },
      destinations: { erp: { url: "https://erp.example.test/webhooks", signingSecret: "ERP_SIGNING_SECRET" } },
      routes: [{ name: "all", source: "wm", destinations: ["erp"] }],
    };
    const withSetting = (source: "wm" | "lt", serviceFee: unknown) =>
      parseConfig({ ...base, sources: { ...base.sources, [source]: { ...base.sources[source], serviceFee } } });
    const ok = withSetting("wm", { names: [" WM Fee "] });
    expect(ok.ok && ok.config.sources.wm!.serviceFee).toEqual({ feeTypes: [], names: ["WM Fee"] });
    const unset = parseConfig(base);
    expect(unset.ok && unset.config.sources.wm!.serviceFee).toBeUndefined();
    expect(withSetting("wm", {})).toEqual({
      ok: false,
      errors: [expect.stringMatching(/^sources\.wm\.serviceFee: name at least one fee type or fee name/)],
      issues: [{ path: "sources.wm.serviceFee", message: expect.stringMatching(/^name at least one fee type/) }],
    });
    expect(withSetting("lt", { feeTypes: ["SERVICE_FEE"] })).toEqual({
      ok: false,
      errors: [expect.stringMatching(/^sources\.lt\.serviceFee: .*applies to Weedmaps sources/)],
      issues: [{ path: "sources.lt.serviceFee", message: expect.stringMatching(/applies to Weedmaps sources/) }],
    });
  });
});
