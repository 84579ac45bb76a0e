import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import { D1_DATABASE_LIMIT_BYTES } from "../src/core/capacity.ts";
import { eventDigests, shardOfEventId } from "../src/core/event-id.ts";
import { shardFor } from "../src/core/shards.ts";
import { sha256Hex } from "../src/core/signatures/inbound.ts";
import { forgetShardMaps } from "../src/storage/shard-maps.ts";
import {
  captureDeliveryQueue,
  gatesOfItsOwn,
  ManualClock,
  refusingEventInserts,
  ROUTER,
  stubDestinations,
} from "./helpers.ts";

// Issue #24, item 3, for every shard (shard 0, `DB`, and shard 1, `SHARD_1`): D1's own size recorded after ingest at
// most once a minute per shard, the same figures in the admin API and on the dashboard, alerts at 70 and 85 %, a
// shard past 90 % made read-only while another has room, and 503 storage_full before anything is accepted when no
// shard has room. Everything goes through the real Worker and D1. The rules themselves are
// test/capacity-rules.test.ts.

afterEach(() => vi.restoreAllMocks());

const HOUR = 3_600_000;
const testConfig = JSON.parse(env.ROUTER_CONFIG as string) as { limits: Record<string, unknown> };

interface CapacityRow {
  shard_id: number;
  binding: string;
  size_bytes: number;
  measured_at: number;
  level: string;
  window_rows_written: number;
  window_events: number;
  version: number;
}

const capacityRow = (shard = 0) =>
  env.DB.prepare("SELECT * FROM shard_capacity WHERE shard_id = ?1").bind(shard).first<CapacityRow>();

const SHARDS = () => [env.DB, env.SHARD_1];

/** D1's size of a shard's database now, from a statement's own meta (what the Worker reads). */
const sizeNow = async (db: D1Database = env.DB) => (await db.prepare("SELECT 1").run()).meta.size_after as number;

/** Events in every shard. */
const eventCount = async () => {
  const counts = await Promise.all(
    SHARDS().map((db) => db.prepare("SELECT COUNT(*) AS n FROM events").first<number>("n")),
  );
  return counts.reduce<number>((sum, n) => sum + (n ?? 0), 0);
};

/**
 * A body of the `lab` source that the map `writable` places in `shard`: its object digest is the identity digest of
 * the generic provider's key (the body's hash), so a few random bodies find one.
 */
async function bodyIn(shard: number, writable: number[] = [0, 1]): Promise<string> {
  for (;;) {
    const body = JSON.stringify({ id: crypto.randomUUID(), kind: "single" });
    const idempotencyKey = `generic:lab:sha256:${await sha256Hex(body)}`;
    const digests = await eventDigests({ source: "lab", providerId: null, idempotencyKey });
    if (shardFor(digests.object, { writable }) === shard) return body;
  }
}

/** The test config with `limits.capacity` set (and `storage`, if given), as a deployment would bind it. */
const configured = (capacity: Record<string, number> = {}, storage?: Record<string, unknown>) =>
  JSON.stringify({ ...testConfig, limits: { ...testConfig.limits, capacity }, ...(storage ? { storage } : {}) });

// Every test moves on from where the last one's clock stopped (whatever order they run in), and starts with no
// record of any shard and every shard writable: the file's tests share its D1 databases.
let start = Date.now();
let clock: ManualClock;
let worker: ReturnType<typeof createWorker>;
let bindings: Env;
beforeEach(async () => {
  start += 30 * 24 * HOUR;
  clock = new ManualClock(start);
  worker = createWorker({ clock });
  bindings = { ...env, DESTINATION_GATE: gatesOfItsOwn() };
  await env.DB.batch([env.DB.prepare("DELETE FROM shard_capacity"), env.DB.prepare("DELETE FROM read_only_shards")]);
  forgetShardMaps();
});

