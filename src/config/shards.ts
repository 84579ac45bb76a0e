import type { ShardBinding } from "../core/capacity.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import { RouterError } from "../core/errors.ts";
import { shardOfEventId } from "../core/event-id.ts";

/** A D1 database events are stored in, with its binding resolved. */
export interface Shard extends ShardBinding {
  db: D1Database;
}

/**
 * The D1 binding named `binding`. A shard the config names without its binding in wrangler.toml is a config error:
 * reported by name, before any event is placed there.
 */
function bindingOf(env: Env, binding: string): D1Database {
  const db = (env as unknown as Record<string, unknown>)[binding] as D1Database | undefined;
  if (!db || typeof db.prepare !== "function")
    throw new RouterError("config_invalid", {
      details: [`storage.shards: binding ${binding} is not a D1 database of this Worker (add it to wrangler.toml)`],
    });
  return db;
}

/**
 * The databases events are stored in (`storage.shards`, src/core/shards.ts). Shard 0 is the `DB` binding, also the
 * control database. `state` is the config's; a shard the capacity watch made read-only is left out of the map's
 * writable shards (src/storage/shard-maps.ts), not here.
 */
export function shardsOf(env: Env, config: RouterConfig): Shard[] {
  return config.storage.shards.map((s) => ({
    id: s.id,
    binding: s.binding,
    state: s.readOnly ? "read_only" : "writable",
    db: bindingOf(env, s.binding),
  }));
}

/** The database of one shard. */
export function shardDb(env: Env, config: RouterConfig, shard: number): D1Database {
  const entry = config.storage.shards.find((s) => s.id === shard);
  if (!entry) throw new RouterError("not_found", { detail: `shard ${shard} is not configured` });
  return bindingOf(env, entry.binding);
}

/** The database an event lives in: its id names the shard. */
export function eventDb(env: Env, config: RouterConfig, eventId: string): D1Database {
  const shard = shardOfEventId(eventId);
  if (shard === null) throw new RouterError("not_found", { detail: `${eventId} is not an event id` });
  return shardDb(env, config, shard);
}
