import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect, vi } from "vitest";
import type { createWorker } from "../src/app/worker.ts";
import type { Clock } from "../src/core/clock.ts";
import { parseConfig } from "../src/core/config/parse.ts";
import type { IdentifyInput, IdentifyResult, ProviderAdapter } from "../src/core/providers/contract.ts";
import type { DeliveryMessage } from "../src/core/messages.ts";
import { parseKeyRing, type PayloadProtection } from "../src/core/envelope.ts";
import { EventPayloads } from "../src/storage/payloads.ts";
import type { SignedFixture } from "../vitest.config.ts";
import { shardOfEventId } from "../src/core/event-id.ts";

export const ROUTER = "https://router.example.test";

/** A page's text as a reader sees it: tags gone, the common entities decoded, whitespace folded. */
export const visible = (html: string) =>
  html
    .replace(/<[^>]+>/g, " ")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, "&")
    .replace(/\s+/g, " ");

/** The database an event is stored in: its id names the shard (shard 0 is DB, shard 1 SHARD_1). */
export function dbOfEvent(eventId: string): D1Database {
  const shard = shardOfEventId(eventId);
  if (shard === 0) return env.DB;
  if (shard === 1) return env.SHARD_1;
  throw new Error(`${eventId}: no test database for shard ${shard}`);
}

export type Fetcher = (request: Request) => Promise<Response>;

const defaultWorker: Fetcher = (request) => exports.default.fetch(request);

export function post(
  path: string,
  body: string | ArrayBuffer,
  headers: Record<string, string> = {},
  fetcher: Fetcher = defaultWorker,
): Promise<Response> {
  return fetcher(
    new Request(`${ROUTER}${path}`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json", ...headers },
    }),
  );
}