// A few megabytes of ballast in each shard, so an event's few pages move the share by well under a percent and a
// test can put a database between two lines by choosing the limit.
beforeAll(async () => {
  // Four in shard 0, three in shard 1: their sizes differ, so a record shows whose it is.
  for (const [db, megabytes] of [
    [env.DB, 4],
    [env.SHARD_1, 3],
  ] as const) {
    await db.exec("CREATE TABLE capacity_ballast (b BLOB)");
    for (let i = 0; i < megabytes; i++)
      await db.prepare("INSERT INTO capacity_ballast VALUES (zeroblob(1000000))").run();
  }
});

async function call(request: Request, overrides: Record<string, unknown> = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    request as Request<unknown, IncomingRequestCfProperties>,
    { ...bindings, ...overrides } as Env,
    ctx,
  );
  // The record and the alerts run after the answer: wait for them, as the runtime would.
  await waitOnExecutionContext(ctx);
  return res;
}

/** One new event, placed in `shard` (by the map that takes both shards, unless `writable` says otherwise). */
const ingest = async (shard: number, config?: string, overrides: Record<string, unknown> = {}, writable?: number[]) =>
  call(
    new Request(`${ROUTER}/webhooks/lab/single`, {
      method: "POST",
      body: await bodyIn(shard, writable),
      headers: { "content-type": "application/json" },
    }),
    config ? { ROUTER_CONFIG: config, ...overrides } : overrides,
  );

const alertsIn = (queue: ReturnType<typeof captureDeliveryQueue>) =>
  queue.messages.flatMap((m) => {
    const body = m.body as unknown as { kind?: string; alert?: Record<string, unknown> };
    return body.kind === "alert" && body.alert ? [body.alert] : [];
  });

