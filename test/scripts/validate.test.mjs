// scripts/validate.mjs (`npm run validate`): the Worker's own readiness rules run on temp config and .dev.vars files,
// locally and in deploy mode (against a stubbed `wrangler secret list`). A problem names its field or secret; a
// secret's value is never printed.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { removeTempDirs, runInProcess, runScript, tempDir, writeTemp } from "./run-script.mjs";

after(removeTempDirs);

/** Every secret the config below names, and the Worker's own, with values no output may contain. */
const SECRETS = {
  WEEDMAPS_CLIENT_SECRET: "wm-secret-value-3c1e4a7e9a55",
  POS_SIGNING_SECRET: "whsec_cG9zLXNpZ25pbmctc2VjcmV0LXZhbHVl",
  POS_API_TOKEN: "pos-api-token-value-77f1",
  ADMIN_TOKEN: "admin-token-value-5d2c",
  PAYLOAD_KEYS: "t1:4esjSa0tQrfUYXKQHZ3ItOJ1pNtytxFvFC6o+sGflmM=",
};

function config() {
  return {
    storage: { shards: [{ id: 0, binding: "DB" }] },
    sources: {
      weedmaps: { provider: "weedmaps", verify: { type: "hmac", secrets: ["WEEDMAPS_CLIENT_SECRET"] } },
    },
    destinations: {
      pos: {
        url: "https://pos.example.test/orders",
        signingSecret: "POS_SIGNING_SECRET",
        headers: { Authorization: { secret: "POS_API_TOKEN", prefix: "Bearer " } },
      },
    },
    routes: [{ name: "orders", source: "weedmaps", events: ["create"], destinations: ["pos"] }],
  };
}

const varsText = (vars) =>
  `# test vars\n${Object.entries(vars)
    .map(([name, value]) => `${name}=${value}`)
    .join("\n")}\n`;

/** The arguments that point validate at a temp config and vars file with these contents. */
function filesFor({ cfg = config(), vars = SECRETS, remote = false } = {}) {
  const dir = tempDir();
  const configFile = writeTemp(dir, "router.config.json", cfg);
  if (remote) return ["--router-config", configFile];
  return ["--router-config", configFile, "--env-file", writeTemp(dir, ".dev.vars", varsText(vars))];
}

/** Runs validate's code on temp files (local mode unless `args` say otherwise). */
function validate({ cfg, vars, args = [], stub } = {}) {
  const files = filesFor({ cfg, vars, remote: args.includes("--remote") });
  return runInProcess("validate.mjs", "validate", [...files, ...args], { stub });
}

function assertNoSecretValue(output) {
  for (const [name, value] of Object.entries(SECRETS))
    assert.ok(!output.includes(value), `the value of ${name} is in the output:\n${output}`);
}

describe("npm run validate", () => {
  it("exits 0 on a valid config with every secret set, and prints no value", async () => {
    // As `npm run validate` runs it: a process of its own, its exit code.
    const { code, output, calls } = await runScript("validate.mjs", filesFor());
    assert.equal(code, 0, output);
    assert.match(output, /the config is valid and every secret it needs is set: ready/);
    assertNoSecretValue(output);
    assert.deepEqual(calls, [], "a local check calls no wrangler");
  });

  it("names a bad field by its path in the config", async () => {
    const cfg = config();
    cfg.routes[0].destinations = ["nowhere"];
    cfg.destinations.pos.timeoutMs = 5;
    const { code, output } = await validate({ cfg });
    assert.equal(code, 1, output);
    assert.match(output, /config\s+routes\[0\]\.destinations\[0\]: unknown destination "nowhere"/);
    assert.match(output, /config\s+destinations\.pos\.timeoutMs: /);
    assertNoSecretValue(output);
  });

  it("names a missing secret and the field that needs it, and never prints the values that are set", async () => {
    const { code, output } = await runScript("validate.mjs", filesFor({ vars: { ...SECRETS, POS_API_TOKEN: "" } }));
    assert.equal(code, 1, output);
    assert.match(
      output,
      /secret\s+destinations\.pos\.headers\.Authorization\.secret: POS_API_TOKEN is not set: .* \(set it in .*\.dev\.vars\)/,
    );
    assertNoSecretValue(output);
  });

  it("checks a malformed PAYLOAD_KEYS without printing it", async () => {
    const { code, output } = await validate({ vars: { ...SECRETS, PAYLOAD_KEYS: "t1:not-a-key" } });
    assert.equal(code, 1, output);
    assert.match(output, /secret\s+payloadEncryption: PAYLOAD_KEYS is not a key ring/);
    assert.ok(!output.includes("not-a-key"), output);
  });

  it("checks ROUTER_CONFIG from the vars file when it is set, as the Worker loads it", async () => {
    const dir = tempDir();
    const varsFile = writeTemp(dir, ".dev.vars", `${varsText(SECRETS)}ROUTER_CONFIG='{"sources": {}}'\n`);
    const { code, output } = await runInProcess("validate.mjs", "validate", ["--env-file", varsFile]);
    assert.equal(code, 1, output);
    assert.match(output, /ROUTER_CONFIG \(.*\.dev\.vars\)/);
    assert.match(output, /config\s+destinations: /);
  });

  it("in deploy mode, checks the deployed secrets through `wrangler secret list`", async () => {
    const { POS_SIGNING_SECRET: _missing, ...deployed } = SECRETS;
    const { code, output, calls } = await validate({ args: ["--remote"], stub: { secrets: Object.keys(deployed) } });
    assert.equal(code, 1, output);
    assert.deepEqual(calls, [["secret", "list", "--format", "json"]]);
    assert.match(
      output,
      /secret\s+destinations\.pos\.signingSecret: POS_SIGNING_SECRET is not set: .*\(npx wrangler secret put POS_SIGNING_SECRET\)/,
    );

    const all = await validate({ args: ["--remote"], stub: { secrets: Object.keys(SECRETS) } });
    assert.equal(all.code, 0, all.output);
  });

  it("in deploy mode without a login, prints the checklist of names and passes", async () => {
    const { code, output, calls } = await validate({ args: ["--remote"], stub: { fail: "secret list" } });
    assert.equal(code, 0, output);
    assert.equal(calls.length, 1);
    assert.match(
      output,
      /the deployed secrets were not checked \(wrangler secret list failed \(exit 1\): not logged in/,
    );
    for (const name of [...Object.keys(SECRETS), "ADMIN_REVEAL_TOKEN"])
      assert.match(output, new RegExp(`\\[ \\] ${name}\\s+(required|optional)`), name);
  });

  it("with --offline, calls no wrangler at all and prints the checklist", async () => {
    const { code, output, calls } = await validate({ args: ["--remote", "--offline"] });
    assert.equal(code, 0, output);
    assert.deepEqual(calls, []);
    assert.match(output, /\[ \] POS_API_TOKEN\s+required: the Authorization header sent to pos/);
  });

  it("refuses an unknown option with exit 2", async () => {
    const { code, output } = await runInProcess("validate.mjs", "validate", ["--nope"]);
    assert.equal(code, 2);
    assert.match(output, /unknown option --nope/);
  });
});
