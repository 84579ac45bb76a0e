// scripts/migrate.mjs, run as `npm run db:migrate:local` runs it, against a stub wrangler (WRANGLER_BIN) that prints
// what wrangler 4.155 prints: one line per migration applied, wrangler's whole output only when it fails.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { summarizeApply } from "../../scripts/migrate.mjs";

const ROOT = path.resolve(import.meta.dirname, "../..");
const STUB = path.join(import.meta.dirname, "local-wrangler-stub.mjs");
const MIGRATIONS = readdirSync(path.join(ROOT, "migrations")).filter((f) => f.endsWith(".sql"));
const work = mkdtempSync(path.join(tmpdir(), "migrate-test-"));
after(() => rmSync(work, { recursive: true, force: true }));

let runs = 0;
function migrate(args, mode) {
  const log = path.join(work, `calls-${++runs}.jsonl`);
  const result = spawnSync(process.execPath, ["scripts/migrate.mjs", ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, CI: "", WRANGLER_BIN: STUB, STUB_WRANGLER_LOG: log, STUB_MIGRATIONS: mode },
  });
  const calls = readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line));
  return { ...result, lines: result.stdout.split("\n").filter(Boolean), calls };
}

describe("migrations print one line each", () => {
  it("a first start: one line per migration and database, in order, and none of wrangler's tables", () => {
    const { status, lines, stderr, calls } = migrate(["--local", "--persist-to", work], "fresh");
    assert.equal(status, 0, stderr);
    assert.ok(MIGRATIONS.length >= 14, "the repo's migrations are counted");
    assert.deepEqual(lines, [
      ...MIGRATIONS.map((name) => `[migrate] DB: ${name} applied`),
      ...MIGRATIONS.map((name) => `[migrate] SHARD_1: ${name} applied`),
    ]);
    assert.deepEqual(
      calls.map((c) => c.args),
      ["DB", "SHARD_1"].map((binding) => ["d1", "migrations", "apply", binding, "--local", "--persist-to", work]),
    );
    assert.ok(
      calls.every((c) => c.ci === "true"),
      "a local run never waits for an answer",
    );
  });

  it("nothing to apply: one line per database", () => {
    const { status, lines, stderr } = migrate(["--local", "--persist-to", work], "current");
    assert.equal(status, 0, stderr);
    assert.deepEqual(lines, [
      `[migrate] DB: up to date (${MIGRATIONS.length} migrations)`,
      `[migrate] SHARD_1: up to date (${MIGRATIONS.length} migrations)`,
    ]);
  });

  it("a failure: wrangler's whole output, and no later database is touched", () => {
    const { status, stdout, stderr, calls } = migrate(["--local", "--persist-to", work], "fail");
    assert.equal(status, 1);
    assert.equal(stdout, "");
    assert.match(stderr, /^\[migrate\] applying the D1 migrations to DB failed \(exit 1\):\n/);
    assert.match(stderr, /│ 0001_events_and_deliveries\.sql\s+│ ❌/);
    assert.match(stderr, /near "TABLEX": syntax error/);
    assert.deepEqual(
      calls.map((c) => c.args[3]),
      ["DB"],
    );
  });

  it("a remote failure stops there: no later production database is touched", () => {
    const { status, stderr, calls } = migrate(["--remote"], "fail");
    assert.equal(status, 1);
    assert.match(stderr, /\[migrate\] applying the D1 migrations to DB failed \(exit 1\); see the output above/);
    assert.deepEqual(
      calls.map((c) => c.args[3]),
      ["DB"],
    );
  });

  it("a remote run keeps wrangler's output and its question on the terminal", () => {
    const { status, stdout, stderr, calls } = migrate(["--remote"], "current");
    assert.equal(status, 0, stderr);
    assert.match(stdout, /No migrations to apply!/);
    assert.match(stdout, /\[migrate\] migrations applied to DB, SHARD_1\n$/);
    assert.ok(
      calls.every((c) => c.ci === ""),
      "CI is left as it was, so wrangler asks before it changes production",
    );
  });

  it("reads wrangler's table on a colour terminal too", () => {
    const grey = (text) => `\x1b[90m${text}\x1b[39m`;
    const output = [
      grey("┌──────────────────┬────────┐"),
      `${grey("│")} 0001_a.sql       ${grey("│")} ✅     ${grey("│")}`,
      `${grey("│")} 0002_b.sql       ${grey("│")} 🕒️    ${grey("│")}`,
      grey("└──────────────────┴────────┘"),
    ].join("\n");
    assert.deepEqual(summarizeApply("DB", output, 2), ["DB: 0001_a.sql applied"]);
    assert.deepEqual(summarizeApply("DB", "✅ No migrations to apply!", undefined), ["DB: up to date"]);
  });
});
