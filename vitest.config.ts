import { createHmac } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { TEST_SECRETS } from "./test/secrets.ts";

const root = import.meta.dirname;

/**
 * Provider fixtures signed on the Node side with `crypto.createHmac`, exactly as the Weedmaps guide's sample does,
 * so the WebCrypto verifier is checked against an independent implementation rather than against itself.
 */
function signedFixtures(): Record<string, { body: string; base64: string; hex: string }> {
  const dir = path.join(root, "test/fixtures/providers");
  const out: Record<string, { body: string; base64: string; hex: string }> = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
    const body = readFileSync(path.join(dir, file), "utf8");
    const secret = file.startsWith("weedmaps") ? TEST_SECRETS.WEEDMAPS_CLIENT_SECRET : TEST_SECRETS.LEAFTRADE_WEBHOOK_SECRET;
    out[file.replace(/\.json$/, "")] = {
      body,
      base64: createHmac("sha256", secret).update(body).digest("base64"),
      hex: createHmac("sha256", secret).update(body).digest("hex"),
    };
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
          // A second database, left empty by the setup file, on which test/migrations.test.ts replays the schema's
          // history. Listing DB again keeps the binding wrangler.toml declares.
          d1Databases: { DB: "00000000-0000-0000-0000-000000000000", MIGRATION_DB: "migration-history" },
          bindings: {
            ...TEST_SECRETS,
            ROUTER_CONFIG: readFileSync(path.join(root, "test/fixtures/router.test-config.json"), "utf8"),
            TEST_MIGRATIONS: migrations,
            TEST_SIGNED_FIXTURES: signedFixtures(),
          },
        },
      }),
    ],
    test: {
      setupFiles: ["./test/apply-migrations.ts"],
      include: ["test/**/*.test.ts"],
    },
  };
});
