import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { createWorker as CreateWorker } from "../src/app/worker.ts";
import { MAX_OPENED_BYTES, openDataKey, openField, type PayloadField } from "../src/core/envelope.ts";
import { DAY_MS } from "../src/core/retention.ts";
import { encodeBase64 } from "../src/core/signatures/encoding.ts";
import { EventPayloads } from "../src/storage/payloads.ts";
import SEALED_BEFORE_COMPRESSION from "./fixtures/sealed-pe1.json";
import {
  dbOfEvent,
  fixture,
  fixturesOf,
  ManualClock,
  ROUTER,
  storedPayloads,
  stubDestinations,
  testProtection,
  weedmapsSignature,
} from "./helpers.ts";
import { piiValues, shownIn } from "./pii.ts";

// Customer data (issue #14): encrypted at rest, kept only as long as configured, shown only on purpose, never logged.

const KEY_B = `test-b:${btoa(String.fromCharCode(...new Uint8Array(32).map((_, i) => (i * 7 + 3) % 256)))}`;
const RING_A = env.PAYLOAD_KEYS as string;
const RING_BA = `${KEY_B},${RING_A}`;

const ALL_FIXTURES = Object.fromEntries(
  ["weedmaps", "leaftrade"].flatMap((p) => fixturesOf(p).map(([name, f]) => [`${p}/${name}`, f.body])),
);
const PII = piiValues(ALL_FIXTURES);

type Worker = ReturnType<typeof CreateWorker>;
type Bindings = Env;

async function call(worker: Worker, request: Request, bindings: Bindings = env): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, bindings, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

function signedPost(path: string, name: string): Request {
  const f = fixture(name);
  return new Request(`${ROUTER}${path}`, {
    method: "POST",
    body: f.body,
    headers: { "content-type": "application/json", ...f.headers },
  });
}

