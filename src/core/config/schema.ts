import { z } from "zod";
import { D1_DATABASE_LIMIT_BYTES, DEFAULT_CAPACITY_THRESHOLDS } from "../capacity.ts";
import type { ProviderRegistry } from "../providers/contract.ts";
import { DEFAULT_TRANSITIONS, ORDER_STATUSES, transitionCycle } from "../relay.ts";

/**
 * The most `limits.maxBodyBytes` may be, and so the largest payload the router ever stores (a Draft answer is at most
 * 262,144 bytes, an excerpt 512). src/core/envelope.ts opens no compressed value to more than this.
 */
export const MAX_BODY_BYTES_CEILING = 700_000;

/** Worker secrets are referenced by name; a value that looks like anything else is refused so none gets inlined. */
const SecretName = z
  .string()
  .regex(/^[A-Z][A-Z0-9_]{0,63}$/, "must be the NAME of a Worker secret in UPPER_SNAKE_CASE, never the secret itself");

const Slug = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "must be lower-case letters, digits, '-' or '_'");

/** Event types are provider-defined and may be new; dots are allowed for names such as `order.created`. */
export const EVENT_TYPE_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const EventType = z.string().regex(EVENT_TYPE_PATTERN, "must be lower-case letters, digits, '.', '-' or '_'");

export const FieldPath = z
  .string()
  .regex(/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/, "must be a dotted field path such as seller.id");

/** A redaction path (src/core/redact.ts): dotted keys, `*` for any one level, `**` for any number of levels. */
const PiiPath = z
  .string()
  .max(200)
  .regex(
    /^([A-Za-z0-9_$-]+|\*|\*\*)(\.([A-Za-z0-9_$-]+|\*|\*\*))*$/,
    "must be a dotted path such as customer or **.email",
  );

const HeaderName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/, "must be an HTTP header name");

const HmacVerification = z.strictObject({
  type: z.literal("hmac"),
  /** Several at once, so a secret can be rotated with no downtime: any one that verifies is accepted. */
  secrets: z.array(SecretName).min(1).max(5),
  header: HeaderName.optional(),
  encoding: z.enum(["base64", "hex"]).optional(),
  /** Stripped from the header value before decoding, e.g. "sha256=". */
  prefix: z.string().max(32).default(""),
});

const HeaderVerification = z.strictObject({
  type: z.literal("header"),
  header: HeaderName,
  /** The expected header value is `prefix + secret`, for example "Bearer " + token. */
  prefix: z.string().max(32).default(""),
  secrets: z.array(SecretName).min(1).max(5),
});

const NoVerification = z.strictObject({
  type: z.literal("none"),
  unsigned: z.literal(true, {
    error: 'a source without verification must say `"unsigned": true` to show it is deliberate',
  }),
});

const Verification = z.discriminatedUnion("type", [HmacVerification, HeaderVerification, NoVerification]);

