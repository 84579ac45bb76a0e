// The dashboard's page views against the number of events stored: what one view of each page costs in D1 rows read
// and written, D1 statements and Durable Object calls, with 10,000 events stored and with 100,000 (the smoke run:
// 200 and 2,000), read from the router's usage line of that one request (USAGE_LOG=true, src/telemetry/usage.ts).
// Both sizes are measured with the events spread over 1, 2 and 4 shards (the smoke run: 1), each count on databases
// of its own: a list page reads a bounded window from every shard and merges them, so its bound is per shard.
//
// The two sizes are one system at one ingest rate that has kept ten times the history: the small size is the most
// recent 2.5 days, and the large one adds 22.5 days of older events before them. Every view below asks for the same
// recent rows at both sizes (the newest page, the same order, merchant and time windows), so a page that reads more
// at the large size is reading history it does not show: it scales with the events stored.
//
// The rows are generated here (once per size, whatever the shard count) and written straight into the local D1 file
// of each shard while the router is stopped (node:sqlite), after the repo's migrations: every event into the shard
// the router's own jump hash gives its order (src/core/shards.ts), under the id that names that shard
// (src/core/event-id.ts). A few real signed events go through ingest as well, so the event page opens a real,
// encrypted body. The seeded bodies are stored unencrypted (no `payload_dek`), which src/storage/payloads.ts reads
// as given in either mode; every generated `deliveries` array is parsed with the router's own DeliveryStatesSchema
// before it is written.
import { createHash, createHmac, randomUUID } from "node:crypto";
import { cpSync, existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { BUSY_MS } from "./storage.mjs";
import { DeliveryStatesSchema } from "../../src/core/delivery-state.ts";
import { eventIdOf } from "../../src/core/event-id.ts";
import { shardFor } from "../../src/core/shards.ts";
import { eventBuilder } from "../../scripts/events.mjs";
import { routerConfig } from "../../scripts/local-env.mjs";
import { sleep, stop, waitFor } from "../../scripts/procs.mjs";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** The most recent stretch, the small size. The large size keeps `large / small` times as many days at the same rate. */
const RECENT_DAYS = 2.5;
/** "Flat": the large size reads at most this many rows more than the small one. */
export const DASHBOARD_FLAT_ROWS = 10;
/** Each view is requested once to warm up, then this many times; the report keeps the largest figure of each. */
const REPEATS = 3;

// The router's own config (router.config.json): which events are routed where, as the seeded rows say. Read from
// the file, so a route added there is seeded as routed (the first route naming an event, as a seed needs one).
const ROUTES = {};
for (const route of routerConfig().routes) {
  ROUTES[route.source] ??= {};
  for (const type of route.events) ROUTES[route.source][type] ??= [route.name, route.destinations];
}
const MAX_ATTEMPTS = 10; // pos and erp in router.config.json
const WEEDMAPS_MERCHANTS = Array.from({ length: 24 }, (_, i) => String(4200 + i * 7));
const LEAFTRADE_MERCHANTS = Array.from({ length: 12 }, (_, i) => `C10-${String(456 + i * 31).padStart(7, "0")}-LIC`);
const FAILURES = [
  ["http_503", 503, "Service Unavailable"],
  ["http_500", 500, '{"error":"internal"}'],
  ["timeout", null, null],
  ["network_error", null, null],
  ["http_429", 429, "Too Many Requests"],
];

const ROOT = path.resolve(import.meta.dirname, "../..");

/** The `[[d1_databases]]` tables of a wrangler config, as {binding, databaseId}, in the file's order. */
export function d1Databases(configFile = path.join(ROOT, "wrangler.toml")) {
  const databases = [];
  let table = null;
  for (const line of readFileSync(configFile, "utf8").split("\n")) {
    if (/^\s*\[/.test(line)) {
      table = line.trim() === "[[d1_databases]]" ? {} : null;
      if (table) databases.push(table);
      continue;
    }
    const field = table && /^\s*(binding|database_id)\s*=\s*"([^"]+)"/.exec(line);
    if (field) table[field[1] === "binding" ? "binding" : "databaseId"] = field[2];
  }
  return databases;
}

/**
 * The local file of one D1 database under a `--persist-to` directory; by default the `DB` binding's (shard 0, the
 * control database). Miniflare keeps each database in a Durable Object named by its `database_id`, and the file is
 * named by the object's id, which it derives from the name as below: HMAC-SHA256 under the SHA-256 of the class's
 * unique key, the name's MAC (16 bytes) then the MAC of that (16 bytes). Checked: a file that is not there throws.
 */
