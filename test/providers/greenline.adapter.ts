import { readScalar } from "../../src/core/fields.ts";
import { keyPart, type ProviderAdapter } from "../../src/core/providers/contract.ts";

/**
 * A test-only provider, to show what a new provider takes: this adapter, its fixture folder
 * (test/fixtures/providers/greenline/) and its test (greenline.test.ts), and nothing else. Greenline is an imagined
 * POS that signs `sha256=<hex>` in `X-Greenline-Signature`, names the event in the body, and gives every event an
 * id of its own, so a retry is recognised by that id alone.
 */
const greenline: ProviderAdapter = {
  name: "greenline",
  signature: { header: "X-Greenline-Signature", encoding: "hex", prefix: "sha256=" },
  pathEvent: "optional",
  synchronousEvents: [],
  records: (payload) => [payload],
  identityFields: { id: "event_id", updatedAt: "occurred_at" },
  identify({ sourceName, queryMerchant, payload }) {
    const eventId = readScalar(payload, "event_id");
    const eventType = (readScalar(payload, "event") ?? "event").toLowerCase();
    return {
      eventType,
      merchantId: readScalar(payload, "data.store_id") ?? queryMerchant ?? null,
      providerId: readScalar(payload, "data.ticket_id") ?? null,
      idempotencyKey: ["greenline", sourceName, keyPart(eventId)].join(":"),
      subject: payload,
    };
  },
};

export default greenline;
