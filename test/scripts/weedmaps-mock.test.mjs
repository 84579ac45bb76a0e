// scripts/weedmaps-mock.mjs, the local stand-in for Weedmaps' Orders API (issue #26), through a real HTTP server on
// loopback and fetch, on a clock the test moves: the token endpoint's minute and its day-7 reuse, the bearer check,
// the 422s, the 420-per-10-s window, each failure on demand and the stats. Then the same mock mounted by
// `npm run receiver`, served alone by `npm run mock:weedmaps`, and `npm run send -- status`, the POS's side.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import path from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { localSecrets } from "../../scripts/local-env.mjs";
import { belowMount, createWeedmapsMock, FAILURE_MODES, mockCredentials } from "../../scripts/weedmaps-mock.mjs";

const ROOT = path.resolve(import.meta.dirname, "../..");
const CLIENT = { client_id: "test-client", client_secret: "test-secret", grant_type: "client_credentials" };
const DAY = 24 * 3600_000;

let t = Date.UTC(2026, 0, 1);
const clock = { now: () => t, advance: (ms) => (t += ms) };
/** The slow mode's waits: each is held until the test releases it. */
const sleeps = [];
const mock = createWeedmapsMock({
  clientId: CLIENT.client_id,
  clientSecret: CLIENT.client_secret,
  now: clock.now,
  sleep: (ms) => new Promise((resolve) => sleeps.push({ ms, resolve })),
});
/** The same mock with a window of 3 requests, to show what counts in it without sending 420 (under /small). */
const small = createWeedmapsMock({
  clientId: CLIENT.client_id,
  clientSecret: CLIENT.client_secret,
  now: clock.now,
  limits: { requestsPerWindow: 3 },
});
const server = createServer((req, res) => {
  const smallPath = belowMount(req.url, "/small");
  if (
    smallPath !== undefined ? small.handle(req, res, smallPath) : mock.handle(req, res, belowMount(req.url) ?? req.url)
  )
    return;
  res.writeHead(404);
  res.end();
});
let base;

