/** `/destinations`: health with each one's controls, and the audited pause, resume and re-enable. */
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { RouterDeps } from "../core/deps.ts";
import { controlDestination, destinationHealth, type ControlAction } from "../operations/destinations.ts";
import { DestinationParams, HealthQuery, PauseBody } from "../operations/inputs.ts";
import { actorFor, contextFor, errors, iso, json, resourceApp, security, valid, type AdminEnv } from "./openapi.ts";
import * as S from "./schemas.ts";
import { controlsView } from "./views.ts";

const SUMMARIES: Record<ControlAction, string> = {
  pause: "Pause a destination: its deliveries are held, not attempted, using no attempts, until it is resumed",
  resume: "Resume a paused destination: what was held goes out in the order it was received, at its rate limit",
  enable: "Re-enable a destination a 410 Gone disabled: what was held goes out in order",
};

const controlRoute = (action: "resume" | "enable") =>
  createRoute({
    method: "post",
    path: `/destinations/{name}/${action}`,
    summary: SUMMARIES[action],
    description: "Recorded in the audit log with the admin token's id.",
    security,
    request: { params: DestinationParams },
    responses: {
      200: json(S.ControlResult, "The destination's controls after the action"),
      404: json(S.ErrorSchema, "No such destination"),
      ...errors,
    },
  });

const pauseRoute = createRoute({
  method: "post",
  path: "/destinations/{name}/pause",
  summary: SUMMARIES.pause,
  description: "Recorded in the audit log with the admin token's id.",
  security,
  request: {
    params: DestinationParams,
    body: { content: { "application/json": { schema: PauseBody } }, required: true },
  },
  responses: {
    200: json(S.ControlResult, "The destination's controls after the action"),
    404: json(S.ErrorSchema, "No such destination"),
    ...errors,
  },
});

export function destinationRoutes(deps: RouterDeps) {
  const app = resourceApp();

  app.openapi(
    createRoute({
      method: "get",
      path: "/destinations/health",
      summary: "Per destination: delivered, failing and dead counts over a window, last error and last success",
      security,
      request: { query: HealthQuery },
      responses: { 200: json(S.HealthSchema, "Destination health"), ...errors },
    }),
    async (c) => {
      const health = await destinationHealth(contextFor(c, deps), c.req.valid("query"));
      return c.json(
        valid(S.HealthSchema, {
          since: iso(health.since)!,
          looked: health.looked,
          complete: health.complete,
          destinations: health.destinations.map(({ name, configured, enabled, counts, controls, config }) => ({
            name,
            configured,
            enabled,
            delivered: counts?.delivered ?? 0,
            failing: counts?.failing ?? 0,
            dead: counts?.dead ?? 0,
            pending: counts?.pending ?? 0,
            lastSuccessAt: iso(counts?.lastSuccessAt),
            lastError: counts?.lastError ?? null,
            lastErrorAt: iso(counts?.lastErrorAt),
            controls: controls && controlsView(controls, config),
          })),
        }),
        200,
      );
    },
  );

  async function control(c: Context<AdminEnv>, name: string, action: ControlAction, reason: string | null) {
    const done = await controlDestination(contextFor(c, deps), await actorFor(c), name, action, reason);
    const controls = controlsView(done.controls, done.config);
    return valid(S.ControlResult, { destination: done.destination, auditId: done.auditId, controls });
  }

  app.openapi(pauseRoute, async (c) =>
    c.json(await control(c, c.req.valid("param").name, "pause", c.req.valid("json").reason), 200),
  );
  app.openapi(controlRoute("resume"), async (c) =>
    c.json(await control(c, c.req.valid("param").name, "resume", null), 200),
  );
  app.openapi(controlRoute("enable"), async (c) =>
    c.json(await control(c, c.req.valid("param").name, "enable", null), 200),
  );

  return app;
}