export function localDatabase(persistTo, databaseId = d1Databases()[0].databaseId) {
  const key = createHash("sha256").update("miniflare-D1DatabaseObject").digest();
  const name = createHmac("sha256", key).update(databaseId).digest().subarray(0, 16);
  const mac = createHmac("sha256", key).update(name).digest().subarray(0, 16);
  const dir = path.join(persistTo, "v3", "d1", "miniflare-D1DatabaseObject");
  const file = path.join(dir, `${Buffer.concat([name, mac]).toString("hex")}.sqlite`);
  if (!existsSync(file))
    throw new Error(
      `no local D1 file for database ${databaseId} under ${dir}: not migrated, or miniflare names it otherwise`,
    );
  return file;
}

/** The local D1 file of each shard of `storage` (ids 0, 1, …), through the bindings `configFile` gives them. */
export function shardDatabases(persistTo, configFile, storage) {
  const databases = d1Databases(configFile);
  return storage.shards.map(({ id, binding }, i) => {
    if (id !== i) throw new Error(`storage.shards: shard ${id} at position ${i} (the seeding numbers shards 0, 1, …)`);
    const database = databases.find((d) => d.binding === binding);
    if (!database?.databaseId) throw new Error(`${configFile} has no D1 database bound as ${binding}`);
    return localDatabase(persistTo, database.databaseId);
  });
}

/** A small seeded PRNG (mulberry32): the same rows every run. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sha256 = (text) => createHash("sha256").update(text).digest("hex");
const isoSeconds = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");

/** What the schema holds right now: the columns of `events`, its indexes, and whether migration 0008 is in. */
export function schemaOf(persistTo) {
  const db = new DatabaseSync(localDatabase(persistTo), { readOnly: true, timeout: BUSY_MS });
  try {
    const columns = db
      .prepare("PRAGMA table_info(events)")
      .all()
      .map((c) => c.name);
    const indexes = db
      .prepare("PRAGMA index_list(events)")
      .all()
      .map((i) => i.name)
      .filter((n) => !n.startsWith("sqlite_autoindex"));
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
      .all()
      .map((t) => t.name);
    return {
      columns,
      indexes,
      rollups: tables.includes("rollups"),
      deadDeliveriesColumn: columns.includes("dead_deliveries"),
    };
  } finally {
    db.close();
  }
}

/** How many events the stopped router's local D1 files hold (`where` them): `files`, or the `DB` binding's. */
export function eventCount(persistTo, files = [localDatabase(persistTo)], where = "1") {
  let n = 0;
  for (const file of files) {
    const db = new DatabaseSync(file, { readOnly: true, timeout: BUSY_MS });
    try {
      n += db.prepare(`SELECT count(*) AS n FROM events WHERE ${where}`).get().n;
    } finally {
      db.close();
    }
  }
  return n;
}

/**
 * One delivery's state after its attempts, as the consumer leaves it (src/core/delivery-state.ts): `outcome` is
 * delivered, dead (every attempt failed), failing (pending, retrying) or new (pending, not yet attempted).
 */
function delivery(rand, { destination, route, generation, createdAt, outcome, superseded, now }) {
  const log = [];
  const fail = FAILURES[Math.floor(rand() * FAILURES.length)];
  const attempts =
    outcome === "new"
      ? 0
      : outcome === "dead"
        ? MAX_ATTEMPTS
        : outcome === "failing"
          ? 1 + Math.floor(rand() * 4)
          : rand() < 0.06
            ? 2
            : 1;
  let at = createdAt + 150 + Math.floor(rand() * 1500);
  for (let n = 1; n <= attempts; n++) {
    const ok = outcome === "delivered" && n === attempts;
    const latencyMs = ok
      ? 20 + Math.floor(rand() * 250)
      : fail[0] === "timeout"
        ? 10_000
        : 5 + Math.floor(rand() * 400);
    log.push({
      attempt: n,
      at,
      statusCode: ok ? 200 : fail[1],
      latencyMs,
      errorClass: ok ? null : fail[0],
      responseExcerpt: ok ? null : fail[2],
    });
    if (n < attempts) at += Math.min(43_200_000, 30_000 * 2 ** (n - 1)) + Math.floor(rand() * 2000);
  }
  if (outcome === "failing") at = Math.min(at, now - 60_000); // the last attempt is in the past
  const last = log.at(-1);
  const done = outcome === "delivered" || outcome === "dead";
  return {
    destination,
    generation,
    route,
    status: done ? outcome : "pending",
    attempts,
    createdAt,
    nextAttemptAt:
      outcome === "new" ? createdAt : outcome === "failing" ? at + Math.min(43_200_000, 30_000 * 2 ** attempts) : at,
    lastStatusCode: last ? last.statusCode : null,
    lastError: outcome === "dead" ? `${fail[0]} (after ${attempts} attempts)` : outcome === "failing" ? fail[0] : null,
    completedAt: done ? at + last.latencyMs : null,
    superseded,
    log,
  };
}

