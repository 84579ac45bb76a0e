import type { RouterConfig } from "../core/config/schema.ts";
import type { ShardBinding } from "../core/capacity.ts";

/** A D1 database events are stored in, with its binding resolved. */
export interface Shard extends ShardBinding {
  db: D1Database;
}

/**
 * The databases events are stored in. Today there is one: shard 0, the `DB` binding, which is also the control
 * database (config, audit, the capacity records). Event sharding extends this list (more D1 bindings, and each
 * shard's state from the newest shard map); everything that reads it (the capacity watch, `GET /admin/capacity`,
 * the dashboard's capacity page) is per shard already.
 */
export function shardsOf(env: Env, _config: RouterConfig): Shard[] {
  return [{ id: 0, binding: "DB", state: "writable", db: env.DB }];
}
