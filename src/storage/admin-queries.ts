/**
 * Operator queries. Events carry few secondary indexes, each a billed row write per ingest: received_at (time ranges
 * and keyset pages) and a partial index of the events holding dead deliveries; an order's events are a range of the
 * primary key (src/storage/object-events.ts). Every page reads a bounded number of rows through one of them; a filter
 * none serves is applied to a bounded window (`searchEvents`).
 *
 * Events live in several databases (shards, src/core/shards.ts). A list reads the same page with the same cursor
 * from every shard at once and merges them exactly (`mergePages`): one bounded statement per shard, whatever the
 * shards hold. One event is read from the shard its id names.
 */
import {
  HELD_DUE,
  SUPERSEDED,
  type AttemptRecord,
  type DeliveryState,
  type DeliveryStatus,
} from "../core/delivery-state.ts";
import type { PayloadProtection } from "../core/envelope.ts";
import type { DeliveryKey, DraftVerdict, Quarantine } from "../core/event.ts";
import { EventPayloads } from "./payloads.ts";
import { parseDeliveries, parseQuarantine, toEventIdentity } from "./rows.ts";
import type { HoldReason } from "../core/controls.ts";
import { mergePages, type ShardPage } from "../core/shards.ts";
import { objectEventIds, type ObjectEvents } from "./object-events.ts";
import { deliveryField as f, sqlConditions } from "./sql.ts";

/** A shard's database with its id (src/config/shards.ts `shardsOf` gives them). */
export interface EventShard {
  id: number;
  db: D1Database;
}

export interface Delivery extends DeliveryKey {
  route: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: number;
  lastStatusCode: number | null;
  lastError: string | null;
  completedAt: number | null;
  /** Held by its destination's controls (src/control): pending, but not due until released. */
  heldReason?: HoldReason;
}

export type EventStatusFilter = "routed" | "unrouted" | "delivered" | "failing" | "dead" | "quarantined";

export interface EventFilter {
  source?: string;
  eventType?: string;
  merchantId?: string;
  /** The events of one object (an order id search). */
  object?: ObjectEvents;
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
  providerTimestamp: number | null;
  deliveries: { pending: number; delivered: number; dead: number; failing: number; stale: number };
  /** Each destination's current delivery, by destination name: what the dashboard's events list shows per column. */
  destinations: CurrentDelivery[];
  quarantine: Quarantine | null;
  divergentRetries: number;
}

/** One destination's current (not superseded) delivery of an event, as a list shows it. */
export interface CurrentDelivery {
  destination: string;
  status: DeliveryStatus;
  attempts: number;
  heldReason: HoldReason | null;
}

/** `json_group_array` of [destination, status, attempts, heldReason] (each element JSON, or text of JSON). */
function parseCurrent(raw: string | null): CurrentDelivery[] {
  if (!raw) return [];
  return (JSON.parse(raw) as unknown[])
    .map((el) => (typeof el === "string" ? (JSON.parse(el) as unknown) : el))
    .filter((el): el is [string, DeliveryStatus, number, HoldReason | null] => Array.isArray(el) && el[0] !== null)
    .map(([destination, status, attempts, heldReason]) => ({ destination, status, attempts, heldReason }))
    .sort((a, b) => (a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : 0));
}

