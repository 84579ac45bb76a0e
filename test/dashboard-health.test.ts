import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import { destinationConcern } from "../src/operations/overview.ts";
import type { ControlView } from "../src/operations/destinations.ts";
import { captureDeliveryQueue, ManualClock, post, runQueueOn, stubDestinations, visible } from "./helpers.ts";

/**
 * The overview's health strip, the events list's per-destination pills, and replay / send again behind their
 * confirmations, through the Worker's fetch handler, the real consumer, the destinations' Durable Objects and D1.
 * A file of its own: its storage starts empty, so "healthy" means healthy (test/dashboard.test.ts leaves dead letters).
 * `npm test` shuffles the tests, so each one leaves nothing dead, pending, paused or open behind it.
 */
afterEach(() => vi.restoreAllMocks());

const ORIGIN = "https://router.example.test";
const clock = new ManualClock(Date.now());
const worker = createWorker({ clock });
const ctx = {
  waitUntil: () => undefined,
  passThroughOnException: () => undefined,
  props: {},
} as unknown as ExecutionContext;

function request(method: string, path: string, { cookie, form }: { cookie?: string; form?: Record<string, string> }) {
  const headers: Record<string, string> = {};
  if (cookie) headers.cookie = cookie;
  if (form) {
    headers["content-type"] = "application/x-www-form-urlencoded";
    headers.origin = ORIGIN;
  }
  return worker.fetch(
    new Request(`${ORIGIN}/dashboard${path}`, {
      method,
      headers,
      body: form ? new URLSearchParams(form).toString() : undefined,
      redirect: "manual",
    }),
    env,
    ctx,
  );
}

async function signIn(): Promise<string> {
  const res = await request("POST", "/sign-in", { form: { token: env.ADMIN_TOKEN as string } });
  expect(res.status).toBe(303);
  return res.headers.get("set-cookie")!.split(";")[0]!;
}

const page = async (path: string, cookie: string) => {
  const res = await request("GET", path, { cookie });
  expect(res.status, `GET ${path}`).toBe(200);
  return res.text();
};

/** The health strip's HTML: the section labelled Health. */
const strip = (html: string) =>
  /<section class="health[^"]*" aria-label="Health">[\s\S]*?<\/section>/.exec(html)?.[0] ?? "";

function catchUp(ahead = 1_000) {
  const behind = Date.now() + ahead - clock.now();
  if (behind > 0) clock.advance(behind);
}

/** Runs what was enqueued from `from` on, once: each delivery gets one attempt (a retry waits in the real queue). */
async function attemptOnce(queue: ReturnType<typeof captureDeliveryQueue>, from: number) {
  catchUp();
  const bodies = queue.messages.slice(from).map((m) => m.body);
  if (bodies.length > 0) await runQueueOn(worker, bodies);
  return queue.messages.length;
}

let counter = 0;
async function labEvent(kind: string): Promise<string> {
  const res = await post(
    `/webhooks/lab/${kind}`,
    JSON.stringify({ id: `health-${++counter}-${crypto.randomUUID()}`, kind }),
  );
  expect(res.status).toBe(200);
  return (await res.json<{ eventId: string }>()).eventId;
}

