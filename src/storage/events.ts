/**
 * Events: the ingest write and the delivery side's read. An event's delivery state is a JSON array in its own row
 * (migrations/0002): D1 bills rows written, so ingest writes one row whatever the fan-out.
 */
import { deadDeliveries, pendingDue, serializeDeliveries, type DeliveryState } from "../core/delivery-state.ts";
import type { PayloadProtection } from "../core/envelope.ts";
import type { NewEvent, Quarantine, StoredEvent } from "../core/event.ts";
import { shardOfEventId } from "../core/event-id.ts";
import { EventPayloads } from "./payloads.ts";
import { parseQuarantine, toEventIdentity, toSnapshot, type DeliverySnapshot, type EventRow } from "./rows.ts";

export type InsertOutcome = "inserted" | "duplicate" | "divergent_duplicate";

interface SealedEvent {
  body: string | ArrayBuffer;
  answer: string | ArrayBuffer | null;
  keyId: string | null;
  wrapped: string | null;
}

async function sealEvent(protection: PayloadProtection, event: NewEvent): Promise<SealedEvent> {
  const payloads = await EventPayloads.create(protection, event.id);
  const answer = event.responder?.answered.body;
  return {
    body: await payloads.seal("body", event.body),
    answer: answer ? await payloads.seal("answer", answer) : null,
    ...payloads.keyColumns,
  };
}

const EVENT_COLUMNS = `id, idempotency_key, ingest_id, source, event_type, merchant_id, provider_id, routing,
  content_type, body, body_sha256, received_at, responder, responder_status, responder_latency_ms, responder_error, deliveries,
  pending_due, provider_ts, quarantine, draft_answer, draft_answer_status, draft_verdict, payload_key, payload_dek, dead_deliveries`;
const EVENT_VALUES = Array.from({ length: 26 }, (_, i) => `?${i + 1}`).join(", ");

function insertStatement(
  db: D1Database,
  event: NewEvent,
  sealed: SealedEvent,
  deliveries: readonly DeliveryState[],
  earlierIds: readonly string[],
  countDivergent: boolean,
) {
  // A duplicate (same id, so same business identity) inserts nothing, atomically, by the primary key. If its bytes
  // differ, the stored event counts it as a divergent retry (one row write; none for an identical retry). RETURNING
  // tells the three apart: our own ingest id, another's, or no row. Within the retry window of an id change, the
  // id the event had before is checked in the same statement: stored under it, the event is not stored again.
  const source =
    earlierIds.length > 0
      ? `SELECT ${EVENT_VALUES} WHERE NOT EXISTS (SELECT 1 FROM events WHERE id IN (${earlierIds.map((_, i) => `?${27 + i}`).join(", ")}))`
      : `VALUES (${EVENT_VALUES})`;
  const params: unknown[] = [
    event.id,
    event.idempotencyKey,
    event.ingestId,
    event.source,
    event.eventType,
    event.merchantId,
    event.providerId,
    deliveries.length > 0 ? "routed" : "unrouted",
    event.contentType,
    sealed.body,
    event.bodySha256,
    event.receivedAt,
    event.responder?.destination ?? null,
    event.responder?.status ?? null,
    event.responder?.latencyMs ?? null,
    event.responder?.error ?? null,
    serializeDeliveries(deliveries),
    pendingDue(deliveries),
    event.providerTimestamp,
    event.quarantine ? JSON.stringify(event.quarantine) : null,
    sealed.answer,
    event.responder?.answered.status ?? null,
    event.responder ? JSON.stringify(event.responder.verdict) : null,
    sealed.keyId,
    sealed.wrapped,
    deadDeliveries(deliveries),
  ];
  params.push(...earlierIds);
  return db
    .prepare(
      `INSERT INTO events (${EVENT_COLUMNS})
       ${source}
       ${
         countDivergent
           ? `ON CONFLICT (id) DO UPDATE SET divergent_retries = divergent_retries + 1, divergent_last_at = excluded.received_at,
         divergent_last_sha256 = excluded.body_sha256
       WHERE events.body_sha256 <> excluded.body_sha256`
           : "ON CONFLICT (id) DO NOTHING"
       }
       RETURNING ingest_id`,
    )
    .bind(...params);
}

/**
 * A retry of an event stored under one of its earlier ids: counted there as a divergent retry when its bytes differ,
 * as the insert counts one under the current id. Returns the stored row's id, and whether the bytes differed.
 */
