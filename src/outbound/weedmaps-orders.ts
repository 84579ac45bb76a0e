/**
 * A status update to Weedmaps' Orders API (docs/relay.md): `PUT {base}/oos/{version}/merchants/{listing}/orders/{id}`
 * with the bearer token and only `{status, canceledReason?}`. The answer is kept as any delivery's is: its status,
 * an excerpt and, when it failed, its headers.
 */
import type { Clock } from "../core/clock.ts";
import type { DestinationConfig } from "../core/config/schema.ts";
import { putBodyOf } from "../core/relay.ts";
import { parseRetryAfter } from "../core/retry-policy.ts";
import { readExcerpt, transportFailure, type OutboundEvent, type OutboundResult } from "./client.ts";

const USER_AGENT = "cannabis-webhook-router/0.1";

/** The update's URL: ids are case-sensitive and may hold any character, so each is one encoded path segment. */
export function orderStatusUrl(destination: DestinationConfig, listingId: string, orderId: string): string {
  const base = destination.url.replace(/\/+$/, "");
  const version = destination.weedmapsOrders!.apiVersion;
  return `${base}/oos/${version}/merchants/${encodeURIComponent(listingId)}/orders/${encodeURIComponent(orderId)}`;
}

export async function putOrderStatus(
  destination: DestinationConfig,
  event: OutboundEvent & { providerId: string | null },
  token: string,
  options: { timeoutMs: number; clock: Clock },
): Promise<OutboundResult> {
  const { clock } = options;
  const started = clock.now();
  if (event.merchantId === null || event.providerId === null)
    return {
      statusCode: null,
      transportError: "invalid_header",
      latencyMs: 0,
      responseExcerpt: "no listing or order id",
    };
  const signal = clock.timeout(options.timeoutMs);
  try {
    const response = await fetch(orderStatusUrl(destination, event.merchantId, event.providerId), {
      method: "PUT",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        accept: "application/json",
        "user-agent": USER_AGENT,
      },
      body: putBodyOf(event.body),
      redirect: "manual",
      signal,
    });
    const ok = response.status >= 200 && response.status < 300;
    const result: OutboundResult = {
      statusCode: response.status,
      transportError: null,
      latencyMs: 0,
      responseExcerpt: await readExcerpt(response),
      retryAfterSeconds: parseRetryAfter(response.headers.get("retry-after"), clock.now()),
      ...(ok ? {} : { responseHeaders: [...response.headers] }),
    };
    result.latencyMs = clock.now() - started;
    return result;
  } catch (err) {
    return transportFailure(err, signal, clock.now() - started);
  }
}
