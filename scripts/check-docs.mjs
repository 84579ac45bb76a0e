#!/usr/bin/env node
// The docs against the code: README.md and docs/*.md drift as the tree changes, so this fails when they do.
// - docs/architecture.md names every folder of src/ (as `src/<folder>/`) and every migration (as `NNNN`), and the
//   files its folder table names are in their folders;
// - no page names a src/ folder that is gone, or a repository path (src/, test/, scripts/, …) that does not exist;
// - every `npm run <script>` a page mentions is a script in package.json;
// - every relative link resolves, to a file and, with a #fragment, to a heading of that file;
// - docs/errors.md lists every error code of src/core/errors.ts, in a table row of its status;
// - every docs/*.md page is linked from the README, the README stays under 30 KB, and its sample `npm run dev`
//   output lists exactly the migrations in migrations/.
// Plain Node, no dependencies: `node scripts/check-docs.mjs`.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";

const ROOT = path.resolve(import.meta.dirname, "..");
const README = "README.md";
const ARCHITECTURE = "docs/architecture.md";
const ERRORS = "docs/errors.md";
const README_MAX_BYTES = 30 * 1024;
/** Top-level folders whose paths the pages may name; a path under one of them must exist. */
const CHECKED_ROOTS = ["src", "test", "scripts", "bench", "soak", "migrations", "docs"];
/** A path with one of these is a pattern or a placeholder (`test/providers/*.test.ts`, `<name>.ts`), not a file. */
const PLACEHOLDER = /[*<>…{}]/;

const failures = [];
const fail = (page, message) => failures.push(`${page}: ${message}`);

const read = (relative) => readFileSync(path.join(ROOT, relative), "utf8");
const exists = (relative) => existsSync(path.join(ROOT, relative));

const pageNames = [
  README,
  ...readdirSync(path.join(ROOT, "docs"))
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => `docs/${name}`),
];
const pages = new Map(pageNames.map((name) => [name, read(name)]));
const srcFolders = readdirSync(path.join(ROOT, "src"), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();
const migrations = readdirSync(path.join(ROOT, "migrations"))
  .filter((name) => /^\d{4}_.*\.sql$/.test(name))
  .sort();
const scripts = JSON.parse(read("package.json")).scripts ?? {};

/** Every file under a folder of the repository, as repository paths. */
function filesUnder(folder) {
  return readdirSync(path.join(ROOT, folder), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath ?? entry.path, entry.name))
    .map((file) => path.relative(ROOT, file).split(path.sep).join("/"));
}

/** The text outside fenced code blocks, line for line (fenced lines blanked), so links in code are not links. */
function prose(text) {
  let fenced = false;
  return text
    .split("\n")
    .map((line) => {
      if (/^\s*(```|~~~)/.test(line)) {
        fenced = !fenced;
        return "";
      }
      return fenced ? "" : line;
    })
    .join("\n");
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(text) {
  const anchors = new Set();
  const seen = new Map();
  for (const line of prose(text).split("\n")) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = heading[1]
      .toLowerCase()
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
      .replace(/ /g, "-");
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

// 1. The architecture page names every folder of src/, and every migration.
const architecture = pages.get(ARCHITECTURE);
if (architecture === undefined) {
  fail(ARCHITECTURE, "missing: the architecture page must exist and name every folder of src/");
} else {
  for (const folder of srcFolders) {
    if (!architecture.includes(`src/${folder}/`)) fail(ARCHITECTURE, `does not name the folder src/${folder}/`);
  }
  for (const migration of migrations) {
    const number = migration.slice(0, 4);
    if (!architecture.includes(`\`${number}\``)) {
      fail(ARCHITECTURE, `does not name migration ${migration} (as \`${number}\`)`);
    }
  }
  // The folder table: a row's bare file and folder names (`events.ts`, `signatures/`) are in that row's folder.
  for (const row of architecture.split("\n")) {
    const folder = /^\|\s*`src\/([\w-]+)\/`\s*\|/.exec(row)?.[1];
    if (!folder || !srcFolders.includes(folder)) continue;
    const files = filesUnder(`src/${folder}`);
    for (const [, name] of row.matchAll(/`([\w.-]+\.tsx?|[\w-]+\/)`/g)) {
      const found = name.endsWith("/")
        ? exists(`src/${folder}/${name}`)
        : files.some((file) => file.endsWith(`/${name}`));
      if (!found) fail(ARCHITECTURE, `the row of src/${folder}/ names ${name}, which is not in that folder`);
    }
  }
  // Short paths in the folder table and the walk through the code (`ingest/app.ts`) are relative to src/.
  for (const [, token] of architecture.matchAll(/`([a-z][\w-]*\/[^`\s]+)`/g)) {
    const [first] = token.split("/");
    if (!srcFolders.includes(first) || PLACEHOLDER.test(token) || token.endsWith("/")) continue;
    if (!exists(`src/${token}`)) fail(ARCHITECTURE, `names src/${token} (as \`${token}\`), which does not exist`);
  }
}