function earlierRetryStatement(db: D1Database, event: NewEvent, earlierIds: readonly string[]) {
  return db
    .prepare(
      `UPDATE events SET divergent_retries = divergent_retries + (body_sha256 <> ?1),
         divergent_last_at = CASE WHEN body_sha256 <> ?1 THEN ?2 ELSE divergent_last_at END,
         divergent_last_sha256 = CASE WHEN body_sha256 <> ?1 THEN ?1 ELSE divergent_last_sha256 END
       WHERE id IN (${earlierIds.map((_, i) => `?${3 + i}`).join(", ")})
       RETURNING id, body_sha256 <> ?1 AS diverged`,
    )
    .bind(event.bodySha256, event.receivedAt, ...earlierIds);
}

type EarlierRow = { id: string; diverged: number };
const earlierOutcome = (row: EarlierRow): InsertResult => ({
  outcome: row.diverged ? "divergent_duplicate" : "duplicate",
  storedId: row.id,
});

export interface InsertResult {
  outcome: InsertOutcome;
  /** The id the event is stored under: its own, or, for a retry across an id change, the one it was stored with. */
  storedId: string;
}

function outcomeOf(event: NewEvent, result: D1Result<{ ingest_id: string }>): InsertOutcome {
  const row = result.results[0];
  return !row ? "duplicate" : row.ingest_id === event.ingestId ? "inserted" : "divergent_duplicate";
}

/** The earlier ids to match in the same statement: earlier maps placed the event in this same database. */
function sameShardEarlier(event: NewEvent): string[] {
  const shard = shardOfEventId(event.id);
  return (event.earlier ?? []).filter((e) => e.shard === shard && e.id !== event.id).map((e) => e.id);
}

/**
 * Stores the events of one request with their planned deliveries, all placed in this database: one row each, in one
 * batch (one transaction), so a V4 envelope of several orders is stored whole or not at all in each shard. Within
 * the retry window after a map change, an event's earlier ids in the same database are matched in the same
 * transaction; those in another database are matched before, by `findInEarlierShards`.
 */
export async function insertEvents(
  db: D1Database,
  protection: PayloadProtection,
  events: readonly { event: NewEvent; deliveries: readonly DeliveryState[] }[],
  /**
   * false: an existing row is left as it is, and any conflict is a `duplicate` (the status relay's race for an id,
   * which is not a provider's retry).
   */
  countDivergent = true,
): Promise<InsertResult[]> {
  const sealed = await Promise.all(events.map(({ event }) => sealEvent(protection, event)));
  const statements = events.flatMap(({ event, deliveries }, i) => {
    const earlierIds = sameShardEarlier(event);
    const insert = insertStatement(db, event, sealed[i]!, deliveries, earlierIds, countDivergent);
    return earlierIds.length > 0 ? [earlierRetryStatement(db, event, earlierIds), insert] : [insert];
  });
  const results =
    statements.length === 1
      ? [await statements[0]!.all<{ ingest_id: string }>()]
      : await db.batch<{ ingest_id: string } | EarlierRow>(statements);
  let next = 0;
  return events.map(({ event }) => {
    if (sameShardEarlier(event).length > 0) {
      const earlier = (results[next++] as D1Result<EarlierRow>).results[0];
      const inserted = results[next++] as D1Result<{ ingest_id: string }>;
      return earlier ? earlierOutcome(earlier) : { outcome: outcomeOf(event, inserted), storedId: event.id };
    }
    return { outcome: outcomeOf(event, results[next++] as D1Result<{ ingest_id: string }>), storedId: event.id };
  });
}

/**
 * A retry whose earlier placement was another database: matched there first (one extra read per such database,
 * only within the retry window, only for an event whose placement moved). Null when it is stored in none of them.
 */
export async function findInEarlierShards(
  dbOf: (shard: number) => D1Database,
  event: NewEvent,
): Promise<InsertResult | null> {
  const own = shardOfEventId(event.id);
  const byShard = new Map<number, string[]>();
  for (const e of event.earlier ?? [])
    if (e.shard !== own) byShard.set(e.shard, [...(byShard.get(e.shard) ?? []), e.id]);
  for (const [shard, ids] of byShard) {
    const row = await earlierRetryStatement(dbOf(shard), event, ids).first<EarlierRow>();
    if (row) return earlierOutcome(row);
  }
  return null;
}

/** One event (the tests' and tools' shorthand for insertEvents). */
export async function insertEvent(
  db: D1Database,
  protection: PayloadProtection,
  event: NewEvent,
  deliveries: readonly DeliveryState[],
): Promise<{ duplicate: boolean }> {
  const [result] = await insertEvents(db, protection, [{ event, deliveries }]);
  return { duplicate: result!.outcome !== "inserted" };
}

