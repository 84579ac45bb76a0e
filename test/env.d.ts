import type { D1Migration } from "cloudflare:test";
import type { SignedFixture } from "../vitest.config.ts";
import type { TEST_SECRETS } from "./secrets.ts";

type TestSecretBindings = { [Name in keyof typeof TEST_SECRETS]: string };

// Test-only bindings, added by vitest.config.ts; the Worker's own bindings come from worker-configuration.d.ts.
declare global {
  namespace Cloudflare {
    interface Env extends TestSecretBindings {
      TEST_MIGRATIONS: D1Migration[];
      MIGRATION_DB: D1Database;
      UPGRADE_DB: D1Database;
      SHARD_2: D1Database;
      TEST_SIGNED_FIXTURES: Record<string, SignedFixture>;
      ROUTER_CONFIG: string;
    }
  }
}