function admin(
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Request {
  return new Request(`${ROUTER}/admin${path}`, {
    method,
    headers: { Authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json", ...options.headers },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
}

async function cron(worker: Worker, bindings: Bindings = env): Promise<void> {
  await worker.scheduled(createScheduledController({ cron: "*/5 * * * *", scheduledTime: Date.now() }), bindings);
}

async function deliver(worker: Worker, eventId: string, destinations: string[], bindings: Bindings = env) {
  const batch = createMessageBatch("webhook-deliveries", [
    {
      id: `m-${eventId}-${Math.random()}`,
      timestamp: new Date(),
      attempts: 1,
      body: { v: 1, eventId, deliveries: destinations.map((destination) => ({ destination, generation: 1 })) },
    },
  ]);
  const ctx = createExecutionContext();
  await worker.queue(batch, bindings);
  return getQueueResult(batch, ctx);
}

const WEEDMAPS_CREATE = "/webhooks/weedmaps/create?merchant_id=4242";
/** Any Weedmaps status: the type comes from the signed body. */
const WEEDMAPS_ANY = "/webhooks/weedmaps?merchant_id=4242";

/**
 * Every value of every column of every table of every shard, as text: what a raw SELECT on the databases would show.
 */
async function everyStoredValue(): Promise<string> {
  const out: string[] = [];
  for (const db of [env.DB, env.SHARD_1]) out.push(await everyValueIn(db));
  return out.join("\n");
}

async function everyValueIn(db: D1Database): Promise<string> {
  const tables = await db
    .prepare(
      `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'd1_%'`,
    )
    .all<{ name: string }>();
  const out: string[] = [];
  for (const { name } of tables.results) {
    const { results } = await db.prepare(`SELECT * FROM "${name}"`).all<Record<string, unknown>>();
    for (const row of results) {
      for (const value of Object.values(row)) {
        out.push(
          value instanceof ArrayBuffer
            ? new TextDecoder().decode(value)
            : Array.isArray(value)
              ? new TextDecoder().decode(Uint8Array.from(value as number[]))
              : String(value),
        );
      }
    }
  }
  return out.join("\n");
}

let createWorker: typeof CreateWorker;

// Storage is shared by the tests of a file: each starts from no events, no walk and no key registry. An isolate
// trusts the registry it last checked for five minutes (src/ingest/keys.ts), so each test also gets the Worker's
// modules afresh, as a new isolate would load them, instead of one that remembers a registry emptied under it.
beforeEach(async () => {
  await env.DB.batch(
    ["events", "sweeper_state", "payload_keys", "audit_log"].map((table) => env.DB.prepare(`DELETE FROM ${table}`)),
  );
  // Shard 1 holds events and its own walk's state too.
  await env.SHARD_1.batch(["events", "sweeper_state"].map((table) => env.SHARD_1.prepare(`DELETE FROM ${table}`)));
  vi.resetModules();
  ({ createWorker } = await import("../src/app/worker.ts"));
});

afterEach(() => vi.restoreAllMocks());

describe("encrypted at rest", () => {
  it("the fixtures carry the customer data the adapters declare (so the checks below can fail)", () => {
    // Weedmaps' date of birth and medical recommendation id, Leaf Trade's buyer email.
    expect(PII).toEqual(expect.arrayContaining(["1990-04-12", "MR-2026-118822", "casey.nguyen@greenvalley.example"]));
    expect(PII.length).toBeGreaterThan(15);
  });

  it("a customer value counts as shown where it stands alone, not inside a random id, a timestamp or ciphertext", () => {
    expect(PII).toEqual(expect.arrayContaining(["94610", "Casey"]));
    expect(shownIn('{"zip":"94610","dob":"1990-04-12"}', PII)).toEqual(["1990-04-12", "94610"]);
    expect(shownIn("Casey, Oakland CA 94610.", PII)).toEqual(["94610", "Casey"]);
    // The request id a CI run drew, which held the "4242" it checked for; an alert id; a received_at; base64.
    const drawn =
      '{"requestId":"cbef565b-154f-4b3f-a834-c5794242e7ef","alertId":"alr_3c94610e","at":1794610233104,"v":"pe2:q3CaseyZ=="}';
    expect(shownIn(drawn, [...PII, "4242"])).toEqual([]);
  });

  it("after every fixture is ingested, no column of any table holds a customer value, and each body reads back exactly", async () => {
    const worker = createWorker();
    const stub = stubDestinations(() => new Response(`{"ok":false,"echo":"${"+15555550123"}"}`, { status: 500 }));
    const ids: [string, string][] = [];
    for (const [name] of Object.entries(ALL_FIXTURES)) {
      const [provider, event] = name.split("/") as [string, string];
      const path =
        provider === "weedmaps"
          ? `/webhooks/weedmaps${event === "draft" ? "/draft?merchant_id=4242" : "?merchant_id=4242"}`
          : `/webhooks/leaftrade/${event.replace(/--.*$/, "")}`;
      const res = await call(worker, signedPost(path, name));
      const json = await res.json<{ eventId?: string; events?: { eventId: string }[] }>();
      if (res.status !== 200) continue; // a Draft without a reachable responder answers 502; it is stored all the same
      for (const id of json.events?.map((e) => e.eventId) ?? [json.eventId!]) ids.push([id, name]);
    }
    expect(ids.length).toBeGreaterThanOrEqual(Object.keys(ALL_FIXTURES).length - 1);
    // A destination that echoes the customer back: its excerpt is sealed too.
    for (const [id] of ids) await deliver(worker, id, ["pos", "erp"]);
    expect(stub.requests.length).toBeGreaterThan(0);

    const raw = await everyStoredValue();
    expect(raw).toContain("pe2:"); // sealed payloads are there (compressed; short excerpts as given, pe1:)…
    expect(shownIn(raw, [...PII, "+15555550123"])).toEqual([]); // …and nothing else of the customer
    for (const [id, name] of ids.filter(([, n]) => !n.includes("--three-orders"))) {
      expect(new TextDecoder().decode((await storedPayloads(id)).body!), name).toBe(ALL_FIXTURES[name]);
    }
  });

  it("a ciphertext moved to another row, or a body swapped with an answer, does not decrypt", async () => {
    const worker = createWorker();
    const first = await (await call(worker, signedPost(WEEDMAPS_CREATE, "weedmaps/create"))).json<{
      eventId: string;
    }>();
    const second = await (await call(worker, signedPost(WEEDMAPS_CREATE, "weedmaps/create-other-order"))).json<{
      eventId: string;
    }>();
    const row = (id: string) =>
      dbOfEvent(id)
        .prepare(`SELECT body, payload_dek FROM events WHERE id = ?1`)
        .bind(id)
        .first<{ body: string; payload_dek: string }>();
    const a = (await row(first.eventId))!;
    const protection = await testProtection();

    // The whole envelope (data key and body) copied onto the other event: bound to the first event's id, it fails.
    await expect(EventPayloads.open(protection, second.eventId, a.payload_dek)).rejects.toMatchObject({
      name: "PayloadKeyError",
      reason: "not_authentic",
    });
    // With its own data key, the other event cannot open the first one's body either.
    const own = await EventPayloads.open(protection, second.eventId, (await row(second.eventId))!.payload_dek);
    await expect(own.open("body", a.body)).rejects.toMatchObject({ reason: "not_authentic" });
    // A body is not an answer: the field is bound too.
    const mine = await EventPayloads.open(protection, first.eventId, a.payload_dek);
    await expect(mine.open("answer", a.body)).rejects.toMatchObject({ reason: "not_authentic" });
    expect(new TextDecoder().decode(await mine.open("body", a.body))).toBe(fixture("weedmaps/create").body);

    // Through the API: the moved ciphertext answers 500 payload_unreadable, with nothing of the payload.
    await dbOfEvent(second.eventId)
      .prepare(`UPDATE events SET body = ?2, payload_dek = ?3 WHERE id = ?1`)
      .bind(second.eventId, a.body, a.payload_dek)
      .run();
    const res = await call(worker, admin("GET", `/events/${second.eventId}`));
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ error: { code: "payload_unreadable" } });
    expect(shownIn(text, PII)).toEqual([]);
  });

  it("fails closed: without PAYLOAD_KEYS, or with a malformed one, ingest answers 503 source_misconfigured and stores nothing", async () => {
    const worker = createWorker();
    const logs = vi.spyOn(console, "error").mockImplementation(() => undefined);
    for (const ring of [undefined, "", "k1:too-short", "no-colon-here", `${RING_A},${RING_A}`]) {
      const res = await call(worker, signedPost(WEEDMAPS_CREATE, "weedmaps/create-other-order"), {
        ...env,
        PAYLOAD_KEYS: ring,
      } as Bindings);
      expect(res.status, String(ring)).toBe(503);
      expect(await res.json()).toMatchObject({ error: { code: "source_misconfigured" } });
    }
    for (const db of [env.DB, env.SHARD_1])
      expect(await db.prepare(`SELECT COUNT(*) AS n FROM events WHERE provider_id = '9763900'`).first("n")).toBe(0);
    const reasons = logs.mock.calls
      .map(([line]) => JSON.parse(String(line)))
      .filter((l) => l.event === "payload_keys_invalid");
    expect(reasons.map((l) => l.reason)).toEqual(
      expect.arrayContaining([
        "PAYLOAD_KEYS is not set; nothing is stored until it is",
        expect.stringContaining("is not 32 bytes"),
      ]),
    );
    // The reason names no key material.
    expect(JSON.stringify(logs.mock.calls)).not.toContain(RING_A.split(":")[1]!);
  });

  it("the unsafe switch stores bodies as they came, and only when the config says so", async () => {
    const config = JSON.parse(env.ROUTER_CONFIG as string);
    const worker = createWorker();
    const bindings = {
      ...env,
      PAYLOAD_KEYS: undefined,
      ROUTER_CONFIG: JSON.stringify({ ...config, payloadEncryption: "unsafe-disabled" }),
    } as Bindings;
    const { eventId } = await (
      await call(worker, signedPost(WEEDMAPS_ANY, "weedmaps/canceled-customer"), bindings)
    ).json<{ eventId: string }>();
    const row = await dbOfEvent(eventId)
      .prepare(`SELECT body, payload_key FROM events WHERE id = ?1`)
      .bind(eventId)
      .first<{ body: string; payload_key: string | null }>();
    expect(row).toEqual({ body: fixture("weedmaps/canceled-customer").body, payload_key: null });
    // The sample config keeps it on.
    expect(JSON.parse(env.ROUTER_CONFIG as string).payloadEncryption ?? "required").toBe("required");
  });
});

// Issue #24: payloads are compressed before they are encrypted (src/core/envelope.ts), so a row takes less of D1.
describe("compressed before it is encrypted", () => {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const NEW_ID = "evt_00000000000000000000000000000024";

  /** What the same bytes took sealed before compression: `pe1:` and the base64 of IV, ciphertext and tag. */
  const pe1Length = (bytes: number) => "pe1:".length + Math.ceil((12 + bytes + 16) / 3) * 4;

  /**
   * A Weedmaps Create of 4,464 bytes from the fixtures, near the 4.3 KB of issue #24: the create fixture with eight
   * line items, the fixtures' three in turn, each with ids of its own, as an order of several items has.
   */
  function largerCreate(): string {
    const order = JSON.parse(fixture("weedmaps/create").body);
    const items = new Map<string, Record<string, unknown>>();
    for (const [, f] of fixturesOf("weedmaps"))
      for (const item of JSON.parse(f.body).lineItems) items.set(item.id, item);
    const distinct = [...items.values()];
    order.orderId = "9763824";
    order.lineItems = Array.from({ length: 8 }, (_, i) => ({
      ...distinct[i % distinct.length],
      id: `li_${90001 + i}`,
      externalId: `${distinct[i % distinct.length]!.externalId}-${i}`,
    }));
    return JSON.stringify(order);
  }

  /** The test ring's data key for an event, as only a holder of PAYLOAD_KEYS has it. */
  async function dataKeyOf(payloads: EventPayloads) {
    const protection = await testProtection();
    if (protection.mode !== "encrypted") throw new Error("the test ring encrypts");
    return openDataKey(protection.ring, payloads.eventId, payloads.keyColumns.wrapped!);
  }

  /** Any bytes sealed with the event's data key under either prefix: what an attacker holding the ring could store. */
  async function sealAs(payloads: EventPayloads, prefix: "pe1:" | "pe2:", field: PayloadField, plain: Uint8Array) {
    const { key } = await dataKeyOf(payloads);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const additionalData = encoder.encode(`${prefix}${field}:${payloads.eventId}`);
    const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData }, key, plain));
    const out = new Uint8Array(iv.length + sealed.length);
    out.set(iv);
    out.set(sealed, iv.length);
    return `${prefix}${encodeBase64(out)}`;
  }

  /** What `pe2:` encrypts: the length the data says it opens to, then raw DEFLATE data. */
  function withLength(length: number, deflated: Uint8Array): Uint8Array {
    const out = new Uint8Array(4 + deflated.length);
    new DataView(out.buffer).setUint32(0, length);
    out.set(deflated, 4);
    return out;
  }

  /**
   * Raw DEFLATE data that opens to `runs` × 258 zero bytes (plus one) from 13 bits a run: one fixed-Huffman block of a
   * literal 0, then the longest match (length 258, distance 1) repeated. 400,000 runs: 650 KB that open to 103 MB.
   */
  function deflateBomb(runs: number): Uint8Array {
    const out: number[] = [];
    let bits = 0;
    let count = 0;
    const put = (value: number, length: number) => {
      bits |= value << count;
      count += length;
      for (; count >= 8; count -= 8, bits >>>= 8) out.push(bits & 0xff);
    };
    // Huffman codes go most significant bit first, into a stream that is read least significant bit first.
    const code = (value: number, length: number) => {
      for (let i = length - 1; i >= 0; i--) put((value >> i) & 1, 1);
    };
    put(1, 1); // the last block
    put(1, 2); // fixed Huffman codes
    code(0b00110000, 8); // literal 0
    for (let i = 0; i < runs; i++) {
      code(0b11000101, 8); // length 258
      code(0, 5); // distance 1
    }
    code(0, 7); // end of block
    if (count > 0) out.push(bits & 0xff);
    return Uint8Array.from(out);
  }

  it("bodies, Draft answers and excerpts read back exactly: compressed (pe2:) where that is smaller, else as given (pe1:)", async () => {
    const payloads = await EventPayloads.create(await testProtection(), NEW_ID);
    const body = encoder.encode(largerCreate());
    const answer = encoder.encode(fixture("weedmaps/draft").body);
    const page = `<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>`;
    // Bytes that are not text, and bytes that do not compress (random): both come back as they went in.
    const binary = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) % 256);
    const random = crypto.getRandomValues(new Uint8Array(4096));

    const sealedBody = String(await payloads.seal("body", body));
    const sealedAnswer = String(await payloads.seal("answer", answer));
    const sealedPage = await payloads.sealText("excerpt", page);
    const sealedOk = await payloads.sealText("excerpt", "ok");
    const sealedBinary = String(await payloads.seal("body", binary));
    const sealedRandom = String(await payloads.seal("body", random));
    expect(
      [sealedBody, sealedAnswer, sealedPage, sealedOk, sealedBinary, sealedRandom].map((v) => v.slice(0, 4)),
    ).toEqual(["pe2:", "pe2:", "pe2:", "pe1:", "pe2:", "pe1:"]);
    expect(sealedBody.length).toBeLessThan(pe1Length(body.length) / 2);
    expect(sealedRandom.length).toBe(pe1Length(random.length));

    expect(decoder.decode(await payloads.open("body", sealedBody))).toBe(decoder.decode(body));
    expect(decoder.decode(await payloads.open("answer", sealedAnswer))).toBe(fixture("weedmaps/draft").body);
    expect(await payloads.openText("excerpt", sealedPage)).toBe(page);
    expect(await payloads.openText("excerpt", sealedOk)).toBe("ok");
    expect(await payloads.open("body", sealedBinary)).toEqual(binary);
    expect(await payloads.open("body", sealedRandom)).toEqual(random);
  });

  it("a row the code before compression wrote (pe1: body, answer and excerpt) still reads, in storage and through the admin API", async () => {
    const old = SEALED_BEFORE_COMPRESSION;
    const worker = createWorker();
    stubDestinations(() => new Response("busy", { status: 503 }));
    const { eventId } = await (await call(worker, signedPost(WEEDMAPS_CREATE, "weedmaps/create"))).json<{
      eventId: string;
    }>();
    await deliver(worker, eventId, ["pos"]);
    vi.restoreAllMocks();
    // The row becomes the old one: its id, data key, body, answer and the one excerpt of its attempt log. Ids of the
    // old form live in shard 0 only, where this order's events are placed.
    expect(dbOfEvent(eventId)).toBe(env.DB);
    const stored = await env.DB.prepare(`SELECT deliveries FROM events WHERE id = ?1`)
      .bind(eventId)
      .first<{ deliveries: string }>();
    const deliveries = JSON.parse(stored!.deliveries) as {
      log: { responseExcerpt: string | null; responseHeaders?: string }[];
    }[];
    deliveries[0]!.log[0]!.responseExcerpt = old.excerpt;
    // That code kept no response headers.
    delete deliveries[0]!.log[0]!.responseHeaders;
    await env.DB.prepare(
      `UPDATE events SET id = ?2, payload_key = ?3, payload_dek = ?4, body = ?5, draft_answer = ?6, deliveries = ?7 WHERE id = ?1`,
    )
      .bind(eventId, old.eventId, old.payloadKey, old.payloadDek, old.body, old.answer, JSON.stringify(deliveries))
      .run();

    const sha256 = async (bytes: Uint8Array) =>
      Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) =>
        b.toString(16).padStart(2, "0"),
      ).join("");
    const { body, answer, payloads } = await storedPayloads(old.eventId);
    expect(await sha256(body!)).toBe(old.bodySha256);
    expect(await sha256(answer!)).toBe(old.answerSha256);
    expect(await payloads.openText("excerpt", old.excerpt)).toBe(old.excerptText);

    const res = await call(
      worker,
      admin("GET", `/events/${old.eventId}?reveal=true`, {
        headers: { "x-reveal-token": env.ADMIN_REVEAL_TOKEN as string },
      }),
    );
    expect(res.status).toBe(200);
    const shown = await res.json<{
      event: { payload: { data: string } };
      deliveries: { attemptLog: { responseExcerpt: string }[] }[];
    }>();
    expect(shown.event.payload.data).toBe(decoder.decode(body!));
    expect(shown.deliveries.flatMap((d) => d.attemptLog.map((a) => a.responseExcerpt))).toEqual([old.excerptText]);
  });

  it("a compressed value that is altered, relabelled pe1:, opened as another field or for another event does not open", async () => {
    const protection = await testProtection();
    const payloads = await EventPayloads.create(protection, NEW_ID);
    const sealed = String(await payloads.seal("body", encoder.encode(largerCreate())));
    expect(sealed.startsWith("pe2:")).toBe(true);
    const at = Math.floor(sealed.length / 2);
    const altered = `${sealed.slice(0, at)}${sealed[at] === "A" ? "B" : "A"}${sealed.slice(at + 1)}`;
    const notAuthentic = { name: "PayloadKeyError", reason: "not_authentic" };
    await expect(payloads.open("body", altered)).rejects.toMatchObject(notAuthentic);
    // The prefix is bound: a pe2: value passed off as pe1: (as the bytes as given), or a pe1: one as pe2:, fails.
    await expect(payloads.open("body", `pe1:${sealed.slice(4)}`)).rejects.toMatchObject(notAuthentic);
    const old = await EventPayloads.open(
      protection,
      SEALED_BEFORE_COMPRESSION.eventId,
      SEALED_BEFORE_COMPRESSION.payloadDek,
    );
    await expect(old.open("body", `pe2:${SEALED_BEFORE_COMPRESSION.body.slice(4)}`)).rejects.toMatchObject(
      notAuthentic,
    );
    await expect(payloads.open("answer", sealed)).rejects.toMatchObject(notAuthentic);
    // For another event: with the same data key (the event id is bound), or with that event's own.
    const key = await dataKeyOf(payloads);
    await expect(openField(key, "evt_00000000000000000000000000000025", "body", sealed)).rejects.toMatchObject(
      notAuthentic,
    );
    const other = await EventPayloads.create(protection, "evt_00000000000000000000000000000025");
    await expect(other.open("body", sealed)).rejects.toMatchObject(notAuthentic);
  });

  it("refuses, as payload_unreadable, a value that opens to more than the largest body, without inflating all of it", async () => {
    const payloads = await EventPayloads.create(await testProtection(), NEW_ID);
    const tooLarge = { name: "PayloadKeyError", reason: "too_large" };
    expect(MAX_OPENED_BYTES).toBe(700_000); // the config schema's ceiling of limits.maxBodyBytes
    const bomb = deflateBomb(400_000); // opens to 103 MB
    // Saying so: refused before inflating anything.
    await expect(
      payloads.open("body", await sealAs(payloads, "pe2:", "body", withLength(MAX_OPENED_BYTES + 1, bomb))),
    ).rejects.toMatchObject(tooLarge);
    // Saying less: refused at the first slice past what it said, or past the bound, having fed in a few KB of 650.
    const written = vi.spyOn(WritableStreamDefaultWriter.prototype, "write");
    for (const said of [4096, MAX_OPENED_BYTES]) {
      const sealed = await sealAs(payloads, "pe2:", "body", withLength(said, bomb));
      written.mockClear();
      await expect(payloads.open("body", sealed)).rejects.toMatchObject(tooLarge);
      const fed = written.mock.calls.reduce((sum, [chunk]) => sum + (chunk as Uint8Array).byteLength, 0);
      expect(fed).toBeGreaterThan(0);
      expect(fed).toBeLessThanOrEqual(8 * 1024);
    }
    written.mockRestore();
    // The bomb's first bytes open as it says, so the refusals above are the bound's and not a decoding error.
    const small = await payloads.open(
      "body",
      await sealAs(payloads, "pe2:", "body", withLength(1 + 258 * 10, deflateBomb(10))),
    );
    expect(small).toEqual(new Uint8Array(1 + 258 * 10));
    // Cut short, opening to less than it says, not DEFLATE data, or too short to say anything: malformed.
    const malformed = { name: "PayloadKeyError", reason: "malformed" };
    for (const plain of [
      withLength(1 + 258 * 10, deflateBomb(10).subarray(0, 5)),
      withLength(1 + 258 * 11, deflateBomb(10)),
      withLength(100, encoder.encode("not deflate data, but authentic all the same")),
      new Uint8Array(3),
    ]) {
      await expect(payloads.open("body", await sealAs(payloads, "pe2:", "body", plain))).rejects.toMatchObject(
        malformed,
      );
    }

    // Through the Worker: the stored bomb answers 500 payload_unreadable.
    const worker = createWorker();
    const { eventId } = await (await call(worker, signedPost(WEEDMAPS_CREATE, "weedmaps/create"))).json<{
      eventId: string;
    }>();
    const own = (await storedPayloads(eventId)).payloads;
    await dbOfEvent(eventId)
      .prepare(`UPDATE events SET body = ?2 WHERE id = ?1`)
      .bind(eventId, await sealAs(own, "pe2:", "body", withLength(4096, bomb)))
      .run();
    const res = await call(worker, admin("GET", `/events/${eventId}`));
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ error: { code: "payload_unreadable" } });
  });

  it("through the Worker, a Weedmaps Create's stored body takes less than half of what it took sealed as given", async () => {
    const worker = createWorker();
    for (const body of [fixture("weedmaps/create").body, largerCreate()]) {
      const request = new Request(`${ROUTER}${WEEDMAPS_CREATE}`, {
        method: "POST",
        body,
        headers: { "content-type": "application/json", Signature: await weedmapsSignature(body) },
      });
      const res = await call(worker, request);
      expect(res.status).toBe(200);
      const { eventId } = await res.json<{ eventId: string }>();
      const row = await dbOfEvent(eventId)
        .prepare(`SELECT body, length(body) AS size FROM events WHERE id = ?1`)
        .bind(eventId)
        .first<{ body: string; size: number }>();
      const bytes = encoder.encode(body).length;
      expect(row!.body.startsWith("pe2:"), `${bytes} bytes`).toBe(true);
      expect(row!.size, `${bytes} bytes`).toBeLessThan(pe1Length(bytes) / 2);
      expect(decoder.decode((await storedPayloads(eventId)).body!)).toBe(body);
    }
  });
});

