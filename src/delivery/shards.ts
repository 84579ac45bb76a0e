/**
 * The delivery side's way to a shard (src/config/shards.ts) when the shard comes from a message or a row: an event id
 * that names a shard the config no longer lists is a message nothing can deliver, logged and let go by the caller,
 * never an error that would retry it for ever.
 */
import { shardDb } from "../config/shards.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import { shardOfEventId } from "../core/event-id.ts";

/** The database of a configured shard; null when the config does not list it. */
export function configuredShardDb(env: Env, config: RouterConfig, shard: number): D1Database | null {
  return config.storage.shards.some((s) => s.id === shard) ? shardDb(env, config, shard) : null;
}

/** The database an event lives in (its id names the shard); null when the id names no configured shard. */
export function eventDbOrNull(env: Env, config: RouterConfig, eventId: string): D1Database | null {
  const shard = shardOfEventId(eventId);
  return shard === null ? null : configuredShardDb(env, config, shard);
}
