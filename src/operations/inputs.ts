/**
 * The input of every operator action, validated once: the admin API declares these as its routes' request schemas
 * (so the OpenAPI document shows them), and the dashboard parses each form into the same schema. The same bad input
 * is therefore refused with the same code and the same field messages through either transport.
 *
 * Built with @hono/zod-openapi's `z` (zod with `.openapi()` for descriptions and examples); nothing here runs HTTP.
 */
import { z } from "@hono/zod-openapi";
import { RouterError } from "../core/errors.ts";
import { EVENT_ID_PATTERN } from "../core/event-id.ts";
import { CANCELED_REASONS, RELAY_STATUSES } from "../core/relay.ts";

const IsoTime = z.iso.datetime({ offset: true }).openapi({ example: "2026-11-23T10:00:00Z" });
export const EventId = z
  .string()
  .regex(EVENT_ID_PATTERN)
  .openapi({ example: "evt_0_4f9344edaaa2eff83d69addb27097728" });
export const Name = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/);
const Limit = z.coerce.number().int().min(1).max(200).default(50);

/** A refusal naming each bad field: `field: message`, the same words through the API and the dashboard. */
export function invalidInput(error: z.ZodError): RouterError {
  return new RouterError("invalid_request", {
    details: error.issues.map((issue) => `${issue.path.join(".") || "(body)"}: ${issue.message}`),
  });
}

/**
 * Parses an action's input, or throws `invalid_request` naming each bad field. A key whose value is undefined is
 * left out first, as JSON leaves it out: zod tells an absent key from a present undefined one, and a form's empty
 * field must read as the API's missing one.
 */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const given =
    input !== null && typeof input === "object" && !Array.isArray(input)
      ? Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined))
      : input;
  const parsed = schema.safeParse(given);
  if (!parsed.success) throw invalidInput(parsed.error);
  return parsed.data;
}

export const EVENT_STATUSES = ["routed", "unrouted", "delivered", "failing", "dead", "quarantined"] as const;

export const ListEventsQuery = z.object({
  source: Name.optional(),
  eventType: z.string().max(63).optional(),
  merchantId: z.string().max(255).optional(),
  orderId: z
    .string()
    .max(255)
    .optional()
    .openapi({ description: "The provider's order id (Weedmaps orderId, Leaf Trade id)." }),
  status: z.enum(EVENT_STATUSES).optional(),
  since: IsoTime.optional(),
  until: IsoTime.optional(),
  limit: Limit,
  cursor: z.string().max(200).optional().openapi({ description: "`nextCursor` from the previous page." }),
});

export const EventIdParams = z.object({ eventId: EventId.openapi({ param: { name: "eventId", in: "path" } }) });

export const AuditQuery = z.object({
  eventId: EventId.optional(),
  limit: Limit,
  cursor: z.string().max(200).optional(),
});

export const CustomerPurgeBody = z
  .object({
    providerOrderId: z
      .string()
      .min(1)
      .max(255)
      .openapi({ description: "The provider's order id (Weedmaps orderId, Leaf Trade order id)." }),
    source: Name.optional().openapi({ description: "Only this source's events of the order; default: every source." }),
    reason: z
      .string()
      .max(200)
      .optional()
      .openapi({ description: "Recorded in the audit log, e.g. a ticket number. No customer data." }),
  })
  .openapi("CustomerPurge");

export const ReplayEventBody = z.object({
  destinations: z
    .array(Name)
    .min(1)
    .max(50)
    .optional()
    .openapi({ description: "Default: every destination the event was delivered to." }),
});

const ReplayWindow = {
  destination: Name.optional(),
  since: IsoTime.openapi({ description: "Events received at or after this time. Required: a replay has a window." }),
  until: IsoTime.openapi({ description: "Events received before this time." }),
  maxCount: z.number().int().min(1).max(100_000).openapi({ description: "The most deliveries this replay re-sends." }),
};

const untilAfterSince = (b: { since: string; until: string }) => Date.parse(b.until) > Date.parse(b.since);
const UNTIL_AFTER_SINCE = { message: "must be after since", path: ["until"] };

export const BulkReplayBody = z
  .object({ status: z.enum(["dead", "failing", "delivered", "pending"]).default("dead"), ...ReplayWindow })
  .refine(untilAfterSince, UNTIL_AFTER_SINCE)
  .openapi("BulkReplayFilter");

export const RedriveBody = z.object(ReplayWindow).refine(untilAfterSince, UNTIL_AFTER_SINCE);

/** The window a redrive would take, counted before it is started (the dashboard's confirmation). */
export const RedriveWindow = z
  .object({ destination: ReplayWindow.destination, since: ReplayWindow.since, until: ReplayWindow.until })
  .refine(untilAfterSince, UNTIL_AFTER_SINCE);

export const ReplayIdParams = z.object({
  replayId: z
    .string()
    .regex(/^rpl_[0-9a-f]{32}$/)
    .openapi({ param: { name: "replayId", in: "path" } }),
});

export const DeadLettersQuery = z.object({
  destination: Name.optional(),
  since: IsoTime.optional(),
  until: IsoTime.optional(),
  limit: Limit,
  cursor: z.string().max(300).optional(),
});

export const HealthQuery = z.object({ windowHours: z.coerce.number().int().min(1).max(720).default(24) });

export const DestinationParams = z.object({
  name: Name.openapi({ param: { name: "name", in: "path" }, example: "pos" }),
});

export const PauseBody = z
  .strictObject({ reason: z.string().trim().min(1).max(200).openapi({ example: "POS maintenance window" }) })
  .openapi("PauseRequest");

export const DryRunBody = z
  .object({
    source: Name,
    eventType: z.string().max(63).optional().openapi({
      description:
        "As the path would give it, e.g. draft or order-v4. Weedmaps: derived from payload.status when omitted.",
    }),
    merchantId: z.string().max(255).optional(),
    payload: z.unknown().openapi({ type: "object" }),
  })
  .openapi("DryRunRequest");

/** A proposed configuration: any JSON object; its sections are checked by the config parser, field by field. */
export const ProposedConfig = z.record(z.string(), z.unknown());

/** The status relay: the order an operator forces an update for (docs/relay.md). */
export const RelayOrderParams = z.object({
  source: Name.openapi({ param: { name: "source", in: "path" }, example: "weedmaps" }),
  orderId: z
    .string()
    .min(1)
    .max(255)
    .openapi({ param: { name: "orderId", in: "path" }, example: "9763822" }),
});

/**
 * A forced update: sent even when it moves the order back or out of an ending, or repeats its status. The reason is
 * kept in the audit log.
 */
export const RelayForceBody = z
  .strictObject({
    status: z.enum(RELAY_STATUSES),
    canceledReason: z.enum(CANCELED_REASONS).optional(),
    reason: z.string().trim().min(1).max(200).openapi({ example: "the POS voided the wrong order" }),
  })
  .openapi("RelayForceRequest");