/**
 * The deliveries of one routed event of age `now - receivedAt`: most delivered, about 1% with a dead one, some
 * replayed (an older generation kept as history, the new one delivered), and, only for recent events, some still
 * retrying or not attempted yet.
 */
function deliveriesOf(rand, { destinations, route, receivedAt, now }) {
  const age = now - receivedAt;
  const pick = rand();
  let kind = "delivered";
  // Of the routed events (about 70%): 1.4% dead, so about 1% of all events has a dead delivery.
  if (pick < 0.014) kind = "dead";
  else if (pick < 0.026) kind = "replayed";
  else if (pick < 0.05 && age < 12 * HOUR) kind = "failing";
  else if (pick < 0.055 && age < HOUR) kind = "new";
  const unlucky = Math.floor(rand() * destinations.length);
  const list = [];
  for (const [i, destination] of destinations.entries()) {
    const base = { destination, route, createdAt: receivedAt, now };
    if (i !== unlucky || kind === "delivered") {
      list.push(delivery(rand, { ...base, generation: 1, outcome: "delivered", superseded: false }));
      continue;
    }
    if (kind !== "replayed") {
      list.push(delivery(rand, { ...base, generation: 1, outcome: kind, superseded: false }));
      continue;
    }
    // Dead (or delivered, then sent again on request), redriven later: generation 1 is history, generation 2 delivered.
    const first = delivery(rand, {
      ...base,
      generation: 1,
      outcome: rand() < 0.7 ? "dead" : "delivered",
      superseded: true,
    });
    const replayedAt = Math.min(now - 60_000, first.completedAt + HOUR + Math.floor(rand() * 6 * HOUR));
    list.push(
      first,
      delivery(rand, { ...base, generation: 2, createdAt: replayedAt, outcome: "delivered", superseded: false }),
    );
  }
  return list;
}

function weedmapsBody(orderId, status, merchant, at, rand) {
  return JSON.stringify({
    orderId,
    version: 1,
    status,
    createdAt: isoSeconds(at - 60_000),
    lastModifiedAt: isoSeconds(at),
    currency: "USD",
    customer: {
      id: `cus_${orderId}`,
      firstName: "Bench",
      lastName: "Seed",
      phone: "+15555550100",
      dob: "1990-01-01",
      hasMedicalRecommendation: false,
    },
    seller: { id: merchant, city: "Oakland", province: "CA", countryCode: "US" },
    customerNote: "seeded by bench/lib/dashboard.mjs",
    lineItems: [
      {
        id: "li_001",
        externalId: "SKU-001",
        name: "Blue Dream 3.5g",
        quantity: 1 + Math.floor(rand() * 3),
        originalPrice: "35.00",
        adjustedPrice: "35.00",
      },
    ],
    totals: { subtotal: "35.00", total: "38.50" },
  });
}

function leaftradeBody(type, id, status, merchant, at) {
  if (type === "product-issue") {
    return JSON.stringify({
      id,
      product_variant: { id: 5501, sku: "ECB-BD-35" },
      quantity: 2,
      reason: "damaged",
      notes: "seeded",
      date_created: isoSeconds(at),
      dispensary_location: { license_number: merchant },
    });
  }
  const order = {
    id,
    status,
    created_at: isoSeconds(at - HOUR),
    updated_at: isoSeconds(at),
    vendor_id: 3,
    dispensary_location: { id: 12, license_number: merchant, dispensary: { id: 14, name: "Green Valley Dispensary" } },
    items: [{ id: 88001, product_variant: { id: 5501, sku: "ECB-BD-35" }, quantity: 48 }],
    buyer: { first_name: "Bench", last_name: "Seed" },
  };
  return JSON.stringify(type === "order-v4" ? { count: 1, next: null, previous: null, results: [order] } : order);
}

/**
 * `count` events received in [from, to), order by order (each order a few events: a Weedmaps draft, create and
 * its later statuses; a Leaf Trade order's updates; now and then a product issue). `prefix` keeps ids of the two
 * batches apart. Returns the rows as column → value, and the first order with three or more events.
 */
