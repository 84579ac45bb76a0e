/**
 * The shard map's versions (migrations/0012). Ingest reads the newest version's start to know whether it is inside
 * the providers' retry window after a change, when an insert also matches the id the previous version gave. The
 * answer is kept per isolate for a minute: one small read a minute, not one per event.
 */
const CACHE_MS = 60_000;

interface MapVersion {
  version: number;
  createdAt: number;
}

let cached: { at: number; latest: MapVersion | null } | null = null;

export async function latestMapVersion(db: D1Database, now: number): Promise<MapVersion | null> {
  if (cached && now - cached.at < CACHE_MS && now >= cached.at) return cached.latest;
  const row = await db
    .prepare("SELECT version, created_at FROM shard_maps ORDER BY version DESC LIMIT 1")
    .first<{ version: number; created_at: number }>();
  const latest = row ? { version: row.version, createdAt: row.created_at } : null;
  cached = { at: now, latest };
  return latest;
}

/** Forgets the cached version (tests that move the clock or the map). */
export function forgetMapVersion(): void {
  cached = null;
}
