import type { SourceConfig } from "../../config/schema";

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

export interface ProviderAdapter {
  /** Used when the source's `verify` block leaves header or encoding unset. */
  signatureDefaults?: { header: string; encoding: "base64" | "hex" };
  /** An event type in the path is required (Leaf Trade has one URL per webhook type). */
  requiresPathEvent: boolean;
  identify(input: IdentifyInput): EventIdentity | { error: "missing_event_type" };
}

export function keyPart(value: string | null | undefined): string {
  return value === null || value === undefined ? "-" : encodeURIComponent(value);
}
