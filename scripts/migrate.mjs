#!/usr/bin/env node
// `npm run db:migrate:local` and `npm run db:migrate:remote` (and, through them, `npm run dev`, `npm run deploy`,
// the benchmark, the soak and the end-to-end test): applies migrations/ to every D1 database wrangler.toml binds,
// `DB` (shard 0, also the control database) and each event shard (`SHARD_1`, …). Every shard has the same schema
// (docs/configuration.md, "Storage"), so a shard added to wrangler.toml is migrated with no other change here.
// Wrangler's own flags go through: `--local`, `--remote`, `--persist-to DIR`, `--config FILE`.
// Locally it prints one line per migration applied (`[migrate] DB: 0001_events_and_deliveries.sql applied`, or
// `DB: up to date (14 migrations)`); wrangler's own output, a table reprinted after every step, only on failure.
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { run } from "./procs.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
// WRANGLER_BIN: another wrangler entry point (a script run with this Node), for the script tests' stub.
const WRANGLER = process.env.WRANGLER_BIN ?? path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

/**
 * Every `[[d1_databases]]` table of a wrangler.toml, in the file's order: its binding, migrations_dir, and the ids
 * that name its local files (database_id, preview_database_id; null when absent).
 */
export function d1Databases(configPath = path.join(ROOT, "wrangler.toml")) {
  const FIELDS = {
    binding: "binding",
    migrations_dir: "migrationsDir",
    database_id: "id",
    preview_database_id: "previewId",
  };
  const databases = [];
  let inD1 = false;
  for (const line of readFileSync(configPath, "utf8").split("\n")) {
    if (/^\s*\[/.test(line)) {
      inD1 = line.trim() === "[[d1_databases]]";
      if (inD1) databases.push({ binding: undefined, migrationsDir: "migrations", id: null, previewId: null });
      continue;
    }
    const field = inD1
      ? /^\s*(binding|migrations_dir|database_id|preview_database_id)\s*=\s*"([^"]+)"/.exec(line)
      : null;
    if (field) databases.at(-1)[FIELDS[field[1]]] = field[2];
  }
  return databases.filter((d) => d.binding !== undefined);
}

/** The `binding` of every `[[d1_databases]]` table of a wrangler.toml, in the file's order. */
export function d1Bindings(configPath = path.join(ROOT, "wrangler.toml")) {
  return d1Databases(configPath).map((d) => d.binding);
}

/**
 * What one `wrangler d1 migrations apply` printed, as one line per migration it applied. Wrangler reprints the whole
 * table with each migration's status after every step; a migration is applied once a table marks it ✅.
 */
export function summarizeApply(binding, output, migrationCount) {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the ANSI colour codes wrangler adds on a colour terminal
  const text = output.replace(/\x1b\[[0-9;]*m/g, "");
  const applied = new Set([...text.matchAll(/^│\s*(\S+\.sql)\s*│\s*✅/gmu)].map((m) => m[1]));
  if (applied.size > 0) return [...applied].map((name) => `${binding}: ${name} applied`);
  if (text.includes("No migrations to apply"))
    return [`${binding}: up to date${migrationCount === undefined ? "" : ` (${migrationCount} migrations)`}`];
  return [`${binding}: migrations applied`];
}

function migrationCount(configDir, migrationsDir) {
  const dir = path.resolve(configDir, migrationsDir);
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".sql")).length : undefined;
}

/**
 * Applies the migrations to every D1 binding, one after the other; rejects at the first that fails, and touches no
 * later database. They cannot go at once: each `wrangler d1 migrations apply` starts a local runtime on the same
 * --persist-to, and two of them fail with SQLITE_BUSY (seen in CI). `stdio`: "summary" (the default for a local
 * run) prints one line per migration applied through `log` and puts wrangler's output in the error; "pipe" puts it
 * in the error; "ignore" drops it; "inherit" shows it. A local run sets CI=true, so wrangler asks nothing; a remote
 * one keeps wrangler's output on the terminal ("inherit", the default) and asks before it changes a production
 * database, as `wrangler` alone would.
 */
