/** `/customer-data`: a customer's deletion request. */
import { createRoute } from "@hono/zod-openapi";
import type { RouterDeps } from "../core/deps.ts";
import { purgeCustomerOrder } from "../operations/customer-data.ts";
import { CustomerPurgeBody } from "../operations/inputs.ts";
import { actorFor, contextFor, errors, json, resourceApp, security, valid } from "./openapi.ts";
import * as S from "./schemas.ts";

export function customerDataRoutes(deps: RouterDeps) {
  const app = resourceApp();

  app.openapi(
    createRoute({
      method: "post",
      path: "/customer-data/purge",
      summary: "A customer's deletion request: purge the payloads of every event of one order",
      description:
        "Purges body, Draft answer, response excerpts and data key of each event with this provider order id, now, " +
        "whatever the retention horizon. The events stay (ids, dedup key, body hash, delivery state); deliveries " +
        "still pending end dead with `payload_purged`. Recorded in the audit log.",
      security,
      request: { body: { content: { "application/json": { schema: CustomerPurgeBody } }, required: true } },
      responses: { 200: json(S.CustomerPurgeResult, "What was purged"), ...errors },
    }),
    async (c) => {
      const purged = await purgeCustomerOrder(contextFor(c, deps), await actorFor(c), c.req.valid("json"));
      return c.json(valid(S.CustomerPurgeResult, purged), 200);
    },
  );

  return app;
}
