#!/usr/bin/env node
// `npm run soak [-- --events N --seed S]`: a fault soak against the real router (`wrangler dev`: workerd with local
// D1 and Queues) that proves nothing accepted is lost. Destinations fail on a seeded schedule (soak/receiver.mjs),
// D1 and queue sends fail inside the Worker (soak/worker.ts wraps the bindings), and the router's process group is
// killed with SIGKILL mid-run and restarted on the same persisted state: its in-memory local queue is gone, so what
// it held must come back through the outbox and the sweeper's walk (driven here through /__scheduled). At the end
// every accepted event's every planned delivery must be terminal and accounted for, in D1 and in the receivers' own
// logs. Writes soak/results.json (soak/results.smoke.json with --smoke) and stops everything it started.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { eventBuilder } from "../scripts/events.mjs";
import { localSecrets, parseArgs, ROOT } from "../scripts/local-env.mjs";
import { migratedState } from "../scripts/migrate.mjs";
import { freePort, sleep, start, stopAll, tail, waitFor } from "../scripts/procs.mjs";
import { createProgress } from "../scripts/progress.mjs";

const options = parseArgs(process.argv.slice(2), {
  events: "number",
  seed: "number",
  smoke: "boolean",
  concurrency: "number",
});
const SMOKE = options.smoke === true;
const EVENTS = options.events ?? (SMOKE ? 300 : 10_000);
const SEED = options.seed ?? 42;
const CONCURRENCY = options.concurrency ?? 8;
const DOWN_MS = Number(process.env.SOAK_DOWN_MS) || (SMOKE ? 8_000 : 60_000);
const KILL_AT = 0.4;
const SETTLE_TIMEOUT_MS = SMOKE ? 180_000 : 2_400_000;
const WRANGLER = path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
const T0 = Date.now();
const log = (message) => console.log(`[soak ${((Date.now() - T0) / 1000).toFixed(1)}s] ${message}`);
// "Step n of N" with an estimate (scripts/progress.mjs). Weights are about the seconds each step takes: the sends
// about 0.1 s an event at 8 at a time with faults, the settle the retry tail (the full run took 1,630 s in all).
const progress = createProgress([
  { name: "start", weight: 15 },
  { name: "send", weight: EVENTS * 0.1 },
  { name: "settle", weight: 15 + EVENTS * 0.06 },
  { name: "account", weight: 2 + EVENTS / 2_000 },
]);
const logStep = (step, message) => log(`${message} (${progress.step(step)})`);

let seed = SEED;
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};

/** Three internal systems, one down for a while, and one gone for good; product issues also go to the gone one. */
function soakConfig(receiverPort) {
  // The smoke run keeps CI short: fewer attempts at a 1 s backoff base (1, 2, 4, 8, 16 s); the full run has 8.
  // The circuit breaker is on, tuned to the soak: its faults are independent at about 32% (500, 429, no answer,
  // resets), so 5 in a row (the default) would open every circuit during a burst and keep probes failing one time
  // in three; 10 in a row is an outage like `down`'s. Short cool-downs keep the settle inside CI's time.
  const destination = (name) => ({
    url: `http://127.0.0.1:${receiverPort}/d/${name}`,
    timeoutMs: 1_000,
    maxAttempts: SMOKE ? 6 : 8,
    signingSecret: "POS_SIGNING_SECRET",
    circuit: { consecutiveFailures: 10, minAttempts: 50, failureRate: 0.8, coolDownSeconds: 5, maxCoolDownSeconds: 20 },
  });
  return {
    sources: {
      weedmaps: { provider: "weedmaps", verify: { type: "hmac", secrets: ["WEEDMAPS_CLIENT_SECRET"] } },
      leaftrade: {
        provider: "leaftrade",
        verify: { type: "hmac", secrets: ["LEAFTRADE_WEBHOOK_SECRET"], header: "X-Signature", encoding: "hex" },
      },
    },
    // `gone` answers 410 to everything: here a permanent failure of each delivery (dead), so that path is soaked too.
    // With the default (`disableOnGone`), the first 410 would disable it and hold the rest (test/controls.test.ts).
    destinations: {
      pos: destination("pos"),
      erp: destination("erp"),
      down: destination("down"),
      gone: { ...destination("gone"), disableOnGone: false },
    },
    routes: [
      { name: "orders", source: "weedmaps", events: ["create"], destinations: ["pos", "erp", "down"] },
      {
        name: "lt-orders",
        source: "leaftrade",
        events: ["order-v4", "order-v3"],
        destinations: ["pos", "erp", "down"],
      },
      { name: "lt-issues", source: "leaftrade", events: ["product-issue"], destinations: ["erp", "down", "gone"] },
    ],
  };
}

