#!/usr/bin/env node
// `npm run receiver`: a mock internal system on 127.0.0.1. It prints what the router delivers, verifies the
// Standard Webhooks signature, can fail or stall on purpose to show retries, and answers Weedmaps drafts.
import { appendFileSync } from "node:fs";
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";
import { localSecrets, parseArgs, receiverPort } from "./local-env.mjs";
import { confirmDraft } from "./pricing.mjs";
import { belowMount, createWeedmapsMock, mockCredentials } from "./weedmaps-mock.mjs";

const USAGE = `usage: npm run receiver -- [--port 8788] [--fail-first N] [--down-for 60s] [--fail-path /pos] [--fail-status 500] [--delay MS] [--log FILE] [--quiet]
  --fail-first N    answer the first N deliveries with --fail-status (default 500), to watch retries
  --down-for T      an outage: answer every delivery with --fail-status (default 503) for T from start (90, 60s, 2m)
  --fail-path P     only count and fail requests whose path starts with P (e.g. /pos)
  --delay MS        wait MS before answering each request (try more than a destination's timeoutMs)
  --log FILE        also append one JSON line per request to FILE
  --unavailable IDS answer these line items (id or externalId, comma-separated) as unavailable: quantity 0
  --port P          listen on P (default: the RECEIVER_PORT variable, else 8788); RECEIVER_PORT=P npm run dev points
                    the sample config's destinations and alerts at the same port
Requests to /alerts* are the router's alerts (config "alerts.channels"): printed as one line and always answered 200.
Requests to /pricing/* are answered as the Weedmaps Draft responder: the Order object with confirmed prices, taxes
and totals, and the parts the POS may not change kept as sent (scripts/pricing.mjs).
Requests to /weedmaps/* are a mock of Weedmaps' Orders API (token, order status PUT, limits, failures on demand,
/weedmaps/__mock/stats): scripts/weedmaps-mock.mjs; --fail-*, --down-for, --delay and --log leave them alone.`;

let options;
try {
  options = parseArgs(process.argv.slice(2), {
    port: "number",
    "fail-first": "number",
    "fail-status": "number",
    "fail-path": "string",
    "down-for": "string",
    delay: "number",
    log: "string",
    unavailable: "string",
    quiet: "boolean",
    help: "boolean",
  });
} catch (err) {
  console.error(`${err.message}\n${USAGE}`);
  process.exit(2);
}
if (options.help) {
  console.log(USAGE);
  process.exit(0);
}
let port;
try {
  port = options.port === undefined ? receiverPort(process.env.RECEIVER_PORT) : receiverPort(options.port, "--port");
} catch (err) {
  console.error(`${err.message}\n${USAGE}`);
  process.exit(2);
}
const failFirst = options["fail-first"] ?? 0;
const downForMs = options["down-for"] === undefined ? 0 : parseDuration(options["down-for"]);
const failStatus = options["fail-status"] ?? (downForMs ? 503 : 500);
const startedAt = Date.now();

function parseDuration(text) {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match) {
    console.error(`--down-for: expected a duration such as 90, 60s or 2m, got "${text}"\n${USAGE}`);
    process.exit(2);
  }
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] ?? "s"];
}
const delay = options.delay ?? 0;
const { file, values } = localSecrets();
const signingSecrets = Object.entries(values).filter(([name]) => name.endsWith("_SIGNING_SECRET"));

let received = 0;
let failCandidates = 0;
// Weedmaps' Orders API, as the router's status relay calls it (base URL http://127.0.0.1:<port>/weedmaps).
const weedmaps = createWeedmapsMock({
  ...mockCredentials(values),
  onRequest: ({ method, path: where, status }) => {
    if (!options.quiet) console.log(`[receiver] weedmaps mock: ${method} ${where} → ${status}`);
  },
});

function verify(body, headers) {
  if (!headers["webhook-signature"]) return "unsigned";
  for (const [name, secret] of signingSecrets) {
    try {
      new Webhook(secret).verify(body, headers);
      return `verified with ${name}`;
    } catch {
      // try the next one
    }
  }
  return "INVALID signature";
}

function pretty(body) {
  try {
    const text = JSON.stringify(JSON.parse(body), null, 2).split("\n");
    return text.length > 25 ? [...text.slice(0, 25), `  … ${text.length - 25} more lines`].join("\n") : text.join("\n");
  } catch {
    return body.length > 500 ? `${body.slice(0, 500)}…` : body;
  }
}

