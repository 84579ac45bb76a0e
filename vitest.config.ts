import { createHmac } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import type { ProviderAdapter } from "./src/core/providers/contract.ts";
import { BUILTIN_PROVIDERS } from "./src/core/providers/registry.ts";
import { fixtureSecret, TEST_SECRETS } from "./test/secrets.ts";

const root = import.meta.dirname;

// A type alias, not an interface: miniflare's bindings take JSON, which an interface does not promise to be.
export type SignedFixture = {
  body: string;
  /** The headers the provider would send: its signature in its own header, scheme and encoding. */
  headers: Record<string, string>;
  signature: string;
};

/**
 * Every provider fixture (test/fixtures/providers/<provider>/<event>.json) signed on the Node side with
 * `crypto.createHmac`, as the providers' own samples do, so the WebCrypto verifier is checked against an
 * independent implementation rather than against itself. The scheme comes from the adapter: a built-in one from
 * the registry, a test-only one from test/providers/<provider>.adapter.ts.
 */
async function signedFixtures(): Promise<Record<string, SignedFixture>> {
  const dir = path.join(root, "test/fixtures/providers");
  const out: Record<string, SignedFixture> = {};
  for (const provider of readdirSync(dir)) {
    const testAdapter = path.join(root, "test/providers", `${provider}.adapter.ts`);
    const adapter: ProviderAdapter | undefined =
      BUILTIN_PROVIDERS[provider] ??
      (existsSync(testAdapter) ? (await import(pathToFileURL(testAdapter).href)).default : undefined);
    if (!adapter?.signature) throw new Error(`fixtures for "${provider}": no adapter with a signature scheme`);
    const { header, encoding, prefix = "" } = adapter.signature;
    for (const file of readdirSync(path.join(dir, provider)).filter((f) => f.endsWith(".json"))) {
      const body = readFileSync(path.join(dir, provider, file), "utf8");
      const signature = `${prefix}${createHmac("sha256", fixtureSecret(provider)).update(body).digest(encoding)}`;
      out[`${provider}/${file.replace(/\.json$/, "")}`] = { body, headers: { [header]: signature }, signature };
    }
  }
  return out;
}

export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(root, "migrations"));
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          // Test-only: lets tests call `exports.default.queue(...)`. It must never reach wrangler.toml.
          compatibilityFlags: ["service_binding_extra_handlers"],
          // Tests drive the real queue handler themselves (`exports.default.queue`), so they see every ack, retry
          // and delay. The producers therefore send to real local queues whose only consumer is an auxiliary Worker
          // that acks everything; the Worker's own consumer (from wrangler.toml) then never runs in the background.
          queueProducers: {
            DELIVERY_QUEUE: { queueName: "test-deliveries" },
            DEAD_LETTER_QUEUE: { queueName: "test-deliveries-dlq" },
          },
          workers: [
            {
              name: "queue-drain",
              modules: true,
              script: "export default { async queue(batch) { batch.ackAll(); } };",
              compatibilityDate: "2026-10-20",
              queueConsumers: {
                "test-deliveries": { maxBatchTimeout: 0.05 },
                "test-deliveries-dlq": { maxBatchTimeout: 0.05 },
              },
            },
          ],
          // Databases left empty by the setup file, on which test/migrations.test.ts replays the schema's history
          // (MIGRATION_DB) and upgrades a single-database deployment in place (UPGRADE_DB). Listing DB again keeps
          // the binding wrangler.toml declares.
          d1Databases: {
            DB: "00000000-0000-0000-0000-000000000000",
            MIGRATION_DB: "migration-history",
            UPGRADE_DB: "upgrade-in-place",
            // A third event shard, for test/shard-counts.test.ts (the committed config names two).
            SHARD_2: "third-shard",
          },
          bindings: {
            ...TEST_SECRETS,
            ROUTER_CONFIG: readFileSync(path.join(root, "test/fixtures/router.test-config.json"), "utf8"),
            TEST_MIGRATIONS: migrations,
            TEST_SIGNED_FIXTURES: await signedFixtures(),
          },
        },
      }),
    ],
    test: {
      // Vitest's default for a run is one worker fewer than the cores: one on a 2-core CI runner. A test file's work
      // is split between its Node worker and the workerd it drives, so one worker per core keeps both cores busy
      // (on 2 cores: 106 s against 170 s for the whole suite).
      maxWorkers: availableParallelism(),
      setupFiles: ["./test/apply-migrations.ts"],
      include: ["test/**/*.test.ts"],
    },
  };
});
