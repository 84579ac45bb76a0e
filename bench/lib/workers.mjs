// Starting the two Workers under test, both with `wrangler dev` on 127.0.0.1 (workerd, local D1 and Queues), the
// same way scripts/dev.mjs starts the router.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { freePort, start, stop, tail, waitFor } from "./procs.mjs";

export const ROOT = path.resolve(import.meta.dirname, "../..");
const WRANGLER = path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

function wranglerSync(args, what) {
  // CI=true keeps wrangler from asking questions (migrations) or opening anything interactive.
  const result = spawnSync(process.execPath, [WRANGLER, ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, CI: "true" } });
  if (result.status !== 0) throw new Error(`${what} failed (exit ${result.status}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/**
 * Bundles src/ once, the way `wrangler deploy` would, and returns the bundle's path. The router then runs from this
 * frozen copy: `wrangler dev` on src/ watches the files and reloads the Worker when one changes, which mid-run would
 * drop the in-memory local queue and mix two versions of the code into one set of numbers.
 */
export function bundleRouter(workDir) {
  const outdir = path.join(workDir, "router-dist");
  wranglerSync(["deploy", "--dry-run", "--outdir", outdir], "bundling the router (wrangler deploy --dry-run)");
  return path.join(outdir, "index.js");
}

/** The D1 schema, applied to the benchmark's own database under `persistTo`. */
export function migrate(persistTo) {
  wranglerSync(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo], "applying the D1 migrations");
}

async function startWrangler(label, args, healthPath) {
  const port = await freePort();
  const inspectorPort = await freePort();
  const child = start(label, [
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
  ], { cwd: ROOT, env: { CI: "true" } });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`${label} exited with ${child.exitCode}:\n${tail(child)}`);
      return (await fetch(`${url}${healthPath}`, { signal: AbortSignal.timeout(2_000) })).status < 500;
    }, `${label} on ${url}`, 90_000);
  } catch (err) {
    await stop(child);
    throw new Error(`${err.message}\n--- ${label} output ---\n${tail(child)}`);
  }
  return { child, url, port };
}

/**
 * The router from the frozen bundle, with the repo's wrangler.toml (its D1 binding, queues and consumer settings),
 * the example secrets, and `vars` on top (the benchmark's ROUTER_CONFIG, USAGE_LOG, a short retry backoff).
 */
export function startRouter({ bundle, persistTo, vars }) {
  return startWrangler("router", [
    bundle,
    "--no-bundle",
    "--config",
    path.join(ROOT, "wrangler.toml"),
    "--persist-to",
    persistTo,
    "--env-file",
    path.join(ROOT, ".dev.vars.example"),
    // --var keeps everything after the first ":" as the value, so a JSON config passes through intact.
    ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
  ], "/healthz");
}

export function startBaseline({ persistTo }) {
  return startWrangler("baseline", ["--config", path.join(ROOT, "bench", "baseline", "wrangler.toml"), "--persist-to", persistTo], "/");
}
