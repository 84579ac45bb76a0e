import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * The closed set of error codes a caller can see. Each maps to one HTTP status. The wire message is generic;
 * the detailed reason goes to the log, so a probe learns nothing about which check failed.
 */
export const ERROR_CODES = {
  invalid_signature: [401, "The request signature is missing or invalid."],
  unauthorized: [401, "Missing or invalid bearer token."],
  url_token_invalid: [401, "The webhook URL's token is missing or wrong."],
  invalid_merchant: [400, "The merchant in the URL is not a valid merchant id."],
  event_type_mismatch: [422, "The event type in the URL does not match the signed payload."],
  unknown_event_type: [404, "This source does not accept this event type."],
  not_quarantined: [409, "The event is not in quarantine."],
  replay_not_running: [409, "The replay is not running."],
  event_quarantined: [409, "The event is held in quarantine; release it to route it."],
  not_releasable: [409, "The signed payload names no merchant to release the event with."],
  not_found: [404, "Not found."],
  payload_purged: [
    410,
    "The event's payload has been purged (retention or a deletion request); it cannot be sent again.",
  ],
  reveal_token_required: [401, "Revealing customer data needs the reveal token (X-Reveal-Token)."],
  cross_origin_request: [403, "The form was not posted from this site."],
  reveal_forbidden: [403, "The reveal token is wrong, or revealing is disabled (ADMIN_REVEAL_TOKEN unset)."],
  unknown_source: [404, "No webhook source is configured at this path."],
  method_not_allowed: [405, "Method not allowed."],
  payload_too_large: [413, "The request body is larger than this endpoint accepts."],
  unsupported_media_type: [415, "The request body must be application/json."],
  invalid_json: [400, "The request body is not valid JSON."],
  invalid_request: [400, "The request is invalid."],
  body_incomplete: [400, "The request body ended before its declared length; send it again."],
  too_many_attempts: [429, "Too many failed attempts from this client; wait before trying again (Retry-After)."],
  destination_disabled: [409, "The destination is disabled in the active configuration."],
  unknown_destination: [422, "The destination is not in the active configuration."],
  no_destinations: [409, "The event has no destinations to replay to; name them."],
  responder_unavailable: [502, "The draft responder did not return a usable answer."],
  responder_held: [
    502,
    "The draft responder was not called: it is paused, disabled after a 410, or its circuit is open.",
  ],
  draft_answer_status: [502, "The draft responder did not answer 200 with the order."],
  draft_answer_too_large: [502, "The draft responder's answer is larger than allowed."],
  draft_answer_not_json: [502, "The draft responder's answer is not JSON."],
  draft_answer_invalid_order: [502, "The draft responder's answer is not a valid order."],
  draft_answer_order_id: [502, "The draft responder's answer is for another order."],
  draft_answer_immutable: [502, "The draft responder's answer changes a part of the order it may not change."],
  draft_answer_service_fee: [502, "The draft responder's answer drops or changes the service fee."],
  draft_answer_total: [502, "The draft responder's answer has a grand total that is negative or not a number."],
  responder_timeout: [504, "The draft responder did not answer before the deadline."],
  storage_unavailable: [503, "The event could not be stored. Retry later."],
  storage_full: [503, "Storage is full; the event was not accepted. Retry later."],
  controls_unavailable: [503, "The destination's controls could not be reached. Retry later."],
  source_misconfigured: [503, "This webhook source is not fully configured."],
  config_invalid: [503, "The router configuration is invalid."],
  admin_disabled: [503, "The admin API is disabled because ADMIN_TOKEN is not set."],
  payload_unreadable: [500, "A stored payload could not be decrypted for this event."],
  payload_key_missing: [503, "A stored payload's key is not in the key ring."],
  write_contended: [503, "The event kept changing under other writes; retry."],
  relay_not_configured: [404, "No status relay is configured for this source."],
  invalid_order_id: [400, "The order id must be 1 to 255 characters."],
  relay_invalid_update: [422, "The update needs a status Weedmaps accepts, and a canceledReason only from its list."],
  relay_reason_not_allowed: [422, "canceledReason goes only with CANCELED_CUSTOMER or CANCELED_SELLER."],
  relay_order_unknown: [404, "The router has no verified Create of this order."],
  relay_order_held: [409, "The order's Create is held for review; release it first."],
  relay_order_no_merchant: [409, "The order's Create named no merchant to send the update to."],
  relay_transition_refused: [409, "The order cannot move to this status from where it is: updates only go forward."],
  relay_busy: [409, "The order changed under concurrent updates; send the update again."],
  internal_error: [500, "Internal error."],
} as const satisfies Record<string, readonly [ContentfulStatusCode, string]>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Every code, for schemas that publish the closed set (the admin API's OpenAPI document). */
export const ERROR_CODE_NAMES = Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]];

/** An error's message for a log line, whatever was thrown. Never put it on the wire: it may name internals. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface ErrorBody {
  /** `details` appears only on validation errors, naming each bad field. */
  error: { code: ErrorCode; message: string; requestId: string; details?: string[] };
}

export class RouterError extends Error {
  readonly code: ErrorCode;
  readonly status: ContentfulStatusCode;
  /** Goes to the log only, never to the caller. */
  readonly detail?: string;
  readonly headers?: Record<string, string>;
  /** Field-level problems safe to show the caller (request validation only). */
  readonly details?: string[];

  constructor(
    code: ErrorCode,
    options: { detail?: string; message?: string; headers?: Record<string, string>; details?: string[] } = {},
  ) {
    super(options.message ?? ERROR_CODES[code][1]);
    this.name = "RouterError";
    this.code = code;
    this.status = ERROR_CODES[code][0];
    this.detail = options.detail;
    this.headers = options.headers;
    this.details = options.details;
  }
}

export function errorBody(code: ErrorCode, requestId: string, message?: string, details?: string[]): ErrorBody {
  return { error: { code, message: message ?? ERROR_CODES[code][1], requestId, ...(details ? { details } : {}) } };
}
