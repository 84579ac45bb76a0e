import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { errorBody, RouterError } from "../core/errors.ts";
import { logEvent } from "../telemetry/log.ts";

function requestIdOf(c: Context): string {
  return c.get("requestId") ?? "unknown";
}

/** The one `app.onError`: a RouterError keeps its code, anything else becomes a generic 500 with no stack. */
export function handleError(err: Error, c: Context): Response {
  const requestId = requestIdOf(c);
  if (err instanceof RouterError) {
    logEvent(err.status >= 500 ? "error" : "warn", "request_rejected", {
      requestId,
      code: err.code,
      status: err.status,
      path: new URL(c.req.url).pathname,
      detail: err.detail,
    });
    return c.json(errorBody(err.code, requestId, err.message, err.details), err.status, err.headers);
  }
  if (err instanceof HTTPException && err.status === 413) {
    return handleError(new RouterError("payload_too_large"), c);
  }
  logEvent("error", "unhandled_error", {
    requestId,
    path: new URL(c.req.url).pathname,
    errorName: err.name,
    errorMessage: err.message,
  });
  return c.json(errorBody("internal_error", requestId), 500);
}

export function handleNotFound(c: Context): Response {
  return c.json(errorBody("not_found", requestIdOf(c)), 404);
}
