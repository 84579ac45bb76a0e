import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../../src/app/worker.ts";
import { parseConfig } from "../../src/core/config/parse.ts";
import type { DeliveryMessage } from "../../src/core/messages.ts";
import { BUILTIN_PROVIDERS } from "../../src/core/providers/registry.ts";
import {
  captureDeliveryQueue,
  deliveriesOf,
  expectIngested,
  fixture,
  fixturesOf,
  hexSignature,
  post,
  stubDestinations,
} from "../helpers.ts";
import { fixtureSecret } from "../secrets.ts";
import greenline from "./greenline.adapter.ts";

afterEach(() => vi.restoreAllMocks());

const PROVIDERS = { ...BUILTIN_PROVIDERS, greenline };

const CONFIG = {
  sources: { greenline: { provider: "greenline", verify: { type: "hmac", secrets: ["GREENLINE_SECRET"] } } },
  destinations: {
    pos: { url: "https://pos.example.test/tickets", signingSecret: "POS_SIGNING_SECRET", maxAttempts: 3 },
  },
  routes: [
    {
      name: "greenline-tickets",
      source: "greenline",
      events: ["ticket.created", "ticket.voided"],
      destinations: ["pos"],
    },
  ],
};

const testEnv = { ...env, ROUTER_CONFIG: JSON.stringify(CONFIG), GREENLINE_SECRET: fixtureSecret("greenline") } as Env;
const worker = createWorker({ providers: PROVIDERS });
const fetcher = (request: Request) =>
  worker.fetch(request as Parameters<typeof worker.fetch>[0], testEnv, createExecutionContext());

describe("a provider added by one adapter file, one fixture folder and this test", () => {
  it("is a provider a config may name only where the Worker is given its adapter", () => {
    expect(parseConfig(CONFIG, { providers: PROVIDERS })).toMatchObject({ ok: true });
    const without = parseConfig(CONFIG);
    expect(without.ok).toBe(false);
    expect(without.ok ? [] : without.errors).toEqual([expect.stringMatching(/^sources\.greenline\.provider: /)]);
  });

  it("identifies its events by its own rules: type from the body, key from its event id", () => {
    const payload = JSON.parse(fixture("greenline/ticket-created").body);
    const parsed = parseConfig(CONFIG, { providers: PROVIDERS });
    if (!parsed.ok) throw new Error(parsed.errors.join("; "));
    const source = parsed.config.sources.greenline!;
    const a = greenline.identify({
      sourceName: "greenline",
      source,
      pathEvent: undefined,
      payload,
      bodySha256: "a".repeat(64),
    });
    const b = greenline.identify({
      sourceName: "greenline",
      source,
      pathEvent: "ticket.created",
      payload,
      bodySha256: "b".repeat(64),
    });
    expect(a).toEqual({
      ok: true,
      events: [
        {
          eventType: "ticket.created",
          providerId: "T-88213",
          providerTimestamp: Date.parse("2026-11-23T10:04:00Z"),
          idempotencyKey: "greenline:greenline:glev_01J9Z8K2QW",
          subject: payload,
        },
      ],
    });
    expect(b).toEqual(a);
    expect(
      greenline.identify({
        sourceName: "greenline",
        source,
        pathEvent: "ticket.voided",
        payload,
        bodySha256: "a".repeat(64),
      }),
    ).toMatchObject({ ok: false, code: "event_type_mismatch" });
  });

  for (const [name, signed] of fixturesOf("greenline")) {
    it(`accepts the signed ${name} fixture at /webhooks/greenline, stores it and enqueues it`, async () => {
      const eventType = JSON.parse(signed.body).event;
      await expectIngested({ url: "/webhooks/greenline", fixture: signed, eventType, destinations: ["pos"], fetcher });
    });
  }

  it("refuses a tampered body with 401, as for any provider", async () => {
    const f = fixture("greenline/ticket-created");
    const res = await post("/webhooks/greenline", f.body.replace("35.00", "0.35"), f.headers, fetcher);
    expect(res.status).toBe(401);
  });

  it("delivers its events through the same consumer, with its name in the routing headers", async () => {
    const queue = captureDeliveryQueue();
    const seen = stubDestinations(() => new Response("ok"));
    const body = fixture("greenline/ticket-voided").body.replace("glev_01J9Z8N7TX", "glev_delivery_1");
    const { eventId } = await (
      await post(
        "/webhooks/greenline",
        body,
        { "X-Greenline-Signature": `sha256=${await hexSignature(body, fixtureSecret("greenline"))}` },
        fetcher,
      )
    ).json<{ eventId: string }>();
    const message = queue.messages.find((m) => m.body.eventId === eventId)!.body as DeliveryMessage;
    const batch = createMessageBatch("webhook-deliveries", [
      { id: "m1", timestamp: new Date(), attempts: 1, body: message },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, testEnv);
    expect(await getQueueResult(batch, ctx)).toMatchObject({ explicitAcks: ["m1"] });
    expect(
      seen.requests.map((r) => [
        r.url,
        r.headers.get("x-router-source"),
        r.headers.get("x-router-event-type"),
        r.headers.get("x-router-merchant-id"),
      ]),
    ).toEqual([["https://pos.example.test/tickets", "greenline", "ticket.voided", "gl-store-17"]]);
    expect((await deliveriesOf(eventId)).map((d) => d.status)).toEqual(["delivered"]);
  });
});
