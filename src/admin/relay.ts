/** `/relay`: an operator's forced status update (docs/relay.md). Internal systems use `PUT /relay/...`, not this. */
import { createRoute, z } from "@hono/zod-openapi";
import type { RouterDeps } from "../core/deps.ts";
import { RelayForceBody, RelayOrderParams } from "../operations/inputs.ts";
import { forceRelayUpdate, orderRelayView } from "../operations/relay.ts";
import { actorFor, contextFor, errors, json, resourceApp, security, valid } from "./openapi.ts";
import * as S from "./schemas.ts";
import { eventSummaryView } from "./views.ts";

const ForcedUpdate = z
  .object({
    updateId: z.string().nullable(),
    previous: z.string().nullable(),
    duplicate: z.boolean(),
    auditId: z.string(),
  })
  .openapi("RelayForcedUpdate");

const OrderRelayView = z
  .object({
    source: z.string(),
    orderId: z.string(),
    status: z.string().nullable().openapi({ description: "The order's Weedmaps status now; null before its Create." }),
    setBy: z
      .string()
      .nullable()
      .openapi({ description: "The update that set the status; null when a Weedmaps callback (or the Create) did." }),
    createEventId: z.string().nullable(),
    listingId: z.string().nullable().openapi({ description: "Where updates go: the merchant of the order's Create." }),
    updates: z.number().int(),
    destination: z.string(),
    events: z.array(S.EventSummarySchema.extend({ direction: z.enum(["in", "out"]) })).openapi({
      description:
        "Newest first: callbacks in and updates out. Each update's own page (`/events/{id}`) has every attempt and what Weedmaps answered.",
    }),
  })
  .openapi("OrderRelayView");

export function relayRoutes(deps: RouterDeps) {
  const app = resourceApp();
  app.openapi(
    createRoute({
      method: "get",
      path: "/relay/{source}/orders/{orderId}",
      summary: "An order's Weedmaps status and its timeline: callbacks in, status updates out",
      security,
      request: { params: RelayOrderParams },
      responses: {
        200: json(OrderRelayView, "The order"),
        404: json(S.ErrorSchema, "No relay for the source, or nothing stored of the order"),
        ...errors,
      },
    }),
    async (c) => {
      const { source, orderId } = c.req.valid("param");
      const view = await orderRelayView(contextFor(c, deps), source, orderId);
      return c.json(
        valid(OrderRelayView, {
          ...view,
          events: view.events.map((e) => ({ ...eventSummaryView(e), direction: e.direction })),
        }),
        200,
      );
    },
  );
  app.openapi(
    createRoute({
      method: "post",
      path: "/relay/{source}/orders/{orderId}/status",
      summary: "Force an order's status update to Weedmaps past the forward-only rule",
      description:
        "Stored and sent like any update, even when it moves the order back, out of an ending, or repeats its status. Recorded in the audit log with the reason.",
      security,
      request: {
        params: RelayOrderParams,
        body: { content: { "application/json": { schema: RelayForceBody } }, required: true },
      },
      responses: {
        202: json(ForcedUpdate, "The forced update, queued for Weedmaps"),
        404: json(S.ErrorSchema, "No relay for the source, or no verified Create of the order"),
        409: json(S.ErrorSchema, "The order's Create is held or named no merchant"),
        ...errors,
      },
    }),
    async (c) => {
      const { source, orderId } = c.req.valid("param");
      const forced = await forceRelayUpdate(
        contextFor(c, deps),
        await actorFor(c),
        source,
        orderId,
        c.req.valid("json"),
      );
      return c.json(valid(ForcedUpdate, forced), 202);
    },
  );
  return app;
}