before(async () => {
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${server.address().port}/weedmaps`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});
beforeEach(() => {
  mock.reset();
  small.reset();
  sleeps.length = 0;
  clock.advance(DAY); // every test starts well clear of the last one's windows
});

async function call(method, where, { body, token, raw, mount = "/weedmaps" } = {}) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${base.replace(/\/weedmaps$/, mount)}${where}`, {
    method,
    headers,
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, retryAfter: response.headers.get("retry-after") };
}

const requestToken = (body = CLIENT) => call("POST", "/auth/token", { body });
async function token() {
  const answer = await requestToken();
  assert.equal(answer.status, 201, JSON.stringify(answer.json));
  return answer.json.access_token;
}
const orderPath = (listing = "listing-1", order = "order-1") => `/oos/2026-01/merchants/${listing}/orders/${order}`;
const putStatus = (bearer, body, where = orderPath()) => call("PUT", where, { body, token: bearer });
const fail = (body) => call("POST", "/__mock/fail", { body });
const stats = async () => (await call("GET", "/__mock/stats")).json;

/** `n` PUTs at the current time, 30 at once (the clock does not move meanwhile); their statuses. */
async function burst(n, bearer, body) {
  const statuses = [];
  for (let sent = 0; sent < n; sent += 30) {
    const batch = Array.from({ length: Math.min(30, n - sent) }, () => putStatus(bearer, body));
    statuses.push(...(await Promise.all(batch)).map((answer) => answer.status));
  }
  return statuses;
}

describe("the token endpoint", () => {
  it("answers 201 with a bearer token for 14 days, and the same token until day 7", async () => {
    const first = await requestToken({ ...CLIENT, scope: "orders:write" });
    assert.equal(first.status, 201);
    assert.equal(first.json.token_type, "Bearer");
    assert.equal(first.json.expires_in, 1_209_600);
    assert.equal(first.json.scope, "orders:write");
    assert.match(first.json.access_token, /^\S{20,}$/);

    clock.advance(3 * DAY);
    const again = await requestToken();
    assert.equal(again.status, 201);
    assert.equal(again.json.access_token, first.json.access_token, "before day 7 the same token comes back");
    assert.equal(again.json.expires_in, 1_209_600 - 3 * 24 * 3600, "the seconds the token has left");

    clock.advance(4 * DAY - 1); // a millisecond before day 7: still the same one
    assert.equal((await requestToken()).json.access_token, first.json.access_token);
    clock.advance(60_000); // past day 7 (and the minute): a new token, and the old one still works until day 14
    const renewed = await requestToken();
    assert.equal(renewed.status, 201);
    assert.notEqual(renewed.json.access_token, first.json.access_token);
    assert.equal(renewed.json.expires_in, 1_209_600);
    assert.equal((await putStatus(first.json.access_token, { status: "IN_PROGRESS" })).status, 200);

    clock.advance(7 * DAY); // past day 14: the first token has expired, the second has not
    assert.equal((await putStatus(first.json.access_token, { status: "COMPLETE" })).status, 401);
    assert.equal((await putStatus(renewed.json.access_token, { status: "COMPLETE" })).status, 200);
    assert.equal((await stats()).tokensIssued, 2);
  });

  it("takes one request a minute: a second within it is 429 with Retry-After, then served after the minute", async () => {
    const first = await token();
    clock.advance(20_000);
    const early = await requestToken();
    assert.equal(early.status, 429);
    assert.equal(early.retryAfter, "40");
    clock.advance(39_999);
    assert.equal((await requestToken()).status, 429, "the 429 did not use the minute: it still runs from the first");
    clock.advance(1);
    const later = await requestToken();
    assert.equal(later.status, 201);
    assert.equal(later.json.access_token, first);
    const { tokenRequests, tokenAnswers, tooManyRequests } = await stats();
    assert.deepEqual(
      { tokenRequests, tokenAnswers, tooManyRequests },
      {
        tokenRequests: 4,
        tokenAnswers: { 201: 2, 429: 2 },
        tooManyRequests: 2,
      },
    );
  });

  it("refuses a wrong secret, a wrong client id and a wrong grant_type with 401 invalid_client", async () => {
    for (const wrong of [
      { ...CLIENT, client_secret: "not-the-secret" },
      { ...CLIENT, client_id: "someone-else" },
      { ...CLIENT, grant_type: "password" },
      { client_id: CLIENT.client_id },
    ]) {
      const answer = await requestToken(wrong);
      assert.equal(answer.status, 401);
      assert.deepEqual(answer.json, { error: "invalid_client" });
      assert.doesNotMatch(JSON.stringify(answer.json), /test-secret/);
      clock.advance(60_000);
    }
    const notJson = await call("POST", "/auth/token", { raw: "client_id=test-client" });
    assert.equal(notJson.status, 400);
    assert.equal((await stats()).tokensIssued, 0);
  });
});

describe("the order status PUT", () => {
  it("sets a status: 200 { orderId, status }, and the stats keep the latest per listing and order", async () => {
    const bearer = await token();
    const answer = await putStatus(bearer, { status: "IN_PROGRESS" }, orderPath("listing-1", "Order-1"));
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.json, { orderId: "Order-1", status: "IN_PROGRESS" });
    const canceled = await putStatus(
      bearer,
      { status: "CANCELED_SELLER", canceledReason: "OUT_OF_STOCK" },
      orderPath("listing-1", "Order-1"),
    );
    assert.equal(canceled.status, 200);
    await putStatus(bearer, { status: "READY_FOR_ATTAINMENT" }, orderPath("listing-2", "Order-1"));
    await putStatus(bearer, { status: "COMPLETE" }, orderPath("listing-1", "order-1")); // ids are case-sensitive
    const { latest } = await stats();
    assert.deepEqual(latest["listing-1"]["Order-1"], {
      status: "CANCELED_SELLER",
      canceledReason: "OUT_OF_STOCK",
      at: t,
    });
    assert.equal(latest["listing-1"]["order-1"].status, "COMPLETE");
    assert.equal(latest["listing-2"]["Order-1"].status, "READY_FOR_ATTAINMENT");
  });

  it("answers 401 to a missing, unknown or malformed bearer token, and 200 to the real one", async () => {
    const bearer = await token();
    assert.equal((await putStatus(undefined, { status: "IN_PROGRESS" })).status, 401);
    assert.equal((await putStatus("wm-mock-not-a-token", { status: "IN_PROGRESS" })).status, 401);
    const basic = await call("PUT", orderPath(), { raw: '{"status":"IN_PROGRESS"}' });
    assert.equal(basic.status, 401);
    assert.equal(basic.json.errors[0].code, "unauthorized");
    assert.equal((await putStatus(bearer, { status: "IN_PROGRESS" })).status, 200);
  });

  it("answers 422 to a status outside the list, PENDING, a reason outside the list or on a non-cancel status", async () => {
    const bearer = await token();
    const cases = [
      [{ status: "SHIPPED" }, "invalid_status"],
      [{ status: "PENDING" }, "invalid_status"],
      [{ status: "DRAFT" }, "invalid_status"],
      [{}, "invalid_status"],
      [{ status: "in_progress" }, "invalid_status"],
      [{ status: "CANCELED_CUSTOMER", canceledReason: "BORED" }, "invalid_canceled_reason"],
      [{ status: "CANCELED_CUSTOMER", canceledReason: null }, "invalid_canceled_reason"],
      [{ status: "COMPLETE", canceledReason: "OUT_OF_STOCK" }, "canceled_reason_without_cancel"],
      [{ status: "FAILED", canceledReason: "OTHER" }, "canceled_reason_without_cancel"],
    ];
    for (const [body, code] of cases) {
      const answer = await putStatus(bearer, body);
      assert.equal(answer.status, 422, JSON.stringify(body));
      assert.deepEqual(
        answer.json.errors.map((e) => e.code),
        [code],
        JSON.stringify(body),
      );
    }
    const notJson = await call("PUT", orderPath(), { raw: "status=IN_PROGRESS", token: bearer });
    assert.equal(notJson.status, 422);
    assert.equal(notJson.json.errors[0].code, "invalid_json");
    assert.equal((await putStatus(bearer, ["IN_PROGRESS"])).status, 422);
    for (const status of ["CANCELED_CUSTOMER", "CANCELED_SELLER"])
      assert.equal((await putStatus(bearer, { status, canceledReason: "CUSTOMER_NO_SHOW" })).status, 200);
    assert.deepEqual((await stats()).latest, {
      "listing-1": { "order-1": { status: "CANCELED_SELLER", canceledReason: "CUSTOMER_NO_SHOW", at: t } },
    });
  });

  it("answers 422 to an id over 255 characters, and takes one of exactly 255", async () => {
    const bearer = await token();
    const long = "o".repeat(256);
    const tooLongOrder = await putStatus(bearer, { status: "IN_PROGRESS" }, orderPath("listing-1", long));
    assert.equal(tooLongOrder.status, 422);
    assert.equal(tooLongOrder.json.errors[0].code, "invalid_order_id");
    const tooLongListing = await putStatus(bearer, { status: "IN_PROGRESS" }, orderPath(long, "order-1"));
    assert.equal(tooLongListing.json.errors[0].code, "invalid_listing_id");
    assert.equal((await putStatus(bearer, { status: "IN_PROGRESS" }, orderPath("l", "o".repeat(255)))).status, 200);
  });
});