describe("recording D1's size", () => {
  it("records shard 0's size after an ingest, then at most once a minute per isolate, with its rows and events", async () => {
    const before = await sizeNow();
    expect(before).toBeGreaterThan(0);
    expect((await ingest(0)).status).toBe(200);
    const first = await capacityRow();
    expect(first).toMatchObject({ shard_id: 0, binding: "DB", measured_at: start, level: "ok", version: 1 });
    expect(first!.size_bytes).toBeGreaterThanOrEqual(before);
    expect(first!.size_bytes).toBeLessThanOrEqual(await sizeNow());
    expect(first!.window_events).toBe(1);
    expect(first!.window_rows_written).toBeGreaterThanOrEqual(1);

    // Within the minute: counted in memory, not written.
    clock.advance(30_000);
    expect((await ingest(0)).status).toBe(200);
    clock.advance(29_000);
    expect((await ingest(0)).status).toBe(200);
    expect(await capacityRow()).toEqual(first);

    // The minute is up: one write, carrying what the isolate counted since.
    clock.advance(2_000);
    expect((await ingest(0)).status).toBe(200);
    const second = await capacityRow();
    expect(second).toMatchObject({ measured_at: start + 61_000, version: 2, window_events: 4 });
    const rowsPerEvent = second!.window_rows_written / second!.window_events;
    expect(rowsPerEvent).toBeGreaterThanOrEqual(1);
    expect(rowsPerEvent).toBeLessThan(10);
  });

  it("logs each record's own usage line when USAGE_LOG is on: it runs after the request's line, and is billed too", async () => {
    const log = vi.spyOn(console, "log");
    expect((await ingest(0, undefined, { USAGE_LOG: "true" })).status).toBe(200);
    const lines = log.mock.calls
      .map((call) => String(call[0]))
      .filter((text) => text.includes('"event":"usage"'))
      .map((text) => JSON.parse(text) as Record<string, unknown>);
    const records = lines.filter((line) => line.handler === "capacity");
    // Shard 0 took the event; shard 1 was read for the shard map (or not at all): one record each it saw.
    expect(records.map((line) => line.shardId)).toContain(0);
    const own = records.find((line) => line.shardId === 0)!;
    // The record reads the shards' rows and the read-only list, and writes its shard's row.
    expect(own.d1RowsWritten).toBeGreaterThanOrEqual(1);
    expect(own.d1Queries).toBeGreaterThanOrEqual(3);
    // The request's own line was written before the record ran, so the record is not in it.
    expect(lines.findIndex((line) => line.handler === "fetch")).toBeLessThan(lines.indexOf(own));
  });

  it("records every shard it sees: an event stored in shard 1 records SHARD_1's own size, beside shard 0's", async () => {
    expect((await ingest(1)).status).toBe(200);
    const one = await capacityRow(1);
    expect(one).toMatchObject({ shard_id: 1, binding: "SHARD_1", measured_at: start, level: "ok", window_events: 1 });
    expect(one!.size_bytes).toBeLessThanOrEqual(await sizeNow(env.SHARD_1));
    expect(one!.size_bytes).not.toBe(await sizeNow(env.DB));
    // Shard 0 was read (the shard map) but took no event.
    expect(await capacityRow(0)).toMatchObject({ shard_id: 0, binding: "DB", window_events: 0 });
  });

  it("counts the consumer's writes too: rows written per event covers delivery, not ingest alone", async () => {
    const queue = captureDeliveryQueue();
    stubDestinations(() => new Response("ok"));
    expect((await ingest(0)).status).toBe(200);
    const first = (await capacityRow())!;
    const message = queue.messages.map((m) => m.body).find((b) => "eventId" in b);
    clock.advance(61_000);
    const ctx = createExecutionContext();
    const batch = createMessageBatch("webhook-deliveries", [
      { id: "capacity-msg-1", timestamp: new Date(), attempts: 1, body: message },
    ]);
    await worker.queue(batch, bindings, ctx);
    await waitOnExecutionContext(ctx);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual(["capacity-msg-1"]);
    const second = (await capacityRow())!;
    expect(second).toMatchObject({ version: 2, measured_at: start + 61_000, window_events: 1 });
    expect(second.window_rows_written).toBeGreaterThan(first.window_rows_written);
  });

  it("never fails an ingest when the record cannot be written; it logs the shard and the error code", async () => {
    const errors = vi.spyOn(console, "error");
    await env.DB.exec("ALTER TABLE shard_capacity RENAME TO shard_capacity_offline");
    try {
      expect((await ingest(0)).status).toBe(200);
    } finally {
      await env.DB.exec("ALTER TABLE shard_capacity_offline RENAME TO shard_capacity");
    }
    const line = errors.mock.calls
      .map((c) => String(c[0]))
      .filter((text) => text.includes('"capacity_record_failed"'))
      .map((text) => JSON.parse(text))[0];
    expect(line).toEqual({ level: "error", event: "capacity_record_failed", shardId: 0, errorCode: "SQLITE_ERROR" });
  });
});

