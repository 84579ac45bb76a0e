import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import { D1_DATABASE_LIMIT_BYTES } from "../src/core/capacity.ts";
import { captureDeliveryQueue, gatesOfItsOwn, ManualClock, ROUTER, stubDestinations } from "./helpers.ts";

// Issue #24, item 3, for the one database there is today (shard 0, `DB`): D1's own size recorded after ingest at
// most once a minute, the same figures in the admin API and on the dashboard, alerts at 70 and 85 %, and 503
// storage_full before anything is accepted when no shard has room. Everything goes through the real Worker and D1.
// The rules themselves (several shards included) are test/capacity-rules.test.ts.

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

const capacityRow = () => env.DB.prepare("SELECT * FROM shard_capacity WHERE shard_id = 0").first<CapacityRow>();

/** D1's size of the database now, from a statement's own meta (what the Worker reads). */
const sizeNow = async () => (await env.DB.prepare("SELECT 1").run()).meta.size_after as number;

const eventCount = async () => (await env.DB.prepare("SELECT COUNT(*) AS n FROM events").first<number>("n"))!;

/** The test config with `limits.capacity` set, as a deployment would bind it. */
const configured = (capacity: Record<string, number> = {}) =>
  JSON.stringify({ ...testConfig, limits: { ...testConfig.limits, capacity } });

// Every test moves on from where the last one's clock stopped (whatever order they run in), and starts with no
// record of the shard: the file's tests share its D1 database.
let start = Date.now();
let clock: ManualClock;
let worker: ReturnType<typeof createWorker>;
let bindings: Env;
beforeEach(async () => {
  start += 30 * 24 * HOUR;
  clock = new ManualClock(start);
  worker = createWorker({ clock });
  bindings = { ...env, DESTINATION_GATE: gatesOfItsOwn() };
  await env.DB.prepare("DELETE FROM shard_capacity").run();
});

