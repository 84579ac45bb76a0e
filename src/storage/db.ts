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

type EventIdentityRow = Pick<EventRow, "id" | "source" | "event_type" | "merchant_id" | "provider_id" | "received_at">;

function toEventIdentity(row: EventIdentityRow) {
  return {
    id: row.id,
    source: row.source,
    eventType: row.event_type,
    merchantId: row.merchant_id,
    providerId: row.provider_id,
    receivedAt: row.received_at,
  };
}

function toStoredEvent(row: EventRow): StoredEvent {
  return { ...toEventIdentity(row), contentType: row.content_type, body: fromStoredPayload(row.body) };
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
  dead: readonly { key: DeliveryKey; reason: string }[],
  now: number,
): Promise<number> {
  if (dead.length === 0) return 0;
  const results = await db.batch(
    dead.map(({ key, reason }) =>
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

// ---------------------------------------------------------------------------------------------------------------
// Admin queries. Events carry no secondary index (every index adds a billed row write to each ingest), so these
// scan; they are operator queries, bounded by LIMIT and by the time range given.

export type EventStatusFilter = "routed" | "unrouted" | "delivered" | "failing" | "dead";

export interface EventFilter {
  source?: string;
  eventType?: string;
  merchantId?: string;
  providerId?: string;
  status?: EventStatusFilter;
  since?: number;
  until?: number;
}

export interface EventCursor {
  receivedAt: number;
  id: string;
}

export interface EventSummary {
  id: string;
  source: string;
  eventType: string;
  merchantId: string | null;
  providerId: string | null;
  routing: "routed" | "unrouted";
  receivedAt: number;
  deliveries: { pending: number; delivered: number; dead: number; failing: number };
}

export interface EventDetail extends EventSummary {
  idempotencyKey: string;
  contentType: string;
  body: Uint8Array;
  bodySha256: string;
  responder: { destination: string; status: number | null; latencyMs: number | null; error: string | null } | null;
}

export interface DeliveryDetail extends Delivery {
  createdAt: number;
  attemptLog: AttemptRecord[];
}

// The latest generation of each (event, destination) is its current state; older generations are replay history.
const LATEST_DELIVERIES = `
  SELECT d.* FROM deliveries d
  WHERE d.generation = (SELECT MAX(generation) FROM deliveries x WHERE x.event_id = d.event_id AND x.destination = d.destination)`;

const EVENT_SUMMARY_COLUMNS = `
  e.id, e.source, e.event_type, e.merchant_id, e.provider_id, e.routing, e.received_at,
  COALESCE(SUM(l.status = 'pending' AND l.attempts = 0), 0) AS pending,
  COALESCE(SUM(l.status = 'delivered'), 0) AS delivered,
  COALESCE(SUM(l.status = 'dead'), 0) AS dead,
  COALESCE(SUM(l.status = 'pending' AND l.attempts > 0), 0) AS failing`;

interface EventSummaryRow {
  id: string;
  source: string;
  event_type: string;
  merchant_id: string | null;
  provider_id: string | null;
  routing: "routed" | "unrouted";
  received_at: number;
  pending: number;
  delivered: number;
  dead: number;
  failing: number;
}

function toEventSummary(row: EventSummaryRow): EventSummary {
  return {
    ...toEventIdentity(row),
    routing: row.routing,
    deliveries: { pending: row.pending, delivered: row.delivered, dead: row.dead, failing: row.failing },
  };
}

const STATUS_HAVING: Record<EventStatusFilter, string> = {
  routed: "e.routing = 'routed'",
  unrouted: "e.routing = 'unrouted'",
  delivered: "e.routing = 'routed' AND COUNT(l.event_id) > 0 AND SUM(l.status = 'delivered') = COUNT(l.event_id)",
  failing: "SUM(l.status = 'pending' AND l.attempts > 0) > 0",
  dead: "SUM(l.status = 'dead') > 0",
};

/** Newest first, keyset-paginated on (received_at, id): events arriving meanwhile land before page one. */
/**
 * Builds a WHERE clause from conditions written with bare `?`, numbering each as the next bound parameter
 * (D1 takes `?N`), so callers never count parameters by hand.
 */
function sqlConditions() {
  const clauses: string[] = [];
  const params: unknown[] = [];
  const bind = (value: unknown) => {
    params.push(value);
    return `?${params.length}`;
  };
  return {
    params,
    bind,
    add(clause: string, ...values: unknown[]) {
      clauses.push(values.reduce<string>((text, value) => text.replace(/\?(?!\d)/, bind(value)), clause));
    },
    where: () => (clauses.length ? `WHERE ${clauses.join(" AND ")}` : ""),
  };
}

export async function listEvents(db: D1Database, filter: EventFilter, cursor: EventCursor | null, limit: number): Promise<EventSummary[]> {
  const conditions = sqlConditions();
  if (filter.source !== undefined) conditions.add("e.source = ?", filter.source);
  if (filter.eventType !== undefined) conditions.add("e.event_type = ?", filter.eventType);
  if (filter.merchantId !== undefined) conditions.add("e.merchant_id = ?", filter.merchantId);
  if (filter.providerId !== undefined) conditions.add("e.provider_id = ?", filter.providerId);
  if (filter.since !== undefined) conditions.add("e.received_at >= ?", filter.since);
  if (filter.until !== undefined) conditions.add("e.received_at < ?", filter.until);
  if (cursor) conditions.add("(e.received_at < ? OR (e.received_at = ? AND e.id < ?))", cursor.receivedAt, cursor.receivedAt, cursor.id);
  const sql = `SELECT ${EVENT_SUMMARY_COLUMNS}
    FROM events e LEFT JOIN (${LATEST_DELIVERIES}) l ON l.event_id = e.id
    ${conditions.where()}
    GROUP BY e.id
    ${filter.status ? `HAVING ${STATUS_HAVING[filter.status]}` : ""}
    ORDER BY e.received_at DESC, e.id DESC
    LIMIT ${conditions.bind(limit)}`;
  const { results } = await db.prepare(sql).bind(...conditions.params).all<EventSummaryRow>();
  return results.map(toEventSummary);
}

export async function getEventDetail(db: D1Database, eventId: string): Promise<{ event: EventDetail; deliveries: DeliveryDetail[] } | null> {
  const [eventResult, deliveryResult] = await db.batch([
    db
      .prepare(
        `SELECT ${EVENT_SUMMARY_COLUMNS}, e.idempotency_key, e.content_type, e.body, e.body_sha256,
                e.responder, e.responder_status, e.responder_latency_ms, e.responder_error
         FROM events e LEFT JOIN (${LATEST_DELIVERIES}) l ON l.event_id = e.id
         WHERE e.id = ?1 GROUP BY e.id`,
      )
      .bind(eventId),
    db
      .prepare(
        `SELECT event_id, destination, generation, route, status, attempts, next_attempt_at, last_status_code, last_error,
                completed_at, created_at, attempt_log
         FROM deliveries WHERE event_id = ?1 ORDER BY destination, generation`,
      )
      .bind(eventId),
  ]);
  type Row = EventSummaryRow & {
    idempotency_key: string;
    content_type: string;
    body: unknown;
    body_sha256: string;
    responder: string | null;
    responder_status: number | null;
    responder_latency_ms: number | null;
    responder_error: string | null;
  };
  const row = (eventResult?.results as Row[] | undefined)?.[0];
  if (!row) return null;
  const event: EventDetail = {
    ...toEventSummary(row),
    idempotencyKey: row.idempotency_key,
    contentType: row.content_type,
    body: fromStoredPayload(row.body),
    bodySha256: row.body_sha256,
    responder: row.responder
      ? { destination: row.responder, status: row.responder_status, latencyMs: row.responder_latency_ms, error: row.responder_error }
      : null,
  };
  const deliveries = ((deliveryResult?.results ?? []) as (DeliveryRow & { created_at: number; attempt_log: string })[]).map((r) => ({
    ...toDelivery(r),
    createdAt: r.created_at,
    attemptLog: JSON.parse(r.attempt_log) as AttemptRecord[],
  }));
  return { event, deliveries };
}

/**
 * Adds a new generation for each named destination of an event; the old rows stay as history. The generation is
 * computed in SQL, and the (event, destination, generation) key makes a concurrent replay of the same pair fail
 * rather than double up.
 */
export async function insertReplayDeliveries(
  db: D1Database,
  targets: readonly { eventId: string; destination: string; route: string }[],
  now: number,
): Promise<DeliveryKey[]> {
  if (targets.length === 0) return [];
  const results = await db.batch(
    targets.map((target) =>
      db
        .prepare(
          `INSERT INTO deliveries (event_id, destination, generation, route, status, created_at, next_attempt_at)
           SELECT ?1, ?2, COALESCE(MAX(generation), 0) + 1, ?3, 'pending', ?4, ?4 FROM deliveries WHERE event_id = ?1 AND destination = ?2
           RETURNING event_id, destination, generation`,
        )
        .bind(target.eventId, target.destination, target.route, now),
    ),
  );
  return results.flatMap((result) =>
    (result.results as { event_id: string; destination: string; generation: number }[]).map((row) => ({
      eventId: row.event_id,
      destination: row.destination,
      generation: row.generation,
    })),
  );
}

export interface DeliveryFilter {
  destination?: string;
  status: DeliveryStatus | "failing";
  since?: number;
  until?: number;
}

export interface DeliveryPageCursor {
  eventId: string;
  destination: string;
}

export interface CurrentDelivery extends Delivery {
  createdAt: number;
}

function deliveryConditions(filter: DeliveryFilter, cursor: DeliveryPageCursor | null) {
  const conditions = sqlConditions();
  if (filter.status === "failing") conditions.add("l.status = 'pending' AND l.attempts > 0");
  else conditions.add("l.status = ?", filter.status);
  if (filter.destination !== undefined) conditions.add("l.destination = ?", filter.destination);
  if (filter.since !== undefined) conditions.add("l.created_at >= ?", filter.since);
  if (filter.until !== undefined) conditions.add("l.created_at < ?", filter.until);
  if (cursor) conditions.add("(l.event_id > ? OR (l.event_id = ? AND l.destination > ?))", cursor.eventId, cursor.eventId, cursor.destination);
  return conditions;
}

/** The current (latest-generation) deliveries matching a filter, in key order for stable paging. */
export async function listCurrentDeliveries(
  db: D1Database,
  filter: DeliveryFilter,
  cursor: DeliveryPageCursor | null,
  limit: number,
): Promise<CurrentDelivery[]> {
  const conditions = deliveryConditions(filter, cursor);
  const { results } = await db
    .prepare(
      `SELECT l.event_id, l.destination, l.generation, l.route, l.status, l.attempts, l.next_attempt_at, l.last_status_code,
              l.last_error, l.created_at, l.completed_at
       FROM (${LATEST_DELIVERIES}) l ${conditions.where()} ORDER BY l.event_id, l.destination LIMIT ${conditions.bind(limit)}`,
    )
    .bind(...conditions.params)
    .all<DeliveryRow & { created_at: number }>();
  return results.map((row) => ({ ...toDelivery(row), createdAt: row.created_at }));
}

export async function countCurrentDeliveries(db: D1Database, filter: DeliveryFilter): Promise<number> {
  const conditions = deliveryConditions(filter, null);
  const count = await db
    .prepare(`SELECT COUNT(*) AS n FROM (${LATEST_DELIVERIES}) l ${conditions.where()}`)
    .bind(...conditions.params)
    .first<number>("n");
  return count ?? 0;
}

export interface DestinationHealthRow {
  destination: string;
  delivered: number;
  failing: number;
  dead: number;
  pending: number;
  lastSuccessAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
}

/** Per destination, over deliveries created since `since`: counts by state, the last success and the last error. */
export async function destinationHealth(db: D1Database, since: number): Promise<DestinationHealthRow[]> {
  const { results } = await db
    .prepare(
      `SELECT d.destination,
              SUM(d.status = 'delivered') AS delivered,
              SUM(d.status = 'pending' AND d.attempts > 0) AS failing,
              SUM(d.status = 'dead') AS dead,
              SUM(d.status = 'pending' AND d.attempts = 0) AS pending,
              MAX(CASE WHEN d.status = 'delivered' THEN d.completed_at END) AS last_success_at,
              (SELECT x.last_error FROM deliveries x WHERE x.destination = d.destination AND x.last_error IS NOT NULL AND x.created_at >= ?1
                 ORDER BY COALESCE(x.completed_at, x.next_attempt_at) DESC LIMIT 1) AS last_error,
              MAX(CASE WHEN d.last_error IS NOT NULL THEN COALESCE(d.completed_at, d.next_attempt_at) END) AS last_error_at
       FROM deliveries d WHERE d.created_at >= ?1 GROUP BY d.destination ORDER BY d.destination`,
    )
    .bind(since)
    .all<{ destination: string; delivered: number; failing: number; dead: number; pending: number; last_success_at: number | null; last_error: string | null; last_error_at: number | null }>();
  return results.map((r) => ({
    destination: r.destination,
    delivered: r.delivered,
    failing: r.failing,
    dead: r.dead,
    pending: r.pending,
    lastSuccessAt: r.last_success_at,
    lastError: r.last_error,
    lastErrorAt: r.last_error_at,
  }));
}
