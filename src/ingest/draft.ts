import type { Clock } from "../core/clock.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import { RouterError } from "../core/errors.ts";
import type { NewEvent } from "../core/event.ts";
import type { RoutingDecision } from "../core/routing.ts";
import { sendToDestination } from "../outbound/client.ts";
import { logEvent } from "../telemetry/log.ts";
import { storeAndEnqueue } from "./store.ts";

export interface DraftOptions {
  env: Env;
  ctx: Pick<ExecutionContext, "waitUntil">;
  config: RouterConfig;
  clock: Clock;
  decision: RoutingDecision;
  event: NewEvent;
}

/**
 * A synchronous event (Weedmaps Draft): the provider waits at checkout for the merchant's confirmed prices, taxes
 * and fees. The responder is called inline under a hard deadline and its answer returned verbatim; storing the
 * event (and copying it to other destinations) happens after the response, so it never holds up the customer.
 */
export async function answerDraft({ env, ctx, config, clock, decision, event }: DraftOptions): Promise<Response> {
  const responder = decision.responder;
  const destination = responder ? config.destinations[responder.destination] : undefined;
  const started = clock.now();
  let error: RouterError | undefined;
  let response: Response | undefined;
  let status: number | null = null;
  let errorClass: string | null = null;

  if (event.quarantine || !responder || !destination || !destination.enabled) {
    // A held Draft is priced by no one: its URL named another merchant than its body.
    errorClass = event.quarantine ? "quarantined" : responder ? "responder_disabled" : "responder_missing";
    error = new RouterError("responder_unavailable", { detail: errorClass });
  } else {
    const result = await sendToDestination(env, destination, { ...event, body: new Uint8Array(event.body) }, {
      attempt: 1,
      timeoutMs: config.limits.draftDeadlineMs,
      keepBody: true,
      clock,
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

  const latencyMs = clock.now() - started;
  const stored: NewEvent = {
    ...event,
    responder: { destination: responder?.destination ?? "", status, latencyMs, error: errorClass },
  };
  ctx.waitUntil(
    storeAndEnqueue(env, [{ event: stored, decision }], clock).then(
      ([outcome]) => logEvent("debug", "draft_answered", { eventId: event.id, status, latencyMs, errorClass, duplicate: outcome!.duplicate }),
      (err: unknown) =>
        // Weedmaps does not retry a draft and the answer has gone; the loss is logged for the operator.
        logEvent("error", "draft_store_failed", { eventId: event.id, errorMessage: err instanceof Error ? err.message : String(err) }),
    ),
  );
  if (error) throw error;
  return response!;
}
