import { createRoute, OpenAPIHono, type z } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import { bodyLimit } from "hono/body-limit";
import { insecureDestinationsAllowed, loadConfig, readVar } from "../config/load.ts";
import { parseConfig } from "../core/config/parse.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import type { RouterDeps } from "../core/deps.ts";
import { RouterError } from "../core/errors.ts";
import { intake } from "../core/intake.ts";
import { queryMerchantOf } from "../core/merchant.ts";
import { encodeBase64 } from "../core/signatures/encoding.ts";
import { sha256Hex } from "../core/signatures/inbound.ts";
import { assertReplayable, cancelBulkReplay, releaseQuarantinedEvent, replayDeliveries, startBulkReplay } from "../delivery/replay.ts";
import { getReplayJob, type ReplayJob } from "../storage/replay-jobs.ts";
import type { Quarantine } from "../core/event.ts";
import { destinationHealth, getEventDetail, listCurrentDeliveries, listEvents, type CurrentDelivery, type EventSummary } from "../storage/admin-queries.ts";
import { requireAdminToken } from "./auth.ts";
import { decodeCursor, DeliveryCursorSchema, EventCursorSchema, nextCursor } from "./cursor.ts";
import * as S from "./schemas.ts";

type AdminEnv = { Bindings: Env };

const ADMIN_MAX_BODY_BYTES = 1024 * 1024;

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const msOf = (value: string | undefined) => (value === undefined ? undefined : Date.parse(value));

/** Responses are validated against the schemas the OpenAPI document is generated from. */
function valid<T extends z.ZodType>(schema: T, data: z.input<T>): z.output<T> {
  return schema.parse(data);
}

/** Stored bytes as the API shows them: text when they are UTF-8, base64 otherwise. */
function payloadOf(bytes: Uint8Array): { encoding: "utf8" | "base64"; data: string } {
  try {
    return { encoding: "utf8", data: new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes) };
  } catch {
    return { encoding: "base64", data: encodeBase64(bytes) };
  }
}

function toJobView(job: ReplayJob) {
  const { id, filter, startedAt, updatedAt, ...progress } = job;
  return {
    ...progress,
    replayId: id,
    filter: { ...filter, since: iso(filter.since)!, until: iso(filter.until)! },
    startedAt: iso(startedAt)!,
    updatedAt: iso(updatedAt)!,
  };
}

function toHold(quarantine: Quarantine | null) {
  if (!quarantine) return null;
  const { at, releasedAt, ...hold } = quarantine;
  return { ...hold, at: iso(at)!, releasedAt: iso(releasedAt) };
}

function toEventSummary(e: EventSummary) {
  return { ...e, providerOrderId: e.providerId, receivedAt: iso(e.receivedAt)!, providerTimestamp: iso(e.providerTimestamp), quarantine: toHold(e.quarantine) };
}

function toCurrentDelivery({ nextAttemptAt: _due, ...d }: CurrentDelivery) {
  return { ...d, createdAt: iso(d.createdAt)!, completedAt: iso(d.completedAt) };
}

function referencedSecrets(config: RouterConfig): string[] {
  const names = new Set<string>();
  for (const source of Object.values(config.sources)) if (source.verify.type !== "none") source.verify.secrets.forEach((n) => names.add(n));
  for (const destination of Object.values(config.destinations)) {
    names.add(destination.signingSecret);
    for (const header of Object.values(destination.headers)) names.add(header.secret);
  }
  return [...names].sort();
}

const security = [{ AdminToken: [] }];
const errors = {
  400: { description: "Invalid request", content: { "application/json": { schema: S.ErrorSchema } } },
  401: { description: "Missing or wrong bearer token", content: { "application/json": { schema: S.ErrorSchema } } },
  503: { description: "Admin API disabled (ADMIN_TOKEN unset)", content: { "application/json": { schema: S.ErrorSchema } } },
};
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });

const OPENAPI_DOCUMENT = {
  openapi: "3.1.0",
  info: {
    title: "Cannabis webhook router admin API",
    version: "0.1.0",
    description: "Find events, see where they went, replay them, and check routing. Every route needs `Authorization: Bearer <ADMIN_TOKEN>`.",
  },
  servers: [{ url: "/admin" }],
};

