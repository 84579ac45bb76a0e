/**
 * The admin API's answers, as the OpenAPI document publishes them; every answer is validated against its schema.
 * What a route accepts is the operation's own input schema (src/operations/inputs.ts).
 */
import { z } from "@hono/zod-openapi";
import { CAPACITY_LEVELS, CAPACITY_SHARD_STATES } from "../core/capacity.ts";
import { ERROR_CODE_NAMES } from "../core/errors.ts";
import { QUARANTINE_REASONS } from "../core/event.ts";
import { AUDIT_ACTIONS } from "../operations/audit.ts";
import { EventId } from "../operations/inputs.ts";

const IsoTime = z.iso.datetime({ offset: true }).openapi({ example: "2026-11-23T10:00:00Z" });

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z
        .enum(ERROR_CODE_NAMES)
        .openapi({ example: "unauthorized", description: "src/core/errors.ts: each code has one status." }),
      message: z.string(),
      requestId: z.string(),
      details: z.array(z.string()).optional(),
    }),
  })
  .openapi("Error");

export const DeliveryCountsSchema = z.object({
  pending: z.number().int(),
  delivered: z.number().int(),
  failing: z.number().int(),
  dead: z.number().int(),
  stale: z.number().int(),
});

export const QuarantineSchema = z
  .object({
    reason: z.enum(QUARANTINE_REASONS).openapi({
      description:
        "merchant_mismatch: the URL named another merchant than the signed body. merchant_url: the URL's merchant cannot be one ({{merchantId}} never filled in, two values, not an id). unidentified, ambiguous_json, too_many_records, large_envelope_fields: the signed body did not fit what the router assumes of its provider (README → What is held).",
    }),
    detail: z.string().optional().openapi({ description: "What was wrong: field names and counts, never a value." }),
    field: z
      .string()
      .nullable()
      .openapi({ description: "The signed field that names the merchant, for a merchant hold." }),
    route: z.string().nullable().openapi({
      description: "The route whose requireMerchantField failed; null when the provider's own merchant field did.",
    }),
    queryMerchant: z.string().nullable().openapi({ description: "What the URL said (unsigned)." }),
    signedMerchant: z.string().nullable(),
  })
  .openapi("Quarantine");

export const HeldSchema = QuarantineSchema.extend({ at: IsoTime, releasedAt: IsoTime.nullable() }).openapi("Hold");

export const EventSummarySchema = z
  .object({
    id: EventId,
    source: z.string(),
    eventType: z.string(),
    merchantId: z.string().nullable(),
    providerOrderId: z.string().nullable(),
    routing: z.enum(["routed", "unrouted"]),
    receivedAt: IsoTime,
    providerTimestamp: IsoTime.nullable().openapi({
      description: "The provider's time of this state (Weedmaps lastModifiedAt, Leaf Trade updated_at).",
    }),
    deliveries: DeliveryCountsSchema,
    quarantine: HeldSchema.nullable().openapi({
      description: "Set while (and after) the event was held: delivered nowhere until released.",
    }),
    divergentRetries: z.number().int().openapi({
      description: "Later requests with this event's identity but other bytes, acknowledged as duplicates.",
    }),
  })
  .openapi("EventSummary");

export const EventListSchema = z
  .object({
    events: z.array(EventSummarySchema),
    nextCursor: z
      .string()
      .nullable()
      .openapi({
        description:
          "Where the next page starts; null when the search is over. A page may hold fewer than `limit` events, or " +
          "none, and still carry a cursor: follow it until it is null.",
      }),
    scanned: z
      .number()
      .int()
      .nullable()
      .openapi({
        description:
          "How many events a short page looked at, when its filters (source, event type, merchant, a status other " +
          "than dead) are applied to a bounded window of events rather than read through an index; else null.",
      }),
  })
  .openapi("EventList");

export const AttemptSchema = z
  .object({
    attempt: z.number().int(),
    at: IsoTime,
    statusCode: z.number().int().nullable(),
    latencyMs: z.number().int(),
    errorClass: z.string().nullable(),
    responseExcerpt: z
      .string()
      .nullable()
      .openapi({
        description:
          "The first 256 characters of the answer. Unrevealed, customer data in it is hidden as in payloads: a JSON " +
          "excerpt's fields at the PII paths (at any depth), and any value of the event's own customer data it echoes.",
      }),
    responseRedacted: z.array(z.string()).openapi({
      description:
        "Where the excerpt's customer data was hidden: field paths or names, never values. Empty on a reveal.",
    }),
    responseHeaders: z
      .object({
        headers: z.array(z.object({ name: z.string(), value: z.string().nullable() })),
        omitted: z.number().int(),
        redacted: z.boolean(),
      })
      .nullable()
      .openapi({
        description:
          "A failed attempt's response headers, bounded. Unrevealed, only descriptive ones (content-type, " +
          "retry-after, date, request ids …) show their values, the rest `[redacted]`; a cookie's value is never kept (null).",
      }),
  })
  .openapi("Attempt");