function generate({ count, from, to, now, seed, prefix, schema }) {
  const rand = prng(seed);
  const rows = [];
  let orders = 0;
  while (rows.length < count) {
    orders += 1;
    const start = from + Math.floor(rand() * Math.max(1, to - from - 3 * HOUR));
    const weedmaps = rand() < 0.65;
    const source = weedmaps ? "weedmaps" : "leaftrade";
    const skew = (list) => list[Math.min(list.length - 1, Math.floor(list.length * rand() ** 1.6))];
    const merchant = skew(weedmaps ? WEEDMAPS_MERCHANTS : LEAFTRADE_MERCHANTS);
    const orderId = weedmaps ? `${prefix}${String(orders).padStart(8, "0")}` : `ord_${prefix}${orders}`;
    let steps;
    if (weedmaps) {
      const life = ["draft", "create", "in_progress", "ready_for_attainment", "complete"];
      const end = rand() < 0.08 ? [rand() < 0.6 ? "canceled_customer" : "canceled_seller"] : [];
      steps = [...life.slice(0, 1 + Math.floor(rand() * life.length)), ...end].map((type) => [
        type,
        type === "draft" ? "DRAFT" : type === "create" ? "PENDING" : type.toUpperCase(),
      ]);
    } else if (rand() < 0.1) {
      steps = [["product-issue", "reported"]];
    } else {
      const type = rand() < 0.8 ? "order-v4" : "order-v3";
      steps = ["submitted", "approved", "shipped", "delivered"]
        .slice(0, 1 + Math.floor(rand() * 4))
        .map((status) => [type, status]);
    }
    let at = start;
    for (const [type, status] of steps) {
      if (rows.length >= count || at >= to) break;
      const body = weedmaps
        ? weedmapsBody(orderId, status, merchant, at, rand)
        : leaftradeBody(type, orderId, status, merchant, at);
      const bodySha256 = sha256(body);
      const idempotencyKey = weedmaps
        ? [
            "weedmaps",
            source,
            type,
            orderId,
            ...(type === "create" ? [] : type === "draft" ? [bodySha256] : [encodeURIComponent(isoSeconds(at))]),
          ].join(":")
        : ["leaftrade", source, type, orderId, status, encodeURIComponent(isoSeconds(at))].join(":");
      const [route, destinations] = ROUTES[source][type] ?? [null, []];
      const deliveries = route ? deliveriesOf(rand, { destinations, route, receivedAt: at, now }) : [];
      DeliveryStatesSchema.parse(deliveries); // the router parses every read with it: a row that fails would break a page
      const pending = deliveries.filter((d) => d.status === "pending").map((d) => d.nextAttemptAt);
      const draft = type === "draft";
      const row = {
        // src/core/event-id.ts: the shard, the order's digest, then the identity's; set when the shard is known.
        id: null,
        object: sha256(`${source}\u0000${orderId}`), // src/core/event-id.ts `objectDigest`: what places the event
        identity: sha256(idempotencyKey),
        idempotency_key: idempotencyKey,
        ingest_id: randomUUID(),
        source,
        event_type: type,
        merchant_id: merchant,
        provider_id: orderId,
        routing: route ? "routed" : "unrouted",
        received_at: at,
        pending_due: pending.length ? Math.min(...pending) : null,
        version: deliveries.reduce((n, d) => n + d.attempts, 0),
        content_type: "application/json",
        body_sha256: bodySha256,
        responder: draft ? "pricing" : null,
        responder_status: draft ? 200 : null,
        responder_latency_ms: draft ? 80 + Math.floor(rand() * 600) : null,
        responder_error: null,
        deliveries: JSON.stringify(deliveries),
        body,
        provider_ts: at,
        draft_answer: draft ? body : null,
        draft_answer_status: draft ? 200 : null,
        draft_verdict: draft ? JSON.stringify({ outcome: "passed", repaired: [], warnings: [] }) : null,
        dead_deliveries: deliveries.filter((d) => d.status === "dead" && !d.superseded).length,
      };
      rows.push(row);
      at += 60_000 + Math.floor(rand() * 40 * 60_000);
    }
  }
  // The order the "by order id" view asks for: the first Weedmaps order with three or more events.
  const perOrder = new Map();
  for (const row of rows)
    if (row.source === "weedmaps") perOrder.set(row.provider_id, (perOrder.get(row.provider_id) ?? 0) + 1);
  const best = [...perOrder].find(([, n]) => n >= 3) ?? [...perOrder].sort((a, b) => b[1] - a[1])[0];
  const sampleOrder = best ? { orderId: best[0], events: best[1] } : null;
  // Only the columns the schema has (dead_deliveries arrives with migration 0008).
  const columns = Object.keys(rows[0]).filter((c) => schema.columns.includes(c));
  return { rows, columns, sampleOrder };
}

/**
 * Generates `count` events received in [from, to), once for every shard count (ids are set when each is written);
 * returns the rows with what they hold.
 */
export function generateBatch(options) {
  const started = performance.now();
  const generated = generate(options);
  const { rows } = generated;
  return {
    ...generated,
    stats: {
      events: rows.length,
      generateSeconds: (performance.now() - started) / 1000,
      withDeadDelivery: rows.filter((r) => r.dead_deliveries > 0).length,
      replayed: rows.filter((r) => r.deliveries.includes('"generation":2')).length,
    },
  };
}

/**
 * Writes a generated batch into the stopped router's shard files (`files[i]` is shard i): each event into the shard
 * the router's jump hash gives its order under a map of all of them (what the router's first map version is), with
 * the id that names that shard. One transaction per shard, in key order (`events` is WITHOUT ROWID: the rows live in
 * the primary key's b-tree, which appends faster than it inserts at random). Returns the time and the rows per
 * shard.
 */
