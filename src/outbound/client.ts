/**
 * The one HTTP client: every request to an internal system (a queued delivery, the Draft responder) goes out here,
 * signed with Standard Webhooks, under a timeout, with redirects refused.
 */
import { readVar } from "../config/load.ts";
import type { Clock } from "../core/clock.ts";
import type { DestinationConfig } from "../core/config/schema.ts";
import { MERCHANT_ID_PATTERN } from "../core/merchant.ts";
import { parseRetryAfter, type AttemptResult } from "../core/retry-policy.ts";
import { signStandardWebhook } from "../core/signatures/standard-webhooks.ts";

export interface OutboundEvent {
  id: string;
  source: string;
  eventType: string;
  merchantId: string | null;
  contentType: string;
  body: Uint8Array;
  /** The provider's time of this state of the object, when the body carries one. */
  providerTimestamp?: number | null;
}

export interface OutboundResult extends AttemptResult {
  latencyMs: number;
  responseExcerpt: string | null;
  retryAfterSeconds?: number;
  /** Only with `keepBody`: the response, up to its limit, for a synchronous answer (the Weedmaps Draft). */
  responseBody?: Uint8Array;
  /** The response was longer than `keepBody.maxBytes` (declared or streamed); `responseBody` is cut there. */
  responseOverLimit?: boolean;
  responseContentType?: string | null;
  /** A failed answer's headers (not 2xx), as they came: the caller bounds what it keeps (src/core/response-view.ts). */
  responseHeaders?: [string, string][];
}

export interface SendOptions {
  attempt: number;
  timeoutMs: number;
  /** Keep the whole response body, up to `maxBytes`, instead of an excerpt. */
  keepBody?: { maxBytes: number };
  clock: Clock;
}

const EXCERPT_BYTES = 512;
const USER_AGENT = "cannabis-webhook-router/0.1";

/** Headers an internal system can rely on; docs/receiving.md documents each one. */
export async function buildOutboundHeaders(
  env: Env,
  destination: DestinationConfig,
  event: OutboundEvent,
  attempt: number,
  nowMs: number,
): Promise<Headers | { configError: string; permanent?: boolean }> {
  if (!destination.signingSecret) return { configError: "no signingSecret is configured", permanent: true };
  const signingSecret = readVar(env, destination.signingSecret);
  if (!signingSecret) return { configError: `secret ${destination.signingSecret} is not set` };
  const timestamp = Math.floor(nowMs / 1000);
  let signature: string;
  try {
    signature = await signStandardWebhook(signingSecret, event.id, timestamp, event.body);
  } catch {
    return { configError: `secret ${destination.signingSecret} is not a valid Standard Webhooks secret` };
  }
  const headers = new Headers({
    "user-agent": USER_AGENT,
    "webhook-id": event.id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": signature,
    "x-router-event-id": event.id,
    "x-router-source": event.source,
    "x-router-event-type": event.eventType,
    "x-router-attempt": String(attempt),
  });
  // A value that is no header value (a CR/LF in a secret, say) makes this destination's delivery fail for good, by
  // the header's name only: the value may be a secret. Retrying would not mend it; fixing the secret and replaying does.
  const set = (name: string, value: string): { configError: string; permanent: true } | undefined => {
    try {
      headers.set(name, value);
      return undefined;
    } catch {
      return { configError: `header ${name} has a value that is not a valid header value`, permanent: true };
    }
  };
  const invalid =
    set("content-type", event.contentType) ??
    // A signed merchant is whatever the provider wrote; one outside the merchant id pattern is sent percent-encoded.
    (event.merchantId !== null
      ? set(
          "x-router-merchant-id",
          MERCHANT_ID_PATTERN.test(event.merchantId) ? event.merchantId : encodeURIComponent(event.merchantId),
        )
      : undefined) ??
    // So a receiver can order updates of one object itself, whatever order they arrive in.
    (event.providerTimestamp !== undefined && event.providerTimestamp !== null
      ? set("webhook-provider-timestamp", new Date(event.providerTimestamp).toISOString())
      : undefined);
  if (invalid) return invalid;
  for (const [name, header] of Object.entries(destination.headers)) {
    const value = readVar(env, header.secret);
    if (!value) return { configError: `secret ${header.secret} for header ${name} is not set` };
    const bad = set(name, header.prefix + value);
    if (bad) return bad;
  }
  return headers;
}

