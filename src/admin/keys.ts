/** `/keys`: the payload key ring's status, for a rotation. */
import { createRoute } from "@hono/zod-openapi";
import type { RouterDeps } from "../core/deps.ts";
import { keyStatus } from "../operations/customer-data.ts";
import { contextFor, errors, json, resourceApp, security, valid } from "./openapi.ts";
import * as S from "./schemas.ts";

export function keyRoutes(deps: RouterDeps) {
  const app = resourceApp();

  app.openapi(
    createRoute({
      method: "get",
      path: "/keys",
      summary: "The payload key ring: which key wraps how many rows, and which may leave the ring",
      description:
        "Key ids only, never key material. Rows per key come from the Cron's maintenance walk, which re-wraps every " +
        "data key under the primary; a key is `retired` (removable) once a full lap, started after it stopped being " +
        "primary, found none.",
      security,
      responses: { 200: json(S.KeysSchema, "The ring and the walk's counts"), ...errors },
    }),
    async (c) => c.json(valid(S.KeysSchema, await keyStatus(contextFor(c, deps))), 200),
  );

  return app;
}
