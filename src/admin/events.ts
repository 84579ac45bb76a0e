/** `/events`: find events, read one (redacted, or revealed with the reveal token), release a held one. */
import { createRoute } from "@hono/zod-openapi";
import type { RouterDeps } from "../core/deps.ts";
import { revealEvent, SEARCH_WINDOW, searchEvents, viewEvent } from "../operations/events.ts";
import { EventIdParams, ListEventsQuery } from "../operations/inputs.ts";
import { releaseQuarantinedEvent } from "../operations/replays.ts";
import { actorFor, contextFor, errors, json, resourceApp, security, valid } from "./openapi.ts";
import * as S from "./schemas.ts";
import { eventDetailView, eventSummaryView } from "./views.ts";

export function eventRoutes(deps: RouterDeps) {
  const app = resourceApp();

  app.openapi(
    createRoute({
      method: "get",
      path: "/events",
      summary: "Search events, newest first",
      description:
        "Every page reads a bounded number of rows: an order id, `status=dead` and a time range go through an " +
        `index; source, event type, merchant and other statuses are applied to a window of at most ${SEARCH_WINDOW} ` +
        "events per shard per page. So a page may be short or empty and still carry `nextCursor`: follow it until it is null.",
      security,
      request: { query: ListEventsQuery },
      responses: { 200: json(S.EventListSchema, "A page of events"), ...errors },
    }),
    async (c) => {
      const { events, nextCursor, scanned } = await searchEvents(contextFor(c, deps), c.req.valid("query"));
      return c.json(valid(S.EventListSchema, { events: events.map(eventSummaryView), nextCursor, scanned }), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/events/{eventId}",
      summary: "One event: metadata, payload (redacted unless revealed), and every delivery with every attempt",
      description:
        "Customer data (the provider's PII paths, and every destination response excerpt) is redacted. `reveal=true` " +
        "with the `X-Reveal-Token` header shows it, and writes the reveal to the audit log.",
      security,
      request: { params: EventIdParams, query: S.EventDetailQuery, headers: S.RevealHeaders },
      responses: {
        ...errors,
        200: json(S.EventDetailSchema, "The event"),
        401: json(S.ErrorSchema, "Missing admin token, or reveal=true without X-Reveal-Token"),
        403: json(S.ErrorSchema, "Wrong reveal token, or revealing is off (ADMIN_REVEAL_TOKEN unset)"),
        404: json(S.ErrorSchema, "No such event"),
        429: json(S.ErrorSchema, "Too many wrong reveal tokens from this client: wait Retry-After seconds"),
      },
    }),
    async (c) => {
      const { eventId } = c.req.valid("param");
      const ctx = contextFor(c, deps);
      const view =
        c.req.valid("query").reveal === "true"
          ? await revealEvent(ctx, await actorFor(c), eventId, c.req.header("x-reveal-token"))
          : await viewEvent(ctx, eventId);
      return c.json(valid(S.EventDetailSchema, eventDetailView(view)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/events/{eventId}/release",
      summary: "Release a quarantined event: route it with the merchant its signed body names",
      description:
        "An event whose URL named another merchant than its signed body is stored, acknowledged and delivered " +
        "nowhere. Releasing it routes it as if the URL had named the signed merchant. Recorded in the audit log.",
      security,
      request: { params: EventIdParams },
      responses: {
        202: json(S.ReleaseResult, "Released and enqueued"),
        404: json(S.ErrorSchema, "No such event"),
        409: json(S.ErrorSchema, "Not quarantined, or its body names no merchant"),
        410: json(S.ErrorSchema, "The event's payload was purged"),
        ...errors,
      },
    }),
    async (c) => {
      const released = await releaseQuarantinedEvent(
        contextFor(c, deps),
        await actorFor(c),
        c.req.valid("param").eventId,
      );
      return c.json(valid(S.ReleaseResult, released), 202);
    },
  );

  return app;
}
