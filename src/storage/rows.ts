/**
 * The events table as rows, and the mappers between its rows and the router's objects. Every module of storage
 * reads the table through these, so the shape of a row stays here.
 */
import { DeliveryStatesSchema, type DeliveryState } from "../core/delivery-state.ts";
import type { Quarantine } from "../core/event.ts";

/** An event's delivery state as read, with the version a write must still find. */
export interface DeliverySnapshot {
  deliveries: DeliveryState[];
  version: number;
}

export interface EventRow {
  id: string;
  ingest_id: string;
  source: string;
  event_type: string;
  merchant_id: string | null;
  provider_id: string | null;
  content_type: string;
  body: unknown;
  received_at: number;
  deliveries: string;
  version: number;
  provider_ts: number | null;
  quarantine: string | null;
  payload_dek: string | null;
  payload_purged_at: number | null;
}

export type EventIdentityRow = Pick<
  EventRow,
  "id" | "source" | "event_type" | "merchant_id" | "provider_id" | "received_at"
>;

export function toEventIdentity(row: EventIdentityRow) {
  return {
    id: row.id,
    source: row.source,
    eventType: row.event_type,
    merchantId: row.merchant_id,
    providerId: row.provider_id,
    receivedAt: row.received_at,
  };
}

/** The quarantine JSON as stored; written only by storage/events.ts from a core Quarantine. */
export function parseQuarantine(json: string | null): Quarantine | null {
  return json === null ? null : (JSON.parse(json) as Quarantine);
}

/** Every read of the delivery JSON is parsed against the one schema of it, never cast. */
export function parseDeliveries(json: string): DeliveryState[] {
  return DeliveryStatesSchema.parse(JSON.parse(json));
}

export function toSnapshot(row: Pick<EventRow, "deliveries" | "version">): DeliverySnapshot {
  return { deliveries: parseDeliveries(row.deliveries), version: row.version };
}
