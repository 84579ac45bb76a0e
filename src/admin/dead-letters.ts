/** `/dead-letters`: the dead deliveries in a window, and their redrive. */
import { createRoute } from "@hono/zod-openapi";
import type { RouterDeps } from "../core/deps.ts";
import { listDeadLetters } from "../operations/dead-letters.ts";
import { DeadLettersQuery, RedriveBody } from "../operations/inputs.ts";
import { redriveDeadLetters } from "../operations/replays.ts";
import { actorFor, contextFor, errors, json, resourceApp, security, valid } from "./openapi.ts";
import * as S from "./schemas.ts";
import { deadLetterView, jobView } from "./views.ts";

export function deadLetterRoutes(deps: RouterDeps) {
  const app = resourceApp();

  app.openapi(
    createRoute({
      method: "get",
      path: "/dead-letters",
      summary: "List dead deliveries (the current generation of each), newest event first",
      description:
        "Read through the dead-letter index: a page costs the same however many events are stored. The " +
        "destination and the window (`since`, `until`: when the event was received) are part of the query.",
      security,
      request: { query: DeadLettersQuery },
      responses: { 200: json(S.DeadLetterListSchema, "A page of dead deliveries"), ...errors },
    }),
    async (c) => {
      const { deadLetters, nextCursor } = await listDeadLetters(contextFor(c, deps), c.req.valid("query"));
      return c.json(valid(S.DeadLetterListSchema, { deliveries: deadLetters.map(deadLetterView), nextCursor }), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/dead-letters/redrive",
      summary: "Redrive dead deliveries received in a window, at most maxCount, optionally to one destination",
      description: "A bulk replay of dead deliveries (see /replays). Recorded in the audit log.",
      security,
      request: { body: { content: { "application/json": { schema: RedriveBody } }, required: true } },
      responses: {
        202: json(S.BulkReplayResult, "Redrive started"),
        409: json(S.ErrorSchema, "Destination disabled"),
        422: json(S.ErrorSchema, "Unknown destination"),
        ...errors,
      },
    }),
    async (c) => {
      const { job, matched } = await redriveDeadLetters(contextFor(c, deps), await actorFor(c), c.req.valid("json"));
      return c.json(valid(S.BulkReplayResult, { ...jobView(job), matched }), 202);
    },
  );

  return app;
}
