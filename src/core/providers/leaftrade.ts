import { readScalar } from "../fields.ts";
import { keyPart, timestampOf, type EventIdentity, type ProviderAdapter } from "./contract.ts";

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === "object" && !Array.isArray(value);

/** A webhook body matches the API response; list responses (Order V4) wrap the objects in `results`. */
function leafTradeRecords(payload: unknown): unknown[] {
  const results = isObject(payload) ? payload.results : undefined;
  return Array.isArray(results) ? results : [payload];
}

/**
 * Which of the three webhook types a body is, from its shape alone: Order V4 is the list envelope (`results`) of
 * orders, Order V3 a bare order (`items`, `order_number`), Product Issue a bare issue (`product_variant` with a
 * `reason`, no `items`). These are the field names the public guide and public integrations show.
 */
function bodyType(payload: unknown): "order-v4" | "order-v3" | "product-issue" | undefined {
  if (!isObject(payload)) return undefined;
  const isOrder = (record: unknown) => isObject(record) && (Array.isArray(record.items) || record.order_number !== undefined);
  if (Array.isArray(payload.results)) return payload.results.length > 0 && payload.results.every(isOrder) ? "order-v4" : undefined;
  if (isOrder(payload)) return "order-v3";
  if (isObject(payload.product_variant) || payload.reason !== undefined) return "product-issue";
  return undefined;
}

/**
 * Leaf Trade webhooks: Order V4, Order V3 and Product Issue, one consumer URL per type. The path names the type
 * and must agree with the body's shape. Each order of a V4 envelope is an event of its own. The guide documents
 * neither the signature header nor its encoding: `X-Signature` with hex is our documented default, and both are
 * configurable per source.
 */
export const leaftrade: ProviderAdapter = {
  name: "leaftrade",
  signature: { header: "X-Signature", encoding: "hex" },
  pathEvent: "required",
  synchronousEvents: [],
  // The buyer's and users' contact details wherever an order or issue carries them. Leaf Trade's public reference
  // does not show these objects, so they are matched by name at any depth.
  piiPaths: ["**.buyer", "**.user", "**.created_by", "**.contact", "**.email", "**.phone", "**.first_name", "**.last_name"],
  eventTypes: ["order-v4", "order-v3", "product-issue"],
  merchantField: "dispensary_location.license_number",
  orderingKind: (eventType) => (eventType === "product-issue" ? "product-issue" : "order"),
  records: leafTradeRecords,
  identityFields: { id: "id", updatedAt: "updated_at" },
  identify({ sourceName, pathEvent, payload, bodySha256 }) {
    const eventType = bodyType(payload);
    if (eventType === undefined) return { ok: false, code: "unidentified_event", detail: "the body is none of Order V4, Order V3, Product Issue" };
    if (pathEvent !== eventType) return { ok: false, code: "event_type_mismatch", detail: `the path says ${pathEvent ?? "nothing"}, the body is ${eventType}` };
    const records = leafTradeRecords(payload);
    const envelope = isObject(payload) && eventType === "order-v4" ? payload : undefined;
    const events = records.map((record): EventIdentity => {
      // A V4 envelope of several orders: each order is stored and delivered as the envelope with it alone.
      const body = envelope && records.length > 1 ? JSON.stringify({ ...envelope, count: 1, results: [record] }) : undefined;
      const id = readScalar(record, "id");
      const updatedAt = readScalar(record, "updated_at");
      // A status transition is the event (New → Approved → Revised fire separately), and a state is known by its
      // update time. Without one (Leaf Trade's own issue objects carry only `date_created`), or without an id, the
      // content decides, so two different bodies never collapse into one event.
      const contentKey = `sha256:${body === undefined ? bodySha256 : `entry-${records.indexOf(record)}-${bodySha256}`}`;
      const idempotencyKey = id
        ? ["leaftrade", sourceName, eventType, keyPart(id), keyPart(readScalar(record, "status")), updatedAt !== undefined ? keyPart(updatedAt) : contentKey].join(":")
        : ["leaftrade", sourceName, eventType, contentKey].join(":");
      const providerTimestamp = timestampOf(updatedAt ?? readScalar(record, "date_created"));
      return { eventType, providerId: id ?? null, providerTimestamp, idempotencyKey, subject: record, ...(body ? { body } : {}) };
    });
    return { ok: true, events };
  },
};