/** wrangler.toml with the soak's Worker as main and the soak's settings as vars; everything else as the repo has it. */
/** Soak-only D1 bindings beyond the repo's: the soak runs on more shards than `npm run dev` does. */
const EXTRA_SHARDS = SMOKE ? [] : ["SHARD_2", "SHARD_3"];

/**
 * The shard maps the soak moves through (storage.shards): the full run starts on 3 shards, adds a 4th at 50 % of the
 * sends and makes shard 1 read-only at 70 %; the smoke run starts on one and adds the second at 50 %. Each change
 * is a config change and a restart, as a deploy is, on top of the kill.
 */
const SHARD_PHASES = SMOKE
  ? [
      { at: 0, shards: [{ id: 0, binding: "DB" }] },
      {
        at: 0.5,
        shards: [
          { id: 0, binding: "DB" },
          { id: 1, binding: "SHARD_1" },
        ],
      },
    ]
  : [
      { at: 0, shards: [0, 1, 2].map((id) => ({ id, binding: id === 0 ? "DB" : `SHARD_${id}` })) },
      { at: 0.5, shards: [0, 1, 2, 3].map((id) => ({ id, binding: id === 0 ? "DB" : `SHARD_${id}` })) },
      {
        at: 0.7,
        shards: [0, 1, 2, 3].map((id) => ({ id, binding: id === 0 ? "DB" : `SHARD_${id}`, readOnly: id === 1 })),
      },
    ];

function soakWranglerConfig(workDir, vars, name = "wrangler.soak.toml") {
  const tables = [];
  for (const line of readFileSync(path.join(ROOT, "wrangler.toml"), "utf8").split("\n")) {
    if (/^\s*\[/.test(line) || tables.length === 0) tables.push({ header: line.trim(), lines: [] });
    tables.at(-1).lines.push(line);
  }
  const text = tables
    .filter((t) => t.header !== "[vars]")
    .flatMap((t) => t.lines)
    .join("\n")
    .replace(/^main\s*=.*$/m, `main = ${JSON.stringify(path.join(ROOT, "soak/worker.ts"))}`)
    // Every D1 binding's (each shard has one), or a shard's migrations would be looked for under the temp dir.
    .replace(/^migrations_dir\s*=.*$/gm, `migrations_dir = ${JSON.stringify(path.join(ROOT, "migrations"))}`)
    // Larger consumer batches than production's 10, so 10,000 events drain on two local cores in minutes; the
    // consumer's code and every other setting are the repo's.
    .replace(/^max_batch_size = 10$/m, "max_batch_size = 50");
  const shards = EXTRA_SHARDS.map(
    (binding, i) =>
      `\n[[d1_databases]]\nbinding = "${binding}"\ndatabase_name = "soak-${binding.toLowerCase()}"\ndatabase_id = "00000000-0000-0000-0000-00000000000${i + 2}"\nmigrations_dir = ${JSON.stringify(path.join(ROOT, "migrations"))}\n`,
  );
  const file = path.join(workDir, name);
  writeFileSync(
    file,
    `${text}\n${shards.join("")}\n[vars]\n${Object.entries(vars)
      .map(([k, v]) => `${k} = ${JSON.stringify(String(v))}`)
      .join("\n")}\n`,
  );
  return file;
}

/** The example secrets, with the soak's backoff base (a .dev.vars value overrides wrangler.toml's vars). */
function soakEnvFile(workDir) {
  const file = path.join(workDir, "soak.dev.vars");
  const lines = readFileSync(path.join(ROOT, ".dev.vars.example"), "utf8")
    .split("\n")
    .filter((l) => !l.startsWith("RETRY_BACKOFF_BASE_SECONDS="));
  writeFileSync(file, `${lines.join("\n")}\nRETRY_BACKOFF_BASE_SECONDS=1\n`);
  return file;
}

async function startRouter(config, envFile, persistTo, port) {
  const child = start(
    "router",
    [
      WRANGLER,
      "dev",
      "--config",
      config,
      "--persist-to",
      persistTo,
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(await freePort()),
      "--test-scheduled",
      "--env-file",
      envFile,
      "--show-interactive-dev-session=false",
    ],
    { cwd: ROOT, env: { CI: "true" } },
  );
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`the router exited:\n${tail(child)}`);
      return (await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) })).ok;
    },
    "the router",
    120_000,
  ).catch((err) => {
    throw new Error(`${err.message}\n${tail(child)}`);
  });
  return child;
}

