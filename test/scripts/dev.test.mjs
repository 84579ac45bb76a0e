// scripts/dev.mjs as `npm run dev` runs it, with a stub wrangler (WRANGLER_BIN) that records how `wrangler dev` is
// started: the Cron ticker and its opt-out, the short rollup lag, and RECEIVER_PORT rewriting the sample config.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { pointAtReceiver } from "../../scripts/local-env.mjs";

const ROOT = path.resolve(import.meta.dirname, "../..");
const STUB = path.join(import.meta.dirname, "local-wrangler-stub.mjs");
const SAMPLE = JSON.parse(readFileSync(path.join(ROOT, "router.config.json"), "utf8"));
const work = mkdtempSync(path.join(tmpdir(), "dev-test-"));
after(() => rmSync(work, { recursive: true, force: true }));

let runs = 0;
function dev(args, env = {}) {
  const log = path.join(work, `calls-${++runs}.jsonl`);
  const { RECEIVER_PORT: _r, PORT: _p, ...inherited } = process.env;
  const result = spawnSync(process.execPath, ["scripts/dev.mjs", "--persist-to", work, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 60_000,
    env: { ...inherited, WRANGLER_BIN: STUB, STUB_WRANGLER_LOG: log, STUB_MIGRATIONS: "current", ...env },
  });
  let calls = [];
  try {
    calls = readFileSync(log, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line).args);
  } catch {
    // wrangler was never called
  }
  const wranglerDev = calls.find((c) => c[0] === "dev");
  /** The values of every `--var NAME:value` wrangler dev got, the last of a name winning, as wrangler reads them. */
  const vars = {};
  for (let i = 0; wranglerDev && i < wranglerDev.length; i++)
    if (wranglerDev[i] === "--var") {
      const [name, ...value] = wranglerDev[++i].split(":");
      vars[name] = value.join(":");
    }
  return { ...result, calls, wranglerDev, vars };
}

describe("npm run dev", () => {
  it("migrates quietly, then starts wrangler dev with a short rollup lag and the Cron ticker", () => {
    const { status, stdout, stderr, calls, wranglerDev, vars } = dev([]);
    assert.equal(status, 0, stderr);
    assert.deepEqual(
      calls.filter((c) => c[0] === "d1").map((c) => c[3]),
      ["DB", "SHARD_1"],
    );
    assert.match(stdout, /^\[migrate\] DB: up to date \(\d+ migrations\)$/m);
    assert.ok(wranglerDev.includes("--test-scheduled"), "/__scheduled is served for the ticker");
    assert.equal(vars.ROLLUP_LAG_SECONDS, "10");
    assert.equal(vars.ROUTER_CONFIG, undefined, "the bundled router.config.json, as it is");
    assert.match(
      stdout,
      /^\[cron\] running the scheduled handler .* every minute through http:\/\/127\.0\.0\.1:8787\/__scheduled; --no-cron turns this off$/m,
    );
  });

  it("--no-cron: no ticker, and wrangler never sees the flag", () => {
    const { status, stdout, stderr, wranglerDev } = dev(["--no-cron", "--port", "9001"]);
    assert.equal(status, 0, stderr);
    assert.doesNotMatch(stdout, /\[cron\]/);
    assert.ok(!wranglerDev.includes("--no-cron"), JSON.stringify(wranglerDev));
    assert.equal(wranglerDev[wranglerDev.indexOf("--port") + 1], "9001");
  });

  it("a rollup lag given after -- wins over dev's", () => {
    const { status, stderr, vars } = dev(["--no-cron", "--var", "ROLLUP_LAG_SECONDS:1"]);
    assert.equal(status, 0, stderr);
    assert.equal(vars.ROLLUP_LAG_SECONDS, "1");
  });

  it("RECEIVER_PORT points the sample config's destinations and alerts at that port, and nothing else changes", () => {
    for (const [args, env] of [
      [["--no-cron"], { RECEIVER_PORT: "9100" }],
      [["--no-cron", "--receiver-port", "9100"], {}],
    ]) {
      const { status, stdout, stderr, vars } = dev(args, env);
      assert.equal(status, 0, stderr);
      const config = JSON.parse(vars.ROUTER_CONFIG);
      assert.deepEqual(Object.fromEntries(Object.entries(config.destinations).map(([name, d]) => [name, d.url])), {
        pos: "http://127.0.0.1:9100/pos/orders",
        erp: "http://127.0.0.1:9100/erp/webhooks",
        pricing: "http://127.0.0.1:9100/pricing/draft",
        // The receiver also serves the Weedmaps mock the status relay sends to.
        "weedmaps-api": "http://127.0.0.1:9100/weedmaps",
      });
      assert.equal(config.alerts.channels.local.url, "http://127.0.0.1:9100/alerts");
      // Put the five URLs back and it is the sample config.
      for (const d of Object.values(config.destinations)) d.url = d.url.replace(":9100/", ":8788/");
      config.alerts.channels.local.url = config.alerts.channels.local.url.replace(":9100/", ":8788/");
      assert.deepEqual(config, SAMPLE);
      assert.match(stdout, /point at 127\.0\.0\.1:9100 \(RECEIVER_PORT\)/);
    }
  });

  it("RECEIVER_PORT=8788 (the default) leaves the bundled config alone", () => {
    const { status, stderr, vars } = dev(["--no-cron"], { RECEIVER_PORT: "8788" });
    assert.equal(status, 0, stderr);
    assert.equal(vars.ROUTER_CONFIG, undefined);
  });

  it("refuses a receiver port that is not one, before anything runs", () => {
    for (const [args, env, name] of [
      [[], { RECEIVER_PORT: "91OO" }, "RECEIVER_PORT"],
      [["--receiver-port", "70000"], {}, "--receiver-port"],
    ]) {
      const { status, stderr, calls } = dev(args, env);
      assert.equal(status, 2);
      assert.match(stderr, new RegExp(`^\\[dev\\] ${name} must be a port number from 1 to 65535, got "`, "m"));
      assert.deepEqual(calls, []);
    }
  });
});

describe("pointAtReceiver", () => {
  it("moves only loopback URLs on the receiver's default port", () => {
    const config = {
      destinations: {
        a: { url: "http://localhost:8788/a" },
        b: { url: "https://pos.example.test:8788/b" },
        c: { url: "http://127.0.0.1:9000/c" },
        d: { url: "not a url" },
      },
      alerts: { channels: { slack: { type: "slack", url: "https://hooks.slack.test/x" } } },
    };
    const moved = pointAtReceiver(config, 9100);
    assert.deepEqual(
      Object.values(moved.destinations).map((d) => d.url),
      ["http://localhost:9100/a", "https://pos.example.test:8788/b", "http://127.0.0.1:9000/c", "not a url"],
    );
    assert.equal(moved.alerts.channels.slack.url, "https://hooks.slack.test/x");
    assert.equal(config.destinations.a.url, "http://localhost:8788/a", "the config given is not changed");
  });
});
