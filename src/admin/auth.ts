import type { MiddlewareHandler } from "hono";
import { readVar } from "../config/load.ts";
import { RouterError } from "../core/errors.ts";
import { verifyHeaderToken } from "../core/signatures/inbound.ts";
import { tokenId } from "../core/signatures/token-id.ts";
import { failAttempt, guardAttempt, passAttempt, type Attempt } from "../storage/attempts.ts";

type AdminEnv = { Bindings: Env };

/** Bearer auth against the ADMIN_TOKEN secret, in constant time. Unset token: the API is off, never open. */
export function requireAdminToken(): MiddlewareHandler<AdminEnv> {
  return async function requireAdminToken(c, next) {
    const token = readVar(c.env, "ADMIN_TOKEN");
    if (!token) throw new RouterError("admin_disabled", { detail: "ADMIN_TOKEN is not set" });
    const result = verifyHeaderToken(c.req.header("authorization"), [token], "Bearer ");
    if (!result.ok) {
      throw new RouterError("unauthorized", { detail: `admin: ${result.reason}`, headers: { "WWW-Authenticate": 'Bearer realm="admin"' } });
    }
    await next();
  };
}

/** The admin token's id, for actions the audit log attributes (the request has passed requireAdminToken). */
export async function adminTokenId(env: Env): Promise<string> {
  return tokenId(readVar(env, "ADMIN_TOKEN")!);
}

/**
 * Revealing customer data takes a second secret, `ADMIN_REVEAL_TOKEN`, in `X-Reveal-Token`: the admin token alone
 * (held by scripts and dashboards) shows redacted payloads only. A wrong or missing token is a failed attempt,
 * audited without the token and throttled per client (src/storage/attempts.ts), like the dashboard's. Returns the
 * reveal token's id for the audit log.
 */
export async function requireRevealToken(env: Env, header: string | undefined, attempt: Attempt): Promise<string> {
  const token = readVar(env, "ADMIN_REVEAL_TOKEN");
  if (!token) throw new RouterError("reveal_forbidden", { detail: "ADMIN_REVEAL_TOKEN is not set: revealing is off" });
  const standing = await guardAttempt(attempt);
  if (!header) {
    await failAttempt(attempt, "token_missing");
    throw new RouterError("reveal_token_required");
  }
  if (!verifyHeaderToken(header, [token], "").ok) {
    await failAttempt(attempt, "token_mismatch");
    throw new RouterError("reveal_forbidden", { detail: "reveal: token_mismatch" });
  }
  await passAttempt(attempt, standing);
  return tokenId(token);
}