export interface EventDetail extends EventSummary {
  idempotencyKey: string;
  lastDivergentRetry: { at: number; bodySha256: string } | null;
  contentType: string;
  /** Null once purged. */
  body: Uint8Array | null;
  bodySha256: string;
  payloadPurgedAt: number | null;
  /** The ring key that wraps the event's data key; null when stored unencrypted or purged. */
  payloadKey: string | null;
  /** Opens the response excerpts in `attemptLog`, which stay as stored (sealed) until a caller reveals them. */
  payloads: EventPayloads;
  responder: {
    destination: string;
    status: number | null;
    latencyMs: number | null;
    error: string | null;
    /** What the provider was answered: the status, and the bytes when they were the order. */
    answered: { status: number | null; body: Uint8Array | null };
    verdict: DraftVerdict | null;
  } | null;
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
  SELECT e.id AS event_id, ${f("j", "destination")} AS destination, ${f("j", "generation")} AS generation,
         ${f("j", "route")} AS route, ${f("j", "status")} AS status, ${f("j", "attempts")} AS attempts,
         ${f("j", "createdAt")} AS created_at, ${f("j", "nextAttemptAt")} AS next_attempt_at,
         ${f("j", "lastStatusCode")} AS last_status_code, ${f("j", "lastError")} AS last_error,
         ${f("j", "completedAt")} AS completed_at, ${f("j", "superseded")} AS superseded, j.value AS state
  FROM events e, json_each(e.deliveries) j`;
const CURRENT_DELIVERIES = `SELECT * FROM (${DELIVERY_ROWS}) WHERE superseded = 0`;

// Per event, joined to its own current deliveries (`LEFT JOIN json_each(e.deliveries) l ON ${CURRENT_ELEMENT}`).
const CURRENT_ELEMENT = `${f("l", "superseded")} = 0`;
const EVENT_SUMMARY_COLUMNS = `
  e.id, e.source, e.event_type, e.merchant_id, e.provider_id, e.routing, e.received_at, e.provider_ts, e.quarantine,
  e.divergent_retries,
  COALESCE(SUM(${f("l", "status")} = 'pending' AND ${f("l", "attempts")} = 0), 0) AS pending,
  COALESCE(SUM(${f("l", "status")} = 'stale'), 0) AS stale,
  COALESCE(SUM(${f("l", "status")} = 'delivered'), 0) AS delivered,
  COALESCE(SUM(${f("l", "status")} = 'dead'), 0) AS dead,
  COALESCE(SUM(${f("l", "status")} = 'pending' AND ${f("l", "attempts")} > 0), 0) AS failing,
  json_group_array(json_array(${f("l", "destination")}, ${f("l", "status")}, ${f("l", "attempts")}, ${f("l", "heldReason")}))
    FILTER (WHERE l.value IS NOT NULL) AS current_deliveries`;

interface EventSummaryRow {
  id: string;
  source: string;
  event_type: string;
  merchant_id: string | null;
  provider_id: string | null;
  routing: "routed" | "unrouted";
  received_at: number;
  provider_ts: number | null;
  quarantine: string | null;
  divergent_retries: number;
  pending: number;
  delivered: number;
  dead: number;
  failing: number;
  stale: number;
  current_deliveries: string | null;
}

function toEventSummary(row: EventSummaryRow): EventSummary {
  return {
    ...toEventIdentity(row),
    routing: row.routing,
    providerTimestamp: row.provider_ts,
    deliveries: {
      pending: row.pending,
      delivered: row.delivered,
      dead: row.dead,
      failing: row.failing,
      stale: row.stale,
    },
    destinations: parseCurrent(row.current_deliveries),
    quarantine: parseQuarantine(row.quarantine),
    divergentRetries: row.divergent_retries,
  };
}

const STATUS_HAVING: Record<EventStatusFilter, string> = {
  routed: "e.routing = 'routed'",
  unrouted: "e.routing = 'unrouted'",
  delivered: `e.routing = 'routed' AND COUNT(l.value) > 0 AND SUM(${f("l", "status")} = 'delivered') = COUNT(l.value)`,
  failing: `SUM(${f("l", "status")} = 'pending' AND ${f("l", "attempts")} > 0) > 0`,
  dead: `SUM(${f("l", "status")} = 'dead') > 0`,
  quarantined: "e.quarantine IS NOT NULL AND e.quarantine ->> 'releasedAt' IS NULL",
};

export async function getEventDetail(
  db: D1Database,
  protection: PayloadProtection,
  eventId: string,
): Promise<{ event: EventDetail; deliveries: DeliveryDetail[] } | null> {
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
    divergent_last_at: number | null;
    divergent_last_sha256: string | null;
    draft_answer: unknown;
    draft_answer_status: number | null;
    draft_verdict: string | null;
    payload_key: string | null;
    payload_dek: string | null;
    payload_purged_at: number | null;
  };
  const row = await db
    .prepare(
      `SELECT ${EVENT_SUMMARY_COLUMNS}, e.idempotency_key, e.content_type, e.body, e.body_sha256,
              e.responder, e.responder_status, e.responder_latency_ms, e.responder_error, e.deliveries AS all_deliveries,
              e.divergent_last_at, e.divergent_last_sha256, e.draft_answer, e.draft_answer_status, e.draft_verdict,
              e.payload_key, e.payload_dek, e.payload_purged_at
       FROM events e LEFT JOIN json_each(e.deliveries) l ON ${CURRENT_ELEMENT}
       WHERE e.id = ?1 GROUP BY e.id`,
    )
    .bind(eventId)
    .first<Row>();
  if (!row) return null;
  const payloads = await EventPayloads.open(protection, eventId, row.payload_dek);
  const purged = row.payload_purged_at !== null;
  const event: EventDetail = {
    ...toEventSummary(row),
    idempotencyKey: row.idempotency_key,
    lastDivergentRetry:
      row.divergent_last_at !== null && row.divergent_last_sha256 !== null
        ? { at: row.divergent_last_at, bodySha256: row.divergent_last_sha256 }
        : null,
    contentType: row.content_type,
    body: purged ? null : await payloads.open("body", row.body),
    bodySha256: row.body_sha256,
    payloadPurgedAt: row.payload_purged_at,
    payloadKey: row.payload_key,
    payloads,
    responder: row.responder
      ? {
          destination: row.responder,
          status: row.responder_status,
          latencyMs: row.responder_latency_ms,
          error: row.responder_error,
          answered: {
            status: row.draft_answer_status,
            body: row.draft_answer === null ? null : await payloads.open("answer", row.draft_answer),
          },
          verdict: row.draft_verdict === null ? null : (JSON.parse(row.draft_verdict) as DraftVerdict),
        }
      : null,
  };
  const deliveries = parseDeliveries(row.all_deliveries)
    .map((state) => toDeliveryDetail(eventId, state))
    .sort((x, y) =>
      x.destination === y.destination ? x.generation - y.generation : x.destination < y.destination ? -1 : 1,
    );
  return { event, deliveries };
}

export interface DeliveryFilter {
  destination?: string;
  status: DeliveryStatus | "failing";
  since?: number;
  until?: number;
}

function deliveryConditions(filter: DeliveryFilter) {
  const conditions = sqlConditions();
  if (filter.status === "failing") conditions.add("l.status = 'pending' AND l.attempts > 0");
  else conditions.add("l.status = ?", filter.status);
  if (filter.destination !== undefined) conditions.add("l.destination = ?", filter.destination);
  if (filter.since !== undefined) conditions.add("l.created_at >= ?", filter.since);
  if (filter.until !== undefined) conditions.add("l.created_at < ?", filter.until);
  return conditions;
}

export async function countCurrentDeliveries(db: D1Database, filter: DeliveryFilter): Promise<number> {
  const conditions = deliveryConditions(filter);
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

/** The most events one shard's health read looks at, newest first through the received_at index. */
export const HEALTH_LOOK = 5_000;

/**
 * Per destination, over the deliveries of events received since `since`, in every shard: the current generations by
 * state (a replayed delivery counts once, as its latest generation), summed over the shards, and the last success
 * and last error over every generation, the latest of any shard. Each shard reads at most its newest HEALTH_LOOK
 * events of the window through the received_at index, never the table: `complete` says whether that was all of it.
 */
export async function destinationHealth(
  shards: readonly EventShard[],
  since: number,
): Promise<{ rows: DestinationHealthRow[]; looked: number; complete: boolean }> {
  const perShard = await Promise.all(shards.map((s) => shardDestinationHealth(s.db, since)));
  const merged = new Map<string, DestinationHealthRow>();
  for (const row of perShard.flatMap((s) => s.rows)) {
    const seen = merged.get(row.destination);
    if (!seen) {
      merged.set(row.destination, { ...row });
      continue;
    }
    seen.delivered += row.delivered;
    seen.failing += row.failing;
    seen.dead += row.dead;
    seen.pending += row.pending;
    if (row.lastSuccessAt !== null && (seen.lastSuccessAt === null || row.lastSuccessAt > seen.lastSuccessAt))
      seen.lastSuccessAt = row.lastSuccessAt;
    if (row.lastError !== null && (seen.lastError === null || (row.lastErrorAt ?? 0) > (seen.lastErrorAt ?? 0))) {
      seen.lastError = row.lastError;
      seen.lastErrorAt = row.lastErrorAt;
    }
  }
  const rows = [...merged.values()].sort((a, b) =>
    a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : 0,
  );
  return {
    rows,
    looked: perShard.reduce((n, s) => n + s.looked, 0),
    complete: perShard.every((s) => s.looked < HEALTH_LOOK),
  };
}

async function shardDestinationHealth(
  db: D1Database,
  since: number,
): Promise<{ rows: DestinationHealthRow[]; looked: number }> {
  const looked =
    (await db
      .prepare(
        `SELECT COUNT(*) AS n FROM (SELECT 1 FROM events WHERE received_at >= ?1 ORDER BY received_at DESC LIMIT ?2)`,
      )
      .bind(since, HEALTH_LOOK)
      .first<number>("n")) ?? 0;
  const { results } = await db
    .prepare(
      `WITH recent AS (SELECT id, deliveries FROM events WHERE received_at >= ?1 ORDER BY received_at DESC LIMIT ?4),
            d AS (SELECT ${f("j", "destination")} AS destination, ${f("j", "status")} AS status,
                         ${f("j", "attempts")} AS attempts, ${f("j", "lastError")} AS last_error,
                         ${f("j", "completedAt")} AS completed_at, ${f("j", "nextAttemptAt")} AS next_attempt_at,
                         ${f("j", "superseded")} AS superseded
                  FROM recent r, json_each(r.deliveries) j),
            -- SQLite takes a bare column of a MAX() aggregate from the row holding the maximum: the latest error.
            -- A generation closed by a replay is bookkeeping, not an error of the destination.
            -- A held delivery's due time means "never" (HELD_DUE), not when its error was.
            errors AS (SELECT destination, last_error, MAX(COALESCE(completed_at, NULLIF(next_attempt_at, ?3))) AS last_error_at
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
    .bind(since, SUPERSEDED, HELD_DUE, HEALTH_LOOK)
    .all<{
      destination: string;
      delivered: number;
      failing: number;
      dead: number;
      pending: number;
      last_success_at: number | null;
      last_error: string | null;
      last_error_at: number | null;
    }>();
  const rows = results.map((r) => ({
    destination: r.destination,
    delivered: r.delivered,
    failing: r.failing,
    dead: r.dead,
    pending: r.pending,
    lastSuccessAt: r.last_success_at,
    lastError: r.last_error,
    lastErrorAt: r.last_error_at,
  }));
  return { rows, looked };
}

/**
 * At most this many events are read by one page of a search whose filters no index serves (source, type, merchant,
 * a status other than dead): the page says how far it looked, and its cursor goes on from there.
 */
export const SEARCH_WINDOW = 1_000;

export interface EventSearch {
  events: EventSummary[];
  /** Where the next page starts; null when the search reached the oldest event of every shard. */
  next: EventCursor | null;
  /**
   * Events the shards' short pages of a windowed search looked at, summed (null when an index answered every shard,
   * or every shard's page was full).
   */
  scanned: number | null;
}

/**
 * A search whose every page reads a bounded number of rows per shard, whatever the shards hold: an order id goes
 * through its id ranges, `dead` through the dead-letter index, a time range through the received_at index; any other
 * filter is applied to a window of at most SEARCH_WINDOW events per shard, newest first from the cursor. Every shard
 * is read with the same cursor at once, and the pages are merged exactly (src/core/shards.ts `mergePages`): the
 * cursor stays `(receivedAt, id)`, so it goes on in every shard.
 */
export async function searchEvents(
  shards: readonly EventShard[],
  filter: EventFilter,
  cursor: EventCursor | null,
  limit: number,
  windowSize = SEARCH_WINDOW,
): Promise<EventSearch> {
  const pages = await Promise.all(shards.map((shard) => searchShard(shard, filter, cursor, limit, windowSize)));
  const { rows, next } = mergePages(pages, limit);
  const looked = pages.flatMap((p) => (p.scanned === null ? [] : [p.scanned]));
  return { events: rows, next, scanned: looked.length === 0 ? null : looked.reduce((a, b) => a + b, 0) };
}

/**
 * One shard's page of a search. Its frontier: the last row of a full page; the window's oldest event when a windowed
 * page is short and its window was full; null when the shard has nothing older.
 */
async function searchShard(
  { id: shard, db }: EventShard,
  filter: EventFilter,
  cursor: EventCursor | null,
  limit: number,
  windowSize: number,
): Promise<ShardPage<EventSummary> & { scanned: number | null }> {
  const narrowed =
    filter.source !== undefined ||
    filter.eventType !== undefined ||
    filter.merchantId !== undefined ||
    (filter.status !== undefined && filter.status !== "dead");
  const base = sqlConditions();
  // An object's events through their id ranges: a few rows, however many events are stored.
  if (filter.object !== undefined) {
    const ids = await objectEventIds(db, shard, filter.object);
    if (ids.length === 0) return { rows: [], frontier: null, scanned: narrowed ? 0 : null };
    base.add("id IN (SELECT value FROM json_each(?))", JSON.stringify(ids));
  }
  // Spelled as the partial index's own condition, so SQLite can use it.
  if (filter.status === "dead") base.add("dead_deliveries > 0");
  if (filter.since !== undefined) base.add("received_at >= ?", filter.since);
  if (filter.until !== undefined) base.add("received_at < ?", filter.until);
  if (cursor) base.add("(received_at, id) < (?, ?)", cursor.receivedAt, cursor.id);
  const rest = sqlConditions();
  // A row-value keyset, so SQLite seeks the index to the cursor instead of walking every newer entry.
  const window = narrowed ? Math.max(windowSize, limit) : limit;
  const windowSql = `SELECT id, received_at FROM events ${base.where()} ORDER BY received_at DESC, id DESC LIMIT ${window}`;
  // Numbered after the window's parameters, which the same statement binds first.
  for (const p of base.params) rest.bind(p);
  if (filter.source !== undefined) rest.add("e.source = ?", filter.source);
  if (filter.eventType !== undefined) rest.add("e.event_type = ?", filter.eventType);
  if (filter.merchantId !== undefined) rest.add("e.merchant_id = ?", filter.merchantId);
  const having = filter.status && filter.status !== "dead" ? `HAVING ${STATUS_HAVING[filter.status]}` : "";
  const { results } = await db
    .prepare(
      `SELECT ${EVENT_SUMMARY_COLUMNS}
       FROM (${windowSql}) w JOIN events e ON e.id = w.id LEFT JOIN json_each(e.deliveries) l ON ${CURRENT_ELEMENT}
       ${rest.where()}
       GROUP BY e.id ${having}
       ORDER BY e.received_at DESC, e.id DESC
       LIMIT ${limit}`,
    )
    .bind(...rest.params)
    .all<EventSummaryRow>();
  const rows = results.map(toEventSummary);
  const last = rows.at(-1);
  if (rows.length === limit && last)
    return { rows, frontier: { receivedAt: last.receivedAt, id: last.id }, scanned: null };
  if (window === limit) return { rows, frontier: null, scanned: null };
  // A short page of a windowed search: go on from the oldest event the window held, if it was full.
  const edge = await db
    .prepare(
      `SELECT COUNT(*) OVER () AS scanned, received_at, id FROM (${windowSql}) ORDER BY received_at ASC, id ASC LIMIT 1`,
    )
    .bind(...base.params)
    .first<{ scanned: number; received_at: number; id: string }>();
  if (!edge || edge.scanned < window) return { rows, frontier: null, scanned: edge?.scanned ?? 0 };
  return { rows, frontier: { receivedAt: edge.received_at, id: edge.id }, scanned: edge.scanned };
}

export interface DeadLetter extends Delivery {
  createdAt: number;
  receivedAt: number;
  source: string;
  eventType: string;
}

export interface DeadLetterFilter {
  destination?: string;
  since?: number;
  until?: number;
}

/**
 * The dead letters, newest event first: one page reads at most `limit` events holding dead deliveries from each
 * shard, through its dead-letter index, so it costs the same with a million events stored as with ten. The shards'
 * pages are merged by event exactly as a search's are. The destination and the window are conditions of the query,
 * not filters of its page, so a page is short only at the end.
 */
export async function listDeadLetters(
  shards: readonly EventShard[],
  filter: DeadLetterFilter,
  cursor: EventCursor | null,
  limit: number,
): Promise<{ deadLetters: DeadLetter[]; next: EventCursor | null }> {
  const pages = await Promise.all(shards.map(({ db }) => shardDeadLetters(db, filter, cursor, limit)));
  const { rows, next } = mergePages(pages, limit);
  return { deadLetters: rows.flatMap((r) => r.deadLetters), next };
}

async function shardDeadLetters(
  db: D1Database,
  filter: DeadLetterFilter,
  cursor: EventCursor | null,
  limit: number,
): Promise<ShardPage<{ id: string; receivedAt: number; deadLetters: DeadLetter[] }>> {
  const conditions = sqlConditions();
  // Spelled as the partial index's own condition, so SQLite can use it.
  conditions.add("dead_deliveries > 0");
  if (filter.since !== undefined) conditions.add("received_at >= ?", filter.since);
  if (filter.until !== undefined) conditions.add("received_at < ?", filter.until);
  // A row-value keyset, so SQLite seeks the index to the cursor instead of walking every newer entry.
  if (cursor) conditions.add("(received_at, id) < (?, ?)", cursor.receivedAt, cursor.id);
  if (filter.destination !== undefined)
    conditions.add(
      `EXISTS (SELECT 1 FROM json_each(e.deliveries) j
               WHERE ${f("j", "status")} = 'dead' AND ${f("j", "superseded")} = 0 AND ${f("j", "destination")} = ?)`,
      filter.destination,
    );
  const { results } = await db
    .prepare(
      `SELECT id, source, event_type, received_at, deliveries FROM events e ${conditions.where()}
       ORDER BY received_at DESC, id DESC LIMIT ${conditions.bind(limit)}`,
    )
    .bind(...conditions.params)
    .all<{ id: string; source: string; event_type: string; received_at: number; deliveries: string }>();
  const rows = results.map((row) => ({
    id: row.id,
    receivedAt: row.received_at,
    deadLetters: parseDeliveries(row.deliveries)
      .filter(
        (d) =>
          !d.superseded &&
          d.status === "dead" &&
          (filter.destination === undefined || d.destination === filter.destination),
      )
      .map(({ log: _log, superseded: _s, ...d }) => ({
        eventId: row.id,
        receivedAt: row.received_at,
        source: row.source,
        eventType: row.event_type,
        ...d,
      })),
  }));
  const last = results.at(-1);
  return { rows, frontier: results.length === limit && last ? { receivedAt: last.received_at, id: last.id } : null };
}

/**
 * Dead deliveries of events received in a window (the bulk redrive's confirmation, and its bound), read through
 * the dead-letter index: the cost follows the dead letters in the window, not the events. Purged events are left
 * out, as the redrive's walk leaves them.
 */
export async function countDeadLetters(db: D1Database, filter: DeadLetterFilter): Promise<number> {
  const conditions = sqlConditions();
  conditions.add("e.dead_deliveries > 0");
  conditions.add("e.payload_purged_at IS NULL");
  if (filter.since !== undefined) conditions.add("e.received_at >= ?", filter.since);
  if (filter.until !== undefined) conditions.add("e.received_at < ?", filter.until);
  conditions.add(`${f("j", "status")} = 'dead' AND ${f("j", "superseded")} = 0`);
  if (filter.destination !== undefined) conditions.add(`${f("j", "destination")} = ?`, filter.destination);
  const count = await db
    .prepare(`SELECT COUNT(*) AS n FROM events e, json_each(e.deliveries) j ${conditions.where()}`)
    .bind(...conditions.params)
    .first<number>("n");
  return count ?? 0;
}

/** The same count over every shard, the shards at once: the sum. */
export async function countDeadLettersIn(shards: readonly EventShard[], filter: DeadLetterFilter): Promise<number> {
  const counts = await Promise.all(shards.map(({ db }) => countDeadLetters(db, filter)));
  return counts.reduce((a, b) => a + b, 0);
}