describe("the 420 requests per 10 seconds across all endpoints", () => {
  it("answers the 421st request in a window 429 with Retry-After, and frees slots as the window slides", async () => {
    const start = t;
    const bearer = await token(); // the token request is 1 of the 420
    clock.advance(5_000);
    assert.deepEqual(await burst(419, bearer, { status: "IN_PROGRESS" }), Array(419).fill(200));
    const over = await putStatus(bearer, { status: "IN_PROGRESS" });
    assert.equal(over.status, 429);
    assert.equal(over.retryAfter, "5", "the token request leaves the window 10 s after it came, 5 s from now");
    assert.equal(over.json.errors[0].code, "rate_limited");
    clock.advance(4_999);
    const stillOver = await putStatus(bearer, { status: "IN_PROGRESS" });
    assert.equal(stillOver.status, 429);
    assert.equal(stillOver.retryAfter, "1");
    clock.advance(1);
    assert.equal(t - start, 10_000);
    // A sliding window, not a fixed one: one slot is free (the token request's), the 419 still count.
    assert.equal((await putStatus(bearer, { status: "COMPLETE" })).status, 200);
    const next = await putStatus(bearer, { status: "COMPLETE" });
    assert.equal(next.status, 429);
    assert.equal(next.retryAfter, "5");
    const s = await stats();
    assert.equal(s.rateLimited, 3);
    assert.equal(s.putsByStatus[429], 3);
    assert.equal(s.maxRequestsInWindow, 423, "the refused requests count as seen: 419 + 2 refused + 1 + 1");
  });

  it("counts the token endpoint in the same window, and a 429 uses no slot", async () => {
    const smallToken = () => call("POST", "/auth/token", { body: CLIENT, mount: "/small" });
    const first = await smallToken();
    assert.equal(first.status, 201);
    const smallPut = () =>
      call("PUT", orderPath(), { body: { status: "IN_PROGRESS" }, token: first.json.access_token, mount: "/small" });
    assert.equal((await smallToken()).status, 429, "refused by the minute: uses no window slot");
    assert.equal((await smallPut()).status, 200);
    assert.equal((await smallPut()).status, 200);
    assert.equal((await smallPut()).status, 429, "the token request took the first of the 3");
    clock.advance(60_000);
    assert.deepEqual(
      [(await smallPut()).status, (await smallPut()).status, (await smallPut()).status],
      [200, 200, 200],
    );
    const tokenOver = await smallToken();
    assert.equal(tokenOver.status, 429, "the minute is over, the window is not");
    assert.equal(tokenOver.retryAfter, "10");
    clock.advance(10_000);
    assert.equal((await smallToken()).status, 201);
    const s = small.stats();
    assert.deepEqual(s.tokenAnswers, { 201: 2, 429: 2 });
    assert.equal(s.rateLimited, 2);
    assert.equal(s.tooManyRequests, 3);
    assert.equal(mock.stats().tokenRequests, 0, "the other mock saw none of it");
  });

  it("tells a token request refused by both limits to wait for the later of the two", async () => {
    const smallToken = () => call("POST", "/auth/token", { body: CLIENT, mount: "/small" });
    const first = await smallToken();
    const smallPut = () =>
      call("PUT", orderPath(), { body: { status: "IN_PROGRESS" }, token: first.json.access_token, mount: "/small" });
    assert.deepEqual([(await smallPut()).status, (await smallPut()).status], [200, 200]);
    clock.advance(1_000);
    const refused = await smallToken();
    assert.equal(refused.status, 429);
    assert.equal(refused.retryAfter, "59", "the window frees in 9 s, the minute in 59");
  });
});

