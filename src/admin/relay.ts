/** `/relay`: an operator's forced status update (docs/relay.md). Internal systems use `PUT /relay/...`, not this. */
import { createRoute, z } from "@hono/zod-openapi";
import type { RouterDeps } from "../core/deps.ts";
import { RelayForceBody, RelayOrderParams } from "../operations/inputs.ts";
import { forceRelayUpdate } from "../operations/relay.ts";
import { actorFor, contextFor, errors, json, resourceApp, security, valid } from "./openapi.ts";
import * as S from "./schemas.ts";

const ForcedUpdate = z
  .object({
    updateId: z.string().nullable(),
    previous: z.string().nullable(),
    duplicate: z.boolean(),
    auditId: z.string(),
  })
  .openapi("RelayForcedUpdate");

export function relayRoutes(deps: RouterDeps) {
  const app = resourceApp();
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
