// The walls between the folders of src/, checked by `npm run check:walls` (and so by `npm run check` and .ci/run).
// The flow they keep: ingest → core → storage, and delivery → core → outbound → storage. Every folder may use
// core; the entry folders (ingest, delivery, maintenance) never use one another. The operator side is two
// transports over one layer: admin (the API) and dashboard (the pages) call operations/, which does the work.
// test/walls/walls.test.mjs breaks each rule on purpose and checks that it fails.

/** Folders a folder may import, besides itself and npm packages. */
const ALLOWED = {
  core: [],
  telemetry: [],
  config: ["core", "telemetry"],
  storage: ["core", "telemetry"],
  outbound: ["core", "config", "telemetry"],
  // control: a held event's alert goes through the router's gate object (throttled like every alert).
  ingest: ["core", "config", "storage", "outbound", "control", "relay", "telemetry"],
  relay: ["core", "config", "storage", "telemetry"],
  // The destinations' Durable Objects and the Worker's calls to them: state and holds, never a delivery or a request.
  control: ["core", "storage", "telemetry"],
  delivery: ["core", "config", "storage", "outbound", "control", "telemetry"],
  // Every operator action once: validate, act, audit. Rows, keys and the destinations' controls; never a request.
  operations: ["core", "config", "storage", "control", "relay", "telemetry"],
  // The admin API and the dashboard are transports: parse, call an operation, render. Never storage or delivery.
  admin: ["core", "config", "operations", "telemetry"],
  dashboard: ["core", "config", "operations", "telemetry"],
  // The Cron's maintenance walk (retention, key rotation): rows and keys, never a delivery or a request.
  maintenance: ["core", "config", "storage", "telemetry"],
};

/**
 * The one door through a wall: a replay's new generations are written by the same function whether an operator or
 * a bulk replay's page (run by the queue consumer) asks, so operations/ calls delivery's replay write.
 */
const DOORS = { operations: "^src/delivery/replay\\.ts$" };

const FOLDERS = [...Object.keys(ALLOWED), "app"];

const folderRules = Object.entries(ALLOWED).map(([folder, allowed]) => {
  const forbidden = FOLDERS.filter((other) => other !== folder && !allowed.includes(other));
  return {
    name: `${folder}-imports-only-${allowed.length ? allowed.join("-") : "itself"}`,
    comment: `src/${folder}/ may import ${allowed.length ? allowed.map((f) => `src/${f}/`).join(", ") : "nothing else in src/"} and npm packages.`,
    severity: "error",
    from: { path: `^src/${folder}/` },
    to: {
      path: `^src/(${forbidden.join("|")})/|^src/index\\.ts$`,
      ...(DOORS[folder] ? { pathNot: DOORS[folder] } : {}),
    },
  };
});

module.exports = {
  forbidden: [
    ...folderRules,
    {
      name: "core-is-pure",
      comment: "src/core/ has no I/O: no Workers runtime modules, no Node built-ins, no HTTP framework code.",
      severity: "error",
      from: { path: "^src/core/" },
      to: { dependencyTypes: ["core"] },
    },
    {
      name: "core-no-runtime-packages",
      comment: "src/core/ may use zod and Hono's types, nothing that talks to the outside.",
      severity: "error",
      from: { path: "^src/core/" },
      to: { dependencyTypes: ["npm"], pathNot: "(^|/)node_modules/(zod|hono)/", dependencyTypesNot: ["type-only"] },
    },
    {
      name: "no-circular",
      comment: "A cycle (other than through types alone) means two modules are one.",
      severity: "error",
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only"] } },
    },
    {
      name: "no-unresolvable",
      comment: "An import that does not resolve is a typo or a missing dependency.",
      severity: "error",
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: "src-not-from-tests",
      comment: "Production code never imports the test tree.",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^(test|bench|scripts|soak)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    // Workers runtime modules (`cloudflare:workers`) count as core modules, so the purity rule catches them.
    builtInModules: { add: ["cloudflare:workers", "cloudflare:sockets", "cloudflare:email"] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      extensions: [".ts", ".js", ".json"],
    },
  },
};