/** The state every delivery view shares. */
const DeliveryStateSchema = z.object({
  destination: z.string(),
  generation: z.number().int().openapi({ description: "1 for the original delivery; each replay adds one." }),
  route: z.string(),
  status: z.enum(["pending", "delivered", "dead", "stale"]).openapi({
    description:
      "`stale`: not sent, because a newer state of the same object was already delivered (routes with ordering: latest).",
  }),
  attempts: z.number().int(),
  lastStatusCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  createdAt: IsoTime,
  completedAt: IsoTime.nullable(),
  heldReason: z.enum(["paused", "circuit_open", "disabled_by_410", "backlog"]).nullable().openapi({
    description:
      "Pending but held by the destination's controls, not attempted until released (GET /destinations/health shows why).",
  }),
});

export const DeliverySchema = DeliveryStateSchema.extend({
  nextAttemptAt: IsoTime.nullable(),
  attemptLog: z.array(AttemptSchema),
}).openapi("Delivery");

const PayloadSchema = z
  .object({
    encoding: z.enum(["utf8", "base64"]),
    data: z.string(),
    redacted: z.array(z.string()).openapi({
      description:
        'Where customer data was replaced by "[redacted]" (field paths). Empty when revealed, or when there was none; `data` is then the stored bytes exactly.',
    }),
  })
  .openapi("Payload");

export const EventDetailSchema = z
  .object({
    event: EventSummarySchema.extend({
      idempotencyKey: z.string(),
      contentType: z.string(),
      bodySha256: z.string(),
      lastDivergentRetry: z.object({ at: IsoTime, bodySha256: z.string() }).nullable(),
      payload: PayloadSchema.nullable().openapi({ description: "Null once purged (retention or a deletion request)." }),
      payloadPurgedAt: IsoTime.nullable(),
      payloadKey: z.string().nullable().openapi({
        description:
          "The PAYLOAD_KEYS key id that wraps this event's data key; null when stored unencrypted or purged.",
      }),
      revealed: z
        .boolean()
        .openapi({ description: "Whether customer data is shown (reveal=true with the reveal token; audited)." }),
      responder: z
        .object({
          destination: z.string(),
          status: z.number().int().nullable().openapi({ description: "What the responder answered." }),
          latencyMs: z.number().int().nullable(),
          error: z.string().nullable(),
          answered: z.object({ status: z.number().int().nullable(), payload: PayloadSchema.nullable() }).openapi({
            description:
              "What the provider was answered: the order it showed the customer (beside `payload`, what it asked), or the status that kept its estimate.",
          }),
          verdict: z
            .object({
              outcome: z.enum(["passed", "repaired", "rejected", "unchecked", "no_answer"]),
              rule: z.string().optional(),
              path: z.string().optional(),
              repaired: z.array(z.string()),
              warnings: z.array(z.string()),
            })
            .nullable(),
        })
        .nullable()
        .openapi({
          description: "Synchronous events (Weedmaps Draft): the responder, and what was checked and answered.",
        }),
    }),
    deliveries: z.array(DeliverySchema),
  })
  .openapi("EventDetail");

export const EventDetailQuery = z.object({
  reveal: z.enum(["true", "false"]).optional().openapi({
    description:
      "`true` shows customer data and response excerpts; needs `X-Reveal-Token` and is written to the audit log.",
  }),
});

export const RevealHeaders = z.object({
  "x-reveal-token": z
    .string()
    .max(512)
    .optional()
    .openapi({ description: "The ADMIN_REVEAL_TOKEN secret; only with reveal=true." }),
});

export const AuditEntrySchema = z
  .object({
    id: z.string(),
    at: IsoTime,
    action: z.enum(AUDIT_ACTIONS),
    tokenId: z.string().openapi({
      description:
        'A hash prefix of the token used: the same for every use of one token; never the token. "none" on a failed attempt.',
    }),
    eventId: EventId.nullable(),
    detail: z
      .record(z.string(), z.unknown())
      .openapi({ description: "Field names, counts and ids; never a payload value." }),
  })
  .openapi("AuditEntry");

export const AuditListSchema = z
  .object({ entries: z.array(AuditEntrySchema), nextCursor: z.string().nullable() })
  .openapi("AuditList");

