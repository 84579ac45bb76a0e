import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import { SESSION_MS } from "../src/dashboard/session.ts";
import { encodeCursor } from "../src/core/cursor.ts";
import {
  adminFetch,
  captureDeliveryQueue,
  dbOfEvent,
  deliveriesOf,
  fixture,
  ManualClock,
  post,
  runQueueOn,
  stubDestinations,
  visible,
  weedmapsSignature,
} from "./helpers.ts";
import { piiValues, shownIn } from "./pii.ts";

/**
 * The dashboard through the Worker's fetch handler: sign-in, the session cookie's flags, CSRF, and what each page
 * shows. The browser walk-through is test/browser/dashboard.test.mjs.
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

function request(
  method: string,
  path: string,
  {
    cookie,
    form,
    origin = ORIGIN,
    base = ORIGIN,
    client,
  }: { cookie?: string; form?: Record<string, string>; origin?: string | null; base?: string; client?: string } = {},
) {
  const headers: Record<string, string> = {};
  if (client) headers["cf-connecting-ip"] = client;
  if (cookie) headers.cookie = cookie;
  if (form) headers["content-type"] = "application/x-www-form-urlencoded";
  if (form && origin) headers.origin = origin;
  return worker.fetch(
    new Request(`${base}/dashboard${path}`, {
      method,
      headers,
      body: form ? new URLSearchParams(form).toString() : undefined,
      redirect: "manual",
    }),
    env,
    ctx,
  );
}

async function signIn(base = ORIGIN, client?: string): Promise<{ cookie: string; setCookie: string }> {
  const res = await request("POST", "/sign-in", {
    form: { token: env.ADMIN_TOKEN as string },
    origin: base,
    base,
    client,
  });
  expect(res.status).toBe(303);
  expect(res.headers.get("location")).toBe("/dashboard/overview");
  const setCookie = res.headers.get("set-cookie")!;
  return { cookie: setCookie.split(";")[0]!, setCookie };
}

const page = async (path: string, cookie: string) => {
  const res = await request("GET", path, { cookie });
  expect(res.status, `GET ${path}`).toBe(200);
  return res.text();
};

let counter = 0;
/** A lab event (unsigned test source): `single` goes to pos, `pair` to pos and erp. */
async function labEvent(kind: "single" | "pair"): Promise<string> {
  const res = await post(
    `/webhooks/lab/${kind}`,
    JSON.stringify({ id: `dash-${++counter}-${crypto.randomUUID()}`, kind }),
  );
  expect(res.status).toBe(200);
  return (await res.json<{ eventId: string }>()).eventId;
}

/** The dashboard's clock never runs behind the real one that stamped the events it looks at. */
function catchUp(ahead = 1_000) {
  const behind = Date.now() + ahead - clock.now();
  if (behind > 0) clock.advance(behind);
}

/** Runs what the router enqueued from `from` on through the real consumer, and what that enqueued, until quiet. */
async function deliver(queue: ReturnType<typeof captureDeliveryQueue>, from = 0) {
  catchUp();
  for (let round = 0; from < queue.messages.length && round < 5; round++) {
    const bodies = queue.messages.slice(from).map((m) => m.body);
    from = queue.messages.length;
    await runQueueOn(worker, bodies);
  }
}

describe("sign-in", () => {
  it("sends a page without a session to sign in", async () => {
    for (const path of [
      "/",
      "/overview",
      "/events",
      "/destinations",
      "/dead-letters",
      "/dead-letters/redrive",
      "/replays",
      "/replays/new",
      `/replays/rpl_${"0".repeat(32)}`,
      "/routing",
      "/customer-data",
      "/customer-data/purge",
      "/keys",
      "/audit",
    ]) {
      const res = await request("GET", path);
      expect(res.status, path).toBe(303);
      expect(res.headers.get("location")).toBe("/dashboard/sign-in");
    }
    const signInPage = await request("GET", "/sign-in");
    expect(signInPage.status).toBe(200);
    expect(await signInPage.text()).toContain('<label>Admin token<input name="token" type="password"');
  });

  it("refuses a wrong token without a cookie", async () => {
    const res = await request("POST", "/sign-in", { form: { token: "not-the-token" } });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/dashboard/sign-in?failed=1");
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(visible(await (await request("GET", "/sign-in?failed=1")).text())).toContain(
      "That token is not the admin token.",
    );
  });

  it("sets a signed, HttpOnly, SameSite=Strict cookie with an expiry, Secure except on loopback", async () => {
    const { setCookie } = await signIn();
    expect(setCookie).toMatch(
      /^router_session=[^;]+; Max-Age=28800; Path=\/dashboard; HttpOnly; Secure; SameSite=Strict$/,
    );
    const local = await signIn("http://127.0.0.1:8787");
    expect(local.setCookie).not.toMatch(/Secure/);
    expect(local.setCookie).toMatch(/HttpOnly; SameSite=Strict/);
  });

  it("refuses a tampered cookie, an expired one, and one signed before the admin token changed", async () => {
    const { cookie } = await signIn();
    expect((await request("GET", "/events", { cookie })).status).toBe(200);
    const [name, value] = cookie.split("=");
    const tampered = `${name}=${encodeURIComponent(decodeURIComponent(value!).replace(/"exp":\d/, '"exp":9'))}`;
    expect((await request("GET", "/events", { cookie: tampered })).status).toBe(303);
    // The same cookie, read by a router whose clock is past its expiry (this file's clock stays near real time).
    const later = createWorker({ clock: new ManualClock(clock.now() + SESSION_MS + 1) });
    const expired = await later.fetch(
      new Request(`${ORIGIN}/dashboard/events`, { headers: { cookie }, redirect: "manual" }),
      env,
      ctx,
    );
    expect(expired.status).toBe(303);
    expect(expired.headers.get("location")).toBe("/dashboard/sign-in");
    const fresh = await signIn();
    const rotated = await worker.fetch(
      new Request(`${ORIGIN}/dashboard/events`, { headers: { cookie: fresh.cookie }, redirect: "manual" }),
      { ...env, ADMIN_TOKEN: "a-new-admin-token" } as Env,
      ctx,
    );
    expect(rotated.status).toBe(303);
  });

  it("refuses a form posted from another origin (CSRF) with a page that names the code, and signs out", async () => {
    const { cookie } = await signIn();
    const forged = await request("POST", "/destinations/pos/pause", {
      cookie,
      form: { reason: "forged" },
      origin: "https://evil.example",
    });
    expect(forged.status).toBe(403);
    expect(forged.headers.get("content-type")).toMatch(/^text\/html/);
    expect(visible(await forged.text())).toContain("cross_origin_request:");
    const noOrigin = await request("POST", "/destinations/pos/pause", {
      cookie,
      form: { reason: "forged" },
      origin: null,
    });
    expect(noOrigin.status).toBe(403);
    expect(visible(await page("/destinations", cookie))).not.toMatch(/pos \d+ \d+ \d+ paused/);
    // The other state-changing forms: a purge, a bulk replay's start and its cancel.
    const since = new Date(Date.now() - 60_000).toISOString();
    const until = new Date(Date.now() + 60_000).toISOString();
    const audited = () => env.DB.prepare("SELECT COUNT(*) AS n FROM audit_log").first<number>("n");
    const before = await audited();
    for (const [path, form] of [
      ["/customer-data/purge", { providerOrderId: "9763822" }],
      ["/replays", { status: "pending", since, until, maxCount: "1" }],
      [`/replays/rpl_${"0".repeat(32)}/cancel`, {}],
    ] as const) {
      for (const origin of ["https://evil.example", null]) {
        const res = await request("POST", path, { cookie, form, origin });
        expect(res.status, `${path} from ${origin}`).toBe(403);
        expect(visible(await res.text())).toContain("cross_origin_request:");
      }
    }
    expect(await audited()).toBe(before);
    const out = await request("POST", "/sign-out", { cookie, form: {} });
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toMatch(/^router_session=; Max-Age=0; Path=\/dashboard/);
  });
});

