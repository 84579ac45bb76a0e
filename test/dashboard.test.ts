import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createWorker } from "../src/app/worker.ts";
import { SESSION_MS } from "../src/dashboard/session.ts";
import { captureDeliveryQueue, fixture, ManualClock, post, runDeliveryQueue, stubDestinations } from "./helpers.ts";
import { piiValues } from "./pii.ts";

/**
 * The dashboard through the Worker's fetch handler: sign-in, the session cookie's flags, CSRF, and what the pages
 * show. (The browser walk-through of issue #16 is not written yet.)
 */
afterEach(() => vi.restoreAllMocks());

const ORIGIN = "https://router.example.test";
const clock = new ManualClock(Date.now());
const worker = createWorker({ clock });
const ctx = { waitUntil: () => undefined, passThroughOnException: () => undefined, props: {} } as unknown as ExecutionContext;

function request(method: string, path: string, { cookie, form, origin = ORIGIN, base = ORIGIN }: { cookie?: string; form?: Record<string, string>; origin?: string | null; base?: string } = {}) {
  const headers: Record<string, string> = {};
  if (cookie) headers.cookie = cookie;
  if (form) headers["content-type"] = "application/x-www-form-urlencoded";
  if (form && origin) headers.origin = origin;
  return worker.fetch(new Request(`${base}/dashboard${path}`, { method, headers, body: form ? new URLSearchParams(form).toString() : undefined, redirect: "manual" }), env, ctx);
}

async function signIn(base = ORIGIN): Promise<{ cookie: string; setCookie: string }> {
  const res = await request("POST", "/sign-in", { form: { token: env.ADMIN_TOKEN as string }, origin: base, base });
  expect(res.status).toBe(303);
  expect(res.headers.get("location")).toBe("/dashboard/events");
  const setCookie = res.headers.get("set-cookie")!;
  return { cookie: setCookie.split(";")[0]!, setCookie };
}

describe("sign-in", () => {
  it("sends a page without a session to sign in", async () => {
    for (const path of ["/", "/events", "/destinations", "/dead-letters"]) {
      const res = await request("GET", path);
      expect(res.status).toBe(303);
      expect(res.headers.get("location")).toBe("/dashboard/sign-in");
    }
    const page = await request("GET", "/sign-in");
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<label>Admin token<input name="token" type="password"');
  });

  it("refuses a wrong token without a cookie", async () => {
    const res = await request("POST", "/sign-in", { form: { token: "not-the-token" } });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/dashboard/sign-in?failed=1");
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  it("sets a signed, HttpOnly, SameSite=Strict cookie with an expiry, Secure except on loopback", async () => {
    const { setCookie } = await signIn();
    expect(setCookie).toMatch(/^router_session=[^;]+; Max-Age=28800; Path=\/dashboard; HttpOnly; Secure; SameSite=Strict$/);
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
    clock.advance(SESSION_MS + 1);
    expect((await request("GET", "/events", { cookie })).status).toBe(303);
    const fresh = await signIn();
    const rotated = await worker.fetch(new Request(`${ORIGIN}/dashboard/events`, { headers: { cookie: fresh.cookie }, redirect: "manual" }), { ...env, ADMIN_TOKEN: "a-new-admin-token" } as Env, ctx);
    expect(rotated.status).toBe(303);
  });

  it("refuses a form posted from another origin (CSRF), and signs out", async () => {
    const { cookie } = await signIn();
    const forged = await request("POST", "/destinations/pos/pause", { cookie, form: { reason: "forged" }, origin: "https://evil.example" });
    expect(forged.status).toBe(403);
    const noOrigin = await request("POST", "/destinations/pos/pause", { cookie, form: { reason: "forged" }, origin: null });
    expect(noOrigin.status).toBe(403);
    expect((await forged.json<{ error: { code: string } }>()).error.code).toBe("cross_origin_request");
    const out = await request("POST", "/sign-out", { cookie, form: {} });
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toMatch(/^router_session=; Max-Age=0; Path=\/dashboard/);
  });
});

describe("pages", () => {
  it("finds an event by order id, shows its payload redacted and its attempts, and replays it", async () => {
    const queue = captureDeliveryQueue();
    stubDestinations(() => new Response("ok"));
    const f = fixture("weedmaps/create");
    const res = await post("/webhooks/weedmaps?merchant_id=4242", f.body, { Signature: f.signature });
    const { eventId } = await res.json<{ eventId: string }>();
    await runDeliveryQueue([queue.messages.find((m) => m.body.eventId === eventId)!.body]);
    const { cookie } = await signIn();

    const list = await (await request("GET", "/events?orderId=9763822", { cookie })).text();
    expect(list).toContain(`href="/dashboard/events/${eventId}"`);
    expect(await (await request("GET", "/events?orderId=no-such-order", { cookie })).text()).toContain("No events match.");

    const page = await (await request("GET", `/events/${eventId}`, { cookie })).text();
    expect(page).toContain("Customer data redacted: customer");
    for (const value of piiValues({ "weedmaps/create": f.body })) expect(page).not.toContain(value);
    expect(page).toMatch(/pos · generation 1 · <span class="status-delivered">delivered<\/span>/);
    expect(page).toContain("<td>200</td>");

    const replay = await request("POST", `/events/${eventId}/replay`, { cookie, form: { destination: "pos" } });
    expect(replay.status).toBe(303);
    expect(replay.headers.get("location")).toBe(`/dashboard/events/${eventId}?replayed=pos`);
    expect(await (await request("GET", `/events/${eventId}?replayed=pos`, { cookie })).text()).toContain("pos · generation 2");
  });

  it("pauses and resumes a destination from its page, and lists dead letters", async () => {
    const { cookie } = await signIn();
    const paused = await request("POST", "/destinations/ctl1/pause", { cookie, form: { reason: "maintenance" } });
    expect(paused.status).toBe(303);
    const page = await (await request("GET", "/destinations", { cookie })).text();
    expect(page).toMatch(/<td>ctl1<\/td>(<td>\d+<\/td>){2}<td[^>]*>\d+<\/td><td>paused<\/td>/);
    expect(page).toContain('aria-label="Resume ctl1"');
    expect((await request("POST", "/destinations/ctl1/resume", { cookie, form: {} })).status).toBe(303);
    expect(await (await request("GET", "/destinations", { cookie })).text()).toContain('aria-label="Pause ctl1"');
    expect((await request("POST", "/destinations/ctl1/pause", { cookie, form: { reason: " " } })).status).toBe(400);
    expect((await request("GET", "/dead-letters", { cookie })).status).toBe(200);
  });
});
