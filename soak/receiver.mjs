// The soak's internal systems, on a seeded random schedule of faults. Every request is logged as a JSON line:
// { t, id: webhook-id, path, attempt, status } (status "reset" for a dropped connection).
//   /d/<name>   20% 500, 5% 429 with Retry-After: 1, 5% slower than the destination timeout, 2% connection resets
//   /d/down     the same, and answers 503 for `--down-ms` after its first request (a destination down, then back)
//   /d/gone     always 410 Gone: its deliveries must end dead as permanent
import { appendFileSync } from "node:fs";
import { createServer } from "node:http";
import { parseArgs } from "../scripts/local-env.mjs";

const options = parseArgs(process.argv.slice(2), {
  port: "number",
  log: "string",
  seed: "number",
  "down-ms": "number",
  "slow-ms": "number",
});
let seed = options.seed ?? 1;
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};
const slowMs = options["slow-ms"] ?? 5_000;
let downUntil = null;

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/healthz") return res.end("ok");
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const path = req.url;
    const log = (status) =>
      appendFileSync(
        options.log,
        `${JSON.stringify({ t: Date.now(), id: req.headers["webhook-id"], path, attempt: Number(req.headers["x-router-attempt"]), status })}\n`,
      );
    if (path === "/d/gone") {
      log(410);
      return res.writeHead(410).end("gone");
    }
    if (path === "/d/down") {
      downUntil ??= Date.now() + (options["down-ms"] ?? 60_000);
      if (Date.now() < downUntil) {
        log(503);
        return res.writeHead(503).end("down");
      }
    }
    const roll = random();
    if (roll < 0.2) {
      log(500);
      return res.writeHead(500).end("fault");
    }
    if (roll < 0.25) {
      log(429);
      return res.writeHead(429, { "retry-after": "1" }).end("slow down");
    }
    if (roll < 0.3) {
      // Slower than the destination's timeout: no answer at all, so the router's timeout always fires first
      // (however loaded the machine) and nothing is delivered that this log would not show. The socket is let go
      // once the router has surely given up.
      log("timeout");
      return setTimeout(() => req.socket.destroy(), slowMs);
    }
    if (roll < 0.32) {
      log("reset");
      return req.socket.destroy();
    }
    log(200);
    res.writeHead(200).end("ok");
  });
});
server.listen(options.port, "127.0.0.1", () => console.log(`[soak receiver] on ${options.port}`));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
