/** `/audit`: the audit log, newest first. */
import { createRoute } from "@hono/zod-openapi";
import type { RouterDeps } from "../core/deps.ts";
import { auditLog } from "../operations/audit.ts";
import { AuditQuery } from "../operations/inputs.ts";
import { contextFor, errors, iso, json, resourceApp, security, valid } from "./openapi.ts";
import * as S from "./schemas.ts";

export function auditRoutes(deps: RouterDeps) {
  const app = resourceApp();

  app.openapi(
    createRoute({
      method: "get",
      path: "/audit",
      summary:
        "The audit log: every reveal, deletion request, replay, release, destination control and sign-in, newest first",
      security,
      request: { query: AuditQuery },
      responses: { 200: json(S.AuditListSchema, "A page of entries"), ...errors },
    }),
    async (c) => {
      const { entries, nextCursor } = await auditLog(contextFor(c, deps), c.req.valid("query"));
      return c.json(
        valid(S.AuditListSchema, { entries: entries.map((e) => ({ ...e, at: iso(e.at)! })), nextCursor }),
        200,
      );
    },
  );

  return app;
}