export function insertBatch(files, { rows, columns }) {
  const started = performance.now();
  const writable = files.map((_, i) => i);
  const byShard = files.map(() => []);
  for (const row of rows) {
    const shard = shardFor(row.object, { writable });
    byShard[shard].push({ id: eventIdOf(shard, row), row });
  }
  for (const [shard, list] of byShard.entries()) {
    list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const db = new DatabaseSync(files[shard], { timeout: BUSY_MS });
    try {
      db.exec("PRAGMA synchronous = OFF"); // a bench's scratch copy: no fsync for each WAL checkpoint of the batch
      const insert = db.prepare(
        `INSERT INTO events (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`,
      );
      db.exec("BEGIN");
      for (const { id, row } of list) insert.run(...columns.map((c) => (c === "id" ? id : row[c])));
      db.exec("COMMIT");
    } finally {
      db.close();
    }
  }
  return { seconds: (performance.now() - started) / 1000, perShard: byShard.map((list) => list.length) };
}

const usageLine = (line) => line.startsWith("{") && line.includes('"event":"usage"');

function linesSince(router, from) {
  const out = [];
  for (let i = from; i < router.child.lines.length; i++)
    if (usageLine(router.child.lines[i])) out.push({ at: i, ...JSON.parse(router.child.lines[i]) });
  return out;
}

/** One GET with the session, and the usage line of that request (requests go one at a time, so it is the next one). */
async function view(router, cookie, pathname) {
  const from = router.child.lines.length;
  const started = performance.now();
  const response = await fetch(`${router.url}${pathname}`, {
    headers: { cookie },
    redirect: "manual",
    signal: AbortSignal.timeout(60_000),
  });
  const html = await response.text();
  const ms = performance.now() - started;
  const line = await waitFor(
    () => linesSince(router, from).find((l) => l.handler === "fetch"),
    `the usage line of GET ${pathname}`,
    10_000,
    20,
  );
  await sleep(30); // a Durable Object's own usage line may follow its caller's
  const gates = linesSince(router, from).filter((l) => l.handler === "gate");
  return {
    status: response.status,
    html,
    ms,
    // Table rows on the page (each <tr> that starts with a data cell): what the view showed, to compare across sizes.
    rowsShown: (html.match(/<tr><td/g) ?? []).length,
    // Which events the page links to, in order: whether the two sizes showed the same rows.
    shown: sha256(
      [...html.matchAll(/\/dashboard\/events\/(evt_(?:\d{1,3}_)?[0-9a-f]{32})/g)].map((m) => m[1]).join(","),
    ).slice(0, 16),
    d1Queries: line.d1Queries,
    d1RowsRead: line.d1RowsRead,
    d1RowsWritten: line.d1RowsWritten,
    gateCalls: line.gateCalls,
    gateRowsRead: gates.reduce((n, g) => n + (g.gateRowsRead ?? 0), 0),
  };
}

async function signIn(router, token) {
  const response = await fetch(`${router.url}/dashboard/sign-in`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: router.url },
    body: new URLSearchParams({ token }),
    redirect: "manual",
  });
  const cookie = response.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .find((c) => c.startsWith("router_session="));
  if (response.status !== 303 || !cookie)
    throw new Error(`sign-in answered ${response.status} without a session cookie`);
  return cookie;
}

/**
 * Runs the Cron (sweeper, maintenance walk and, with migration 0008, the rollup walk) and returns each job's usage
 * line of the first run. The rollup walk reads a bounded number of events per run; while its line says it is
 * `behind`, the Cron runs again (at most 5 runs), so the overview is current when it is measured.
 */
async function cronBeforeViews(router, { rollups }) {
  const jobs = ["scheduled", "maintenance", ...(rollups ? ["rollup"] : [])];
  let first = null;
  let runs = 0;
  for (; runs < 5; ) {
    const from = router.child.lines.length;
    await fetch(`${router.url}/cdn-cgi/local/scheduled`, { signal: AbortSignal.timeout(60_000) });
    runs += 1;
    try {
      await waitFor(
        () => jobs.every((h) => linesSince(router, from).some((l) => l.handler === h)),
        "the Cron's usage lines",
        30_000,
      );
    } catch {
      // reported as far as it got
    }
    await sleep(200);
    const lines = linesSince(router, from).filter((l) => l.handler !== "fetch" && l.handler !== "gate");
    first ??= Object.fromEntries(
      lines.map((l) => [
        l.handler,
        {
          d1Queries: l.d1Queries,
          d1RowsRead: l.d1RowsRead,
          d1RowsWritten: l.d1RowsWritten,
          ...(l.handler === "rollup" ? { counted: l.counted, behind: l.behind } : {}),
        },
      ]),
    );
    if (!lines.some((l) => l.handler === "rollup" && l.behind === true)) break;
  }
  return { ...first, runs };
}

