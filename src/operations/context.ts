/**
 * What every operator action is given: the Worker's bindings with the providers and the clock it was built from,
 * and the actor, so the action can write its own audit entry. The admin API and the dashboard build both from a
 * request; nothing here knows which HTTP framework asked.
 */
import { loadConfig, readVar } from "../config/load.ts";
import type { Clock } from "../core/clock.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import type { RouterDeps } from "../core/deps.ts";
import type { ProviderRegistry } from "../core/providers/contract.ts";
import { tokenId } from "../core/signatures/token-id.ts";
import { clientOf } from "../storage/attempts.ts";
import { auditId, insertAudit, type AuditAction } from "../storage/audit.ts";

export interface OperationContext {
  env: Env;
  providers: ProviderRegistry;
  clock: Clock;
}

/**
 * Who did it: the id of the token that authenticated the request (never the token), the transport, and what ties
 * the audit entry to the request's log lines. `via` is "api" for the admin API (rows written before 2026-12 say "admin").
 */
export interface Actor {
  tokenId: string;
  via: "api" | "dashboard";
  requestId: string | null;
  /** The client the request came from (CF-Connecting-IP, an IPv6 address by its /64), for throttled attempts. */
  client: string;
}

/** Where a request came from, before it is known to be anyone: what sign-in and a refused attempt record. */
export type Origin = Omit<Actor, "tokenId">;

export function contextOf(env: Env, { providers, clock }: RouterDeps): OperationContext {
  return { env, providers, clock };
}

export function configOf(ctx: OperationContext): RouterConfig {
  return loadConfig(ctx.env, ctx.providers);
}

/** The request's origin, from what the edge says about it. */
export function originOf(
  via: Actor["via"],
  requestId: string | null | undefined,
  connectingIp: string | undefined,
): Origin {
  return { via, requestId: requestId ?? null, client: clientOf(connectingIp) };
}

/** The actor of a request that passed the admin token check (the API's bearer token, or a dashboard session). */
export async function operatorOf(env: Env, origin: Origin): Promise<Actor> {
  const token = readVar(env, "ADMIN_TOKEN");
  // Both transports refuse every request before this when the token is unset; "none" keeps the type honest.
  return { ...origin, tokenId: token ? await tokenId(token) : "none" };
}

/**
 * Writes one audit entry for an action, with the transport and the request it came through. `detail` holds field
 * names, counts, ids and the operator's own words: never a payload value or a token.
 */
export async function recordAction(
  ctx: OperationContext,
  actor: Actor,
  action: AuditAction,
  eventId: string | null,
  detail: Record<string, unknown>,
  at: number = ctx.clock.now(),
): Promise<string> {
  const id = auditId(at);
  const entry = { ...detail, via: actor.via, requestId: actor.requestId };
  await insertAudit(ctx.env.DB, { id, at, action, tokenId: actor.tokenId, eventId, detail: entry });
  return id;
}