describe("failures on demand", () => {
  for (const mode of FAILURE_MODES.filter((m) => m !== "slow" && m !== "429")) {
    it(`mode ${mode}: the next n PUTs answer ${mode}, the one after is served`, async () => {
      const bearer = await token();
      const set = await fail({ mode, count: 2 });
      assert.equal(set.status, 200);
      assert.deepEqual(set.json.queued, [{ mode, remaining: 2 }]);
      for (let i = 0; i < 2; i++) {
        const answer = await putStatus(bearer, { status: "IN_PROGRESS" });
        assert.equal(answer.status, Number(mode));
        assert.equal(answer.json.errors[0].code, "mock_failure");
      }
      assert.equal((await putStatus(bearer, { status: "IN_PROGRESS" })).status, 200);
      const s = await stats();
      assert.deepEqual(s.putsByStatus, { [mode]: 2, 200: 1 });
      assert.deepEqual(s.pendingFailures, []);
    });
  }

  it("mode 429 carries Retry-After: retryAfter, and counts as a 429", async () => {
    const bearer = await token();
    await fail({ mode: "429", count: 1, retryAfter: 7 });
    const answer = await putStatus(bearer, { status: "IN_PROGRESS" });
    assert.equal(answer.status, 429);
    assert.equal(answer.retryAfter, "7");
    assert.equal((await putStatus(bearer, { status: "IN_PROGRESS" })).status, 200);
    const s = await stats();
    assert.equal(s.tooManyRequests, 1);
    assert.equal(s.rateLimited, 0, "not the window's");
  });

  it("mode slow waits delayMs, then answers as it would have", async () => {
    const bearer = await token();
    await fail({ mode: "slow", count: 1, delayMs: 1500 });
    let settled = false;
    const pending = putStatus(bearer, { status: "READY_FOR_ATTAINMENT" }).then((answer) => {
      settled = true;
      return answer;
    });
    while (sleeps.length === 0) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(sleeps[0].ms, 1500);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(settled, false, "no answer before the wait is over");
    sleeps[0].resolve();
    const answer = await pending;
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.json, { orderId: "order-1", status: "READY_FOR_ATTAINMENT" });
    // A slow answer still checks the request: a bad token after the wait is 401.
    await fail({ mode: "slow", count: 1, delayMs: 10 });
    const bad = putStatus("nope", { status: "COMPLETE" });
    while (sleeps.length === 1) await new Promise((resolve) => setImmediate(resolve));
    sleeps[1].resolve();
    assert.equal((await bad).status, 401);
  });

  it("queues failures in order, never fails the token endpoint, and refuses a bad request to /__mock/fail", async () => {
    await fail({ mode: "503", count: 1 });
    await fail({ mode: "422", count: 1 });
    const bearer = await token();
    assert.equal((await putStatus(bearer, { status: "IN_PROGRESS" })).status, 503);
    assert.equal((await putStatus(bearer, { status: "IN_PROGRESS" })).status, 422);
    assert.equal((await putStatus(bearer, { status: "IN_PROGRESS" })).status, 200);
    for (const body of [
      { mode: "418" },
      { mode: "500", count: 0 },
      { mode: "slow", delayMs: -1 },
      { mode: "429", retryAfter: 1.5 },
    ]) {
      const refused = await fail(body);
      assert.equal(refused.status, 400, JSON.stringify(body));
      assert.equal(refused.json.error, "invalid_failure");
    }
    assert.equal((await call("POST", "/__mock/fail", { raw: "mode=500" })).status, 400);
    assert.deepEqual((await stats()).pendingFailures, []);
  });
});

