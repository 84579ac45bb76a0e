/**
 * The dashboard's session cookie. A sign-in (src/operations/sessions.ts) stores the session as a row in D1; the
 * cookie holds its id and expiry, signed (HMAC-SHA256, Hono's signed cookies) with a key derived from the admin
 * token, so a rotated token ends every session. HttpOnly, SameSite=Strict, and Secure everywhere but loopback.
 * Sign-out revokes the row, so a copy of the cookie stops working too; a page view checks the signature first, then
 * reads that one row by its key.
 */
import type { Context } from "hono";
import { deleteCookie, getSignedCookie, setSignedCookie } from "hono/cookie";
import { readVar } from "../config/load.ts";
import { errorMessage } from "../core/errors.ts";
import type { Actor, OperationContext } from "../operations/context.ts";
import { SESSION_MS, sessionLive, signOut, signOutEverywhere } from "../operations/sessions.ts";
import { logEvent } from "../telemetry/log.ts";

export { SESSION_MS } from "../operations/sessions.ts";

export const SESSION_COOKIE = "router_session";

type DashboardContext = Context<{ Bindings: Env }>;

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** `wrangler dev` serves plain http on loopback, where a Secure cookie would never come back. */
export function isLoopback(url: string): boolean {
  return LOOPBACK.has(new URL(url).hostname);
}

function sessionKey(env: Env): string | null {
  const token = readVar(env, "ADMIN_TOKEN");
  return token ? `webhook-router dashboard session:${token}` : null;
}

interface SessionCookie {
  sid: string;
  exp: number;
}

/** The cookie's session, when it is signed by the current admin token, well formed and not expired; no D1 read. */
async function cookieSession(c: DashboardContext, now: number): Promise<SessionCookie | null> {
  const key = sessionKey(c.env);
  if (!key) return null;
  const value = await getSignedCookie(c, key, SESSION_COOKIE);
  if (!value) return null;
  let parsed: Partial<SessionCookie>;
  try {
    parsed = JSON.parse(value) as Partial<SessionCookie>;
  } catch (err) {
    // Signed by this router, so never expected: logged, and the browser signs in again.
    logEvent("warn", "session_cookie_unreadable", {
      requestId: c.get("requestId") ?? null,
      errorMessage: errorMessage(err),
    });
    return null;
  }
  const { sid, exp } = parsed;
  return typeof sid === "string" && /^[0-9a-f]{32}$/.test(sid) && typeof exp === "number" && exp > now
    ? { sid, exp }
    : null;
}

const cookieOptions = (c: DashboardContext) => ({ path: "/dashboard", secure: !isLoopback(c.req.url) });

/** The cookie that names a session a sign-in started. */
export async function setSessionCookie(c: DashboardContext, session: SessionCookie): Promise<void> {
  const key = sessionKey(c.env);
  if (!key) throw new Error("ADMIN_TOKEN is not set");
  await setSignedCookie(
    c,
    SESSION_COOKIE,
    JSON.stringify({ sid: session.sid, exp: session.exp } satisfies SessionCookie),
    key,
    {
      ...cookieOptions(c),
      httpOnly: true,
      sameSite: "Strict",
      maxAge: SESSION_MS / 1000,
    },
  );
}

/** Sign-out: the session's row is revoked (when the cookie names a live one), and the browser's cookie deleted. */
export async function endSession(c: DashboardContext, ctx: OperationContext, actor: Actor): Promise<void> {
  const session = await cookieSession(c, ctx.clock.now());
  if (session) await signOut(ctx, actor, session.sid);
  deleteCookie(c, SESSION_COOKIE, cookieOptions(c));
}

/** "Sign out everywhere": every live session is revoked, this one included. Returns how many were. */
export async function endAllSessions(c: DashboardContext, ctx: OperationContext, actor: Actor): Promise<number> {
  const revoked = await signOutEverywhere(ctx, actor);
  deleteCookie(c, SESSION_COOKIE, cookieOptions(c));
  return revoked;
}

/**
 * A session whose cookie is signed by the current admin token and not expired, and whose row is not revoked: the
 * signature is checked first, so a forged or stale cookie costs no D1 read; a good one costs one primary-key read.
 */
export async function hasSession(c: DashboardContext, ctx: OperationContext): Promise<boolean> {
  const session = await cookieSession(c, ctx.clock.now());
  return session !== null && (await sessionLive(ctx, session.sid));
}