describe("key rotation", () => {
  it("writes with A, adds B first, re-wraps in bounded slices, retires A, and every payload reads back without A", async () => {
    const clock = new ManualClock(Date.now());
    const worker = createWorker({ clock });
    const withA = { ...env, PAYLOAD_KEYS: RING_A } as Bindings;
    const withBA = { ...env, PAYLOAD_KEYS: RING_BA } as Bindings;
    const withB = { ...env, PAYLOAD_KEYS: KEY_B } as Bindings;
    const slice = {
      ...JSON.parse(env.ROUTER_CONFIG as string),
      retention: { payloadDays: 30, eventDays: 400, sliceRows: 10 },
    };
    const small = (b: Bindings) => ({ ...b, ROUTER_CONFIG: JSON.stringify(slice) }) as Bindings;

    const underA: string[] = [];
    for (const name of ["weedmaps/create", "weedmaps/in-progress", "weedmaps/complete", "weedmaps/canceled-customer"]) {
      const res = await call(worker, signedPost(WEEDMAPS_ANY, name), withA);
      underA.push((await res.json<{ eventId: string }>()).eventId);
    }
    // And a V4 envelope of three orders and the other Leaf Trade types, so a lap takes several slices of 10.
    for (const name of [
      "leaftrade/order-v4--three-orders",
      "leaftrade/order-v3",
      "leaftrade/product-issue",
      "leaftrade/product-issue--reported",
      "leaftrade/order-v4",
    ]) {
      expect(
        (await call(worker, signedPost(`/webhooks/leaftrade/${name.split("/")[1]!.replace(/--.*$/, "")}`, name), withA))
          .status,
      ).toBe(200);
    }
    for (let i = 0; i < 6; i++) {
      const body = fixture("weedmaps/create").body.replace("9763822", `rotation-${i}`);
      const res = await call(
        worker,
        new Request(`${ROUTER}${WEEDMAPS_CREATE}`, {
          method: "POST",
          body,
          headers: { "content-type": "application/json", Signature: await weedmapsSignature(body) },
        }),
        withA,
      );
      expect(res.status).toBe(200);
    }
    expect((await storedPayloads(underA[0]!)).keyId).toBe("test-a");

    // B first: new writes use it, A still opens what it wrapped.
    const underB = (
      await (
        await call(worker, signedPost(WEEDMAPS_CREATE, "weedmaps/create-other-order"), small(withBA))
      ).json<{ eventId: string }>()
    ).eventId;
    expect((await storedPayloads(underB, await testProtection(RING_BA))).keyId).toBe("test-b");
    // Dropping A now would strand its rows: the ring is refused.
    const refused = await call(worker, signedPost(WEEDMAPS_ANY, "weedmaps/failed"), small(withB));
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ error: { code: "source_misconfigured" } });

    // The walk re-wraps every row in slices of 10, lap after lap; A retires once a lap started past its grace finds none.
    // In both shards: every shard's walk runs each Cron, with its own cursor.
    const inShards = async (sql: string) => {
      const counts = await Promise.all([env.DB, env.SHARD_1].map((db) => db.prepare(sql).first<number>("n")));
      return counts.reduce<number>((sum, n) => sum + (n ?? 0), 0);
    };
    const total = await inShards(`SELECT COUNT(*) AS n FROM events`);
    const retired = () =>
      env.DB.prepare(`SELECT retired_at FROM payload_keys WHERE key_id = 'test-a'`).first<number | null>("retired_at");
    let runs = 0;
    for (; runs < 50 && (await retired()) === null; runs++) {
      await cron(worker, small(withBA));
      clock.advance(5 * 60_000);
    }
    // Bounded slices: more than one run per lap, and A retired only after the grace (10 minutes, two runs here).
    expect(total).toBeGreaterThan(10);
    expect(runs).toBeGreaterThan(3);
    expect(await inShards(`SELECT COUNT(*) AS n FROM events WHERE payload_key = 'test-a'`)).toBe(0);
    const keys = await (await call(worker, admin("GET", "/keys"), small(withBA))).json<{
      primary: string;
      keys: { keyId: string; state: string; removable: boolean; lastLapRows: number }[];
      walk: { lastLap: { walked: number; byKey: Record<string, number> } };
    }>();
    expect(keys.primary).toBe("test-b");
    expect(keys.keys.find((k) => k.keyId === "test-a")).toMatchObject({
      state: "retired",
      removable: true,
      lastLapRows: 0,
    });
    expect(keys.walk.lastLap.walked).toBe(total);
    expect(keys.walk.lastLap.byKey["test-b"]).toBeGreaterThanOrEqual(underA.length + 1);
    expect(JSON.stringify(keys)).not.toContain(KEY_B.split(":")[1]!);

    // A removed: ingest takes the ring, and every payload, old and new, still reads back through the admin API.
    expect((await call(worker, signedPost(WEEDMAPS_ANY, "weedmaps/failed"), small(withB))).status).toBe(200);
    for (const [id, name] of [
      ...underA.map((id, i) => [
        id,
        ["weedmaps/create", "weedmaps/in-progress", "weedmaps/complete", "weedmaps/canceled-customer"][i]!,
      ]),
      [underB, "weedmaps/create-other-order"],
    ] as const) {
      const res = await call(
        worker,
        admin("GET", `/events/${id}?reveal=true`, { headers: { "x-reveal-token": env.ADMIN_REVEAL_TOKEN as string } }),
        small(withB),
      );
      expect(res.status, id).toBe(200);
      expect((await res.json<{ event: { payload: { data: string } } }>()).event.payload.data).toBe(fixture(name).body);
    }
  });
  it("walks every shard each run, a bounded slice from each shard's own cursor, and retires a key only when no shard's last lap found it", async () => {
    const clock = new ManualClock(Date.now());
    const worker = createWorker({ clock });
    const config = JSON.stringify({
      ...JSON.parse(env.ROUTER_CONFIG as string),
      retention: { payloadDays: 30, eventDays: 400, sliceRows: 10 },
    });
    const withA = { ...env, PAYLOAD_KEYS: RING_A, ROUTER_CONFIG: config } as Bindings;
    const withBA = { ...env, PAYLOAD_KEYS: RING_BA, ROUTER_CONFIG: config } as Bindings;
    for (let i = 0; i < 32; i++) {
      const body = fixture("weedmaps/create").body.replace("9763822", `walk-${i}`);
      const res = await call(
        worker,
        new Request(`${ROUTER}${WEEDMAPS_CREATE}`, {
          method: "POST",
          body,
          headers: { "content-type": "application/json", Signature: await weedmapsSignature(body) },
        }),
        withA,
      );
      expect(res.status).toBe(200);
    }
    const shards = [env.DB, env.SHARD_1];
    const idsIn = async (db: D1Database) =>
      (await db.prepare(`SELECT id FROM events ORDER BY id`).all<{ id: string }>()).results.map((r) => r.id);
    const before = await Promise.all(shards.map(idsIn));
    // The orders spread over both shards, each with more rows than one slice.
    for (const ids of before) expect(ids.length).toBeGreaterThan(10);
    const walkState = async (db: D1Database) =>
      JSON.parse(
        (await db.prepare(`SELECT value FROM sweeper_state WHERE name = 'maintenance_walk'`).first<string>("value"))!,
      ) as { after: string; lap: { walked: number }; lastLap: { byKey: Record<string, number> } | null };

    // One run: ten rows of each shard, from each shard's own cursor, kept in that shard's own database.
    await cron(worker, withBA);
    for (const [i, db] of shards.entries()) {
      const state = await walkState(db);
      expect(state.after).toBe(before[i]![9]);
      expect(state.lap.walked).toBe(10);
    }
    expect(await env.DB.prepare(`SELECT COUNT(*) AS n FROM events WHERE payload_key = 'test-b'`).first("n")).toBe(10);
    expect(await env.SHARD_1.prepare(`SELECT COUNT(*) AS n FROM events WHERE payload_key = 'test-b'`).first("n")).toBe(
      10,
    );

    // A row of shard 1 whose data key does not open for it (moved from another row): the walk cannot re-wrap it,
    // so every lap of shard 1 finds it under A, and A must stay in the ring however often shard 0 finds none.
    const stuck = `evt_1_ffffffff${"0".repeat(24)}`;
    await env.SHARD_1.prepare(
      `INSERT INTO events (id, idempotency_key, ingest_id, source, event_type, routing, content_type, body, body_sha256,
         received_at, payload_key, payload_dek)
       SELECT ?1, ?1, ingest_id, source, event_type, routing, content_type, body, body_sha256, received_at, payload_key,
         payload_dek FROM events WHERE id = ?2`,
    )
      .bind(stuck, before[1]!.at(-1))
      .run();
    const retired = () =>
      env.DB.prepare(`SELECT retired_at FROM payload_keys WHERE key_id = 'test-a'`).first<number | null>("retired_at");
    for (let run = 0; run < 12; run++) {
      clock.advance(5 * 60_000);
      await cron(worker, withBA);
    }
    expect(await retired()).toBeNull();
    expect((await walkState(env.DB)).lastLap!.byKey["test-a"] ?? 0).toBe(0);
    expect((await walkState(env.SHARD_1)).lastLap!.byKey["test-a"]).toBe(1);
    const keys = await (await call(worker, admin("GET", "/keys"), withBA)).json<{
      keys: { keyId: string; state: string; removable: boolean; lastLapRows: number }[];
      walk: { lastLap: { walked: number } };
    }>();
    expect(keys.keys.find((k) => k.keyId === "test-a")).toMatchObject({
      state: "draining",
      removable: false,
      lastLapRows: 1,
    });
    // The last complete lap is every shard's: each shard's rows, the stuck one included.
    expect(keys.walk.lastLap.walked).toBe(before[0]!.length + before[1]!.length + 1);

    // Once no shard holds a row under A, the next complete laps retire it.
    await env.SHARD_1.prepare(`DELETE FROM events WHERE id = ?1`).bind(stuck).run();
    let runs = 0;
    for (; runs < 12 && (await retired()) === null; runs++) {
      clock.advance(5 * 60_000);
      await cron(worker, withBA);
    }
    expect(await retired()).not.toBeNull();
    expect((await walkState(env.SHARD_1)).lastLap!.byKey["test-a"] ?? 0).toBe(0);
  });
});

