import type { DeliveryRef } from "./delivery-state.ts";

/** An accepted webhook as ingest hands it to storage: identity, routing facts and the exact bytes received. */
export interface NewEvent {
  id: string;
  /**
   * Within the retry window after the shard map changed: the ids and shards earlier map versions gave this event
   * (src/core/shards.ts), where a provider's earlier delivery of it may be stored.
   */
  earlier?: readonly { shard: number; id: string }[];
  idempotencyKey: string;
  /** Random per request: tells the request that inserted the row from a concurrent duplicate. */
  ingestId: string;
  source: string;
  eventType: string;
  merchantId: string | null;
  providerId: string | null;
  contentType: string;
  body: ArrayBuffer;
  bodySha256: string;
  receivedAt: number;
  /** The provider's time of this state of the object, ms (see EventIdentity). */
  providerTimestamp: number | null;
  /** Set when the event is held: stored, acknowledged and delivered nowhere until released. */
  quarantine: Quarantine | null;
  /** Synchronous events (Weedmaps Draft): the responder's outcome, and what the provider was answered. */
  responder?: {
    destination: string;
    status: number | null;
    latencyMs: number;
    error: string | null;
    /** The status the provider received, and the answer's bytes when it passed (or was repaired). */
    answered: { status: number; body: ArrayBuffer | null };
    verdict: DraftVerdict;
  };
}

/** An event as the delivery side reads it back: its identity, and its bytes. */
export interface StoredEvent
  extends Pick<
    NewEvent,
    | "id"
    | "ingestId"
    | "source"
    | "eventType"
    | "merchantId"
    | "providerId"
    | "contentType"
    | "receivedAt"
    | "providerTimestamp"
  > {
  body: Uint8Array;
}

/**
 * Why an event is held. `merchant_mismatch`: its URL named another merchant than its signed body. `merchant_url`:
 * its URL's merchant cannot be one (a `{{merchantId}}` never filled in, two values, not an id). The others are
 * bodies that do not fit what the router assumes of the provider (BodyHold in src/core/providers/contract.ts).
 */
export const QUARANTINE_REASONS = [
  "merchant_mismatch",
  "merchant_url",
  "unidentified",
  "ambiguous_json",
  "too_many_records",
  "large_envelope_fields",
] as const;
export type QuarantineReason = (typeof QUARANTINE_REASONS)[number];

/** Why an event is held, and what its URL and its signed body each said. */
export interface Quarantine {
  reason: QuarantineReason;
  /** What was wrong, safe to show and to alert: field names and counts, never a value. */
  detail?: string;
  /** The signed field that names the merchant, where the hold is about the merchant and one applies. */
  field: string | null;
  /** The route whose `requireMerchantField` the event failed, or null when the provider's own field did. */
  route: string | null;
  /** What the URL said, or null when it said nothing and the signed field was missing. */
  queryMerchant: string | null;
  signedMerchant: string | null;
  at: number;
  releasedAt?: number;
}

/** A delivery anywhere: its event, destination and generation. */
export interface DeliveryKey extends DeliveryRef {
  eventId: string;
}

/** The outcome of checking a synchronous answer before the provider saw it. */
export interface DraftVerdict {
  outcome: "passed" | "repaired" | "rejected" | "unchecked" | "no_answer";
  /** The rule a rejected answer broke (an error code) and the field path that failed. */
  rule?: string;
  path?: string;
  repaired: string[];
  warnings: string[];
}
