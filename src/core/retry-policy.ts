import { MAX_QUEUE_DELAY_SECONDS } from "./messages.ts";

/** Pure retry policy: how an attempt's result is judged, and how long to wait before the next one. */
export type AttemptVerdict = "delivered" | "retry" | "permanent";

/** `invalid_header`: a header value that can never be sent (a CR/LF in a secret): settled at once, not retried. */
/** `token_unavailable`: Weedmaps' Orders API had no bearer token to give yet (the excerpt says why); retried. */
export type TransportError = "timeout" | "network_error" | "config_error" | "invalid_header" | "token_unavailable";

export interface AttemptResult {
  statusCode: number | null;
  transportError: TransportError | null;
}

const ALWAYS_RETRIED_4XX = new Set([408, 429]);

export function classifyAttempt(result: AttemptResult, retryOnStatus: readonly number[]): AttemptVerdict {
  if (result.transportError === "invalid_header") return "permanent";
  if (result.transportError) return "retry";
  const status = result.statusCode ?? 0;
  if (status >= 200 && status < 300) return "delivered";
  if (status >= 500 || ALWAYS_RETRIED_4XX.has(status) || retryOnStatus.includes(status)) return "retry";
  // Other 4xx, and redirects (which are never followed with a signed payload), will not get better by retrying.
  return "permanent";
}

export function errorClassOf(result: AttemptResult): string | null {
  if (result.transportError === "invalid_header") return "config_error";
  if (result.transportError) return result.transportError;
  const status = result.statusCode ?? 0;
  return status >= 200 && status < 300 ? null : `http_${status}`;
}

/** `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3), in whole seconds from now. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

export const BACKOFF_BASE_SECONDS = 30;

/**
 * Exponential backoff with jitter: attempt n waits between half and all of 30 s × 2^(n-1), so 30 s, 1 min, 2 min …
 * A `Retry-After` from the destination wins. Either way the delay is clamped to the Queues maximum of 12 hours.
 */
export function backoffDelaySeconds(
  attempt: number,
  retryAfterSeconds?: number,
  random: () => number = Math.random,
  baseSeconds: number = BACKOFF_BASE_SECONDS,
): number {
  const exponential = baseSeconds * 2 ** Math.max(0, attempt - 1);
  const jittered = exponential / 2 + (exponential / 2) * random();
  const delay = retryAfterSeconds !== undefined ? retryAfterSeconds : jittered;
  return Math.min(MAX_QUEUE_DELAY_SECONDS, Math.max(1, Math.ceil(delay)));
}
