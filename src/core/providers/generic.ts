import { readScalar } from "../fields.ts";
import { keyPart, type ProviderAdapter } from "./contract.ts";

/** Any other HMAC-signing (or deliberately unsigned) source declared in config, served at /webhooks/<name>. */
export const generic: ProviderAdapter = {
  name: "generic",
  pathEvent: "optional",
  synchronousEvents: [],
  configurableIdentity: true,
  records: (payload) => [payload],
  identify({ sourceName, source, pathEvent, queryMerchant, payload, bodySha256 }) {
    const eventType = pathEvent ?? (source.eventTypeField ? readScalar(payload, source.eventTypeField)?.toLowerCase() : undefined) ?? "event";
    const merchantId = queryMerchant ?? (source.merchant.field ? readScalar(payload, source.merchant.field) : undefined) ?? null;
    const identity = source.idempotencyFields?.map((field) => readScalar(payload, field));
    const idempotencyKey =
      identity && identity.every((part) => part !== undefined)
        ? ["generic", sourceName, eventType, ...identity.map(keyPart)].join(":")
        : ["generic", sourceName, eventType, "sha256", bodySha256].join(":");
    return { eventType, merchantId, providerId: identity?.[0] ?? null, idempotencyKey, subject: payload };
  },
};