const sourceSchema = (providers: readonly [string, ...string[]]) =>
  z.strictObject({
    provider: z.enum(providers),
    verify: Verification,
    /** Where the merchant comes from: a query parameter (not covered by any signature) and/or a signed field. */
    merchant: z
      .strictObject({
        query: z.string().min(1).max(64).default("merchant_id"),
        field: FieldPath.optional(),
      })
      .default({ query: "merchant_id" }),
    /** Generic sources: the field that names the event type when the path does not. */
    eventTypeField: FieldPath.optional(),
    /** Generic sources: fields that make up the business identity; without them the body hash is used. */
    idempotencyFields: z.array(FieldPath).max(8).optional(),
    /** Reject bodies that are not JSON (400). Weedmaps and Leaf Trade always send JSON. */
    requireJson: z.boolean().default(true),
    /**
     * The event types this source accepts; any other path is refused with 404 before the body is read. Omitted:
     * every type the provider sends (Leaf Trade's three webhook types), or any type at all for an open provider.
     */
    events: z.array(EventType).min(1).max(50).optional(),
    /** Customer data in this source's bodies beyond what its provider declares (src/core/redact.ts paths). */
    piiPaths: z.array(PiiPath).max(50).default([]),
    /**
     * Weedmaps: which of a Draft's `fees` is the Weedmaps Service Fee, which a Draft answer must keep. Weedmaps does
     * not document the marking; unset, the adapter's assumed default applies (`feeType` SERVICE_FEE, or the name
     * "Weedmaps Service Fee" or "Weedmaps Fee": DEFAULT_SERVICE_FEE in src/core/providers/weedmaps.ts). Set, it
     * replaces the default. Each is compared whole, ignoring case and surrounding spaces: no substrings.
     */
    serviceFee: z
      .strictObject({
        feeTypes: z.array(z.string().trim().min(1).max(100)).max(20).default([]),
        names: z.array(z.string().trim().min(1).max(200)).max(20).default([]),
      })
      .refine((fee) => fee.feeTypes.length + fee.names.length > 0, {
        message: "name at least one fee type or fee name: an empty setting would unlock the Service Fee",
      })
      .optional(),
    /**
     * A secret token each webhook type's URL must carry (`?token=…`), by the path's type (`default`: a URL with no
     * type). A provider that signs every type with one key (Leaf Trade) cannot tell them apart by the signature,
     * so whoever has seen a body (a destination, a log) could post it to another type's URL; the URL token, never
     * forwarded or logged, is what they lack. Checked before the body is read.
     */
    urlToken: z
      .strictObject({
        query: z
          .string()
          .regex(/^[A-Za-z0-9_-]{1,32}$/, "must be a query parameter name")
          .default("token"),
        secrets: z
          .record(z.union([EventType, z.literal("default")]), SecretName)
          .refine((secrets) => Object.keys(secrets).length > 0, "name at least one type's secret"),
      })
      .optional(),
  });

const StaticHeader = z.strictObject({
  secret: SecretName,
  prefix: z.string().max(32).default(""),
});

const DestinationSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: "must be an absolute http(s) URL" }),
  enabled: z.boolean().default(true),
  timeoutMs: z.number().int().min(100).max(60_000).default(10_000),
  /** Total attempts including the first. Capped well under the queue's own max_retries (30). */
  maxAttempts: z.number().int().min(1).max(25).default(8),
  /** Header values come from Worker secrets; e.g. { "Authorization": { "secret": "POS_TOKEN", "prefix": "Bearer " } }. */
  headers: z.record(HeaderName, StaticHeader).default({}),
  /**
   * Key for the Standard Webhooks signature (`whsec_…` base64, or any string used as raw bytes). Every destination
   * has one, except Weedmaps' Orders API (`weedmapsOrders`), which takes its own bearer token instead.
   */
  signingSecret: SecretName.optional(),
  /**
   * Makes this destination Weedmaps' Orders API, where the status relay sends updates (docs/relay.md): `url` is the
   * API's base (https://api-g.weedmaps.com), each update is a PUT of its status under `apiVersion`, with a bearer
   * token this destination's Durable Object fetches from `tokenPath` with the client id and secret (secret names)
   * and keeps. `scope` is sent when set: Weedmaps does not document the orders scope's name.
   */
  weedmapsOrders: z
    .strictObject({
      clientId: SecretName,
      clientSecret: SecretName,
      scope: z
        .string()
        .regex(/^[\x21-\x7e]+( [\x21-\x7e]+)*$/, "must be scope names separated by spaces")
        .max(500)
        .optional(),
      apiVersion: z
        .string()
        .regex(/^\d{4}-(01|07)$/, "must be a Weedmaps API version such as 2026-01")
        .default("2026-01"),
      tokenPath: z
        .string()
        .regex(/^\/[A-Za-z0-9/_.-]{0,200}$/, "must be a path such as /auth/token")
        .default("/auth/token"),
    })
    .optional(),
  /** 4xx statuses to retry instead of failing permanently, e.g. [409, 423]. 408 and 429 are always retried. */
  retryOnStatus: z.array(z.number().int().min(400).max(499)).max(20).default([]),
  /**
   * A 410 Gone (Standard Webhooks' convention) disables the destination: its deliveries are held
   * (`disabled_by_410`), an alert goes out, and an operator re-enables it. false: a 410 is a permanent failure of
   * that one delivery (dead), like any other 4xx.
   */
  disableOnGone: z.boolean().default(true),
  /**
   * When a limit is reached, deliveries wait (re-queued with a delay) without using an attempt. null: no limit.
   * Kept by the destination's Durable Object, so the limit holds across every consumer invocation.
   */
  rateLimit: z
    .strictObject({
      maxPerSecond: z.number().min(0.1).max(1_000).nullable().default(null),
      maxInFlight: z.number().int().min(1).max(500).nullable().default(null),
    })
    .default({ maxPerSecond: null, maxInFlight: null }),
  /**
   * Opens after `consecutiveFailures` failures in a row, or when at least `minAttempts` attempts within
   * `windowSeconds` failed at `failureRate` or more. While open, deliveries are held; after the cool-down one probe
   * goes out: success closes the circuit and releases what was held, failure doubles the cool-down (to the max).
   * A failure is no answer, a timeout, a 5xx, 408 or 429; a 4xx the destination meant is not.
   */
  circuit: z
    .strictObject({
      enabled: z.boolean().default(true),
      consecutiveFailures: z.number().int().min(1).max(1_000).default(5),
      failureRate: z.number().gt(0).max(1).default(0.5),
      minAttempts: z.number().int().min(1).max(10_000).default(20),
      windowSeconds: z.number().int().min(1).max(3_600).default(60),
      coolDownSeconds: z.number().int().min(1).max(3_600).default(30),
      maxCoolDownSeconds: z.number().int().min(1).max(43_200).default(900),
    })
    .refine((c) => c.maxCoolDownSeconds >= c.coolDownSeconds, {
      message: "maxCoolDownSeconds must be at least coolDownSeconds",
      path: ["maxCoolDownSeconds"],
    })
    .default({
      enabled: true,
      consecutiveFailures: 5,
      failureRate: 0.5,
      minAttempts: 20,
      windowSeconds: 60,
      coolDownSeconds: 30,
      maxCoolDownSeconds: 900,
    }),
});