describe("GET /admin/capacity and the dashboard's capacity page", () => {
  const admin = (path: string, config?: string) =>
    call(
      new Request(`${ROUTER}/admin${path}`, { headers: { Authorization: `Bearer ${env.ADMIN_TOKEN}` } }),
      config ? { ROUTER_CONFIG: config } : {},
    );

  async function dashboardPage(path: string, config?: string): Promise<string> {
    const overrides = config ? { ROUTER_CONFIG: config } : {};
    const signIn = await call(
      new Request(`${ROUTER}/dashboard/sign-in`, {
        method: "POST",
        body: new URLSearchParams({ token: env.ADMIN_TOKEN as string }).toString(),
        headers: { "content-type": "application/x-www-form-urlencoded", origin: ROUTER },
        redirect: "manual",
      }),
      overrides,
    );
    expect(signIn.status).toBe(303);
    const cookie = signIn.headers.get("set-cookie")!.split(";")[0]!;
    const res = await call(
      new Request(`${ROUTER}/dashboard${path}`, { headers: { cookie }, redirect: "manual" }),
      overrides,
    );
    expect(res.status).toBe(200);
    return (await res.text()).replace(/<[^>]+>/g, " ").replace(/\s+/g, " ");
  }

  it("shows each shard's size, share, rates and days until full, the same in both", async () => {
    expect((await ingest(0)).status).toBe(200);
    expect((await ingest(1)).status).toBe(200);
    clock.advance(2 * HOUR);
    expect((await ingest(0)).status).toBe(200);
    const row = (await capacityRow())!;
    const row1 = (await capacityRow(1))!;

    const res = await admin("/capacity");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = await res.json<{ shards: Record<string, unknown>[] }>();
    const growth =
      row.size_bytes -
      (await env.DB.prepare("SELECT window_start_bytes AS b FROM shard_capacity WHERE shard_id = 0").first<number>(
        "b",
      ))!;
    expect(body).toEqual({
      at: new Date(start + 2 * HOUR).toISOString(),
      thresholds: { limitBytes: D1_DATABASE_LIMIT_BYTES, warnPercent: 70, criticalPercent: 85, readOnlyPercent: 90 },
      allFull: false,
      shards: [
        {
          id: 0,
          binding: "DB",
          state: "writable",
          readOnlySince: null,
          level: "ok",
          sizeBytes: row.size_bytes,
          limitBytes: D1_DATABASE_LIMIT_BYTES,
          share: Math.round((row.size_bytes / D1_DATABASE_LIMIT_BYTES) * 1e6) / 1e6,
          measuredAt: new Date(start + 2 * HOUR).toISOString(),
          // Two events over two hours, from the shard's own window: the rollup walk has not run in this file.
          eventsPerDay: 24,
          rowsWrittenPerEvent: Math.round((row.window_rows_written / 2) * 100) / 100,
          bytesPerEvent: Math.round(Math.max(0, growth) / 2),
          bytesPerDay: growth * 12,
          daysUntilFull:
            growth > 0
              ? Math.round(((D1_DATABASE_LIMIT_BYTES * 0.9 - row.size_bytes) / (growth * 12)) * 10) / 10
              : null,
        },
        // Shard 1, with its one event over the same two hours (the isolate records the size it last saw of every
        // shard once its minute is up).
        {
          id: 1,
          binding: "SHARD_1",
          state: "writable",
          readOnlySince: null,
          level: "ok",
          sizeBytes: row1.size_bytes,
          limitBytes: D1_DATABASE_LIMIT_BYTES,
          share: Math.round((row1.size_bytes / D1_DATABASE_LIMIT_BYTES) * 1e6) / 1e6,
          measuredAt: new Date(row1.measured_at).toISOString(),
          eventsPerDay: 12,
          rowsWrittenPerEvent: row1.window_rows_written,
          bytesPerEvent: 0,
          bytesPerDay: 0,
          daysUntilFull: null,
        },
      ],
    });

    const [shard] = body.shards as {
      sizeBytes: number;
      share: number;
      rowsWrittenPerEvent: number;
      daysUntilFull: number | null;
      measuredAt: string;
    }[];
    const page = await dashboardPage("/capacity");
    expect(page).toContain(`0 (DB) writable ${shard!.sizeBytes.toLocaleString("en-US")} bytes`);
    expect(page).toContain(`1 (SHARD_1) writable ${row1.size_bytes.toLocaleString("en-US")} bytes`);
    expect(page).toContain(`${(shard!.share * 100).toFixed(1)}%`);
    expect(page).toContain(`Of ${D1_DATABASE_LIMIT_BYTES.toLocaleString("en-US")} bytes`);
    expect(page).toContain(
      ` 24 ${shard!.rowsWrittenPerEvent.toLocaleString("en-US")} ${Math.round(Math.max(0, growth) / 2).toLocaleString("en-US")} ${
        shard!.daysUntilFull === null ? "not growing" : shard!.daysUntilFull.toLocaleString("en-US")
      } ${shard!.measuredAt.replace(".000Z", "Z")}`,
    );
    expect(page).toContain("Alerts at 70% and 85%. Past 90%");
  });

  it("shows no figures before the first record, and every shard past the line as all full", async () => {
    const none = { sizeBytes: null, share: null, measuredAt: null, level: null, daysUntilFull: null };
    expect(await (await admin("/capacity")).json()).toMatchObject({
      allFull: false,
      shards: [
        { id: 0, ...none },
        { id: 1, ...none },
      ],
    });
    expect((await ingest(0)).status).toBe(200);
    const tiny = configured({ limitBytes: 1_000 });
    // Shard 1 has no record yet: it counts as having room (its write is tried, and D1 itself refuses a full one).
    expect(await (await admin("/capacity", tiny)).json()).toMatchObject({
      allFull: false,
      shards: [{ level: "full", daysUntilFull: 0 }, { level: null }],
    });
    expect((await ingest(1)).status).toBe(200);
    expect(await (await admin("/capacity", tiny)).json()).toMatchObject({
      allFull: true,
      thresholds: { limitBytes: 1_000 },
      shards: [
        { level: "full", daysUntilFull: 0 },
        { level: "full", daysUntilFull: 0 },
      ],
    });
    expect(await dashboardPage("/capacity", tiny)).toContain(
      "No shard has room under 90%: ingest answers 503 storage_full and the providers retry.",
    );
  });
});

