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
