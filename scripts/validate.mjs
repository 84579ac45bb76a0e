#!/usr/bin/env node
// `npm run validate`: is the Worker ready for traffic, checked before any traffic (and offline)? The config it would
// load, against the router's own schema and cross references, every secret that config names (PAYLOAD_KEYS among
// them; ADMIN_TOKEN is listed but optional), and every shard's D1 binding in wrangler.toml. The rules are the Worker's own
// (src/core/readiness.ts, which `GET /readyz` runs too); this only says where the config and the secrets come from.
//
//   npm run validate                    the config `npm run dev` runs (ROUTER_CONFIG in the vars file, else
//                                       router.config.json) and the secrets in .dev.vars (.dev.vars.example when
//                                       .dev.vars is absent, as dev does)
//   npm run validate -- --remote        the config a deploy bundles (router.config.json, wrangler.toml's [vars]) and
//                                       the deployed secrets, from `wrangler secret list` when logged in, else a
//                                       checklist of the names to set with `wrangler secret put`
//   ... --remote --offline              the same, with the checklist and no call to Cloudflare (deploy's dry run)
//   --router-config FILE                another config file; --env-file FILE another vars file (local mode)
//
// Each problem is one line, the config field (or the secret's name) first. Values are never printed. Exits 1 on any
// problem, 2 on a bad option.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { BUILTIN_PROVIDERS } from "../src/core/providers/registry.ts";
import { checkReadiness } from "../src/core/readiness.ts";
import { d1Bindings } from "./migrate.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
// WRANGLER_BIN: another wrangler entry point (a script run with this Node), as scripts/migrate.mjs takes it.
const WRANGLER = process.env.WRANGLER_BIN ?? path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
const WRANGLER_TOML = path.join(ROOT, "wrangler.toml");
const FLAGS = { remote: "boolean", offline: "boolean", "router-config": "string", "env-file": "string" };

/** A .dev.vars file as wrangler reads it: `NAME=value` lines, optionally quoted; `#` lines are comments. */
export function readVarsFile(file) {
  const vars = {};
  for (const line of readFileSync(file, "utf8").split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) vars[match[1]] = match[2].replace(/^(['"])(.*)\1$/, "$2");
  }
  return vars;
}

/** wrangler.toml's `[vars]`: the plain settings every deployment of this file gets (`NAME = "value"` lines). */
export function tomlVars(file = WRANGLER_TOML) {
  const vars = {};
  let inVars = false;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (/^\s*\[/.test(line)) {
      inVars = line.trim() === "[vars]";
      continue;
    }
    const match = inVars ? /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"([^"]*)"/.exec(line) : null;
    if (match) vars[match[1]] = match[2];
  }
  return vars;
}

function parseOptions(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].startsWith("--") ? argv[i].slice(2).split(/=(.*)/s, 2) : [argv[i]];
    if (!(name in FLAGS)) throw new Error(`unknown option ${argv[i]}`);
    if (FLAGS[name] === "boolean") options[name] = true;
    else {
      const value = inline ?? argv[++i];
      if (value === undefined || value === "") throw new Error(`--${name} needs a value`);
      options[name] = value;
    }
  }
  if (options.offline && !options.remote) throw new Error("--offline goes with --remote");
  if (options.remote && options["env-file"]) throw new Error("--env-file is for local checks; --remote reads none");
  return options;
}

/** The names `wrangler secret list` gives, or why there are none (not logged in, offline, no such Worker yet). */
function deployedSecretNames() {
  // No terminal: a wrangler that is not logged in says so and exits, instead of opening a browser to log in.
  const result = spawnSync(process.execPath, [WRANGLER, "secret", "list", "--format", "json"], {
    cwd: ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 60_000,
  });
  if (result.status !== 0)
    return {
      error: `wrangler secret list failed (exit ${result.status ?? "timeout"}): not logged in, offline, or no such Worker yet`,
    };
  const out = result.stdout ?? "";
  try {
    const list = JSON.parse(out.slice(out.indexOf("["), out.lastIndexOf("]") + 1));
    return { names: new Set(list.map((secret) => secret.name)) };
  } catch {
    return { error: "wrangler secret list printed no list" };
  }
}

/** Each secret once, with what it is for and whether it is needed: the lines to go through before a deploy. */
function checklist(requirements) {
  const byName = new Map();
  for (const requirement of requirements) {
    for (const name of requirement.names) {
      const entry = byName.get(name) ?? { name, needs: new Set(), purposes: new Set() };
      entry.needs.add(
        requirement.need === "one_of"
          ? `one of ${requirement.names.join(", ")}`
          : requirement.need === "optional"
            ? "optional"
            : "required",
      );
      entry.purposes.add(requirement.purpose);
      byName.set(name, entry);
    }
  }
  const width = Math.max(...[...byName.keys()].map((name) => name.length));
  // A name another field requires is required, whatever else names it.
  return [...byName.values()].map(({ name, needs, purposes }) => {
    const need = needs.has("required") ? "required" : [...needs].join("; ");
    return `  [ ] ${name.padEnd(width)}  ${need}: ${[...purposes].join("; ")}`;
  });
}