describe("overview health strip", () => {
  it("is one green line while every destination is healthy, before the events", async () => {
    const cookie = await signIn();
    const html = await page("/overview", cookie);
    const health = strip(html);
    expect(health).toContain('class="health health-ok"');
    expect(health).toContain('<span class="pill pill-ok">healthy</span>');
    expect(visible(health)).toMatch(
      /^ ?healthy All \d+ destinations healthy \(paused turned off in the config, so not watched\) · no dead letters · nothing pending ?$/,
    );
    // The strip comes first; the events section (empty here) last.
    const at = (text: string) => html.indexOf(text);
    expect(at('aria-label="Health"')).toBeGreaterThan(-1);
    expect(at('aria-label="Health"')).toBeLessThan(at("Deliveries by destination"));
    expect(at("Deliveries by destination")).toBeLessThan(at("Events by source and type"));
  });

  it("shows a failing destination red with its reason, since when and the next probe; dead letters; a pause; then green again", async () => {
    const queue = captureDeliveryQueue();
    let ctl1Down = true;
    let ctl2Refuses = true;
    stubDestinations((req) => {
      const host = new URL(req.url).hostname;
      if (host === "ctl1.example.test" && ctl1Down) return new Response("down for maintenance", { status: 503 });
      if (host === "ctl2.example.test" && ctl2Refuses)
        return new Response('{"error":"unknown sku"}', {
          status: 400,
          headers: { "content-type": "application/json" },
        });
      return new Response("ok");
    });
    const cookie = await signIn();

    // ctl1 answers 503 to three first attempts in a row: its circuit (3 failures) opens.
    let sent = queue.messages.length;
    for (let i = 0; i < 3; i++) await labEvent("ctl1");
    const ctl1 = queue.messages.slice(sent).map((m) => m.body);
    sent = await attemptOnce(queue, sent);
    // Their retries come back while it is open: held, not attempted.
    await runQueueOn(worker, ctl1, 2);
    // ctl2 refuses (400, permanent): a dead letter at once.
    const dead = await labEvent("ctl2");
    sent = await attemptOnce(queue, sent);

    const html = await page("/overview", cookie);
    const health = strip(html);
    expect(health).toContain('class="health health-bad"');
    const lines = [...health.matchAll(/<li>([\s\S]*?)<\/li>/g)].map((m) => visible(m[1]!).trim());
    expect(lines.find((l) => l.includes("ctl1"))).toMatch(
      /^circuit open ctl1 : http_503 · since \d+ s ago · next probe in \d+ (s|min) · 3 deliveries held since \d+ s ago$/,
    );
    expect(health).toContain('<span class="pill pill-bad">circuit open</span>');
    // Every time is a <time> with the exact UTC time on hover.
    expect(health).toMatch(/<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z" title="\d{4}-/);
    expect(lines.find((l) => l.includes("ctl2"))).toMatch(
      /^dead letters ctl2 : http_400 \(permanent\) · since \d+ s ago · 1 dead letter$/,
    );
    expect(health).toContain('href="/dashboard/dead-letters?destination=ctl2"');
    expect(visible(health)).toMatch(/1 dead letter waiting · oldest pending delivery received \d+ s ago/);

    // A pause, with its reason and who paused.
    expect(
      (await request("POST", "/destinations/ctl3/pause", { cookie, form: { reason: "POS maintenance" } })).status,
    ).toBe(303);
    const paused = [...strip(await page("/overview", cookie)).matchAll(/<li>([\s\S]*?)<\/li>/g)]
      .map((m) => visible(m[1]!).trim())
      .find((l) => l.includes("ctl3"));
    expect(paused).toMatch(/^paused ctl3 : POS maintenance · since \d+ s ago · by tok_[0-9a-f]{16}$/);

    // Fixed: ctl2 accepts, its dead letter is redriven (after its confirmation), ctl3 resumed, ctl1 back and probed.
    ctl2Refuses = false;
    ctl1Down = false;
    expect((await request("POST", "/destinations/ctl3/resume", { cookie, form: {} })).status).toBe(303);
    const unconfirmed = await request("POST", `/events/${dead}/replay`, { cookie, form: { destination: "ctl2" } });
    expect(unconfirmed.headers.get("location")).toBe(`/dashboard/events/${dead}/replay?destination=ctl2`);
    const redrive = await request("POST", `/events/${dead}/replay`, {
      cookie,
      form: { destination: "ctl2", confirm: "1" },
    });
    expect(redrive.headers.get("location")).toBe(`/dashboard/events/${dead}?replayed=ctl2`);
    sent = await attemptOnce(queue, sent);
    // The circuit's cool-down passes; the object's alarm releases the held ctl1 deliveries, the first as its probe.
    clock.advance(61_000);
    const gate = env.DESTINATION_GATE.get(env.DESTINATION_GATE.idFromName("ctl1"));
    for (let round = 0; round < 5; round++) {
      await gate.tick(clock.now());
      sent = await attemptOnce(queue, sent);
    }
    const after = strip(await page("/overview", cookie));
    expect(visible(after)).toMatch(/^ ?healthy All \d+ destinations healthy .* · no dead letters · nothing pending ?$/);
  });
});

