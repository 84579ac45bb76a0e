#!/usr/bin/env node
// `npm run db:migrate:local` and `npm run db:migrate:remote` (and, through them, `npm run dev`, `npm run deploy`,
// the benchmark, the soak and the end-to-end test): applies migrations/ to every D1 database wrangler.toml binds,
// `DB` (shard 0, also the control database) and each event shard (`SHARD_1`, …). Every shard has the same schema
// (docs/configuration.md, "Storage"), so a shard added to wrangler.toml is migrated with no other change here.
// Wrangler's own flags go through: `--local`, `--remote`, `--persist-to DIR`, `--config FILE`.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const ROOT = path.resolve(import.meta.dirname, "..");
const WRANGLER = path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

/** The `binding` of every `[[d1_databases]]` table of a wrangler.toml, in the file's order. */
export function d1Bindings(configPath = path.join(ROOT, "wrangler.toml")) {
  const bindings = [];
  let inD1 = false;
  for (const line of readFileSync(configPath, "utf8").split("\n")) {
    if (/^\s*\[/.test(line)) {
      inD1 = line.trim() === "[[d1_databases]]";
      continue;
    }
    const binding = inD1 ? /^\s*binding\s*=\s*"([^"]+)"/.exec(line) : null;
    if (binding) bindings.push(binding[1]);
  }
  return bindings;
}

/**
 * Applies the migrations to every D1 binding, one after the other; throws on the first that fails. `stdio` is
 * spawnSync's ("inherit" shows wrangler's output, "pipe" puts it in the error). A local run sets CI=true, so
 * wrangler asks nothing; a remote one asks before it changes a production database, as `wrangler` alone would.
 */
export function migrateAll(args, { stdio = "inherit", cwd = ROOT } = {}) {
  const at = args.indexOf("--config");
  const config = at >= 0 ? path.resolve(cwd, args[at + 1]) : path.join(ROOT, "wrangler.toml");
  const bindings = d1Bindings(config);
  if (bindings.length === 0) throw new Error(`${config} binds no D1 database ([[d1_databases]])`);
  const env = args.includes("--remote") ? process.env : { ...process.env, CI: "true" };
  for (const binding of bindings) {
    const result = spawnSync(process.execPath, [WRANGLER, "d1", "migrations", "apply", binding, ...args], {
      cwd,
      stdio,
      encoding: "utf8",
      env,
    });
    if (result.status !== 0) {
      const output = stdio === "pipe" ? `:\n${result.stdout}\n${result.stderr}` : "; see the output above";
      throw new Error(`applying the D1 migrations to ${binding} failed (exit ${result.status})${output}`);
    }
  }
  return bindings;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const done = migrateAll(process.argv.slice(2));
    console.log(`[migrate] migrations applied to ${done.join(", ")}`);
  } catch (err) {
    console.error(`[migrate] ${err.message}`);
    process.exit(1);
  }
}
