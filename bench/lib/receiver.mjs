// The benchmark's downstream systems, in a process of their own so that their work does not share an event loop
// with the load generator (which would skew both the arrival times and the client's latencies).
//   /d/<destination>  internal systems: answer 200 and record when each delivery arrived
//   /pricing/*        the Weedmaps Draft responder: answer the adjusted order, as scripts/receiver.mjs does
//   /down/*           a responder that is down the realistic way: it takes the connection and the request, and never
//                     answers (the caller's deadline ends it); each request counted and its arrival time kept
//   /auth/token, /oos/*  Weedmaps' Orders API (scripts/weedmaps-mock.mjs), where the status relay sends its updates;
//                     at the root, as Weedmaps serves it (https://api-g.weedmaps.com), not under a path
// The parent talks to it over IPC: {cmd: "arrivals"}, {cmd: "reset"}, {cmd: "fail", path}, {cmd: "stats"},
// {cmd: "weedmaps"} (the mock's stats and the time each PUT was answered 2xx), {cmd: "weedmaps-reset"}, {cmd: "down"}
// (the requests /down/* took and how many it still holds) and {cmd: "down-reset"} (those held are cut, counts reset).
import { createServer } from "node:http";
import { confirmDraft } from "../../scripts/pricing.mjs";
import { createWeedmapsMock, mockCredentials } from "../../scripts/weedmaps-mock.mjs";

const port = Number(process.argv[2]);
const now = () => performance.timeOrigin + performance.now(); // wall clock with sub-millisecond resolution

let deliveries = 0; // every request to /d/*, including failed ones
let drafts = 0;
let arrivals = []; // [webhookId, path, attempt, status, time] for each request to /d/*
let failPath = null; // while set: first attempts to this path answer 500, so each event gets exactly one retry
let downCalls = []; // [path, time] for each request to /down/*, none ever answered
const downHeld = new Set(); // the /down/* requests whose caller has not given up yet

// The client id and secret come from the parent's environment (the benchmark's env file), never from argv.
const PUT_PATH = /^\/oos\/[^/]+\/merchants\/[^/]+\/orders\/([^/]+)$/;
let answered = []; // [orderId, time] for each PUT the mock answered 2xx, when its answer was written
const weedmaps = createWeedmapsMock({
  ...mockCredentials(process.env),
  now,
  onRequest: ({ method, path, status }) => {
    const order = method === "PUT" && status >= 200 && status < 300 ? PUT_PATH.exec(path) : null;
    if (order) answered.push([decodeURIComponent(order[1]), now()]);
  },
});

const server = createServer((req, res) => {
  if (weedmaps.handle(req, res, req.url)) return;
  if (req.url.startsWith("/down/")) {
    // Counted on arrival, the body read and dropped, no answer: the caller waits until its own deadline.
    downCalls.push([req.url, now()]);
    downHeld.add(res);
    req.resume();
    res.on("close", () => downHeld.delete(res));
    return;
  }
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const at = now();
    if (req.url.startsWith("/pricing")) {
      drafts += 1;
      let answer;
      try {
        answer = JSON.stringify(confirmDraft(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
      } catch {
        res.writeHead(400).end("draft body is not JSON");
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(answer);
      return;
    }
    deliveries += 1;
    const attempt = Number(req.headers["x-router-attempt"] ?? 0);
    const status = failPath !== null && req.url === failPath && attempt === 1 ? 500 : 200;
    arrivals.push([req.headers["webhook-id"] ?? null, req.url, attempt, status, at]);
    res.writeHead(status, { "content-type": "text/plain" }).end(status === 200 ? "ok" : "failing on purpose");
  });
});
server.keepAliveTimeout = 30_000;

process.on("message", (message) => {
  switch (message.cmd) {
    case "arrivals":
      process.send({ cmd: "arrivals", arrivals });
      break;
    case "reset":
      arrivals = [];
      process.send({ cmd: "reset" });
      break;
    case "fail":
      failPath = message.path ?? null;
      process.send({ cmd: "fail" });
      break;
    case "stats":
      process.send({ cmd: "stats", deliveries, drafts });
      break;
    case "weedmaps": {
      const { latest, ...stats } = weedmaps.stats();
      process.send({ cmd: "weedmaps", stats, answered });
      break;
    }
    case "down":
      process.send({ cmd: "down", calls: downCalls, held: downHeld.size });
      break;
    case "down-reset":
      for (const res of downHeld) res.destroy();
      downHeld.clear();
      downCalls = [];
      process.send({ cmd: "down-reset" });
      break;
    case "weedmaps-reset":
      weedmaps.reset();
      answered = [];
      process.send({ cmd: "weedmaps-reset" });
      break;
  }
});
// The parent going away (even by SIGKILL) closes the IPC channel: never outlive it.
process.on("disconnect", () => process.exit(0));

server.listen(port, "127.0.0.1", () => process.send({ cmd: "ready", port }));
