/** The active configuration, validation of a proposed one, and the routing dry run. */
import { createRoute } from "@hono/zod-openapi";
import type { RouterDeps } from "../core/deps.ts";
import { activeConfig, routingDryRun, validateConfig } from "../operations/config.ts";
import { DryRunBody, ProposedConfig } from "../operations/inputs.ts";
import { contextFor, errors, json, resourceApp, security, valid } from "./openapi.ts";
import * as S from "./schemas.ts";

export function configRoutes(deps: RouterDeps) {
  const app = resourceApp();

  app.openapi(
    createRoute({
      method: "post",
      path: "/routing/dry-run",
      summary: "Which routes match an event and which destinations would receive it, and why. Writes nothing.",
      security,
      request: { body: { content: { "application/json": { schema: DryRunBody } }, required: true } },
      responses: {
        200: json(S.DryRunResult, "The routing decision"),
        404: json(S.ErrorSchema, "Unknown source"),
        ...errors,
      },
    }),
    async (c) => {
      const results = await routingDryRun(contextFor(c, deps), c.req.valid("json"));
      return c.json(valid(S.DryRunResult, { ...results[0]!, events: results }), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/config",
      summary: "The active configuration; secrets appear only by name",
      security,
      responses: { 200: json(S.ConfigSchema, "Active configuration"), ...errors },
    }),
    (c) => {
      const { origin, config, secrets } = activeConfig(contextFor(c, deps));
      return c.json(
        valid(S.ConfigSchema, { origin, config: config as unknown as Record<string, unknown>, secrets }),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/config/validate",
      summary: "Validate a proposed configuration without applying it",
      description:
        "Configuration is applied by deploying router.config.json or setting ROUTER_CONFIG; this only checks it.",
      security,
      request: { body: { content: { "application/json": { schema: ProposedConfig } }, required: true } },
      responses: {
        200: json(S.ConfigValidation, "Whether it is valid, with errors that name each bad field"),
        ...errors,
      },
    }),
    (c) => c.json(valid(S.ConfigValidation, validateConfig(contextFor(c, deps), c.req.valid("json"))), 200),
  );

  return app;
}
