import { applyD1Migrations, createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import { parseConfig } from "../src/core/config/parse.ts";
import { DeliveryStatesSchema, plannedDeliveries } from "../src/core/delivery-state.ts";
import { EVENT_ID_PATTERN, shardOfEventId } from "../src/core/event-id.ts";
import { weedmaps } from "../src/core/providers/weedmaps.ts";
import { sha256Hex } from "../src/core/signatures/inbound.ts";
import { insertEvents, loadDeliveryWork } from "../src/storage/events.ts";
import { forgetShardMaps } from "../src/storage/shard-maps.ts";
import { captureDeliveryQueue, fixture, ROUTER, testProtection, weedmapsSignature } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

/** The empty database the history is replayed on; only the 0002 test uses it, so it needs no other test first. */
const db = () => env.MIGRATION_DB;
const before = (prefix: string) => env.TEST_MIGRATIONS.filter((m) => m.name < prefix);

it("0002 moves each event's delivery rows into its row, keeps replay history, and hands stranded sends to the outbox", async () => {
  await applyD1Migrations(db(), before("0002_"));
  expect(await db().prepare("SELECT name FROM sqlite_schema WHERE name = 'deliveries'").first("name")).toBe(
    "deliveries",
  );
  const now = Date.now();
  const event = (id: string) =>
    db()
      .prepare(
        `INSERT INTO events (id, idempotency_key, ingest_id, source, event_type, routing, content_type, body, body_sha256, received_at)
         VALUES (?1, 'k', 'i', 'lab', 'single', 'routed', 'application/json', '{}', 'h', ?2)`,
      )
      .bind(id, now - 3_600_000);
  const delivery = (
    eventId: string,
    destination: string,
    generation: number,
    status: string,
    attempts: number,
    nextAttemptAt: number,
    log = "[]",
  ) =>
    db()
      .prepare(
        `INSERT INTO deliveries (event_id, destination, generation, route, status, attempts, created_at, next_attempt_at, last_error, completed_at, attempt_log)
         VALUES (?1, ?2, ?3, 'r', ?4, ?5, ?6, ?7, ?8, ?9, ?10)`,
      )
      .bind(
        eventId,
        destination,
        generation,
        status,
        attempts,
        now - 3_600_000,
        nextAttemptAt,
        status === "dead" ? "http_410 (permanent)" : null,
        status === "pending" ? null : now - 3_000_000,
        log,
      );
  const replayed = `evt_${"a".repeat(32)}`;
  const stranded = `evt_${"b".repeat(32)}`;
  const inFlight = `evt_${"c".repeat(32)}`;
  const unrouted = `evt_${"d".repeat(32)}`;
  const attempt = JSON.stringify([
    { attempt: 1, at: now - 3_000_000, statusCode: 410, latencyMs: 4, errorClass: "http_410", responseExcerpt: "gone" },
  ]);
  await db().batch([
    event(replayed),
    delivery(replayed, "pos", 1, "dead", 1, now - 3_000_000, attempt),
    delivery(replayed, "pos", 2, "delivered", 1, now - 1_000_000),
    delivery(replayed, "erp", 1, "delivered", 1, now - 3_000_000),
    // Pending for an hour with no attempt: its queue send failed, and the old sweeper would have re-sent it.
    event(stranded),
    delivery(stranded, "pos", 1, "pending", 0, now - 3_600_000),
    delivery(stranded, "erp", 1, "pending", 0, now - 3_600_000),
    // Due a minute ago: its message is still on its way, so it must not be sent twice.
    event(inFlight),
    delivery(inFlight, "pos", 1, "pending", 2, now - 60_000),
    event(unrouted),
  ]);

  await applyD1Migrations(db(), env.TEST_MIGRATIONS);
  // Rows from before 0006 are unencrypted (no data key): a router with a key ring still reads them.
  const legacy = await testProtection();

  // What 0002 wrote must be the delivery JSON the code reads: the strict schema in src/core/delivery-state.ts owns
  // its keys, so renaming a field there without a migration fails here.
  const written = await db().prepare("SELECT deliveries FROM events").all<{ deliveries: string }>();
  for (const { deliveries } of written.results)
    expect(DeliveryStatesSchema.safeParse(JSON.parse(deliveries)).error).toBeUndefined();

  const work = await loadDeliveryWork(db(), legacy, replayed);
  expect(work!.snapshot.version).toBe(0);
  expect(
    work!.snapshot.deliveries.map((d) => [d.destination, d.generation, d.status, d.superseded, d.log.length]),
  ).toEqual([
    ["erp", 1, "delivered", false, 0],
    ["pos", 1, "dead", true, 1],
    ["pos", 2, "delivered", false, 0],
  ]);
  expect(work!.snapshot.deliveries[1]).toMatchObject({ lastError: "http_410 (permanent)", log: JSON.parse(attempt) });
  expect((await loadDeliveryWork(db(), legacy, unrouted))!.snapshot.deliveries).toEqual([]);
  const due = await db()
    .prepare("SELECT id, pending_due FROM events ORDER BY id")
    .all<{ id: string; pending_due: number | null }>();
  expect(due.results.map((r) => [r.id, r.pending_due])).toEqual([
    [replayed, null],
    [stranded, now - 3_600_000],
    [inFlight, now - 60_000],
    [unrouted, null],
  ]);
  expect((await loadDeliveryWork(db(), legacy, inFlight))!.snapshot.deliveries[0]).toMatchObject({
    status: "pending",
    attempts: 2,
  });

  const { results } = await db()
    .prepare("SELECT message, due_at FROM outbox")
    .all<{ message: string; due_at: number }>();
  expect(results.map((r) => JSON.parse(r.message))).toEqual([
    {
      v: 1,
      eventId: stranded,
      deliveries: expect.arrayContaining([
        { destination: "pos", generation: 1 },
        { destination: "erp", generation: 1 },
      ]),
    },
  ]);
  expect(await db().prepare("SELECT name FROM sqlite_schema WHERE name = 'deliveries'").first()).toBeNull();
});

it("0008 counts each event's current dead deliveries, so the dead-letter index holds exactly the events with one", async () => {
  // On the main database, which the setup file migrated: 0008's backfill runs again over rows written as before it
  // (their count left at its default). This file's tests share that database, so only these rows are checked.
  const backfill = env.TEST_MIGRATIONS.find((m) => m.name.startsWith("0008_"))!.queries.filter((q) =>
    /^\s*UPDATE events SET dead_deliveries/.test(q),
  );
  expect(backfill).toHaveLength(1);
  const state = (destination: string, status: string, superseded: boolean, generation = 1) => ({
    destination,
    generation,
    route: "r",
    status,
    attempts: 1,
    createdAt: 1,
    nextAttemptAt: 1,
    lastStatusCode: null,
    lastError: null,
    completedAt: 1,
    superseded,
    log: [],
  });
  const rows: [string, unknown[]][] = [
    [`evt_${"1".repeat(32)}`, [state("pos", "dead", false), state("erp", "dead", false)]],
    // Dead once, redriven and delivered: no longer a dead letter.
    [`evt_${"2".repeat(32)}`, [state("pos", "dead", true), state("pos", "delivered", false, 2)]],
    [`evt_${"3".repeat(32)}`, [state("pos", "delivered", false)]],
  ];
  await env.DB.batch(
    rows.map(([id, deliveries], i) =>
      env.DB.prepare(
        `INSERT INTO events (id, idempotency_key, ingest_id, source, event_type, routing, content_type, body, body_sha256, received_at, deliveries)
           VALUES (?1, ?1, 'i', 'lab', 'single', 'routed', 'application/json', '{}', 'h', ?2, ?3)`,
      ).bind(id, 1_000 + i, JSON.stringify(deliveries)),
    ),
  );
  await env.DB.prepare(backfill[0]!).run();
  const counted = await env.DB.prepare(
    `SELECT id, dead_deliveries FROM events WHERE id IN (${rows.map((r) => `'${r[0]}'`).join(",")}) ORDER BY id`,
  ).all<{ id: string; dead_deliveries: number }>();
  expect(counted.results.map((r) => r.dead_deliveries)).toEqual([2, 0, 0]);
  const indexes = await env.DB.prepare(
    "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events' ORDER BY name",
  ).all<{ name: string }>();
  expect(indexes.results.map((r) => r.name)).toEqual(
    expect.arrayContaining(["events_dead", "events_provider_id_earlier", "events_received_at"]),
  );
});

it("upgrades a single-database deployment in place: events stored before 0012 stay readable, replayable, found by order, deduplicated and purgeable", async () => {
  // Today's schema (through 0011) on an empty database, with events as the code before 0012 stored them: ids
  // `evt_` + the first 32 hex of SHA-256 of the idempotency key, encrypted with the ring, delivered.
  const db = env.UPGRADE_DB;
  await applyD1Migrations(db, before("0012_"));
  expect(await db.prepare("SELECT name FROM sqlite_schema WHERE name = 'shard_maps'").first()).toBeNull();
  const storage = { shards: [{ id: 0, binding: "DB" }], retryWindowHours: 48 };
  const raw = { ...JSON.parse(env.ROUTER_CONFIG as string), storage };
  const parsed = parseConfig(raw);
  if (!parsed.ok) throw new Error(parsed.errors.join("; "));
  const protection = await testProtection();
  const now = Date.now();
  const legacy: Record<string, string> = {};
  for (const [name, route, destinations] of [
    ["weedmaps/create", "wm-create", ["erp", "pos"]],
    ["weedmaps/canceled-customer", "wm-cancel-to-erp", ["erp"]],
  ] as const) {
    const text = fixture(name).body;
    const bytes = new TextEncoder().encode(text);
    const bodySha256 = await sha256Hex(bytes);
    const identified = weedmaps.identify({
      sourceName: "weedmaps",
      source: parsed.config.sources.weedmaps!,
      pathEvent: undefined,
      payload: JSON.parse(text),
      bodySha256,
      text,
    });
    if (!identified.ok) throw new Error(identified.detail);
    const [identity] = identified.events;
    const id = `evt_${(await sha256Hex(identity!.idempotencyKey)).slice(0, 32)}`;
    const at = now - 3_600_000;
    const delivered = plannedDeliveries(
      destinations.map((destination) => ({ destination, route })),
      at,
    ).map((d) => ({ ...d, status: "delivered" as const, attempts: 1, lastStatusCode: 200, completedAt: at + 500 }));
    const [stored] = await insertEvents(db, protection, [
      {
        event: {
          id,
          idempotencyKey: identity!.idempotencyKey,
          ingestId: crypto.randomUUID(),
          source: "weedmaps",
          eventType: identity!.eventType,
          merchantId: "4242",
          providerId: identity!.providerId,
          contentType: "application/json",
          body: bytes.buffer as ArrayBuffer,
          bodySha256,
          receivedAt: at,
          providerTimestamp: identity!.providerTimestamp,
          quarantine: null,
        },
        deliveries: delivered,
      },
    ]);
    expect(stored).toEqual({ outcome: "inserted", storedId: id });
    legacy[name] = id;
  }
  const ids = Object.values(legacy);
  for (const id of ids) {
    expect(id).toMatch(/^evt_[0-9a-f]{32}$/);
    expect(EVENT_ID_PATTERN.test(id)).toBe(true);
    expect(shardOfEventId(id)).toBe(0);
  }

  // The upgrade: 0012 onwards on the same database, in place. It becomes the control database and shard 0.
  await applyD1Migrations(db, env.TEST_MIGRATIONS);
  expect(await db.prepare("SELECT version, writable FROM shard_maps").all()).toMatchObject({
    results: [{ version: 1, writable: "[0]" }],
  });
  expect(
    (await db.prepare("SELECT id FROM events ORDER BY id").all<{ id: string }>()).results.map((r) => r.id),
  ).toEqual([...ids].sort());

  // The router on it, as the deployment's one database (`DB`, shard 0).
  forgetShardMaps();
  const worker = createWorker();
  const bindings = { ...env, DB: db, ROUTER_CONFIG: JSON.stringify(raw) } as Env;
  const call = async (request: Request) => {
    const ctx = createExecutionContext();
    const res = await worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, bindings, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  };
  const admin = (method: string, path: string, body?: unknown) =>
    call(
      new Request(`${ROUTER}/admin${path}`, {
        method,
        headers: { Authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
  const create = legacy["weedmaps/create"]!;
  const canceled = legacy["weedmaps/canceled-customer"]!;

  // Readable by id: the row, its deliveries and its payload (opened with the ring, redacted).
  const shown = await admin("GET", `/events/${create}`);
  expect(shown.status).toBe(200);
  const view = await shown.json<{ event: { id: string; payload: { data: string } }; deliveries: unknown[] }>();
  expect(view.event.id).toBe(create);
  expect(JSON.parse(view.event.payload.data)).toMatchObject({ orderId: "9763822", customer: "[redacted]" });
  expect(view.deliveries).toHaveLength(2);

  // A provider's retry within the retry window is a duplicate of the stored row, answered with its earlier id.
  const retryBody = fixture("weedmaps/canceled-customer").body;
  const retry = await call(
    new Request(`${ROUTER}/webhooks/weedmaps?merchant_id=4242`, {
      method: "POST",
      body: retryBody,
      headers: { "content-type": "application/json", Signature: await weedmapsSignature(retryBody) },
    }),
  );
  expect(retry.status).toBe(200);
  expect(await retry.json()).toMatchObject({ duplicate: true, eventId: canceled });
  expect(await db.prepare("SELECT COUNT(*) AS n FROM events").first("n")).toBe(2);

  // Replayable: a new generation for each destination, and a queue message that names the earlier id.
  const queue = captureDeliveryQueue();
  const replay = await admin("POST", `/events/${create}/replay`, {});
  expect(replay.status).toBe(202);
  expect(queue.messages.map((m) => m.body)).toContainEqual(
    expect.objectContaining({
      eventId: create,
      deliveries: expect.arrayContaining([
        { destination: "erp", generation: 2 },
        { destination: "pos", generation: 2 },
      ]),
    }),
  );
  const work = await loadDeliveryWork(db, protection, create);
  expect(work!.snapshot.deliveries.filter((d) => d.generation === 2).map((d) => d.status)).toEqual([
    "pending",
    "pending",
  ]);

  // Found by its order (through the partial provider-id index that holds only ids of the earlier form) and purged.
  const listed = await (await admin("GET", "/events?orderId=9763822")).json<{ events: { id: string }[] }>();
  expect(listed.events.map((e) => e.id).sort()).toEqual([...ids].sort());
  const purge = await admin("POST", "/customer-data/purge", { providerOrderId: "9763822", reason: "upgrade test" });
  expect(purge.status).toBe(200);
  expect(((await purge.json<{ purged: string[] }>()).purged as string[]).sort()).toEqual([...ids].sort());
  const left = await db
    .prepare("SELECT COUNT(*) AS n FROM events WHERE payload_purged_at IS NULL OR body <> ''")
    .first<number>("n");
  expect(left).toBe(0);
  forgetShardMaps();
});