export const CustomerPurgeResult = z
  .object({
    auditId: z.string(),
    providerOrderId: z.string(),
    purged: z.array(EventId).openapi({ description: "Events whose payloads were purged now." }),
    alreadyPurged: z.number().int(),
    retry: z
      .array(EventId)
      .openapi({ description: "Events whose purge lost a race with a delivery write: run the request again." }),
  })
  .openapi("CustomerPurgeResult");

const LapSchema = z.object({
  startedAt: IsoTime,
  completedAt: IsoTime.nullable(),
  walked: z.number().int(),
  byKey: z.record(z.string(), z.number().int()),
});

export const KeysSchema = z
  .object({
    encryption: z.enum(["required", "unsafe-disabled"]),
    primary: z.string().nullable(),
    keys: z.array(
      z.object({
        keyId: z.string(),
        inRing: z.boolean(),
        state: z.enum(["primary", "draining", "retired", "missing", "unused"]).openapi({
          description:
            "`primary` wraps new data keys; `draining` is in the ring and may still protect rows; `retired`: a full lap found nothing it protects, so the ring may drop it; `missing`: still protects rows but is not in the ring (ingest refuses this ring); `unused`: in the ring, never used.",
        }),
        firstUsedAt: IsoTime.nullable(),
        demotedAt: IsoTime.nullable(),
        retiredAt: IsoTime.nullable(),
        lastLapRows: z
          .number()
          .int()
          .nullable()
          .openapi({ description: "Rows it protected at the end of the last complete lap of the walk." }),
        removable: z.boolean(),
      }),
    ),
    walk: z.object({ lap: LapSchema.nullable(), lastLap: LapSchema.nullable() }).openapi({
      description:
        "The Cron's maintenance walk: the lap in progress and the last complete one, with rows per key id (and (unencrypted), (purged)).",
    }),
  })
  .openapi("Keys");

export const ReleaseResult = z
  .object({
    eventId: EventId,
    merchantId: z.string().nullable(),
    deliveries: z.array(z.object({ destination: z.string(), route: z.string() })),
    enqueued: z.boolean(),
  })
  .openapi("ReleaseResult");

export const ReplayEventResult = z
  .object({
    eventId: EventId,
    deliveries: z.array(z.object({ destination: z.string(), generation: z.number().int() })),
    enqueued: z.boolean(),
  })
  .openapi("ReplayResult");

export const ReplayJobSchema = z
  .object({
    replayId: z.string(),
    state: z.enum(["running", "done", "failed", "cancelled"]),
    filter: z.object({ status: z.string(), destination: z.string().optional(), since: IsoTime, until: IsoTime }),
    maxCount: z.number().int(),
    startedAt: IsoTime,
    updatedAt: IsoTime,
    scanned: z.number().int().openapi({ description: "Events read so far." }),
    replayed: z.number().int(),
    skipped: z.number().int().openapi({ description: "Deliveries to destinations disabled since." }),
    error: z.string().nullable(),
  })
  .openapi("ReplayJob");

export const BulkReplayResult = ReplayJobSchema.extend({
  matched: z.number().int().openapi({ description: "Deliveries the filter matched when the job started." }),
}).openapi("BulkReplayResult");

export const DeadLetterSchema = DeliveryStateSchema.extend({
  eventId: EventId,
  source: z.string(),
  eventType: z.string(),
  receivedAt: IsoTime,
}).openapi("DeadLetter");

export const DeadLetterListSchema = z
  .object({
    deliveries: z.array(DeadLetterSchema),
    nextCursor: z.string().nullable().openapi({
      description: "Where the next page starts; null at the end. A page holds `limit` events' dead deliveries.",
    }),
  })
  .openapi("DeadLetterList");

/** A destination's controls, from its Durable Object: pause, the 410 disable, the circuit and what it holds. */
export const ControlsSchema = z
  .object({
    state: z.enum(["open", "paused", "disabled_by_410", "circuit_open", "circuit_half_open"]),
    paused: z.object({ reason: z.string(), by: z.string(), at: IsoTime }).nullable(),
    disabled: z
      .object({ reason: z.literal("disabled_by_410"), at: IsoTime, eventId: z.string().nullable() })
      .nullable(),
    circuit: z.object({
      phase: z.enum(["closed", "open", "half_open"]),
      coolDownSeconds: z.number(),
      probeAt: IsoTime.nullable(),
      lastError: z.string().nullable(),
      consecutiveFailures: z.number().int(),
    }),
    held: z.object({ count: z.number().int(), oldestHeldAt: IsoTime.nullable(), oldestReceivedAt: IsoTime.nullable() }),
    inFlight: z.number().int(),
    rateLimit: z.object({ maxPerSecond: z.number().nullable(), maxInFlight: z.number().int().nullable() }).nullable(),
    history: z.array(
      z.object({
        at: IsoTime,
        kind: z.enum(["opened", "probe", "closed", "reopened", "paused", "resumed", "disabled", "enabled"]),
        detail: z.string().nullable(),
        by: z.string().optional(),
      }),
    ),
  })
  .openapi("DestinationControls");

