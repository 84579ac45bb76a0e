import { EVENT_TYPE_PATTERN } from "../config/schema.ts";
import { readScalar } from "../fields.ts";
import { keyPart, timestampOf, type ProviderAdapter } from "./contract.ts";

/**
 * The event a Weedmaps order status is. `DRAFT` asks for the checkout's prices (synchronous) and `PENDING` is a new
 * order (the Create callback); any other status is an event of its own, its name in lower case, stored and routed
 * by its own routes and never taken for a Create.
 */
export function weedmapsEventType(status: string): string {
  if (status === "DRAFT") return "draft";
  if (status === "PENDING") return "create";
  return status.toLowerCase();
}

/**
 * Weedmaps order callbacks: Draft and Create, on one URL per event or one default URL; the Order object's
 * `status` says which. `Signature` is base64(HMAC-SHA256(body, client secret)) and covers the body only, so the
 * path may name the event but must agree with the status. The Menu ID (`{{merchantId}}`) is only in the URL: the
 * documented body has no field that is known to equal it, so the query stays the merchant (a route can pin it to
 * `seller.id` with `requireMerchantField`).
 */
export const weedmaps: ProviderAdapter = {
  name: "weedmaps",
  signature: { header: "Signature", encoding: "base64" },
  pathEvent: "optional",
  synchronousEvents: ["draft"],
  records: (payload) => [payload],
  identityFields: { id: "orderId", updatedAt: "lastModifiedAt" },
  identify({ sourceName, pathEvent, payload, bodySha256 }) {
    const status = readScalar(payload, "status");
    if (status === undefined) return { ok: false, code: "unidentified_event", detail: "the order has no status" };
    const eventType = weedmapsEventType(status);
    if (!EVENT_TYPE_PATTERN.test(eventType)) return { ok: false, code: "unidentified_event", detail: "the order status is not an event name" };
    if (pathEvent !== undefined && pathEvent !== eventType) {
      return { ok: false, code: "event_type_mismatch", detail: `the path says ${pathEvent}, the order's status says ${eventType}` };
    }
    const orderId = readScalar(payload, "orderId") ?? null;
    const lastModifiedAt = readScalar(payload, "lastModifiedAt");
    // Weedmaps has no event id. A Create is the order itself: its retries, however serialised, are one event. A
    // Draft is one pricing request, so a changed cart is a new one. A later status is one state of the order.
    const version =
      eventType === "create" ? [] : eventType === "draft" ? [bodySha256] : [lastModifiedAt !== undefined ? keyPart(lastModifiedAt) : `sha256:${bodySha256}`];
    const idempotencyKey = orderId === null ? ["weedmaps", sourceName, eventType, "sha256", bodySha256].join(":") : ["weedmaps", sourceName, eventType, keyPart(orderId), ...version].join(":");
    return {
      ok: true,
      events: [{ eventType, providerId: orderId, providerTimestamp: timestampOf(lastModifiedAt), idempotencyKey, subject: payload }],
    };
  },
};