describe("stats and reset", () => {
  it("lists every PUT with what it was answered, and reset forgets everything, tokens included", async () => {
    const bearer = await token();
    await putStatus(bearer, { status: "IN_PROGRESS" });
    const at = t;
    clock.advance(1_000);
    await putStatus("wrong", { status: "COMPLETE" }, orderPath("listing-9", "order-9"));
    await putStatus(bearer, { status: "COMPLETE", canceledReason: "OTHER" });
    const s = await stats();
    assert.equal(s.tokenRequests, 1);
    assert.equal(s.putRequests, 3);
    assert.deepEqual(s.putsByStatus, { 200: 1, 401: 1, 422: 1 });
    assert.deepEqual(s.puts, [
      {
        at,
        version: "2026-01",
        listingId: "listing-1",
        orderId: "order-1",
        status: "IN_PROGRESS",
        canceledReason: null,
        answered: 200,
      },
      {
        at: t,
        version: "2026-01",
        listingId: "listing-9",
        orderId: "order-9",
        status: "COMPLETE",
        canceledReason: null,
        answered: 401,
      },
      {
        at: t,
        version: "2026-01",
        listingId: "listing-1",
        orderId: "order-1",
        status: "COMPLETE",
        canceledReason: "OTHER",
        answered: 422,
      },
    ]);
    assert.deepEqual(s.latest, { "listing-1": { "order-1": { status: "IN_PROGRESS", at } } });
    assert.equal(s.maxRequestsInWindow, 4);
    assert.deepEqual(s.limits, { requestsPerWindow: 420, windowMs: 10_000 });

    assert.equal((await call("POST", "/__mock/reset")).status, 200);
    const cleared = await stats();
    assert.equal(cleared.tokenRequests, 0);
    assert.equal(cleared.putRequests, 0);
    assert.deepEqual(cleared.puts, []);
    assert.deepEqual(cleared.latest, {});
    assert.equal(cleared.maxRequestsInWindow, 0);
    assert.equal((await putStatus(bearer, { status: "IN_PROGRESS" })).status, 401, "the old token is gone");
    assert.equal((await requestToken()).status, 201, "the token minute is reset too");
  });

  it("answers 405 to a wrong method and leaves unknown paths to the caller", async () => {
    const wrong = await call("GET", "/auth/token");
    assert.equal(wrong.status, 405);
    assert.equal((await call("GET", "/nowhere")).status, 404);
    assert.equal((await call("DELETE", orderPath())).status, 405);
  });
});

// --- the scripts that use it, each in a process of its own ---

function freePort() {
  const probe = createServer();
  return new Promise((resolve) =>
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    }),
  );
}

/** Starts `scripts/<script>` and resolves once its output matches `ready`; `stop()` ends that one process. */
function startScript(script, args, env, ready) {
  const child = spawn(process.execPath, [path.join(ROOT, "scripts", script), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start: ${output}`)), 10_000);
    const onData = (chunk) => {
      output += chunk;
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve({
          output: () => output,
          stop: () =>
            new Promise((done) => {
              child.on("close", done);
              child.kill("SIGTERM");
            }),
        });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("close", (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited ${code}: ${output}`));
    });
  });
}

function runScript(script, args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, "scripts", script), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

const { values: localValues } = localSecrets();
/** What the receiver and `npm run mock:weedmaps` accept: the local secrets' WEEDMAPS_API_CLIENT_ID / _SECRET. */
const localClient = mockCredentials(localValues);