const local = (ms) => new Date(ms).toISOString().slice(0, 16); // what a datetime-local input submits (workerd runs in UTC)
const decode = (href) => href.replace(/&amp;/g, "&");

/** The views, in order; `cursor` and `eventId` come from the run. */
function viewList({ anchor, sampleOrder, merchant, eventId }) {
  const windowQuery = new URLSearchParams({ since: local(anchor - 30 * HOUR), until: local(anchor - 18 * HOUR) });
  const redrive = new URLSearchParams({ destination: "", since: local(anchor - 48 * HOUR), until: local(anchor) });
  return [
    ["overview", "overview", "Overview", "/dashboard/overview"],
    ["events", "events", "Events, no filter", "/dashboard/events"],
    ["eventsPage2", "events page 2", "Events, page 2 (page 1's “Older events” link)", null],
    [
      "eventsByOrder",
      "by order id",
      "Events by order id",
      `/dashboard/events?orderId=${encodeURIComponent(sampleOrder.orderId)}`,
    ],
    [
      "eventsByMerchant",
      "by merchant",
      "Events by merchant",
      `/dashboard/events?merchant=${encodeURIComponent(merchant)}`,
    ],
    // A merchant no event has: the search looks at one window of events and stops, however many are stored.
    [
      "eventsByRareMerchant",
      "by unknown merchant",
      "Events by a merchant no event has (one window, then “Older events”)",
      "/dashboard/events?merchant=no-such-merchant",
    ],
    ["eventsDead", "status=dead", "Events, status dead", "/dashboard/events?status=dead"],
    [
      "eventsBySourceType",
      "by source+type",
      "Events by source and type (leaftrade, order-v4)",
      "/dashboard/events?source=leaftrade&type=order-v4",
    ],
    ["eventsWindow", "time window", "Events in a 12-hour window (30 to 18 h ago)", `/dashboard/events?${windowQuery}`],
    ["eventDetail", "event detail", "Event detail (a real ingested Create)", `/dashboard/events/${eventId}`],
    ["deadLetters", "dead letters", "Dead letters", "/dashboard/dead-letters"],
    [
      "redriveCount",
      "bulk redrive count",
      "Bulk redrive count (any destination, last 48 h)",
      `/dashboard/dead-letters/redrive?${redrive}`,
    ],
    ["destinations", "destinations", "Destinations", "/dashboard/destinations"],
    ["routing", "routing", "Routing", "/dashboard/routing"],
  ].map(([key, short, label, path]) => ({ key, short, label, path }));
}

/** Every view once to warm up, then REPEATS times; per view the largest of each figure. 404 is "missing". */
async function measureViews(router, cookie, context) {
  const list = viewList(context);
  const runs = Object.fromEntries(list.map(({ key }) => [key, []]));
  for (let pass = 0; pass <= REPEATS; pass++) {
    let page2 = null;
    for (const { key, path: fixed } of list) {
      const pathname = key === "eventsPage2" ? page2 : fixed;
      if (!pathname) {
        if (pass > 0) runs[key].push({ status: null, note: "page 1 had no “Older events” link" });
        continue;
      }
      const got = await view(router, cookie, pathname);
      if (key === "events") {
        const link = /<a href="([^"]+)">Older events<\/a>/.exec(got.html);
        page2 = link ? decode(link[1]) : null;
      }
      const { html, ...figures } = got;
      if (got.status >= 500) figures.error = html.slice(0, 300);
      if (pass > 0) runs[key].push({ ...figures, path: pathname });
    }
  }
  const max = (measured, k) => Math.max(...measured.map((r) => r[k] ?? 0));
  return Object.fromEntries(
    list.map(({ key, short, label }) => {
      const measured = runs[key];
      const statuses = [...new Set(measured.map((r) => r.status))];
      const status = statuses.length === 1 ? statuses[0] : statuses.join("/");
      const state = status === 200 ? "ok" : status === 404 ? "missing" : status === null ? "not requested" : "error";
      const out = { label, short, path: measured.find((r) => r.path)?.path ?? null, status, state };
      if (state === "ok") {
        for (const k of ["d1RowsRead", "d1RowsWritten", "d1Queries", "gateCalls", "gateRowsRead", "rowsShown"])
          out[k] = max(measured, k);
        out.ms = Math.round(max(measured, "ms"));
        out.rowsReadRuns = measured.map((r) => r.d1RowsRead);
        out.shown = measured[0].shown;
      } else if (state === "error") {
        out.error = measured.find((r) => r.error)?.error ?? null;
      } else if (state === "not requested") {
        out.note = measured[0]?.note;
      }
      return [key, out];
    }),
  );
}