for (const [page, text] of pages) {
  // 2. No page names a src/ folder that is gone, or a path under a checked root that does not exist.
  for (const [, folder] of text.matchAll(/(?<![\w./-])src\/([\w-]+)\//g)) {
    if (!srcFolders.includes(folder)) fail(page, `names src/${folder}/, which is not a folder of src/`);
  }
  // Link targets are checked as links below; a src/<folder>/ that is gone was reported just above.
  const withoutLinkTargets = text.replace(/\]\([^)]*\)/g, "]");
  const pathPattern = new RegExp(`(?<![\\w./:-])((?:${CHECKED_ROOTS.join("|")})/[^\\s\`'"(),;|\\]]*)`, "g");
  for (const [, raw] of withoutLinkTargets.matchAll(pathPattern)) {
    if (PLACEHOLDER.test(raw) || /^src\/[\w-]+\/?$/.test(raw)) continue;
    const target = raw.replace(/[.:]+$/, "").replace(/#.*$/, "");
    if (!exists(target)) fail(page, `names ${target}, which does not exist`);
  }

  // 3. Every `npm run <script>` is a script, including the short forms in `npm run a` / `b` (a table row).
  for (const match of text.matchAll(/npm run ([\w:-]+)((?:`\s*\/\s*`[\w:-]+)*)/g)) {
    const names = [match[1], ...[...match[2].matchAll(/`([\w:-]+)/g)].map((m) => m[1])];
    for (const name of names) {
      if (!(name in scripts)) fail(page, `mentions \`npm run ${name}\`, which is not a script in package.json`);
    }
  }
  if (/(^|[^\w-])npm test\b/.test(text) && !("test" in scripts)) {
    fail(page, "mentions `npm test`, but there is no test script");
  }

  // 4. Every relative link resolves: the file, and the heading its #fragment names.
  const plain = prose(text).replace(/`[^`\n]*`/g, "");
  for (const [, target] of plain.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
    const [file, fragment] = target.split("#");
    const resolved = file ? path.posix.normalize(path.posix.join(path.posix.dirname(page), file)) : page;
    if (file && !exists(resolved)) {
      fail(page, `links to ${target}, but ${resolved} does not exist`);
      continue;
    }
    if (fragment === undefined || !resolved.endsWith(".md")) continue;
    const targetText = pages.get(resolved) ?? (statSync(path.join(ROOT, resolved)).isFile() ? read(resolved) : "");
    if (!anchorsOf(targetText).has(decodeURIComponent(fragment))) {
      fail(page, `links to ${target}, but ${resolved} has no heading with the anchor #${fragment}`);
    }
  }
}

// 5. The errors page lists every code the Worker can answer with, under its status.
const errorCodes = [...read("src/core/errors.ts").matchAll(/^\s+([a-z_]+): \[\s*(\d{3}),/gm)];
const errorRows = (pages.get(ERRORS) ?? "").split("\n").filter((line) => line.startsWith("|"));
if (errorCodes.length === 0) fail("src/core/errors.ts", "no error codes found: has ERROR_CODES changed shape?");
for (const [, code, status] of errorCodes) {
  const row = errorRows.find((line) => line.includes(`\`${code}\``));
  if (!row) fail(ERRORS, `does not list the error code ${code} (${status}) of src/core/errors.ts`);
  else if (!row.split("|")[1].includes(status)) fail(ERRORS, `lists ${code} under another status than its ${status}`);
}

// 6. The README: the front page of every docs page, under 30 KB, and a sample `npm run dev` that is today's.
const readme = pages.get(README) ?? "";
const readmeBytes = Buffer.byteLength(readme);
if (readmeBytes > README_MAX_BYTES) {
  fail(README, `is ${readmeBytes} bytes, over ${README_MAX_BYTES}: move a section to docs/`);
}
for (const page of pageNames.filter((name) => name.startsWith("docs/"))) {
  if (!readme.includes(`](${page}`)) fail(README, `does not link to ${page}`);
}
// One `[migrate] DB: 0001_….sql applied` line per migration (scripts/migrate.mjs).
const sampleMigrations = [
  ...new Set([...readme.matchAll(/^\[migrate\] DB: (\d{4}_[\w-]+\.sql) applied$/gm)].map((m) => m[1])),
].sort();
if (sampleMigrations.join() !== migrations.join()) {
  fail(
    README,
    `the sample \`npm run dev\` output lists ${sampleMigrations.length} migration(s), migrations/ has ` +
      `${migrations.length} (${migrations.filter((m) => !sampleMigrations.includes(m)).join(", ") || "none missing"}` +
      ` missing; ${sampleMigrations.filter((m) => !migrations.includes(m)).join(", ") || "none"} gone): ` +
      "run `npm run dev` on an empty database (`-- --persist-to <empty dir>`) and copy its `[migrate] DB:` lines",
  );
}

if (failures.length > 0) {
  console.error(`check-docs: ${failures.length} problem(s) in README.md and docs/:`);
  for (const failure of failures) console.error(`  ${failure}`);
  process.exit(1);
}
console.log(
  `check-docs: ${pages.size} pages agree with the code (${srcFolders.length} folders of src/, ` +
    `${migrations.length} migrations, ${errorCodes.length} error codes, ${Object.keys(scripts).length} npm scripts, ` +
    `README ${readmeBytes} bytes)`,
);
