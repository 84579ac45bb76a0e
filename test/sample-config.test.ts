// The committed router.config.json, as `npm run dev` runs it: every Weedmaps order status reaches the POS, through
// the real Worker (ingest, D1, the queue consumer) with that config and the destinations stubbed.
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import sampleConfig from "../router.config.json";
import { createWorker } from "../src/app/worker.ts";
import { parseConfig } from "../src/core/config/parse.ts";
import { weedmapsEventType } from "../src/core/providers/weedmaps.ts";
import { routeEvent } from "../src/core/routing.ts";
import {
  captureDeliveryQueue,
  dbOfEvent,
  deliveriesOf,
  fixturesOf,
  gatesOfItsOwn,
  post,
  stubDestinations,
} from "./helpers.ts";

/** Weedmaps' order statuses (../shared/PLATFORM.md, Providers → Weedmaps), each with a fixture of its own. */
const WEEDMAPS_STATUSES = [
  "DRAFT",
  "PENDING",
  "IN_PROGRESS",
  "READY_FOR_ATTAINMENT",
  "COMPLETE",
  "CANCELED_CUSTOMER",
  "CANCELED_SELLER",
  "FAILED",
];

const sampleEnv = { ...env, ROUTER_CONFIG: JSON.stringify(sampleConfig) } as Env;
const worker = createWorker();

async function viaSample(request: Request): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(request as Parameters<typeof worker.fetch>[0], sampleEnv, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

/**
 * Each event's deliveries through gates of their own: the sample POS takes at most 5 deliveries a second
 * (`rateLimit`), and this test sends it eight at once, which it would rightly hold for later.
 */
async function deliverWithSample(body: unknown) {
  const batch = createMessageBatch("webhook-deliveries", [
    { id: crypto.randomUUID(), timestamp: new Date(), attempts: 1, body },
  ]);
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...sampleEnv, DESTINATION_GATE: gatesOfItsOwn() }, ctx);
  await waitOnExecutionContext(ctx);
  return getQueueResult(batch, ctx);
}

/** The Weedmaps fixtures with their status, oldest state first (they are one order's life, bar one other Create). */
const orderStates = fixturesOf("weedmaps")
  .map(([name, signed]) => {
    const order = JSON.parse(signed.body) as { status: string; lastModifiedAt: string };
    return { name, signed, status: order.status, eventType: weedmapsEventType(order.status), at: order.lastModifiedAt };
  })
  .sort((a, b) => a.at.localeCompare(b.at));

afterEach(() => vi.restoreAllMocks());

describe("the sample config routes every Weedmaps status", () => {
  it("has a fixture for every documented status, and the sample config is valid", () => {
    expect(new Set(orderStates.map((s) => s.status))).toEqual(new Set(WEEDMAPS_STATUSES));
    expect(parseConfig(sampleConfig)).toMatchObject({ ok: true });
  });

  it("answers a Draft from the pricing responder and copies it to the ERP", () => {
    const parsed = parseConfig(sampleConfig);
    if (!parsed.ok) throw new Error(parsed.errors.join("; "));
    const draft = orderStates.find((s) => s.status === "DRAFT")!;
    const decision = routeEvent(parsed.config, {
      source: "weedmaps",
      eventType: draft.eventType,
      merchantId: "4242",
      subject: JSON.parse(draft.signed.body),
    });
    expect(decision.responder).toEqual({ destination: "pricing", route: "weedmaps-draft-pricing" });
    expect(decision.deliveries.map((d) => d.destination)).toEqual(["erp"]);
  });

  it("delivers the order and each later status (a customer's cancellation included) to the POS, in order", async () => {
    const destinations = stubDestinations(() => new Response("ok"));
    const queue = captureDeliveryQueue();
    const states = orderStates.filter((s) => s.status !== "DRAFT");
    expect(states.map((s) => s.eventType)).toEqual(
      expect.arrayContaining([
        "in_progress",
        "ready_for_attainment",
        "complete",
        "canceled_customer",
        "canceled_seller",
        "failed",
      ]),
    );
    for (const state of states) {
      const res = await post("/webhooks/weedmaps?merchant_id=4242", state.signed.body, state.signed.headers, viaSample);
      const ingested = await res.json<{ eventId: string }>();
      expect(res.status, JSON.stringify(ingested)).toBe(200);
      expect(ingested, state.name).toMatchObject({ routing: "routed", deliveries: 2, enqueued: true });
      const { eventId } = ingested;
      expect(
        await dbOfEvent(eventId).prepare("SELECT event_type FROM events WHERE id = ?1").bind(eventId).first(),
      ).toEqual({
        event_type: state.eventType,
      });
      const message = queue.messages.find((m) => m.body.eventId === eventId)!.body;
      const result = await deliverWithSample(message);
      expect(result.explicitAcks, state.name).toHaveLength(1);
      const deliveries = await deliveriesOf(eventId);
      expect(
        deliveries.map((d) => [d.destination, d.status]),
        `${state.name}: ${JSON.stringify(deliveries.map((d) => d.last_error))}`,
      ).toEqual([
        ["erp", "delivered"],
        ["pos", "delivered"],
      ]);
      const atPos = destinations.requests.filter(
        (r) => r.url === sampleConfig.destinations.pos.url && r.headers.get("webhook-id") === eventId,
      );
      expect(
        atPos.map((r) => r.headers.get("x-router-event-type")),
        state.name,
      ).toEqual([state.eventType]);
    }
  });
});
