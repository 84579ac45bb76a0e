// Shared by the validate and deploy tests: runs scripts/validate.mjs or scripts/deploy.mjs with a wrangler stub
// (wrangler-stub.mjs) and gives the exit code, the output and the wrangler calls the stub recorded. `runScript` starts
// the script as `npm run` does, in a process of its own; `runInProcess` calls its exported function, which is the
// same code without a Node start and a module load per call, so most tests use it.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

export const ROOT = path.resolve(import.meta.dirname, "../..");
const STUB = path.join(import.meta.dirname, "wrangler-stub.mjs");
// The scripts read WRANGLER_BIN when they load: set before runInProcess imports them.
process.env.WRANGLER_BIN = STUB;

const made = [];

/** A fresh directory for one test's files; `removeTempDirs` removes them all. */
export function tempDir() {
  const dir = mkdtempSync(path.join(tmpdir(), "router-script-test-"));
  made.push(dir);
  return dir;
}

export function removeTempDirs() {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Writes `text` (or JSON of a non-string) to `name` in `dir`; returns the file's path. */
export function writeTemp(dir, name, content) {
  const file = path.join(dir, name);
  writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content, null, 2));
  return file;
}

function stubEnv(stub, log) {
  return {
    WRANGLER_BIN: STUB,
    WRANGLER_STUB_LOG: log,
    WRANGLER_STUB_SECRETS: JSON.stringify(stub.secrets ?? []),
    WRANGLER_STUB_FAIL: stub.fail ?? "",
    WRANGLER_STUB_EXIT: String(stub.exit ?? 1),
  };
}

function recordedCalls(log) {
  return existsSync(log)
    ? readFileSync(log, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line))
    : [];
}

/**
 * Calls the function `name` that `scripts/<script>` exports with `args`, its lines captured, in this process: the
 * stub's settings go through this process's environment, which the stub inherits, so calls must not overlap.
 */
export async function runInProcess(script, name, args, { stub = {} } = {}) {
  const log = path.join(tempDir(), "wrangler-calls.jsonl");
  Object.assign(process.env, stubEnv(stub, log));
  const run = (await import(pathToFileURL(path.join(ROOT, "scripts", script)).href))[name];
  const lines = [];
  const capture = (line) => lines.push(line);
  const code = await run(args, { out: capture, err: capture });
  return { code, output: lines.join("\n"), calls: recordedCalls(log) };
}

/**
 * Runs `scripts/<script>` with `args`. `stub`: the stub's settings (`secrets`: the names `secret list` gives;
 * `fail` and `exit`: which call fails and how). Returns { code, output, calls }.
 */
export function runScript(script, args, { stub = {} } = {}) {
  const dir = tempDir();
  const log = path.join(dir, "wrangler-calls.jsonl");
  const env = { ...process.env, ...stubEnv(stub, log) };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, "scripts", script), ...args], {
      cwd: ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
    });
    child.stderr.on("data", (chunk) => {
      output += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output, calls: recordedCalls(log) }));
  });
}