describe("alerts", () => {
  it("alerts once at 70 % and once at 85 %, with the shard, its size and share; a repeat within the throttle is held back", async () => {
    const queue = captureDeliveryQueue();
    const size = await sizeNow();
    // Limits that put today's size at 77.5 % and 87.5 %: an event moves it by well under a point.
    const warning = configured({ limitBytes: Math.round(size / 0.775) });
    const critical = configured({ limitBytes: Math.round(size / 0.875) });

    expect((await ingest(0, warning)).status).toBe(200);
    clock.advance(61_000);
    expect((await ingest(0, warning)).status).toBe(200);
    clock.advance(61_000);
    expect((await ingest(0, critical)).status).toBe(200);
    const row = (await capacityRow())!;
    expect(row.level).toBe("critical");
    const alerts = alertsIn(queue);
    expect(alerts.map((a) => a.kind)).toEqual(["capacity_warning", "capacity_critical"]);
    expect(alerts[0]).toMatchObject({
      destination: null,
      reason: expect.stringMatching(/^shard 0 \(DB\) at 7\d\.\d% of \d+ bytes; warning at 70%$/),
      counts: { shard: 0, sizeBytes: expect.any(Number), percent: expect.any(Number) },
      eventIds: [],
    });
    expect(alerts[1]).toMatchObject({
      reason: expect.stringMatching(/^shard 0 \(DB\) at 8\d\.\d% of \d+ bytes; critical at 85%$/),
      counts: { shard: 0, sizeBytes: row.size_bytes, percent: expect.any(Number) },
    });
    const percents = alerts.map((a) => (a.counts as { percent: number }).percent);
    expect(percents[0]).toBeGreaterThanOrEqual(77.5);
    expect(percents[0]).toBeLessThan(80);
    expect(percents[1]).toBeGreaterThanOrEqual(87.5);
    expect(percents[1]).toBeLessThan(90);

    // The limit goes back up (the level falls and re-arms), then down again within the 15-minute throttle: the
    // second crossing is counted by the gate, not sent.
    clock.advance(61_000);
    expect((await ingest(0)).status).toBe(200);
    expect((await capacityRow())!.level).toBe("ok");
    clock.advance(61_000);
    expect((await ingest(0, warning)).status).toBe(200);
    expect((await capacityRow())!.level).toBe("warning");
    expect(alertsIn(queue).map((a) => a.kind)).toEqual(["capacity_warning", "capacity_critical"]);
  });
});

