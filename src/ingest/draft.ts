import type { RouterConfig } from "../config/schema";
import { RouterError } from "../errors";
import { logEvent } from "../log";
import { sendToDestination, type OutboundEvent } from "../delivery/outbound";
import type { NewDelivery, NewEvent } from "../storage/db";
import type { RoutingDecision } from "./routing";
import { storeAndEnqueue } from "./store";

export interface DraftOptions {
  env: Env;
  ctx: Pick<ExecutionContext, "waitUntil">;
  config: RouterConfig;
  decision: RoutingDecision;
  event: NewEvent;
  outbound: OutboundEvent;
  deliveries: readonly NewDelivery[];
}

/**
 * Weedmaps waits at checkout for the merchant's confirmed prices, taxes and fees. The responder is called inline
 * under a hard deadline and its answer returned verbatim; storing the draft (and copying it to other destinations)
 * happens after the response, so it never holds up the customer.
 */
export async function answerDraft({ env, ctx, config, decision, event, outbound, deliveries }: DraftOptions): Promise<Response> {
  const responder = decision.responder;
  const destination = responder ? config.destinations[responder.destination] : undefined;
  const started = Date.now();
  let error: RouterError | undefined;
  let response: Response | undefined;
  let status: number | null = null;
  let errorClass: string | null = null;

  if (!responder || !destination || !destination.enabled) {
    errorClass = responder ? "responder_disabled" : "responder_missing";
    error = new RouterError("responder_unavailable", { detail: errorClass });
  } else {
    const result = await sendToDestination(env, destination, outbound, {
      attempt: 1,
      timeoutMs: config.limits.draftDeadlineMs,
      keepBody: true,
    });
    status = result.statusCode;
    if (result.transportError === "timeout") {
      errorClass = "timeout";
      error = new RouterError("responder_timeout", { detail: `${responder.destination} missed ${config.limits.draftDeadlineMs} ms` });
    } else if (result.transportError || status === null || status < 200 || status >= 300) {
      errorClass = result.transportError ?? `http_${status}`;
      error = new RouterError("responder_unavailable", { detail: `${responder.destination}: ${errorClass}` });
    } else {
      response = new Response(result.responseBody ?? null, {
        status,
        headers: { "content-type": result.responseContentType ?? "application/json" },
      });
    }
  }

  const latencyMs = Date.now() - started;
  const stored: NewEvent = {
    ...event,
    responder: { destination: responder?.destination ?? "", status, latencyMs, error: errorClass },
  };
  ctx.waitUntil(
    storeAndEnqueue(env, stored, deliveries).then(
      ({ duplicate }) => logEvent("debug", "draft_answered", { eventId: event.id, status, latencyMs, errorClass, duplicate }),
      (err: unknown) =>
        // Weedmaps does not retry a draft and the answer has gone; the loss is logged for the operator.
        logEvent("error", "draft_store_failed", { eventId: event.id, errorMessage: err instanceof Error ? err.message : String(err) }),
    ),
  );
  if (error) throw error;
  return response!;
}