export async function migrateAll(args, { stdio, cwd = ROOT, log = (line) => console.log(line) } = {}) {
  const remote = args.includes("--remote");
  const mode = stdio ?? (remote ? "inherit" : "summary");
  const at = args.indexOf("--config");
  const config = at >= 0 ? path.resolve(cwd, args[at + 1]) : path.join(ROOT, "wrangler.toml");
  const databases = d1Databases(config);
  if (databases.length === 0) throw new Error(`${config} binds no D1 database ([[d1_databases]])`);
  const env = remote ? process.env : { ...process.env, CI: "true" };
  const options = { cwd, env, stdio: mode === "summary" ? "pipe" : mode };
  for (const { binding, migrationsDir } of databases) {
    const result = await run([WRANGLER, "d1", "migrations", "apply", binding, ...args], options);
    if (result.status !== 0) {
      const output =
        mode === "summary" || mode === "pipe"
          ? `:\n${result.stdout}\n${result.stderr}`
          : mode === "inherit"
            ? "; see the output above"
            : "";
      throw new Error(`applying the D1 migrations to ${binding} failed (exit ${result.status})${output}`);
    }
    if (mode === "summary")
      for (const line of summarizeApply(binding, result.stdout, migrationCount(path.dirname(config), migrationsDir)))
        log(`[migrate] ${line}`);
  }
  return databases.map((d) => d.binding);
}

/**
 * Fills `persistTo` with freshly migrated local databases for a test harness (the e2e and browser tests, the bench,
 * the soak). Applying every migration takes wrangler about 15 s a database on 2 cores, and each harness starts on an
 * empty --persist-to, so CI spent two minutes migrating the same schema; the first harness now migrates into
 * node_modules/.cache and the others copy that (the bench has always copied a migrated state between its routers).
 * The cache is keyed by the wrangler version, the config's databases (bindings and ids) and every migration's name
 * and text, so a new migration or binding builds a new one. `npm run dev` still runs its own migrations on the copy: that
 * path stays exercised, and finds nothing to apply.
 */
export async function migratedState(persistTo, { config = path.join(ROOT, "wrangler.toml") } = {}) {
  const hash = createHash("sha256");
  hash.update(readFileSync(path.join(ROOT, "node_modules", "wrangler", "package.json"), "utf8"));
  // What names the databases' local files: bindings and ids. Not their names, nor the migrations' folder as written
  // (the soak's config writes it as an absolute path): its files are hashed below, so the soak shares the copy.
  for (const { binding, migrationsDir, id, previewId } of d1Databases(config)) {
    hash.update(JSON.stringify([binding, id, previewId]));
    const dir = path.resolve(path.dirname(config), migrationsDir);
    for (const name of readdirSync(dir)
      .filter((f) => f.endsWith(".sql"))
      .sort())
      hash.update(`${name}\n${readFileSync(path.join(dir, name), "utf8")}`);
  }
  const root = path.join(ROOT, "node_modules", ".cache", "router-migrated");
  const cached = path.join(root, hash.digest("hex").slice(0, 16));
  if (!existsSync(cached)) {
    mkdirSync(root, { recursive: true });
    const building = mkdtempSync(`${cached}.building-`);
    try {
      await migrateAll(["--local", "--persist-to", building, "--config", config], { stdio: "pipe" });
      // Two harnesses may build at once: the first rename wins and the other's copy is dropped.
      if (!existsSync(cached)) renameSync(building, cached);
    } catch (err) {
      if (!existsSync(cached)) throw err;
    } finally {
      rmSync(building, { recursive: true, force: true });
    }
  }
  cpSync(cached, persistTo, { recursive: true });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const args = process.argv.slice(2);
    const done = await migrateAll(args);
    if (args.includes("--remote")) console.log(`[migrate] migrations applied to ${done.join(", ")}`);
  } catch (err) {
    console.error(`[migrate] ${err.message}`);
    process.exit(1);
  }
}