describe("security headers and caching", () => {
  /** The dashboard's CSP, directive by directive. */
  const csp = (res: Response) =>
    new Map(
      (res.headers.get("content-security-policy") ?? "")
        .split(";")
        .map((d) => d.trim().split(/\s+/))
        .map(([name, ...values]) => [name!, values.join(" ")]),
    );

  it("sends a strict CSP, no framing, no referrer, nosniff and no-store on every page, redirect and error page", async () => {
    const { cookie } = await signIn();
    stubDestinations(() => new Response("ok"));
    const f = fixture("weedmaps/create");
    const ingested = await post("/webhooks/weedmaps?merchant_id=4242", f.body.replace("9763822", "headers-order"), {
      Signature: await weedmapsSignature(f.body.replace("9763822", "headers-order")),
    });
    const { eventId } = await ingested.json<{ eventId: string }>();
    const answers: [string, Response][] = [
      ["sign-in page", await request("GET", "/sign-in")],
      ["no session", await request("GET", "/events")],
      ["events", await request("GET", "/events", { cookie })],
      ["event", await request("GET", `/events/${eventId}`, { cookie })],
      [
        "revealed event",
        await request("POST", `/events/${eventId}/reveal`, {
          cookie,
          form: { reveal_token: env.ADMIN_REVEAL_TOKEN as string },
        }),
      ],
      ["error page", await request("GET", `/events/evt_${"0".repeat(32)}`, { cookie })],
      [
        "cross-origin refusal",
        await request("POST", "/sign-out", { cookie, form: {}, origin: "https://evil.example" }),
      ],
      ["replays", await request("GET", "/replays", { cookie })],
      [
        "replay confirmation",
        await request(
          "GET",
          `/replays/new?${new URLSearchParams({ status: "dead", since: "2026-01-01T00:00", until: "2026-01-02T00:00", maxCount: "5" })}`,
          { cookie },
        ),
      ],
      ["unknown replay job", await request("GET", `/replays/rpl_${"0".repeat(32)}`, { cookie })],
      ["customer data", await request("GET", "/customer-data", { cookie })],
      ["purge confirmation", await request("GET", "/customer-data/purge?providerOrderId=headers-order", { cookie })],
      ["keys", await request("GET", "/keys", { cookie })],
      ["audit log", await request("GET", "/audit", { cookie })],
    ];
    expect(answers.map(([, res]) => res.status)).toEqual([
      200, 303, 200, 200, 200, 404, 403, 200, 200, 404, 200, 200, 200, 200,
    ]);
    for (const [what, res] of answers) {
      expect(res.headers.get("cache-control"), what).toBe("no-store");
      expect(res.headers.get("x-frame-options"), what).toBe("DENY");
      expect(res.headers.get("referrer-policy"), what).toBe("no-referrer");
      expect(res.headers.get("x-content-type-options"), what).toBe("nosniff");
      const policy = csp(res);
      expect(Object.fromEntries(policy), what).toMatchObject({
        "default-src": "'none'",
        "style-src": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
      });
      expect(res.headers.get("content-security-policy"), what).not.toMatch(/unsafe-|script-src/);
    }
    // Nothing the CSP would block: no script, no inline style, the one stylesheet from this origin.
    for (const [what, res] of answers.slice(7)) {
      expect(await res.text(), what).not.toMatch(/<script|<style|\sstyle=|\son[a-z]+=/i);
    }
    const html = await answers[4]![1].text();
    expect(html).not.toMatch(/<script|<style|\sstyle=|\son[a-z]+=/i);
    const href = html.match(/<link rel="stylesheet" href="([^"]+)"/)?.[1];
    expect(href).toMatch(/^\/dashboard\/style\.css\?v=[0-9a-f]{8}$/);
    const css = await request("GET", href!.replace("/dashboard", ""));
    expect(css.status).toBe(200);
    expect(css.headers.get("content-type")).toMatch(/^text\/css/);
    expect(css.headers.get("cache-control")).toBe("public, max-age=86400, immutable");
    expect(await css.text()).toContain(":focus-visible");
  });
});

describe("sessions", () => {
  const audited = async (action: string) =>
    (
      await env.DB.prepare("SELECT detail FROM audit_log WHERE action = ?1 ORDER BY id")
        .bind(action)
        .all<{ detail: string }>()
    ).results.map((r) => JSON.parse(r.detail) as Record<string, unknown>);

  it("sign-out revokes the session on the server: a copy of the cookie no longer opens a page", async () => {
    const { cookie } = await signIn(ORIGIN, "192.0.2.10");
    const copied = cookie;
    expect((await request("GET", "/events", { cookie: copied })).status).toBe(200);
    const out = await request("POST", "/sign-out", { cookie, form: {}, client: "192.0.2.10" });
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toMatch(/^router_session=; Max-Age=0; Path=\/dashboard/);
    for (const path of ["/events", "/overview", "/routing"]) {
      const res = await request("GET", path, { cookie: copied });
      expect(res.status, path).toBe(303);
      expect(res.headers.get("location")).toBe("/dashboard/sign-in");
    }
    const pause = await request("POST", "/destinations/pos/pause", {
      cookie: copied,
      form: { reason: "after sign-out" },
    });
    expect(pause.headers.get("location")).toBe("/dashboard/sign-in");
    const session = (await audited("sign_in")).find((d) => d.client === "192.0.2.10")?.session;
    expect(session).toMatch(/^[0-9a-f]{8}$/);
    expect(await audited("sign_out")).toContainEqual(expect.objectContaining({ client: "192.0.2.10", session }));
  });

  it("sign out everywhere ends every session, the other browsers' too", async () => {
    const first = await signIn();
    const second = await signIn();
    expect((await request("GET", "/overview", { cookie: second.cookie })).status).toBe(200);
    const res = await request("POST", "/sign-out-everywhere", { cookie: first.cookie, form: {} });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/dashboard/sign-in?everywhere=1");
    expect(visible(await (await request("GET", "/sign-in?everywhere=1")).text())).toContain(
      "Every dashboard session has been signed out.",
    );
    for (const { cookie } of [first, second]) expect((await request("GET", "/overview", { cookie })).status).toBe(303);
    expect((await audited("sign_out_everywhere")).at(-1)).toMatchObject({ revoked: expect.any(Number) });
    expect((await audited("sign_out_everywhere")).at(-1)!.revoked).toBeGreaterThanOrEqual(2);
    // Without a session it is refused like any other page.
    expect((await request("POST", "/sign-out-everywhere", { cookie: first.cookie, form: {} })).status).toBe(303);
    expect((await request("GET", "/overview", { cookie: (await signIn()).cookie })).status).toBe(200);
  });

  it("shows a sign-out everywhere button beside sign-out", async () => {
    const { cookie } = await signIn();
    expect(await page("/overview", cookie)).toContain(
      '<form class="inline" method="post" action="/dashboard/sign-out-everywhere"><button type="submit">Sign out everywhere</button></form>',
    );
  });
});

describe("throttling", () => {
  const auditOf = async (client: string) =>
    (
      await env.DB.prepare("SELECT action, token_id, event_id, detail FROM audit_log WHERE detail LIKE ?1 ORDER BY id")
        .bind(`%"client":"${client}"%`)
        .all<{ action: string; token_id: string; event_id: string | null; detail: string }>()
    ).results;

  it("twelve wrong tokens in a row at sign-in: the sixth on get 429 with Retry-After, the right token too; each failure audited without it", async () => {
    const client = "203.0.113.7";
    const statuses: number[] = [];
    let locked: Response | undefined;
    for (let i = 1; i <= 12; i++) {
      const res = await request("POST", "/sign-in", { form: { token: `guess-number-${i}` }, client });
      statuses.push(res.status);
      if (res.status === 429) locked = res;
      else expect(res.headers.get("location")).toBe("/dashboard/sign-in?failed=1");
    }
    expect(statuses).toEqual([303, 303, 303, 303, 303, 429, 429, 429, 429, 429, 429, 429]);
    expect(Number(locked!.headers.get("retry-after"))).toBeGreaterThan(800);
    expect(Number(locked!.headers.get("retry-after"))).toBeLessThanOrEqual(15 * 60);
    expect(locked!.headers.get("cache-control")).toBe("no-store");
    expect(visible(await locked!.text())).toContain("too_many_attempts:");
    const right = await request("POST", "/sign-in", { form: { token: env.ADMIN_TOKEN as string }, client });
    expect(right.status).toBe(429);
    expect(right.headers.get("set-cookie")).toBeNull();
    // Another client is not held back.
    await signIn(ORIGIN, "203.0.113.8");

    const rows = await auditOf(client);
    expect(rows.map((r) => r.action).sort()).toEqual([
      "attempts_throttled",
      ...Array<string>(5).fill("sign_in_failed"),
    ]);
    expect(rows.every((r) => r.token_id === "none")).toBe(true);
    expect(rows.map((r) => r.detail).join()).not.toContain("guess-number");
    expect(JSON.parse(rows.find((r) => r.action === "attempts_throttled")!.detail)).toMatchObject({
      client,
      via: "dashboard",
      scope: "sign_in",
      retryAfterSeconds: 900,
    });

    // When the window is over, the right token signs in.
    const later = createWorker({ clock: new ManualClock(clock.now() + 15 * 60_000 + 1) });
    const after = await later.fetch(
      new Request(`${ORIGIN}/dashboard/sign-in`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN, "cf-connecting-ip": client },
        body: new URLSearchParams({ token: env.ADMIN_TOKEN as string }).toString(),
        redirect: "manual",
      }),
      env,
      ctx,
    );
    expect(after.status).toBe(303);
    expect(after.headers.get("location")).toBe("/dashboard/overview");
  });

  it("failed reveals are throttled per client and each is audited with its event, without the token", async () => {
    stubDestinations(() => new Response("ok"));
    const eventId = await labEvent("single");
    const client = "2001:db8:aa:bb:1:2:3:4";
    const { cookie } = await signIn(ORIGIN, client);
    const reveal = (token: string, from = client) =>
      request("POST", `/events/${eventId}/reveal`, { cookie, form: { reveal_token: token }, client: from });
    for (let i = 1; i <= 5; i++) expect((await reveal(`reveal-guess-${i}`)).status).toBe(403);
    // Another address in the same /64 is the same client.
    for (const [token, from] of [
      ["reveal-guess-6", client],
      [env.ADMIN_REVEAL_TOKEN as string, "2001:db8:aa:bb::99"],
    ] as const) {
      const res = await reveal(token, from);
      expect(res.status).toBe(429);
      expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
    }
    expect((await reveal(env.ADMIN_REVEAL_TOKEN as string, "2001:db8:aa:cc::1")).status).toBe(200);

    const rows = await auditOf("2001:db8:aa:bb::/64");
    const failures = rows.filter((r) => r.action === "reveal_failed");
    expect(failures).toHaveLength(5);
    expect(rows.filter((r) => r.action === "attempts_throttled")).toHaveLength(1);
    expect(failures.every((r) => r.event_id === eventId && r.token_id === "none")).toBe(true);
    expect(JSON.parse(failures[0]!.detail)).toMatchObject({ via: "dashboard", reason: "token_mismatch" });
    expect(rows.map((r) => r.detail).join()).not.toContain("reveal-guess");
  });
});

