/** The status relay's operator action: an update forced past the forward-only rule, audited (docs/relay.md). */
import type { z } from "@hono/zod-openapi";
import { loadPayloadProtection } from "../config/keys.ts";
import { RouterError } from "../core/errors.ts";
import { reasonProblem } from "../core/relay.ts";
import { acceptUpdate } from "../relay/accept.ts";
import { configOf, recordAction, type Actor, type OperationContext } from "./context.ts";
import type { RelayForceBody } from "./inputs.ts";

export async function forceRelayUpdate(
  ctx: OperationContext,
  actor: Actor,
  source: string,
  orderId: string,
  body: z.output<typeof RelayForceBody>,
) {
  const config = configOf(ctx);
  if (!Object.hasOwn(config.relay, source))
    throw new RouterError("relay_not_configured", { detail: `no relay for "${source}"` });
  const request = {
    status: body.status,
    ...(body.canceledReason === undefined ? {} : { canceledReason: body.canceledReason }),
  };
  const problem = reasonProblem(request);
  if (problem) throw new RouterError("relay_reason_not_allowed", { detail: problem });
  const accepted = await acceptUpdate({
    env: ctx.env,
    config,
    clock: ctx.clock,
    protection: await loadPayloadProtection(ctx.env, config),
    source,
    orderId,
    request,
    requestedBy: `operator:${actor.tokenId}`,
    forced: true,
  });
  const auditId = await recordAction(ctx, actor, "relay_force", accepted.updateId, {
    source,
    status: body.status,
    previous: accepted.previous,
    reason: body.reason,
  });
  return { ...accepted, auditId };
}