/**
 * Reads at most `maxBytes` of a response body, stream by stream, and cancels the rest: a destination (or a Draft
 * responder) that answers with 50 MB must not take the isolate's 128 MB. A declared Content-Length over the limit
 * is refused before anything is read.
 */
async function readBounded(response: Response, maxBytes: number): Promise<{ bytes: Uint8Array; overLimit: boolean }> {
  const declared = Number(response.headers.get("content-length"));
  if (!response.body || (Number.isFinite(declared) && declared > maxBytes)) {
    await response.body?.cancel().catch(() => undefined);
    return { bytes: new Uint8Array(0), overLimit: response.body !== null };
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let overLimit = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size > maxBytes) {
      overLimit = true;
      break;
    }
  }
  if (overLimit) await reader.cancel().catch(() => undefined);
  const joined = new Uint8Array(Math.min(size, maxBytes));
  let offset = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, joined.byteLength - offset);
    joined.set(part, offset);
    offset += part.byteLength;
    if (offset >= joined.byteLength) break;
  }
  return { bytes: joined, overLimit };
}

export async function readExcerpt(response: Response): Promise<string | null> {
  const { bytes } = await readBounded(response, EXCERPT_BYTES);
  const text = new TextDecoder().decode(bytes);
  return text.length > 0 ? text : null;
}

/**
 * POSTs the original bytes, unchanged, with the original content type. The timeout starts here, once the caller
 * holds a connection slot, and covers reading the response too. Redirects are not followed.
 */
export async function sendToDestination(
  env: Env,
  destination: DestinationConfig,
  event: OutboundEvent,
  options: SendOptions,
): Promise<OutboundResult> {
  const { clock } = options;
  const started = clock.now();
  const headers = await buildOutboundHeaders(env, destination, event, options.attempt, started);
  if (!(headers instanceof Headers)) {
    return {
      statusCode: null,
      transportError: headers.permanent ? "invalid_header" : "config_error",
      latencyMs: 0,
      responseExcerpt: headers.configError,
    };
  }
  const signal = clock.timeout(options.timeoutMs);
  try {
    const response = await fetch(destination.url, {
      method: "POST",
      headers,
      body: event.body,
      redirect: "manual",
      signal,
    });
    const result: OutboundResult = {
      statusCode: response.status,
      transportError: null,
      latencyMs: 0,
      responseExcerpt: null,
      retryAfterSeconds: parseRetryAfter(response.headers.get("retry-after"), clock.now()),
    };
    if (options.keepBody) {
      const { bytes, overLimit } = await readBounded(response, options.keepBody.maxBytes);
      result.responseBody = bytes;
      result.responseOverLimit = overLimit;
      result.responseContentType = response.headers.get("content-type");
    } else {
      result.responseExcerpt = await readExcerpt(response);
      if (response.status < 200 || response.status >= 300) result.responseHeaders = [...response.headers];
    }
    result.latencyMs = clock.now() - started;
    return result;
  } catch (err) {
    return transportFailure(err, signal, clock.now() - started);
  }
}

/** A request that got no answer: timed out (our signal, or the runtime's own abort), or failed on the way. */
export function transportFailure(err: unknown, signal: AbortSignal, latencyMs: number): OutboundResult {
  const timedOut =
    signal.aborted || (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError"));
  return { statusCode: null, transportError: timedOut ? "timeout" : "network_error", latencyMs, responseExcerpt: null };
}