describe("storage_full", () => {
  it("answers 503 storage_full with Retry-After before accepting anything when no shard has room, and alerts", async () => {
    const queue = captureDeliveryQueue();
    expect((await ingest(0)).status).toBe(200);
    expect((await ingest(1)).status).toBe(200);
    const before = await eventCount();
    // The sizes this isolate saw of both shards are now over 90 % of the limit: no shard has room.
    const res = await ingest(0, configured({ limitBytes: 1_000_000 }));
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("300");
    expect(await res.json()).toEqual({
      error: {
        code: "storage_full",
        message: "Storage is full; the event was not accepted. Retry later.",
        requestId: expect.any(String),
      },
    });
    expect(await eventCount()).toBe(before);
    // One critical alert however many requests are refused (at most one a minute from an isolate, then the throttle).
    expect((await ingest(0, configured({ limitBytes: 1_000_000 }))).status).toBe(503);
    expect(alertsIn(queue)).toEqual([
      expect.objectContaining({
        kind: "storage_full",
        reason: expect.stringMatching(
          /^ingest answers 503 storage_full \(every shard past its read-only line\): shard 0 \d+\.?\d*%, shard 1 \d+/,
        ),
        counts: { shards: 2 },
      }),
    ]);
    // With room again (the default limit), the same isolate accepts at once.
    expect((await ingest(0)).status).toBe(200);
  });

  it("takes events again once rows are deleted: a refusing isolate asks D1 for the size once a minute", async () => {
    // Shard 1 read-only by config (being drained, say): shard 0 alone takes new events.
    const storage = {
      shards: [
        { id: 0, binding: "DB" },
        { id: 1, binding: "SHARD_1", readOnly: true },
      ],
      retryWindowHours: 48,
    };
    await env.DB.exec("CREATE TABLE recovery_ballast (b BLOB)");
    await env.DB.prepare("INSERT INTO recovery_ballast VALUES (zeroblob(1500000))").run();
    await env.DB.prepare("INSERT INTO recovery_ballast VALUES (zeroblob(1500000))").run();
    expect((await ingest(0, configured({}, storage), {}, [0])).status).toBe(200);
    // The database as it is now is the whole limit.
    const tight = configured({ limitBytes: await sizeNow() }, storage);
    expect((await ingest(0, tight, {}, [0])).status).toBe(503);
    await env.DB.exec("DROP TABLE recovery_ballast");
    // Within the minute the isolate goes by the size it saw; then it asks again, and there is room.
    expect((await ingest(0, tight, {}, [0])).status).toBe(503);
    clock.advance(61_000);
    expect((await ingest(0, tight, {}, [0])).status).toBe(200);
  });

  it("answers 503 storage_full when D1 itself refuses the write as full, storing nothing", async () => {
    const queue = captureDeliveryQueue();
    const db = refusingEventInserts(env.DB);
    const before = await eventCount();
    const res = await ingest(0, undefined, { DB: db });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("300");
    expect(await res.json()).toMatchObject({ error: { code: "storage_full" } });
    expect(await eventCount()).toBe(before);
    expect(alertsIn(queue)).toEqual([
      expect.objectContaining({
        kind: "storage_full",
        reason: expect.stringContaining("(D1 refused the write: the database is full)"),
      }),
    ]);
  });
});

