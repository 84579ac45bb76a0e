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
import { piiValues, shownIn } from "./pii.ts";

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

/**
 * The dashboard's clock never runs behind the real one that stamped the events it looks at, and moves on with every
 * request: two requests' audit rows never share a millisecond, whose ids the random tail would order.
 */
function catchUp() {
  clock.advance(Math.max(1, Date.now() + 1_000 - clock.now()));
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

/** A page's text as a reader sees it: tags gone, entities read, whitespace folded. */
const textOf = (html: string) => unescapeHtml(html.replace(/<[^>]+>/g, " ")).replace(/\s+/g, " ");

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

/** A Weedmaps order (the published fixture, customer data and all) under its own order id, routed to pos and erp. */
async function weedmapsOrder(orderId: string): Promise<{ eventId: string; orderId: string; body: string }> {
  const body = fixture("weedmaps/create").body.replace("9763822", orderId);
  const res = await post(
    "/webhooks/weedmaps?merchant_id=4242",
    body,
    { Signature: await weedmapsSignature(body) },
    fetchWorker,
  );
  expect(res.status).toBe(200);
  return { eventId: (await res.json<{ eventId: string }>()).eventId, orderId, body };
}

const NO_EVENT = `evt_${"0".repeat(32)}`;
const NO_REPLAY = `rpl_${"0".repeat(32)}`;

describe("the same bad input is refused the same way through the admin API and a dashboard form", () => {
  it("every action's bad inputs: the same status, code and field messages", async () => {
    stubDestinations(() => new Response("ok"));
    const eventId = await labEvent("single");
    const unrouted = await labEvent("unmatched-kind");
    const since = new Date(Date.now() - 60_000).toISOString();
    const until = new Date(Date.now() + 60_000).toISOString();
    const q = (params: Record<string, string>) => new URLSearchParams(params).toString();
    // A job that matched nothing is done as soon as it starts: there is nothing left to cancel.
    const later = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString();
    const finished = await api("POST", "/replays", {
      status: "pending",
      since: later(1),
      until: later(2),
      maxCount: 1,
    });
    expect(finished.status).toBe(202);
    const done = await finished.json<{ replayId: string; state: string }>();
    expect(done.state).toBe("done");

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
        () => dashboard("POST", `/events/${eventId}/replay`, { destination: "", confirm: "1" }),
      ],
      [
        "replay: an unknown destination",
        () => api("POST", `/events/${eventId}/replay`, { destinations: ["nowhere"] }),
        () => dashboard("POST", `/events/${eventId}/replay`, { destination: "nowhere", confirm: "1" }),
      ],
      [
        "replay: a disabled destination",
        () => api("POST", `/events/${eventId}/replay`, { destinations: ["paused"] }),
        () => dashboard("POST", `/events/${eventId}/replay`, { destination: "paused", confirm: "1" }),
      ],
      [
        "replay: an event with no destinations",
        () => api("POST", `/events/${unrouted}/replay`),
        () => dashboard("POST", `/events/${unrouted}/replay`, { confirm: "1" }),
      ],
      [
        "replay: an unknown event",
        () => api("POST", `/events/${NO_EVENT}/replay`),
        () => dashboard("POST", `/events/${NO_EVENT}/replay`, { confirm: "1" }),
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
      // Bulk replay jobs: start (and its confirmation), progress, cancel
      [
        "bulk replay: an unknown status",
        () => api("POST", "/replays", { status: "lost", since, until, maxCount: 1 }),
        () => dashboard("POST", "/replays", { status: "lost", since, until, maxCount: "1" }),
      ],
      [
        "bulk replay: no window",
        () => api("POST", "/replays", { status: "pending", maxCount: 1 }),
        () => dashboard("POST", "/replays", { status: "pending", maxCount: "1" }),
      ],
      [
        "bulk replay: no count",
        () => api("POST", "/replays", { since, until }),
        () => dashboard("POST", "/replays", { since, until }),
      ],
      [
        "bulk replay: a count of none",
        () => api("POST", "/replays", { status: "failing", since, until, maxCount: 0 }),
        () => dashboard("POST", "/replays", { status: "failing", since, until, maxCount: "0" }),
      ],
      [
        "bulk replay: a count over the bound",
        () => api("POST", "/replays", { since, until, maxCount: 100_001 }),
        () => dashboard("POST", "/replays", { since, until, maxCount: "100001" }),
      ],
      [
        "bulk replay: a count that is not a number",
        () => api("POST", "/replays", { since, until, maxCount: "many" }),
        () => dashboard("POST", "/replays", { since, until, maxCount: "many" }),
      ],
      [
        "bulk replay: a time that is not one",
        () => api("POST", "/replays", { since: "yesterday", until, maxCount: 1 }),
        () => dashboard("POST", "/replays", { since: "yesterday", until, maxCount: "1" }),
      ],
      [
        "bulk replay: until before since",
        () => api("POST", "/replays", { status: "delivered", since: until, until: since, maxCount: 1 }),
        () => dashboard("POST", "/replays", { status: "delivered", since: until, until: since, maxCount: "1" }),
      ],
      [
        "bulk replay: a destination that cannot be one",
        () => api("POST", "/replays", { destination: "NO", since, until, maxCount: 1 }),
        () => dashboard("POST", "/replays", { destination: "NO", since, until, maxCount: "1" }),
      ],
      [
        "bulk replay: an unknown destination",
        () => api("POST", "/replays", { status: "pending", destination: "nowhere", since, until, maxCount: 1 }),
        () => dashboard("POST", "/replays", { status: "pending", destination: "nowhere", since, until, maxCount: "1" }),
      ],
      [
        "bulk replay: a disabled destination",
        () => api("POST", "/replays", { status: "pending", destination: "paused", since, until, maxCount: 1 }),
        () => dashboard("POST", "/replays", { status: "pending", destination: "paused", since, until, maxCount: "1" }),
      ],
      [
        "bulk replay confirmation: an unknown status",
        () => api("POST", "/replays", { status: "lost", since, until, maxCount: 1 }),
        () => dashboard("GET", `/replays/new?${q({ status: "lost", since, until, maxCount: "1" })}`),
      ],
      [
        "bulk replay confirmation: until before since",
        () => api("POST", "/replays", { since: until, until: since, maxCount: 1 }),
        () => dashboard("GET", `/replays/new?${q({ since: until, until: since, maxCount: "1" })}`),
      ],
      [
        "bulk replay confirmation: no count",
        () => api("POST", "/replays", { status: "dead", since, until }),
        () => dashboard("GET", `/replays/new?${q({ status: "dead", since, until })}`),
      ],
      [
        "replay job: a malformed id",
        () => api("GET", "/replays/rpl_nope"),
        () => dashboard("GET", "/replays/rpl_nope"),
      ],
      [
        "replay job: a malformed id typed into the form",
        () => api("GET", "/replays/rpl_nope"),
        () => dashboard("GET", "/replays/job?replayId=rpl_nope"),
      ],
      [
        "replay job: an unknown job",
        () => api("GET", `/replays/${NO_REPLAY}`),
        () => dashboard("GET", `/replays/${NO_REPLAY}`),
      ],
      [
        "replay cancel: a malformed id",
        () => api("POST", "/replays/rpl_nope/cancel"),
        () => dashboard("POST", "/replays/rpl_nope/cancel", {}),
      ],
      [
        "replay cancel: an unknown job",
        () => api("POST", `/replays/${NO_REPLAY}/cancel`),
        () => dashboard("POST", `/replays/${NO_REPLAY}/cancel`, {}),
      ],
      [
        "replay cancel: a job that is not running",
        () => api("POST", `/replays/${done.replayId}/cancel`),
        () => dashboard("POST", `/replays/${done.replayId}/cancel`, {}),
      ],
      // A customer's deletion request (and its confirmation)
      [
        "purge: no order id",
        () => api("POST", "/customer-data/purge", {}),
        () => dashboard("POST", "/customer-data/purge", {}),
      ],
      [
        "purge: an order id too long",
        () => api("POST", "/customer-data/purge", { providerOrderId: "9".repeat(256) }),
        () => dashboard("POST", "/customer-data/purge", { providerOrderId: "9".repeat(256) }),
      ],
      [
        "purge: a source that cannot be one",
        () => api("POST", "/customer-data/purge", { providerOrderId: "9763822", source: "Not A Source" }),
        () => dashboard("POST", "/customer-data/purge", { providerOrderId: "9763822", source: "Not A Source" }),
      ],
      [
        "purge: a reason too long",
        () => api("POST", "/customer-data/purge", { providerOrderId: "9763822", reason: "r".repeat(201) }),
        () => dashboard("POST", "/customer-data/purge", { providerOrderId: "9763822", reason: "r".repeat(201) }),
      ],
      [
        "purge confirmation: no order id",
        () => api("POST", "/customer-data/purge", {}),
        () => dashboard("GET", "/customer-data/purge"),
      ],
      [
        "purge confirmation: a source that cannot be one",
        () => api("POST", "/customer-data/purge", { providerOrderId: "9763822", source: "Not A Source" }),
        () => dashboard("GET", `/customer-data/purge?${q({ providerOrderId: "9763822", source: "Not A Source" })}`),
      ],
      // The audit log
      [
        "audit log: a malformed event id",
        () => api("GET", "/audit?eventId=evt_nope"),
        () => dashboard("GET", "/audit?eventId=evt_nope"),
      ],
      [
        "audit log: a cursor this router did not issue",
        () => api("GET", "/audit?cursor=bm90LWEtY3Vyc29y"),
        () => dashboard("GET", "/audit?cursor=bm90LWEtY3Vyc29y"),
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
  const idsIn = (text: string) => [...new Set(text.match(/evt_(?:\d{1,3}_)?[0-9a-f]{32}/g) ?? [])];

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

  const auditIdsIn = (html: string) => [
    ...new Set(html.slice(html.indexOf("<tbody>")).match(/aud_[0-9]{15}_[0-9a-f]{12}/g) ?? []),
  ];
  type AuditList = {
    entries: { id: string; tokenId: string; eventId: string | null }[];
    nextCursor: string | null;
  };

  it("audit log: the page lists the API's entries in its order, and Older entries goes on from the same cursor", async () => {
    // Signed in first: that writes an entry of its own.
    await dashboard("GET", "/overview");
    // More entries than a page: failed sign-ins, each from a client of its own so that none is throttled.
    for (let i = 0; i < 51; i++) {
      const res = await fetchWorker(
        new Request(`${ROUTER}/dashboard/sign-in`, {
          method: "POST",
          headers: {
            "content-type": "application/x-www-form-urlencoded",
            origin: ROUTER,
            "cf-connecting-ip": `198.51.100.${i + 1}`,
          },
          body: new URLSearchParams({ token: `not-the-token-${i}` }).toString(),
          redirect: "manual",
        }),
      );
      expect(res.status).toBe(303);
    }
    const first = await (await api("GET", "/audit?limit=50")).json<AuditList>();
    const firstPage = await dashboard("GET", "/audit");
    expect(firstPage.status).toBe(200);
    const firstHtml = await firstPage.text();
    expect(auditIdsIn(firstHtml)).toEqual(first.entries.map((e) => e.id));
    expect(first.nextCursor).not.toBeNull();
    const older = unescapeHtml(firstHtml.match(/<a href="([^"]+)">Older entries<\/a>/)?.[1] ?? "");
    expect(older).toBe(`/dashboard/audit?cursor=${first.nextCursor}`);

    const second = await (await api("GET", `/audit?limit=50&cursor=${first.nextCursor}`)).json<AuditList>();
    const secondHtml = await (await dashboard("GET", older.replace("/dashboard", ""))).text();
    expect(auditIdsIn(secondHtml)).toEqual(second.entries.map((e) => e.id));
    expect(second.entries.length).toBeGreaterThan(0);
    // Failed attempts show the token id "none": a wrong token is never stored, so never shown.
    expect(textOf(firstHtml)).toContain("sign_in_failed none dashboard");
    expect(firstHtml).not.toContain("not-the-token");
  });

  it("audit log: one event's entries, the same through both; token ids only and no customer data", async () => {
    const order = await weedmapsOrder(`ops-audit-${crypto.randomUUID()}`);
    const pii = piiValues({ "weedmaps/create": order.body });
    expect(pii.length).toBeGreaterThan(0);
    const revealToken = env.ADMIN_REVEAL_TOKEN as string;
    expect(
      (await api("GET", `/events/${order.eventId}?reveal=true`, undefined, { "x-reveal-token": revealToken })).status,
    ).toBe(200);
    expect((await dashboard("POST", `/events/${order.eventId}/reveal`, { reveal_token: revealToken })).status).toBe(
      200,
    );
    expect(
      (await dashboard("POST", `/events/${order.eventId}/replay`, { destination: "pos", confirm: "1" })).status,
    ).toBe(303);

    const fromApi = await (await api("GET", `/audit?eventId=${order.eventId}`)).json<AuditList>();
    expect(fromApi.entries).toHaveLength(3);
    const html = await (await dashboard("GET", `/audit?eventId=${order.eventId}`)).text();
    expect(auditIdsIn(html)).toEqual(fromApi.entries.map((e) => e.id));
    const text = textOf(html);
    for (const entry of fromApi.entries) expect(text).toContain(entry.tokenId);
    for (const secret of [env.ADMIN_TOKEN as string, revealToken]) expect(html).not.toContain(secret);
    expect(shownIn(html, pii)).toEqual([]);
    // The whole first page too, with every other test's entries on it.
    const all = await (await dashboard("GET", "/audit")).text();
    for (const secret of [env.ADMIN_TOKEN as string, revealToken]) expect(all).not.toContain(secret);
    expect(shownIn(all, pii)).toEqual([]);
  });

  it("key status: the page shows the API's ring, key ids only and never key material", async () => {
    const fromApi = await api("GET", "/keys");
    expect(fromApi.status).toBe(200);
    const keys = await fromApi.json<{
      encryption: string;
      primary: string | null;
      keys: { keyId: string; state: string; inRing: boolean; removable: boolean }[];
    }>();
    expect(keys.keys.length).toBeGreaterThan(0);
    const page = await dashboard("GET", "/keys");
    expect(page.status).toBe(200);
    const html = await page.text();
    const text = textOf(html);
    expect(text).toContain(`Encryption ${keys.encryption} Primary key ${keys.primary ?? "none"} `);
    for (const k of keys.keys) expect(text).toContain(` ${k.keyId} ${k.state} `);
    const material = (env.PAYLOAD_KEYS as string).split(",").map((entry) => entry.slice(entry.indexOf(":") + 1));
    for (const secret of material) expect(html).not.toContain(secret);
  });

  it("purge confirmation: lists the events of the order the API's search finds, and purges nothing", async () => {
    const orderId = `ops-review-${crypto.randomUUID()}`;
    const order = await weedmapsOrder(orderId);
    const listed = await (await api("GET", `/events?orderId=${orderId}`)).json<{ events: { id: string }[] }>();
    expect(listed.events.map((e) => e.id)).toEqual([order.eventId]);
    const review = await dashboard("GET", `/customer-data/purge?providerOrderId=${orderId}&reason=ticket+7`);
    expect(review.status).toBe(200);
    const html = await review.text();
    expect(idsIn(html.slice(html.indexOf("<tbody>")))).toEqual(listed.events.map((e) => e.id));
    expect(textOf(html)).toContain(`1 event of order ${orderId} will have their payloads purged.`);
    expect(html).toContain('<form method="post" action="/dashboard/customer-data/purge">');
    const event = await (await api("GET", `/events/${order.eventId}`)).json<{
      event: { payloadPurgedAt: string | null };
    }>();
    expect(event.event.payloadPurgedAt).toBeNull();
    const none = textOf(await (await dashboard("GET", "/customer-data/purge?providerOrderId=no-such-order")).text());
    expect(none).toContain("No stored event has this order id.");
    expect(none).not.toContain("Purge order");
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
  function comparable(rows: Row[], via: "api" | "dashboard") {
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
    const fromApi = comparable(await audited(async () => (apiStatus = (await viaApi()).status)), "api");
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
      () => dashboard("POST", `/events/${second}/replay`, { destination: "pos", confirm: "1" }),
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

  it("a customer's deletion request", async () => {
    const [first, second] = [
      await weedmapsOrder(`ops-purge-${crypto.randomUUID()}`),
      await weedmapsOrder(`ops-purge-${crypto.randomUUID()}`),
    ];
    const [firstOrder, secondOrder] = [first.orderId, second.orderId];
    let page = "";
    const { fromApi, fromDashboard } = await same(
      () => api("POST", "/customer-data/purge", { providerOrderId: firstOrder, reason: "ticket 42" }),
      async () => {
        const res = await dashboard("POST", "/customer-data/purge", {
          providerOrderId: secondOrder,
          source: "",
          reason: "ticket 42",
        });
        page = await res.clone().text();
        return res;
      },
      { action: "customer_purge", event_id: null },
    );
    expect(fromApi[0]!.detail).toEqual({
      providerOrderId: firstOrder,
      source: null,
      reason: "ticket 42",
      purged: [first.eventId],
      alreadyPurged: 0,
    });
    expect(fromDashboard).toEqual([
      { ...fromApi[0]!, detail: { ...fromApi[0]!.detail, providerOrderId: secondOrder, purged: [second.eventId] } },
    ]);
    // The answer names what it purged and the audit entry.
    expect(textOf(page)).toMatch(
      new RegExp(`Order ${secondOrder}: 1 event purged now, 0 already purged\\. Recorded in the audit log \\(aud_`),
    );
    expect(page).toContain(`href="/dashboard/events/${second.eventId}"`);
    for (const { eventId } of [first, second]) {
      const view = await (await api("GET", `/events/${eventId}`)).json<{ event: { payloadPurgedAt: string | null } }>();
      expect(view.event.payloadPurgedAt, eventId).not.toBeNull();
    }
  });

  it("bulk replay start and cancel", async () => {
    // The window starts after every event another test of this file received: the router's clock stamps them.
    catchUp();
    clock.advance(1);
    const since = new Date(clock.now()).toISOString();
    await labEvent("single");
    const until = new Date(Date.now() + 60_000).toISOString();
    const filter = { status: "pending", destination: "pos", since, until };
    let apiJob = "";
    let dashboardJob = "";
    let apiMatched = -1;
    const started = await same(
      async () => {
        const res = await api("POST", "/replays", { ...filter, maxCount: 10 });
        ({ replayId: apiJob, matched: apiMatched } = await res.clone().json<{ replayId: string; matched: number }>());
        return res;
      },
      async () => {
        const res = await dashboard("POST", "/replays", { ...filter, maxCount: "10" });
        const location = res.headers.get("location") ?? "";
        expect(location).toMatch(/^\/dashboard\/replays\/rpl_[0-9a-f]{32}\?matched=\d+$/);
        dashboardJob = location.match(/rpl_[0-9a-f]{32}/)![0];
        return res;
      },
      { action: "bulk_replay_start", event_id: null },
    );
    expect(apiMatched).toBe(1);
    const withoutId = (detail: Record<string, unknown>) => {
      const { replayId: _replayId, ...rest } = detail;
      return rest;
    };
    expect(started.fromApi[0]!.detail.replayId).toBe(apiJob);
    expect(started.fromDashboard[0]!.detail.replayId).toBe(dashboardJob);
    expect(withoutId(started.fromApi[0]!.detail)).toEqual({
      filter: { status: "pending", destination: "pos", since: Date.parse(since), until: Date.parse(until) },
      maxCount: 10,
      matched: 1,
    });
    expect(withoutId(started.fromDashboard[0]!.detail)).toEqual(withoutId(started.fromApi[0]!.detail));

    // The job's page shows what the API says of it: its state and progress, and a way to cancel it.
    const job = await (await api("GET", `/replays/${dashboardJob}`)).json<{
      state: string;
      scanned: number;
      replayed: number;
    }>();
    expect(job.state).toBe("running");
    const jobPage = await (await dashboard("GET", `/replays/${dashboardJob}?matched=1`)).text();
    const jobText = textOf(jobPage);
    expect(jobText).toContain("Started: 1 delivery matched, at most 10 will be replayed.");
    expect(jobText).toContain(`State ${job.state} `);
    expect(jobText).toContain(`Events read ${job.scanned} Deliveries replayed ${job.replayed} `);
    expect(jobPage).toContain(`<form method="post" action="/dashboard/replays/${dashboardJob}/cancel">`);

    const cancelled = await same(
      () => api("POST", `/replays/${apiJob}/cancel`),
      () => dashboard("POST", `/replays/${dashboardJob}/cancel`, {}),
      { action: "bulk_replay_cancel", event_id: null, detail: { replayId: apiJob, replayed: 0 } },
    );
    expect(cancelled.fromDashboard).toEqual([
      { ...cancelled.fromApi[0]!, detail: { replayId: dashboardJob, replayed: 0 } },
    ]);
    const after = textOf(await (await dashboard("GET", `/replays/${dashboardJob}?cancelled=1`)).text());
    expect(after).toContain("State cancelled ");
    expect(after).not.toContain("Cancel this replay");
    // A refusal writes nothing, through either.
    expect(await audited(() => api("POST", `/replays/${apiJob}/cancel`))).toEqual([]);
    expect(await audited(() => dashboard("POST", `/replays/${dashboardJob}/cancel`, {}))).toEqual([]);
  });
});
