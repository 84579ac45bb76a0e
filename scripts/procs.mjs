// Child processes and ports for the benchmark and the end-to-end test. Everything started here is registered and
// stopped by process group, also when the run fails or is interrupted: wrangler starts workerd as a grandchild, and
// killing only the direct child would leave workerd holding its port.
import { spawn } from "node:child_process";
import { appendFileSync } from "node:fs";
import path from "node:path";
import { createServer } from "node:net";

const children = new Set();

/** A port the OS just handed out on loopback; closed again before use, so there is a tiny race, acceptable here. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `process.execPath args…` (Node 24 when run through npm) in its own process group. Output is kept in
 * memory line by line, because the router's usage lines arrive on wrangler's stdout.
 */
export function start(label, args, { cwd, env, ipc = false } = {}) {
  const child = spawn(process.execPath, args, {
    cwd,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ipc ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "pipe", "pipe"],
  });
  child.label = label;
  child.lines = [];
  child.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  for (const stream of [child.stdout, child.stderr]) {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop();
      for (const line of parts) child.lines.push(line);
      // PROCS_LOG_DIR=<dir>: each child's output also goes to <dir>/<label>.log, to read a long run afterwards.
      if (process.env.PROCS_LOG_DIR && parts.length > 0)
        appendFileSync(
          path.join(process.env.PROCS_LOG_DIR, `${label.replace(/[^\w.-]+/g, "_")}.log`),
          `${parts.join("\n")}\n`,
        );
    });
  }
  children.add(child);
  child.exited.then(() => children.delete(child));
  return child;
}

/**
 * Runs `process.execPath args…` to its end without blocking, and answers as spawnSync would: its status, and what it
 * printed when `stdio` is "pipe" (the default; "inherit" shows it, "ignore" drops it). `env` is its whole environment.
 */
export function run(args, { cwd, env = process.env, stdio = "pipe" } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, env, stdio });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk) => (stdout += chunk));
    child.stderr?.setEncoding("utf8").on("data", (chunk) => (stderr += chunk));
    child.on("error", (err) => resolve({ status: null, stdout, stderr: `${stderr}${err.message}` }));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/** The last lines a child printed, for error messages when it fails to come up. */
export function tail(child, n = 40) {
  return child.lines.slice(-n).join("\n");
}

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is already gone
  }
}

/** Stops one child's whole process group: SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stop(child, graceMs = 5_000) {
  if (child.exitCode !== null || child.signalCode !== null) {
    killGroup(child, "SIGKILL"); // the leader exited; make sure no grandchild (workerd) outlives it
    return;
  }
  killGroup(child, "SIGTERM");
  const timer = setTimeout(() => killGroup(child, "SIGKILL"), graceMs);
  await child.exited;
  clearTimeout(timer);
  // wrangler may exit before its workerd does; take the rest of the group down too
  killGroup(child, "SIGKILL");
}

export async function stopAll() {
  await Promise.all([...children].map((child) => stop(child)));
}

/** Last resort on exit (synchronous only): no graceful wait, just make sure nothing is left behind. */
function killAllNow() {
  for (const child of children) {
    killGroup(child, "SIGTERM");
    killGroup(child, "SIGKILL");
  }
}
process.on("exit", killAllNow);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping every process this run started`);
    process.exit(130);
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function waitFor(check, what, timeoutMs = 60_000, everyMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
}
