import { readScalar } from "../fields.ts";
import { arrayElements, objectMembers } from "../json-spans.ts";
import {
  heldBody,
  keyPart,
  timestampOf,
  UNIDENTIFIED_TYPE,
  type BodyHold,
  type EventIdentity,
  type ProviderAdapter,
} from "./contract.ts";

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/** A webhook body matches the API response; list responses (Order V4) wrap the objects in `results`. */
function leafTradeRecords(payload: unknown): unknown[] {
  const results = isObject(payload) ? payload.results : undefined;
  return Array.isArray(results) ? results : [payload];
}

/**
 * The envelope's own fields (the guide shows `count` and `previous`) are copied into each order's body while they
 * stay this small; past it, copying them per order would multiply one request's storage by its orders, so the body
 * is held whole instead.
 */
export const ENVELOPE_FIELDS_MAX_CHARS = 1024;

/** The default of `limits.maxRecordsPerBody`. */
export const DEFAULT_MAX_RECORDS = 1000;

/**
 * One body per order of a V4 envelope: the envelope's other fields, `"count":1` and this order alone, cut from the
 * signed text so every order keeps the bytes Leaf Trade sent. Without the text (a dry run), re-serialised.
 */
function orderBodies(
  payload: Record<string, unknown>,
  records: unknown[],
  text: string | undefined,
): { bodies: string[]; otherChars: number } {
  const members = text === undefined ? undefined : objectMembers(text);
  // JSON.parse keeps the last `results`; so does the cut (a duplicated one is held as ambiguous before this is used).
  const results = members?.findLast((m) => m.key === "results");
  const elements = results && text !== undefined ? arrayElements(text, results.value) : [];
  if (members && text !== undefined && elements.length === records.length) {
    const others = members
      .filter((m) => m.key !== "results" && m.key !== "count")
      .map((m) => text.slice(m.member.start, m.member.end));
    const prefix = [...others, '"count":1'].join(",");
    return {
      bodies: elements.map((e) => `{${prefix},"results":[${text.slice(e.start, e.end)}]}`),
      otherChars: others.reduce((n, o) => n + o.length, 0),
    };
  }
  const { results: _results, count: _count, ...others } = payload;
  return {
    bodies: records.map((record) => JSON.stringify({ ...others, count: 1, results: [record] })),
    otherChars: JSON.stringify(others).length,
  };
}

/**
 * Leaf Trade webhooks: Order V4, Order V3 and Product Issue, one consumer URL per type. The guide publishes one
 * payload, the Order V4 example (a `results` list), and documents no field that tells an order from an issue, so
 * the shape decides only what it can: a `results` list is Order V4, and refused on another type's URL (a cross-type
 * replay); a single object is the type its URL names. Anything else is held, never refused: a single object on the
 * V4 URL, an envelope with no orders or with entries that are not objects, a body that is not an object. Each order
 * of a V4 envelope is an event of its own. The guide documents neither the signature header nor its encoding:
 * `X-Signature` with hex is our documented default, and both are configurable per source.
 */
export const leaftrade: ProviderAdapter = {
  name: "leaftrade",
  signature: { header: "X-Signature", encoding: "hex" },
  pathEvent: "required",
  synchronousEvents: [],
  // The buyer's and users' contact details wherever an order or issue carries them. Leaf Trade's public reference
  // does not show these objects, so they are matched by name at any depth.
  piiPaths: [
    "**.buyer",
    "**.user",
    "**.created_by",
    "**.contact",
    "**.email",
    "**.phone",
    "**.first_name",
    "**.last_name",
  ],
  eventTypes: ["order-v4", "order-v3", "product-issue"],
  // An assumption: the guide's example shows `dispensary_location` with `id` and `dispensary_id`; `license_number`
  // is seen in public integration code only (test/fixtures/providers/leaftrade/README.md).
  merchantField: "dispensary_location.license_number",
  orderingKind: (eventType) => (eventType === "product-issue" ? "product-issue" : "order"),
  records: leafTradeRecords,
  identityFields: { id: "id", updatedAt: "updated_at" },
  identityPaths: ["id", "status", "updated_at", "date_created", "dispensary_location.license_number"],
  recordsPath: "results",
  identify(input) {
    const { sourceName, pathEvent, payload, bodySha256, text } = input;
    const eventType = pathEvent ?? UNIDENTIFIED_TYPE;
    const hold = (reason: BodyHold["reason"], detail: string) => ({
      ok: true as const,
      events: [heldBody("leaftrade", input, eventType, { reason, detail }, payload)],
    });
    const isList = isObject(payload) && Array.isArray(payload.results);
    if (isList && pathEvent !== "order-v4")
      return {
        ok: false,
        code: "event_type_mismatch",
        detail: `the path says ${pathEvent ?? "nothing"}, the body is an Order V4 results list`,
      };
    if (!isObject(payload)) return hold("unidentified", "the body is not a JSON object");
    if (!isList && pathEvent === "order-v4")
      return hold("unidentified", "a single object on the Order V4 URL, not a results list");
    const records = leafTradeRecords(payload);
    const maxRecords = input.maxRecords ?? DEFAULT_MAX_RECORDS;
    if (records.length === 0) return hold("unidentified", "an Order V4 envelope with no orders");
    if (records.length > maxRecords)
      return hold("too_many_records", `${records.length} orders in one body, over the limit of ${maxRecords}`);
    if (!records.every(isObject)) return hold("unidentified", "an Order V4 entry is not an object");
    const split = isList && records.length > 1 ? orderBodies(payload, records, text) : undefined;
    if (split && split.otherChars > ENVELOPE_FIELDS_MAX_CHARS) {
      return hold(
        "large_envelope_fields",
        `the envelope's own fields take ${split.otherChars} characters (over ${ENVELOPE_FIELDS_MAX_CHARS}) next to ${records.length} orders`,
      );
    }
    const events = records.map((record, i): EventIdentity => {
      const body = split?.bodies[i];
      const id = readScalar(record, "id");
      const updatedAt = readScalar(record, "updated_at");
      // A status transition is the event (New → Approved → Revised fire separately), and a state is known by its
      // update time. Without one (Leaf Trade's own issue objects carry only `date_created`), or without an id, the
      // content decides, so two different bodies never collapse into one event.
      const contentKey = `sha256:${body === undefined ? bodySha256 : `entry-${i}-${bodySha256}`}`;
      const idempotencyKey = id
        ? [
            "leaftrade",
            sourceName,
            eventType,
            keyPart(id),
            keyPart(readScalar(record, "status")),
            updatedAt !== undefined ? keyPart(updatedAt) : contentKey,
          ].join(":")
        : ["leaftrade", sourceName, eventType, contentKey].join(":");
      const providerTimestamp = timestampOf(updatedAt ?? readScalar(record, "date_created"));
      return {
        eventType,
        providerId: id ?? null,
        providerTimestamp,
        idempotencyKey,
        subject: record,
        ...(body ? { body } : {}),
      };
    });
    return { ok: true, events };
  },
};
