import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

// Setup files run outside per-file storage isolation and may run more than once; this applies only what is new.
// Every shard has the same schema (docs/configuration.md, "Storage"): shard 0 is DB, also the control database.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
await applyD1Migrations(env.SHARD_1, env.TEST_MIGRATIONS);
// test/shard-counts.test.ts's third shard.
await applyD1Migrations(env.SHARD_2, env.TEST_MIGRATIONS);
