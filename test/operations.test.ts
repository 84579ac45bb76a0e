import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import {
  captureDeliveryQueue,
  fixture,
  ManualClock,
  post,
  ROUTER,
  runQueueOn,
  stubDestinations,
  weedmapsSignature,
} from "./helpers.ts";

/**
 * Issue #23: each operator action is one operation behind two transports. The same bad input is refused with the
 * same code (and the same field messages) through the admin API and through a dashboard form, and the same action
 * writes the same audit row through either, differing only in `via` and `requestId`.
 */
afterEach(() => vi.restoreAllMocks());

const clock = new ManualClock(Date.now());
const worker = createWorker({ clock });
const ctx = {
  waitUntil: () => undefined,
  passThroughOnException: () => undefined,
  props: {},
} as unknown as ExecutionContext;
type WorkerRequest = Parameters<typeof worker.fetch>[0];
const fetchWorker = (request: Request) => worker.fetch(request as WorkerRequest, env, ctx);

/** The dashboard's clock never runs behind the real one that stamped the events it looks at. */
function catchUp() {
  const behind = Date.now() + 1_000 - clock.now();
  if (behind > 0) clock.advance(behind);
}

function api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  catchUp();
  const request = new Request(`${ROUTER}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return fetchWorker(request);
}

let cookie = "";
async function dashboard(method: string, path: string, form?: Record<string, string>): Promise<Response> {
  catchUp();
  if (!cookie) {
    const signIn = await worker.fetch(
      new Request(`${ROUTER}/dashboard/sign-in`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", origin: ROUTER },
        body: new URLSearchParams({ token: env.ADMIN_TOKEN as string }).toString(),
        redirect: "manual",
      }),
      env,
      ctx,
    );
    cookie = signIn.headers.get("set-cookie")!.split(";")[0]!;
  }
  const headers: Record<string, string> = { cookie };
  if (form) Object.assign(headers, { "content-type": "application/x-www-form-urlencoded", origin: ROUTER });
  const body = form ? new URLSearchParams(form).toString() : undefined;
  return worker.fetch(
    new Request(`${ROUTER}/dashboard${path}`, { method, headers, body, redirect: "manual" }),
    env,
    ctx,
  );
}

const unescapeHtml = (html: string) =>
  html
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");

/** A refusal as a caller sees it: the status, the code, and the field messages. */
interface Refusal {
  status: number;
  code: string;
  details: string[];
}

async function apiRefusal(res: Response): Promise<Refusal> {
  const { error } = await res.json<{ error: { code: string; details?: string[] } }>();
  return { status: res.status, code: error.code, details: error.details ?? [] };
}

/** The error page's (or the routing page's) alert: `code: message`, then each detail as a list item. */
async function pageRefusal(res: Response): Promise<Refusal> {
  expect(res.headers.get("content-type")).toMatch(/^text\/html/);
  const html = await res.text();
  // The error page puts the details in a list right after its alert; the routing page inside it.
  const [, alert = "", list = ""] = html.match(/role="alert">([\s\S]*?)<\/(?:p|div)>(<ul>[\s\S]*?<\/ul>)?/) ?? [];
  const code = alert.match(/^\s*([a-z_]+):/)?.[1] ?? `(no code in ${alert})`;
  const details = [...(alert + list).matchAll(/<li>([\s\S]*?)<\/li>/g)].map((m) => unescapeHtml(m[1]!));
  return { status: res.status, code, details };
}

let counter = 0;
async function labEvent(kind: "single" | "pair" | "paused" | "unmatched-kind"): Promise<string> {
  const res = await post(
    `/webhooks/lab/${kind}`,
    JSON.stringify({ id: `ops-${++counter}-${crypto.randomUUID()}`, kind }),
    {},
    fetchWorker,
  );
  expect(res.status).toBe(200);
  return (await res.json<{ eventId: string }>()).eventId;
}

async function quarantined(orderId: string): Promise<string> {
  const body = fixture("weedmaps/create").body.replace("9763822", orderId);
  const res = await post(
    "/webhooks/weedmaps?merchant_id=9999",
    body,
    { Signature: await weedmapsSignature(body) },
    fetchWorker,
  );
  const held = await res.json<{ eventId: string; routing: string }>();
  expect(held.routing).toBe("quarantined");
  return held.eventId;
}

const NO_EVENT = `evt_${"0".repeat(32)}`;

describe("the same bad input is refused the same way through the admin API and a dashboard form", () => {
  it("every action's bad inputs: the same status, code and field messages", async () => {
    stubDestinations(() => new Response("ok"));
    const eventId = await labEvent("single");
    const unrouted = await labEvent("unmatched-kind");
    const since = new Date(Date.now() - 60_000).toISOString();
    const until = new Date(Date.now() + 60_000).toISOString();
    const q = (params: Record<string, string>) => new URLSearchParams(params).toString();

    /** [what, the API's request, the dashboard's request] */
    const cases: [string, () => Promise<Response>, () => Promise<Response>][] = [
      // Search
      [
        "search: unknown status",
        () => api("GET", "/events?status=lost"),
        () => dashboard("GET", "/events?status=lost"),
      ],
      [
        "search: a time that is not one",
        () => api("GET", "/events?since=yesterday"),
        () => dashboard("GET", "/events?since=yesterday"),
      ],
      [
        "search: a cursor this router did not issue",
        () => api("GET", "/events?cursor=bm90LWEtY3Vyc29y"),
        () => dashboard("GET", "/events?cursor=bm90LWEtY3Vyc29y"),
      ],
      [
        "search: a source that cannot be one",
        () => api("GET", "/events?source=Not%20A%20Source"),
        () => dashboard("GET", "/events?source=Not%20A%20Source"),
      ],
      // View
      [
        "view: a malformed event id",
        () => api("GET", "/events/not-an-id"),
        () => dashboard("GET", "/events/not-an-id"),
      ],
      [
        "view: an unknown event",
        () => api("GET", `/events/${NO_EVENT}`),
        () => dashboard("GET", `/events/${NO_EVENT}`),
      ],
      // Replay
      [
        "replay: an empty destination",
        () => api("POST", `/events/${eventId}/replay`, { destinations: [""] }),
        () => dashboard("POST", `/events/${eventId}/replay`, { destination: "" }),
      ],
      [
        "replay: an unknown destination",
        () => api("POST", `/events/${eventId}/replay`, { destinations: ["nowhere"] }),
        () => dashboard("POST", `/events/${eventId}/replay`, { destination: "nowhere" }),
      ],
      [
        "replay: a disabled destination",
        () => api("POST", `/events/${eventId}/replay`, { destinations: ["paused"] }),
        () => dashboard("POST", `/events/${eventId}/replay`, { destination: "paused" }),
      ],
      [
        "replay: an event with no destinations",
        () => api("POST", `/events/${unrouted}/replay`),
        () => dashboard("POST", `/events/${unrouted}/replay`, {}),
      ],
      [
        "replay: an unknown event",
        () => api("POST", `/events/${NO_EVENT}/replay`),
        () => dashboard("POST", `/events/${NO_EVENT}/replay`, {}),
      ],
      // Release
      [
        "release: an event not held",
        () => api("POST", `/events/${eventId}/release`),
        () => dashboard("POST", `/events/${eventId}/release`, {}),
      ],
      [
        "release: an unknown event",
        () => api("POST", `/events/${NO_EVENT}/release`),
        () => dashboard("POST", `/events/${NO_EVENT}/release`, {}),
      ],
      // Dead letters and redrive
      [
        "dead letters: a destination that cannot be one",
        () => api("GET", "/dead-letters?destination=NO"),
        () => dashboard("GET", "/dead-letters?destination=NO"),
      ],
      [
        "redrive: no window",
        () => api("POST", "/dead-letters/redrive", { maxCount: 1 }),
        () => dashboard("POST", "/dead-letters/redrive", { maxCount: "1" }),
      ],
      [
        "redrive: a time that is not one",
        () => api("POST", "/dead-letters/redrive", { since: "yesterday", until, maxCount: 1 }),
        () => dashboard("POST", "/dead-letters/redrive", { since: "yesterday", until, maxCount: "1" }),
      ],
      [
        "redrive: until before since",
        () => api("POST", "/dead-letters/redrive", { since: until, until: since, maxCount: 1 }),
        () => dashboard("POST", "/dead-letters/redrive", { since: until, until: since, maxCount: "1" }),
      ],
      [
        "redrive: a count of none",
        () => api("POST", "/dead-letters/redrive", { since, until, maxCount: 0 }),
        () => dashboard("POST", "/dead-letters/redrive", { since, until, maxCount: "0" }),
      ],
      [
        "redrive: a count that is not a number",
        () => api("POST", "/dead-letters/redrive", { since, until, maxCount: "many" }),
        () => dashboard("POST", "/dead-letters/redrive", { since, until, maxCount: "many" }),
      ],
      [
        "redrive: an unknown destination",
        () => api("POST", "/dead-letters/redrive", { destination: "nowhere", since, until, maxCount: 1 }),
        () => dashboard("POST", "/dead-letters/redrive", { destination: "nowhere", since, until, maxCount: "1" }),
      ],
      [
        "redrive: a disabled destination",
        () => api("POST", "/dead-letters/redrive", { destination: "paused", since, until, maxCount: 1 }),
        () => dashboard("POST", "/dead-letters/redrive", { destination: "paused", since, until, maxCount: "1" }),
      ],
      [
        "redrive count: until before since",
        () => api("POST", "/dead-letters/redrive", { since: until, until: since, maxCount: 1 }),
        () => dashboard("GET", `/dead-letters/redrive?${q({ since: until, until: since })}`),
      ],
      // Destination controls
      [
        "pause: a blank reason",
        () => api("POST", "/destinations/ctl10/pause", { reason: "  " }),
        () => dashboard("POST", "/destinations/ctl10/pause", { reason: "  " }),
      ],
      [
        "pause: no reason",
        () => api("POST", "/destinations/ctl10/pause", {}),
        () => dashboard("POST", "/destinations/ctl10/pause", {}),
      ],
      [
        "pause: a reason too long",
        () => api("POST", "/destinations/ctl10/pause", { reason: "x".repeat(201) }),
        () => dashboard("POST", "/destinations/ctl10/pause", { reason: "x".repeat(201) }),
      ],
      [
        "pause: an unknown destination",
        () => api("POST", "/destinations/nowhere/pause", { reason: "x" }),
        () => dashboard("POST", "/destinations/nowhere/pause", { reason: "x" }),
      ],
      [
        "pause: a name that cannot be one",
        () => api("POST", "/destinations/NOPE/pause", { reason: "x" }),
        () => dashboard("POST", "/destinations/NOPE/pause", { reason: "x" }),
      ],
      [
        "resume: an unknown destination",
        () => api("POST", "/destinations/nowhere/resume"),
        () => dashboard("POST", "/destinations/nowhere/resume", {}),
      ],
      [
        "re-enable: an unknown destination",
        () => api("POST", "/destinations/nowhere/enable"),
        () => dashboard("POST", "/destinations/nowhere/enable", {}),
      ],
      // Routing dry run and config validation
      [
        "dry run: no source",
        () => api("POST", "/routing/dry-run", { payload: {} }),
        () => dashboard("POST", "/routing/dry-run", { payload: "{}" }),
      ],
      [
        "dry run: an unknown source",
        () => api("POST", "/routing/dry-run", { source: "nope", payload: {} }),
        () => dashboard("POST", "/routing/dry-run", { source: "nope", payload: "{}" }),
      ],
      [
        "dry run: no payload",
        () => api("POST", "/routing/dry-run", { source: "weedmaps" }),
        () => dashboard("POST", "/routing/dry-run", { source: "weedmaps" }),
      ],
      [
        "dry run: Leaf Trade without its webhook type",
        () => api("POST", "/routing/dry-run", { source: "leaftrade", payload: {} }),
        () => dashboard("POST", "/routing/dry-run", { source: "leaftrade", payload: "{}" }),
      ],
      [
        "validate: a config that is not an object",
        () => api("POST", "/config/validate", [1, 2]),
        () => dashboard("POST", "/routing/validate", { config: "[1,2]" }),
      ],
    ];

    for (const [what, viaApi, viaDashboard] of cases) {
      const fromApi = await apiRefusal(await viaApi());
      const fromDashboard = await pageRefusal(await viaDashboard());
      expect(fromApi.status, `${what}: ${JSON.stringify(fromApi)}`).toBeGreaterThanOrEqual(400);
      expect(fromDashboard, what).toEqual(fromApi);
    }
  });

  it("a wrong or missing reveal token: the same status through both, and neither shows anything", async () => {
    const eventId = await labEvent("single");
    const wrongApi = await api("GET", `/events/${eventId}?reveal=true`, undefined, {
      "x-reveal-token": "wrong",
      "cf-connecting-ip": "192.0.2.31",
    });
    expect(await apiRefusal(wrongApi)).toEqual({ status: 403, code: "reveal_forbidden", details: [] });
    const wrongPage = await dashboard("POST", `/events/${eventId}/reveal`, { reveal_token: "wrong" });
    expect(wrongPage.status).toBe(403);
    expect(await wrongPage.text()).toContain("That is not the reveal token.");
    expect(
      (await api("GET", `/events/${eventId}?reveal=true`, undefined, { "cf-connecting-ip": "192.0.2.31" })).status,
    ).toBe(401);
    expect((await dashboard("POST", `/events/${eventId}/reveal`, { reveal_token: "" })).status).toBe(401);
  });
});

describe("one list behind both transports", () => {
  const idsIn = (text: string) => [...new Set(text.match(/evt_[0-9a-f]{32}/g) ?? [])];

  async function deadLettersVia(destination: "pos" | "erp") {
    const fromApi = await api("GET", `/dead-letters?destination=${destination}`);
    expect(fromApi.status).toBe(200);
    const { deliveries, nextCursor } = await fromApi.json<{
      deliveries: { eventId: string; destination: string; status: string }[];
      nextCursor: string | null;
    }>();
    const page = await dashboard("GET", `/dead-letters?destination=${destination}`);
    expect(page.status).toBe(200);
    const html = await page.text();
    return { deliveries, nextCursor, dashboardIds: idsIn(html.slice(html.indexOf("<tbody>"))) };
  }

  it("dead letters: the destination is part of the query, so newer dead letters elsewhere do not empty the page", async () => {
    let failing = "erp.example.test";
    stubDestinations((req) =>
      new URL(req.url).hostname === failing ? new Response("no", { status: 422 }) : new Response("ok"),
    );
    const queue = captureDeliveryQueue();
    const deliverAll = async () => {
      catchUp();
      await runQueueOn(
        worker,
        queue.messages.splice(0).map((m) => m.body),
      );
    };
    const erpDead: string[] = [];
    for (let i = 0; i < 3; i++) erpDead.push(await labEvent("pair"));
    await deliverAll();
    // Newer than every erp dead letter: 60 events whose pos delivery died, more than a page.
    failing = "pos.example.test";
    for (let i = 0; i < 60; i++) await labEvent("pair");
    await deliverAll();

    const erp = await deadLettersVia("erp");
    expect(erp.deliveries.every((d) => d.destination === "erp" && d.status === "dead")).toBe(true);
    expect(erp.deliveries.map((d) => d.eventId)).toEqual(expect.arrayContaining(erpDead));
    // The dashboard lists the same dead letters, in the same order.
    expect(erp.dashboardIds).toEqual(erp.deliveries.map((d) => d.eventId));

    const pos = await deadLettersVia("pos");
    expect(pos.deliveries).toHaveLength(50);
    expect(pos.nextCursor).not.toBeNull();
    expect(pos.dashboardIds).toEqual(pos.deliveries.map((d) => d.eventId));
    expect(pos.deliveries.some((d) => erpDead.includes(d.eventId))).toBe(false);
  });

  it("events: a narrowed search pages the same through both, short pages carrying the cursor on", async () => {
    const marker: string[] = [];
    for (let i = 0; i < 4; i++) marker.push(await labEvent("unmatched-kind"));
    const fromApi = await api("GET", "/events?source=lab&eventType=unmatched-kind&limit=50");
    const listed = await fromApi.json<{
      events: { id: string }[];
      nextCursor: string | null;
      scanned: number | null;
    }>();
    const page = await dashboard("GET", "/events?source=lab&type=unmatched-kind");
    const html = await page.text();
    expect(idsIn(html.slice(html.indexOf("<tbody>")))).toEqual(listed.events.map((e) => e.id));
    expect(listed.events.map((e) => e.id)).toEqual(expect.arrayContaining(marker));
  });
});

describe("the same action writes the same audit row through either transport", () => {
  interface Row {
    action: string;
    token_id: string;
    event_id: string | null;
    detail: Record<string, unknown>;
  }

  /** Audit rows written while `act` ran, oldest first. */
  async function audited(act: () => Promise<unknown>): Promise<Row[]> {
    const before = await env.DB.prepare("SELECT COALESCE(MAX(id), '') AS id FROM audit_log").first<string>("id");
    await act();
    const { results } = await env.DB.prepare(
      "SELECT action, token_id, event_id, detail FROM audit_log WHERE id > ?1 ORDER BY id",
    )
      .bind(before)
      .all<{ action: string; token_id: string; event_id: string | null; detail: string }>();
    return results.map((r) => ({ ...r, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }

  /** The row without what tells the transports apart: `via` and the request id. */
  function comparable(rows: Row[], via: "admin" | "dashboard") {
    return rows.map(({ detail: { via: shownVia, requestId, ...detail }, ...row }) => {
      expect(shownVia).toBe(via);
      expect(requestId).toEqual(expect.any(String));
      return { ...row, detail };
    });
  }

  async function same(viaApi: () => Promise<Response>, viaDashboard: () => Promise<Response>, expected: Partial<Row>) {
    let apiStatus = 0;
    let dashboardStatus = 0;
    // Signed in before either is audited: the first dashboard call of the file signs in, and writes its own row.
    await dashboard("GET", "/overview");
    const fromApi = comparable(await audited(async () => (apiStatus = (await viaApi()).status)), "admin");
    const fromDashboard = comparable(
      await audited(async () => (dashboardStatus = (await viaDashboard()).status)),
      "dashboard",
    );
    expect(apiStatus).toBeLessThan(300);
    expect([200, 303]).toContain(dashboardStatus);
    expect(fromApi).toEqual([
      expect.objectContaining({ token_id: expect.stringMatching(/^tok_[0-9a-f]{16}$/), ...expected }),
    ]);
    return { fromApi, fromDashboard };
  }

  it("replay of one event to one destination", async () => {
    stubDestinations(() => new Response("ok"));
    const [first, second] = [await labEvent("single"), await labEvent("single")];
    const { fromApi, fromDashboard } = await same(
      () => api("POST", `/events/${first}/replay`, { destinations: ["pos"] }),
      () => dashboard("POST", `/events/${second}/replay`, { destination: "pos" }),
      { action: "replay", event_id: first },
    );
    expect(fromApi[0]!.detail).toEqual({ deliveries: [{ destination: "pos", generation: 2 }], enqueued: true });
    expect(fromDashboard).toEqual([{ ...fromApi[0]!, event_id: second }]);
  });

  it("release from quarantine", async () => {
    const [first, second] = [await quarantined("ops-release-1"), await quarantined("ops-release-2")];
    const { fromApi, fromDashboard } = await same(
      () => api("POST", `/events/${first}/release`),
      () => dashboard("POST", `/events/${second}/release`, {}),
      { action: "quarantine_release", event_id: first },
    );
    expect(fromApi[0]!.detail).toMatchObject({ reason: "merchant_mismatch", merchantId: "4242" });
    expect(fromDashboard).toEqual([{ ...fromApi[0]!, event_id: second }]);
  });

  it("a redrive of dead letters in a window", async () => {
    stubDestinations(() => new Response("gone", { status: 422 }));
    // The window starts after every event another test of this file received: the router's clock stamps them.
    catchUp();
    clock.advance(1);
    const since = new Date(clock.now()).toISOString();
    const queue = captureDeliveryQueue();
    await labEvent("pair");
    catchUp();
    await runQueueOn(
      worker,
      queue.messages.splice(0).map((m) => m.body),
    );
    const until = new Date(Date.now() + 60_000).toISOString();
    const { fromApi, fromDashboard } = await same(
      () => api("POST", "/dead-letters/redrive", { destination: "erp", since, until, maxCount: 5 }),
      () => dashboard("POST", "/dead-letters/redrive", { destination: "erp", since, until, maxCount: "5" }),
      { action: "redrive", event_id: null },
    );
    const { replayId: _a, ...apiDetail } = fromApi[0]!.detail;
    const { replayId: _b, ...dashboardDetail } = fromDashboard[0]!.detail;
    expect(apiDetail).toEqual({
      filter: { status: "dead", destination: "erp", since: Date.parse(since), until: Date.parse(until) },
      maxCount: 5,
      matched: 1,
    });
    expect(dashboardDetail).toEqual(apiDetail);
  });

  it("pause and resume", async () => {
    const paused = await same(
      () => api("POST", "/destinations/ctl9/pause", { reason: "POS maintenance" }),
      () => dashboard("POST", "/destinations/ctl10/pause", { reason: "POS maintenance" }),
      { action: "destination_pause", event_id: null, detail: { destination: "ctl9", reason: "POS maintenance" } },
    );
    expect(paused.fromDashboard).toEqual([
      { ...paused.fromApi[0]!, detail: { destination: "ctl10", reason: "POS maintenance" } },
    ]);
    const resumed = await same(
      () => api("POST", "/destinations/ctl9/resume"),
      () => dashboard("POST", "/destinations/ctl10/resume", {}),
      { action: "destination_resume", event_id: null, detail: { destination: "ctl9", reason: null } },
    );
    expect(resumed.fromDashboard).toEqual([{ ...resumed.fromApi[0]!, detail: { destination: "ctl10", reason: null } }]);
  });

  it("a reveal, under the reveal token's id", async () => {
    const eventId = await labEvent("single");
    const { fromApi, fromDashboard } = await same(
      () =>
        api("GET", `/events/${eventId}?reveal=true`, undefined, { "x-reveal-token": env.ADMIN_REVEAL_TOKEN as string }),
      () => dashboard("POST", `/events/${eventId}/reveal`, { reveal_token: env.ADMIN_REVEAL_TOKEN as string }),
      { action: "reveal", event_id: eventId },
    );
    expect(fromDashboard).toEqual(fromApi);
  });

  it("bulk replay start and cancel (the admin API's own)", async () => {
    const since = new Date(Date.now() - 60_000).toISOString();
    const until = new Date(Date.now() + 60_000).toISOString();
    await labEvent("single");
    let replayId = "";
    const started = await audited(async () => {
      const res = await api("POST", "/replays", { status: "pending", destination: "pos", since, until, maxCount: 10 });
      expect(res.status).toBe(202);
      replayId = (await res.json<{ replayId: string }>()).replayId;
    });
    expect(comparable(started, "admin")).toEqual([
      expect.objectContaining({
        action: "bulk_replay_start",
        detail: expect.objectContaining({ replayId, maxCount: 10 }),
      }),
    ]);
    const cancelled = await audited(async () =>
      expect((await api("POST", `/replays/${replayId}/cancel`)).status).toBe(200),
    );
    expect(comparable(cancelled, "admin")).toEqual([
      expect.objectContaining({ action: "bulk_replay_cancel", detail: { replayId, replayed: 0 } }),
    ]);
    // A refusal writes nothing.
    expect(await audited(() => api("POST", `/replays/${replayId}/cancel`))).toEqual([]);
  });
});
