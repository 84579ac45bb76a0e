#!/usr/bin/env node
// `npm run deploy`: four steps, stopping at the first that fails, so a mistake stops before anything remote changes.
//   1. validate in deploy mode (scripts/validate.mjs --remote): the config a deploy bundles, and the deployed
//      secrets (`wrangler secret list` when logged in, else a checklist);
//   2. `wrangler deploy --dry-run`: wrangler.toml and the bundle, built and checked, nothing uploaded;
//   3. the D1 migrations on every remote database wrangler.toml binds (scripts/migrate.mjs --remote; wrangler asks
//      before it changes each one);
//   4. `wrangler deploy`.
// `npm run deploy -- --dry-run` (or `npm run deploy:dry-run`) never touches anything remote: step 1 with the secrets
// as a checklist (no call to Cloudflare), step 2, and a print of the remote steps it would run.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { d1Bindings, migrateAll } from "./migrate.mjs";
import { validate } from "./validate.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
// WRANGLER_BIN: another wrangler entry point (a script run with this Node), as scripts/migrate.mjs takes it.
const WRANGLER = process.env.WRANGLER_BIN ?? path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

function wrangler(args) {
  const result = spawnSync(process.execPath, [WRANGLER, ...args], { cwd: ROOT, stdio: "inherit" });
  return result.status ?? 1;
}

/** Runs the steps; returns the exit code. `out` and `err` print a line. */
export async function deploy(argv, { out = console.log, err = console.error } = {}) {
  const unknown = argv.filter((arg) => arg !== "--dry-run");
  if (unknown.length > 0) {
    err(`[deploy] unknown option ${unknown[0]}: the only one is --dry-run`);
    return 2;
  }
  const dryRun = argv.includes("--dry-run");
  const steps = dryRun ? 2 : 4;
  const step = (n, what) => out(`[deploy] step ${n} of ${steps}: ${what}`);

  step(1, dryRun ? "validate (deploy mode, secrets as a checklist)" : "validate (deploy mode)");
  const valid = await validate(dryRun ? ["--remote", "--offline"] : ["--remote"], { out, err });
  if (valid !== 0) {
    err("[deploy] stopped: validation failed; nothing remote was touched");
    return 1;
  }

  step(2, "wrangler deploy --dry-run");
  const built = wrangler(["deploy", "--dry-run"]);
  if (built !== 0) {
    err(`[deploy] stopped: wrangler deploy --dry-run failed (exit ${built}); nothing remote was touched`);
    return 1;
  }

  if (dryRun) {
    out("[deploy] dry run: nothing remote was touched. A deploy would go on with:");
    for (const binding of d1Bindings()) out(`  wrangler d1 migrations apply ${binding} --remote`);
    out("  wrangler deploy");
    return 0;
  }

  step(3, "D1 migrations on every remote database");
  try {
    const done = await migrateAll(["--remote"]);
    out(`[deploy] migrations applied to ${done.join(", ")}`);
  } catch (error) {
    err(`[deploy] stopped: ${error.message}; the Worker was not deployed`);
    return 1;
  }

  step(4, "wrangler deploy");
  const deployed = wrangler(["deploy"]);
  if (deployed !== 0) {
    err(`[deploy] wrangler deploy failed (exit ${deployed}); the migrations above are applied`);
    return 1;
  }
  out("[deploy] deployed: GET /readyz on the Worker answers 200 once it is ready for traffic");
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await deploy(process.argv.slice(2));
}
