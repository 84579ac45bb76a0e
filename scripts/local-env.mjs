// Shared by the local tools: the secrets `npm run dev` uses (.dev.vars, else .dev.vars.example) and the config.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dirname, "..");

export function localSecrets() {
  const file = existsSync(path.join(ROOT, ".dev.vars")) ? ".dev.vars" : ".dev.vars.example";
  const values = {};
  for (const line of readFileSync(path.join(ROOT, file), "utf8").split("\n")) {
    const match = /^\s*([A-Z][A-Z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (match?.[2]) values[match[1]] = match[2].replace(/^(['"])(.*)\1$/, "$2");
  }
  return { file, values };
}

export function routerConfig() {
  return JSON.parse(readFileSync(path.join(ROOT, "router.config.json"), "utf8"));
}

export function parseArgs(argv, flags) {
  const options = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) {
      options._.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split("=", 2);
    if (!(name in flags)) throw new Error(`unknown option --${name}`);
    if (flags[name] === "boolean") options[name] = true;
    else {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value`);
      options[name] = flags[name] === "number" ? Number(value) : value;
    }
  }
  return options;
}

/** Where `npm run receiver` listens, and where the sample config's destinations and alert channel point. */
export const DEFAULT_RECEIVER_PORT = 8788;
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** `RECEIVER_PORT` (or a flag's value): a port number, else DEFAULT_RECEIVER_PORT when unset. */
export function receiverPort(text, name = "RECEIVER_PORT") {
  if (text === undefined || text === "") return DEFAULT_RECEIVER_PORT;
  const port = Number(text);
  if (!/^\d+$/.test(String(text)) || port < 1 || port > 65_535)
    throw new Error(`${name} must be a port number from 1 to 65535, got "${text}"`);
  return port;
}

/**
 * The config with every destination and alert channel that points at the receiver's default port on loopback moved
 * to `port`: one variable instead of editing four URLs. Any other URL is left as it is.
 */
export function pointAtReceiver(config, port) {
  const moved = structuredClone(config);
  const move = (holder) => {
    if (typeof holder?.url !== "string") return;
    let url;
    try {
      url = new URL(holder.url);
    } catch {
      return; // not a URL: the config check names it
    }
    if (!LOOPBACK.has(url.hostname) || url.port !== String(DEFAULT_RECEIVER_PORT)) return;
    url.port = String(port);
    holder.url = url.href;
  };
  for (const destination of Object.values(moved.destinations ?? {})) move(destination);
  for (const channel of Object.values(moved.alerts?.channels ?? {})) move(channel);
  return moved;
}