// A few megabytes of ballast, so an event's few pages move the share by well under a percent and a test can put
// the database between two lines by choosing the limit.
beforeAll(async () => {
  await env.DB.exec("CREATE TABLE capacity_ballast (b BLOB)");
  for (let i = 0; i < 4; i++) await env.DB.prepare("INSERT INTO capacity_ballast VALUES (zeroblob(1000000))").run();
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

const ingest = (config?: string, overrides: Record<string, unknown> = {}) =>
  call(
    new Request(`${ROUTER}/webhooks/lab/single`, {
      method: "POST",
      body: JSON.stringify({ id: crypto.randomUUID(), kind: "single" }),
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
    expect((await ingest()).status).toBe(200);
    const first = await capacityRow();
    expect(first).toMatchObject({ shard_id: 0, binding: "DB", measured_at: start, level: "ok", version: 1 });
    expect(first!.size_bytes).toBeGreaterThanOrEqual(before);
    expect(first!.size_bytes).toBeLessThanOrEqual(await sizeNow());
    expect(first!.window_events).toBe(1);
    expect(first!.window_rows_written).toBeGreaterThanOrEqual(1);

    // Within the minute: counted in memory, not written.
    clock.advance(30_000);
    expect((await ingest()).status).toBe(200);
    clock.advance(29_000);
    expect((await ingest()).status).toBe(200);
    expect(await capacityRow()).toEqual(first);

    // The minute is up: one write, carrying what the isolate counted since.
    clock.advance(2_000);
    expect((await ingest()).status).toBe(200);
    const second = await capacityRow();
    expect(second).toMatchObject({ measured_at: start + 61_000, version: 2, window_events: 4 });
    const rowsPerEvent = second!.window_rows_written / second!.window_events;
    expect(rowsPerEvent).toBeGreaterThanOrEqual(1);
    expect(rowsPerEvent).toBeLessThan(10);
  });

  it("counts the consumer's writes too: rows written per event covers delivery, not ingest alone", async () => {
    const queue = captureDeliveryQueue();
    stubDestinations(() => new Response("ok"));
    expect((await ingest()).status).toBe(200);
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
      expect((await ingest()).status).toBe(200);
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
    expect((await ingest()).status).toBe(200);
    clock.advance(2 * HOUR);
    expect((await ingest()).status).toBe(200);
    const row = (await capacityRow())!;

    const res = await admin("/capacity");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = await res.json<{ shards: Record<string, unknown>[] }>();
    const growth =
      row.size_bytes - (await env.DB.prepare("SELECT window_start_bytes AS b FROM shard_capacity").first<number>("b"))!;
    expect(body).toEqual({
      at: new Date(start + 2 * HOUR).toISOString(),
      thresholds: { limitBytes: D1_DATABASE_LIMIT_BYTES, warnPercent: 70, criticalPercent: 85, readOnlyPercent: 90 },
      allFull: false,
      shards: [
        {
          id: 0,
          binding: "DB",
          state: "writable",
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
    expect(page).toContain(`${(shard!.share * 100).toFixed(1)}%`);
    expect(page).toContain(`Of ${D1_DATABASE_LIMIT_BYTES.toLocaleString("en-US")} bytes`);
    expect(page).toContain(
      ` 24 ${shard!.rowsWrittenPerEvent.toLocaleString("en-US")} ${Math.round(Math.max(0, growth) / 2).toLocaleString("en-US")} ${
        shard!.daysUntilFull === null ? "not growing" : shard!.daysUntilFull.toLocaleString("en-US")
      } ${shard!.measuredAt.replace(".000Z", "Z")}`,
    );
    expect(page).toContain("Alerts at 70% and 85%. Past 90%");
  });

  it("shows no figures before the first record, and a shard past the line as all full", async () => {
    expect(await (await admin("/capacity")).json()).toMatchObject({
      allFull: false,
      shards: [{ id: 0, sizeBytes: null, share: null, measuredAt: null, level: null, daysUntilFull: null }],
    });
    expect((await ingest()).status).toBe(200);
    const tiny = configured({ limitBytes: 1_000 });
    expect(await (await admin("/capacity", tiny)).json()).toMatchObject({
      allFull: true,
      thresholds: { limitBytes: 1_000 },
      shards: [{ level: "full", daysUntilFull: 0 }],
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

    expect((await ingest(warning)).status).toBe(200);
    clock.advance(61_000);
    expect((await ingest(warning)).status).toBe(200);
    clock.advance(61_000);
    expect((await ingest(critical)).status).toBe(200);
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
    expect((await ingest()).status).toBe(200);
    expect((await capacityRow())!.level).toBe("ok");
    clock.advance(61_000);
    expect((await ingest(warning)).status).toBe(200);
    expect((await capacityRow())!.level).toBe("warning");
    expect(alertsIn(queue).map((a) => a.kind)).toEqual(["capacity_warning", "capacity_critical"]);
  });
});

describe("storage_full", () => {
  it("answers 503 storage_full with Retry-After before accepting anything when no shard has room, and alerts", async () => {
    const queue = captureDeliveryQueue();
    expect((await ingest()).status).toBe(200);
    const before = await eventCount();
    // The size this isolate saw is now over 90 % of the limit: there is no other shard to go read-only for.
    const res = await ingest(configured({ limitBytes: 1_000_000 }));
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
    expect((await ingest(configured({ limitBytes: 1_000_000 }))).status).toBe(503);
    expect(alertsIn(queue)).toEqual([
      expect.objectContaining({
        kind: "storage_full",
        reason: expect.stringMatching(
          /^ingest answers 503 storage_full \(every shard past its read-only line\): shard 0 \d+/,
        ),
        counts: { shards: 1 },
      }),
    ]);
    // With room again (the default limit), the same isolate accepts at once.
    expect((await ingest()).status).toBe(200);
  });

  it("takes events again once rows are deleted: a refusing isolate asks D1 for the size once a minute", async () => {
    await env.DB.exec("CREATE TABLE recovery_ballast (b BLOB)");
    await env.DB.prepare("INSERT INTO recovery_ballast VALUES (zeroblob(1500000))").run();
    await env.DB.prepare("INSERT INTO recovery_ballast VALUES (zeroblob(1500000))").run();
    expect((await ingest()).status).toBe(200);
    // The database as it is now is the whole limit.
    const tight = configured({ limitBytes: await sizeNow() });
    expect((await ingest(tight)).status).toBe(503);
    await env.DB.exec("DROP TABLE recovery_ballast");
    // Within the minute the isolate goes by the size it saw; then it asks again, and there is room.
    expect((await ingest(tight)).status).toBe(503);
    clock.advance(61_000);
    expect((await ingest(tight)).status).toBe(200);
  });

  it("answers 503 storage_full when D1 itself refuses the write as full, storing nothing", async () => {
    const queue = captureDeliveryQueue();
    const full = new Error("D1_ERROR: database or disk is full: SQLITE_FULL");
    const refusing = {
      bind: () => refusing,
      all: () => Promise.reject(full),
      run: () => Promise.reject(full),
      first: () => Promise.reject(full),
    };
    const db = new Proxy(env.DB, {
      get(target, property) {
        if (property === "prepare")
          return (query: string) => (/INSERT INTO events/i.test(query) ? refusing : target.prepare(query));
        const value = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const before = await eventCount();
    const res = await ingest(undefined, { DB: db });
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
