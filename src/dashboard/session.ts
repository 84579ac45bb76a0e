/**
 * The dashboard's sign-in: the admin token, typed once into a form, starts a session. The session is a row in D1
 * (src/storage/sessions.ts), and the cookie holds its id and expiry, signed (HMAC-SHA256, Hono's signed cookies)
 * with a key derived from the admin token, so a rotated token ends every session. HttpOnly, SameSite=Strict, and
 * Secure everywhere but loopback. Sign-out revokes the row, so a copy of the cookie stops working too; a page view
 * checks the signature first, then reads that one row by its key.
 */
import type { Context } from "hono";
import { deleteCookie, getSignedCookie, setSignedCookie } from "hono/cookie";
import { readVar } from "../config/load.ts";
import { verifyHeaderToken } from "../core/signatures/inbound.ts";
import { tokenId } from "../core/signatures/token-id.ts";
import { auditId } from "../storage/audit.ts";
import { createSession, newSessionId, revokeAllSessions, revokeSession, sessionIsLive } from "../storage/sessions.ts";

export const SESSION_COOKIE = "router_session";
/** How long a sign-in lasts. */
export const SESSION_MS = 8 * 60 * 60 * 1000;

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

/** Whether the typed token is the admin token, in constant time. */
export function tokenMatches(env: Env, typed: string): boolean {
  const token = readVar(env, "ADMIN_TOKEN");
  return Boolean(token) && verifyHeaderToken(typed, [token!], "").ok;
}

/** Whether the typed token is the reveal token (ADMIN_REVEAL_TOKEN), in constant time; never, when it is unset. */
export function revealTokenMatches(env: Env, typed: string): boolean {
  const token = readVar(env, "ADMIN_REVEAL_TOKEN");
  return Boolean(token) && verifyHeaderToken(typed, [token!], "").ok;
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
  try {
    const { sid, exp } = JSON.parse(value) as Partial<SessionCookie>;
    return typeof sid === "string" && /^[0-9a-f]{32}$/.test(sid) && typeof exp === "number" && exp > now ? { sid, exp } : null;
  } catch {
    return null;
  }
}

const cookieOptions = (c: DashboardContext) => ({ path: "/dashboard", secure: !isLoopback(c.req.url) });

/** A new session: its row (with an audit entry) first, then the cookie that names it. */
export async function startSession(c: DashboardContext, now: number, client: string): Promise<void> {
  const key = sessionKey(c.env);
  if (!key) throw new Error("ADMIN_TOKEN is not set");
  const sid = newSessionId();
  const exp = now + SESSION_MS;
  await createSession(c.env.DB, sid, now, exp, {
    id: auditId(now),
    at: now,
    action: "sign_in",
    tokenId: await tokenId(readVar(c.env, "ADMIN_TOKEN")!),
    eventId: null,
    // A prefix of the session id ties sign-in and sign-out together in the log without handing out a live id.
    detail: { client, session: sid.slice(0, 8), requestId: c.get("requestId") ?? null },
  });
  await setSignedCookie(c, SESSION_COOKIE, JSON.stringify({ sid, exp } satisfies SessionCookie), key, {
    ...cookieOptions(c),
    httpOnly: true,
    sameSite: "Strict",
    maxAge: SESSION_MS / 1000,
  });
}

/** Sign-out: the session's row is revoked (when the cookie names a live one), and the browser's cookie deleted. */
export async function endSession(c: DashboardContext, now: number, client: string): Promise<void> {
  const session = await cookieSession(c, now);
  if (session) {
    await revokeSession(c.env.DB, session.sid, now, {
      id: auditId(now),
      at: now,
      action: "sign_out",
      tokenId: await tokenId(readVar(c.env, "ADMIN_TOKEN")!),
      eventId: null,
      detail: { client, session: session.sid.slice(0, 8), requestId: c.get("requestId") ?? null },
    });
  }
  deleteCookie(c, SESSION_COOKIE, cookieOptions(c));
}

/** "Sign out everywhere": every live session is revoked, this one included. Returns how many were. */
export async function endAllSessions(c: DashboardContext, now: number, client: string): Promise<number> {
  const by = await tokenId(readVar(c.env, "ADMIN_TOKEN")!);
  const revoked = await revokeAllSessions(c.env.DB, now, (count) => ({
    id: auditId(now),
    at: now,
    action: "sign_out_everywhere",
    tokenId: by,
    eventId: null,
    detail: { client, revoked: count, requestId: c.get("requestId") ?? null },
  }));
  deleteCookie(c, SESSION_COOKIE, cookieOptions(c));
  return revoked;
}

/**
 * A session whose cookie is signed by the current admin token and not expired, and whose row is not revoked: the
 * signature is checked first, so a forged or stale cookie costs no D1 read; a good one costs one primary-key read.
 */
export async function hasSession(c: DashboardContext, now: number): Promise<boolean> {
  const session = await cookieSession(c, now);
  return session !== null && (await sessionIsLive(c.env.DB, session.sid, now));
}
