import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
      TEST_SIGNED_FIXTURES: Record<string, { body: string; base64: string; hex: string }>;
      ROUTER_CONFIG: string;
    }
  }
}
