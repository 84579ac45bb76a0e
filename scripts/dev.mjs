#!/usr/bin/env node
// `npm run dev`: apply D1 migrations to every local database, DB and each event shard (scripts/migrate.mjs), then
// start `wrangler dev` on 127.0.0.1 with local D1, local Queues (consumer included), the Cron Trigger testable at
// /__scheduled, and local secrets.
// Any wrangler flag after `--` goes through: `npm run dev -- --port 9000 --ip 0.0.0.0` replaces the defaults
// (127.0.0.1:8787, or the PORT variable), and `--persist-to DIR` reaches the migrations too.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { migrateAll } from "./migrate.mjs";

const root = path.resolve(import.meta.dirname, "..");
const wrangler = path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");

/** Takes `--name value` or `--name=value` out of the arguments; the last one given wins, as with wrangler. */
function takeFlag(args, name) {
  let value;
  const rest = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === `--${name}`) value = args[++i];
    else if (arg.startsWith(`--${name}=`)) value = arg.slice(name.length + 3);
    else rest.push(arg);
  }
  return { value, rest };
}

const portFlag = takeFlag(process.argv.slice(2), "port");
const ipFlag = takeFlag(portFlag.rest, "ip");
const port = portFlag.value ?? process.env.PORT ?? "8787";
const ip = ipFlag.value ?? "127.0.0.1";
const extraArgs = ipFlag.rest;
for (const [name, value] of [
  ["port", port],
  ["ip", ip],
]) {
  if (!value) {
    console.error(`[dev] --${name} needs a value`);
    process.exit(2);
  }
}
// --persist-to must reach the migrations too, or the Worker starts on an empty database.
const persistIndex = extraArgs.indexOf("--persist-to");
const persistArgs = persistIndex >= 0 ? extraArgs.slice(persistIndex, persistIndex + 2) : [];

const usingExample = !existsSync(path.join(root, ".dev.vars"));
console.log(
  usingExample
    ? "[dev] secrets: .dev.vars not found, using the committed .dev.vars.example (copy it to .dev.vars to use your own)"
    : "[dev] secrets: using .dev.vars",
);

// Every D1 database wrangler.toml binds: DB (shard 0, the control database) and each event shard.
try {
  migrateAll(["--local", ...persistArgs]);
} catch (err) {
  console.error(`[dev] ${err.message}`);
  process.exit(1);
}

const args = [wrangler, "dev", "--ip", ip, "--port", port, "--test-scheduled", "--show-interactive-dev-session=false"];
if (usingExample) args.push("--env-file", ".dev.vars.example");
console.log(`[dev] router on http://${ip}:${port} (webhooks at /webhooks/<source>, sweeper at /__scheduled)`);
const child = spawn(process.execPath, [...args, ...extraArgs], { cwd: root, stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
