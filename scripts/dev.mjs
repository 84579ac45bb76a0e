#!/usr/bin/env node
// `npm run dev`: apply D1 migrations to every local database, DB and each event shard (scripts/migrate.mjs), then
// start `wrangler dev` on 127.0.0.1 with local D1, local Queues (consumer included), the Cron Trigger testable at
// /__scheduled, and local secrets.
// Any wrangler flag after `--` goes through: `npm run dev -- --port 9000 --ip 0.0.0.0` replaces the defaults
// (127.0.0.1:8787, or the PORT variable), and `--persist-to DIR` reaches the migrations too.
// The local loop shows everything: the scheduled handler runs every minute (scripts/cron-ticker.mjs; `--no-cron` turns
// it off), the rollup walk stays only ROLLUP_LAG_SECONDS behind, so the overview fills as you send, and
// `RECEIVER_PORT=9100` (or `--receiver-port 9100`) points the sample config's destinations and alerts at a receiver
// on that port. Both reach only this local Worker, as `--var` values; a deployed Worker reads neither.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { startCronTicker, takeCronOptOut } from "./cron-ticker.mjs";
import { DEFAULT_RECEIVER_PORT, pointAtReceiver, receiverPort, routerConfig } from "./local-env.mjs";
import { migrateAll } from "./migrate.mjs";

const root = path.resolve(import.meta.dirname, "..");
// WRANGLER_BIN: another wrangler entry point (a script run with this Node), for the script tests' stub.
const wrangler = process.env.WRANGLER_BIN ?? path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");
// Seconds the rollup walk stays behind locally (production: two minutes); `-- --var ROLLUP_LAG_SECONDS:N` wins.
const LOCAL_ROLLUP_LAG_SECONDS = 10;

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

const { cron, rest: devArgs } = takeCronOptOut(process.argv.slice(2));
const receiverFlag = takeFlag(devArgs, "receiver-port");
const portFlag = takeFlag(receiverFlag.rest, "port");
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
let receiver;
try {
  receiver =
    receiverFlag.value === undefined
      ? receiverPort(process.env.RECEIVER_PORT)
      : receiverPort(receiverFlag.value, "--receiver-port");
} catch (err) {
  console.error(`[dev] ${err.message}`);
  process.exit(2);
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

// Fail before traffic: a config or secret mistake stops here, by field (scripts/validate.mjs), not at the first webhook.
const { validate } = await import("./validate.mjs");
if ((await validate([])) !== 0) {
  console.error("[dev] not started: fix the problems above, or run `npm run validate` to check again");
  process.exit(1);
}

// Every D1 database wrangler.toml binds: DB (shard 0, the control database) and each event shard.
try {
  await migrateAll(["--local", ...persistArgs]);
} catch (err) {
  console.error(`[dev] ${err.message}`);
  process.exit(1);
}

const args = [wrangler, "dev", "--ip", ip, "--port", port, "--test-scheduled", "--show-interactive-dev-session=false"];
if (usingExample) args.push("--env-file", ".dev.vars.example");
// --var keeps everything after the first ":" as the value; a later --var of the same name (after `--`) wins.
args.push("--var", `ROLLUP_LAG_SECONDS:${LOCAL_ROLLUP_LAG_SECONDS}`);
if (receiver !== DEFAULT_RECEIVER_PORT) {
  args.push("--var", `ROUTER_CONFIG:${JSON.stringify(pointAtReceiver(routerConfig(), receiver))}`);
  console.log(
    `[dev] the sample config's destinations and alerts point at 127.0.0.1:${receiver} (RECEIVER_PORT); edits to router.config.json apply when dev restarts`,
  );
}
console.log(`[dev] router on http://${ip}:${port} (webhooks at /webhooks/<source>, sweeper at /__scheduled)`);
const child = spawn(process.execPath, [...args, ...extraArgs], { cwd: root, stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
// Through loopback when wrangler listens on every address.
const tickerHost = ip === "0.0.0.0" || ip === "::" ? "127.0.0.1" : ip.includes(":") ? `[${ip}]` : ip;
if (cron) startCronTicker({ url: `http://${tickerHost}:${port}` });
