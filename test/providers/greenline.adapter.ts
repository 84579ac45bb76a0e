import { readScalar } from "../../src/core/fields.ts";
import {
  heldBody,
  keyPart,
  timestampOf,
  UNIDENTIFIED_TYPE,
  type ProviderAdapter,
} from "../../src/core/providers/contract.ts";

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
  piiPaths: ["data.customer"],
  merchantField: "data.store_id",
  records: (payload) => [payload],
  identityFields: { id: "event_id", updatedAt: "occurred_at" },
  identityPaths: ["event", "event_id", "data.ticket_id"],
  identify(input) {
    const { sourceName, pathEvent, payload } = input;
    const eventId = readScalar(payload, "event_id");
    const eventType = readScalar(payload, "event")?.toLowerCase();
    // Signed but not what we expect: held whole, never refused.
    if (eventId === undefined || eventType === undefined) {
      return {
        ok: true,
        events: [
          heldBody(
            "greenline",
            input,
            pathEvent ?? UNIDENTIFIED_TYPE,
            { reason: "unidentified", detail: "no event_id or event" },
            payload,
          ),
        ],
      };
    }
    if (pathEvent !== undefined && pathEvent !== eventType)
      return { ok: false, code: "event_type_mismatch", detail: `path ${pathEvent}, body ${eventType}` };
    return {
      ok: true,
      events: [
        {
          eventType,
          providerId: readScalar(payload, "data.ticket_id") ?? null,
          providerTimestamp: timestampOf(readScalar(payload, "occurred_at")),
          idempotencyKey: ["greenline", sourceName, keyPart(eventId)].join(":"),
          subject: payload,
        },
      ],
    };
  },
};

export default greenline;
