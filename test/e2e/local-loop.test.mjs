// End to end on loopback: the real `npm run dev` (wrangler dev: workerd, local D1 and Queues), the mock receiver
// and the `send` tool, exactly as the README's walkthrough uses them. Run with `npm run test:e2e`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { DatabaseSync } from "node:sqlite";
import { Validator } from "@seriousme/openapi-schema-validator";
import { piiValues, shownIn } from "../pii.ts";
import { eventBuilder } from "../../scripts/events.mjs";
import { localSecrets, routerConfig } from "../../scripts/local-env.mjs";
import { migratedState } from "../../scripts/migrate.mjs";
import { start, stop, stopAll, tail, waitFor } from "../../scripts/procs.mjs";

const ROOT = path.resolve(import.meta.dirname, "../..");
// Not the default port: the run also shows that `npm run dev -- --port N` replaces the default.
const PORT = "8797";
const ROUTER = `http://127.0.0.1:${PORT}`;
const work = mkdtempSync(path.join(tmpdir(), "router-e2e-"));
const receiverLog = path.join(work, "receiver.jsonl");
function send(...args) {
  const result = spawnSync(process.execPath, ["scripts/send.mjs", "--url", ROUTER, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 30_000,
  });
  return { code: result.status, out: result.stdout + result.stderr };
}

function received() {
  try {
    return readFileSync(receiverLog, "utf8")
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line));
  } catch {
    return [];
  }
}

const ADMIN = { Authorization: "Bearer local-admin-token" };

async function admin(method, pathname, body) {
  const res = await fetch(`${ROUTER}/admin${pathname}`, {
    method,
    headers: { ...ADMIN, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

let receiver;
let dev;

function startReceiver(...flags) {
  receiver = start("receiver", ["scripts/receiver.mjs", "--log", receiverLog, "--quiet", ...flags], { cwd: ROOT });
}

async function restartReceiver(...flags) {
  await stop(receiver);
  startReceiver(...flags);
  return waitFor(async () => (await fetch("http://127.0.0.1:8788/healthz")).ok, "the receiver");
}

const eventIdOf = (out) => /accepted as (evt_(?:\d{1,3}_)?[0-9a-f]{32})/.exec(out)?.[1];

/** `npm run send -- status …` as the POS sends it: its exit code, the router's status and its JSON answer. */
function relayStatus(orderId, status) {
  const { code, out } = send("status", orderId, status);
  const answer = /^← (\d{3}) in \d+ ms\n(\{[\s\S]*\})\s*$/m.exec(out);
  assert.ok(answer, out);
  return { code, out, status: Number(answer[1]), json: JSON.parse(answer[2]) };
}

// The Weedmaps Orders API mock the receiver serves under /weedmaps (scripts/weedmaps-mock.mjs), which the sample
// config's weedmaps-api destination points at.
async function weedmapsStats() {
  const res = await fetch("http://127.0.0.1:8788/weedmaps/__mock/stats");
  assert.equal(res.status, 200);
  return res.json();
}

/** Sends `head` and half of `body` with the full Content-Length, closes the write side, and returns the answer. */
function cutOff(pathname, headers, body) {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(PORT), "127.0.0.1");
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
      `Host: 127.0.0.1:${PORT}`,
      "Connection: close",
      `Content-Length: ${Buffer.byteLength(body)}`,
    ];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    socket.write(`${lines.join("\r\n")}\r\n\r\n${body.slice(0, Math.floor(body.length / 2))}`);
    // Half-close: the router sees the body end early and can still answer on the open read side.
    setTimeout(() => socket.end(), 200);
  });
}

