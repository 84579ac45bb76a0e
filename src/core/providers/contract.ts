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
  /** The source's `eventTypeField` and `idempotencyFields` settings apply (the generic adapter); others derive these themselves. */
  readonly configurableIdentity?: boolean;
  /**
   * The business objects in one payload (the payload itself, or the entries of an envelope) and the fields, relative
   * to each, that make it a distinct event. `npm run send` rewrites them to make new events from a fixture.
   */
  records(payload: unknown): unknown[];
  readonly identityFields?: { id: string; updatedAt?: string };
  /** Pure: what the event is, whose it is, and the key that makes a provider retry a duplicate. */
  identify(input: IdentifyInput): EventIdentity | { error: "missing_event_type" };
}

export interface IdentifyInput {
  sourceName: string;
  source: SourceConfig;
  /** The event segment of the path (`/webhooks/weedmaps/draft` gives "draft"), if any. */
  pathEvent: string | undefined;
  /** The merchant from the query (`?merchant_id=…`), unsigned. */
  queryMerchant: string | undefined;
  /** Parsed JSON body, or undefined for a source that accepts non-JSON bodies. */
  payload: unknown;
  bodySha256: string;
}

export interface EventIdentity {
  eventType: string;
  merchantId: string | null;
  /** The provider's own id for the business object (Weedmaps orderId, Leaf Trade id). */
  providerId: string | null;
  /** Derived from the provider's business identity, so a provider retry is recognised as a duplicate. */
  idempotencyKey: string;
  /** What route conditions and merchant checks read fields from. */
  subject: unknown;
}

/** The adapters a deployment knows, by name. */
export type ProviderRegistry = Readonly<Record<string, ProviderAdapter>>;

export function keyPart(value: string | null | undefined): string {
  return value === null || value === undefined ? "-" : encodeURIComponent(value);
}