/** Where alerts go. URLs that carry a token (Slack's do) come from Worker secrets, never from the config. */
const AlertChannelSchema = z.discriminatedUnion("type", [
  /** A JSON POST of the alert, signed with Standard Webhooks when `signingSecret` names a secret. */
  z.strictObject({
    type: z.literal("webhook"),
    url: z.url({ protocol: /^https?$/, error: "must be an absolute http(s) URL" }),
    signingSecret: SecretName.optional(),
  }),
  /** A Slack-compatible incoming webhook: `{"text": …}`. */
  z.strictObject({ type: z.literal("slack"), urlSecret: SecretName }),
  /** One of the configured destinations, with its URL, headers and signature. */
  z.strictObject({ type: z.literal("destination"), destination: Slug }),
]);

const Scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

const OrderStatusName = z.enum(ORDER_STATUSES);

const RelaySystem = z.union([z.strictObject({ token: SecretName }), z.strictObject({ signingSecret: SecretName })]);

const RelaySchema = z.strictObject({
  destination: Slug,
  transitions: z
    .partialRecord(OrderStatusName, z.array(OrderStatusName).max(ORDER_STATUSES.length))
    .default(DEFAULT_TRANSITIONS as Record<string, (typeof ORDER_STATUSES)[number][]>)
    .superRefine((transitions, ctx) => {
      const cycle = transitionCycle(transitions);
      if (cycle)
        ctx.addIssue({ code: "custom", message: `moves must only go forward; this one cycles: ${cycle.join(" → ")}` });
    }),
  systems: z
    .record(Slug, RelaySystem)
    .refine((systems) => Object.keys(systems).length > 0, "name at least one internal system that may send updates"),
});

const FieldCondition = z.strictObject({
  field: FieldPath,
  equals: Scalar.optional(),
  in: z.array(Scalar).min(1).max(100).optional(),
  exists: z.boolean().optional(),
});