// Each of these starts processes and waits for them: they run side by side.
describe("npm run receiver, npm run mock:weedmaps and npm run send -- status", { concurrency: true }, () => {
  it("the receiver serves the mock under /weedmaps, says so when it starts, and still answers everything else", async () => {
    const port = await freePort();
    const receiver = await startScript("receiver.mjs", ["--port", String(port), "--quiet"], {}, /weedmaps/);
    try {
      assert.match(
        receiver.output(),
        new RegExp(`Weedmaps Orders API mock on http://127\\.0\\.0\\.1:${port}/weedmaps`),
      );
      const at = `http://127.0.0.1:${port}`;
      const answer = await fetch(`${at}/weedmaps/auth/token`, {
        method: "POST",
        body: JSON.stringify({
          client_id: localClient.clientId,
          client_secret: localClient.clientSecret,
          grant_type: "client_credentials",
        }),
      });
      assert.equal(answer.status, 201);
      const stats = await (await fetch(`${at}/weedmaps/__mock/stats`)).json();
      assert.equal(stats.tokensIssued, 1);
      assert.equal((await fetch(`${at}/weedmaps/unknown`)).status, 404);
      const delivery = await fetch(`${at}/pos/orders`, { method: "POST", body: "{}" });
      assert.equal(delivery.status, 200);
      assert.equal(await delivery.text(), "ok");
    } finally {
      await receiver.stop();
    }
  });

  it("npm run mock:weedmaps serves it alone on WEEDMAPS_MOCK_PORT, and refuses a port that is not one", async () => {
    const port = await freePort();
    const mockServer = await startScript(
      "weedmaps-mock.mjs",
      ["--quiet"],
      { WEEDMAPS_MOCK_PORT: String(port) },
      /control/,
    );
    try {
      const answer = await fetch(`http://127.0.0.1:${port}/weedmaps/auth/token`, {
        method: "POST",
        body: JSON.stringify({ client_id: "x", client_secret: "y", grant_type: "client_credentials" }),
      });
      assert.equal(answer.status, 401);
      assert.ok(!mockServer.output().includes(localClient.clientSecret), "the secret is never printed");
    } finally {
      await mockServer.stop();
    }
    const refused = await runScript("weedmaps-mock.mjs", [], { WEEDMAPS_MOCK_PORT: "http" });
    assert.equal(refused.code, 2);
    assert.match(refused.output, /WEEDMAPS_MOCK_PORT must be a port number/);
  });

  it("send -- status PUTs { status, canceledReason } to the relay with the POS's bearer token and prints the answer", async () => {
    const seen = [];
    const relay = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        seen.push({ method: req.method, url: req.url, authorization: req.headers.authorization, body });
        const accepted = req.url.includes("Order%207");
        res.writeHead(accepted ? 202 : 409, { "content-type": "application/json" });
        res.end(
          JSON.stringify(
            accepted
              ? { updateId: "upd_1", orderId: "Order 7", status: "CANCELED_SELLER", duplicate: false }
              : { error: { code: "status_backwards", message: "refused" } },
          ),
        );
      });
    });
    await new Promise((resolve) => relay.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${relay.address().port}`;
    const [sent, refused, missing] = await Promise.all([
      runScript("send.mjs", ["status", "Order 7", "CANCELED_SELLER", "OUT_OF_STOCK", "--url", url]),
      runScript("send.mjs", ["status", "o-1", "IN_PROGRESS", "--url", url]),
      runScript("send.mjs", ["status", "o-1"]),
    ]).finally(() => relay.close());

    assert.equal(sent.code, 0, sent.output);
    const byOrder = (id) => seen.find((one) => one.url === `/relay/weedmaps/orders/${id}/status`);
    assert.equal(seen.length, 2);
    assert.deepEqual(byOrder("Order%207"), {
      method: "PUT",
      url: "/relay/weedmaps/orders/Order%207/status",
      authorization: `Bearer ${localValues.RELAY_POS_TOKEN}`,
      body: JSON.stringify({ status: "CANCELED_SELLER", canceledReason: "OUT_OF_STOCK" }),
    });
    assert.match(sent.output, /← 202/);
    assert.match(sent.output, /"updateId": "upd_1"/);
    assert.ok(!sent.output.includes(localValues.RELAY_POS_TOKEN), "the token is never printed");

    assert.equal(refused.code, 1, "a refused update fails the command");
    assert.equal(byOrder("o-1").body, JSON.stringify({ status: "IN_PROGRESS" }), "no canceledReason unless given");
    assert.match(refused.output, /← 409/);
    assert.match(refused.output, /"code": "status_backwards"/);

    assert.equal(missing.code, 2);
    assert.match(missing.output, /status needs <orderId> <STATUS>/);
  });
});