describe("events", () => {
  it("finds an event by order id, shows its payload redacted and its attempts, and replays it", async () => {
    const queue = captureDeliveryQueue();
    stubDestinations(() => new Response("ok"));
    const f = fixture("weedmaps/create");
    const res = await post("/webhooks/weedmaps?merchant_id=4242", f.body, { Signature: f.signature });
    const { eventId } = await res.json<{ eventId: string }>();
    await deliver(queue);
    const { cookie } = await signIn();

    const list = await page("/events?orderId=9763822", cookie);
    expect(list).toContain(`href="/dashboard/events/${eventId}"`);
    expect(visible(await page("/events?orderId=no-such-order", cookie))).toContain("No events match.");

    const detail = await page(`/events/${eventId}`, cookie);
    expect(detail).toContain("Customer data redacted: customer");
    expect(shownIn(detail, piiValues({ "weedmaps/create": f.body }))).toEqual([]);
    expect(detail).toMatch(/pos · generation 1 · <span class="pill pill-ok">delivered<\/span>/);
    expect(detail).toContain('<td data-label="Status">200</td>');
    expect(detail).toContain('<label>Reveal token<input name="reveal_token" type="password"');

    // pos has it (delivered): not a replay but a send again, through its own confirmation.
    const replay = await request("POST", `/events/${eventId}/replay`, {
      cookie,
      form: { destination: "pos", confirm: "1" },
    });
    expect(replay.status).toBe(303);
    expect(replay.headers.get("location")).toBe(`/dashboard/events/${eventId}/send-again?destination=pos`);
    const resent = await request("POST", `/events/${eventId}/send-again`, {
      cookie,
      form: { destination: "pos", confirm: "1" },
    });
    expect(resent.headers.get("location")).toBe(`/dashboard/events/${eventId}?replayed=pos`);
    const after = visible(await page(`/events/${eventId}?replayed=pos`, cookie));
    expect(after).toContain("Replay enqueued for pos.");
    expect(after).toContain("pos · generation 2 · pending");
  });

  it("reveals customer data only with the reveal token, and records the reveal", async () => {
    stubDestinations(() => new Response("ok"));
    const f = fixture("weedmaps/create-other-order");
    const res = await post("/webhooks/weedmaps?merchant_id=4242", f.body, { Signature: f.signature });
    expect(res.status).toBe(200);
    const { eventId } = await res.json<{ eventId: string }>();
    const { cookie } = await signIn();
    const pii = piiValues({ "weedmaps/create": f.body });
    expect(pii.length).toBeGreaterThan(0);

    const wrong = await request("POST", `/events/${eventId}/reveal`, {
      cookie,
      form: { reveal_token: "not-the-reveal-token" },
    });
    expect(wrong.status).toBe(403);
    const wrongText = await wrong.text();
    expect(visible(wrongText)).toContain("That is not the reveal token. Nothing was shown.");
    expect(shownIn(wrongText, pii)).toEqual([]);
    // The admin token is not the reveal token.
    expect(
      (
        await request("POST", `/events/${eventId}/reveal`, {
          cookie,
          form: { reveal_token: env.ADMIN_TOKEN as string },
        })
      ).status,
    ).toBe(403);

    const shown = await request("POST", `/events/${eventId}/reveal`, {
      cookie,
      form: { reveal_token: env.ADMIN_REVEAL_TOKEN as string },
    });
    expect(shown.status).toBe(200);
    const shownText = visible(await shown.text());
    for (const value of pii) expect(shownText).toContain(value);
    const auditMatch = shownText.match(/This reveal is recorded in the audit log \((aud_[0-9]+_[0-9a-f]+)\)/);
    expect(auditMatch).not.toBeNull();
    const row = await env.DB.prepare("SELECT action, event_id, detail FROM audit_log WHERE id = ?1")
      .bind(auditMatch![1])
      .first<{ action: string; event_id: string; detail: string }>();
    expect(row).toMatchObject({ action: "reveal", event_id: eventId });
    expect(JSON.parse(row!.detail)).toMatchObject({ via: "dashboard", fields: expect.arrayContaining(["customer"]) });
    // Refused ones are not in the log as reveals.
    const reveals = await env.DB.prepare(
      "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'reveal' AND event_id = ?1",
    )
      .bind(eventId)
      .first<number>("n");
    expect(reveals).toBe(1);
  });

  it("pages a narrowed search through windows: every page reads a bounded slice, and Older events goes on", async () => {
    const { searchEvents } = await import("../src/storage/admin-queries.ts");
    const shards = [
      { id: 0, db: env.DB },
      { id: 1, db: env.SHARD_1 },
    ];
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      ids.push(await labEvent(i % 3 === 0 ? "pair" : "single"));
      await new Promise((r) => setTimeout(r, 2)); // distinct received_at, so "newest first" is a fixed order
    }
    const pairs = ids.filter((_, i) => i % 3 === 0).reverse();
    const since = Date.now() - 60_000;
    type Cursor = { receivedAt: number; id: string } | null;
    // The events of the search's range (of any type) in one shard between two cursors: what the page between them
    // read past there.
    const passedIn = (db: D1Database, from: Cursor, to: Cursor) =>
      db
        .prepare(
          `SELECT COUNT(*) AS n FROM events WHERE received_at >= ?1
           AND (?2 IS NULL OR (received_at, id) < (?2, ?3)) AND (?4 IS NULL OR (received_at, id) >= (?4, ?5))`,
        )
        .bind(since, from?.receivedAt ?? null, from?.id ?? null, to?.receivedAt ?? null, to?.id ?? null)
        .first<number>("n");
    const passed = async (from: Cursor, to: Cursor) =>
      Promise.all(shards.map(({ db }) => passedIn(db, from, to) as Promise<number>));
    const sum = (counts: number[]) => counts.reduce((a, b) => a + b, 0);
    // The check itself: without a window, the first full page reads past 4 events (of all shards) to find its 2
    // pairs, the two newest.
    const unwindowed = await searchEvents(shards, { eventType: "pair", since }, null, 2, 1_000);
    expect(unwindowed.events.map((e) => e.id)).toEqual(pairs.slice(0, 2));
    expect(sum(await passed(null, unwindowed.next))).toBe(4);
    const found: string[] = [];
    let cursor: Cursor = null;
    let pages = 0;
    do {
      const result = await searchEvents(shards, { eventType: "pair", since }, cursor, 2, 3);
      // Full or short, no page goes further in any shard than its window of 3: the next page starts at most 3 events
      // on in each.
      for (const n of await passed(cursor, result.next)) expect(n).toBeLessThanOrEqual(3);
      found.push(...result.events.map((e) => e.id));
      cursor = result.next;
      pages++;
    } while (cursor && pages < 20);
    expect(found.filter((id) => pairs.includes(id))).toEqual(pairs);
    expect(pages).toBeGreaterThan(1);
  });

  it("answers an unknown event with a page that names the error", async () => {
    const { cookie } = await signIn();
    const res = await request("GET", `/events/evt_${"0".repeat(32)}`, { cookie });
    expect(res.status).toBe(404);
    expect(visible(await res.text())).toContain("not_found:");
  });
});

