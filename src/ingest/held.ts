import { raiseRouterAlert } from "../control/client.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import type { StoreResult } from "./store.ts";

/**
 * A newly held event is alerted, once per reason in the request: it is acknowledged to the provider and delivered
 * nowhere, so only an operator's release moves it on. The alert names the reason, the safe detail and the event
 * ids, never a payload value or what the URL said. It runs after the answer (an alert never delays or fails an
 * ingest) and is throttled like every alert, per hold reason; the held list (status `quarantined`) is the full record.
 */
export function alertHeld(
  env: Env,
  ctx: Pick<ExecutionContext, "waitUntil">,
  config: RouterConfig,
  now: number,
  stored: readonly StoreResult[],
): void {
  const byReason = new Map<string, { detail: string; eventIds: string[] }>();
  for (const { event, duplicate } of stored) {
    if (duplicate || !event.quarantine) continue;
    const entry = byReason.get(event.quarantine.reason) ?? { detail: event.quarantine.detail ?? "", eventIds: [] };
    entry.eventIds.push(event.id);
    byReason.set(event.quarantine.reason, entry);
  }
  for (const [reason, { detail, eventIds }] of byReason) {
    const source = stored[0]!.event.source;
    ctx.waitUntil(
      raiseRouterAlert(env, config, now, "event_held", {
        reason: `${source}: ${reason}${detail ? `: ${detail}` : ""}`,
        counts: { events: eventIds.length },
        eventIds: eventIds.slice(0, 20),
        throttleKey: `event_held:${reason}`,
      }),
    );
  }
}
