import { checkAnswer, type AnswerMode } from "../core/answer.ts";
import type { Clock } from "../core/clock.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import { errorBody, type ErrorCode, errorMessage } from "../core/errors.ts";
import type { PayloadProtection } from "../core/envelope.ts";
import type { DraftVerdict, NewEvent } from "../core/event.ts";
import type { ProviderAdapter } from "../core/providers/contract.ts";
import type { RoutingDecision } from "../core/routing.ts";
import { sendToDestination, type OutboundResult } from "../outbound/client.ts";
import { admitResponder, reportAll, responderAnswered } from "../control/client.ts";
import type { DestinationConfig } from "../core/config/schema.ts";
import type { GateOutcome } from "../core/controls.ts";
import { classifyAttempt, errorClassOf } from "../core/retry-policy.ts";
import { logEvent } from "../telemetry/log.ts";
import { alertHeld } from "./held.ts";
import { storeAndEnqueue } from "./store.ts";

export interface DraftOptions {
  env: Env;
  ctx: Pick<ExecutionContext, "waitUntil">;
  config: RouterConfig;
  /** Checked before the responder is called: a Draft that could not be stored must not be answered. */
  protection: PayloadProtection;
  clock: Clock;
  adapter: ProviderAdapter;
  decision: RoutingDecision;
  event: NewEvent;
  /** The parsed request, which the answer is checked against. */
  payload: unknown;
  requestId: string;
}

interface Answered {
  response: Response;
  responderStatus: number | null;
  errorClass: string | null;
  verdict: DraftVerdict;
  /** The bytes the provider received when they are the order, for the audit record. */
  body: ArrayBuffer | null;
}

const encoder = new TextEncoder();
const NO_CHANGES = { repaired: [], warnings: [] };

function refusal(
  code: ErrorCode,
  status: 502 | 504,
  requestId: string,
  errorClass: string,
  verdict: DraftVerdict,
  responderStatus: number | null = null,
): Answered {
  const response = new Response(JSON.stringify(errorBody(code, requestId)), {
    status,
    headers: { "content-type": "application/json" },
  });
  return { response, responderStatus, errorClass, verdict, body: null };
}

/** A Draft's call to its responder, as its destination's object sees it: the Draft's event, generation 0. */
const RESPONDER_GENERATION = 0;

function reportResponder(
  { env, ctx, config, clock, event }: DraftOptions,
  name: string,
  destination: DestinationConfig,
  result: OutboundResult,
): void {
  const outcome: GateOutcome = {
    eventId: event.id,
    generation: RESPONDER_GENERATION,
    ok: result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300,
    failure: classifyAttempt(result, []) === "retry" && result.transportError !== "config_error",
    gone: result.statusCode === 410 && destination.disableOnGone,
    errorClass: errorClassOf(result),
    dead: false,
  };
  const outcomes = responderAnswered(env, name, outcome, clock.now());
  if (outcomes.length === 0) return;
  try {
    ctx.waitUntil(reportAll(env, config, clock.now(), new Map([[name, { outcomes, leases: [] }]])));
  } catch (err) {
    logEvent("error", "gate_unavailable", { destination: name, step: "report", errorMessage: errorMessage(err) });
  }
}