describe("dead letters", () => {
  it("lists a dead delivery, counts a window before a bulk redrive, and redrives it to delivered", async () => {
    const queue = captureDeliveryQueue();
    let erpFails = true;
    stubDestinations((req) =>
      new URL(req.url).hostname === "erp.example.test" && erpFails
        ? new Response("bad request", { status: 400 })
        : new Response("ok"),
    );
    // From now, not a second back: other tests of this file leave dead erp deliveries too, and the count is this one's.
    const since = new Date().toISOString();
    const eventId = await labEvent("pair");
    await deliver(queue);
    const until = new Date(Date.now() + 1_000).toISOString();
    const { cookie } = await signIn();

    expect(visible(await page(`/events/${eventId}`, cookie))).toContain("erp · generation 1 · dead");
    const list = visible(await page("/dead-letters?destination=erp", cookie));
    expect(list).toContain(eventId);
    expect(await page("/dead-letters", cookie)).toContain(`aria-label="Redrive ${eventId} to erp"`);
    expect(visible(await page("/dead-letters?destination=pos", cookie))).not.toContain(eventId);

    const count = visible(await page(`/dead-letters/redrive?destination=erp&since=${since}&until=${until}`, cookie));
    expect(count).toContain("1 dead delivery matches.");
    expect(count).toContain("Redrive 1 deliveries");
    expect(
      visible(await page(`/dead-letters/redrive?destination=pos&since=${since}&until=${until}`, cookie)),
    ).toContain("0 dead deliveries match.");
    expect((await request("GET", `/dead-letters/redrive?since=${until}&until=${since}`, { cookie })).status).toBe(400);
    expect(
      (
        await request("POST", "/dead-letters/redrive", {
          cookie,
          form: { destination: "erp", since, until, maxCount: "0" },
        })
      ).status,
    ).toBe(400);

    erpFails = false;
    catchUp();
    const sent = queue.messages.length;
    const started = await request("POST", "/dead-letters/redrive", {
      cookie,
      form: { destination: "erp", since, until, maxCount: "1" },
    });
    expect(started.status).toBe(303);
    const location = started.headers.get("location")!;
    expect(location).toMatch(/^\/dashboard\/dead-letters\?started=rpl_[0-9a-f]{32}&count=1$/);
    const notice = await page(location.replace("/dashboard", ""), cookie);
    expect(visible(notice)).toMatch(/Redrive started for 1 deliveries \(job rpl_[0-9a-f]{32} \)\./);
    // The job's id links to its page, where its progress is.
    const job = location.match(/rpl_[0-9a-f]{32}/)![0];
    expect(notice).toContain(`<a href="/dashboard/replays/${job}">${job}</a>`);
    // The job's page, then the delivery it enqueued.
    await deliver(queue, sent);
    expect(visible(await page(`/events/${eventId}`, cookie))).toContain("erp · generation 2 · delivered");
    expect(visible(await page("/dead-letters?destination=erp", cookie))).not.toContain(eventId);
  });
});

describe("replays", () => {
  it("starts a bulk replay after a confirmation that counts it, then shows the job's progress to done", async () => {
    const queue = captureDeliveryQueue();
    let erpFails = true;
    stubDestinations((req) =>
      new URL(req.url).hostname === "erp.example.test" && erpFails
        ? new Response("bad request", { status: 400 })
        : new Response("ok"),
    );
    // From now: other tests of this file leave dead erp deliveries too, and the count is this one's.
    const since = new Date().toISOString();
    const eventId = await labEvent("pair");
    await deliver(queue);
    const until = new Date(Date.now() + 1_000).toISOString();
    const { cookie } = await signIn();

    const form = await page("/replays", cookie);
    expect(form).toContain('<form method="get" action="/dashboard/replays/new">');
    expect(form).toContain('<select name="status"><option value="dead">dead</option>');
    const window = new URLSearchParams({ destination: "erp", since, until, maxCount: "10" });
    const review = await page(`/replays/new?status=dead&${window}`, cookie);
    expect(visible(review)).toContain("1 dead delivery matches: dead deliveries to erp, of events received from");
    expect(visible(review)).toContain("At most 10 will be replayed. Replay 1 deliveries");
    expect(review).toContain('<input type="hidden" name="maxCount" value="10"/>');
    // Other states have no index to count them by: the job counts them when it starts.
    expect(visible(await page(`/replays/new?status=pending&${window}`, cookie))).toContain(
      "The job counts the deliveries that match when it starts; its page shows how many. Replay up to 10 deliveries",
    );
    // Nothing is sent by looking.
    expect(visible(await page(`/events/${eventId}`, cookie))).not.toContain("erp · generation 2");

    erpFails = false;
    catchUp();
    const sent = queue.messages.length;
    const started = await request("POST", "/replays", {
      cookie,
      form: { status: "dead", destination: "erp", since, until, maxCount: "10" },
    });
    expect(started.status).toBe(303);
    const location = started.headers.get("location")!;
    expect(location).toMatch(/^\/dashboard\/replays\/rpl_[0-9a-f]{32}\?matched=1$/);
    const job = location.match(/rpl_[0-9a-f]{32}/)![0];
    const running = visible(await page(location.replace("/dashboard", ""), cookie));
    expect(running).toContain("Started: 1 delivery matched, at most 10 will be replayed.");
    expect(running).toMatch(/ State running .* Cancel this replay /);
    // The job-id form opens the same page.
    const opened = await request("GET", `/replays/job?replayId=${job}`, { cookie });
    expect(opened.status).toBe(303);
    expect(opened.headers.get("location")).toBe(`/dashboard/replays/${job}`);

    await deliver(queue, sent);
    const finished = visible(await page(`/replays/${job}`, cookie));
    expect(finished).toContain(" State done ");
    expect(finished).toContain(" Deliveries replayed 1 ");
    expect(finished).not.toContain("Cancel this replay");
    expect(visible(await page(`/events/${eventId}`, cookie))).toContain("erp · generation 2 · delivered");
    const audit = visible(await page("/audit", cookie));
    expect(audit).toMatch(new RegExp(`bulk_replay_start tok_[0-9a-f]{16} dashboard — replayId: ${job} `));
  });
});

