// A body cut off before its Content-Length, against the real runtime: `npm run dev` (wrangler dev, workerd) and a
// raw node:net socket that sends the headers and half the body, then closes its side. workerd fails the body read
// with `Error: Network connection lost.`; the router must answer 400 body_incomplete and log a warning, never
// `unhandled_error` (issue #22). Run with `npm exec -- node --test test/e2e/body-incomplete.test.mjs` (Node 24).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { freePort, start, stopAll, tail, waitFor } from "../../scripts/procs.mjs";

const ROOT = path.resolve(import.meta.dirname, "../..");
const work = mkdtempSync(path.join(tmpdir(), "router-cutoff-"));
let port;
let dev;

/** Sends `head` and half of `body` with the full Content-Length, closes the write side, and returns the answer. */
function cutOff(pathname, headers, body) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let answer = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk) => (answer += chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const [head, ...rest] = answer.split("\r\n\r\n");
      resolve({ status: Number(head.split(" ")[1]), head, body: rest.join("\r\n\r\n") });
    });
    const lines = [
      `POST ${pathname} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      "Connection: close",
      `Content-Length: ${Buffer.byteLength(body)}`,
    ];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    socket.write(`${lines.join("\r\n")}\r\n\r\n${body.slice(0, Math.floor(body.length / 2))}`);
    // Half-close: the router sees the body end early and can still answer on the open read side.
    setTimeout(() => socket.end(), 200);
  });
}

describe("a body cut off before its Content-Length (wrangler dev)", { timeout: 120_000 }, () => {
  before(async () => {
    port = await freePort();
    dev = start("dev", ["scripts/dev.mjs", "--persist-to", path.join(work, "state"), "--port", String(port)], {
      cwd: ROOT,
    });
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, "the router", 90_000).catch(
      (err) => {
        throw new Error(`${err.message}\n${tail(dev)}`);
      },
    );
  });

  after(async () => {
    await stopAll();
    rmSync(work, { recursive: true, force: true });
  });

  it("maps the runtime's error to body_incomplete with a warning, never unhandled_error, on a webhook and an admin POST", async () => {
    const body = JSON.stringify({ orderId: "cut-off-order", status: "PENDING", padding: "x".repeat(2_000) });
    const answers = [
      await cutOff(
        "/webhooks/weedmaps?merchant_id=4242",
        { "Content-Type": "application/json", Signature: "c2lnbmF0dXJl" },
        body,
      ),
      await cutOff(
        "/admin/replays",
        { "Content-Type": "application/json", Authorization: "Bearer local-admin-token" },
        body,
      ),
    ];
    const rejected = () => dev.lines.filter((l) => l.includes('"code":"body_incomplete"'));
    await waitFor(() => rejected().length >= 2, "two body_incomplete warnings in the router's log", 10_000).catch(
      (err) => {
        throw new Error(`${err.message}\n${tail(dev, 20)}`);
      },
    );
    for (const line of rejected()) assert.match(line, /"level":"warn","event":"request_rejected".*"status":400/);
    assert.deepEqual(
      dev.lines.filter((l) => l.includes("unhandled_error")),
      [],
    );
    // What the caller sees here is wrangler's local proxy, not the Worker: the proxy's own forward of the broken body
    // fails first and it answers 500 "Network connection lost." itself. Deployed, there is no such proxy, and the
    // Worker's 400 (test/admin.input.test.ts checks it through the Worker's fetch) is the answer.
    for (const answer of answers) assert.ok([400, 500].includes(answer.status), answer.head);
  });
});
