/**
 * Bulk replay jobs (migrations/0005) and the walk over the events they page through. The job rows are in the control
 * database; the walk reads each shard in turn, so a job's cursor is a position in one shard.
 */
import { shardOfEventId } from "../core/event-id.ts";
import type { ReplayFilter } from "../core/messages.ts";
import { parseDeliveries } from "./rows.ts";
import type { DeliveryState } from "../core/delivery-state.ts";

export type ReplayJobState = "running" | "done" | "failed" | "cancelled";

export interface ReplayJob {
  id: string;
  filter: ReplayFilter & { since: number; until: number };
  maxCount: number;
  state: ReplayJobState;
  startedAt: number;
  updatedAt: number;
  /** Where the next page starts (`encodePosition`); null before the first page. */
  cursor: string | null;
  scanned: number;
  replayed: number;
  skipped: number;
  error: string | null;
}

interface ReplayJobRow {
  id: string;
  filter: string;
  max_count: number;
  state: ReplayJobState;
  started_at: number;
  updated_at: number;
  cursor: string | null;
  scanned: number;
  replayed: number;
  skipped: number;
  error: string | null;
}

function toReplayJob(row: ReplayJobRow): ReplayJob {
  return {
    id: row.id,
    filter: JSON.parse(row.filter) as ReplayJob["filter"],
    maxCount: row.max_count,
    state: row.state,
    startedAt: row.started_at,
    updatedAt: row.updated_at,
    cursor: row.cursor,
    scanned: row.scanned,
    replayed: row.replayed,
    skipped: row.skipped,
    error: row.error,
  };
}

export async function insertReplayJob(
  db: D1Database,
  job: Pick<ReplayJob, "id" | "filter" | "maxCount" | "startedAt">,
): Promise<void> {
  await db
    .prepare(
      `INSERT INTO replay_jobs (id, filter, max_count, state, started_at, updated_at) VALUES (?1, ?2, ?3, 'running', ?4, ?4)`,
    )
    .bind(job.id, JSON.stringify(job.filter), job.maxCount, job.startedAt)
    .run();
}

export async function getReplayJob(db: D1Database, id: string): Promise<ReplayJob | null> {
  const row = await db.prepare(`SELECT * FROM replay_jobs WHERE id = ?1`).bind(id).first<ReplayJobRow>();
  return row ? toReplayJob(row) : null;
}

/** A position of a job's walk: a shard, and the last event id read in it (null at the shard's start). */
export interface ReplayPosition {
  shard: number;
  after: string | null;
}

/** A position as the job row keeps it. */
export function encodePosition(position: ReplayPosition): string {
  return JSON.stringify({ shard: position.shard, after: position.after });
}

/**
 * The position a job's cursor names: `first` (the first shard's start) before the first page. A cursor written
 * before shards was the last event id read, all in shard 0.
 */
export function decodePosition(cursor: string | null, first: number): ReplayPosition {
  if (cursor === null) return { shard: first, after: null };
  if (!cursor.startsWith("{")) return { shard: shardOfEventId(cursor) ?? 0, after: cursor };
  const parsed = JSON.parse(cursor) as ReplayPosition;
  return { shard: parsed.shard, after: parsed.after };
}

/**
 * Records a page's progress, only while the job still runs (a cancel or a failure recorded meanwhile wins) and
 * only if its cursor is still the one the page started from (`expected`), so a page run twice counts once.
 */
export async function recordReplayPage(
  db: D1Database,
  id: string,
  page: { cursor: string | null; scanned: number; replayed: number; skipped: number; state: "running" | "done" },
  now: number,
  expected?: string | null,
): Promise<boolean> {
  const result = await db
    .prepare(
      `UPDATE replay_jobs SET cursor = ?2, scanned = scanned + ?3, replayed = replayed + ?4, skipped = skipped + ?5, state = ?6, updated_at = ?7
       WHERE id = ?1 AND state = 'running' ${expected === undefined ? "" : "AND cursor IS ?8"}`,
    )
    .bind(
      id,
      page.cursor,
      page.scanned,
      page.replayed,
      page.skipped,
      page.state,
      now,
      ...(expected === undefined ? [] : [expected]),
    )
    .run();
  return (result.meta.changes ?? 0) === 1;
}

/** Stops a running job (cancelled by an operator, or failed with a reason). Returns whether it was running. */
export async function endReplayJob(
  db: D1Database,
  id: string,
  state: "cancelled" | "failed",
  now: number,
  error: string | null = null,
): Promise<boolean> {
  const result = await db
    .prepare(`UPDATE replay_jobs SET state = ?2, updated_at = ?3, error = ?4 WHERE id = ?1 AND state = 'running'`)
    .bind(id, state, now, error)
    .run();
  return (result.meta.changes ?? 0) === 1;
}

/**
 * One page of a replay's walk in one shard: the next events after `after`, in key order, received in the window.
 * The walk reads each event once per job, so a replay of the whole table costs one read per event, not one per
 * event per page.
 */
export async function replayPageEvents(
  db: D1Database,
  after: string | null,
  window: { since: number; until: number },
  limit: number,
  /** Only events with a dead delivery: the walk then reads the dead-letter index, not every event of the window. */
  deadOnly = false,
): Promise<{ id: string; deliveries: DeliveryState[] }[]> {
  const { results } = await db
    // A purged event has nothing left to send: a bulk replay passes it by (a single replay answers 410).
    .prepare(
      `SELECT id, deliveries FROM events WHERE id > ?1 AND received_at >= ?2 AND received_at < ?3 AND payload_purged_at IS NULL
       ${deadOnly ? "AND dead_deliveries > 0" : ""} ORDER BY id LIMIT ?4`,
    )
    .bind(after ?? "", window.since, window.until, limit)
    .all<{ id: string; deliveries: string }>();
  return results.map((row) => ({ id: row.id, deliveries: parseDeliveries(row.deliveries) }));
}