const percentile = (values, p) => {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
};

const describePhase = (p) => p.shards.map((s) => `${s.id}${s.readOnly ? " (read-only)" : ""}`).join(", ");

/** Events stored in each shard's local database file, read after the run (node:sqlite). */
function eventsPerShard(persistTo) {
  const dir = path.join(persistTo, "v3", "d1", "miniflare-D1DatabaseObject");
  const counts = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite")) {
    const db = new DatabaseSync(path.join(dir, file));
    try {
      const has = db.prepare("SELECT COUNT(*) AS n FROM sqlite_schema WHERE name = 'events'").get().n === 1;
      if (!has) continue;
      const byShard = db
        .prepare(
          "SELECT CASE WHEN length(id) = 36 THEN 0 ELSE CAST(substr(id, 5, instr(substr(id, 5), '_') - 1) AS INTEGER) END AS shard, COUNT(*) AS n FROM events GROUP BY shard",
        )
        .all();
      for (const r of byShard) counts.push({ shard: r.shard, events: r.n });
    } finally {
      db.close();
    }
  }
  return counts.sort((a, b) => a.shard - b.shard);
}

async function main() {
  const work = mkdtempSync(path.join(tmpdir(), "soak-"));
  const persistTo = path.join(work, "state");
  const receiverLog = path.join(work, "receiver.jsonl");
  const receiverPort = await freePort();
  const routerPort = await freePort();
  const router = `http://127.0.0.1:${routerPort}`;
  const config = soakConfig(receiverPort);
  const { values: secrets } = localSecrets();
  const adminHeaders = { Authorization: `Bearer ${secrets.ADMIN_TOKEN}` };
  const vars = {
    ALLOW_INSECURE_DESTINATIONS: "true",
    LOG_LEVEL: "warn",
    SWEEP_GRACE_SECONDS: 15,
    SOAK_SEED: SEED,
    SOAK_INGEST_D1_FAIL_RATE: 0.03,
    SOAK_CONSUMER_D1_FAIL_RATE: 0.02,
    SOAK_QUEUE_FAIL_RATE: 0.03,
  };
  const phaseTomls = SHARD_PHASES.map((phase, i) =>
    soakWranglerConfig(
      work,
      { ...vars, ROUTER_CONFIG: JSON.stringify({ ...config, storage: { shards: phase.shards } }) },
      `wrangler.soak.${i}.toml`,
    ),
  );
  let toml = phaseTomls[0];
  const envFile = soakEnvFile(work);
  let routerChild;
  let cron;
  try {
    logStep("start", `${EVENTS} events, seed ${SEED}, ${SMOKE ? "smoke" : "full"} run`);
    await migratedState(persistTo, { config: toml });
    start(
      "receiver",
      [
        "soak/receiver.mjs",
        "--port",
        String(receiverPort),
        "--log",
        receiverLog,
        "--seed",
        String(SEED),
        "--down-ms",
        String(DOWN_MS),
      ],
      { cwd: ROOT },
    );
    await waitFor(async () => (await fetch(`http://127.0.0.1:${receiverPort}/healthz`)).ok, "the receiver");
    routerChild = await startRouter(toml, envFile, persistTo, routerPort);
    log(`router on ${router}, receiver on ${receiverPort}`);
    // The Cron Trigger, as Cloudflare would run it but more often: the outbox and the walk recover what is lost.
    cron = setInterval(() => fetch(`${router}/__scheduled?cron=*/5+*+*+*+*`).catch(() => undefined), 3_000);

    // --- send --------------------------------------------------------------------------------------------------
    const kinds = [
      ["weedmaps.create", 0.4],
      ["leaftrade.order-v4", 0.2],
      ["leaftrade.order-v3", 0.2],
      ["leaftrade.product-issue", 0.2],
    ];
    let counter = SEED * 1_000_000;
    const builders = Object.fromEntries(
      kinds.map(([name]) => [name, eventBuilder(name, config, { random: () => ++counter })]),
    );
    const secretOf = (name) => secrets[name];
    const accepted = new Map(); // eventId -> { ackAt, deliveries, kind }
    let sent = 0;
    let retries = 0;
    let killed = false;
    const killAt = Math.floor(EVENTS * KILL_AT);
    let phase = 0;
    async function sendOne() {
      const roll = random();
      let acc = 0;
      const [kind] =
        kinds.find(([, share]) => {
          acc += share;
          return acc >= roll;
        }) ?? kinds[0];
      const builder = builders[kind];
      const body = builder.body();
      const headers = { "content-type": "application/json", ...builder.headers(body, secretOf) };
      // As a provider does: a 5xx or no answer is sent again, until it is acknowledged.
      let last = "";
      for (const deadline = Date.now() + 180_000; Date.now() < deadline; ) {
        let res;
        try {
          res = await fetch(`${router}${builder.path()}`, {
            method: "POST",
            headers,
            body,
            signal: AbortSignal.timeout(10_000),
          });
        } catch (err) {
          last = err instanceof Error ? err.message : String(err);
        }
        const json = res?.status === 200 ? await res.json().catch(() => null) : null;
        if (json) {
          // A repeat whose first answer was lost (the router killed mid-response) comes back a duplicate: it was
          // accepted all the same, with as many deliveries as its event row plans.
          for (const one of json.events ?? [json]) {
            if (!accepted.has(one.eventId) || !one.duplicate)
              accepted.set(one.eventId, {
                ackAt: Date.now(),
                deliveries: one.duplicate ? undefined : one.deliveries,
                kind,
              });
          }
          return;
        }
        if (res && res.status !== 200) {
          last = `${res.status} ${await res.text().catch(() => "")}`;
          if (res.status < 500) throw new Error(`${kind}: refused: ${last}`);
        }
        retries++;
        await sleep(300);
      }
      throw new Error(`${kind}: not acknowledged within 3 minutes (last: ${last})`);
    }
    logStep("send", `sending ${EVENTS} events, ${CONCURRENCY} at a time`);
    const tenth = Math.max(1, Math.round(EVENTS / 10));
    const workers = Array.from({ length: CONCURRENCY }, async () => {
      while (sent < EVENTS) {
        sent++;
        if (sent % tenth === 0 && sent < EVENTS)
          log(
            progress.within(sent / EVENTS, `${sent.toLocaleString("en-US")} of ${EVENTS.toLocaleString("en-US")} sent`),
          );
        const due = SHARD_PHASES.findLastIndex((p) => sent >= Math.floor(EVENTS * p.at));
        if (due > phase) {
          phase = due;
          toml = phaseTomls[phase];
          log(`shard map change after ${sent} sends: ${describePhase(SHARD_PHASES[phase])}; restarting the router`);
          process.kill(-routerChild.pid, "SIGTERM");
          await routerChild.exited;
          routerChild = await startRouter(toml, envFile, persistTo, routerPort);
          log("router back on the new shard map");
        }
        if (!killed && sent >= killAt) {
          killed = true;
          log(`SIGKILL to the router's process group after ${sent} sends; restarting on the same state`);
          process.kill(-routerChild.pid, "SIGKILL");
          await routerChild.exited;
          routerChild = await startRouter(toml, envFile, persistTo, routerPort);
          log("router back");
        }
        await sendOne();
      }
    });
    await Promise.all(workers);
    logStep(
      "settle",
      `sent ${EVENTS}: ${accepted.size} events accepted, ${retries} sends repeated after a 5xx or no answer; waiting for every delivery to be terminal`,
    );

    // --- settle ------------------------------------------------------------------------------------------------
    const health = async () =>
      (await (await fetch(`${router}/admin/destinations/health?windowHours=24`, { headers: adminHeaders })).json())
        .destinations;
    let lastReport = 0;
    let firstOpen;
    await waitFor(
      async () => {
        const rows = await health();
        const open = rows.reduce((n, d) => n + d.pending + d.failing, 0);
        firstOpen ??= open;
        if (Date.now() - lastReport > 10_000) {
          lastReport = Date.now();
          log(
            `waiting: ${rows.map((d) => `${d.name} ${d.delivered} delivered, ${d.pending} pending, ${d.failing} failing, ${d.dead} dead`).join("; ")} (${progress.within(firstOpen ? 1 - open / firstOpen : 1, `${open} open`)})`,
          );
        }
        return open === 0;
      },
      "every delivery to be terminal",
      SETTLE_TIMEOUT_MS,
      2_000,
    );
    const settledAt = Date.now();
    logStep("account", "every delivery terminal; accounting for every accepted event");

    // --- account -----------------------------------------------------------------------------------------------
    const stored = new Map();
    for (let cursor = null; ; ) {
      const page = await (
        await fetch(`${router}/admin/events?limit=200${cursor ? `&cursor=${cursor}` : ""}`, { headers: adminHeaders })
      ).json();
      for (const e of page.events) stored.set(e.id, e);
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    const deadReasons = {};
    for (let cursor = null; ; ) {
      const page = await (
        await fetch(`${router}/admin/dead-letters?limit=200${cursor ? `&cursor=${cursor}` : ""}`, {
          headers: adminHeaders,
        })
      ).json();
      for (const d of page.deliveries) {
        const key = `${d.destination}: ${d.lastError}`;
        deadReasons[key] = (deadReasons[key] ?? 0) + 1;
      }
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    const requests = readFileSync(receiverLog, "utf8")
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line));
    const okByEvent = new Map(); // id -> Map(path -> [times])
    for (const r of requests.filter((r) => r.status === 200)) {
      if (!okByEvent.has(r.id)) okByEvent.set(r.id, new Map());
      const paths = okByEvent.get(r.id);
      paths.set(r.path, [...(paths.get(r.path) ?? []), r.t]);
    }
    let lost = 0;
    let recordedDeadButReceived = 0;
    const lostExamples = [];
    const toTerminal = [];
    for (const [eventId, sentEvent] of accepted) {
      const event = stored.get(eventId);
      const received = okByEvent.get(eventId) ?? new Map();
      const c = event?.deliveries;
      const planned = sentEvent.deliveries ?? (c ? c.delivered + c.dead + c.stale + c.pending + c.failing : 0);
      const terminal = c && c.pending === 0 && c.failing === 0 && c.delivered + c.dead + c.stale === planned;
      // Every delivery D1 calls delivered has a 2xx in its receiver's log. The other way round is not a loss: a
      // receiver that answered 2xx to a delivery D1 recorded dead got its copy; the router could not write the
      // success (a consumer D1 fault after the POST), retried, and the retries ran out. That is counted on its own.
      const accounted = terminal && received.size >= c.delivered;
      if (terminal && received.size > c.delivered) recordedDeadButReceived += received.size - c.delivered;
      if (!accounted) {
        lost++;
        if (lostExamples.length < 5)
          lostExamples.push({ eventId, stored: c ?? null, planned, received: [...received.keys()] });
      }
      for (const times of received.values()) toTerminal.push(Math.min(...times) - sentEvent.ackAt);
    }
    let duplicates = 0;
    for (const paths of okByEvent.values()) for (const times of paths.values()) duplicates += times.length - 1;
    const deliveredByReceiver = {};
    for (const paths of okByEvent.values())
      for (const p of paths.keys())
        deliveredByReceiver[p.replace("/d/", "")] = (deliveredByReceiver[p.replace("/d/", "")] ?? 0) + 1;
    const healthRows = await health();
    const perDestination = Object.fromEntries(
      healthRows
        .filter((d) => d.configured)
        .map((d) => [
          d.name,
          { delivered: d.delivered, dead: d.dead, receiverDelivered: deliveredByReceiver[d.name] ?? 0 },
        ]),
    );
    // The admin API's delivered counts equal the receivers', but for the deliveries recorded dead after a success.
    const adminAgrees =
      Object.values(perDestination).reduce((n, d) => n + (d.receiverDelivered - d.delivered), 0) ===
        recordedDeadButReceived && Object.values(perDestination).every((d) => d.receiverDelivered >= d.delivered);
    const plannedDeliveries = [...accepted].reduce((n, [id, e]) => {
      const c = stored.get(id)?.deliveries;
      return n + (e.deliveries ?? (c ? c.delivered + c.dead + c.stale : 0));
    }, 0);
    const faults = {};
    for (const r of requests) faults[String(r.status)] = (faults[String(r.status)] ?? 0) + 1;
    const results = {
      smoke: SMOKE,
      seed: SEED,
      events: EVENTS,
      accepted: accepted.size,
      sendsRepeated: retries,
      killedAndRestarted: killed,
      shardPhases: SHARD_PHASES.map((p) => ({ atShareOfSends: p.at, shards: describePhase(p) })),
      eventsPerShard: eventsPerShard(persistTo),
      plannedDeliveries,
      perDestination,
      // What each destination's circuit did over the run (its last 50 transitions), from the admin API.
      circuitHistory: Object.fromEntries(
        healthRows.filter((d) => d.controls).map((d) => [d.name, d.controls.history.map((h) => h.kind)]),
      ),
      deadReasons,
      lost,
      lostExamples,
      recordedDeadButReceived,
      duplicateDeliveries: duplicates,
      duplicateRate: plannedDeliveries ? Number((duplicates / plannedDeliveries).toFixed(4)) : 0,
      timeToDeliveredMs: { p50: percentile(toTerminal, 50), p99: percentile(toTerminal, 99) },
      receiverAnswers: faults,
      adminTotalsAgreeWithReceivers: adminAgrees,
      settleSeconds: Number(((settledAt - T0) / 1000).toFixed(1)),
      wallTimeS: Number(((Date.now() - T0) / 1000).toFixed(1)),
      date: new Date().toISOString(),
    };
    writeFileSync(
      path.join(ROOT, "soak", SMOKE ? "results.smoke.json" : "results.json"),
      `${JSON.stringify(results, null, 2)}\n`,
    );
    console.log(JSON.stringify(results, null, 2));
    // The map changes took: events were placed in more than one shard.
    const spread = results.eventsPerShard.filter((s) => s.events > 0).length >= 2;
    const ok = lost === 0 && adminAgrees && killed && spread;
    log(
      ok
        ? `lost = 0 across ${accepted.size} events and ${plannedDeliveries} deliveries`
        : `FAILED: lost = ${lost}, admin totals agree: ${adminAgrees}, events in more than one shard: ${spread}`,
    );
    process.exitCode = ok ? 0 : 1;
  } finally {
    clearInterval(cron);
    await stopAll();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch(async (err) => {
  console.error(`[soak] failed: ${err.stack ?? err}`);
  await stopAll();
  process.exit(1);
});