export interface DeliveryWork {
  /** Null once its payload is purged: there is nothing left to deliver. */
  event: StoredEvent | null;
  ingestId: string;
  snapshot: DeliverySnapshot;
  /** Seals what a destination answered (response excerpts) with the event's own data key. */
  payloads: EventPayloads;
}

/** The event with its delivery state, in one statement. */
export async function loadDeliveryWork(
  db: D1Database,
  protection: PayloadProtection,
  eventId: string,
): Promise<DeliveryWork | null> {
  const row = await db
    .prepare(
      `SELECT id, ingest_id, source, event_type, merchant_id, provider_id, content_type, body, received_at, deliveries, version,
              provider_ts, quarantine, payload_dek, payload_purged_at
       FROM events WHERE id = ?1`,
    )
    .bind(eventId)
    .first<EventRow>();
  if (!row) return null;
  const payloads = await EventPayloads.open(protection, row.id, row.payload_dek);
  return {
    event:
      row.payload_purged_at !== null
        ? null
        : {
            ...toEventIdentity(row),
            ingestId: row.ingest_id,
            contentType: row.content_type,
            body: await payloads.open("body", row.body),
            providerTimestamp: row.provider_ts,
          },
    ingestId: row.ingest_id,
    snapshot: toSnapshot(row),
    payloads,
  };
}

/** Which ingest stored an event, with its delivery state: what the dead-letter consumer needs, without the payload. */
export async function loadDeliveryOwner(
  db: D1Database,
  eventId: string,
): Promise<{ ingestId: string; snapshot: DeliverySnapshot } | null> {
  const row = await db
    .prepare(`SELECT ingest_id, deliveries, version FROM events WHERE id = ?1`)
    .bind(eventId)
    .first<Pick<EventRow, "ingest_id" | "deliveries" | "version">>();
  return row ? { ingestId: row.ingest_id, snapshot: toSnapshot(row) } : null;
}

/**
 * Releases a quarantined event: routes it with the signed merchant. Conditional on the event still being held and
 * on the version read, so two releases (or a release racing a replay) apply once. Returns whether it applied.
 */
export async function releaseQuarantined(
  db: D1Database,
  eventId: string,
  version: number,
  merchantId: string | null,
  deliveries: readonly DeliveryState[],
  releasedAt: number,
): Promise<boolean> {
  const result = await db
    .prepare(
      `UPDATE events SET merchant_id = ?3, routing = ?4, deliveries = ?5, pending_due = ?6, dead_deliveries = ?8, version = version + 1,
         quarantine = json_set(quarantine, '$.releasedAt', ?7)
       WHERE id = ?1 AND version = ?2 AND quarantine IS NOT NULL AND quarantine ->> 'releasedAt' IS NULL`,
    )
    .bind(
      eventId,
      version,
      merchantId,
      deliveries.length > 0 ? "routed" : "unrouted",
      serializeDeliveries(deliveries),
      pendingDue(deliveries),
      releasedAt,
      deadDeliveries(deliveries),
    )
    .run();
  // At least one: D1's `changes` also counts the rows a trigger wrote (migrations/0016).
  return (result.meta.changes ?? 0) >= 1;
}

/** What a release needs: the stored bytes, the source and type they were identified as, and the hold. */
export async function loadQuarantined(
  db: D1Database,
  protection: PayloadProtection,
  eventId: string,
): Promise<{
  source: string;
  eventType: string;
  idempotencyKey: string;
  merchantId: string | null;
  providerId: string | null;
  body: Uint8Array | null;
  version: number;
  quarantine: Quarantine | null;
} | null> {
  const row = await db
    .prepare(
      `SELECT source, event_type, idempotency_key, merchant_id, provider_id, body, version, quarantine, payload_dek, payload_purged_at FROM events WHERE id = ?1`,
    )
    .bind(eventId)
    .first<{
      source: string;
      event_type: string;
      idempotency_key: string;
      merchant_id: string | null;
      provider_id: string | null;
      body: unknown;
      version: number;
      quarantine: string | null;
      payload_dek: string | null;
      payload_purged_at: number | null;
    }>();
  if (!row) return null;
  const payloads = await EventPayloads.open(protection, eventId, row.payload_dek);
  return {
    source: row.source,
    eventType: row.event_type,
    idempotencyKey: row.idempotency_key,
    merchantId: row.merchant_id,
    providerId: row.provider_id,
    body: row.payload_purged_at !== null ? null : await payloads.open("body", row.body),
    version: row.version,
    quarantine: parseQuarantine(row.quarantine),
  };
}
