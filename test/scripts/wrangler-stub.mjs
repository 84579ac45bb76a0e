// A stand-in for wrangler in the script tests (WRANGLER_BIN points here; the scripts run it with their own Node).
// It appends its arguments, one JSON array a line, to WRANGLER_STUB_LOG; answers `secret list` with
// WRANGLER_STUB_SECRETS (a JSON list of names, as `wrangler secret list` prints them as objects); and exits with
// WRANGLER_STUB_EXIT (default 1) when its arguments, joined by spaces, start with WRANGLER_STUB_FAIL.
import { appendFileSync } from "node:fs";

const args = process.argv.slice(2);
appendFileSync(process.env.WRANGLER_STUB_LOG, `${JSON.stringify(args)}\n`);
const fail = process.env.WRANGLER_STUB_FAIL;
if (fail && args.join(" ").startsWith(fail)) process.exit(Number(process.env.WRANGLER_STUB_EXIT ?? 1));
if (args[0] === "secret" && args[1] === "list") {
  const names = JSON.parse(process.env.WRANGLER_STUB_SECRETS ?? "[]");
  console.log(
    JSON.stringify(
      names.map((name) => ({ name, type: "secret_text" })),
      null,
      "  ",
    ),
  );
}