describe("retention", () => {
  it("purges payloads past the horizon, still dedupes a retry of a purged event, answers its replay 410, and deletes rows past the event horizon", async () => {
    const clock = new ManualClock(Date.now());
    const worker = createWorker({ clock });
    stubDestinations(() => new Response("saved: +15555550123", { status: 200 }));
    const first = await (await call(worker, signedPost(WEEDMAPS_CREATE, "weedmaps/create"))).json<{
      eventId: string;
    }>();
    await deliver(worker, first.eventId, ["pos", "erp"]);

    clock.advance(29 * DAY_MS);
    await cron(worker);
    expect((await storedPayloads(first.eventId)).body).not.toBeNull();

    clock.advance(2 * DAY_MS);
    await cron(worker);
    const row = await dbOfEvent(first.eventId)
      .prepare(
        `SELECT body, draft_answer, payload_dek, payload_purged_at, body_sha256, idempotency_key, deliveries FROM events WHERE id = ?1`,
      )
      .bind(first.eventId)
      .first<Record<string, unknown>>();
    expect(row).toMatchObject({
      body: "",
      draft_answer: null,
      payload_dek: null,
      payload_purged_at: clock.now(),
      body_sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(String(row!.deliveries)).not.toMatch(/pe[12]:/);
    expect(JSON.parse(String(row!.deliveries)).map((d: { status: string }) => d.status)).toEqual([
      "delivered",
      "delivered",
    ]);

    // The provider retries the same order: still a duplicate, still acknowledged.
    const retry = await (await call(worker, signedPost(WEEDMAPS_CREATE, "weedmaps/create"))).json();
    expect(retry).toMatchObject({ received: true, eventId: first.eventId, duplicate: true });
    // A replay has nothing to send: a clear 410, not a crash.
    const replay = await call(worker, admin("POST", `/events/${first.eventId}/replay`, { body: {} }));
    expect(replay.status).toBe(410);
    expect(await replay.json()).toMatchObject({ error: { code: "payload_purged" } });
    const shown = await (await call(worker, admin("GET", `/events/${first.eventId}`))).json<{
      event: { payload: unknown; payloadPurgedAt: string };
    }>();
    expect(shown.event).toMatchObject({ payload: null, payloadPurgedAt: new Date(clock.now()).toISOString() });

    clock.advance(400 * DAY_MS);
    await cron(worker);
    expect(
      await dbOfEvent(first.eventId)
        .prepare(`SELECT COUNT(*) AS n FROM events WHERE id = ?1`)
        .bind(first.eventId)
        .first("n"),
    ).toBe(0);
  });

  it("never purges an event whose delivery is still pending", async () => {
    const clock = new ManualClock(Date.now());
    const worker = createWorker({ clock });
    const { eventId } = await (await call(worker, signedPost(WEEDMAPS_CREATE, "weedmaps/create-other-order"))).json<{
      eventId: string;
    }>();
    clock.advance(500 * DAY_MS);
    await cron(worker);
    expect((await storedPayloads(eventId)).body).not.toBeNull();
  });

  it("a customer's deletion request purges every event of the order now, settles what was pending, and is audited", async () => {
    const worker = createWorker();
    const created = await (await call(worker, signedPost(WEEDMAPS_CREATE, "weedmaps/create"))).json<{
      eventId: string;
    }>();
    const canceled = await (await call(worker, signedPost(WEEDMAPS_ANY, "weedmaps/canceled-customer"))).json<{
      eventId: string;
    }>();
    const other = await (await call(worker, signedPost(WEEDMAPS_CREATE, "weedmaps/create-other-order"))).json<{
      eventId: string;
    }>();
    const orderId = JSON.parse(fixture("weedmaps/create").body).orderId as string;
    expect(JSON.parse(fixture("weedmaps/canceled-customer").body).orderId).toBe(orderId);

    const res = await call(
      worker,
      admin("POST", "/customer-data/purge", { body: { providerOrderId: orderId, reason: "ticket PRIV-42" } }),
    );
    expect(res.status).toBe(200);
    const result = await res.json<{ purged: string[]; auditId: string; alreadyPurged: number }>();
    expect(result.purged.sort()).toEqual([created.eventId, canceled.eventId].sort());
    for (const id of result.purged) expect((await storedPayloads(id)).body).toBeNull();
    expect((await storedPayloads(other.eventId)).body).not.toBeNull();
    const states = await dbOfEvent(created.eventId)
      .prepare(`SELECT deliveries FROM events WHERE id = ?1`)
      .bind(created.eventId)
      .first<string>("deliveries");
    expect(JSON.parse(states!).map((d: { status: string; lastError: string }) => [d.status, d.lastError])).toEqual([
      ["dead", "payload_purged"],
      ["dead", "payload_purged"],
    ]);

    const again = await (
      await call(worker, admin("POST", "/customer-data/purge", { body: { providerOrderId: orderId } }))
    ).json<{ purged: string[]; alreadyPurged: number }>();
    expect(again).toMatchObject({ purged: [], alreadyPurged: 2 });
    const audit = await (await call(worker, admin("GET", "/audit"))).json<{
      entries: { id: string; action: string; tokenId: string; detail: Record<string, unknown> }[];
    }>();
    const entry = audit.entries.find((e) => e.id === result.auditId)!;
    expect(entry).toMatchObject({
      action: "customer_purge",
      tokenId: expect.stringMatching(/^tok_[0-9a-f]{16}$/),
      detail: { providerOrderId: orderId, reason: "ticket PRIV-42" },
    });
    expect(JSON.stringify(audit)).not.toContain(env.ADMIN_TOKEN as string);
  });
});

describe("shown only on purpose", () => {
  async function ingestWithExcerpt(worker: Worker): Promise<string> {
    stubDestinations(() => new Response(`{"error":"duplicate customer Jordan Rivera +15555550123"}`, { status: 503 }));
    const { eventId } = await (await call(worker, signedPost(WEEDMAPS_CREATE, "weedmaps/create"))).json<{
      eventId: string;
    }>();
    await deliver(worker, eventId, ["pos"]);
    vi.restoreAllMocks();
    return eventId;
  }

  it("admin reads are redacted by default: the PII paths and the destination's excerpt", async () => {
    const worker = createWorker();
    const eventId = await ingestWithExcerpt(worker);
    const res = await call(worker, admin("GET", `/events/${eventId}`));
    const text = await res.text();
    expect(res.status).toBe(200);
    const shown = JSON.parse(text) as {
      event: { revealed: boolean; payload: { data: string; redacted: string[] } };
      deliveries: { attemptLog: { responseExcerpt: string }[] }[];
    };
    expect(shown.event.revealed).toBe(false);
    expect(shown.event.payload.redacted).toEqual([
      "customer",
      "customerNote",
      "documents",
      "payments",
      "shippingAddress",
    ]);
    expect(JSON.parse(shown.event.payload.data)).toMatchObject({
      orderId: "9763822",
      customer: "[redacted]",
      seller: { id: "4242" },
    });
    // The destination's words stay readable; the customer's values it echoed do not.
    expect(shown.deliveries.flatMap((d) => d.attemptLog.map((a) => a.responseExcerpt))).toEqual([
      '{"error":"duplicate customer [redacted] [redacted] [redacted]"}',
    ]);
    expect(shownIn(text, [...PII, "Jordan Rivera"])).toEqual([]);
  });

  it("a reveal with the right token shows the stored bytes and is audited; without it 401, with a wrong one 403, each audited as a failure", async () => {
    const worker = createWorker();
    const eventId = await ingestWithExcerpt(worker);
    const path = `/events/${eventId}?reveal=true`;
    const missing = await call(worker, admin("GET", path));
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ error: { code: "reveal_token_required" } });
    const wrong = await call(worker, admin("GET", path, { headers: { "x-reveal-token": "not-the-reveal-token" } }));
    expect(wrong.status).toBe(403);
    expect(await wrong.json()).toMatchObject({ error: { code: "reveal_forbidden" } });
    // The admin token is not the reveal token.
    expect(
      (await call(worker, admin("GET", path, { headers: { "x-reveal-token": env.ADMIN_TOKEN as string } }))).status,
    ).toBe(403);
    // Revealing is off when the secret is unset.
    expect(
      (
        await call(worker, admin("GET", path, { headers: { "x-reveal-token": env.ADMIN_REVEAL_TOKEN as string } }), {
          ...env,
          ADMIN_REVEAL_TOKEN: undefined,
        } as Bindings)
      ).status,
    ).toBe(403);
    const before = await env.DB.prepare(`SELECT action FROM audit_log WHERE event_id = ?1`)
      .bind(eventId)
      .all<{ action: string }>();
    // Issue #22: every refused token is audited (without the token) and counted against the client.
    expect(before.results.map((r) => r.action)).toEqual(["reveal_failed", "reveal_failed", "reveal_failed"]);

    const ok = await call(
      worker,
      admin("GET", path, { headers: { "x-reveal-token": env.ADMIN_REVEAL_TOKEN as string } }),
    );
    expect(ok.status).toBe(200);
    const shown = await ok.json<{
      event: { revealed: boolean; payload: { data: string; redacted: string[] } };
      deliveries: { attemptLog: { responseExcerpt: string }[] }[];
    }>();
    expect(shown.event).toMatchObject({
      revealed: true,
      payload: { data: fixture("weedmaps/create").body, redacted: [] },
    });
    expect(shown.deliveries.flatMap((d) => d.attemptLog.map((a) => a.responseExcerpt))).toEqual([
      expect.stringContaining("+15555550123"),
    ]);

    const audit = await (await call(worker, admin("GET", `/audit?eventId=${eventId}`))).json<{
      entries: { action: string; eventId: string; tokenId: string; at: string }[];
    }>();
    expect(audit.entries.filter((e) => e.action === "reveal")).toEqual([
      {
        id: expect.any(String),
        action: "reveal",
        eventId,
        tokenId: expect.stringMatching(/^tok_[0-9a-f]{16}$/),
        at: expect.any(String),
        detail: expect.any(Object),
      },
    ]);
    const raw = await env.DB.prepare(`SELECT * FROM audit_log`).all();
    expect(JSON.stringify(raw.results)).not.toContain(env.ADMIN_REVEAL_TOKEN as string);
  });

  it("a Leaf Trade order's buyer contact is redacted in each order of an envelope", async () => {
    const worker = createWorker();
    const { eventId } = await (
      await call(worker, signedPost("/webhooks/leaftrade/order-v4", "leaftrade/order-v4--with-buyer"))
    ).json<{ eventId: string }>();
    const shown = await (await call(worker, admin("GET", `/events/${eventId}`))).json<{
      event: { payload: { data: string; redacted: string[] } };
    }>();
    expect(shown.event.payload.redacted).toEqual(["results.0.buyer"]);
    expect(shown.event.payload.data).not.toContain("casey.nguyen@greenvalley.example");
    expect(JSON.parse(shown.event.payload.data).results[0].dispensary_location.license_number).toBe("C10-0000456-LIC");
  });
});