export const HealthSchema = z
  .object({
    since: IsoTime,
    looked: z.number().int().openapi({
      description: "Events of the window read, newest first: at most 5,000 per shard, through the received_at index.",
    }),
    complete: z.boolean().openapi({
      description: "Whether every event of the window was read; when false, the counts are of the newest `looked`.",
    }),
    destinations: z.array(
      z.object({
        name: z.string(),
        configured: z.boolean(),
        enabled: z.boolean(),
        delivered: z.number().int(),
        failing: z.number().int(),
        dead: z.number().int(),
        pending: z.number().int(),
        lastSuccessAt: IsoTime.nullable(),
        lastError: z.string().nullable(),
        lastErrorAt: IsoTime.nullable(),
        /** Null for a destination no longer configured, or when its object could not be reached. */
        controls: ControlsSchema.nullable(),
      }),
    ),
  })
  .openapi("DestinationHealth");

export const ControlResult = z
  .object({ destination: z.string(), auditId: z.string(), controls: ControlsSchema })
  .openapi("DestinationControlResult");

const DryRunEvent = z.object({
  source: z.string(),
  eventType: z.string(),
  providerOrderId: z.string().nullable(),
  merchantId: z.string().nullable(),
  routes: z.array(z.object({ route: z.string(), matched: z.boolean(), reason: z.string() })),
  deliveries: z.array(z.object({ destination: z.string(), route: z.string() })),
  responder: z.object({ destination: z.string(), route: z.string() }).nullable(),
  skippedDisabled: z.array(z.object({ destination: z.string(), route: z.string() })),
  merchantMismatch: z.object({ route: z.string(), field: z.string() }).nullable(),
  quarantine: QuarantineSchema.nullable().openapi({
    description: "Set when a real request would be held in quarantine, delivered nowhere.",
  }),
});

export const DryRunResult = DryRunEvent.extend({
  events: z.array(DryRunEvent).openapi({
    description:
      "Every event the payload is (a Leaf Trade V4 envelope of several orders is several); the top level repeats the first.",
  }),
}).openapi("DryRunResult");

export const ConfigSchema = z
  .object({
    origin: z.enum(["ROUTER_CONFIG", "router.config.json"]),
    config: z.record(z.string(), z.unknown()),
    secrets: z
      .array(z.object({ name: z.string(), set: z.boolean() }))
      .openapi({ description: "Referenced secrets, by name only." }),
  })
  .openapi("ActiveConfig");

export const ConfigValidation = z
  .object({ valid: z.boolean(), errors: z.array(z.string()) })
  .openapi("ConfigValidation");

export const CapacitySchema = z
  .object({
    at: IsoTime,
    thresholds: z.object({
      limitBytes: z
        .number()
        .int()
        .openapi({ description: "D1's limit per database (10 GB), or a lower configured one." }),
      warnPercent: z.number(),
      criticalPercent: z.number(),
      readOnlyPercent: z.number().openapi({
        description:
          "Past it a shard takes no new events: it goes read-only when another shard has room, and when none has, ingest answers 503 storage_full.",
      }),
    }),
    allFull: z.boolean().openapi({
      description: "No writable shard has room by the recorded sizes: ingest answers 503 storage_full.",
    }),
    shards: z.array(
      z.object({
        id: z.number().int(),
        binding: z.string().openapi({ example: "DB" }),
        state: z.enum(CAPACITY_SHARD_STATES).openapi({
          description:
            "From the current shard map: read_only when the config says so or the router made it read-only (readOnlySince).",
        }),
        readOnlySince: IsoTime.nullable().openapi({
          description: "When the capacity watch made the shard read-only; null if it did not (or the config did).",
        }),
        level: z.enum(CAPACITY_LEVELS).nullable(),
        sizeBytes: z
          .number()
          .int()
          .nullable()
          .openapi({ description: "D1's own figure (meta.size_after), as last recorded; null before the first." }),
        limitBytes: z.number().int(),
        share: z.number().nullable().openapi({ description: "sizeBytes / limitBytes, 0–1." }),
        measuredAt: IsoTime.nullable(),
        eventsPerDay: z.number().nullable(),
        rowsWrittenPerEvent: z.number().nullable(),
        bytesPerEvent: z.number().int().nullable(),
        bytesPerDay: z.number().int().nullable(),
        daysUntilFull: z.number().nullable().openapi({
          description: "Until the read-only line at the current rate; 0 once past it; null while not growing.",
        }),
      }),
    ),
  })
  .openapi("Capacity");
