/**
 * All SQL lives here. Prepared statements with ?N parameters, typed rows, and mappers so the SQL's shape stays
 * out of the rest of the code.
 *
 * An event's delivery state is a JSON array in its own row (migrations/0002): D1 bills rows written, so ingest
 * writes one row whatever the fan-out and a queue message's outcomes are recorded with one more. The rules that
 * change that state are pure (src/delivery/state.ts); this module reads it, hands it to a rule, and writes the
 * result back only if nobody wrote it meanwhile (the `version` column), re-reading and re-applying otherwise.
 */
import { pendingDue, serializeDeliveries, SUPERSEDED, type AttemptRecord, type Change, type DeliveryRef, type DeliveryState, type DeliveryStatus } from "../delivery/state";
import { logEvent } from "../log";
import { fromStoredPayload, toStoredPayload } from "./payloads";

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

/** A destination an event is routed to, and the route that sent it there. */
export interface NewDelivery {
  destination: string;
  route: string;
}

/** A delivery anywhere: its event, destination and generation. */
export interface DeliveryKey extends DeliveryRef {
  eventId: string;
}

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

/** An event's delivery state as read, with the version a write must still find. */
export interface DeliverySnapshot {
  deliveries: DeliveryState[];
  version: number;
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

interface EventRow {
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

function toSnapshot(row: Pick<EventRow, "deliveries" | "version">): DeliverySnapshot {
  return { deliveries: JSON.parse(row.deliveries) as DeliveryState[], version: row.version };
}

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

/**
 * Each round of a race has a winner, so N concurrent writers of one event need at most N rounds. The usual race is
 * the split-off retries of one fan-out landing in one consumer batch (at most `max_batch_size`, 10). A writer that
 * runs out throws, and its queue message is retried, so nothing is lost.
 */
const MAX_WRITE_ATTEMPTS = 20;

function writeDeliveries(db: D1Database, eventId: string, version: number, deliveries: readonly DeliveryState[]) {
  return db
    .prepare(`UPDATE events SET deliveries = ?3, pending_due = ?4, version = version + 1 WHERE id = ?1 AND version = ?2`)
    .bind(eventId, version, serializeDeliveries(deliveries), pendingDue(deliveries));
}

/**
 * Applies a rule to one event's delivery state and writes the result, starting from `snapshot` if the caller has
 * just read it. Returns null if the event does not exist.
 */
export async function updateDeliveries<R>(
  db: D1Database,
  eventId: string,
  rule: (deliveries: DeliveryState[]) => Change<R>,
  snapshot?: DeliverySnapshot,
): Promise<R | null> {
  let current: DeliverySnapshot | null = snapshot ?? null;
  for (let attempt = 1; ; attempt++) {
    if (!current) {
      const row = await db.prepare(`SELECT deliveries, version FROM events WHERE id = ?1`).bind(eventId).first<EventRow>();
      if (!row) return null;
      current = toSnapshot(row);
    }
    const change = rule(current.deliveries);
    if (change.deliveries === current.deliveries) return change.result;
    const written = await writeDeliveries(db, eventId, current.version, change.deliveries).run();
    if ((written.meta.changes ?? 0) === 1) return change.result;
    // Another writer (a split-off retry, a replay, a redelivered message) got there first: re-read and re-apply.
    if (attempt >= MAX_WRITE_ATTEMPTS) throw new Error(`delivery state of ${eventId} kept changing under ${MAX_WRITE_ATTEMPTS} writes`);
    current = null;
  }
}

/**
 * The same for many events at once: one read and one batch of conditional writes; only an event whose write lost
 * a race goes round again on its own. Events that do not exist are left out of the result.
 */
export async function updateDeliveriesOfEvents<R>(
  db: D1Database,
  eventIds: readonly string[],
  rule: (eventId: string, deliveries: DeliveryState[]) => Change<R>,
): Promise<Map<string, R>> {
  const results = new Map<string, R>();
  if (eventIds.length === 0) return results;
  const { results: rows } = await db
    .prepare(`SELECT id, deliveries, version FROM events WHERE id IN (SELECT value FROM json_each(?1))`)
    .bind(JSON.stringify([...new Set(eventIds)]))
    .all<Pick<EventRow, "id" | "deliveries" | "version">>();
  const writes: { eventId: string; version: number; change: Change<R> }[] = [];
  for (const row of rows) {
    const snapshot = toSnapshot(row);
    const change = rule(row.id, snapshot.deliveries);
    if (change.deliveries === snapshot.deliveries) results.set(row.id, change.result);
    else writes.push({ eventId: row.id, version: snapshot.version, change });
  }
  if (writes.length > 0) {
    const written = await db.batch(writes.map((w) => writeDeliveries(db, w.eventId, w.version, w.change.deliveries)));
    for (const [i, w] of writes.entries()) {
      if ((written[i]?.meta.changes ?? 0) === 1) {
        results.set(w.eventId, w.change.result);
        continue;
      }
      // The others are written already, so their results must reach the caller even if this one keeps failing:
      // it is left out, as if it had not been named, and the caller's next pass picks it up.
      try {
        const retried = await updateDeliveries(db, w.eventId, (deliveries) => rule(w.eventId, deliveries));
        if (retried !== null) results.set(w.eventId, retried);
      } catch (err) {
        logEvent("error", "delivery_state_write_failed", { eventId: w.eventId, errorMessage: err instanceof Error ? err.message : String(err) });
      }
    }
  }
  return results;
}

// ---------------------------------------------------------------------------------------------------------------
// The outbox: queue messages whose send failed, kept until the sweeper has sent them.

export async function insertOutbox(db: D1Database, messages: readonly unknown[], now: number): Promise<void> {
  if (messages.length === 0) return;
  await db.batch(
    messages.map((message) =>
      db
        .prepare(`INSERT INTO outbox (id, message, created_at, due_at) VALUES (?1, ?2, ?3, ?3)`)
        .bind(`obx_${crypto.randomUUID().replace(/-/g, "")}`, JSON.stringify(message), now),
    ),
  );
}

/**
 * Claims due outbox rows by moving their due time `claimMs` ahead, conditional on the due time read, so
 * overlapping sweeps claim each row once and a claimed row whose send then fails comes due again by itself.
 */
export async function claimDueOutbox(db: D1Database, now: number, claimMs: number, limit: number): Promise<{ id: string; message: unknown }[]> {
  const due = await db
    .prepare(`SELECT id, message, due_at FROM outbox WHERE due_at <= ?1 ORDER BY due_at LIMIT ?2`)
    .bind(now, limit)
    .all<{ id: string; message: string; due_at: number }>();
  if (due.results.length === 0) return [];
  const claims = await db.batch(
    due.results.map((row) => db.prepare(`UPDATE outbox SET due_at = ?2 WHERE id = ?1 AND due_at = ?3`).bind(row.id, now + claimMs, row.due_at)),
  );
  return due.results.filter((_, i) => (claims[i]?.meta.changes ?? 0) === 1).map((row) => ({ id: row.id, message: JSON.parse(row.message) as unknown }));
}

export async function deleteOutbox(db: D1Database, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.prepare(`DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?1))`).bind(JSON.stringify(ids)).run();
}

/**
 * One slice of the sweeper's walk over the events, in key order after `afterId`: how many rows it read, the last
 * key, and the events among them with a pending delivery due before `overdueBefore`.
 */
export async function scanForOverdueDeliveries(
  db: D1Database,
  afterId: string,
  limit: number,
  overdueBefore: number,
): Promise<{ scanned: number; lastId: string | null; overdueEventIds: string[] }> {
  const { results } = await db
    .prepare(
      `SELECT id, COALESCE(pending_due < ?3, 0) AS overdue FROM events WHERE id > ?1 ORDER BY id LIMIT ?2`,
    )
    .bind(afterId, limit, overdueBefore)
    .all<{ id: string; overdue: number }>();
  return { scanned: results.length, lastId: results.at(-1)?.id ?? null, overdueEventIds: results.filter((r) => r.overdue === 1).map((r) => r.id) };
}

export async function getSweeperState(db: D1Database, name: string): Promise<string | null> {
  return db.prepare(`SELECT value FROM sweeper_state WHERE name = ?1`).bind(name).first<string>("value");
}

export async function setSweeperState(db: D1Database, name: string, value: string): Promise<void> {
  await db
    .prepare(`INSERT INTO sweeper_state (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`)
    .bind(name, value)
    .run();
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

function toDeliveryDetail(eventId: string, { log, superseded: _history, ...state }: DeliveryState): DeliveryDetail {
  return { eventId, ...state, attemptLog: log };
}

// Every delivery generation as a row of its own, unpacked from the events' JSON arrays, with the column names the
// old deliveries table had. CURRENT_DELIVERIES keeps the generation of each (event, destination) that is not
// replay history.
const DELIVERY_ROWS = `
  SELECT e.id AS event_id, j.value ->> 'destination' AS destination, j.value ->> 'generation' AS generation,
         j.value ->> 'route' AS route, j.value ->> 'status' AS status, j.value ->> 'attempts' AS attempts,
         j.value ->> 'createdAt' AS created_at, j.value ->> 'nextAttemptAt' AS next_attempt_at,
         j.value ->> 'lastStatusCode' AS last_status_code, j.value ->> 'lastError' AS last_error,
         j.value ->> 'completedAt' AS completed_at, j.value ->> 'superseded' AS superseded, j.value AS state
  FROM events e, json_each(e.deliveries) j`;
const CURRENT_DELIVERIES = `SELECT * FROM (${DELIVERY_ROWS}) WHERE superseded = 0`;

// Per event, joined to its own current deliveries (`LEFT JOIN json_each(e.deliveries) l ON ${CURRENT_ELEMENT}`).
const CURRENT_ELEMENT = `l.value ->> 'superseded' = 0`;
const EVENT_SUMMARY_COLUMNS = `
  e.id, e.source, e.event_type, e.merchant_id, e.provider_id, e.routing, e.received_at,
  COALESCE(SUM(l.value ->> 'status' = 'pending' AND l.value ->> 'attempts' = 0), 0) AS pending,
  COALESCE(SUM(l.value ->> 'status' = 'delivered'), 0) AS delivered,
  COALESCE(SUM(l.value ->> 'status' = 'dead'), 0) AS dead,
  COALESCE(SUM(l.value ->> 'status' = 'pending' AND l.value ->> 'attempts' > 0), 0) AS failing`;

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
  delivered: "e.routing = 'routed' AND COUNT(l.value) > 0 AND SUM(l.value ->> 'status' = 'delivered') = COUNT(l.value)",
  failing: "SUM(l.value ->> 'status' = 'pending' AND l.value ->> 'attempts' > 0) > 0",
  dead: "SUM(l.value ->> 'status' = 'dead') > 0",
};

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

/** Newest first, keyset-paginated on (received_at, id): events arriving meanwhile land before page one. */
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
    FROM events e LEFT JOIN json_each(e.deliveries) l ON ${CURRENT_ELEMENT}
    ${conditions.where()}
    GROUP BY e.id
    ${filter.status ? `HAVING ${STATUS_HAVING[filter.status]}` : ""}
    ORDER BY e.received_at DESC, e.id DESC
    LIMIT ${conditions.bind(limit)}`;
  const { results } = await db.prepare(sql).bind(...conditions.params).all<EventSummaryRow>();
  return results.map(toEventSummary);
}

export async function getEventDetail(db: D1Database, eventId: string): Promise<{ event: EventDetail; deliveries: DeliveryDetail[] } | null> {
  type Row = EventSummaryRow & {
    idempotency_key: string;
    content_type: string;
    body: unknown;
    body_sha256: string;
    responder: string | null;
    responder_status: number | null;
    responder_latency_ms: number | null;
    responder_error: string | null;
    all_deliveries: string;
  };
  const row = await db
    .prepare(
      `SELECT ${EVENT_SUMMARY_COLUMNS}, e.idempotency_key, e.content_type, e.body, e.body_sha256,
              e.responder, e.responder_status, e.responder_latency_ms, e.responder_error, e.deliveries AS all_deliveries
       FROM events e LEFT JOIN json_each(e.deliveries) l ON ${CURRENT_ELEMENT}
       WHERE e.id = ?1 GROUP BY e.id`,
    )
    .bind(eventId)
    .first<Row>();
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
  const deliveries = (JSON.parse(row.all_deliveries) as DeliveryState[])
    .map((state) => toDeliveryDetail(eventId, state))
    .sort((x, y) => (x.destination === y.destination ? x.generation - y.generation : x.destination < y.destination ? -1 : 1));
  return { event, deliveries };
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
      `SELECT l.event_id, l.state
       FROM (${CURRENT_DELIVERIES}) l ${conditions.where()} ORDER BY l.event_id, l.destination LIMIT ${conditions.bind(limit)}`,
    )
    .bind(...conditions.params)
    .all<{ event_id: string; state: string }>();
  return results.map((row) => {
    const { attemptLog: _log, ...delivery } = toDeliveryDetail(row.event_id, JSON.parse(row.state) as DeliveryState);
    return delivery;
  });
}

export async function countCurrentDeliveries(db: D1Database, filter: DeliveryFilter): Promise<number> {
  const conditions = deliveryConditions(filter, null);
  const count = await db
    .prepare(`SELECT COUNT(*) AS n FROM (${CURRENT_DELIVERIES}) l ${conditions.where()}`)
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

/**
 * Per destination, over deliveries created since `since`: the current generations by state (a replayed delivery
 * counts once, as its latest generation), and the last success and last error over every generation.
 */
export async function destinationHealth(db: D1Database, since: number): Promise<DestinationHealthRow[]> {
  const { results } = await db
    .prepare(
      `WITH d AS (SELECT * FROM (${DELIVERY_ROWS}) WHERE created_at >= ?1),
            -- SQLite takes a bare column of a MAX() aggregate from the row holding the maximum: the latest error.
            -- A generation closed by a replay is bookkeeping, not an error of the destination.
            errors AS (SELECT destination, last_error, MAX(COALESCE(completed_at, next_attempt_at)) AS last_error_at
                       FROM d WHERE last_error IS NOT NULL AND last_error <> ?2 GROUP BY destination)
       SELECT d.destination,
              SUM(d.superseded = 0 AND d.status = 'delivered') AS delivered,
              SUM(d.superseded = 0 AND d.status = 'pending' AND d.attempts > 0) AS failing,
              SUM(d.superseded = 0 AND d.status = 'dead') AS dead,
              SUM(d.superseded = 0 AND d.status = 'pending' AND d.attempts = 0) AS pending,
              MAX(CASE WHEN d.status = 'delivered' THEN d.completed_at END) AS last_success_at,
              errors.last_error, errors.last_error_at
       FROM d LEFT JOIN errors ON errors.destination = d.destination
       GROUP BY d.destination ORDER BY d.destination`,
    )
    .bind(since, SUPERSEDED)
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