describe("nothing in logs", () => {
  it("ingest, delivery failures, Draft violations, the dead-letter queue and the admin endpoints log no customer value", async () => {
    const lines: string[] = [];
    for (const level of ["log", "info", "warn", "error", "debug"] as const)
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
    const worker = createWorker();
    const debug = { ...env, LOG_LEVEL: "debug" } as unknown as Bindings;

    // Ingest, every fixture, and a destination failing with the customer in its answer.
    stubDestinations((request) =>
      new URL(request.url).pathname.includes("draft")
        ? // A responder that changes the customer: a Draft violation.
          request.json().then((order) =>
            Response.json({
              ...(order as object),
              customer: { firstName: "Someone", phone: "+15555550123", dob: "1990-04-12" },
            }),
          )
        : new Response(`{"error":"customer Jordan Rivera +15555550123 1990-04-12 exists"}`, { status: 500 }),
    );
    const ids: string[] = [];
    for (const name of Object.keys(ALL_FIXTURES)) {
      const [provider, event] = name.split("/") as [string, string];
      const path =
        provider === "weedmaps"
          ? `/webhooks/weedmaps${event === "draft" ? "/draft" : ""}?merchant_id=4242`
          : `/webhooks/leaftrade/${event.replace(/--.*$/, "")}`;
      const json = await (await call(worker, signedPost(path, name), debug)).json<{
        eventId?: string;
        events?: { eventId: string }[];
      }>();
      ids.push(...(json.events?.map((e) => e.eventId) ?? (json.eventId ? [json.eventId] : [])));
    }
    expect(lines.some((l) => l.includes("draft_answer_rejected"))).toBe(true);
    for (const id of ids) await deliver(worker, id, ["pos", "erp"], debug);
    expect(lines.some((l) => l.includes("delivery_retry_scheduled"))).toBe(true);

    // The dead-letter queue.
    const dlq = createMessageBatch("webhook-deliveries-dlq", [
      {
        id: "dlq-1",
        timestamp: new Date(),
        attempts: 1,
        body: { v: 1, eventId: ids[0], deliveries: [{ destination: "pos", generation: 1 }] },
      },
    ]);
    await worker.queue(dlq, debug);
    expect(lines.some((l) => l.includes("dead_letter_received"))).toBe(true);

    // The admin endpoints: redacted and revealed reads, a purge, the audit log, and a bad request.
    await call(worker, admin("GET", `/events/${ids[0]}`), debug);
    await call(
      worker,
      admin("GET", `/events/${ids[0]}?reveal=true`, {
        headers: { "x-reveal-token": env.ADMIN_REVEAL_TOKEN as string },
      }),
      debug,
    );
    await call(worker, admin("POST", "/customer-data/purge", { body: { providerOrderId: "9763822" } }), debug);
    await call(worker, admin("GET", "/audit"), debug);
    await call(
      worker,
      admin("POST", "/routing/dry-run", {
        body: { source: "weedmaps", merchantId: "1", payload: JSON.parse(fixture("weedmaps/create").body) },
      }),
      debug,
    );
    await call(
      worker,
      admin("POST", "/routing/dry-run", {
        body: { source: "weedmaps", payload: { customer: { dob: "1990-04-12" } }, extra: "x" },
      }),
      debug,
    );

    expect(lines.length).toBeGreaterThan(10);
    const all = lines.join("\n");
    expect(shownIn(all, [...PII, "Jordan Rivera", "+15555550123"])).toEqual([]);
  });
});
