import { readScalar } from "../fields.ts";
import { keyPart, type ProviderAdapter } from "./contract.ts";

/**
 * Weedmaps order callbacks: Draft (synchronous, status DRAFT) and Create (asynchronous). One default URL or one
 * URL per event; new event types may appear and are stored and routed, never rejected. `Signature` is
 * base64(HMAC-SHA256(body, client secret)).
 */
export const weedmaps: ProviderAdapter = {
  name: "weedmaps",
  signature: { header: "Signature", encoding: "base64" },
  pathEvent: "optional",
  synchronousEvents: ["draft"],
  records: (payload) => [payload],
  identityFields: { id: "orderId", updatedAt: "lastModifiedAt" },
  identify({ sourceName, source, pathEvent, queryMerchant, payload, bodySha256 }) {
    const status = readScalar(payload, "status");
    const eventType = pathEvent ?? (status === "DRAFT" ? "draft" : "create");
    const orderId = readScalar(payload, "orderId") ?? null;
    const merchantId = queryMerchant ?? (source.merchant.field ? readScalar(payload, source.merchant.field) : undefined) ?? null;
    // Weedmaps retries Create with the same body and has no event id: the body hash separates a retry (same
    // bytes) from a later callback about the same order.
    const idempotencyKey = ["weedmaps", sourceName, eventType, keyPart(orderId), bodySha256].join(":");
    return { eventType, merchantId, providerId: orderId, idempotencyKey, subject: payload };
  },
};