/** `/admin/*`: find events, see where they went, replay them, check routing. Every route needs the admin token. */
export function createAdmin({ providers, clock }: RouterDeps) {
  async function bulkReplay(env: Env, body: z.output<typeof S.BulkReplayBody>) {
    const filter = { destination: body.destination, status: body.status, since: Date.parse(body.since), until: Date.parse(body.until) };
    const { matched, job } = await startBulkReplay(env, loadConfig(env, providers), filter, body.maxCount, clock);
    return valid(S.BulkReplayResult, { ...toJobView(job), matched });
  }

  const admin = new OpenAPIHono<AdminEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        throw new RouterError("invalid_request", {
          details: result.error.issues.map((issue) => `${issue.path.join(".") || "(body)"}: ${issue.message}`),
        });
      }
    },
  });

  admin.use("*", requireAdminToken());
  // Every admin body is JSON; another media type is the caller's mistake, said as such rather than as a 400.
  admin.use("*", async (c, next) => {
    const contentType = c.req.header("content-type");
    const hasBody = Number(c.req.header("content-length") ?? 0) > 0 || c.req.header("transfer-encoding") !== undefined;
    if (hasBody && !/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(contentType ?? "")) throw new RouterError("unsupported_media_type");
    await next();
  });
  // Admin bodies are a replay request or a config to validate: a megabyte is far more than either needs.
  admin.use(
    "*",
    bodyLimit({
      maxSize: ADMIN_MAX_BODY_BYTES,
      onError: () => {
        throw new RouterError("payload_too_large", { detail: `admin body over ${ADMIN_MAX_BODY_BYTES} bytes` });
      },
    }),
  );
  admin.openAPIRegistry.registerComponent("securitySchemes", "AdminToken", { type: "http", scheme: "bearer", description: "The ADMIN_TOKEN Worker secret." });

  admin.openapi(
    createRoute({
      method: "get",
      path: "/events",
      summary: "List and search events, newest first",
      security,
      request: { query: S.ListEventsQuery },
      responses: { 200: json(S.EventListSchema, "A page of events"), ...errors },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const cursor = q.cursor ? decodeCursor(q.cursor, EventCursorSchema) : null;
      const events = await listEvents(
        c.env.DB,
        { source: q.source, eventType: q.eventType, merchantId: q.merchantId, providerId: q.orderId, status: q.status, since: msOf(q.since), until: msOf(q.until) },
        cursor ? { receivedAt: cursor[0], id: cursor[1] } : null,
        q.limit,
      );
      return c.json(
        valid(S.EventListSchema, {
          events: events.map(toEventSummary),
          nextCursor: nextCursor(events, q.limit, (e) => [e.receivedAt, e.id]),
        }),
        200,
      );
    },
  );

  admin.openapi(
    createRoute({
      method: "get",
      path: "/events/{eventId}",
      summary: "One event: metadata, payload, and every delivery with every attempt",
      security,
      request: { params: S.EventIdParams },
      responses: { 200: json(S.EventDetailSchema, "The event"), 404: json(S.ErrorSchema, "No such event"), ...errors },
    }),
    async (c) => {
      const found = await getEventDetail(c.env.DB, c.req.valid("param").eventId);
      if (!found) throw new RouterError("not_found");
      const { event, deliveries } = found;
      const payload = payloadOf(event.body);
      return c.json(
        valid(S.EventDetailSchema, {
          event: {
            ...event,
            ...toEventSummary(event),
            payload,
            lastDivergentRetry: event.lastDivergentRetry && { at: iso(event.lastDivergentRetry.at)!, bodySha256: event.lastDivergentRetry.bodySha256 },
            responder: event.responder && {
              ...event.responder,
              answered: { status: event.responder.answered.status, payload: event.responder.answered.body && payloadOf(event.responder.answered.body) },
            },
          },
          deliveries: deliveries.map((d) => ({
            ...d,
            createdAt: iso(d.createdAt)!,
            nextAttemptAt: d.status === "pending" ? iso(d.nextAttemptAt) : null,
            completedAt: iso(d.completedAt),
            attemptLog: d.attemptLog.map((a) => ({ ...a, at: iso(a.at)! })),
          })),
        }),
        200,
      );
    },
  );

  admin.openapi(
    createRoute({
      method: "post",
      path: "/events/{eventId}/replay",
      summary: "Replay one event to all of its destinations, or to the ones named",
      description: "Creates a new generation of each delivery and keeps the old ones as history. Receivers get the same webhook-id.",
      security,
      request: { params: S.EventIdParams, body: { content: { "application/json": { schema: S.ReplayEventBody } }, required: false } },
      responses: {
        202: json(S.ReplayEventResult, "Replay enqueued"),
        404: json(S.ErrorSchema, "No such event"),
        409: json(S.ErrorSchema, "A destination is disabled, or the event has none"),
        422: json(S.ErrorSchema, "A destination is not configured"),
        ...errors,
      },
    }),
    async (c) => {
      const { eventId } = c.req.valid("param");
      const body = (c.req.header("content-type")?.includes("json") ? c.req.valid("json") : undefined) ?? {};
      const config = loadConfig(c.env, providers);
      const found = await getEventDetail(c.env.DB, eventId);
      if (!found) throw new RouterError("not_found");
      // A held event goes anywhere only through its release, which routes it with the signed merchant.
      if (found.event.quarantine && found.event.quarantine.releasedAt === undefined) throw new RouterError("event_quarantined");
      const routeOf = new Map(found.deliveries.map((d) => [d.destination, d.route]));
      const destinations = body.destinations ?? [...routeOf.keys()];
      if (destinations.length === 0) throw new RouterError("no_destinations");
      destinations.forEach((destination) => assertReplayable(config, destination));
      const { keys, enqueued } = await replayDeliveries(
        c.env,
        destinations.map((destination) => ({ eventId, destination, route: routeOf.get(destination) ?? "replay" })),
        clock,
      );
      return c.json(valid(S.ReplayEventResult, { eventId, deliveries: keys.map(({ destination, generation }) => ({ destination, generation })), enqueued }), 202);
    },
  );

  admin.openapi(
    createRoute({
      method: "post",
      path: "/events/{eventId}/release",
      summary: "Release a quarantined event: route it with the merchant its signed body names",
      description:
        "An event whose URL named another merchant than its signed body is stored, acknowledged and delivered nowhere. Releasing it routes it as if the URL had named the signed merchant.",
      security,
      request: { params: S.EventIdParams },
      responses: {
        202: json(S.ReleaseResult, "Released and enqueued"),
        404: json(S.ErrorSchema, "No such event"),
        409: json(S.ErrorSchema, "Not quarantined, or its body names no merchant"),
        ...errors,
      },
    }),
    async (c) => {
      const { eventId } = c.req.valid("param");
      const released = await releaseQuarantinedEvent(c.env, loadConfig(c.env, providers), providers, eventId, clock);
      return c.json(valid(S.ReleaseResult, released), 202);
    },
  );

  admin.openapi(
    createRoute({
      method: "post",
      path: "/replays",
      summary: "Bulk replay by filter, e.g. every dead delivery to destination X received between S and T, at most N",
      description:
        "A job with a window and a bound: answers with the number matched at once; the work runs through the queue a page of 100 events at a time, only on deliveries created before the job started, and can be watched and cancelled at /replays/{replayId}.",
      security,
      request: { body: { content: { "application/json": { schema: S.BulkReplayBody } } } },
      responses: { 202: json(S.BulkReplayResult, "Replay started"), 409: json(S.ErrorSchema, "Destination disabled"), 422: json(S.ErrorSchema, "Unknown destination"), ...errors },
    }),
    async (c) => c.json(await bulkReplay(c.env, c.req.valid("json")), 202),
  );

  admin.openapi(
    createRoute({
      method: "get",
      path: "/dead-letters",
      summary: "List dead deliveries (the current generation of each)",
      security,
      request: { query: S.DeadLettersQuery },
      responses: { 200: json(S.DeadLetterListSchema, "A page of dead deliveries"), ...errors },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const cursor = q.cursor ? decodeCursor(q.cursor, DeliveryCursorSchema) : null;
      const deliveries = await listCurrentDeliveries(
        c.env.DB,
        { status: "dead", destination: q.destination, since: msOf(q.since), until: msOf(q.until) },
        cursor ? { eventId: cursor[0], destination: cursor[1] } : null,
        q.limit,
      );
      return c.json(
        valid(S.DeadLetterListSchema, {
          deliveries: deliveries.map(toCurrentDelivery),
          nextCursor: nextCursor(deliveries, q.limit, (d) => [d.eventId, d.destination]),
        }),
        200,
      );
    },
  );

  admin.openapi(
    createRoute({
      method: "post",
      path: "/dead-letters/redrive",
      summary: "Redrive dead deliveries received in a window, at most maxCount, optionally to one destination",
      security,
      request: { body: { content: { "application/json": { schema: S.RedriveBody } } } },
      responses: { 202: json(S.BulkReplayResult, "Redrive started"), 409: json(S.ErrorSchema, "Destination disabled"), 422: json(S.ErrorSchema, "Unknown destination"), ...errors },
    }),
    async (c) => c.json(await bulkReplay(c.env, { ...c.req.valid("json"), status: "dead" }), 202),
  );

  admin.openapi(
    createRoute({
      method: "get",
      path: "/replays/{replayId}",
      summary: "A bulk replay job: its state (running, done, failed, cancelled) and progress",
      security,
      request: { params: S.ReplayIdParams },
      responses: { 200: json(S.ReplayJobSchema, "The job"), 404: json(S.ErrorSchema, "No such replay"), ...errors },
    }),
    async (c) => {
      const job = await getReplayJob(c.env.DB, c.req.valid("param").replayId);
      if (!job) throw new RouterError("not_found");
      return c.json(valid(S.ReplayJobSchema, toJobView(job)), 200);
    },
  );

  admin.openapi(
    createRoute({
      method: "post",
      path: "/replays/{replayId}/cancel",
      summary: "Cancel a running bulk replay: its next page stops it",
      security,
      request: { params: S.ReplayIdParams },
      responses: { 200: json(S.ReplayJobSchema, "Cancelled"), 404: json(S.ErrorSchema, "No such replay"), 409: json(S.ErrorSchema, "Not running"), ...errors },
    }),
    async (c) => c.json(valid(S.ReplayJobSchema, toJobView(await cancelBulkReplay(c.env, c.req.valid("param").replayId, clock))), 200),
  );

  admin.openapi(
    createRoute({
      method: "get",
      path: "/destinations/health",
      summary: "Per destination: delivered, failing and dead counts over a window, last error and last success",
      security,
      request: { query: S.HealthQuery },
      responses: { 200: json(S.HealthSchema, "Destination health"), ...errors },
    }),
    async (c) => {
      const { windowHours } = c.req.valid("query");
      const config = loadConfig(c.env, providers);
      const since = clock.now() - windowHours * 3_600_000;
      const rows = new Map((await destinationHealth(c.env.DB, since)).map((r) => [r.destination, r]));
      const names = [...new Set([...Object.keys(config.destinations), ...rows.keys()])].sort();
      return c.json(
        valid(S.HealthSchema, {
          since: iso(since)!,
          destinations: names.map((name) => {
            const row = rows.get(name);
            return {
              name,
              configured: name in config.destinations,
              enabled: config.destinations[name]?.enabled ?? false,
              delivered: row?.delivered ?? 0,
              failing: row?.failing ?? 0,
              dead: row?.dead ?? 0,
              pending: row?.pending ?? 0,
              lastSuccessAt: iso(row?.lastSuccessAt),
              lastError: row?.lastError ?? null,
              lastErrorAt: iso(row?.lastErrorAt),
            };
          }),
        }),
        200,
      );
    },
  );

  admin.openapi(
    createRoute({
      method: "post",
      path: "/routing/dry-run",
      summary: "Which routes match an event and which destinations would receive it, and why. Writes nothing.",
      security,
      request: { body: { content: { "application/json": { schema: S.DryRunBody } } } },
      responses: { 200: json(S.DryRunResult, "The routing decision"), 404: json(S.ErrorSchema, "Unknown source"), ...errors },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const config = loadConfig(c.env, providers);
      const source = config.sources[body.source];
      if (!source) throw new RouterError("unknown_source");
      const adapter = providers[source.provider]!;
      // The same checks, adapter and intake as ingest, so a dry run says what a real request would get.
      const query = queryMerchantOf(body.merchantId === undefined ? undefined : [body.merchantId]);
      if (!query.ok) throw new RouterError("invalid_merchant", { detail: query.detail });
      const accepted = source.events ?? adapter.eventTypes;
      if (body.eventType !== undefined && accepted && !accepted.includes(body.eventType)) throw new RouterError("unknown_event_type");
      if (adapter.pathEvent === "required" && body.eventType === undefined) {
        throw new RouterError("invalid_request", { details: [`eventType: ${body.source} needs the webhook type, one of ${JSON.stringify(accepted)}`] });
      }
      const identified = adapter.identify({
        sourceName: body.source,
        source,
        pathEvent: body.eventType,
        payload: body.payload,
        bodySha256: await sha256Hex(JSON.stringify(body.payload ?? null)),
      });
      if (!identified.ok) throw new RouterError(identified.code, { detail: identified.detail });
      const results = identified.events.map((identity) => {
        const { merchantId, decision, quarantine } = intake(identity, { config, sourceName: body.source, source, adapter, queryMerchant: query.value });
        return {
          source: body.source,
          eventType: identity.eventType,
          providerOrderId: identity.providerId,
          merchantId,
          routes: decision.explanations,
          deliveries: decision.deliveries,
          responder: decision.responder ?? null,
          skippedDisabled: decision.skippedDisabled,
          merchantMismatch: decision.merchantMismatch ?? null,
          quarantine,
        };
      });
      return c.json(valid(S.DryRunResult, { ...results[0]!, events: results }), 200);
    },
  );

  admin.openapi(
    createRoute({
      method: "get",
      path: "/config",
      summary: "The active configuration; secrets appear only by name",
      security,
      responses: { 200: json(S.ConfigSchema, "Active configuration"), ...errors },
    }),
    (c) => {
      const config = loadConfig(c.env, providers);
      return c.json(
        valid(S.ConfigSchema, {
          origin: readVar(c.env, "ROUTER_CONFIG") ? "ROUTER_CONFIG" : "router.config.json",
          config: config as unknown as Record<string, unknown>,
          secrets: referencedSecrets(config).map((name) => ({ name, set: readVar(c.env, name) !== undefined })),
        }),
        200,
      );
    },
  );

  admin.openapi(
    createRoute({
      method: "post",
      path: "/config/validate",
      summary: "Validate a proposed configuration without applying it",
      description: "Configuration is applied by deploying router.config.json or setting ROUTER_CONFIG; this only checks it.",
      security,
      request: { body: { content: { "application/json": { schema: S.ConfigSchema.shape.config } } } },
      responses: { 200: json(S.ConfigValidation, "Whether it is valid, with errors that name each bad field"), ...errors },
    }),
    (c) => {
      const result = parseConfig(c.req.valid("json"), { providers, allowInsecureDestinations: insecureDestinationsAllowed(c.env) });
      return c.json(valid(S.ConfigValidation, result.ok ? { valid: true, errors: [] } : { valid: false, errors: result.errors }), 200);
    },
  );

  admin.doc31("/openapi.json", OPENAPI_DOCUMENT);

  // The page embeds the document: a browser's own fetch of /admin/openapi.json would carry no bearer token.
  admin.get("/reference", Scalar(() => ({ content: admin.getOpenAPI31Document(OPENAPI_DOCUMENT), pageTitle: "Webhook router admin API" })));
  return admin;
}