describe("the read-only switch at 90 %", () => {
  const latestMap = () =>
    env.DB.prepare("SELECT version, writable, reason FROM shard_maps ORDER BY version DESC LIMIT 1").first<{
      version: number;
      writable: string;
      reason: string;
    }>();

  it("makes a shard past 90 % read-only while another has room (audited, alerted); new events go to the others; with none left, 503", async () => {
    const queue = captureDeliveryQueue();
    // Shard 1 grows well past shard 0: a limit that puts it at 95 % leaves shard 0 far under the line.
    await env.SHARD_1.exec("CREATE TABLE switch_ballast (b BLOB)");
    for (let i = 0; i < 4; i++)
      await env.SHARD_1.prepare("INSERT INTO switch_ballast VALUES (zeroblob(1000000))").run();
    try {
      const limit = Math.round((await sizeNow(env.SHARD_1)) / 0.95);
      expect((await sizeNow(env.DB)) / limit).toBeLessThan(0.7);
      const config = configured({ limitBytes: limit });

      expect((await ingest(0, config)).status).toBe(200);
      // The event that lands in shard 1 records it past the line: the watch makes it read-only.
      const last = await ingest(1, config);
      expect(last.status).toBe(200);
      expect(shardOfEventId((await last.json<{ eventId: string }>()).eventId)).toBe(1);
      expect(await env.DB.prepare("SELECT shard_id, since, reason FROM read_only_shards").all()).toMatchObject({
        results: [{ shard_id: 1, since: start, reason: "capacity" }],
      });
      expect(await capacityRow(1)).toMatchObject({ level: "full" });

      // Audited as the router's own action, and alerted once.
      const audit = await env.DB.prepare(
        "SELECT action, token_id, event_id, detail FROM audit_log WHERE action = 'shard_read_only' AND at = ?1",
      )
        .bind(start)
        .all<{ action: string; token_id: string; event_id: string | null; detail: string }>();
      expect(audit.results).toHaveLength(1);
      expect(audit.results[0]).toMatchObject({ token_id: "router", event_id: null });
      expect(JSON.parse(audit.results[0]!.detail)).toMatchObject({
        shard: 1,
        binding: "SHARD_1",
        limitBytes: limit,
        readOnlyPercent: 90,
        reason: "capacity",
        via: "router",
      });
      const alerts = alertsIn(queue);
      expect(alerts).toEqual([
        expect.objectContaining({
          kind: "shard_read_only",
          destination: null,
          reason: expect.stringMatching(/^shard 1 \(SHARD_1\) at 9\d(\.\d)?% of \d+ bytes; past 90%: made read-only/),
          counts: { shard: 1, sizeBytes: expect.any(Number), percent: expect.any(Number) },
        }),
      ]);

      // The admin API and the dashboard list it read-only, from the control database's record of the switch.
      const shown = await (
        await call(
          new Request(`${ROUTER}/admin/capacity`, { headers: { Authorization: `Bearer ${env.ADMIN_TOKEN}` } }),
          { ROUTER_CONFIG: config },
        )
      ).json<{ allFull: boolean; shards: { id: number; state: string; readOnlySince: string | null }[] }>();
      expect(shown.allFull).toBe(false);
      expect(shown.shards.map((s) => [s.id, s.state, s.readOnlySince])).toEqual([
        [0, "writable", null],
        [1, "read_only", new Date(start).toISOString()],
      ]);

      // The next ingest writes the next map version, without shard 1; events its bodies would have put in shard 1
      // under the map before go to shard 0, and shard 1 takes none.
      clock.advance(1_000);
      const inShard1Before = (await env.SHARD_1.prepare("SELECT COUNT(*) AS n FROM events").first<number>("n"))!;
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await ingest(1, config);
        expect(res.status).toBe(200);
        ids.push((await res.json<{ eventId: string }>()).eventId);
      }
      expect(await latestMap()).toMatchObject({ writable: "[0]", reason: "capacity" });
      expect(ids.map(shardOfEventId)).toEqual([0, 0, 0]);
      expect(await env.SHARD_1.prepare("SELECT COUNT(*) AS n FROM events").first("n")).toBe(inShard1Before);
      // No second audit entry or alert: the switch is made once.
      expect(alertsIn(queue)).toHaveLength(1);

      // Shard 0 past the line too, with shard 1 read-only: no shard has room, so ingest answers 503.
      clock.advance(61_000);
      const res = await ingest(0, configured({ limitBytes: Math.round((await sizeNow(env.DB)) / 0.95) }), {}, [0]);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ error: { code: "storage_full" } });
      // Not made read-only: there is no other shard for its events to go to.
      expect(await env.DB.prepare("SELECT shard_id FROM read_only_shards ORDER BY shard_id").all()).toMatchObject({
        results: [{ shard_id: 1 }],
      });
    } finally {
      await env.SHARD_1.exec("DROP TABLE switch_ballast");
    }
  });
});
