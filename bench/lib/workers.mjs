// Starting the two Workers under test, both with `wrangler dev` on 127.0.0.1 (workerd, local D1 and Queues), the
// same way scripts/dev.mjs starts the router.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { migrateAll, migratedState } from "../../scripts/migrate.mjs";
import { freePort, run, start, stop, tail, waitFor } from "../../scripts/procs.mjs";

export const ROOT = path.resolve(import.meta.dirname, "../..");
const WRANGLER = path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

/** A wrangler command that must succeed; asynchronous, so the setup can bundle while it migrates. */
async function wranglerRun(args, what) {
  // CI=true keeps wrangler from asking questions (migrations) or opening anything interactive.
  const result = await run([WRANGLER, ...args], { cwd: ROOT, env: { ...process.env, CI: "true" } });
  if (result.status !== 0)
    throw new Error(`${what} failed (exit ${result.status}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/**
 * Bundles src/ once, the way `wrangler deploy` would, and returns the bundle's path. The router then runs from this
 * frozen copy: `wrangler dev` on src/ watches the files and reloads the Worker when one changes, which mid-run would
 * drop the in-memory local queue and mix two versions of the code into one set of numbers.
 */
export async function bundleRouter(workDir) {
  const outdir = path.join(workDir, "router-dist");
  await wranglerRun(["deploy", "--dry-run", "--outdir", outdir], "bundling the router (wrangler deploy --dry-run)");
  return path.join(outdir, "index.js");
}

/** The D1 schema, applied to the benchmark's own databases (every D1 binding, each shard) under `persistTo`. */
export function migrate(persistTo) {
  return migratedState(persistTo);
}

async function startWrangler(label, args, healthPath) {
  const port = await freePort();
  const inspectorPort = await freePort();
  const child = start(
    label,
    [
      WRANGLER,
      "dev",
      ...args,
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(inspectorPort),
      "--show-interactive-dev-session=false",
    ],
    { cwd: ROOT, env: { CI: "true" } },
  );
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`${label} exited with ${child.exitCode}:\n${tail(child)}`);
        return (await fetch(`${url}${healthPath}`, { signal: AbortSignal.timeout(2_000) })).status < 500;
      },
      `${label} on ${url}`,
      90_000,
    );
  } catch (err) {
    await stop(child);
    throw new Error(`${err.message}\n--- ${label} output ---\n${tail(child)}`);
  }
  return { child, url, port };
}

/**
 * Writes a config only when its text changed. `wrangler dev` watches its config file and reloads on any write, and a
 * reload drops the secrets it was given with `--env-file`: a router still running on the file would answer every
 * request 503 `source_misconfigured` from then on (scenario 1b rewrote the ingest-only file under the ingest router).
 */
function writeConfig(file, text) {
  if (existsSync(file) && readFileSync(file, "utf8") === text) return;
  writeFileSync(file, text);
}

/** The `[[queues.consumers]]` tables of wrangler.toml, as {queue, max_batch_size, …}, for the report. */
export function queueConsumers() {
  return tomlTables(readFileSync(path.join(ROOT, "wrangler.toml"), "utf8"))
    .filter((table) => table.header === "[[queues.consumers]]")
    .map((table) =>
      Object.fromEntries(
        table.lines
          .map((line) => /^(\w+)\s*=\s*(.+?)\s*$/.exec(line))
          .filter(Boolean)
          .map(([, k, v]) => [k, parseTomlValue(v)]),
      ),
    );
}

function parseTomlValue(raw) {
  try {
    return JSON.parse(raw);
  } catch {
    return raw; // not a plain string or number; shown as written
  }
}

/** Splits TOML text into its tables; enough for wrangler.toml, whose values are all on one line. */
function tomlTables(text) {
  const tables = [{ header: "", lines: [] }];
  for (const line of text.split("\n")) {
    if (/^\s*\[/.test(line)) tables.push({ header: line.trim(), lines: [] });
    tables.at(-1).lines.push(line);
  }
  return tables;
}

/**
 * The repo's wrangler.toml without its queue consumers, for the ingest scenarios. In production the consumer runs
 * in invocations of its own, elsewhere on Cloudflare's network; here it would share the two cores with the ingest
 * path and drain the backlog of one measurement during the next one (the baseline's included). Without a consumer
 * the local queue still takes every send (and drops the message), so the ingest path does exactly the same work.
 */
export function ingestOnlyConfig(workDir) {
  const file = path.join(workDir, "wrangler.ingest-only.toml");
  const text = tomlTables(readFileSync(path.join(ROOT, "wrangler.toml"), "utf8"))
    .filter((table) => table.header !== "[[queues.consumers]]")
    .flatMap((table) => table.lines)
    .join("\n")
    // Relative paths would resolve against the temp dir; `main` is replaced by the bundle on the command line anyway.
    .replace(/^main\s*=.*$/m, `main = ${JSON.stringify(path.join(ROOT, "src/index.ts"))}`)
    .replace(/^migrations_dir\s*=.*$/m, `migrations_dir = ${JSON.stringify(path.join(ROOT, "migrations"))}`);
  writeConfig(file, text);
  return file;
}

/**
 * The router from the frozen bundle, with the repo's wrangler.toml (its D1 binding, queues and consumer settings),
 * the example secrets (or `envFile`), and `vars` on top (the benchmark's ROUTER_CONFIG, USAGE_LOG, a short retry backoff).
 */
export function startRouter({
  label = "router",
  bundle,
  persistTo,
  vars,
  config = path.join(ROOT, "wrangler.toml"),
  envFile = path.join(ROOT, ".dev.vars.example"),
}) {
  return startWrangler(
    label,
    [
      bundle,
      "--no-bundle",
      "--config",
      config,
      "--persist-to",
      persistTo,
      "--env-file",
      envFile,
      // --var keeps everything after the first ":" as the value, so a JSON config passes through intact.
      ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
    ],
    "/healthz",
  );
}

export function startBaseline({ persistTo }) {
  return startWrangler(
    "baseline",
    ["--config", path.join(ROOT, "bench", "baseline", "wrangler.toml"), "--persist-to", persistTo],
    "/",
  );
}

/**
 * The end-to-end I/O floor: the baseline Worker with a consumer on its queue, under the router's own consumer
 * settings (wrangler.toml's delivery queue), so that both drain their queues the same way.
 */
export function startE2eFloor({ workDir, persistTo }) {
  const settings = queueConsumers().find((c) => !String(c.queue).endsWith("-dlq")) ?? {};
  const consumer = Object.entries(settings)
    .filter(([key]) => key !== "queue" && key !== "dead_letter_queue")
    .map(([key, value]) => `${key} = ${JSON.stringify(value)}`);
  const file = path.join(workDir, "wrangler.e2e-floor.toml");
  writeFileSync(
    file,
    [
      'name = "bench-e2e-floor"',
      `main = ${JSON.stringify(path.join(ROOT, "bench", "baseline", "index.js"))}`,
      'compatibility_date = "2026-10-20"',
      "[[d1_databases]]",
      'binding = "DB"',
      'database_name = "bench-e2e-floor"',
      'database_id = "00000000-0000-4000-8000-000000000001"',
      "[[queues.producers]]",
      'binding = "QUEUE"',
      'queue = "bench-e2e-floor"',
      "[[queues.consumers]]",
      'queue = "bench-e2e-floor"',
      ...consumer,
      "",
    ].join("\n"),
  );
  return startWrangler("e2e floor", ["--config", file, "--persist-to", persistTo], "/");
}

/**
 * An ingest-only wrangler config with `count` event shards (DB, SHARD_1, and soak-style extra bindings past the
 * repo's), its databases migrated under `persistTo`, and the `storage` block that names them.
 */
export async function shardedIngestConfig(workDir, persistTo, count) {
  const base = readFileSync(ingestOnlyConfig(workDir), "utf8").replace(
    /^migrations_dir\s*=.*$/gm,
    `migrations_dir = ${JSON.stringify(path.join(ROOT, "migrations"))}`,
  );
  const extra = Array.from({ length: Math.max(0, count - 2) }, (_, i) => {
    const binding = `SHARD_${i + 2}`;
    return `\n[[d1_databases]]\nbinding = "${binding}"\ndatabase_name = "bench-${binding.toLowerCase()}"\ndatabase_id = "00000000-0000-0000-0000-0000000000${String(i + 2).padStart(2, "0")}"\nmigrations_dir = ${JSON.stringify(path.join(ROOT, "migrations"))}\n`;
  });
  const file = path.join(workDir, `wrangler.shards-${count}.toml`);
  writeConfig(file, `${base}\n${extra.join("")}`);
  await migrateAll(["--local", "--persist-to", persistTo, "--config", file], { stdio: "pipe" });
  const shards = Array.from({ length: count }, (_, id) => ({ id, binding: id === 0 ? "DB" : `SHARD_${id}` }));
  return { file, storage: { shards } };
}
