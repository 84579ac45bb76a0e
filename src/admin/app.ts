import { createRoute, OpenAPIHono, type z } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import { bodyLimit } from "hono/body-limit";
import { loadPayloadProtection } from "../config/keys.ts";
import { insecureDestinationsAllowed, loadConfig, readVar } from "../config/load.ts";
import { parseConfig } from "../core/config/parse.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import type { RouterDeps } from "../core/deps.ts";
import { RouterError } from "../core/errors.ts";
import { HELD_DUE } from "../core/delivery-state.ts";
import { REDACTED } from "../core/redact.ts";
import { payloadOf, piiPathsOf, redactedPayloadOf } from "../core/payload-view.ts";
import { dryRun } from "../core/dry-run.ts";
import { cancelBulkReplay, releaseQuarantinedEvent, replayEvent, startBulkReplay } from "../delivery/replay.ts";
import { getReplayJob, type ReplayJob } from "../storage/replay-jobs.ts";
import type { Quarantine } from "../core/event.ts";
import { destinationHealth, getEventDetail, listCurrentDeliveries, listEvents, type CurrentDelivery, type EventSummary } from "../storage/admin-queries.ts";
import { isSealedText } from "../storage/payloads.ts";
import { adminTokenId, requireAdminToken, requireRevealToken } from "./auth.ts";
import { purgeCustomerOrder, keyStatus } from "./customer-data.ts";
import { auditId, insertAudit, listAudit, type AuditEntry } from "../storage/audit.ts";
import { clientOf } from "../storage/attempts.ts";
import { AuditCursorSchema, decodeCursor, DeliveryCursorSchema, EventCursorSchema, nextCursor } from "../core/cursor.ts";
import * as S from "./schemas.ts";
import { controlDestination, destinationControls, type ControlView } from "../control/client.ts";
import type { DestinationConfig } from "../core/config/schema.ts";

/** A destination's controls as the API shows them. */
function controlsView(v: ControlView, destination: DestinationConfig | undefined): z.infer<typeof S.ControlsSchema> {
  const at = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
  const state = v.paused ? "paused" : v.disabled ? "disabled_by_410" : v.circuit.phase === "open" ? "circuit_open" : v.circuit.phase === "half_open" ? "circuit_half_open" : "open";
  return {
    state,
    paused: v.paused && { reason: v.paused.reason, by: v.paused.by, at: at(v.paused.at)! },
    disabled: v.disabled && { reason: "disabled_by_410", at: at(v.disabled.at)!, eventId: v.disabled.eventId },
    circuit: {
      phase: v.circuit.phase,
      coolDownSeconds: Math.round(v.circuit.coolDownMs / 1000),
      probeAt: at(v.circuit.probeAt),
      lastError: v.circuit.lastError,
      consecutiveFailures: v.consecutiveFailures,
    },
    held: { count: v.held.count, oldestHeldAt: at(v.held.oldestHeldAt), oldestReceivedAt: at(v.held.oldestReceivedAt) },
    inFlight: v.inFlight,
    rateLimit: destination ? destination.rateLimit : null,
    history: v.history.map((h) => ({ at: at(h.at)!, kind: h.kind, detail: h.detail, ...(h.by ? { by: h.by } : {}) })),
  };
}

type AdminEnv = { Bindings: Env };

const ADMIN_MAX_BODY_BYTES = 1024 * 1024;
const JSON_CONTENT_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const msOf = (value: string | undefined) => (value === undefined ? undefined : Date.parse(value));

/** Responses are validated against the schemas the OpenAPI document is generated from. */
function valid<T extends z.ZodType>(schema: T, data: z.input<T>): z.output<T> {
  return schema.parse(data);
}

function toAuditView(entry: AuditEntry) {
  return { ...entry, at: iso(entry.at)! };
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
  return { ...d, heldReason: d.heldReason ?? null, createdAt: iso(d.createdAt)!, completedAt: iso(d.completedAt) };
}

