// The dependency rules in .dependency-cruiser.cjs must hold on src/ as it is, and must fail when a wall is crossed.
// One copy of the project gets every crossing (one import over one wall each) and one run of the same rules; each
// crossing is its own test and must be reported by its own rule. Run with `npm run test:walls`.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";

const ROOT = path.resolve(import.meta.dirname, "../..");
const DEPCRUISE = path.join(ROOT, "node_modules", "dependency-cruiser", "bin", "dependency-cruiser.mjs");
const copies = [];

/** The rules over one copy of the project; asynchronous, so the three runs go two at a time (one per core). */
function cruise(cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [DEPCRUISE, "src", "--config", ".dependency-cruiser.cjs", "--output-type", "err"],
      {
        cwd,
      },
    );
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
    });
    child.stderr.on("data", (chunk) => {
      out += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
  });
}

function copyOfTheProject() {
  const dir = mkdtempSync(path.join(tmpdir(), "walls-"));
  copies.push(dir);
  for (const entry of [
    "src",
    ".dependency-cruiser.cjs",
    "tsconfig.json",
    "router.config.json",
    "worker-configuration.d.ts",
    "package.json",
  ]) {
    cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true });
  }
  // npm packages resolve through the project's own node_modules.
  symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
  return dir;
}

after(() => {
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});

const ADMIN_RULE = "admin-imports-only-core-config-operations-telemetry";
const DASHBOARD_RULE = "dashboard-imports-only-core-config-operations-telemetry";
const OPERATIONS_RULE = "operations-imports-only-core-config-storage-control-relay-telemetry";

describe("the walls between the folders of src/", { concurrency: 2 }, () => {
  it("hold on src/ as it is", async () => {
    const { code, out } = await cruise(ROOT);
    assert.equal(code, 0, out);
  });

  const crossings = [
    {
      file: "src/ingest/app.ts",
      line: 'import "../delivery/consumer.ts";',
      rule: "ingest-imports-only-core-config-storage-outbound-control-relay-telemetry",
    },
    {
      file: "src/delivery/consumer.ts",
      line: 'import "../ingest/store.ts";',
      rule: "delivery-imports-only-core-config-storage-outbound-control-telemetry",
    },
    { file: "src/admin/app.ts", line: 'import "../delivery/sweeper.ts";', rule: ADMIN_RULE },
    // The transports reach rows, deliveries and controls only through an operation (issue #23).
    { file: "src/admin/events.ts", line: 'import "../storage/audit.ts";', rule: ADMIN_RULE },
    { file: "src/admin/replays.ts", line: 'import "../delivery/replay.ts";', rule: ADMIN_RULE },
    { file: "src/admin/destinations.ts", line: 'import "../control/client.ts";', rule: ADMIN_RULE },
    { file: "src/dashboard/app.tsx", line: 'import "../storage/sessions.ts";', rule: DASHBOARD_RULE },
    { file: "src/dashboard/pages/events.tsx", line: 'import "../../delivery/replay.ts";', rule: DASHBOARD_RULE },
    { file: "src/dashboard/pages/destinations.tsx", line: 'import "../../control/client.ts";', rule: DASHBOARD_RULE },
    // The operations never answer a request themselves, and call delivery only for its replay write.
    { file: "src/operations/events.ts", line: 'import "../admin/app.ts";', rule: OPERATIONS_RULE },
    { file: "src/operations/replays.ts", line: 'import "../dashboard/app.tsx";', rule: OPERATIONS_RULE },
    { file: "src/operations/replays.ts", line: 'import "../delivery/consumer.ts";', rule: OPERATIONS_RULE },
    { file: "src/operations/destinations.ts", line: 'import "../outbound/client.ts";', rule: OPERATIONS_RULE },
    // The status relay decides and stores an update; it neither answers HTTP nor sends to Weedmaps itself.
    {
      file: "src/relay/accept.ts",
      line: 'import "../outbound/weedmaps-orders.ts";',
      rule: "relay-imports-only-core-config-storage-telemetry",
    },
    {
      file: "src/storage/events.ts",
      line: 'import "../delivery/replay.ts";',
      rule: "storage-imports-only-core-telemetry",
    },
    {
      file: "src/outbound/client.ts",
      line: 'import "../storage/queue.ts";',
      rule: "outbound-imports-only-core-config-telemetry",
    },
    { file: "src/core/retry-policy.ts", line: 'import "../storage/queue.ts";', rule: "core-imports-only-itself" },
    { file: "src/core/routing.ts", line: 'import "../telemetry/log.ts";', rule: "core-imports-only-itself" },
    {
      file: "src/core/fields.ts",
      line: 'import { env } from "cloudflare:workers"; export const bound = env;',
      rule: "core-is-pure",
    },
    { file: "src/core/fields.ts", line: 'import "p-limit";', rule: "core-no-runtime-packages" },
    { file: "src/core/messages.ts", line: 'import "./retry-policy.ts";', rule: "no-circular" },
    {
      file: "src/maintenance/walk.ts",
      line: 'import "../outbound/client.ts";',
      rule: "maintenance-imports-only-core-config-storage-telemetry",
    },
    // The dashboard uses the operations the admin API uses, never the admin app.
    { file: "src/dashboard/app.tsx", line: 'import "../admin/app.ts";', rule: DASHBOARD_RULE },
    // The destinations' objects keep state and holds: they never send a delivery themselves.
    {
      file: "src/control/gate.ts",
      line: 'import "../outbound/client.ts";',
      rule: "control-imports-only-core-storage-telemetry",
    },
  ];

  // Every crossing goes into one copy and one run of the rules (one run takes about 2 s; a copy per crossing made
  // this test 45 s of CI). Each must still be reported on its own, by its rule, from its file to its target.
  describe("fail on each crossing, each by its own rule", () => {
    let out;
    before(async () => {
      const dir = copyOfTheProject();
      for (const { file, line } of crossings) appendFileSync(path.join(dir, file), `\n${line}\n`);
      const result = await cruise(dir);
      assert.notEqual(result.code, 0, result.out);
      out = result.out;
    });

    for (const { file, line, rule } of crossings) {
      it(`${rule} when ${file} adds ${line}`, () => {
        const spec = /["']([^"']+)["']/.exec(line)[1];
        const target = spec.startsWith(".") ? path.posix.join(path.posix.dirname(file), spec) : spec;
        const literal = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
        // A cycle is printed over several lines, its next module on the line after the arrow.
        assert.match(out, new RegExp(`error ${literal(rule)}: ${literal(file)} → \\s*\\S*${literal(target)}`), out);
      });
    }
  });

  it("ship no fault switch: the deployed bundle is built from src/index.ts and has nothing of the soak's Worker", () => {
    const toml = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
    assert.match(toml, /^main = "src\/index\.ts"$/m);
    const outdir = mkdtempSync(path.join(tmpdir(), "bundle-"));
    copies.push(outdir);
    const wrangler = path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
    const built = spawnSync(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", outdir], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, CI: "true" },
    });
    assert.equal(built.status, 0, built.stdout + built.stderr);
    const bundle = readFileSync(path.join(outdir, "index.js"), "utf8");
    for (const trace of ["SOAK_", "soak fault", "soak/worker"])
      assert.equal(bundle.includes(trace), false, `the bundle mentions ${trace}`);
  });

  it("let operations call delivery's replay write, and nothing else of delivery", async () => {
    const dir = copyOfTheProject();
    appendFileSync(path.join(dir, "src/operations/events.ts"), '\nimport "../delivery/replay.ts";\n');
    const { code, out } = await cruise(dir);
    assert.equal(code, 0, out);
  });
});