const RouteSchema = z.strictObject({
  name: Slug,
  source: Slug,
  /** Omitted: every event type, including ones the provider adds later. */
  events: z.array(EventType).min(1).optional(),
  /** Omitted: every merchant. */
  merchants: z.array(z.string().min(1).max(255)).min(1).optional(),
  /** All conditions must hold, evaluated on the signed payload. */
  match: z.array(FieldCondition).max(20).default([]),
  /**
   * The merchant in the URL is not signed. When set, it must equal this field of the signed body; an event whose
   * URL says another merchant is stored as quarantined, acknowledged and delivered nowhere until an operator
   * releases it (`POST /admin/events/{id}/release`), which routes it with the signed merchant.
   */
  requireMerchantField: FieldPath.optional(),
  /**
   * `latest`: a delivery whose provider timestamp is older than one already delivered to the same destination for
   * the same object (source and provider id) is settled `stale` and not sent, so a late retry of an older state
   * never overwrites a newer one. Costs a row read per delivery and a row write per delivered one.
   */
  ordering: z.enum(["none", "latest"]).default("none"),
  destinations: z.array(Slug).max(50).default([]),
  /** Weedmaps Draft only: the destination whose answer is returned to Weedmaps in the same response. */
  responder: Slug.optional(),
  /**
   * How the responder's answer is checked before the provider sees it: `strict` refuses (502) an answer that is
   * not the order or changes what it may not; `repair` puts the Draft's own values back and records that it did;
   * `unchecked` relays it as it came, for measurement only (unsafe: the answer is the customer's checkout).
   */
  draftAnswer: z.enum(["strict", "repair", "unchecked"]).default("strict"),
});

/**
 * `limits.capacity`: when a shard's size (D1's own figure) alerts, and where it stops taking new events
 * (src/core/capacity.ts). The limit is D1's; a lower one is for rehearsing the alerts and the `503 storage_full`.
 */
const CapacitySchema = z
  .strictObject({
    limitBytes: z.number().int().min(1).max(D1_DATABASE_LIMIT_BYTES).default(D1_DATABASE_LIMIT_BYTES),
    warnPercent: z.number().min(1).max(100).default(DEFAULT_CAPACITY_THRESHOLDS.warnPercent),
    criticalPercent: z.number().min(1).max(100).default(DEFAULT_CAPACITY_THRESHOLDS.criticalPercent),
    readOnlyPercent: z.number().min(1).max(100).default(DEFAULT_CAPACITY_THRESHOLDS.readOnlyPercent),
  })
  .refine((t) => t.warnPercent < t.criticalPercent && t.criticalPercent < t.readOnlyPercent, {
    message: "must rise: warnPercent < criticalPercent < readOnlyPercent",
    path: ["criticalPercent"],
  })
  .default({ ...DEFAULT_CAPACITY_THRESHOLDS });

/**
 * The schema of router.config.json for a set of providers: the `provider` enum and the per-provider checks come
 * from what each adapter declares, so adding a provider adds nothing here.
 */
