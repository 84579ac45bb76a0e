import type { AnswerCheck } from "../answer.ts";
import type { SourceConfig } from "../config/schema.ts";

/**
 * What a provider is to the router. A new provider is one file implementing this, one fixture folder
 * (test/fixtures/providers/<name>/) and one test; the registry lists it, and the config's provider enum, the
 * ingest path, the fixture signing in the tests and `npm run send` all read what it declares here.
 */
export interface ProviderAdapter {
  /** The name configs use (`"provider": "<name>"`) and the fixture folder's name. */
  readonly name: string;
  /**
   * The HMAC-SHA256 scheme a source of this provider signs with when its `verify` block leaves header or encoding
   * unset. A provider without one (generic) must have both configured.
   */
  readonly signature?: { header: string; encoding: "base64" | "hex"; prefix?: string };
  /** Whether the webhook type must be the last path segment (`/webhooks/<source>/<type>`): Leaf Trade has one URL per type. */
  readonly pathEvent: "required" | "optional";
  /**
   * Event types the provider waits for an answer to: a route's `responder` answers in the same response (Weedmaps
   * Draft is the customer's checkout). Empty for providers that only notify.
   */
  readonly synchronousEvents: readonly string[];
  /**
   * For synchronous events: what a valid answer to `request` is. Pure. Gets the parsed answer once the generic
   * rules (200, JSON, size, depth) hold; in `repair` mode it may mend what the answer may not change. `source` is
   * the config of the source the request came in on, for its per-source settings (Weedmaps' `serviceFee`). Omitted:
   * any JSON answer is relayed.
   */
  checkAnswer?(request: unknown, answer: unknown, mode: "strict" | "repair", source: SourceConfig): AnswerCheck;
  /** The source's `eventTypeField` and `idempotencyFields` settings apply (the generic adapter); others derive these themselves. */
  readonly configurableIdentity?: boolean;
  /**
   * The only event types this provider sends (Leaf Trade's three webhook types). A source accepts these, or the
   * ones its config names; any other is refused. Omitted: the set is open, and a type never seen before is stored.
   */
  readonly eventTypes?: readonly string[];
  /**
   * The signed field of each record that names the merchant, when the provider's body carries one (Leaf Trade's
   * dispensary license). It is the merchant; the URL's merchant is only a fallback. A source may name another.
   */
  readonly merchantField?: string;
  /**
   * Which kind of object an event type is about, where one provider id can name objects of different kinds (Leaf
   * Trade's order 42 and product issue 42): `"ordering": "latest"` compares times within one kind only.
   */
  orderingKind?(eventType: string): string;
  /**
   * The business objects in one payload (the payload itself, or the entries of an envelope) and the fields, relative
   * to each, that make it a distinct event. `npm run send` rewrites them to make new events from a fixture.
   */
  records(payload: unknown): unknown[];
  /**
   * Where the provider's bodies (and, for synchronous events, the answers) carry customer data: the admin API
   * redacts these unless a reveal is asked for and audited. Paths as in src/core/redact.ts. A source may add more.
   */
  readonly piiPaths: readonly string[];
  readonly identityFields?: { id: string; updatedAt?: string };
  /**
   * The fields of a record (relative to it, as `records` returns them) that decide what the event is, whose it is
   * and which state of its object: a signed body that sends one of these twice is ambiguous (JSON.parse keeps the
   * last, a destination's parser may keep the first) and is held. `recordsPath` is where an envelope keeps them.
   */
  readonly identityPaths: readonly string[];
  readonly recordsPath?: string;
  /**
   * Pure: what the events in a verified body are, and the key that makes a provider retry a duplicate. Only the
   * signed bytes decide: the path's event type (if any) is checked against the body, never taken over it, and no
   * key includes the path or the query, so one body posted anywhere is one event.
   */
  identify(input: IdentifyInput): IdentifyResult;
}

export interface IdentifyInput {
  sourceName: string;
  source: SourceConfig;
  /** The event segment of the path (`/webhooks/weedmaps/draft` gives "draft"), if any. Unsigned. */
  pathEvent: string | undefined;
  /** Parsed JSON body, or undefined for a source that accepts non-JSON bodies. */
  payload: unknown;
  bodySha256: string;
  /** The signed text the payload was parsed from, so an envelope is cut into bodies without re-serialising it. */
  text?: string;
  /** The most records one body may make events of (`limits.maxRecordsPerBody`); past it the body is held whole. */
  maxRecords?: number;
}

export type IdentifyResult =
  | { ok: true; events: EventIdentity[] }
  | {
      ok: false;
      /**
       * The path names another type than the body clearly is: a cross-type replay, refused (422). A body that is
       * merely not what we expected is never refused: it comes back as one event with a `hold`.
       */
      code: "event_type_mismatch";
      /** For the log only; never customer data. */
      detail: string;
    };

/**
 * Why a verified body is stored whole and delivered nowhere until an operator releases it: it did not fit what the
 * router assumes of its provider. Signed bytes are never refused for our guesses, and never delivered unchecked.
 */
export interface BodyHold {
  reason: "unidentified" | "ambiguous_json" | "too_many_records" | "large_envelope_fields";
  /** Safe to show and alert: names fields and counts, never a value. */
  detail: string;
}

export interface EventIdentity {
  eventType: string;
  /** The provider's own id for the business object (Weedmaps orderId, Leaf Trade id). */
  providerId: string | null;
  /** The provider's time of this state of the object (Weedmaps lastModifiedAt, Leaf Trade updated_at), ms. */
  providerTimestamp: number | null;
  /** Derived from the provider's business identity, so a provider retry is recognised as a duplicate. */
  idempotencyKey: string;
  /** The record route conditions and merchant fields are read from (for Leaf Trade, the order inside `results`). */
  subject: unknown;
  /**
   * When one payload carries several events (a Leaf Trade V4 envelope of several orders), the JSON stored and
   * delivered for this one: the envelope with this entry alone. Omitted: the request's own bytes.
   */
  body?: string;
  /** Set when the body is held whole (see BodyHold): one event, keyed by its bytes, so a retry is a duplicate. */
  hold?: BodyHold;
}

/** The whole signed body as one held event, keyed by its hash: stored once, delivered nowhere until released. */
export function heldBody(
  provider: string,
  input: Pick<IdentifyInput, "sourceName" | "bodySha256">,
  eventType: string,
  hold: BodyHold,
  subject: unknown,
  providerId: string | null = null,
): EventIdentity {
  const idempotencyKey = [provider, input.sourceName, eventType, "held", `sha256:${input.bodySha256}`].join(":");
  return { eventType, providerId, providerTimestamp: null, idempotencyKey, subject, hold };
}

/** The event type of a body that names none: the path's, or this placeholder. */
export const UNIDENTIFIED_TYPE = "unidentified";

/** A provider timestamp (ISO 8601) as milliseconds, or null when absent or not a date. */
export function timestampOf(value: string | undefined): number | null {
  if (value === undefined) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

/** The adapters a deployment knows, by name. */
export type ProviderRegistry = Readonly<Record<string, ProviderAdapter>>;

export function keyPart(value: string | null | undefined): string {
  return value === null || value === undefined ? "-" : encodeURIComponent(value);
}
