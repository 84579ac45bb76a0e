import type { D1Migration } from "cloudflare:test";
import type { TEST_SECRETS } from "./secrets";

type TestSecretBindings = { [Name in keyof typeof TEST_SECRETS]: string };

// Test-only bindings, added by vitest.config.ts; the Worker's own bindings come from worker-configuration.d.ts.
declare global {
  namespace Cloudflare {
    interface Env extends TestSecretBindings {
      TEST_MIGRATIONS: D1Migration[];
      MIGRATION_DB: D1Database;
      TEST_SIGNED_FIXTURES: Record<string, { body: string; base64: string; hex: string }>;
      ROUTER_CONFIG: string;
    }
  }
}