describe("events list and sending again", () => {
  it("shows a column of pills per destination, relative times with the exact time on hover, and unrouted as such", async () => {
    const queue = captureDeliveryQueue();
    let erpRefuses = true;
    stubDestinations((req) =>
      new URL(req.url).hostname === "erp.example.test" && erpRefuses
        ? new Response("no", { status: 400 })
        : new Response("ok"),
    );
    const since = new Date().toISOString().slice(0, 23);
    const pair = await labEvent("pair");
    const unrouted = await labEvent("unmatched-kind");
    await attemptOnce(queue, 0);
    const cookie = await signIn();
    const html = await page(`/events?since=${since}`, cookie);
    const head = /<thead>([\s\S]*?)<\/thead>/.exec(html)![1]!;
    expect(visible(head).trim()).toBe("Received Source / type Merchant Order erp pos");
    const rowOf = (id: string) =>
      new RegExp(`<tr><td data-label="Received"><a href="/dashboard/events/${id}">[\\s\\S]*?</tr>`).exec(html)?.[0] ??
      "";
    // The dashboard's clock may run ahead of the one that stamped the events (another test moves it): "1 min ago".
    const paired = rowOf(pair);
    expect(paired).toMatch(/<time datetime="\d{4}-\d\d-\d\dT[\d:.]+Z" title="\d{4}-[^"]+">\d+ (s|min) ago<\/time>/);
    expect(paired).toContain(
      '<td data-label="erp"><span class="pill pill-bad" title="erp: dead, 1 attempt">dead</span>',
    );
    expect(paired).toContain(
      '<td data-label="pos"><span class="pill pill-ok" title="pos: delivered, 1 attempt">delivered</span>',
    );
    const lonely = rowOf(unrouted);
    expect(lonely).toContain(
      '<td data-label="Deliveries" colspan="2"><span class="pill pill-neutral">unrouted</span></td>',
    );
    expect(visible(lonely)).not.toMatch(/0 delivered|0 dead/);

    // Nothing left dead or pending: the health strip's tests read the whole router, in any order.
    erpRefuses = false;
    const sent = queue.messages.length;
    expect((await request("POST", `/events/${pair}/replay`, { cookie, form: { confirm: "1" } })).status).toBe(303);
    await attemptOnce(queue, sent);
  });

  it("replays only what a destination lacks, and sends again to one that has it only through its own confirmation", async () => {
    const queue = captureDeliveryQueue();
    let erpRefuses = true;
    stubDestinations((req) =>
      new URL(req.url).hostname === "erp.example.test" && erpRefuses
        ? new Response("no", { status: 400 })
        : new Response("ok"),
    );
    const eventId = await labEvent("pair");
    let sent = await attemptOnce(queue, 0);
    const cookie = await signIn();

    // Replay (every destination that lacks it): erp, which is dead; pos has it.
    const confirm = visible(await page(`/events/${eventId}/replay`, cookie));
    expect(confirm).toContain("Redrive to erp: it does not have this event yet.");
    expect(confirm).toMatch(
      /erp: dead generation 1, 1 attempt, last answer 400, last error http_400 \(permanent\), ended /,
    );
    expect(confirm).not.toContain("pos:");
    // Looking sends nothing; an older page's button (no confirm) is shown the confirmation first.
    expect(queue.messages.length).toBe(sent);
    const bare = await request("POST", `/events/${eventId}/replay`, { cookie, form: {} });
    expect(bare.headers.get("location")).toBe(`/dashboard/events/${eventId}/replay`);
    expect(queue.messages.length).toBe(sent);

    // Replay named for pos, which has it: sent to send again's own confirmation instead.
    const toPos = await request("GET", `/events/${eventId}/replay?destination=pos`, { cookie });
    expect(toPos.status).toBe(303);
    expect(toPos.headers.get("location")).toBe(`/dashboard/events/${eventId}/send-again?destination=pos`);
    const posted = await request("POST", `/events/${eventId}/replay`, {
      cookie,
      form: { destination: "pos", confirm: "1" },
    });
    expect(posted.headers.get("location")).toBe(`/dashboard/events/${eventId}/send-again?destination=pos`);
    expect(queue.messages.length).toBe(sent);
    const again = visible(await page(`/events/${eventId}/send-again?destination=pos`, cookie));
    expect(again).toContain("pos already has this event: it was delivered.");
    expect(again).toContain("processes it twice");
    expect(again).toContain("Send again to pos");
    // Send again to erp, which lacks it: that is a replay.
    const wrongWay = await request("GET", `/events/${eventId}/send-again?destination=erp`, { cookie });
    expect(wrongWay.headers.get("location")).toBe(`/dashboard/events/${eventId}/replay?destination=erp`);

    const resent = await request("POST", `/events/${eventId}/send-again`, {
      cookie,
      form: { destination: "pos", confirm: "1" },
    });
    expect(resent.headers.get("location")).toBe(`/dashboard/events/${eventId}?replayed=pos`);
    expect(queue.messages.length).toBe(sent + 1);
    sent = await attemptOnce(queue, sent);
    const replayed = await request("POST", `/events/${eventId}/replay`, { cookie, form: { confirm: "1" } });
    expect(replayed.headers.get("location")).toBe(`/dashboard/events/${eventId}?replayed=erp`);
    const audit = await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'replay' AND event_id = ?1")
      .bind(eventId)
      .first<number>("n");
    expect(audit).toBe(2);
    // Without a session: sign in. From another site: refused before anything runs.
    for (const path of [`/events/${eventId}/replay`, `/events/${eventId}/send-again?destination=pos`]) {
      const anonymous = await request("GET", path, {});
      expect(anonymous.status).toBe(303);
      expect(anonymous.headers.get("location")).toBe("/dashboard/sign-in");
    }
    const queued = queue.messages.length;
    const forged = await worker.fetch(
      new Request(`${ORIGIN}/dashboard/events/${eventId}/send-again`, {
        method: "POST",
        headers: { cookie, origin: "https://evil.example", "content-type": "application/x-www-form-urlencoded" },
        body: "destination=pos&confirm=1",
        redirect: "manual",
      }),
      env,
      ctx,
    );
    expect(forged.status).toBe(403);
    expect(queue.messages.length).toBe(queued);
    // A bad destination name is refused as the admin API refuses it.
    expect((await request("GET", `/events/${eventId}/replay?destination=${"x".repeat(300)}`, { cookie })).status).toBe(
      400,
    );

    // Nothing left dead or pending: the health strip's tests read the whole router, in any order.
    erpRefuses = false;
    await attemptOnce(queue, sent);
  });
});