/** A request to the admin API with the test admin token. */
export function adminFetch(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return exports.default.fetch(
    new Request(`${ROUTER}/admin${path}`, {
      method,
      headers: { Authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
}

export interface IngestExpectation {
  url: string;
  fixture: SignedFixture;
  eventType: string;
  destinations: string[];
  fetcher?: Fetcher;
}

/**
 * Posts a signed fixture and checks the whole ingest contract: 200, the event stored byte for byte with its type,
 * one pending delivery per destination, and one queue message naming them all. Returns the event id.
 */
export async function expectIngested({
  url,
  fixture: f,
  eventType,
  destinations,
  fetcher,
}: IngestExpectation): Promise<string> {
  const queue = captureDeliveryQueue();
  const res = await post(url, f.body, f.headers, fetcher);
  const json = await res.json<{ eventId: string }>();
  expect(res.status, JSON.stringify(json)).toBe(200);
  expect(json).toMatchObject({
    received: true,
    duplicate: false,
    routing: "routed",
    deliveries: destinations.length,
    enqueued: true,
  });
  const stored = await dbOfEvent(json.eventId)
    .prepare(`SELECT event_type, routing, content_type FROM events WHERE id = ?1`)
    .bind(json.eventId)
    .first();
  expect(stored).toMatchObject({ event_type: eventType, routing: "routed", content_type: "application/json" });
  expect(new TextDecoder().decode((await storedPayloads(json.eventId)).body!)).toBe(f.body);
  const deliveries = await deliveriesOf(json.eventId);
  expect(deliveries.map((d) => [d.destination, d.status, d.attempts])).toEqual(
    [...destinations].sort().map((d) => [d, "pending", 0]),
  );
  expect(queue.messages.map((m) => m.body)).toContainEqual({
    v: 1,
    eventId: json.eventId,
    ingestId: expect.any(String),
    deliveries: expect.arrayContaining(destinations.map((destination) => ({ destination, generation: 1 }))),
  });
  return json.eventId;
}

/** The test key ring (PAYLOAD_KEYS), as the Worker parses it. */
export async function testProtection(secret: string = env.PAYLOAD_KEYS): Promise<PayloadProtection> {
  const result = await parseKeyRing(secret);
  if (!result.ok) throw new Error(result.reason);
  return { mode: "encrypted", ring: result.ring };
}

/** An event's stored body and Draft answer, opened with the test ring as the Worker opens them (null once purged). */
export async function storedPayloads(
  eventId: string,
  protection?: PayloadProtection,
): Promise<{ body: Uint8Array | null; answer: Uint8Array | null; keyId: string | null; payloads: EventPayloads }> {
  const row = await dbOfEvent(eventId)
    .prepare(`SELECT body, draft_answer, payload_key, payload_dek, payload_purged_at FROM events WHERE id = ?1`)
    .bind(eventId)
    .first<{
      body: unknown;
      draft_answer: unknown;
      payload_key: string | null;
      payload_dek: string | null;
      payload_purged_at: number | null;
    }>();
  if (!row) throw new Error(`no event ${eventId}`);
  const payloads = await EventPayloads.open(protection ?? (await testProtection()), eventId, row.payload_dek);
  return {
    body: row.payload_purged_at === null ? await payloads.open("body", row.body) : null,
    answer: row.draft_answer === null ? null : await payloads.open("answer", row.draft_answer),
    keyId: row.payload_key,
    payloads,
  };
}

/** A provider fixture, `"<provider>/<event>"`, with the headers its provider would sign it with. */
export function fixture(name: string): SignedFixture {
  const signed = env.TEST_SIGNED_FIXTURES[name];
  if (!signed) throw new Error(`no fixture ${name}`);
  return signed;
}

/** Every fixture of one provider, by event name. */
export function fixturesOf(provider: string): [string, SignedFixture][] {
  return Object.entries(env.TEST_SIGNED_FIXTURES)
    .filter(([name]) => name.startsWith(`${provider}/`))
    .map(([name, signed]) => [name.slice(provider.length + 1), signed]);
}

/**
 * Signs bodies a test builds at run time. The fixtures are signed with Node's createHmac in vitest.config.ts, and
 * test/signature.test.ts checks this helper against them, so it is not the verifier checking itself.
 */
export async function hmacSha256(secret: string, body: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)));
}

export async function weedmapsSignature(
  body: string,
  secret: string = env.WEEDMAPS_CLIENT_SECRET as string,
): Promise<string> {
  return btoa(String.fromCharCode(...(await hmacSha256(secret, body))));
}

export async function hexSignature(body: string, secret: string): Promise<string> {
  return Array.from(await hmacSha256(secret, body), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function postWeedmaps(path: string, body: string): Promise<Response> {
  return post(path, body, { Signature: await weedmapsSignature(body) });
}

/**
 * The gates' namespace with every object's name prefixed, so that a test's gates (circuits, rate limits, the alert
 * throttle) are its own: the tests of a file share its storage, Durable Objects included.
 */
export function gatesOfItsOwn(namespace: Env["DESTINATION_GATE"] = env.DESTINATION_GATE): Env["DESTINATION_GATE"] {
  const prefix = crypto.randomUUID();
  return new Proxy(namespace, {
    get(target, property) {
      if (property === "idFromName") return (name: string) => target.idFromName(`${prefix}:${name}`);
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Records every message the Worker sends to the real delivery queue (the send still goes through). */
export function captureDeliveryQueue(): { messages: { body: DeliveryMessage; delaySeconds?: number }[] } {
  const captured: { messages: { body: DeliveryMessage; delaySeconds?: number }[] } = { messages: [] };
  const queue = env.DELIVERY_QUEUE;
  const original = queue.sendBatch.bind(queue);
  vi.spyOn(queue, "sendBatch").mockImplementation(async (messages, options) => {
    for (const m of messages) captured.messages.push({ body: m.body as DeliveryMessage, delaySeconds: m.delaySeconds });
    return original(messages, options);
  });
  return captured;
}

/**
 * `exports.default.queue()` and `.scheduled()` exist only under the test-only `service_binding_extra_handlers`
 * flag, so the generated types do not list them.
 */
interface ExtraHandlers {
  queue(
    queueName: string,
    messages: { id: string; timestamp: Date; attempts: number; body: unknown }[],
  ): Promise<{
    outcome: string;
    ackAll: boolean;
    retryBatch: { retry: boolean; delaySeconds?: number };
    explicitAcks: string[];
    retryMessages: { msgId: string; delaySeconds?: number }[];
  }>;
  scheduled(options: { cron?: string; scheduledTime?: number }): Promise<{ outcome: string; noRetry: boolean }>;
}

const worker = exports.default as unknown as ExtraHandlers;

export function runScheduled(cron = "*/5 * * * *") {
  return worker.scheduled({ cron, scheduledTime: Date.now() });
}

let messageCounter = 0;

/** Drives the real queue handler with the given bodies, as Queues would, and returns its per-message verdicts. */
export async function runDeliveryQueue(bodies: unknown[], attempts = 1, queue = "webhook-deliveries") {
  const messages = bodies.map((body) => ({
    id: `msg-${++messageCounter}`,
    timestamp: new Date(),
    attempts,
    body,
  }));
  const result = await worker.queue(queue, messages);
  return { result, ids: messages.map((m) => m.id) };
}

/**
 * Runs a Worker built by the test (with its own clock or providers) over a batch, through the plugin's real
 * MessageBatch and ExecutionContext. Its result drops retry delays (see ../shared/PLATFORM.md); tests that assert
 * delays use runDeliveryQueue.
 */
export async function runQueueOn(
  worker: ReturnType<typeof createWorker>,
  bodies: unknown[],
  attempts = 1,
  queue = "webhook-deliveries",
) {
  const messages = bodies.map((body) => ({ id: `msg-${++messageCounter}`, timestamp: new Date(), attempts, body }));
  const batch = createMessageBatch(queue, messages);
  const ctx = createExecutionContext();
  await worker.queue(batch, env);
  return { result: await getQueueResult(batch, ctx), ids: messages.map((m) => m.id) };
}

export interface DeliveryRowView {
  destination: string;
  generation: number;
  status: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: number;
  attempt_log: string;
}

/** An event's deliveries, every generation, read straight from the JSON in its row (not through src/storage). */
export async function deliveriesOf(eventId: string): Promise<DeliveryRowView[]> {
  const { results } = await dbOfEvent(eventId)
    .prepare(
      `SELECT j.value ->> 'destination' AS destination, j.value ->> 'generation' AS generation, j.value ->> 'status' AS status,
            j.value ->> 'attempts' AS attempts, j.value ->> 'lastStatusCode' AS last_status_code, j.value ->> 'lastError' AS last_error,
            j.value ->> 'nextAttemptAt' AS next_attempt_at, j.value -> 'log' AS attempt_log
     FROM events e, json_each(e.deliveries) j WHERE e.id = ?1 ORDER BY destination, generation`,
    )
    .bind(eventId)
    .all<DeliveryRowView>();
  return results;
}

export type FetchHandler = (request: Request) => Response | Promise<Response>;

/** Stands in for the internal systems: every outbound fetch goes to `handler`, and each request is kept. */
export function stubDestinations(handler: FetchHandler): { requests: Request[]; bodies: string[] } {
  const seen = { requests: [] as Request[], bodies: [] as string[] };
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input as RequestInfo, init as RequestInit);
    seen.requests.push(request.clone());
    seen.bodies.push(await request.clone().text());
    return handler(request);
  });
  return seen;
}

/**
 * A clock that stands still until the test moves it. Timeouts started on it fire when `advance` passes their
 * deadline, so a test of a deadline needs no real waiting.
 */
export class ManualClock implements Clock {
  #now: number;
  readonly #timers: { at: number; controller: AbortController }[] = [];

  constructor(start = Date.UTC(2026, 10, 23, 10, 0, 0)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  timeout(ms: number): AbortSignal {
    const controller = new AbortController();
    this.#timers.push({ at: this.#now + ms, controller });
    return controller.signal;
  }

  /** How many timeouts are running (started, not yet fired). */
  get pendingTimeouts(): number {
    return this.#timers.filter((t) => !t.controller.signal.aborted).length;
  }

  advance(ms: number): void {
    this.#now += ms;
    for (const timer of this.#timers) {
      if (timer.at <= this.#now && !timer.controller.signal.aborted) {
        timer.controller.abort(new DOMException("The operation timed out.", "TimeoutError"));
      }
    }
  }
}

/** A promise with its resolve, for handing control back and forth with a stubbed destination. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Stands in for a destination that never answers: each request waits until the caller gives up on it (its signal
 * aborts). Resolves with the first request once it has arrived.
 */
export function stubSilentDestination(): Promise<Request> {
  const arrived = deferred<Request>();
  stubDestinations((request) => {
    arrived.resolve(request);
    return new Promise<Response>((_, reject) =>
      request.signal.addEventListener("abort", () => reject(request.signal.reason)),
    );
  });
  return arrived.promise;
}

/**
 * An adapter's `identify` over a one-source config of the given provider (source name "s", a fixed body hash),
 * with the call's own overrides: the provider tests' shorthand.
 */
export function identifierFor(
  adapter: ProviderAdapter,
  source: Record<string, unknown> = {},
): (overrides: Partial<IdentifyInput>) => IdentifyResult {
  const parsed = parseConfig({
    sources: { s: { provider: adapter.name, verify: { type: "hmac", secrets: ["A"] }, ...source } },
    destinations: {},
    routes: [],
  });
  if (!parsed.ok) throw new Error(parsed.errors.join("; "));
  const config = parsed.config.sources.s!;
  return (overrides) =>
    adapter.identify({
      sourceName: "s",
      source: config,
      pathEvent: undefined,
      payload: {},
      bodySha256: "h".repeat(64),
      ...overrides,
    });
}

/** A D1 binding that refuses every insert into `events` as D1 does when the database is full (SQLITE_FULL). */
export function refusingEventInserts(db: D1Database): D1Database {
  const full = new Error("D1_ERROR: database or disk is full: SQLITE_FULL");
  const refusing = {
    bind: () => refusing,
    all: () => Promise.reject(full),
    run: () => Promise.reject(full),
    first: () => Promise.reject(full),
  };
  return interceptPrepare(db, (query, real) =>
    /INSERT INTO events/i.test(query) ? (refusing as unknown as D1PreparedStatement) : real(query),
  );
}

/**
 * A D1 binding whose `prepare` goes through `prepare(sql, real)`, every other member the real binding's: tests
 * count, capture or refuse statements with it, against the real database. A statement it returns must be the
 * runtime's own by the time it reaches `batch()` (a proxy's `bind` should return the real `bind`'s result).
 */
export function interceptPrepare(
  db: D1Database,
  prepare: (sql: string, real: (sql: string) => D1PreparedStatement) => D1PreparedStatement,
): D1Database {
  return new Proxy(db, {
    get(target, property) {
      if (property === "prepare") return (sql: string) => prepare(sql, (query) => target.prepare(query));
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
