/** Replays: one event again, a bulk replay job by filter, and the job's progress and cancellation. */
import { createRoute } from "@hono/zod-openapi";
import type { RouterDeps } from "../core/deps.ts";
import { BulkReplayBody, EventIdParams, ReplayEventBody, ReplayIdParams } from "../operations/inputs.ts";
import { cancelBulkReplay, replayEvent, replayJob, startBulkReplay } from "../operations/replays.ts";
import { actorFor, contextFor, errors, json, resourceApp, security, valid } from "./openapi.ts";
import * as S from "./schemas.ts";
import { jobView } from "./views.ts";

export function replayRoutes(deps: RouterDeps) {
  const app = resourceApp();

  app.openapi(
    createRoute({
      method: "post",
      path: "/events/{eventId}/replay",
      summary: "Replay one event to all of its destinations, or to the ones named",
      description:
        "Creates a new generation of each delivery and keeps the old ones as history. Receivers get the same " +
        "webhook-id. Recorded in the audit log.",
      security,
      request: {
        params: EventIdParams,
        body: { content: { "application/json": { schema: ReplayEventBody } }, required: false },
      },
      responses: {
        202: json(S.ReplayEventResult, "Replay enqueued"),
        404: json(S.ErrorSchema, "No such event"),
        409: json(S.ErrorSchema, "A destination is disabled, or the event has none"),
        410: json(S.ErrorSchema, "The event's payload was purged: there is nothing to send"),
        422: json(S.ErrorSchema, "A destination is not configured"),
        ...errors,
      },
    }),
    async (c) => {
      const { eventId } = c.req.valid("param");
      const body = (c.req.header("content-type")?.includes("json") ? c.req.valid("json") : undefined) ?? {};
      const replayed = await replayEvent(contextFor(c, deps), await actorFor(c), eventId, body.destinations);
      return c.json(valid(S.ReplayEventResult, replayed), 202);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/replays",
      summary: "Bulk replay by filter, e.g. every dead delivery to destination X received between S and T, at most N",
      description:
        "A job with a window and a bound: answers with the number matched at once; the work runs through the queue " +
        "a page of 100 events at a time, only on deliveries created before the job started, and can be watched and " +
        "cancelled at /replays/{replayId}. Recorded in the audit log.",
      security,
      request: { body: { content: { "application/json": { schema: BulkReplayBody } }, required: true } },
      responses: {
        202: json(S.BulkReplayResult, "Replay started"),
        409: json(S.ErrorSchema, "Destination disabled"),
        422: json(S.ErrorSchema, "Unknown destination"),
        ...errors,
      },
    }),
    async (c) => {
      const { job, matched } = await startBulkReplay(contextFor(c, deps), await actorFor(c), c.req.valid("json"));
      return c.json(valid(S.BulkReplayResult, { ...jobView(job), matched }), 202);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/replays/{replayId}",
      summary: "A bulk replay job: its state (running, done, failed, cancelled) and progress",
      security,
      request: { params: ReplayIdParams },
      responses: { 200: json(S.ReplayJobSchema, "The job"), 404: json(S.ErrorSchema, "No such replay"), ...errors },
    }),
    async (c) => {
      const job = await replayJob(contextFor(c, deps), c.req.valid("param").replayId);
      return c.json(valid(S.ReplayJobSchema, jobView(job)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/replays/{replayId}/cancel",
      summary: "Cancel a running bulk replay: its next page stops it. Recorded in the audit log.",
      security,
      request: { params: ReplayIdParams },
      responses: {
        200: json(S.ReplayJobSchema, "Cancelled"),
        404: json(S.ErrorSchema, "No such replay"),
        409: json(S.ErrorSchema, "Not running"),
        ...errors,
      },
    }),
    async (c) => {
      const job = await cancelBulkReplay(contextFor(c, deps), await actorFor(c), c.req.valid("param").replayId);
      return c.json(valid(S.ReplayJobSchema, jobView(job)), 200);
    },
  );

  return app;
}
