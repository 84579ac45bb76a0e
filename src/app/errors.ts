import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { HTTPException } from "hono/http-exception";
import { PayloadKeyError } from "../core/envelope.ts";
import { errorBody, RouterError, type ErrorBody } from "../core/errors.ts";
import { logEvent } from "../telemetry/log.ts";

function requestIdOf(c: Context): string {
  return c.get("requestId") ?? "unknown";
}

/** How an error body reaches the caller: JSON, or the dashboard's page around the same body. */
export type ErrorResponder = (
  c: Context,
  body: ErrorBody,
  status: ContentfulStatusCode,
  headers?: Record<string, string>,
) => Response | Promise<Response>;

const asJson: ErrorResponder = (c, body, status, headers) => c.json(body, status, headers);

/** The dashboard's pages answer errors as a page, with the same code and message; everything else as JSON. */
export function responderFor(dashboard: ErrorResponder): (c: Context) => ErrorResponder {
  return (c) => (new URL(c.req.url).pathname.startsWith("/dashboard") ? dashboard : asJson);
}

/**
 * What workerd throws from a read of a request body that ends before its Content-Length, or before its last chunk:
 * a plain Error with this message (seen under `wrangler dev` with a raw socket that sends half a body and closes;
 * test/e2e/local-loop.test.mjs, "body_incomplete"). Outbound fetches can fail with the same words, so it counts as a cut-off
 * body only when the request declared one; every outbound call on the request path catches its own failures.
 */
const BODY_CUT_OFF = "Network connection lost.";

function isCutOffBody(err: Error, c: Context): boolean {
  return (
    err.message === BODY_CUT_OFF &&
    (c.req.header("content-length") !== undefined || c.req.header("transfer-encoding") !== undefined)
  );
}

/** The one `app.onError`: a RouterError keeps its code, anything else becomes a generic 500 with no stack. */
export function handleError(err: Error, c: Context, respond: ErrorResponder = asJson): Response | Promise<Response> {
  const requestId = requestIdOf(c);
  if (err instanceof RouterError) {
    logEvent(err.status >= 500 ? "error" : "warn", "request_rejected", {
      requestId,
      code: err.code,
      status: err.status,
      path: new URL(c.req.url).pathname,
      detail: err.detail,
    });
    return respond(c, errorBody(err.code, requestId, err.message, err.details), err.status, err.headers);
  }
  // Hono's own refusals (the validator's malformed JSON, a wrong content type, a body over a limit) are the
  // caller's mistake, not ours: each gets its code in the one shape instead of a 500.
  if (err instanceof HTTPException && err.status < 500) {
    // 403: the dashboard's CSRF check (hono/csrf) refused a form posted from another origin.
    const code =
      err.status === 413
        ? "payload_too_large"
        : err.status === 415
          ? "unsupported_media_type"
          : err.status === 403
            ? "cross_origin_request"
            : "invalid_request";
    return handleError(new RouterError(code, { detail: `${err.status}: ${err.message}` }), c, respond);
  }
  // The caller's connection dropped mid-body: its mistake (or its network's), a warning, never unhandled_error.
  if (isCutOffBody(err, c))
    return handleError(new RouterError("body_incomplete", { detail: `${err.name}: ${err.message}` }), c, respond);
  // A ciphertext that does not open for this event (moved from another row, altered) or whose key left the ring.
  if (err instanceof PayloadKeyError) {
    return handleError(
      new RouterError(err.reason === "key_not_in_ring" ? "payload_key_missing" : "payload_unreadable", {
        detail: err.message,
      }),
      c,
      respond,
    );
  }
  logEvent("error", "unhandled_error", {
    requestId,
    path: new URL(c.req.url).pathname,
    errorName: err.name,
    errorMessage: err.message,
  });
  return respond(c, errorBody("internal_error", requestId), 500);
}

export function handleNotFound(c: Context): Response {
  return c.json(errorBody("not_found", requestIdOf(c)), 404);
}
