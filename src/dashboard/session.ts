/**
 * The dashboard's sign-in: the admin token, typed once into a form, becomes a signed session cookie. The cookie
 * holds only its expiry, signed (HMAC-SHA256, Hono's signed cookies) with a key derived from the admin token, so a
 * rotated token ends every session. HttpOnly, SameSite=Strict, and Secure everywhere but loopback.
 */
import type { Context } from "hono";
import { deleteCookie, getSignedCookie, setSignedCookie } from "hono/cookie";
import { readVar } from "../config/load.ts";
import { verifyHeaderToken } from "../core/signatures/inbound.ts";

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

export async function startSession(c: DashboardContext, now: number): Promise<void> {
  const key = sessionKey(c.env);
  if (!key) throw new Error("ADMIN_TOKEN is not set");
  await setSignedCookie(c, SESSION_COOKIE, JSON.stringify({ exp: now + SESSION_MS }), key, {
    path: "/dashboard",
    httpOnly: true,
    sameSite: "Strict",
    secure: !isLoopback(c.req.url),
    maxAge: SESSION_MS / 1000,
  });
}

export function endSession(c: DashboardContext): void {
  deleteCookie(c, SESSION_COOKIE, { path: "/dashboard", secure: !isLoopback(c.req.url) });
}

/** A session that is signed by the current admin token and not expired; a tampered or stale one is no session. */
export async function hasSession(c: DashboardContext, now: number): Promise<boolean> {
  const key = sessionKey(c.env);
  if (!key) return false;
  const value = await getSignedCookie(c, key, SESSION_COOKIE);
  if (!value) return false;
  try {
    const { exp } = JSON.parse(value) as { exp?: unknown };
    return typeof exp === "number" && exp > now;
  } catch {
    return false;
  }
}