function referencedSecrets(config: RouterConfig): string[] {
  const names = new Set<string>(config.payloadEncryption === "required" ? ["PAYLOAD_KEYS"] : []);
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

  // Whatever an admin answer holds (events, payloads, the audit log, the config), no browser or proxy keeps a copy;
  // set before the token check, so refusals carry it too.
  admin.use("*", async function noStore(c, next) {
    await next();
    c.header("Cache-Control", "no-store");
  });
  admin.use("*", requireAdminToken());
  // Every admin body is JSON; another media type is the caller's mistake, said as such rather than as a 400.
  admin.use("*", async (c, next) => {
    const contentType = c.req.header("content-type");
    const hasBody = Number(c.req.header("content-length") ?? 0) > 0 || c.req.header("transfer-encoding") !== undefined;
    if (hasBody && !JSON_CONTENT_TYPE.test(contentType ?? "")) throw new RouterError("unsupported_media_type");
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
  // An empty JSON body is read as `{}`, so a POST without one is refused naming each field it lacks (the validator
  // would say only "Malformed JSON"), as one without a content type is. Reading the text here also means a body cut
  // off before its Content-Length surfaces as the runtime's own error (mapped to body_incomplete by the one
  // onError), where the validator would report it as malformed JSON.
  admin.use("*", async function emptyJsonBodyIsEmptyObject(c, next) {
    if (c.req.method === "POST" && JSON_CONTENT_TYPE.test(c.req.header("content-type") ?? "") && (await c.req.text()).trim() === "") {
      c.req.raw = new Request(c.req.raw, { body: "{}" });
      c.req.bodyCache = {};
    }
    await next();
  });
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
      summary: "One event: metadata, payload (redacted unless revealed), and every delivery with every attempt",
      description:
        "Customer data (the provider's PII paths, and every destination response excerpt) is redacted. `reveal=true` with the `X-Reveal-Token` header shows it, and writes the reveal to the audit log.",
      security,
      request: { params: S.EventIdParams, query: S.EventDetailQuery, headers: S.RevealHeaders },
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
      const reveal = c.req.valid("query").reveal === "true";
      // Checked before anything is read: a wrong token learns nothing, not even whether the event exists.
      const attempt = { db: c.env.DB, scope: "reveal", client: clientOf(c.req.header("cf-connecting-ip")), now: clock.now(), via: "admin", requestId: c.get("requestId") ?? null, eventId } as const;
      const revealedBy = reveal ? await requireRevealToken(c.env, c.req.header("x-reveal-token"), attempt) : null;
      const config = loadConfig(c.env, providers);
      const found = await getEventDetail(c.env.DB, await loadPayloadProtection(c.env, config), eventId);
      if (!found) throw new RouterError("not_found");
      const { event, deliveries } = found;
      const paths = piiPathsOf(config, providers, event.source);
      const show = (bytes: Uint8Array) => (reveal ? payloadOf(bytes) : redactedPayloadOf(bytes, paths));
      const payload = event.body && show(event.body);
      const excerpt = async (stored: string | null) =>
        stored === null || !isSealedText(stored) ? stored : reveal ? await event.payloads.openText("excerpt", stored) : REDACTED;
      const shownDeliveries = await Promise.all(
        deliveries.map(async (d) => ({ ...d, attemptLog: await Promise.all(d.attemptLog.map(async (a) => ({ ...a, responseExcerpt: await excerpt(a.responseExcerpt) }))) })),
      );
      if (revealedBy) {
        await insertAudit(c.env.DB, {
          id: auditId(clock.now()),
          at: clock.now(),
          action: "reveal",
          tokenId: revealedBy,
          eventId,
          detail: { fields: paths, answer: event.responder?.answered.body ? true : false, requestId: c.get("requestId") ?? null },
        });
      }
      return c.json(
        valid(S.EventDetailSchema, {
          event: {
            ...event,
            ...toEventSummary(event),
            payload,
            payloadPurgedAt: iso(event.payloadPurgedAt),
            payloadKey: event.payloadKey,
            revealed: reveal,
            lastDivergentRetry: event.lastDivergentRetry && { at: iso(event.lastDivergentRetry.at)!, bodySha256: event.lastDivergentRetry.bodySha256 },
            responder: event.responder && {
              ...event.responder,
              answered: { status: event.responder.answered.status, payload: event.responder.answered.body && show(event.responder.answered.body) },
            },
          },
          deliveries: shownDeliveries.map((d) => ({
            ...d,
            createdAt: iso(d.createdAt)!,
            // A held delivery is due when its destination's object releases it, not at a time.
            nextAttemptAt: d.status === "pending" && d.nextAttemptAt < HELD_DUE ? iso(d.nextAttemptAt) : null,
            heldReason: d.heldReason ?? null,
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
        410: json(S.ErrorSchema, "The event's payload was purged: there is nothing to send"),
        422: json(S.ErrorSchema, "A destination is not configured"),
        ...errors,
      },
    }),
    async (c) => {
      const { eventId } = c.req.valid("param");
      const body = (c.req.header("content-type")?.includes("json") ? c.req.valid("json") : undefined) ?? {};
      const config = loadConfig(c.env, providers);
      const { keys, enqueued } = await replayEvent(c.env, config, eventId, body.destinations, clock);
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
        410: json(S.ErrorSchema, "The event's payload was purged"),
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
      request: { body: { content: { "application/json": { schema: S.BulkReplayBody } }, required: true } },
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
      request: { body: { content: { "application/json": { schema: S.RedriveBody } }, required: true } },
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
      // One call per configured destination to its object; one that cannot be reached shows no controls.
      const controls = new Map(
        await Promise.all(
          Object.entries(config.destinations).map(async ([name, d]) => [name, await destinationControls(c.env, name, clock.now()).then((v) => controlsView(v, d), () => null)] as const),
        ),
      );
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
              controls: controls.get(name) ?? null,
            };
          }),
        }),
        200,
      );
    },
  );

  for (const action of ["pause", "resume", "enable"] as const) {
    admin.openapi(
      createRoute({
        method: "post",
        path: `/destinations/{name}/${action}`,
        summary:
          action === "pause"
            ? "Pause a destination: its deliveries are held, not attempted, using no attempts, until it is resumed"
            : action === "resume"
              ? "Resume a paused destination: what was held goes out in the order it was received, at its rate limit"
              : "Re-enable a destination a 410 Gone disabled: what was held goes out in order",
        description: "Recorded in the audit log with the admin token's id.",
        security,
        request: { params: S.DestinationParams, ...(action === "pause" ? { body: { content: { "application/json": { schema: S.PauseBody } }, required: true } } : {}) },
        responses: { 200: json(S.ControlResult, "The destination's controls after the action"), 404: json(S.ErrorSchema, "No such destination"), ...errors },
      }),
      async (c) => {
        const { name } = c.req.valid("param");
        const config = loadConfig(c.env, providers);
        if (!config.destinations[name]) throw new RouterError("not_found");
        const reason = action === "pause" ? (await c.req.json<{ reason: string }>()).reason.trim() : null;
        const now = clock.now();
        const by = await adminTokenId(c.env);
        const view = await controlDestination(c.env, config, name, now, action, by, reason).catch(() => {
          throw new RouterError("controls_unavailable");
        });
        const id = auditId(now);
        await insertAudit(c.env.DB, { id, at: now, action: `destination_${action}`, tokenId: by, eventId: null, detail: { destination: name, reason } });
        return c.json(valid(S.ControlResult, { destination: name, auditId: id, controls: controlsView(view, config.destinations[name]) }), 200);
      },
    );
  }

  admin.openapi(
    createRoute({
      method: "post",
      path: "/routing/dry-run",
      summary: "Which routes match an event and which destinations would receive it, and why. Writes nothing.",
      security,
      request: { body: { content: { "application/json": { schema: S.DryRunBody } }, required: true } },
      responses: { 200: json(S.DryRunResult, "The routing decision"), 404: json(S.ErrorSchema, "Unknown source"), ...errors },
    }),
    async (c) => {
      const results = await dryRun(loadConfig(c.env, providers), providers, c.req.valid("json"));
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
      request: { body: { content: { "application/json": { schema: S.ConfigSchema.shape.config } }, required: true } },
      responses: { 200: json(S.ConfigValidation, "Whether it is valid, with errors that name each bad field"), ...errors },
    }),
    (c) => {
      const result = parseConfig(c.req.valid("json"), { providers, allowInsecureDestinations: insecureDestinationsAllowed(c.env) });
      return c.json(valid(S.ConfigValidation, result.ok ? { valid: true, errors: [] } : { valid: false, errors: result.errors }), 200);
    },
  );

  admin.openapi(
    createRoute({
      method: "post",
      path: "/customer-data/purge",
      summary: "A customer's deletion request: purge the payloads of every event of one order",
      description:
        "Purges body, Draft answer, response excerpts and data key of each event with this provider order id, now, whatever the retention horizon. The events stay (ids, dedup key, body hash, delivery state); deliveries still pending end dead with `payload_purged`. Recorded in the audit log.",
      security,
      request: { body: { content: { "application/json": { schema: S.CustomerPurgeBody } }, required: true } },
      responses: { 200: json(S.CustomerPurgeResult, "What was purged"), ...errors },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const now = clock.now();
      const outcome = await purgeCustomerOrder(c.env.DB, body.providerOrderId, body.source, now);
      const id = auditId(now);
      await insertAudit(c.env.DB, {
        id,
        at: now,
        action: "customer_purge",
        tokenId: await adminTokenId(c.env),
        eventId: null,
        detail: { providerOrderId: body.providerOrderId, source: body.source ?? null, reason: body.reason ?? null, purged: outcome.purged, alreadyPurged: outcome.alreadyPurged },
      });
      return c.json(valid(S.CustomerPurgeResult, { auditId: id, providerOrderId: body.providerOrderId, ...outcome }), 200);
    },
  );

  admin.openapi(
    createRoute({
      method: "get",
      path: "/audit",
      summary: "The audit log: every reveal of customer data and every deletion request, newest first",
      security,
      request: { query: S.AuditQuery },
      responses: { 200: json(S.AuditListSchema, "A page of entries"), ...errors },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const before = q.cursor ? decodeCursor(q.cursor, AuditCursorSchema)[0] : null;
      const entries = await listAudit(c.env.DB, before, q.limit, q.eventId);
      return c.json(valid(S.AuditListSchema, { entries: entries.map(toAuditView), nextCursor: nextCursor(entries, q.limit, (e) => [e.id]) }), 200);
    },
  );

  admin.openapi(
    createRoute({
      method: "get",
      path: "/keys",
      summary: "The payload key ring: which key wraps how many rows, and which may leave the ring",
      description:
        "Key ids only, never key material. Rows per key come from the Cron's maintenance walk, which re-wraps every data key under the primary; a key is `retired` (removable) once a full lap, started after it stopped being primary, found none.",
      security,
      responses: { 200: json(S.KeysSchema, "The ring and the walk's counts"), ...errors },
    }),
    async (c) => {
      const config = loadConfig(c.env, providers);
      const protection = await loadPayloadProtection(c.env, config).catch(() => null);
      return c.json(valid(S.KeysSchema, await keyStatus(c.env.DB, config, protection)), 200);
    },
  );

  admin.doc31("/openapi.json", OPENAPI_DOCUMENT);

  // The page embeds the document: a browser's own fetch of /admin/openapi.json would carry no bearer token.
  admin.get("/reference", Scalar(() => ({ content: admin.getOpenAPI31Document(OPENAPI_DOCUMENT), pageTitle: "Webhook router admin API" })));
  return admin;
}
