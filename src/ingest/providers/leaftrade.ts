import { readScalar } from "../fields";
import { keyPart, type ProviderAdapter } from "./types";

/** A webhook body matches the API response; list responses wrap the object in `results`. */
function leafTradeRecord(payload: unknown): unknown {
  if (payload && typeof payload === "object" && Array.isArray((payload as { results?: unknown }).results)) {
    const results = (payload as { results: unknown[] }).results;
    if (results.length === 1) return results[0];
  }
  return payload;
}

/**
 * Leaf Trade webhooks: Order V4, Order V3 and Product Issue, one consumer URL per type, so the type comes
 * from the path. The guide documents neither the signature header nor its encoding: `X-Signature` with hex is
 * our documented default, and both are configurable per source.
 */
export const leaftrade: ProviderAdapter = {
  signatureDefaults: { header: "X-Signature", encoding: "hex" },
  requiresPathEvent: true,
  identify({ sourceName, source, pathEvent, queryMerchant, payload, bodySha256 }) {
    if (!pathEvent) return { error: "missing_event_type" };
    const record = leafTradeRecord(payload);
    const id = readScalar(record, "id");
    const merchantId = queryMerchant ?? (source.merchant.field ? readScalar(record, source.merchant.field) : undefined) ?? null;
    // A status transition is the event: the same object moving New → Approved → Revised fires distinct webhooks.
    const idempotencyKey = id
      ? ["leaftrade", sourceName, pathEvent, keyPart(id), keyPart(readScalar(record, "status")), keyPart(readScalar(record, "updated_at"))].join(":")
      : ["leaftrade", sourceName, pathEvent, "sha256", bodySha256].join(":");
    return { eventType: pathEvent, merchantId, providerId: id ?? null, idempotencyKey, subject: record };
  },
};