async function callResponder(options: DraftOptions): Promise<Answered> {
  const { env, config, clock, adapter, decision, event, payload, requestId } = options;
  const responder = decision.responder;
  const destination = responder ? config.destinations[responder.destination] : undefined;
  if (event.quarantine || !responder || !destination || !destination.enabled) {
    // A held Draft is priced by no one: its URL named another merchant than its body.
    const errorClass = event.quarantine ? "quarantined" : responder ? "responder_disabled" : "responder_missing";
    return refusal("responder_unavailable", 502, requestId, errorClass, { outcome: "no_answer", ...NO_CHANGES });
  }
  // The responder's controls first: a paused, disabled or failing responder costs the checkout nothing but this.
  const ref = { eventId: event.id, generation: RESPONDER_GENERATION };
  const admitted = await admitResponder(env, config, responder.destination, clock.now(), ref);
  if (!admitted.call) {
    logEvent("info", "draft_responder_held", {
      eventId: event.id,
      responder: responder.destination,
      reason: admitted.reason,
    });
    return refusal("responder_held", 502, requestId, `responder_${admitted.reason}`, {
      outcome: "no_answer",
      ...NO_CHANGES,
    });
  }
  const result = await sendToDestination(
    env,
    destination,
    { ...event, body: new Uint8Array(event.body) },
    {
      attempt: 1,
      timeoutMs: config.limits.draftDeadlineMs,
      keepBody: { maxBytes: config.limits.draftAnswerMaxBytes },
      clock,
    },
  );
  // After the answer, never before it: what the call did moves the responder's circuit like a delivery's attempt.
  reportResponder(options, responder.destination, destination, result);
  if (result.transportError === "timeout")
    return refusal("responder_timeout", 504, requestId, "timeout", { outcome: "no_answer", ...NO_CHANGES });
  if (result.transportError || result.statusCode === null) {
    return refusal("responder_unavailable", 502, requestId, result.transportError ?? "no_status", {
      outcome: "no_answer",
      ...NO_CHANGES,
    });
  }
  if (result.statusCode < 200 || result.statusCode >= 300) {
    // The responder failed rather than answered: its body (a stack trace, say) is never passed on.
    const verdict: DraftVerdict = { outcome: "rejected", rule: "draft_answer_status", path: "(status)", ...NO_CHANGES };
    return refusal("responder_unavailable", 502, requestId, `http_${result.statusCode}`, verdict, result.statusCode);
  }
  const mode: AnswerMode = config.routes.find((r) => r.name === responder.route)?.draftAnswer ?? "strict";
  // The route's source is the event's: its per-source settings (Weedmaps' Service Fee marking) say what the answer keeps.
  const source = config.sources[event.source]!;
  const checked = checkAnswer({
    status: result.statusCode,
    contentType: result.responseContentType,
    body: result.responseBody ?? new Uint8Array(0),
    overLimit: result.responseOverLimit === true,
    request: payload,
    mode,
    maxJsonDepth: config.limits.maxJsonDepth,
    checkAnswer: adapter.checkAnswer && ((request, answer, m) => adapter.checkAnswer!(request, answer, m, source)),
  });
  const responderStatus = result.statusCode;
  if (!checked.ok) {
    // The field path is a name in the Order object, never a value: safe to log.
    logEvent("warn", "draft_answer_rejected", {
      eventId: event.id,
      responder: responder.destination,
      responderStatus,
      rule: checked.rule,
      path: checked.path,
    });
    return refusal(
      checked.rule,
      502,
      requestId,
      checked.rule,
      { outcome: "rejected", rule: checked.rule, path: checked.path, ...NO_CHANGES },
      responderStatus,
    );
  }
  const outcome = mode === "unchecked" ? "unchecked" : checked.repairedAnswer !== undefined ? "repaired" : "passed";
  if (checked.warnings.length > 0 || checked.repaired.length > 0) {
    logEvent("info", "draft_answer_noted", {
      eventId: event.id,
      repaired: checked.repaired,
      warnings: checked.warnings,
    });
  }
  // A valid answer passes byte for byte; a repaired one is the mended order.
  const body =
    checked.repairedAnswer !== undefined
      ? (encoder.encode(JSON.stringify(checked.repairedAnswer)).buffer as ArrayBuffer)
      : (result.responseBody!.slice().buffer as ArrayBuffer);
  const response = new Response(body, {
    status: 200,
    headers: { "content-type": result.responseContentType ?? "application/json" },
  });
  return {
    response,
    responderStatus,
    errorClass: null,
    verdict: { outcome, repaired: checked.repaired, warnings: checked.warnings },
    body,
  };
}

/**
 * A synchronous event (Weedmaps Draft): the provider waits at checkout for the merchant's confirmed prices, taxes
 * and fees. The responder is called inline under a hard deadline, and only an answer that is the order (checked
 * by the adapter) reaches the provider; anything else is a 502/504 in the one error shape, so the provider keeps
 * its estimate. Nothing on this path throws past it. The event, what it was answered and why are stored after
 * the response, so that never holds up the customer.
 */
export async function answerDraft(options: DraftOptions): Promise<Response> {
  const { env, ctx, config, clock, decision, event, requestId, protection } = options;
  const started = clock.now();
  let answered: Answered;
  try {
    answered = await callResponder(options);
  } catch (err) {
    logEvent("error", "draft_failed", {
      eventId: event.id,
      errorName: err instanceof Error ? err.name : "unknown",
      errorMessage: errorMessage(err),
    });
    answered = refusal("responder_unavailable", 502, requestId, "internal_error", {
      outcome: "no_answer",
      ...NO_CHANGES,
    });
  }
  const latencyMs = clock.now() - started;
  const stored: NewEvent = {
    ...event,
    responder: {
      destination: decision.responder?.destination ?? "",
      status: answered.responderStatus,
      latencyMs,
      error: answered.errorClass,
      answered: { status: answered.response.status, body: answered.body },
      verdict: answered.verdict,
    },
  };
  try {
    ctx.waitUntil(
      storeAndEnqueue(env, config, protection, [{ event: stored, decision }], clock).then(
        (results) => {
          logEvent("debug", "draft_answered", {
            eventId: event.id,
            status: answered.response.status,
            latencyMs,
            errorClass: answered.errorClass,
            duplicate: results[0]!.duplicate,
          });
          // A held Draft (its URL's merchant, an ambiguous body) is alerted like any held event.
          alertHeld(env, ctx, config, clock.now(), results);
        },
        (err: unknown) =>
          // Weedmaps does not retry a draft and the answer has gone; the loss is logged for the operator.
          logEvent("error", "draft_store_failed", { eventId: event.id, errorMessage: errorMessage(err) }),
      ),
    );
  } catch (err) {
    logEvent("error", "draft_store_failed", { eventId: event.id, errorMessage: errorMessage(err) });
  }
  return answered.response;
}
