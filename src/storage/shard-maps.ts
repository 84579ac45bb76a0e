/**
 * The shard map's versions (migrations/0012, 0013), in the control database. Ingest places each event with the
 * newest version and, within the retry window, matches where the versions before it placed the same event
 * (src/core/shards.ts). The newest versions are kept per isolate for a minute: one small read a minute, not one per
 * event. When the configured shards (less those the
 * capacity watch made read-only) differ from the newest version, the first isolate to notice writes the next one;
 * a concurrent writer of the same version loses to the primary key and reads the winner's.
 */
import type { ShardMapVersion } from "../core/shards.ts";

const CACHE_MS = 60_000;

export interface ShardMaps {
  current: ShardMapVersion;
  /** The newest versions, newest first (current first): what a retry window can reach back to. */
  versions: readonly ShardMapVersion[];
}

let cached: { at: number; key: string; maps: ShardMaps } | null = null;

type Row = { version: number; writable: string; created_at: number };
const toVersion = (r: Row): ShardMapVersion => ({
  version: r.version,
  writable: JSON.parse(r.writable) as number[],
  createdAt: r.created_at,
});

async function readMaps(control: D1Database): Promise<{ versions: ShardMapVersion[]; readOnly: Set<number> }> {
  const [versions, readOnly] = await control.batch<Row | { shard_id: number }>([
    // The versions a retry window can reach back to: a handful, however often shards were added.
    control.prepare("SELECT version, writable, created_at FROM shard_maps ORDER BY version DESC LIMIT 16"),
    control.prepare("SELECT shard_id FROM read_only_shards"),
  ]);
  return {
    versions: (versions!.results as Row[]).map(toVersion),
    readOnly: new Set((readOnly!.results as { shard_id: number }[]).map((r) => r.shard_id)),
  };
}

/**
 * The newest two versions of the map, after bringing it in line with `desired(readOnly)`: the writable shards the
 * config names, less the read-only ones.
 */
export async function shardMaps(
  control: D1Database,
  desired: (readOnly: ReadonlySet<number>) => number[],
  now: number,
  reason = "config",
): Promise<ShardMaps> {
  // The config is part of the key: a deploy that changes the shards is seen at once, not a minute later.
  const key = desired(new Set()).join(",");
  if (cached && cached.key === key && now >= cached.at && now - cached.at < CACHE_MS) return cached.maps;
  let { versions, readOnly } = await readMaps(control);
  const want = desired(readOnly);
  const latest = versions[0];
  if (!latest || latest.writable.join(",") !== want.join(",")) {
    // A shard the newest version writes to that is read-only now: the capacity watch made it so (or an operator).
    const cause = latest?.writable.some((id) => readOnly.has(id)) ? "capacity" : reason;
    await control
      .prepare(
        "INSERT INTO shard_maps (version, writable, created_at, reason) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
      )
      .bind((latest?.version ?? 0) + 1, JSON.stringify(want), now, cause)
      .run();
    ({ versions } = await readMaps(control));
  }
  const maps = { current: versions[0]!, versions };
  cached = { at: now, key, maps };
  return maps;
}

/** The shards made read-only at run time (the capacity watch), as the control database lists them. */
export async function readOnlyShards(control: D1Database): Promise<{ shard: number; since: number; reason: string }[]> {
  const { results } = await control
    .prepare("SELECT shard_id, since, reason FROM read_only_shards ORDER BY shard_id")
    .all<{ shard_id: number; since: number; reason: string }>();
  return results.map((r) => ({ shard: r.shard_id, since: r.since, reason: r.reason }));
}

/**
 * Makes a shard read-only (the capacity watch). Returns whether it was writable before. With `others` (the other
 * shards the config lets take events), only while one of them stays writable, in the same statement: two isolates
 * deciding at once about two full shards never leave the map with none.
 */
export async function markShardReadOnly(
  control: D1Database,
  shard: number,
  now: number,
  reason: string,
  others?: readonly number[],
) {
  const result = await (others === undefined
    ? control
        .prepare("INSERT INTO read_only_shards (shard_id, since, reason) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")
        .bind(shard, now, reason)
    : control
        .prepare(
          `INSERT INTO read_only_shards (shard_id, since, reason) SELECT ?1, ?2, ?3
             WHERE EXISTS (SELECT 1 FROM json_each(?4) WHERE value NOT IN (SELECT shard_id FROM read_only_shards))
             ON CONFLICT DO NOTHING`,
        )
        .bind(shard, now, reason, JSON.stringify(others.filter((id) => id !== shard)))
  ).run();
  cached = null;
  return (result.meta.changes ?? 0) === 1;
}

/** Forgets the cached maps (tests that move the clock or the map). */
export function forgetShardMaps(): void {
  cached = null;
}