/**
 * Runs the checks and prints them; returns the exit code (0 ready, 1 a problem). `argv` are the options above;
 * `out` and `err` print a line (console.log and console.error unless a caller passes its own).
 */
export async function validate(argv, { out = console.log, err = console.error } = {}) {
  let options;
  try {
    options = parseOptions(argv);
  } catch (error) {
    err(`[validate] ${error.message}`);
    return 2;
  }
  const remote = Boolean(options.remote);
  const tomlSettings = tomlVars();
  let vars = tomlSettings;
  let varsFile;
  if (!remote) {
    varsFile = options["env-file"] ?? (existsSync(path.join(ROOT, ".dev.vars")) ? ".dev.vars" : ".dev.vars.example");
    const file = path.resolve(ROOT, varsFile);
    if (!existsSync(file)) {
      err(`[validate] ${varsFile}: no such file`);
      return 2;
    }
    // As `wrangler dev` does: the file's values over wrangler.toml's [vars].
    vars = { ...tomlSettings, ...readVarsFile(file) };
  }

  // The config the Worker would load: an explicit file, else ROUTER_CONFIG (local vars), else router.config.json.
  let origin;
  let raw;
  if (options["router-config"] === undefined && !remote && vars.ROUTER_CONFIG) {
    origin = `ROUTER_CONFIG (${varsFile})`;
    raw = vars.ROUTER_CONFIG;
  } else {
    origin = options["router-config"] ?? "router.config.json";
    const file = path.resolve(ROOT, origin);
    if (!existsSync(file)) {
      err(`[validate] ${origin}: no such file`);
      return 2;
    }
    raw = readFileSync(file, "utf8");
  }

  const bindings = new Set(d1Bindings(WRANGLER_TOML));
  let secretsFrom;
  let isSet;
  let unchecked;
  if (!remote) {
    secretsFrom = varsFile;
    isSet = (name) => typeof vars[name] === "string" && vars[name].length > 0;
  } else {
    const deployed = options.offline ? { error: "--offline" } : deployedSecretNames();
    if (deployed.names) {
      secretsFrom = "wrangler secret list";
      isSet = (name) => deployed.names.has(name);
    } else {
      // Not checked, so not a problem: the checklist below says what to set.
      unchecked = deployed.error;
      isSet = () => true;
    }
  }

  const report = await checkReadiness({
    raw,
    origin,
    providers: BUILTIN_PROVIDERS,
    allowInsecureDestinations: vars.ALLOW_INSECURE_DESTINATIONS === "true",
    isSet,
    isD1Binding: (name) => bindings.has(name),
    payloadKeys: remote ? undefined : vars.PAYLOAD_KEYS,
  });

  const where = `${origin}${secretsFrom ? `, secrets from ${secretsFrom}` : ""}`;
  if (remote)
    out(
      "[validate] deploy mode: a ROUTER_CONFIG variable set in the Cloudflare dashboard overrides router.config.json and is not checked here",
    );
  if (unchecked !== undefined && report.config) {
    out(
      `[validate] the deployed secrets were not checked (${unchecked}); set each of these with \`npx wrangler secret put NAME\` before traffic:`,
    );
    for (const line of checklist(report.secrets)) out(line);
  }
  if (!report.ready) {
    err(`[validate] ${where}: ${report.problems.length} problem${report.problems.length === 1 ? "" : "s"}`);
    for (const problem of report.problems) {
      const at = problem.field ?? problem.names?.join(", ");
      const unset = problem.check === "secret" && problem.reason !== "malformed";
      const it = problem.names?.length > 1 ? "one of them" : "it";
      const fix = !unset
        ? ""
        : remote
          ? ` (npx wrangler secret put ${problem.names[0]})`
          : varsFile === ".dev.vars.example"
            ? ` (set ${it} in .dev.vars: copy .dev.vars.example to .dev.vars first)`
            : ` (set ${it} in ${varsFile})`;
      err(`  ${problem.check.padEnd(7)} ${at}: ${problem.message}${fix}`);
    }
    err("[validate] not ready: fix the fields above (docs/configuration.md, docs/deploy.md)");
    return 1;
  }
  out(
    `[validate] ${where}: the config is valid${unchecked === undefined ? " and every secret it needs is set: ready" : "; the secrets are the checklist above"}`,
  );
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await validate(process.argv.slice(2));
}
