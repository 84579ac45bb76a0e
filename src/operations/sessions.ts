/**
 * The dashboard's sign-in and sign-out as operator actions: the admin token typed once starts a session (a row in
 * D1, src/storage/sessions.ts), each wrong token is a throttled, audited attempt, and sign-out revokes the row. The
 * cookie that carries the session's id is the dashboard's own (src/dashboard/session.ts).
 */
import { readVar } from "../config/load.ts";
import { verifyHeaderToken } from "../core/signatures/inbound.ts";
import { tokenId } from "../core/signatures/token-id.ts";
import { failAttempt, guardAttempt, passAttempt, type Attempt } from "../storage/attempts.ts";
import { auditId } from "../storage/audit.ts";
import { createSession, newSessionId, revokeAllSessions, revokeSession, sessionIsLive } from "../storage/sessions.ts";
import type { Actor, OperationContext, Origin } from "./context.ts";

/** How long a sign-in lasts. */
export const SESSION_MS = 8 * 60 * 60 * 1000;

/** Whether the typed token is the admin token, in constant time; never, when it is unset. */
function isAdminToken(env: Env, typed: string): boolean {
  const token = readVar(env, "ADMIN_TOKEN");
  return Boolean(token) && verifyHeaderToken(typed, [token!], "").ok;
}

const sessionTag = (sid: string) => sid.slice(0, 8);

/**
 * A sign-in: a locked-out client is refused (429 `too_many_attempts`) before the token is compared, so it learns
 * nothing, not even from the right token. A wrong token is counted and audited without it, and gives null. The
 * right one starts a session (its row with its audit entry) and gives its id and expiry.
 */
export async function signIn(
  ctx: OperationContext,
  origin: Origin,
  typed: string,
): Promise<{ sid: string; exp: number } | null> {
  const now = ctx.clock.now();
  const attempt: Attempt = { db: ctx.env.DB, scope: "sign_in", now, ...origin };
  const standing = await guardAttempt(attempt);
  if (!isAdminToken(ctx.env, typed)) {
    await failAttempt(attempt, typed ? "token_mismatch" : "token_missing");
    return null;
  }
  await passAttempt(attempt, standing);
  const sid = newSessionId();
  const exp = now + SESSION_MS;
  await createSession(ctx.env.DB, sid, now, exp, {
    id: auditId(now),
    at: now,
    action: "sign_in",
    tokenId: await tokenId(readVar(ctx.env, "ADMIN_TOKEN")!),
    eventId: null,
    // A prefix of the session id ties sign-in and sign-out together in the log without handing out a live id.
    detail: { client: origin.client, session: sessionTag(sid), requestId: origin.requestId },
  });
  return { sid, exp };
}

/** Whether a session the cookie names is live: not expired, not revoked. One primary-key read. */
export function sessionLive(ctx: OperationContext, sid: string): Promise<boolean> {
  return sessionIsLive(ctx.env.DB, sid, ctx.clock.now());
}

/** Sign-out: this session ends now, wherever its cookie was copied to. */
export async function signOut(ctx: OperationContext, actor: Actor, sid: string): Promise<void> {
  const now = ctx.clock.now();
  await revokeSession(ctx.env.DB, sid, now, {
    id: auditId(now),
    at: now,
    action: "sign_out",
    tokenId: actor.tokenId,
    eventId: null,
    detail: { client: actor.client, session: sessionTag(sid), requestId: actor.requestId },
  });
}

/** "Sign out everywhere": every live session is revoked, this one included. Returns how many were. */
export function signOutEverywhere(ctx: OperationContext, actor: Actor): Promise<number> {
  const now = ctx.clock.now();
  return revokeAllSessions(ctx.env.DB, now, (count) => ({
    id: auditId(now),
    at: now,
    action: "sign_out_everywhere",
    tokenId: actor.tokenId,
    eventId: null,
    detail: { client: actor.client, revoked: count, requestId: actor.requestId },
  }));
}