const server = createServer((req, res) => {
  // A liveness check for scripts that start the receiver; not a delivery, so neither printed nor logged.
  if (req.method === "GET" && req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok");
    return;
  }
  const weedmapsPath = belowMount(req.url);
  if (weedmapsPath !== undefined) {
    if (weedmaps.handle(req, res, weedmapsPath)) return;
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ errors: [{ status: "404", code: "not_found", title: "Not Found" }] }));
    return;
  }
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", async () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const n = ++received;
    const signature = verify(body, req.headers);
    const isDraft = req.url.startsWith("/pricing");
    if (req.url.startsWith("/alerts")) {
      // The alert receiver of the outage walkthrough: one line per alert, never failing.
      let text = body;
      try {
        const alert = JSON.parse(body);
        text =
          alert.text ??
          `${alert.kind} ${alert.destination ?? "(router)"} ${alert.reason ?? ""} ${JSON.stringify(alert.counts ?? {})}${alert.suppressed ? ` (+${alert.suppressed} suppressed)` : ""}`;
      } catch {
        // not JSON: shown as it came
      }
      console.log(`\n[receiver] ALERT ${text}`);
      if (options.log)
        appendFileSync(
          options.log,
          `${JSON.stringify({ n, at: Date.now(), method: req.method, path: req.url, status: 200, alert: true, body })}\n`,
        );
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
      return;
    }
    const matches = req.url.startsWith(options["fail-path"] ?? "/") && !isDraft;
    const down = matches && downForMs > 0 && Date.now() - startedAt < downForMs;
    const failing = down || (matches && ++failCandidates <= failFirst);
    if (delay) await new Promise((resolve) => setTimeout(resolve, delay));
    let status = failing ? failStatus : 200;
    let answer = down
      ? `down on purpose (${Math.ceil((downForMs - (Date.now() - startedAt)) / 1000)} s left)`
      : failing
        ? `failing on purpose (${failCandidates}/${failFirst})`
        : "ok";
    let contentType = "text/plain";
    if (!failing && isDraft) {
      try {
        answer = JSON.stringify(
          confirmDraft(JSON.parse(body), { unavailable: (options.unavailable ?? "").split(",").filter(Boolean) }),
        );
        contentType = "application/json";
      } catch {
        status = 400;
        answer = "draft body is not JSON";
      }
    }
    const header = (name) => req.headers[name] ?? "-";
    if (!options.quiet) {
      console.log(
        `\n#${n} ${req.method} ${req.url} → ${status}${isDraft && status === 200 ? " (draft answered)" : ""}`,
      );
      console.log(`  signature     ${signature}`);
      console.log(`  webhook-id    ${header("webhook-id")}   attempt ${header("x-router-attempt")}`);
      console.log(
        `  event         ${header("x-router-source")}/${header("x-router-event-type")}   merchant ${header("x-router-merchant-id")}`,
      );
      console.log(
        `  content-type  ${header("content-type")}   authorization ${req.headers.authorization ? "present" : "-"}`,
      );
      console.log(pretty(body).replace(/^/gm, "  "));
    }
    if (options.log) {
      appendFileSync(
        options.log,
        `${JSON.stringify({ n, at: Date.now(), method: req.method, path: req.url, status, signature, headers: req.headers, body })}\n`,
      );
    }
    res.writeHead(status, { "content-type": contentType });
    res.end(answer);
  });
});

server.listen(port, "127.0.0.1", () => {
  console.log(`[receiver] listening on http://127.0.0.1:${port} (signing secrets from ${file})`);
  console.log(
    `[receiver] Weedmaps Orders API mock on http://127.0.0.1:${port}/weedmaps (token, order status PUT; control: /weedmaps/__mock/stats, /fail, /reset)`,
  );
  if (failFirst)
    console.log(
      `[receiver] failing the first ${failFirst} request(s)${options["fail-path"] ? ` to ${options["fail-path"]}*` : ""} with ${failStatus}`,
    );
  if (delay) console.log(`[receiver] answering each request after ${delay} ms`);
  if (downForMs)
    console.log(
      `[receiver] down for ${downForMs / 1000} s: answering ${failStatus} to every delivery${options["fail-path"] ? ` to ${options["fail-path"]}*` : ""} until then`,
    );
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