describe("local loop: npm run dev + npm run receiver + npm run send", { timeout: 240_000 }, () => {
  before(async () => {
    startReceiver("--fail-first", "2", "--fail-path", "/pos");
    await migratedState(path.join(work, "state"));
    dev = start("dev", ["scripts/dev.mjs", "--persist-to", path.join(work, "state"), "--port", PORT], {
      cwd: ROOT,
    });
    await waitFor(async () => (await fetch(`${ROUTER}/healthz`)).ok, `the router on ${ROUTER}`, 120_000).catch(
      (err) => {
        throw new Error(`${err.message}\n${tail(dev)}`);
      },
    );
  });

  after(async () => {
    await stopAll();
    rmSync(work, { recursive: true, force: true });
  });

  it("delivers weedmaps.create to both receivers with verified signatures, retrying the failing one to a third attempt", async () => {
    const { code, out } = send("weedmaps.create", "--merchant", "4242");
    assert.equal(code, 0, out);
    const eventId = eventIdOf(out);
    assert.ok(eventId, out);
    const forEvent = () => received().filter((r) => r.headers["webhook-id"] === eventId);
    await waitFor(
      () => forEvent().some((r) => r.path === "/pos/orders" && r.status === 200),
      "the POS delivery to succeed",
      90_000,
    );
    const pos = forEvent().filter((r) => r.path === "/pos/orders");
    const erp = forEvent().filter((r) => r.path === "/erp/webhooks");
    assert.deepEqual(
      pos.map((r) => [r.headers["x-router-attempt"], r.status]),
      [
        ["1", 500],
        ["2", 500],
        ["3", 200],
      ],
    );
    assert.deepEqual(
      erp.map((r) => r.status),
      [200],
    );
    for (const r of [...pos, ...erp]) {
      assert.match(r.signature, /^verified with (POS|ERP)_SIGNING_SECRET$/);
      assert.equal(r.headers["x-router-merchant-id"], "4242");
      assert.equal(JSON.parse(r.body).seller.id, "4242");
    }
  });

  for (const [event, paths] of [
    ["leaftrade.order-v4", ["/erp/webhooks"]],
    ["leaftrade.order-v3", ["/erp/webhooks"]],
    ["leaftrade.product-issue", ["/pos/orders", "/erp/webhooks"]],
  ]) {
    it(`delivers ${event}`, async () => {
      const { code, out } = send(event);
      assert.equal(code, 0, out);
      const eventId = eventIdOf(out);
      const arrived = await waitFor(
        () => {
          const hits = received().filter((r) => r.headers["webhook-id"] === eventId && r.status === 200);
          return hits.length === paths.length && hits;
        },
        `${event} at ${paths.join(", ")}`,
      );
      assert.deepEqual(arrived.map((r) => r.path).sort(), [...paths].sort());
      for (const r of arrived) assert.match(r.signature, /^verified with/);
    });
  }

  it("answers weedmaps.draft with the responder's confirmed totals through the router", () => {
    const { code, out } = send("weedmaps.draft");
    assert.equal(code, 0, out);
    assert.match(out, /✔ draft confirmed: grandTotal \d+\.\d\d/);
    assert.ok(
      received().some((r) => r.path === "/pricing/draft" && r.signature === "verified with PRICING_SIGNING_SECRET"),
    );
  });

  it("rejects --bad-signature with 401", () => {
    const { code, out } = send("weedmaps.create", "--bad-signature");
    assert.equal(code, 0, out);
    assert.match(out, /← 401 .*"invalid_signature"/);
  });

  // A body cut off before its Content-Length, from a raw socket that sends the headers and half the body and then
  // closes its side: workerd fails the body read with `Error: Network connection lost.`, which the router must answer
  // 400 body_incomplete with a warning, never `unhandled_error` (issue #22).
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

  it("stores --duplicate once and fans it out once", async () => {
    const { code, out } = send("leaftrade.order-v3", "--duplicate");
    assert.equal(code, 0, out);
    assert.match(out, /✔ duplicate acknowledged, stored once as (evt_(?:\d{1,3}_)?[0-9a-f]{32})/);
    const eventId = eventIdOf(out);
    await waitFor(() => received().some((r) => r.headers["webhook-id"] === eventId), "the duplicate's single delivery");
    // A later event as a barrier instead of a sleep: once it has arrived, the duplicate's own message (sent before
    // it) has been handled too, and it must have delivered nothing.
    const later = send("leaftrade.order-v3");
    const laterId = eventIdOf(later.out);
    await waitFor(
      () => received().some((r) => r.headers["webhook-id"] === laterId),
      "the event sent after the duplicate",
    );
    assert.equal(received().filter((r) => r.headers["webhook-id"] === eventId).length, 1);
    const { json } = await admin("GET", `/events/${eventId}`);
    assert.deepEqual(
      json.deliveries.map((d) => [d.destination, d.status, d.attempts]),
      [["erp", "delivered", 1]],
    );
  });

  it("admin API: find a dead delivery, see its attempts, replay it once the receiver is fixed, and watch it reach delivered", async () => {
    // A 4xx the destination means (422): that one delivery is dead. (A 410 would disable erp: the outage test below.)
    await restartReceiver("--fail-first", "1", "--fail-status", "422", "--fail-path", "/erp");
    const { code, out } = send("leaftrade.order-v3");
    assert.equal(code, 0, out);
    const eventId = eventIdOf(out);

    const dead = await waitFor(async () => {
      const { json } = await admin("GET", "/dead-letters?destination=erp");
      return json.deliveries.find((d) => d.eventId === eventId);
    }, "the erp delivery to be dead");
    assert.equal(dead.lastStatusCode, 422);

    const { json: detail } = await admin("GET", `/events/${eventId}`);
    assert.deepEqual(
      detail.deliveries.map((d) => [d.generation, d.status, d.attemptLog.map((a) => a.statusCode)]),
      [[1, "dead", [422]]],
    );

    await restartReceiver();
    const replay = await admin("POST", `/events/${eventId}/replay`, {});
    assert.equal(replay.status, 202);
    assert.deepEqual(replay.json.deliveries, [{ destination: "erp", generation: 2 }]);
    const delivered = await waitFor(async () => {
      const { json } = await admin("GET", `/events/${eventId}`);
      return json.deliveries.find((d) => d.generation === 2 && d.status === "delivered");
    }, "the replay to be delivered");
    assert.equal(delivered.attempts, 1);
    const hits = received().filter((r) => r.headers["webhook-id"] === eventId);
    assert.deepEqual(
      hits.map((r) => r.status),
      [422, 200],
    );
  });

  it("status relay walkthrough: one order from Draft to COMPLETE in both directions, Weedmaps' callbacks in and the POS's updates out to the Weedmaps mock", async () => {
    // As the README's "An order in both directions" walks it (docs/relay.md). The receiver was restarted by the test
    // above, so its Weedmaps mock is fresh; nothing before this test used the relay.
    const MERCHANT = "4242";
    // One order throughout: its Draft, its Create and Weedmaps' later callback all carry this id (`send --order`).
    const orderId = String(10_000_000 + Math.floor(Math.random() * 89_999_999));
    const draft = send("weedmaps.draft", "--merchant", MERCHANT, "--order", orderId);
    assert.equal(draft.code, 0, draft.out);
    assert.match(draft.out, /✔ draft confirmed: grandTotal \d+\.\d\d/);
    const create = send("weedmaps.create", "--merchant", MERCHANT, "--order", orderId);
    assert.equal(create.code, 0, create.out);
    const createId = eventIdOf(create.out);
    assert.ok(createId, create.out);
    assert.equal((await admin("GET", `/events/${createId}`)).json.event.providerOrderId, orderId);
    const tokenRequestsBefore = (await weedmapsStats()).tokenRequests;
    const putsOfOrder = async () => (await weedmapsStats()).puts.filter((p) => p.orderId === orderId);
    const putArrived = (status) =>
      waitFor(
        async () => {
          const puts = await putsOfOrder();
          return puts.some((p) => p.status === status && p.answered === 200) && puts;
        },
        `Weedmaps (the mock) to take the ${status} PUT of order ${orderId}`,
        30_000,
      ).catch(async (err) => {
        // Say why: each update's delivery as the router recorded it, and what the mock's token endpoint answered.
        const { json } = await admin("GET", `/events?orderId=${encodeURIComponent(orderId)}`);
        const deliveries = [];
        for (const e of json.events.filter((x) => x.eventType.startsWith("relay.")))
          for (const d of (await admin("GET", `/events/${e.id}`)).json.deliveries)
            deliveries.push(
              `${e.eventType}: ${d.status}, ${d.lastError ?? d.lastStatusCode} (${d.attemptLog.at(-1)?.responseExcerpt ?? "no attempt"})`,
            );
        const { tokenAnswers, putsByStatus } = await weedmapsStats();
        throw new Error(
          `${err.message}\n${deliveries.join("\n")}\nmock token answers ${JSON.stringify(tokenAnswers)}, PUT answers ${JSON.stringify(putsByStatus)}`,
        );
      });

    // The POS accepts the order: 202 at once, and the router PUTs it to Weedmaps from the queue.
    const inProgress = relayStatus(orderId, "IN_PROGRESS");
    assert.equal(inProgress.status, 202, inProgress.out);
    assert.equal(inProgress.code, 0);
    const { updateId: inProgressId, ...inProgressRest } = inProgress.json;
    assert.match(inProgressId, /^evt_(?:\d{1,3}_)?[0-9a-f]{32}$/);
    assert.deepEqual(inProgressRest, {
      accepted: true,
      orderId,
      status: "IN_PROGRESS",
      previous: "PENDING",
      duplicate: false,
    });
    await putArrived("IN_PROGRESS");

    // The same update again (a POS retrying): the same update, nothing new to send.
    const repeated = relayStatus(orderId, "IN_PROGRESS");
    assert.equal(repeated.status, 202, repeated.out);
    assert.deepEqual(
      [repeated.json.duplicate, repeated.json.updateId, repeated.json.previous],
      [true, inProgressId, "IN_PROGRESS"],
    );

    const ready = relayStatus(orderId, "READY_FOR_ATTAINMENT");
    assert.equal(ready.status, 202, ready.out);
    assert.deepEqual([ready.json.previous, ready.json.duplicate], ["IN_PROGRESS", false]);
    assert.notEqual(ready.json.updateId, inProgressId);
    // The next PUT as a barrier instead of a sleep: it was accepted after the repeat, which sent no second one.
    assert.deepEqual(
      (await putArrived("READY_FOR_ATTAINMENT")).map((p) => p.status),
      ["IN_PROGRESS", "READY_FOR_ATTAINMENT"],
    );

    // Backwards is refused.
    const backwards = relayStatus(orderId, "IN_PROGRESS");
    assert.equal(backwards.status, 409, backwards.out);
    assert.equal(backwards.code, 1);
    assert.equal(backwards.json.error.code, "relay_transition_refused");
    assert.deepEqual(backwards.json.error.details, ["current status: READY_FOR_ATTAINMENT"]);

    // Weedmaps -> router: Weedmaps' own IN_PROGRESS callback of this order arrives late, signed as Weedmaps signs it
    // (send's builder, given this order's id). It is routed to the internal systems and moves the order nowhere.
    const callback = eventBuilder("weedmaps.in-progress", routerConfig(), { merchant: MERCHANT, orderId });
    const callbackBody = callback.body();
    assert.equal(JSON.parse(callbackBody).orderId, orderId);
    const { values: secrets } = localSecrets();
    const callbackRes = await fetch(`${ROUTER}${callback.path()}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...callback.headers(callbackBody, (name) => secrets[name]) },
      body: callbackBody,
    });
    const callbackAck = await callbackRes.json();
    assert.equal(callbackRes.status, 200, JSON.stringify(callbackAck));
    assert.deepEqual([callbackAck.received, callbackAck.routing, callbackAck.deliveries], [true, "routed", 2]);

    const complete = relayStatus(orderId, "COMPLETE");
    assert.equal(complete.status, 202, complete.out);
    assert.deepEqual([complete.json.previous, complete.json.duplicate], ["READY_FOR_ATTAINMENT", false]);
    await putArrived("COMPLETE");
    const completeAgain = relayStatus(orderId, "COMPLETE");
    assert.equal(completeAgain.status, 202, completeAgain.out);
    assert.deepEqual([completeAgain.json.duplicate, completeAgain.json.updateId], [true, complete.json.updateId]);
    const leaveEnding = relayStatus(orderId, "READY_FOR_ATTAINMENT");
    assert.equal(leaveEnding.status, 409, leaveEnding.out);
    assert.equal(leaveEnding.json.error.code, "relay_transition_refused");
    assert.deepEqual(leaveEnding.json.error.details, ["current status: COMPLETE"]);

    // Weedmaps got three PUTs, in order, to the Create's merchant as the listing, each answered 200: the mock answers
    // 401 to a PUT without a bearer token it issued, and one token (fetched once) carried all three.
    const stats = await weedmapsStats();
    assert.deepEqual(
      stats.puts
        .filter((p) => p.orderId === orderId)
        .map((p) => [p.version, p.listingId, p.status, p.canceledReason, p.answered]),
      [
        ["2026-01", MERCHANT, "IN_PROGRESS", null, 200],
        ["2026-01", MERCHANT, "READY_FOR_ATTAINMENT", null, 200],
        ["2026-01", MERCHANT, "COMPLETE", null, 200],
      ],
    );
    assert.equal(stats.latest[MERCHANT]?.[orderId]?.status, "COMPLETE", JSON.stringify(stats.latest));
    assert.equal(stats.tokenRequests - tokenRequestsBefore, 1, JSON.stringify(stats.tokenAnswers));
    assert.equal(stats.tokensIssued, 1);

    // The order's timeline: the Create, the three updates (the repeats stored nothing) and Weedmaps' late callback,
    // every delivery delivered.
    const timeline = await waitFor(
      async () => {
        const { json } = await admin("GET", `/events?orderId=${encodeURIComponent(orderId)}`);
        const settled = json.events.every(
          (e) => e.deliveries.pending + e.deliveries.failing + e.deliveries.dead + e.deliveries.stale === 0,
        );
        return json.events.length === 6 && settled && json;
      },
      `every event of order ${orderId} to be delivered`,
      60_000,
    );
    assert.equal(timeline.nextCursor, null);
    assert.deepEqual(timeline.events.map((e) => [e.eventType, e.merchantId, e.deliveries.delivered]).reverse(), [
      ["draft", MERCHANT, 1],
      ["create", MERCHANT, 2],
      ["relay.in_progress", MERCHANT, 1],
      ["relay.ready_for_attainment", MERCHANT, 1],
      ["in_progress", MERCHANT, 2],
      ["relay.complete", MERCHANT, 1],
    ]);
    const updates = [
      [inProgressId, "IN_PROGRESS"],
      [ready.json.updateId, "READY_FOR_ATTAINMENT"],
      [complete.json.updateId, "COMPLETE"],
    ];
    for (const [updateId, status] of updates) {
      const { json } = await admin("GET", `/events/${updateId}`);
      assert.equal(json.event.eventType, `relay.${status.toLowerCase()}`);
      assert.deepEqual(
        json.deliveries.map((d) => [d.destination, d.route, d.status, d.attemptLog.map((a) => a.statusCode)]),
        [["weedmaps-api", "relay", "delivered", [200]]],
      );
      // What Weedmaps answered, kept with the attempt.
      assert.deepEqual(JSON.parse(json.deliveries[0].attemptLog[0].responseExcerpt), { orderId, status });
    }
  });

  it("customer data: after `npm run send` of every fixture, no column of any table in the local D1 holds a customer value", async () => {
    const events = /events: (.*)/.exec(send("--help").out)[1].split(", ");
    assert.ok(events.length >= 14, events.join());
    for (const event of events)
      assert.equal(send(event, ...(event.startsWith("weedmaps.") ? ["--merchant", "4242"] : [])).code, 0, event);
    const fixtures = {};
    for (const provider of ["weedmaps", "leaftrade"]) {
      for (const file of readdirSync(path.join(ROOT, "test/fixtures/providers", provider)).filter((f) =>
        f.endsWith(".json"),
      ))
        fixtures[`${provider}/${file.replace(/\.json$/, "")}`] = readFileSync(
          path.join(ROOT, "test/fixtures/providers", provider, file),
          "utf8",
        );
    }
    const pii = piiValues(fixtures);
    assert.ok(pii.includes("1990-04-12") && pii.includes("MR-2026-118822"), pii.join());
    // The database files wrangler dev keeps under --persist-to, one per D1 binding (DB and each event shard), read
    // as any tool on the machine would read them.
    const dir = path.join(work, "state", "v3", "d1", "miniflare-D1DatabaseObject");
    // (Miniflare keeps a metadata.sqlite of its own beside them: no events table, skipped.)
    const files = readdirSync(dir).filter((f) => f.endsWith(".sqlite"));
    let cells = 0;
    let sealed = 0;
    const shards = [];
    const withEvents = [];
    for (const file of files) {
      const db = new DatabaseSync(path.join(dir, file), { readOnly: true });
      try {
        if (!db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name = 'events'").get()) continue;
        shards.push(file);
        if (db.prepare("SELECT COUNT(*) AS n FROM events").get().n > 0) withEvents.push(file);
        for (const { name } of db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all()) {
          for (const row of db.prepare(`SELECT * FROM "${name}"`).all()) {
            for (const [column, value] of Object.entries(row)) {
              const text = value instanceof Uint8Array ? Buffer.from(value).toString("utf8") : String(value);
              cells++;
              if (/^pe[12]:/.test(text)) sealed++; // pe2: compressed first, pe1: as given
              // The fixtures' values are made up, so the message may name the one found and where.
              for (const secret of shownIn(text, pii)) {
                const at = text.indexOf(secret);
                assert.fail(
                  `${file}: ${name}.${column} holds the fixture value ${JSON.stringify(secret)}: …${text.slice(Math.max(0, at - 40), at + secret.length + 40)}…`,
                );
              }
            }
          }
        }
      } finally {
        db.close();
      }
    }
    assert.ok(shards.length >= 2, `one database file per D1 binding (DB, SHARD_1): ${files.join()}`);
    assert.ok(cells > 100 && sealed >= events.length, `${cells} cells, ${sealed} sealed`);
    // The orders spread over the shards: both databases hold events.
    assert.ok(withEvents.length >= 2, `events in ${withEvents.join() || "no database"}`);
  });

  it("admin API: serves a valid OpenAPI 3.1 document", async () => {
    const { status, json } = await admin("GET", "/openapi.json");
    assert.equal(status, 200);
    const validator = new Validator();
    const result = await validator.validate(json);
    assert.equal(validator.version, "3.1");
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
  });

  it("outage walkthrough: the POS goes down, its circuit opens, an alert arrives, and after the outage the backlog drains at the rate limit", async () => {
    // As docs/destination-controls.md walks through it, with a 10 s outage instead of 60 s.
    await restartReceiver("--down-for", "10s", "--fail-path", "/pos");
    const outageStarted = Date.now();
    const { code, out } = send("weedmaps.create", "--merchant", "4242", "--count", "8");
    assert.equal(code, 0, out);
    const ids = [...out.matchAll(/accepted as (evt_(?:\d{1,3}_)?[0-9a-f]{32})/g)].map((m) => m[1]);
    assert.equal(ids.length, 8, out);
    const pos = async () =>
      (await admin("GET", "/destinations/health")).json.destinations.find((d) => d.name === "pos").controls;
    await waitFor(async () => (await pos()).state === "circuit_open", "the POS circuit to open", 60_000);
    const alerts = () =>
      received()
        .filter((r) => r.alert)
        .map((r) => JSON.parse(r.body));
    const opened = await waitFor(
      () => alerts().find((a) => a.kind === "circuit_opened" && a.destination === "pos"),
      "the circuit_opened alert at the local alert receiver",
      60_000,
    );
    assert.match(opened.reason, /^http_503$/);
    for (const value of ["Jordan", "Rivera", "1990-04-12", "MR-2026-118822", "+15555550123"])
      assert.ok(!JSON.stringify(alerts()).includes(value), "an alert carries no customer data");
    const held = await pos();
    assert.ok(held.held.count > 0, JSON.stringify(held));

    const firstOk = (id) =>
      received().find((r) => r.path === "/pos/orders" && r.status === 200 && r.headers["webhook-id"] === id);
    await waitFor(() => ids.every(firstOk), "every order to reach the POS after the outage", 120_000);
    const okAt = ids.map((id) => firstOk(id).at);
    assert.ok(Math.min(...okAt) >= outageStarted + 10_000, "nothing reached the POS during the outage");
    // pos: maxPerSecond 5. The token bucket allows one second's worth at once, so no second sees more than 5 + 5.
    const perSecond = new Map();
    for (const t of okAt) perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
    assert.ok(Math.max(...perSecond.values()) <= 10, JSON.stringify([...perSecond]));
    const after = await pos();
    assert.equal(after.state, "open");
    assert.deepEqual(
      after.history
        .map((h) => h.kind)
        .filter((k) => k === "opened" || k === "closed")
        .slice(0, 1),
      ["opened"],
    );
    assert.equal(after.history.at(-1).kind, "closed");
    await waitFor(
      () => alerts().some((a) => a.kind === "circuit_closed" && a.destination === "pos"),
      "the circuit_closed alert",
      30_000,
    );
    // Held deliveries used no attempts: each order took its failed first attempt(s) before the circuit opened, then one.
    for (const id of ids) {
      const { json } = await admin("GET", `/events/${id}`);
      const d = json.deliveries.find((x) => x.destination === "pos");
      assert.equal(d.status, "delivered");
      assert.ok(d.attempts <= 3, JSON.stringify(d.attemptLog.map((a) => a.statusCode)));
    }
  });
});
