/**
 * All SQL lives here. Prepared statements with ?N parameters, typed rows, and mappers so the SQL's shape stays
 * out of the rest of the code. Writes that must commit together go in one `db.batch()`, which is a transaction.
 */
import { fromStoredPayload, toStoredPayload } from "./payloads";

export type DeliveryStatus = "pending" | "delivered" | "dead";

export interface NewEvent {
  id: string;
  idempotencyKey: string;
  ingestId: string;
  source: string;
  eventType: string;
  merchantId: string | null;
  providerId: string | null;
  contentType: string;
  body: ArrayBuffer;
  bodySha256: string;
  receivedAt: number;
  responder?: { destination: string; status: number | null; latencyMs: number; error: string | null };
}

export interface NewDelivery {
  destination: string;
  route: string;
}

export interface DeliveryKey {
  eventId: string;
  destination: string;
  generation: number;
}

export interface StoredEvent {
  id: string;
  source: string;
  eventType: string;
  merchantId: string | null;
  providerId: string | null;
  contentType: string;
  body: Uint8Array;
  receivedAt: number;
}

export interface Delivery extends DeliveryKey {
  route: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: number;
  lastStatusCode: number | null;
  lastError: string | null;
  completedAt: number | null;
}

export interface AttemptRecord {
  attempt: number;
  at: number;
  statusCode: number | null;
  latencyMs: number;
  errorClass: string | null;
  responseExcerpt: string | null;
}

export interface AttemptOutcome {
  key: DeliveryKey;
  /** The attempt count read before sending; the update only applies if nobody recorded an attempt since. */
  previousAttempts: number;
  status: DeliveryStatus;
  nextAttemptAt: number;
  lastError: string | null;
  record: AttemptRecord;
}

interface EventRow {
  id: string;
  source: string;
  event_type: string;
  merchant_id: string | null;
  provider_id: string | null;
  content_type: string;
  body: unknown;
  received_at: number;
}

interface DeliveryRow {
  event_id: string;
  destination: string;
  generation: number;
  route: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: number;
  last_status_code: number | null;
  last_error: string | null;
  completed_at: number | null;
}

function toStoredEvent(row: EventRow): StoredEvent {
  return {
    id: row.id,
    source: row.source,
    eventType: row.event_type,
    merchantId: row.merchant_id,
    providerId: row.provider_id,
    contentType: row.content_type,
    body: fromStoredPayload(row.body),
    receivedAt: row.received_at,
  };
}

function toDelivery(row: DeliveryRow): Delivery {
  return {
    eventId: row.event_id,
    destination: row.destination,
    generation: row.generation,
    route: row.route,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastStatusCode: row.last_status_code,
    lastError: row.last_error,
    completedAt: row.completed_at,
  };
}

/**
 * Stores the event and its pending deliveries in one transaction. A duplicate (same id, so same business
 * identity) inserts nothing: the event insert does nothing on conflict, and each delivery insert only runs
 * if the event row carries this request's `ingestId`, which holds under concurrent duplicates too.
 */