describe("customer data, keys and the audit log", () => {
  it("purges an order only from its confirmation's POST, and says what it purged", async () => {
    stubDestinations(() => new Response("ok"));
    const orderId = `purge-${crypto.randomUUID()}`;
    const body = fixture("weedmaps/create").body.replace("9763822", orderId);
    const res = await post("/webhooks/weedmaps?merchant_id=4242", body, { Signature: await weedmapsSignature(body) });
    const { eventId } = await res.json<{ eventId: string }>();
    const { cookie } = await signIn();

    const form = await page("/customer-data", cookie);
    expect(form).toContain('<form method="get" action="/dashboard/customer-data/purge">');
    expect(form).toContain('<option value="weedmaps">weedmaps</option>');
    const query = new URLSearchParams({ providerOrderId: orderId, source: "weedmaps", reason: "ticket 9" });
    const review = await page(`/customer-data/purge?${query}`, cookie);
    const reviewText = visible(review);
    expect(reviewText).toContain(`1 event of order ${orderId} from weedmaps will have their payloads purged.`);
    expect(reviewText).toContain("Reason recorded: ticket 9.");
    expect(review).toContain(`href="/dashboard/events/${eventId}"`);
    expect(review).toContain('<form method="post" action="/dashboard/customer-data/purge">');
    expect(reviewText).toContain(`Purge order ${orderId}`);
    // The confirmation purges nothing.
    expect(visible(await page(`/events/${eventId}`, cookie))).toContain("Customer data redacted:");

    const purged = await request("POST", "/customer-data/purge", {
      cookie,
      form: { providerOrderId: orderId, source: "weedmaps", reason: "ticket 9" },
    });
    expect(purged.status).toBe(200);
    const purgedText = visible(await purged.text());
    expect(purgedText).toMatch(
      new RegExp(
        `Order ${orderId}: 1 event purged now, 0 already purged\\. Recorded in the audit log \\((aud_\\w+)\\)`,
      ),
    );
    expect(visible(await page(`/events/${eventId}`, cookie))).toContain("Purged on");
    const again = await request("POST", "/customer-data/purge", { cookie, form: { providerOrderId: orderId } });
    expect(visible(await again.text())).toContain(`Order ${orderId}: 0 events purged now, 1 already purged.`);

    const audit = visible(await page("/audit", cookie));
    expect(audit).toContain(`customer_purge`);
    expect(audit).toMatch(
      new RegExp(
        `customer_purge tok_[0-9a-f]{16} dashboard — providerOrderId: ${orderId} source: weedmaps reason: ticket 9 purged: \\["${eventId}"\\] alreadyPurged: 0 `,
      ),
    );
  });

  it("shows the key ring by id, and the audit log newest first with links to events", async () => {
    const { cookie } = await signIn();
    const keys = visible(await page("/keys", cookie));
    expect(keys).toMatch(/ Encryption required Primary key test-a /);
    expect(keys).toMatch(/ test-a primary wraps new data keys yes /);
    expect(keys).not.toContain((env.PAYLOAD_KEYS as string).split(":")[1]);

    stubDestinations(() => new Response("ok"));
    const eventId = await labEvent("single");
    expect(
      (await request("POST", `/events/${eventId}/replay`, { cookie, form: { destination: "pos", confirm: "1" } }))
        .status,
    ).toBe(303);
    const audit = await page(`/audit?eventId=${eventId}`, cookie);
    expect(visible(audit)).toMatch(
      new RegExp(`1 entry, newest first, for ${eventId}\\. .* replay tok_[0-9a-f]{16} dashboard ${eventId} `),
    );
    expect(audit).toContain(`<a href="/dashboard/events/${eventId}">${eventId}</a>`);
    const newest = visible(await page("/audit", cookie)).match(/ (aud_\d{15}_[0-9a-f]{12}) /g) ?? [];
    expect(newest.length).toBeGreaterThan(1);
    expect([...newest].sort().reverse()).toEqual(newest);
  });
});

describe("overview and destinations", () => {
  it("counts events by source and type from the Cron's rollups, and deliveries per destination from their objects", async () => {
    const queue = captureDeliveryQueue();
    stubDestinations(() => new Response("ok"));
    const { cookie } = await signIn();
    const before = visible(await page("/overview", cookie));
    const posBefore = Number(before.match(/ pos (\d+) \d+ \d+ /)?.[1] ?? 0);
    await labEvent("single");
    await labEvent("single");
    await deliver(queue);
    catchUp(3 * 60_000); // past the walk's lag
    await worker.scheduled(
      { cron: "*/5 * * * *", scheduledTime: clock.now(), noRetry() {} } as ScheduledController,
      env,
    );

    const overview = await page("/overview", cookie);
    const text = visible(overview);
    expect(text).toMatch(/Events by source and type Source Type Events \(24 h\)/);
    expect(Number(text.match(/ lab single (\d+) /)?.[1])).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/Counted up to \d{4}-\d\d-\d\dT/);
    expect(Number(text.match(/ pos (\d+) \d+ \d+ /)?.[1])).toBe(posBefore + 2);
    expect(text).toMatch(/ pos \d+ \d+ \d+ ≤ [0-9.]+ (ms|s) ≤ [0-9.]+ (ms|s) active /);
    expect(overview).toContain('role="img" aria-label="Events per hour, last 24 hours"');
    expect(overview).toContain('aria-label="Deliveries per hour for pos"');
    // The health strip opens the page (other tests of this file may leave dead letters, or not).
    expect(text).toMatch(
      / Overview (healthy All \d+ destinations healthy|Needs attention .* \d+ dead letters? waiting)/,
    );
  });

  it("pauses and resumes a destination from its page", async () => {
    const { cookie } = await signIn();
    const paused = await request("POST", "/destinations/ctl1/pause", { cookie, form: { reason: "maintenance" } });
    expect(paused.status).toBe(303);
    const pausedPage = await page("/destinations", cookie);
    expect(visible(pausedPage)).toMatch(/ ctl1 \d+ \d+ \d+ paused \(maintenance\) /);
    expect(pausedPage).toContain(">Resume ctl1</button>");
    expect((await request("POST", "/destinations/ctl1/resume", { cookie, form: {} })).status).toBe(303);
    const resumed = await page("/destinations", cookie);
    expect(visible(resumed)).toMatch(/ ctl1 \d+ \d+ \d+ active /);
    expect(resumed).toContain("<label>Reason to pause ctl1<input");
    expect((await request("POST", "/destinations/ctl1/pause", { cookie, form: { reason: " " } })).status).toBe(400);
    const audit = await env.DB.prepare(
      "SELECT action, detail FROM audit_log WHERE action LIKE 'destination_%' ORDER BY id",
    ).all<{ action: string; detail: string }>();
    expect(audit.results.map((r) => [r.action, JSON.parse(r.detail).via])).toEqual(
      expect.arrayContaining([
        ["destination_pause", "dashboard"],
        ["destination_resume", "dashboard"],
      ]),
    );
  });
});

describe("routing", () => {
  it("dry-runs a payload to its routes and destinations, and validates a config", async () => {
    const { cookie } = await signIn();
    expect(visible(await page("/routing", cookie))).toContain("The running config is valid.");
    const f = fixture("weedmaps/create");
    const res = await request("POST", "/routing/dry-run", {
      cookie,
      form: { source: "weedmaps", eventType: "", merchant: "4242", payload: f.body },
    });
    expect(res.status).toBe(200);
    const text = visible(await res.text());
    expect(text).toContain("Dry run result Event type: create.");
    expect(text).toContain("wm-create yes");
    expect(text).toMatch(/Destinations pos \(route wm-create\) erp \(route wm-create\)/);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE provider_id = 'dry-run-only'").first("n")).toBe(
      0,
    );

    const bad = await request("POST", "/routing/dry-run", {
      cookie,
      form: { source: "weedmaps", payload: "{not json" },
    });
    expect(bad.status).toBe(400);
    expect(visible(await bad.text())).toContain("invalid_request: The request is invalid. payload: is not JSON");
    const unknown = await request("POST", "/routing/dry-run", { cookie, form: { source: "nope", payload: "{}" } });
    expect(visible(await unknown.text())).toContain("unknown_source:");

    const valid = visible(
      await (
        await request("POST", "/routing/validate", {
          cookie,
          form: { config: JSON.stringify(JSON.parse(env.ROUTER_CONFIG as string)) },
        })
      ).text(),
    );
    expect(valid).toContain("Valid.");
    const broken = JSON.parse(env.ROUTER_CONFIG as string);
    broken.routes[0].destinations = ["no-such-destination"];
    const invalid = visible(
      await (await request("POST", "/routing/validate", { cookie, form: { config: JSON.stringify(broken) } })).text(),
    );
    expect(invalid).toContain('Not valid: routes[0].destinations[0]: unknown destination "no-such-destination"');
    expect(
      visible(await (await request("POST", "/routing/validate", { cookie, form: { config: "{" } })).text()),
    ).toContain("(root): is not JSON");
  });
});

