#!/usr/bin/env node
// A stand-in for wrangler in the script tests (WRANGLER_BIN): it appends each call (its arguments and CI) as a JSON
// line to $STUB_WRANGLER_LOG and answers as wrangler 4.155 does, output included:
//   d1 migrations apply <binding> …   STUB_MIGRATIONS=fresh (every file in migrations/ applied, with wrangler's table
//                                      reprinted after each), current (nothing to apply) or fail (the first one fails)
//   dev …                              exits 0 at once
import { appendFileSync, readdirSync } from "node:fs";
import path from "node:path";

const args = process.argv.slice(2);
if (process.env.STUB_WRANGLER_LOG)
  appendFileSync(process.env.STUB_WRANGLER_LOG, `${JSON.stringify({ args, ci: process.env.CI ?? null })}\n`);

/** cli-table3's box, as wrangler's logger.table draws it without colour. */
function table(head, rows) {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)) + 2);
  const rule = (l, m, r) => `${l}${widths.map((w) => "─".repeat(w)).join(m)}${r}`;
  const row = (cells) => `│${cells.map((c, i) => ` ${c.padEnd(widths[i] - 1)}`).join("│")}│`;
  return [
    rule("┌", "┬", "┐"),
    row(head),
    ...rows.flatMap((r) => [rule("├", "┼", "┤"), row(r)]),
    rule("└", "┴", "┘"),
  ].join("\n");
}

const banner = "\n ⛅️ wrangler 4.155.0\n───────────────────\nResource location: local \n";

if (args[0] === "d1" && args[1] === "migrations" && args[2] === "apply") {
  const binding = args[3];
  const names = readdirSync(path.resolve(import.meta.dirname, "../../migrations")).filter((f) => f.endsWith(".sql"));
  const mode = process.env.STUB_MIGRATIONS ?? "fresh";
  console.log(banner);
  if (mode === "current") {
    console.log("✅ No migrations to apply!");
    process.exit(0);
  }
  console.log("Migrations to be applied:");
  console.log(
    table(
      ["name"],
      names.map((n) => [n]),
    ),
  );
  console.log(`? About to apply ${names.length} migration(s)`);
  console.log("🤖 Using fallback value in non-interactive context: yes");
  const status = names.map(() => "🕒️");
  for (const [i, name] of names.entries()) {
    console.log(`🌀 Executing on local database ${binding} (00000000-0000-0000-0000-000000000000):`);
    if (mode === "fail") {
      status[i] = "❌";
      console.log(
        table(
          ["name", "status"],
          names.map((n, j) => [n, status[j]]),
        ),
      );
      console.error(`Migration ${name} failed with the following errors:`);
      console.error('✘ [ERROR] near "TABLEX": syntax error at offset 7: SQLITE_ERROR');
      process.exit(1);
    }
    status[i] = "✅";
    console.log("🚣 3 commands executed successfully.");
    console.log(
      table(
        ["name", "status"],
        names.map((n, j) => [n, status[j]]),
      ),
    );
  }
  process.exit(0);
}
if (args[0] === "dev") process.exit(0);
console.error(`local-wrangler-stub: no answer for "${args.join(" ")}"`);
process.exit(3);