export function buildConfigSchema(registry: ProviderRegistry) {
  const names = Object.keys(registry) as [string, ...string[]];
  return z
    .strictObject({
      $schema: z.string().optional(),
      $comment: z.string().optional(),
      limits: z
        .strictObject({
          /**
           * Well under D1's 2 MB row limit, which local D1 does not enforce: stored encrypted as base64 text, a body
           * takes at most 4/3 of its size (less when it compresses), next to the Draft answer (same) and the
           * deliveries (≤ 512 KB).
           */
          maxBodyBytes: z.number().int().min(1024).max(MAX_BODY_BYTES_CEILING).default(262_144),
          /** How long a Weedmaps Draft waits for its responder before answering 504. */
          draftDeadlineMs: z.number().int().min(100).max(25_000).default(4_000),
          /**
           * The most of a responder's answer that is read; a longer one is refused (502) without being buffered. The
           * answer is stored in the Draft's row with the body (≤ 1 MB) and the deliveries (≤ 512 KB), under D1's 2 MB.
           */
          draftAnswerMaxBytes: z.number().int().min(1024).max(262_144).default(262_144),
          /** JSON nested deeper than this is refused with 400 invalid_json; real webhooks nest a few levels. */
          maxJsonDepth: z.number().int().min(8).max(1_000).default(64),
          /**
           * The most records (Leaf Trade V4 orders) one body makes events of: each is a row and a delivery, so one
           * request's cost stays bounded. A body over it is stored once, whole, held and alerted.
           */
          maxRecordsPerBody: z.number().int().min(1).max(10_000).default(1_000),
          capacity: CapacitySchema,
        })
        .default({
          maxBodyBytes: 262_144,
          draftDeadlineMs: 4_000,
          draftAnswerMaxBytes: 262_144,
          maxJsonDepth: 64,
          maxRecordsPerBody: 1_000,
          capacity: { ...DEFAULT_CAPACITY_THRESHOLDS },
        }),
      /**
       * Bodies, Draft answers and response excerpts are encrypted in D1 with the PAYLOAD_KEYS ring. `unsafe-disabled`
       * stores them as plain text: for measuring the cost only, never in production.
       */
      payloadEncryption: z.enum(["required", "unsafe-disabled"]).default("required"),
      /** How long customer data is kept. The Cron applies both in bounded slices (src/maintenance). */
      retention: z
        .strictObject({
          /** After this, an event's body, Draft answer and response excerpts are purged; its ids, key and state stay. */
          payloadDays: z.number().int().min(1).max(3_650).default(30),
          /** After this, the event's row goes. Dedup of a provider retry older than this no longer holds. */
          eventDays: z.number().int().min(1).max(3_650).default(400),
          /**
           * Events the Cron's maintenance walk visits per run: what one run reads, whatever the table holds. At the
           * default, a run every 5 minutes covers 576,000 rows a day (a lap of a million events: under two days),
           * for 576,000 rows read (about $0.0006).
           */
          sliceRows: z.number().int().min(10).max(20_000).default(2_000),
        })
        .refine((r) => r.eventDays >= r.payloadDays, {
          message: "eventDays must be at least payloadDays",
          path: ["eventDays"],
        })
        .default({ payloadDays: 30, eventDays: 400, sliceRows: 2_000 }),
      /**
       * The D1 databases events are stored in (src/core/shards.ts). Shard 0 is the `DB` binding, which is also the
       * control database (the shard map, key registry, audit log, rollups, replay jobs, cursors). Adding a shard is a
       * D1 binding in wrangler.toml, an entry here and a deploy: no data moves. `readOnly` keeps a shard serving
       * reads, replays and retention while it takes no new events (full, or being drained).
       */
      storage: z
        .strictObject({
          shards: z
            .array(
              z.strictObject({
                id: z.number().int().min(0).max(999),
                binding: z
                  .string()
                  .regex(/^[A-Z][A-Z0-9_]{0,63}$/, "must be the name of a D1 binding in wrangler.toml, e.g. SHARD_1"),
                readOnly: z.boolean().default(false),
              }),
            )
            .min(1)
            .max(64)
            .default([{ id: 0, binding: "DB", readOnly: false }]),
          /**
           * After the shard map changes, an insert also checks where the previous map would have put the event, for
           * this long: a provider's retry is still a duplicate, a later status still finds its order's state.
           */
          retryWindowHours: z.number().int().min(1).max(720).default(48),
        })
        .superRefine((storage, ctx) => {
          const ids = storage.shards.map((s) => s.id);
          const bindings = storage.shards.map((s) => s.binding);
          if (new Set(ids).size !== ids.length)
            ctx.addIssue({ code: "custom", path: ["shards"], message: "shard ids must be unique" });
          if (new Set(bindings).size !== bindings.length)
            ctx.addIssue({ code: "custom", path: ["shards"], message: "each shard needs its own binding" });
          const first = storage.shards.find((s) => s.id === 0);
          if (first?.binding !== "DB")
            ctx.addIssue({
              code: "custom",
              path: ["shards"],
              message: "shard 0 must be the DB binding: it is also the control database",
            });
          if (storage.shards.every((s) => s.readOnly))
            ctx.addIssue({ code: "custom", path: ["shards"], message: "at least one shard must take new events" });
        })
        .default({ shards: [{ id: 0, binding: "DB", readOnly: false }], retryWindowHours: 48 }),
      /**
       * Alerts on a dead delivery, a circuit that opens or closes, a 410 disable, a message in the dead-letter queue
       * and a held backlog older than `backlogMinutes`. At most one per destination and kind every
       * `throttleMinutes`, with a count of those held back. Ids, counts and reasons only, never customer data.
       */
      alerts: z
        .strictObject({
          channels: z.record(Slug, AlertChannelSchema).default({}),
          throttleMinutes: z.number().int().min(1).max(1_440).default(15),
          backlogMinutes: z.number().int().min(1).max(1_440).default(30),
        })
        .default({ channels: {}, throttleMinutes: 15, backlogMinutes: 30 }),
      sources: z.record(Slug, sourceSchema(names)),
      destinations: z.record(Slug, DestinationSchema),
      routes: z.array(RouteSchema),
      /**
       * The status relay, per Weedmaps source (docs/relay.md): internal systems PUT an order's status to
       * `/relay/<source>/orders/<orderId>/status`, and the router sends it to the `destination` that is Weedmaps'
       * Orders API. `transitions` says which moves are forward (the documented flow by default); `systems` are who
       * may ask, each with its own bearer token or Standard Webhooks signing secret (secret names).
       */
      relay: z.record(Slug, RelaySchema).default({}),
    })
    .superRefine((config, ctx) => {
      for (const [name, channel] of Object.entries(config.alerts.channels)) {
        if (channel.type === "destination" && !config.destinations[channel.destination]) {
          ctx.addIssue({
            code: "custom",
            path: ["alerts", "channels", name, "destination"],
            message: `unknown destination "${channel.destination}"`,
          });
        }
      }
      for (const [name, source] of Object.entries(config.sources)) {
        const verify = source.verify;
        const adapter = registry[source.provider]!;
        if (verify.type === "hmac" && !adapter.signature && (!verify.header || !verify.encoding)) {
          ctx.addIssue({
            code: "custom",
            path: ["sources", name, "verify", verify.header ? "encoding" : "header"],
            message: `${source.provider} sources have no default signature scheme: set both header and encoding`,
          });
        }
        if (adapter.eventTypes && source.events) {
          source.events.forEach((event, i) => {
            if (!adapter.eventTypes!.includes(event)) {
              ctx.addIssue({
                code: "custom",
                path: ["sources", name, "events", i],
                message: `${source.provider} sends only ${JSON.stringify(adapter.eventTypes)}`,
              });
            }
          });
        }
        if (source.serviceFee && !adapter.checkAnswer) {
          ctx.addIssue({
            code: "custom",
            path: ["sources", name, "serviceFee"],
            message: `the ${source.provider} adapter checks no answer; serviceFee applies to Weedmaps sources`,
          });
        }
        if (!adapter.configurableIdentity && (source.eventTypeField || source.idempotencyFields)) {
          ctx.addIssue({
            code: "custom",
            path: ["sources", name, source.eventTypeField ? "eventTypeField" : "idempotencyFields"],
            message: `the ${source.provider} adapter derives this itself; it applies to generic sources only`,
          });
        }
      }
      config.routes.forEach((route, i) => {
        const source = config.sources[route.source];
        if (!source) {
          ctx.addIssue({ code: "custom", path: ["routes", i, "source"], message: `unknown source "${route.source}"` });
        }
        route.destinations.forEach((dest, j) => {
          if (!config.destinations[dest]) {
            ctx.addIssue({
              code: "custom",
              path: ["routes", i, "destinations", j],
              message: `unknown destination "${dest}"`,
            });
          }
        });
        if (route.responder !== undefined) {
          if (!config.destinations[route.responder]) {
            ctx.addIssue({
              code: "custom",
              path: ["routes", i, "responder"],
              message: `unknown destination "${route.responder}"`,
            });
          }
          const synchronous = source ? registry[source.provider]!.synchronousEvents : [];
          if (
            synchronous.length === 0 ||
            !route.events ||
            !route.events.every((event) => synchronous.includes(event))
          ) {
            ctx.addIssue({
              code: "custom",
              path: ["routes", i, "responder"],
              message:
                synchronous.length === 0
                  ? "a responder belongs on a route of a provider that waits for an answer (Weedmaps Draft)"
                  : `a responder belongs on a route whose events are all answered synchronously: ${JSON.stringify(synchronous)}`,
            });
          }
        }
        // The URL's merchant is not signed: a responder chosen by merchant would let a replayed Draft be priced by
        // another merchant's responder, unless the route pins the merchant to a signed field.
        if (route.responder !== undefined && route.merchants && !route.requireMerchantField) {
          ctx.addIssue({
            code: "custom",
            path: ["routes", i, "requireMerchantField"],
            message:
              "a responder route that selects merchants must pin the merchant to a signed field (e.g. seller.id)",
          });
        }
        if (route.destinations.length === 0 && route.responder === undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["routes", i, "destinations"],
            message: "a route names at least one destination",
          });
        }
        route.match.forEach((cond, j) => {
          const kinds = [cond.equals !== undefined, cond.in !== undefined, cond.exists !== undefined].filter(
            Boolean,
          ).length;
          if (kinds !== 1) {
            ctx.addIssue({
              code: "custom",
              path: ["routes", i, "match", j],
              message: "set exactly one of equals, in, exists",
            });
          }
        });
      });
      const names = new Set<string>();
      config.routes.forEach((route, i) => {
        if (names.has(route.name))
          ctx.addIssue({
            code: "custom",
            path: ["routes", i, "name"],
            message: `duplicate route name "${route.name}"`,
          });
        names.add(route.name);
      });
      // Weedmaps' Orders API takes status updates, not webhooks: no route, responder or alert channel may use it,
      // and every other destination signs what it sends.
      const apis = new Set(
        Object.entries(config.destinations).flatMap(([name, d]) => (d.weedmapsOrders ? [name] : [])),
      );
      for (const [name, destination] of Object.entries(config.destinations)) {
        if (!destination.weedmapsOrders && !destination.signingSecret)
          ctx.addIssue({
            code: "custom",
            path: ["destinations", name, "signingSecret"],
            message: "name the Worker secret that signs this destination's deliveries",
          });
      }
      config.routes.forEach((route, i) => {
        for (const [j, dest] of [...route.destinations.entries(), [-1, route.responder] as const]) {
          if (dest !== undefined && apis.has(dest))
            ctx.addIssue({
              code: "custom",
              path: ["routes", i, j === -1 ? "responder" : "destinations", ...(j === -1 ? [] : [j])],
              message: `"${dest}" is Weedmaps' Orders API: it takes the status relay's updates, not webhooks`,
            });
        }
      });
      for (const [name, channel] of Object.entries(config.alerts.channels))
        if (channel.type === "destination" && apis.has(channel.destination))
          ctx.addIssue({
            code: "custom",
            path: ["alerts", "channels", name, "destination"],
            message: `"${channel.destination}" is Weedmaps' Orders API: it cannot carry alerts`,
          });
      for (const [name, relay] of Object.entries(config.relay)) {
        const source = config.sources[name];
        if (source?.provider !== "weedmaps")
          ctx.addIssue({
            code: "custom",
            path: ["relay", name],
            message: source
              ? `the status relay speaks Weedmaps' Orders API; "${name}" is a ${source.provider} source`
              : `unknown source "${name}"`,
          });
        if (!apis.has(relay.destination))
          ctx.addIssue({
            code: "custom",
            path: ["relay", name, "destination"],
            message: config.destinations[relay.destination]
              ? `"${relay.destination}" is not Weedmaps' Orders API: give it a weedmapsOrders block`
              : `unknown destination "${relay.destination}"`,
          });
      }
    });
}

type RouterConfigSchema = ReturnType<typeof buildConfigSchema>;
export type RouterConfig = z.output<RouterConfigSchema>;
export type RouterConfigInput = z.input<RouterConfigSchema>;
export type SourceConfig = RouterConfig["sources"][string];
export type DestinationConfig = RouterConfig["destinations"][string];
export type RouteConfig = RouterConfig["routes"][number];
export type VerificationConfig = SourceConfig["verify"];
