// scripts/deploy.mjs (`npm run deploy`, `npm run deploy:dry-run`) against a wrangler stub that records every call:
// the order of the steps, a dry run that touches nothing remote, and a failed step that stops the ones after it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { removeTempDirs, ROOT, runInProcess, runScript } from "./run-script.mjs";

after(removeTempDirs);
// After run-script.mjs has pointed WRANGLER_BIN at the stub, which the scripts read when they load.
const { d1Bindings } = await import("../../scripts/migrate.mjs");
const deploy = (args, options) => runInProcess("deploy.mjs", "deploy", args, options);

/** The secrets the committed sample config needs are the ones .dev.vars.example sets: a deploy with all of them. */
const DEPLOYED = [...readFileSync(path.join(ROOT, ".dev.vars.example"), "utf8").matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map(
  (m) => m[1],
);
const BINDINGS = d1Bindings();
const SECRET_LIST = ["secret", "list", "--format", "json"];
const MIGRATIONS = BINDINGS.map((binding) => ["d1", "migrations", "apply", binding, "--remote"]);

describe("npm run deploy", () => {
  it("validates, builds with --dry-run, migrates every D1 database, then deploys, in that order", async () => {
    assert.ok(BINDINGS.length >= 1);
    const { code, output, calls } = await deploy([], { stub: { secrets: DEPLOYED } });
    assert.equal(code, 0, output);
    assert.deepEqual(calls, [SECRET_LIST, ["deploy", "--dry-run"], ...MIGRATIONS, ["deploy"]]);
    assert.match(
      output,
      /step 1 of 4: validate[\s\S]*step 2 of 4[\s\S]*step 3 of 4[\s\S]*step 4 of 4: wrangler deploy/,
    );
  });

  it("--dry-run touches nothing remote: no secret list, no remote migration, no real deploy", async () => {
    // As `npm run deploy:dry-run` runs it: a process of its own, its exit code.
    const { code, output, calls } = await runScript("deploy.mjs", ["--dry-run"]);
    assert.equal(code, 0, output);
    // The one call is the local build check: no `secret list`, no `--remote`, no `deploy` without --dry-run.
    assert.deepEqual(calls, [["deploy", "--dry-run"]]);
    // What a deploy would go on with, printed instead of run; the secrets as a checklist.
    for (const binding of BINDINGS)
      assert.match(output, new RegExp(`wrangler d1 migrations apply ${binding} --remote`));
    assert.match(output, /nothing remote was touched/);
    assert.match(output, /\[ \] PAYLOAD_KEYS\s+required/);
    assert.match(output, /\[ \] ADMIN_TOKEN\s+optional/);
  });

  it("npm run deploy:dry-run is the same dry run", () => {
    const scripts = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts;
    assert.equal(scripts["deploy:dry-run"], "node scripts/deploy.mjs --dry-run");
    assert.equal(scripts.deploy, "node scripts/deploy.mjs");
  });

  it("stops after a failed validation: no build, no migration, no deploy", async () => {
    const { code, output, calls } = await deploy([], {
      stub: { secrets: DEPLOYED.filter((name) => name !== "PAYLOAD_KEYS") },
    });
    assert.equal(code, 1, output);
    assert.deepEqual(calls, [SECRET_LIST]);
    assert.match(output, /PAYLOAD_KEYS is not set/);
    assert.match(output, /stopped: validation failed/);
  });

  it("stops after a failed dry run, before the migrations", async () => {
    const { code, output, calls } = await deploy([], {
      stub: { secrets: DEPLOYED, fail: "deploy --dry-run", exit: 3 },
    });
    assert.equal(code, 1, output);
    assert.deepEqual(calls, [SECRET_LIST, ["deploy", "--dry-run"]]);
    assert.match(output, /stopped: wrangler deploy --dry-run failed \(exit 3\)/);
  });

  it("stops after a failed migration, before the deploy", async () => {
    const { code, output, calls } = await deploy([], {
      stub: { secrets: DEPLOYED, fail: "d1 migrations apply" },
    });
    assert.equal(code, 1, output);
    assert.deepEqual(calls, [SECRET_LIST, ["deploy", "--dry-run"], MIGRATIONS[0]]);
    assert.match(output, /the Worker was not deployed/);
  });

  it("refuses any other option before it runs anything", async () => {
    const { code, output, calls } = await deploy(["--dry-rn"]);
    assert.equal(code, 2);
    assert.deepEqual(calls, []);
    assert.match(output, /unknown option --dry-rn/);
  });
});
