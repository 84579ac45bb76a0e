/**
 * Events: the ingest write and the delivery side's read. An event's delivery state is a JSON array in its own row
 * (migrations/0002): D1 bills rows written, so ingest writes one row whatever the fan-out.
 */
import { pendingDue, serializeDeliveries, type DeliveryState } from "../core/delivery-state.ts";
import type { NewEvent, StoredEvent } from "../core/event.ts";
import { fromStoredPayload, toStoredPayload } from "./payloads.ts";
import { toEventIdentity, toSnapshot, type DeliverySnapshot, type EventRow } from "./rows.ts";

/**
 * Stores an accepted event with its planned deliveries: one statement, one row. A duplicate (same id, so same
 * business identity) inserts nothing, atomically, by the primary key.
 */
export async function insertEvent(db: D1Database, event: NewEvent, deliveries: readonly DeliveryState[]): Promise<{ duplicate: boolean }> {
  const result = await db
    .prepare(
      `INSERT INTO events (id, idempotency_key, ingest_id, source, event_type, merchant_id, provider_id, routing,
         content_type, body, body_sha256, received_at, responder, responder_status, responder_latency_ms, responder_error, deliveries,
         pending_due)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
       ON CONFLICT (id) DO NOTHING`,
    )
    .bind(
      event.id,
      event.idempotencyKey,
      event.ingestId,
      event.source,
      event.eventType,
      event.merchantId,
      event.providerId,
      deliveries.length > 0 ? "routed" : "unrouted",
      event.contentType,
      toStoredPayload(event.body),
      event.bodySha256,
      event.receivedAt,
      event.responder?.destination ?? null,
      event.responder?.status ?? null,
      event.responder?.latencyMs ?? null,
      event.responder?.error ?? null,
      serializeDeliveries(deliveries),
      pendingDue(deliveries),
    )
    .run();
  return { duplicate: (result.meta.changes ?? 0) === 0 };
}

/** The event with its delivery state, in one statement. */
export async function loadDeliveryWork(db: D1Database, eventId: string): Promise<{ event: StoredEvent; snapshot: DeliverySnapshot } | null> {
  const row = await db
    .prepare(
      `SELECT id, ingest_id, source, event_type, merchant_id, provider_id, content_type, body, received_at, deliveries, version
       FROM events WHERE id = ?1`,
    )
    .bind(eventId)
    .first<EventRow>();
  if (!row) return null;
  return {
    event: { ...toEventIdentity(row), ingestId: row.ingest_id, contentType: row.content_type, body: fromStoredPayload(row.body) },
    snapshot: toSnapshot(row),
  };
}