describe("cost", () => {
  const headersFor = (view: string, cookie: string): Record<string, string> =>
    view.startsWith("/admin") ? { authorization: `Bearer ${env.ADMIN_TOKEN}` } : { cookie };
  /** Every shard's binding: statements on each are captured, and their plans read back on the same database. */
  const SHARD_BINDINGS = ["DB", "SHARD_1"] as const;
  type ShardBinding = (typeof SHARD_BINDINGS)[number];
  interface Seen {
    binding: ShardBinding;
    db: D1Database;
    sql: string;
    params: unknown[];
    /** What D1 billed for the statement when it ran through `all()` (a search's page); null otherwise. */
    rowsRead: number | null;
  }
  const UNWRAP = Symbol("statement");
  type Wrapped = D1PreparedStatement & { [UNWRAP]?: { statement: D1PreparedStatement; entry: Seen } };
  /**
   * Every statement a page runs on any shard, with its parameters, so its query plan can be read back on the
   * database it ran on. `env` is the Worker's env with every shard's binding proxied.
   */
  function capturing() {
    const seen: Seen[] = [];
    const proxied = (binding: ShardBinding, db: D1Database) =>
      new Proxy(db, {
        get(target, property) {
          if (property === "prepare") {
            return (sql: string) => {
              const entry: Seen = { binding, db, sql, params: [], rowsRead: null };
              seen.push(entry);
              const wrap = (statement: D1PreparedStatement): D1PreparedStatement =>
                new Proxy(statement, {
                  get(s, p) {
                    if (p === UNWRAP) return { statement: s, entry };
                    if (p === "bind") {
                      return (...params: unknown[]) => {
                        entry.params = params;
                        return wrap(s.bind(...params));
                      };
                    }
                    if (p === "all") {
                      return async () => {
                        const result = await s.all();
                        entry.rowsRead = result.meta.rows_read ?? null;
                        return result;
                      };
                    }
                    const value = Reflect.get(s, p);
                    return typeof value === "function" ? value.bind(s) : value;
                  },
                });
              return wrap(target.prepare(sql));
            };
          }
          if (property === "batch") {
            // D1 is given the statements themselves; what each read is kept with its entry.
            return async (statements: Wrapped[]) => {
              const results = await target.batch(statements.map((st) => st[UNWRAP]?.statement ?? st));
              statements.forEach((st, i) => {
                const entry = st[UNWRAP]?.entry;
                if (entry) entry.rowsRead = results[i]?.meta.rows_read ?? null;
              });
              return results;
            };
          }
          const value = Reflect.get(target, property);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    const bindings = Object.fromEntries(SHARD_BINDINGS.map((b) => [b, proxied(b, env[b])]));
    return { env: { ...env, ...bindings } as Env, seen };
  }

  it("no page view scans the events table: every read of it goes through a key or an index", async () => {
    stubDestinations((req) =>
      new URL(req.url).hostname === "erp.example.test" ? new Response("no", { status: 400 }) : new Response("ok"),
    );
    const queue = captureDeliveryQueue();
    const eventId = await labEvent("pair");
    // An order the status relay knows, for its order view (a duplicate if another test stored it first).
    const create = fixture("weedmaps/create");
    expect((await post("/webhooks/weedmaps?merchant_id=4242", create.body, create.headers)).status).toBe(200);
    await deliver(queue);
    const { cookie } = await signIn();
    const since = new Date(Date.now() - 3_600_000).toISOString();
    const until = new Date(Date.now() + 60_000).toISOString();
    const views = [
      "/overview",
      "/events",
      `/events?since=${since}&until=${until}`,
      "/events?orderId=9763822",
      "/events?status=dead",
      "/events?source=lab&type=pair",
      "/events?merchant=4242&status=failing",
      `/events/${eventId}`,
      "/dead-letters",
      "/dead-letters?destination=erp",
      `/dead-letters/redrive?destination=erp&since=${since}&until=${until}`,
      `/replays/new?status=dead&destination=erp&since=${since}&until=${until}&maxCount=10`,
      "/customer-data/purge?providerOrderId=9763822",
      "/customer-data/purge?providerOrderId=9763822&source=weedmaps",
      "/destinations",
      "/routing",
      // Pages that read no events at all; their reads are checked the same way.
      "/replays",
      `/replays/new?status=pending&since=${since}&until=${until}&maxCount=10`,
      "/customer-data",
      "/keys",
      "/audit",
      `/audit?eventId=${eventId}`,
    ].map((view) => `/dashboard${view}`);
    // The admin API lists through the same operations, so the same reads.
    const apiViews = [
      "/events",
      `/events?since=${since}&until=${until}`,
      "/events?orderId=9763822",
      "/events?status=dead",
      "/events?source=lab&eventType=pair",
      "/events?merchantId=4242&status=failing",
      `/events/${eventId}`,
      "/dead-letters",
      "/dead-letters?destination=erp",
      `/dead-letters?destination=erp&since=${since}&until=${until}`,
      "/destinations/health?windowHours=24",
      "/relay/weedmaps/orders/9763822",
    ].map((view) => `/admin${view}`);
    const scansIn = async (db: D1Database, sql: string, params: unknown[]) => {
      const plan = await db
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .bind(...params)
        .all<{ detail: string }>();
      const details = plan.results.map((r) => r.detail);
      // "SCAN e" alone is a full table scan; "SCAN e USING INDEX …" walks an index in order under a LIMIT.
      return {
        details,
        scans: details.filter((d) => /^SCAN (e|events)\b/.test(d) && !/USING (COVERING )?INDEX/.test(d)),
      };
    };
    // The check itself: a filter no index serves is a scan, and is caught. (A walk of an index in order is bounded
    // only by its LIMIT; the benchmark's rows read per page at 10,000 and 100,000 events is what shows that.)
    expect(
      (await scansIn(env.SHARD_1, "SELECT id FROM events e WHERE e.merchant_id = ?1 ORDER BY e.id LIMIT 50", ["4242"]))
        .scans,
    ).not.toEqual([]);
    let eventReads = 0;
    for (const view of [...views, ...apiViews]) {
      const captured = capturing();
      const { seen } = captured;
      const res = await worker.fetch(
        new Request(`${ORIGIN}${view}`, { headers: headersFor(view, cookie), redirect: "manual" }),
        captured.env,
        ctx,
      );
      expect(res.status, view).toBe(200);
      // The session costs one small lookup per page view: its row, by its primary key.
      expect(
        seen.filter(({ sql }) => /dashboard_sessions|attempt_throttle/.test(sql)).map(({ sql }) => sql),
        view,
      ).toEqual(
        view.startsWith("/dashboard") ? ["SELECT expires_at, revoked_at FROM dashboard_sessions WHERE id = ?1"] : [],
      );
      for (const { binding, db, sql, params } of seen) {
        if (/\bevents\b/.test(sql)) eventReads++;
        const { details, scans } = await scansIn(db, sql, params);
        expect(scans, `${view} on ${binding}: ${sql}\n${details.join("\n")}`).toEqual([]);
      }
      // One event is read from the shard its id names; a list or a count reads every shard.
      const shardsRead = new Set(seen.filter(({ sql }) => /\bevents\b/.test(sql)).map((s) => s.binding));
      if (view.includes(eventId) && !view.includes("/audit")) expect([...shardsRead], view).toHaveLength(1);
      else if (shardsRead.size > 0) expect([...shardsRead].sort(), view).toEqual([...SHARD_BINDINGS]);
    }
    // Every view reads events but the overview, destinations, routing and the six pages listed last.
    expect(eventReads).toBeGreaterThanOrEqual(views.length + apiViews.length - 9);
  });

  it("pages events and dead letters across both shards with a small limit: each exactly once, newest first", async () => {
    stubDestinations((req) =>
      new URL(req.url).hostname === "erp.example.test" ? new Response("no", { status: 400 }) : new Response("ok"),
    );
    const queue = captureDeliveryQueue();
    // Only this test's events from here on: the lists below are read from `since`.
    const since = new Date(Date.now() - 1).toISOString();
    const ids: string[] = [];
    // More than a dashboard page (PAGE_SIZE 50), so its "Older events" link is followed too.
    for (let i = 0; i < 55; i++) ids.push(await labEvent("pair"));
    await deliver(queue);
    const { cookie } = await signIn();
    // Placed by their digests: some in each shard, or this test would not merge anything.
    expect(ids.some((id) => id.startsWith("evt_0_")) && ids.some((id) => id.startsWith("evt_1_"))).toBe(true);
    // The order every list must give: newest first by (received_at, id), over both shards together.
    const positions = await Promise.all(
      ids.map(async (id) => ({
        id,
        at: (await dbOfEvent(id)
          .prepare("SELECT received_at FROM events WHERE id = ?1")
          .bind(id)
          .first<number>("received_at"))!,
      })),
    );
    const expected = positions.sort((a, b) => b.at - a.at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)).map((p) => p.id);

    type Page = { nextCursor: string | null };
    async function pageApi<T extends Page>(path: string, idsOf: (page: T) => string[]) {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res = await worker.fetch(
          new Request(`${ORIGIN}/admin${path}${cursor ? `&cursor=${cursor}` : ""}`, {
            headers: headersFor("/admin", cookie),
          }),
          env,
          ctx,
        );
        expect(res.status, path).toBe(200);
        const page = await res.json<T>();
        seen.push(...idsOf(page));
        cursor = page.nextCursor;
        pages++;
      } while (cursor && pages < 100);
      return { seen, pages };
    }
    const query = `since=${encodeURIComponent(since)}&limit=4`;
    const events = await pageApi<Page & { events: { id: string }[] }>(`/events?${query}`, (p) =>
      p.events.map((e) => e.id),
    );
    expect(events.seen).toEqual(expected);
    expect(events.pages).toBeGreaterThanOrEqual(Math.ceil(ids.length / 4));
    // Narrowed (a window per shard) pages the same.
    const narrowed = await pageApi<Page & { events: { id: string }[] }>(
      `/events?source=lab&eventType=pair&${query}`,
      (p) => p.events.map((e) => e.id),
    );
    expect(narrowed.seen).toEqual(expected);
    // Dead letters page by event exactly like events: each erp delivery died, once per event.
    const dead = await pageApi<Page & { deliveries: { eventId: string; destination: string }[] }>(
      `/dead-letters?destination=erp&${query}`,
      (p) => p.deliveries.map((d) => d.eventId),
    );
    expect(dead.seen).toEqual(expected);

    // The dashboard's pages (50 each), through its "Older events" link.
    const listed: string[] = [];
    let next: string | null = `/events?since=${encodeURIComponent(since)}`;
    for (let pages = 0; next && pages < 10; pages++) {
      const html = await page(next, cookie);
      const body = html.slice(html.indexOf("<tbody>"), html.indexOf("</tbody>"));
      listed.push(...[...body.matchAll(/href="\/dashboard\/events\/(evt_[0-9a-z_]+)"/g)].map((m) => m[1]!));
      const older = html.match(/<a href="([^"]+)">Older events<\/a>/)?.[1];
      next = older ? older.replace(/&amp;/g, "&").replace("/dashboard", "") : null;
    }
    expect(listed).toEqual(expected);
  });

  it("a page view reads each shard with one bounded statement, however many events the shards hold", async () => {
    const { cookie } = await signIn();
    const views = [
      "/dashboard/events",
      "/admin/events?limit=5",
      "/dashboard/dead-letters",
      "/admin/dead-letters?limit=5",
    ];
    /** Per shard: the statements that read events, and the rows D1 billed for them. */
    const costOf = async (view: string) => {
      const captured = capturing();
      const res = await worker.fetch(
        new Request(`${ORIGIN}${view}`, { headers: headersFor(view, cookie), redirect: "manual" }),
        captured.env,
        ctx,
      );
      expect(res.status, view).toBe(200);
      await res.text();
      return SHARD_BINDINGS.map((binding) => {
        const reads = captured.seen.filter((s) => s.binding === binding && /\bevents\b/.test(s.sql));
        return { binding, statements: reads.length, rowsRead: reads.reduce((n, r) => n + (r.rowsRead ?? 0), 0) };
      });
    };
    stubDestinations((req) =>
      new URL(req.url).hostname === "erp.example.test" ? new Response("no", { status: 400 }) : new Response("ok"),
    );
    const queue = captureDeliveryQueue();
    // Enough in each shard for full pages of 5 there, before and after.
    const perShard = [0, 0];
    for (let i = 0; i < 200 && Math.min(...perShard) < 6; i++) {
      const id = await labEvent("pair");
      perShard[id.startsWith("evt_0_") ? 0 : 1]!++;
    }
    expect(Math.min(...perShard)).toBeGreaterThanOrEqual(6);
    await deliver(queue);
    const before = await Promise.all(views.map(costOf));
    for (const [i, view] of views.entries())
      for (const shard of before[i]!) {
        // One statement per shard, not one per event; and what it reads is bounded by the page (a page of 50 reads
        // an event row and an index entry per event it lists, and its json_each rows).
        expect(shard.statements, `${view} on ${shard.binding}`).toBe(1);
        expect(shard.rowsRead, `${view} on ${shard.binding}`).toBeGreaterThan(0);
      }
    // Twice as many events later, the same statements read the same rows: a page's cost does not follow the table.
    for (let i = 0; i < 60; i++) await labEvent("pair");
    await deliver(queue);
    const after = await Promise.all(views.map(costOf));
    for (const [i, view] of views.entries())
      for (const [j, shard] of after[i]!.entries()) {
        expect(shard.statements, `${view} on ${shard.binding}`).toBe(1);
        if (view.includes("limit=5"))
          expect(shard.rowsRead, `${view} on ${shard.binding}`).toBe(before[i]![j]!.rowsRead);
      }
  });

  it("seeks a deep page's cursor in the index: each read of events is a SEARCH from it, never a SCAN", async () => {
    const erpRefuses = (req: Request) => new URL(req.url).hostname === "erp.example.test";
    stubDestinations((req) => (erpRefuses(req) ? new Response("no", { status: 400 }) : new Response("ok")));
    const queue = captureDeliveryQueue();
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push(await labEvent("pair"));
    await deliver(queue);
    const { cookie } = await signIn();
    // A cursor past all but the oldest two of them, as "Older events" and "More" hand out: a page there must seek it,
    // not walk the 27 newer entries (and, in production, every newer event) to reach it.
    const deep = await dbOfEvent(ids[2]!)
      .prepare("SELECT received_at, id FROM events WHERE id = ?1")
      .bind(ids[2])
      .first<{ received_at: number; id: string }>();
    const cursor = encodeCursor([deep!.received_at, deep!.id]);
    const readsOfEvents = async (db: D1Database, sql: string, params: unknown[]) => {
      const plan = await db
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .bind(...params)
        .all<{ detail: string }>();
      return plan.results.map((r) => r.detail).filter((d) => /^(SCAN|SEARCH) (e|events)\b/.test(d));
    };
    const SEEK = /^SEARCH (e|events) USING (COVERING )?INDEX \S+ \(.*\(received_at,id\)<\(\?,\?\)\)$/;
    const seeksCursor = (reads: string[]) =>
      reads.every((d) => d.startsWith("SEARCH")) && reads.some((d) => SEEK.test(d));
    // The check itself: the keyset as an OR, as it was written before row values, walks the index from its newest end.
    const or = `SELECT id FROM events WHERE (received_at < ? OR (received_at = ? AND id < ?))
                ORDER BY received_at DESC, id DESC LIMIT 50`;
    const walked = await readsOfEvents(env.DB, or, [deep!.received_at, deep!.received_at, deep!.id]);
    expect(seeksCursor(walked)).toBe(false);

    const since = new Date(Date.now() - 3_600_000).toISOString();
    const views = [
      `/events?cursor=${cursor}`,
      `/events?status=dead&cursor=${cursor}`,
      `/events?source=lab&type=pair&cursor=${cursor}`,
      `/events?since=${since}&cursor=${cursor}`,
      `/dead-letters?cursor=${cursor}`,
      `/dead-letters?destination=erp&cursor=${cursor}`,
    ].flatMap((view) => [`/dashboard${view}`, `/admin${view.replace("type=", "eventType=")}`]);
    for (const view of views) {
      const captured = capturing();
      const res = await worker.fetch(
        new Request(`${ORIGIN}${view}`, { headers: headersFor(view, cookie), redirect: "manual" }),
        captured.env,
        ctx,
      );
      expect(res.status, view).toBe(200);
      // The page starts past the cursor: the two events older than it, not the cursor's own or a newer one.
      const html = await res.text();
      expect(html, view).toContain(ids[0]);
      expect(html, view).toContain(ids[1]);
      expect(html, view).not.toContain(ids[2]);
      expect(html, view).not.toContain(ids[29]);
      const paged = captured.seen.filter(({ sql }) => /\bevents\b/.test(sql) && /\(received_at, id\) </.test(sql));
      // Every shard is read from the same cursor, each seeking it in its own index.
      expect([...new Set(paged.map((p) => p.binding))].sort(), view).toEqual([...SHARD_BINDINGS]);
      for (const { binding, db, sql, params } of paged) {
        const reads = await readsOfEvents(db, sql, params);
        expect(seeksCursor(reads), `${view} on ${binding}: ${sql}\n${reads.join("\n")}`).toBe(true);
      }
    }
  });
});

