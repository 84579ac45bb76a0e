import type { DeliveryRef } from "./delivery-state.ts";

/** An accepted webhook as ingest hands it to storage: identity, routing facts and the exact bytes received. */
export interface NewEvent {
  id: string;
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
  /** Synchronous events (Weedmaps Draft): the responder's outcome. */
  responder?: { destination: string; status: number | null; latencyMs: number; error: string | null };
}

/** An event as the delivery side reads it back. */
export interface StoredEvent {
  id: string;
  ingestId: string;
  source: string;
  eventType: string;
  merchantId: string | null;
  providerId: string | null;
  contentType: string;
  body: Uint8Array;
  receivedAt: number;
}

/** A delivery anywhere: its event, destination and generation. */
export interface DeliveryKey extends DeliveryRef {
  eventId: string;
}