export async function insertEventWithDeliveries(
  db: D1Database,
  event: NewEvent,
  deliveries: readonly NewDelivery[],
): Promise<{ duplicate: boolean }> {
  const insertEvent = db
    .prepare(
      `INSERT INTO events (id, idempotency_key, ingest_id, source, event_type, merchant_id, provider_id, routing,
         content_type, body, body_sha256, received_at, responder, responder_status, responder_latency_ms, responder_error)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
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
    );
  const insertDeliveries = deliveries.map((delivery) =>
    db
      .prepare(
        `INSERT INTO deliveries (event_id, destination, generation, route, status, created_at, next_attempt_at)
         SELECT ?1, ?2, 1, ?3, 'pending', ?4, ?4
         WHERE EXISTS (SELECT 1 FROM events WHERE id = ?1 AND ingest_id = ?5)`,
      )
      .bind(event.id, delivery.destination, delivery.route, event.receivedAt, event.ingestId),
  );
  const [eventResult] = await db.batch([insertEvent, ...insertDeliveries]);
  return { duplicate: (eventResult?.meta.changes ?? 0) === 0 };
}

/** The event and the named deliveries, in one round trip. */
export async function loadDeliveryWork(
  db: D1Database,
  eventId: string,
): Promise<{ event: StoredEvent | null; deliveries: Delivery[] }> {
  const [eventResult, deliveryResult] = await db.batch([
    db
      .prepare(
        `SELECT id, source, event_type, merchant_id, provider_id, content_type, body, received_at FROM events WHERE id = ?1`,
      )
      .bind(eventId),
    db
      .prepare(
        `SELECT event_id, destination, generation, route, status, attempts, next_attempt_at, last_status_code, last_error, completed_at
         FROM deliveries WHERE event_id = ?1`,
      )
      .bind(eventId),
  ]);
  const eventRow = (eventResult?.results as EventRow[] | undefined)?.[0];
  return {
    event: eventRow ? toStoredEvent(eventRow) : null,
    deliveries: ((deliveryResult?.results ?? []) as DeliveryRow[]).map(toDelivery),
  };
}

/** Records attempts (state, last error and the appended attempt log) with one row write each, in one batch. */
export async function recordAttemptOutcomes(db: D1Database, outcomes: readonly AttemptOutcome[]): Promise<number[]> {
  if (outcomes.length === 0) return [];
  const statements = outcomes.map((outcome) =>
    db
      .prepare(
        `UPDATE deliveries
         SET status = ?4, attempts = ?5, next_attempt_at = ?6, last_status_code = ?7, last_error = ?8,
             completed_at = CASE WHEN ?4 = 'pending' THEN NULL ELSE ?9 END,
             attempt_log = json_insert(attempt_log, '$[#]', json(?10))
         WHERE event_id = ?1 AND destination = ?2 AND generation = ?3 AND status = 'pending' AND attempts = ?11`,
      )
      .bind(
        outcome.key.eventId,
        outcome.key.destination,
        outcome.key.generation,
        outcome.status,
        outcome.record.attempt,
        outcome.nextAttemptAt,
        outcome.record.statusCode,
        outcome.lastError,
        outcome.record.at,
        JSON.stringify(outcome.record),
        outcome.previousAttempts,
      ),
  );
  const results = await db.batch(statements);
  return results.map((result) => result.meta.changes ?? 0);
}

/** Marks still-pending deliveries dead without an attempt (destination removed or disabled, queue gave up). */
export async function markDeliveriesDead(
  db: D1Database,
  keys: readonly DeliveryKey[],
  reason: string,
  now: number,
): Promise<number> {
  if (keys.length === 0) return 0;
  const results = await db.batch(
    keys.map((key) =>
      db
        .prepare(
          `UPDATE deliveries SET status = 'dead', last_error = ?4, completed_at = ?5
           WHERE event_id = ?1 AND destination = ?2 AND generation = ?3 AND status = 'pending'`,
        )
        .bind(key.eventId, key.destination, key.generation, reason, now),
    ),
  );
  return results.reduce((sum, result) => sum + (result.meta.changes ?? 0), 0);
}

/**
 * Claims pending deliveries whose attempt is overdue by more than the grace period, by moving their due time to
 * now. The claim is conditional on the due time read, so overlapping sweeps claim each delivery once.
 */
export async function claimOverdueDeliveries(
  db: D1Database,
  now: number,
  graceMs: number,
  limit: number,
): Promise<DeliveryKey[]> {
  const overdue = await db
    .prepare(
      `SELECT event_id, destination, generation, next_attempt_at FROM deliveries
       WHERE status = 'pending' AND next_attempt_at < ?1 ORDER BY next_attempt_at LIMIT ?2`,
    )
    .bind(now - graceMs, limit)
    .all<{ event_id: string; destination: string; generation: number; next_attempt_at: number }>();
  if (overdue.results.length === 0) return [];
  const claims = await db.batch(
    overdue.results.map((row) =>
      db
        .prepare(
          `UPDATE deliveries SET next_attempt_at = ?4
           WHERE event_id = ?1 AND destination = ?2 AND generation = ?3 AND status = 'pending' AND next_attempt_at = ?5`,
        )
        .bind(row.event_id, row.destination, row.generation, now, row.next_attempt_at),
    ),
  );
  return overdue.results
    .filter((_, i) => (claims[i]?.meta.changes ?? 0) === 1)
    .map((row) => ({ eventId: row.event_id, destination: row.destination, generation: row.generation }));
}