describe("the event page, built for triage", () => {
  /** A Weedmaps Create of its own order (the fixture's is taken by another test of this file), signed. */
  async function createOf(orderId: string) {
    const body = fixture("weedmaps/create").body.replace("9763822", orderId);
    const res = await post("/webhooks/weedmaps?merchant_id=4242", body, { Signature: await weedmapsSignature(body) });
    expect(res.status).toBe(200);
    return { body, eventId: (await res.json<{ eventId: string }>()).eventId };
  }

  /** Everything the router logged while `run` ran. */
  async function logsOf(run: () => Promise<void>): Promise<string> {
    const spies = (["log", "info", "warn", "error"] as const).map((level) => vi.spyOn(console, level));
    await run();
    return spies.flatMap((spy) => spy.mock.calls.map((call) => call.map(String).join(" "))).join("\n");
  }

  it("shows what a failing destination answered (status, headers, excerpt) with the error readable and the customer's field redacted; a reveal shows it; no log has it", async () => {
    const customer = (JSON.parse(fixture("weedmaps/create").body) as { customer: Record<string, string> }).customer;
    // An ERP that refuses the order and names the field, echoing the customer's record as ERPs do.
    const refusal = JSON.stringify({
      error: {
        code: "customer_invalid",
        message: "customer.phone is not a valid E.164 number",
        field: "customer.phone",
      },
      customer: { phone: customer.phone, lastName: customer.lastName },
    });
    stubDestinations(
      () =>
        new Response(refusal, {
          status: 400,
          headers: {
            "content-type": "application/json",
            "x-request-id": "req-7d1f",
            "x-erp-session": "erp-internal-7731",
            "set-cookie": "sid=erp-cookie-4410",
          },
        }),
    );
    const queue = captureDeliveryQueue();
    let created = { body: "", eventId: "" };
    const logged = await logsOf(async () => {
      created = await createOf("9763901");
      await deliver(queue);
    });
    const { body, eventId } = created;
    const { cookie } = await signIn();

    // Kept sealed in the row, like the excerpt: neither is readable there.
    const [pos] = (await deliveriesOf(eventId)).filter((d) => d.destination === "pos");
    const [attempt] = JSON.parse(pos!.attempt_log) as { responseHeaders: string; responseExcerpt: string }[];
    expect(attempt!.responseHeaders).toMatch(/^pe[12]:/);
    expect(attempt!.responseExcerpt).toMatch(/^pe[12]:/);

    const html = await page(`/events/${eventId}`, cookie);
    const text = visible(html);
    expect(text).toContain("pos · generation 1 · dead");
    expect(text).toContain("Attempt 1: what pos answered (400)");
    expect(text).toContain("content-type: application/json");
    expect(text).toContain("x-request-id: req-7d1f");
    expect(text).toContain("x-erp-session: [redacted]");
    expect(text).toContain("set-cookie: (value not kept)");
    expect(text).toContain('"code": "customer_invalid"');
    expect(text).toContain('"message": "customer.phone is not a valid E.164 number"');
    expect(text).toContain('"customer": "[redacted]"');
    expect(text).toContain("Customer data redacted: customer.");
    expect(shownIn(html, [...piiValues({ "weedmaps/create": body }), "erp-internal-7731", "erp-cookie-4410"])).toEqual(
      [],
    );
    // Deliveries first; the payload below them, collapsed.
    expect(html.indexOf("<h2>Deliveries</h2>")).toBeGreaterThan(-1);
    expect(html.indexOf("<h2>Deliveries</h2>")).toBeLessThan(html.indexOf("<h2>Payload</h2>"));
    expect(html).toMatch(/<details>\s*<summary>The payload<\/summary>\s*<pre>/);
    // A dead delivery offers a replay, through its confirmation.
    expect(html).toContain(`href="/dashboard/events/${eventId}/replay?destination=pos"`);

    // The admin API shows the same, from the same operation.
    const api = await (await adminFetch("GET", `/events/${eventId}`)).json<{
      deliveries: {
        destination: string;
        attemptLog: {
          responseExcerpt: string;
          responseRedacted: string[];
          responseHeaders: { headers: { name: string; value: string | null }[] };
        }[];
      }[];
    }>();
    const [apiAttempt] = api.deliveries.find((d) => d.destination === "pos")!.attemptLog;
    expect(JSON.parse(apiAttempt!.responseExcerpt)).toEqual({ ...JSON.parse(refusal), customer: "[redacted]" });
    expect(apiAttempt!.responseRedacted).toEqual(["customer"]);
    expect(apiAttempt!.responseHeaders.headers).toEqual(
      expect.arrayContaining([
        { name: "x-request-id", value: "req-7d1f" },
        { name: "x-erp-session", value: "[redacted]" },
        { name: "set-cookie", value: null },
      ]),
    );

    const shown = await request("POST", `/events/${eventId}/reveal`, {
      cookie,
      form: { reveal_token: env.ADMIN_REVEAL_TOKEN as string },
    });
    expect(shown.status).toBe(200);
    const revealed = visible(await shown.text());
    expect(revealed).toContain(`"phone": "${customer.phone}"`);
    expect(revealed).toContain("x-erp-session: erp-internal-7731");
    expect(revealed).not.toContain("erp-cookie-4410");

    // The attempt's log lines name the event, the status and the error class; nothing the destination said.
    expect(logged).toContain(eventId);
    for (const value of [
      "customer.phone is not a valid",
      "customer_invalid",
      "req-7d1f",
      "erp-internal-7731",
      "erp-cookie-4410",
      customer.phone!,
    ])
      expect(logged, value).not.toContain(value);
  });

  /**
   * Posts a Draft and waits for the work it leaves in waitUntil (storing it). Its own Worker, on a clock two minutes
   * behind: the Draft is stored before any event another test of this file counts in its last minute, whatever order
   * the shuffle gives (the dashboard's clock runs a second ahead of the real one, see catchUp).
   */
  async function draftOf(orderId: string, answer: (order: Record<string, unknown>) => void) {
    const body = fixture("weedmaps/draft").body.replace("9779604", orderId);
    const draftClock = new ManualClock(Date.now() - 120_000);
    stubDestinations(async (req) => {
      const order = JSON.parse(await req.text()) as Record<string, unknown>;
      answer(order);
      draftClock.advance(180);
      return new Response(JSON.stringify(order), { headers: { "content-type": "application/json" } });
    });
    const executed = createExecutionContext();
    const res = await createWorker({ clock: draftClock }).fetch(
      new Request(`${ORIGIN}/webhooks/weedmaps?merchant_id=4242`, {
        method: "POST",
        body,
        headers: { "content-type": "application/json", Signature: await weedmapsSignature(body) },
      }),
      env,
      executed,
    );
    await waitOnExecutionContext(executed);
    vi.restoreAllMocks();
    let eventId: string | undefined;
    for (const db of [env.DB, env.SHARD_1]) {
      eventId ??=
        (await db.prepare("SELECT id FROM events WHERE provider_id = ?1").bind(orderId).first<string>("id")) ??
        undefined;
    }
    expect(eventId, `the Draft of ${orderId} is stored`).toBeDefined();
    return { status: res.status, body, eventId: eventId! };
  }

  it("shows a Draft's verdict, responder and latency, and a field-level diff of what the POS changed", async () => {
    const { status, body, eventId } = await draftOf("draft-dash-1", (o) => {
      const items = o.lineItems as Record<string, unknown>[];
      items[1]!.quantity = 0;
      o.taxes = [
        { name: "State Excise Tax", taxType: "EXCISE", amount: "7.41" },
        { name: "Local Sales Tax", taxType: "SALES", amount: "4.69" },
      ];
      Object.assign(o, { subtotal: "35.00", taxTotal: "12.10", grandTotal: "46.50" });
    });
    expect(status).toBe(200);
    const { cookie } = await signIn();
    const html = await page(`/events/${eventId}`, cookie);
    const text = visible(html);
    expect(html).toContain('<span class="pill pill-ok">passed</span>');
    expect(text).toContain("The answer was the order, within the rules, and was relayed as it came.");
    expect(text).toContain("Responder pricing, answered 200");
    expect(text).toContain("Latency 180 ms");
    expect(text).toContain("Weedmaps received 200");
    expect(text).toContain("Sour Diesel Pre-Roll 1g (unavailable) quantity 2 0 -2");
    expect(text).toContain("Estimated taxes (removed) amount 11.86 —");
    expect(text).toContain("State Excise Tax (added) amount — 7.41");
    expect(text).toContain("taxTotal 11.86 12.10 +0.24");
    expect(text).toContain("grandTotal 62.26 46.50 -15.76");
    // The two orders themselves are collapsed below, one under the other, never side by side.
    expect(html).not.toContain('class="columns"');
    expect(html).toMatch(/<details>\s*<summary>What Weedmaps sent<\/summary>/);
    expect(html).toMatch(/<details>\s*<summary>What it was answered \(200\)<\/summary>/);
    expect(html.indexOf("What the POS changed")).toBeLessThan(html.indexOf("<h2>Payload</h2>"));
    expect(shownIn(html, piiValues({ "weedmaps/draft": body }))).toEqual([]);
  });

  it("says why a Draft answer was refused, by its rule and field, and that Weedmaps kept its estimate", async () => {
    const { status, eventId } = await draftOf("draft-dash-2", (o) => {
      o.customer = { id: "someone-else" };
    });
    expect(status).toBe(502);
    const { cookie } = await signIn();
    const html = await page(`/events/${eventId}`, cookie);
    const text = visible(html);
    expect(html).toContain('<span class="pill pill-bad">refused</span>');
    expect(text).toContain(
      "Refused: The draft responder's answer changes a part of the order it may not change (draft_answer_immutable, at customer). Weedmaps kept its estimate.",
    );
    expect(text).toContain("Weedmaps received 502");
    expect(text).toContain("Nothing to compare: no order was relayed, so Weedmaps kept its own estimate.");
  });
});
