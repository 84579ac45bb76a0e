import type { MiddlewareHandler } from "hono";
import { readVar } from "../config/load.ts";
import { RouterError } from "../core/errors.ts";
import { verifyHeaderToken } from "../core/signatures/inbound.ts";

type AdminEnv = { Bindings: Env };

/**
 * Bearer auth against the ADMIN_TOKEN secret, in constant time. Unset token: the API is off, never open. The reveal
 * token, the second secret a reveal takes, is checked by the reveal itself (src/operations/events.ts).
 */
export function requireAdminToken(): MiddlewareHandler<AdminEnv> {
  return async function requireAdminToken(c, next) {
    const token = readVar(c.env, "ADMIN_TOKEN");
    if (!token) throw new RouterError("admin_disabled", { detail: "ADMIN_TOKEN is not set" });
    const result = verifyHeaderToken(c.req.header("authorization"), [token], "Bearer ");
    if (!result.ok) {
      throw new RouterError("unauthorized", {
        detail: `admin: ${result.reason}`,
        headers: { "WWW-Authenticate": 'Bearer realm="admin"' },
      });
    }
    await next();
  };
}