describe("destinationConcern", () => {
  const controls = (over: Partial<ControlView> = {}): ControlView => ({
    destination: "erp",
    paused: null,
    disabled: null,
    circuit: { phase: "closed", coolDownMs: 0, probeAt: null, probe: null, lastError: null },
    consecutiveFailures: 0,
    history: [],
    held: { count: 0, oldestHeldAt: null, oldestReceivedAt: null },
    inFlight: 0,
    ...over,
  });
  const day = (c: ControlView | null) => ({ name: "erp", controls: c, hours: [] });

  it("is null for a healthy destination and names the worst concern first", () => {
    expect(destinationConcern(day(controls()), [], false)).toBeNull();
    const open = destinationConcern(
      day(
        controls({
          circuit: { phase: "open", coolDownMs: 60_000, probeAt: 5_000, probe: null, lastError: "timeout" },
          history: [
            { at: 1_000, kind: "opened", detail: "timeout" },
            { at: 3_000, kind: "reopened", detail: "timeout" },
          ],
          paused: { reason: "night", by: "tok_x", at: 2_000 },
          held: { count: 4, oldestHeldAt: 1_500, oldestReceivedAt: 1_400 },
        }),
      ),
      [],
      false,
    );
    expect(open).toMatchObject({
      concerns: ["circuit open", "paused", "held"],
      reason: "timeout",
      since: 1_000,
      nextProbeAt: 5_000,
      held: { count: 4, oldestHeldAt: 1_500 },
    });
    expect(destinationConcern(day(null), [], false)?.concerns).toEqual(["unknown"]);
    const failing = destinationConcern(
      {
        name: "erp",
        controls: controls({ consecutiveFailures: 2 }),
        hours: [
          { hour: 0, delivered: 1, failed: 0, dead: 0, latency: [] },
          { hour: 3_600_000, delivered: 0, failed: 1, dead: 0, latency: [] },
          { hour: 7_200_000, delivered: 0, failed: 1, dead: 0, latency: [] },
        ],
      },
      [],
      false,
    );
    expect(failing).toMatchObject({ concerns: ["failing"], reason: "2 failed attempts in a row", since: 3_600_000 });
    expect(destinationConcern(day(controls({ disabled: { at: 7, eventId: "evt_1" } })), [], false)).toMatchObject({
      concerns: ["disabled by 410"],
      since: 7,
      reason: "it answered 410 Gone (event evt_1)",
    });
  });
});
