import { readScalar } from "../fields.ts";
import { keyPart, type ProviderAdapter } from "./contract.ts";

/** A webhook body matches the API response; list responses wrap the objects in `results`. */
function leafTradeRecords(payload: unknown): unknown[] {
  const results = payload && typeof payload === "object" ? (payload as { results?: unknown }).results : undefined;
  return Array.isArray(results) ? results : [payload];
}

/**
 * Leaf Trade webhooks: Order V4, Order V3 and Product Issue, one consumer URL per type, so the type comes
 * from the path. The guide documents neither the signature header nor its encoding: `X-Signature` with hex is
 * our documented default, and both are configurable per source.
 */
export const leaftrade: ProviderAdapter = {
  name: "leaftrade",
  signature: { header: "X-Signature", encoding: "hex" },
  pathEvent: "required",
  synchronousEvents: [],
  records: leafTradeRecords,
  identityFields: { id: "id", updatedAt: "updated_at" },
  identify({ sourceName, source, pathEvent, queryMerchant, payload, bodySha256 }) {
    if (!pathEvent) return { error: "missing_event_type" };
    const records = leafTradeRecords(payload);
    const record = records.length === 1 ? records[0] : payload;
    const id = readScalar(record, "id");
    const merchantId = queryMerchant ?? (source.merchant.field ? readScalar(record, source.merchant.field) : undefined) ?? null;
    // A status transition is the event: the same object moving New → Approved → Revised fires distinct webhooks.
    const idempotencyKey = id
      ? ["leaftrade", sourceName, pathEvent, keyPart(id), keyPart(readScalar(record, "status")), keyPart(readScalar(record, "updated_at"))].join(":")
      : ["leaftrade", sourceName, pathEvent, "sha256", bodySha256].join(":");
    return { eventType: pathEvent, merchantId, providerId: id ?? null, idempotencyKey, subject: record };
  },
};
