/**
 * Event shards: where an event is stored, from what its signed body says. Pure: placement, the shard map's
 * versions and the merge of keyset pages read from several shards.
 *
 * An event's shard is chosen from the object it is about (its source and the provider's order or issue id; an
 * event with no object id uses its own identity), so every event of one order lands in one shard: its ordering
 * state, its purge and its timeline stay in one database. The choice is a jump consistent hash (Lamping and Veach,
 * "A Fast, Minimal Memory, Consistent Hash Algorithm", 2014) over the shards that take new events in the current
 * version of the map: adding a shard at the end moves only the keys it takes, about 1/n of them.
 */
import { earlierEventId, type EventDigests, eventIdOf } from "./event-id.ts";

/** A version of the shard map: which shards take new events, and since when. */
export interface ShardMapVersion {
  version: number;
  /** Shard ids that take new events, ascending. Never empty. */
  writable: readonly number[];
  createdAt: number;
}

const MASK_64 = (1n << 64n) - 1n;
const JUMP_MULTIPLIER = 2862933555777941757n;

/** Jump consistent hash: the bucket in [0, buckets) of a 64-bit key. */
export function jumpHash(key: bigint, buckets: number): number {
  if (!Number.isInteger(buckets) || buckets < 1) throw new RangeError("jumpHash needs at least one bucket");
  let k = key & MASK_64;
  let b = -1;
  let j = 0;
  while (j < buckets) {
    b = j;
    k = (k * JUMP_MULTIPLIER + 1n) & MASK_64;
    // In the paper's order of operations, so every implementation agrees on every key.
    j = Math.floor((b + 1) * (2 ** 31 / Number((k >> 33n) + 1n)));
  }
  return b;
}

/** The 64-bit key of an object digest (hex): its first 16 digits. */
export const placementKey = (objectDigest: string) => BigInt(`0x${objectDigest.slice(0, 16)}`);

/** The shard an object's events go to under one map version. */
export function shardFor(objectDigest: string, map: Pick<ShardMapVersion, "writable">): number {
  return map.writable[jumpHash(placementKey(objectDigest), map.writable.length)]!;
}

/** Where an event is stored now, and where an earlier map might have stored a provider's retry of it. */
export interface Placement {
  shard: number;
  id: string;
  /**
   * Within the retry window: the ids (and shards) every map version current at some moment of the window gave the
   * same event, when they differ from `id`. Version 1 is the switch to ids of the current form: while it is within
   * the window, the earlier form (`evt_<32 hex>` in shard 0) is one of them.
   */
  earlier: readonly { shard: number; id: string }[];
}

/**
 * The map versions that were current at some moment of the retry window, newest first (`versions` newest first,
 * the current one included): version i was current until version i - 1 came. `earlierForm`: the ids before version
 * 1 (`evt_<32 hex>`, all in shard 0) were current within the window too.
 */
function versionsInWindow(versions: readonly ShardMapVersion[], now: number, retryWindowMs: number) {
  const current: ShardMapVersion[] = [versions[0]!];
  for (let i = 1; i < versions.length && now - versions[i - 1]!.createdAt < retryWindowMs; i++)
    current.push(versions[i]!);
  const first = versions.find((v) => v.version === 1);
  return { versions: current, earlierForm: first !== undefined && now - first.createdAt < retryWindowMs };
}

/** The shards an object's events may be in: where each map version current within the retry window placed it. */
export function shardsInWindow(
  objectDigest: string,
  versions: readonly ShardMapVersion[],
  now: number,
  retryWindowMs: number,
): number[] {
  const window = versionsInWindow(versions, now, retryWindowMs);
  const shards = new Set(window.versions.map((v) => shardFor(objectDigest, v)));
  if (window.earlierForm) shards.add(0);
  return [...shards];
}

/** `versions`: the map's versions, newest first (at least the current one). */
export function placeEvent(
  digests: EventDigests,
  versions: readonly ShardMapVersion[],
  now: number,
  retryWindowMs: number,
): Placement {
  const shard = shardFor(digests.object, versions[0]!);
  const id = eventIdOf(shard, digests);
  const window = versionsInWindow(versions, now, retryWindowMs);
  const earlier = new Map<string, number>();
  for (const version of window.versions.slice(1)) {
    const before = shardFor(digests.object, version);
    earlier.set(eventIdOf(before, digests), before);
  }
  if (window.earlierForm) earlier.set(earlierEventId(digests), 0);
  earlier.delete(id);
  return { shard, id, earlier: [...earlier].map(([earlierId, s]) => ({ shard: s, id: earlierId })) };
}

/** The writable shards a map should name: the configured ones, less those made read-only. */
export function writableShards(
  configured: readonly { id: number; readOnly: boolean }[],
  readOnly: ReadonlySet<number>,
) {
  return configured
    .filter((s) => !s.readOnly && !readOnly.has(s.id))
    .map((s) => s.id)
    .sort((a, b) => a - b);
}

/** A keyset position: newest first by (receivedAt, id). */
export interface PagePosition {
  receivedAt: number;
  id: string;
}

/** One shard's page: its rows, newest first, and how far it looked (null when it read to the end). */
export interface ShardPage<T extends PagePosition> {
  rows: readonly T[];
  /** The oldest position the shard examined: rows older than it were not looked at. Null when it reached its end. */
  frontier: PagePosition | null;
}

const newer = (a: PagePosition, b: PagePosition) =>
  a.receivedAt > b.receivedAt || (a.receivedAt === b.receivedAt && a.id > b.id);

/**
 * Merges the pages read from each shard with one cursor into one exact page: newest first, at most `limit` rows,
 * and a cursor that skips nothing. The cursor is the newest of the shards' frontiers (below it, some shard has not
 * looked yet), so rows older than it are left for the next page; if more than `limit` rows are newer, it is the
 * last one kept. Null when every shard reached its end and every row fit.
 */
export function mergePages<T extends PagePosition>(
  pages: readonly ShardPage<T>[],
  limit: number,
): { rows: T[]; next: PagePosition | null } {
  let frontier: PagePosition | null = null;
  for (const page of pages)
    if (page.frontier && (!frontier || newer(page.frontier, frontier))) frontier = page.frontier;
  const rows = pages
    .flatMap((p) => p.rows)
    .filter((r) => !frontier || !newer(frontier, r))
    .sort((a, b) => (newer(a, b) ? -1 : newer(b, a) ? 1 : 0));
  if (rows.length > limit) {
    const kept = rows.slice(0, limit);
    const last = kept.at(-1)!;
    return { rows: kept, next: { receivedAt: last.receivedAt, id: last.id } };
  }
  return { rows, next: frontier };
}
