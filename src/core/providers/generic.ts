import { EVENT_TYPE_PATTERN } from "../config/schema.ts";
import { readScalar } from "../fields.ts";
import { heldBody, keyPart, UNIDENTIFIED_TYPE, type ProviderAdapter } from "./contract.ts";

/**
 * Any other HMAC-signing (or deliberately unsigned) source declared in config, served at /webhooks/<name>. With an
 * `eventTypeField` the body names the event and the path must agree; without one the path names it. Either way
 * the key is made of signed content only (the configured identity fields, else the body's hash), so one body
 * posted under two paths is one event.
 */
export const generic: ProviderAdapter = {
  name: "generic",
  pathEvent: "optional",
  synchronousEvents: [],
  // Unknown bodies: the source's own `piiPaths` say where its customer data is.
  piiPaths: [],
  configurableIdentity: true,
  records: (payload) => [payload],
  // The source's `eventTypeField` and `idempotencyFields` (ingest adds them).
  identityPaths: [],
  identify(input) {
    const { sourceName, source, pathEvent, payload, bodySha256 } = input;
    const signedType = source.eventTypeField ? readScalar(payload, source.eventTypeField)?.toLowerCase() : undefined;
    if (signedType !== undefined && !EVENT_TYPE_PATTERN.test(signedType)) {
      return {
        ok: true,
        events: [
          heldBody(
            "generic",
            input,
            pathEvent ?? UNIDENTIFIED_TYPE,
            { reason: "unidentified", detail: `${source.eventTypeField} is not an event name` },
            payload,
          ),
        ],
      };
    }
    if (signedType !== undefined && pathEvent !== undefined && pathEvent !== signedType) {
      return {
        ok: false,
        code: "event_type_mismatch",
        detail: `the path says ${pathEvent}, ${source.eventTypeField} says ${signedType}`,
      };
    }
    const eventType = signedType ?? pathEvent ?? "event";
    const identity = source.idempotencyFields?.map((field) => readScalar(payload, field));
    const typePart = signedType === undefined ? [] : [signedType];
    const idempotencyKey = identity?.every((part) => part !== undefined)
      ? ["generic", sourceName, ...typePart, ...identity.map(keyPart)].join(":")
      : ["generic", sourceName, ...typePart, "sha256", bodySha256].join(":");
    return {
      ok: true,
      events: [
        { eventType, providerId: identity?.[0] ?? null, providerTimestamp: null, idempotencyKey, subject: payload },
      ],
    };
  },
};