/** The real signed events: Weedmaps Creates and Leaf Trade orders and a product issue, through ingest. */
async function ingestReal(router, secrets) {
  const config = routerConfig();
  const secretOf = (name) => secrets[name];
  const ids = [];
  for (const [name, merchant] of [
    ["weedmaps.create", WEEDMAPS_MERCHANTS[0]],
    ["weedmaps.create", WEEDMAPS_MERCHANTS[1]],
    ["leaftrade.order-v4", LEAFTRADE_MERCHANTS[0]],
    ["leaftrade.product-issue", LEAFTRADE_MERCHANTS[1]],
  ]) {
    const builder = eventBuilder(name, config, { merchant });
    const body = builder.body();
    const response = await fetch(`${router.url}${builder.path()}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...builder.headers(body, secretOf) },
      body,
    });
    const text = await response.text();
    if (response.status !== 200)
      throw new Error(`ingest of ${name} answered ${response.status}: ${text.slice(0, 200)}`);
    const json = JSON.parse(text);
    ids.push({ name, eventId: json.eventId ?? json.events?.[0]?.eventId });
  }
  return ids;
}

/** Rows read for each table row shown above which a flat view is only flat because its matches are as dense. */
export const SCAN_ROWS_PER_ROW_SHOWN = 20;

/**
 * Compares the two sizes view by view: flat when the large size reads at most DASHBOARD_FLAT_ROWS rows more.
 * `sameRows`: the page linked the same events at both sizes. A flat view that reads many rows for each row it shows
 * is a scan that its LIMIT stops (`scanStoppedByLimit`): flat here only because the share of matching events is the
 * same at both sizes, and it reads the whole table when fewer match.
 */
export function dashboardVerdicts(sizes) {
  const [small, large] = sizes;
  return Object.fromEntries(
    Object.keys(large.views).map((key) => {
      const a = small.views[key];
      const b = large.views[key];
      if (a.state !== "ok" || b.state !== "ok") {
        const state = [a.state, b.state].includes("error")
          ? "error"
          : [a.state, b.state].includes("missing")
            ? "missing"
            : "not measured";
        return [key, { verdict: state }];
      }
      const grows = b.d1RowsRead - a.d1RowsRead;
      const flat = grows <= DASHBOARD_FLAT_ROWS;
      const perRowShown = b.rowsShown > 0 ? b.d1RowsRead / b.rowsShown : null;
      return [
        key,
        {
          verdict: flat ? "flat" : "scales",
          extraRowsRead: grows,
          ratio: a.d1RowsRead > 0 ? b.d1RowsRead / a.d1RowsRead : null,
          sameRows: a.shown === b.shown && a.rowsShown === b.rowsShown,
          rowsReadPerRowShown: perRowShown,
          scanStoppedByLimit: flat && perRowShown !== null && perRowShown > SCAN_ROWS_PER_ROW_SHOWN,
        },
      ];
    }),
  );
}

/**
 * How each view's rows read grow with the shard count, against the fewest shards measured (1), at each size. A list
 * page reads a bounded window from every shard and merges them, so its bound is per shard: up to `shards` times the
 * one-shard figure is that bound multiplied, not a scan. `factor`: rows read at that count over the fewest, at the
 * larger size; `perShard`: the same over the shard ratio (1 when every shard adds a one-shard page, below 1 when part
 * of the read does not repeat per shard).
 */
export function shardGrowth(runs) {
  const base = runs[0];
  const keys = Object.keys(base.sizes.at(-1).views);
  return Object.fromEntries(
    keys.map((key) => {
      const read = (run) => run.sizes.map(({ views }) => (views[key]?.state === "ok" ? views[key].d1RowsRead : null));
      const rowsRead = Object.fromEntries(runs.map((run) => [run.shards, read(run)]));
      const ref = rowsRead[base.shards].at(-1);
      const factor = Object.fromEntries(
        runs.map((run) => {
          const rows = rowsRead[run.shards].at(-1);
          return [run.shards, ref && rows !== null ? rows / ref : null];
        }),
      );
      const perShard = Object.fromEntries(
        runs.map((run) => [
          run.shards,
          factor[run.shards] === null ? null : factor[run.shards] / (run.shards / base.shards),
        ]),
      );
      const verdictAt = (verdict) => runs.filter((r) => r.verdicts[key]?.verdict === verdict).map((r) => r.shards);
      return [key, { rowsRead, factor, perShard, flatAt: verdictAt("flat"), scalesAt: verdictAt("scales") }];
    }),
  );
}

/**
 * `persistTo` is a freshly migrated `--persist-to` directory of the router's own, whose wrangler config `config`
 * binds every database of `storage` (the largest shard count's `storage.shards`); it is left as it is: each shard
 * count runs on a copy of it, seeded here and deleted once measured. `start(persistTo, storage)` starts the router
 * on it with that `storage` in its config (no queue consumer, USAGE_LOG on) and returns { child, url }. `sizes`:
 * [small, large]; `shardCounts`: how many of `storage.shards` each run uses, e.g. [1, 2, 4].
 */
export async function measureDashboard({
  persistTo,
  config,
  storage,
  shardCounts = [1],
  sizes,
  start,
  secrets,
  log = () => undefined,
}) {
  const [small, large] = sizes;
  const schema = schemaOf(persistTo);
  const anchor = Date.now();
  const realEvents = 4;
  // Generated once for every shard count: the recent stretch (the small size), then ten times the history at the
  // same rate, older events before it (what the large size adds).
  const batches = [
    generateBatch({
      count: small - realEvents,
      from: anchor - RECENT_DAYS * DAY,
      to: anchor,
      now: anchor,
      seed: 1,
      prefix: "9",
      schema,
    }),
    generateBatch({
      count: large - small,
      from: anchor - ((RECENT_DAYS * large) / small) * DAY,
      to: anchor - RECENT_DAYS * DAY,
      now: anchor,
      seed: 2,
      prefix: "8",
      schema,
    }),
  ];
  const generateSeconds = batches.reduce((n, b) => n + b.stats.generateSeconds, 0);
  log(
    `dashboard: generated ${batches.map((b) => b.stats.events).join(" + ")} events in ${generateSeconds.toFixed(1)} s`,
  );
  const sampleOrder = batches[0].sampleOrder;
  const runs = [];
  for (const shards of shardCounts) {
    const started = performance.now();
    const used = { ...storage, shards: storage.shards.slice(0, shards) };
    if (used.shards.length !== shards) throw new Error(`${shards} shards asked for, ${storage.shards.length} bound`);
    const state = `${persistTo}-${shards}-shards`;
    cpSync(persistTo, state, { recursive: true });
    try {
      const files = shardDatabases(state, config, used);
      const writes = [];
      const results = [];
      let context = null;
      for (const [i, size] of sizes.entries()) {
        const written = insertBatch(files, batches[i]);
        writes.push({ events: batches[i].stats.events, ...written });
        log(
          `dashboard, ${shards} shard${shards === 1 ? "" : "s"}: wrote ${batches[i].stats.events} events in ${written.seconds.toFixed(1)} s (${written.perShard.join(" + ")})`,
        );
        const router = await start(state, used);
        try {
          if (i === 0) {
            const real = await ingestReal(router, secrets);
            context = { anchor, sampleOrder, merchant: WEEDMAPS_MERCHANTS[0], eventId: real[0].eventId, real };
          }
          // The Cron fills whatever the pages read from it (the overview's rollups, once they exist).
          const cron = await cronBeforeViews(router, schema);
          const cookie = await signIn(router, secrets.ADMIN_TOKEN);
          const perShard = files.map((file) => eventCount(state, [file]));
          const stored = perShard.reduce((a, b) => a + b, 0);
          log(
            `dashboard, ${shards} shard${shards === 1 ? "" : "s"}: ${stored} events stored, measuring ${viewList(context).length} views`,
          );
          const views = await measureViews(router, cookie, context);
          results.push({
            size,
            eventsStored: stored,
            eventsPerShard: perShard,
            // What bounds the dead-letter reads of each shard (its pages and the overview's count stop at a limit).
            deadEventsPerShard: schema.deadDeliveriesColumn
              ? files.map((file) => eventCount(state, [file], "dead_deliveries > 0"))
              : null,
            cronBeforeViews: cron,
            views,
          });
        } finally {
          await stop(router.child);
        }
      }
      runs.push({
        shards,
        storage: used,
        sizes: results,
        verdicts: dashboardVerdicts(results),
        eventsStoredAtEnd: eventCount(state, files),
        realEvents: context.real,
        writes,
        seconds: (performance.now() - started) / 1000,
      });
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  }
  return {
    title: "Dashboard page views: D1 rows read against events stored, by shard count",
    shardCounts,
    runs,
    shardGrowth: shardGrowth(runs),
    flatRows: DASHBOARD_FLAT_ROWS,
    scanRowsPerRowShown: SCAN_ROWS_PER_ROW_SHOWN,
    repeats: REPEATS,
    recentDays: RECENT_DAYS,
    days: [RECENT_DAYS, (RECENT_DAYS * large) / small],
    schema,
    seeding: {
      generateSeconds,
      batches: batches.map((b) => b.stats),
      // Written again for every shard count (the ids name the shard): the time of each count's two batches.
      writeSeconds: runs.map((r) => ({ shards: r.shards, seconds: r.writes.reduce((n, w) => n + w.seconds, 0) })),
    },
    filters: { orderId: sampleOrder.orderId, merchant: WEEDMAPS_MERCHANTS[0] },
  };
}
