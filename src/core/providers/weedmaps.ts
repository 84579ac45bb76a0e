import { z } from "zod";
import { sameJson, type AnswerCheck } from "../answer.ts";
import { EVENT_TYPE_PATTERN } from "../config/schema.ts";
import { readScalar } from "../fields.ts";
import { heldBody, keyPart, timestampOf, UNIDENTIFIED_TYPE, type ProviderAdapter } from "./contract.ts";

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
  // The Order object's customer (name, phone, date of birth, medical recommendation), the photos of their ID, where
  // it is delivered, how they pay, and their note to the store.
  piiPaths: ["customer", "documents", "shippingAddress", "payments", "customerNote"],
  checkAnswer: (request, answer, mode, source) =>
    checkWeedmapsAnswer(request, answer, mode, { serviceFee: source.serviceFee }),
  records: (payload) => [payload],
  identityFields: { id: "orderId", updatedAt: "lastModifiedAt" },
  identityPaths: ["orderId", "status", "lastModifiedAt", "seller.id"],
  identify(input) {
    const { sourceName, pathEvent, payload, bodySha256 } = input;
    const status = readScalar(payload, "status");
    const eventType = status === undefined ? undefined : weedmapsEventType(status);
    // Signed, but not an order we can name: held whole under the path's type, never refused (Weedmaps retries a
    // Create twice, then the order is gone).
    if (eventType === undefined || !EVENT_TYPE_PATTERN.test(eventType)) {
      const detail = status === undefined ? "the order has no status" : "the order status is not an event name";
      return {
        ok: true,
        events: [
          heldBody(
            "weedmaps",
            input,
            pathEvent ?? UNIDENTIFIED_TYPE,
            { reason: "unidentified", detail },
            payload,
            readScalar(payload, "orderId") ?? null,
          ),
        ],
      };
    }
    if (pathEvent !== undefined && pathEvent !== eventType) {
      return {
        ok: false,
        code: "event_type_mismatch",
        detail: `the path says ${pathEvent}, the order's status says ${eventType}`,
      };
    }
    const orderId = readScalar(payload, "orderId") ?? null;
    const lastModifiedAt = readScalar(payload, "lastModifiedAt");
    // Weedmaps has no event id. A Create is the order itself: its retries, however serialised, are one event. A
    // Draft is one pricing request, so a changed cart is a new one. A later status is one state of the order.
    const version =
      eventType === "create"
        ? []
        : eventType === "draft"
          ? [bodySha256]
          : [lastModifiedAt !== undefined ? keyPart(lastModifiedAt) : `sha256:${bodySha256}`];
    const idempotencyKey =
      orderId === null
        ? ["weedmaps", sourceName, eventType, "sha256", bodySha256].join(":")
        : ["weedmaps", sourceName, eventType, keyPart(orderId), ...version].join(":");
    return {
      ok: true,
      events: [
        {
          eventType,
          providerId: orderId,
          providerTimestamp: timestampOf(lastModifiedAt),
          idempotencyKey,
          subject: payload,
        },
      ],
    };
  },
};

// ---------------------------------------------------------------------------------------------------------------
// The Order object (Weedmaps' Orders API reference and "Versioning" page), and what a Draft answer may change.
//
// Strict only where the documentation is: the orderId, the parts the POS may not change ("Updating an Order"),
// money as decimal strings (`"<decimal>"` on the Versioning page), and whole non-negative quantities (0 marks an item
// unavailable). Where it is silent (which fields are always set, fields it does not list, the exact shape of `fees`)
// the answer is let through: refusing a faithful answer from a real POS costs the customer their confirmed prices.

const Decimal = z.string().regex(/^-?\d+(?:\.\d+)?$/, 'must be a decimal string such as "12.50"');
/** Documented as strings. The reference never says a field is always set, so each may be absent or null (an assumption). */
const Text = z.string().max(10_000).nullish();
const Id = z.string().min(1).max(255);
/** Shown as `"<date>"`, but nothing is computed from it: any scalar a POS echoes back is accepted. */
const Scalar = z.union([z.string().max(10_000), z.number(), z.boolean(), z.null()]);
/**
 * The parts the POS may not change are checked against the Draft as data (DRAFT_IMMUTABLE_FIELDS), never against a
 * type of ours: an answer that echoes what Weedmaps sent is right, whatever Weedmaps sent.
 */
const AsTheDraftSentIt = z.unknown().optional();

const LineItem = z.looseObject({
  id: Text,
  externalId: Text,
  wmProductId: Text,
  name: Text,
  weightBreakpoint: Text,
  brand: Text,
  /** 0 marks the item unavailable: the customer must remove it before checking out. */
  quantity: z.number().int().nonnegative(),
  originalPrice: Decimal.optional(),
  /** Supersedes originalPrice when both are set. */
  adjustedPrice: Decimal.nullish(),
  url: Text,
  imageUrl: Text,
});

export const WeedmapsOrderSchema = z.looseObject({
  orderId: Id,
  version: Scalar.optional(),
  status: Text,
  createdAt: Text,
  lastModifiedAt: Text,
  currency: Text,
  source: AsTheDraftSentIt,
  customer: AsTheDraftSentIt,
  seller: AsTheDraftSentIt,
  customerNote: AsTheDraftSentIt,
  documents: AsTheDraftSentIt,
  /** Required: removing a line item from a Draft answer was retired in 2022 for quantity 0 ("Updating an Order"). */
  lineItems: z.array(LineItem),
  discounts: z
    .array(
      z.looseObject({
        appliesTo: Text,
        discountType: Text,
        value: Decimal.nullish(),
        amount: Decimal.optional(),
        description: Text,
        discountCode: Text,
      }),
    )
    .optional(),
  taxes: z.array(z.looseObject({ name: Text, taxType: Text, amount: Decimal.optional() })).optional(),
  // Not shown in the public reference: read like taxes (a name, a type, an amount).
  fees: z.array(z.looseObject({ name: Text, feeType: Text, amount: Decimal.optional() })).optional(),
  payments: AsTheDraftSentIt,
  requestedSchedulingInfo: AsTheDraftSentIt,
  shippingAddress: z.looseObject({}).nullish(),
  subtotal: Decimal.optional(),
  discountTotal: Decimal.optional(),
  taxTotal: Decimal.optional(),
  feeTotal: Decimal.optional(),
  grandTotal: Decimal.optional(),
});

export type WeedmapsOrder = z.infer<typeof WeedmapsOrderSchema>;

/**
 * What the POS may not change ("Updating an Order"): customer/patient and seller information, source, orderId,
 * documents, customerNote, requestedSchedulingInfo and payments. The Weedmaps Service Fee is checked on its own.
 */
export const DRAFT_IMMUTABLE_FIELDS = [
  "orderId",
  "customer",
  "seller",
  "source",
  "documents",
  "customerNote",
  "requestedSchedulingInfo",
  "payments",
] as const;

/** Which entries of a Draft's `fees` are the Weedmaps Service Fee: a `feeType` (or `type`) or a `name`, each exact. */
export interface ServiceFeeOptions {
  feeTypes: readonly string[];
  names: readonly string[];
}

/**
 * ASSUMPTION, not documented: the public reference says the Service Fee is in the Draft when active but not how it
 * is marked. By default a fee typed SERVICE_FEE, or named "Weedmaps Service Fee" or "Weedmaps Fee", is it. A source
 * sets its own (`sources.<name>.serviceFee`) once a real Draft shows the marking (docs/configuration.md, the Weedmaps Draft).
 */
export const DEFAULT_SERVICE_FEE: ServiceFeeOptions = {
  feeTypes: ["SERVICE_FEE"],
  names: ["Weedmaps Service Fee", "Weedmaps Fee"],
};

// Exact, so a "Delivery service fee" the POS may reprice is not taken for Weedmaps' own; case and surrounding space
// aside, which a serialiser may change without meaning another fee.
const sameLabel = (value: unknown, labels: readonly string[]) =>
  typeof value === "string" && labels.some((label) => label.trim().toLowerCase() === value.trim().toLowerCase());

export function isServiceFee(fee: unknown, recognise: ServiceFeeOptions = DEFAULT_SERVICE_FEE): boolean {
  if (!fee || typeof fee !== "object") return false;
  const { feeType, type, name } = fee as Record<string, unknown>;
  return (
    sameLabel(feeType, recognise.feeTypes) || sameLabel(type, recognise.feeTypes) || sameLabel(name, recognise.names)
  );
}

export interface WeedmapsAnswerOptions {
  /** The source's `serviceFee` setting; DEFAULT_SERVICE_FEE when unset. */
  serviceFee?: ServiceFeeOptions;
}

const cents = (value: string | null | undefined) => Math.round(Number(value ?? 0) * 100);
const sum = (values: readonly (string | null | undefined)[]) => values.reduce((total, v) => total + cents(v), 0);

/** Totals that disagree with their parts by more than a cent: recorded, never refused (Weedmaps' rounding is not documented). */
function totalWarnings(order: WeedmapsOrder): string[] {
  const warnings: string[] = [];
  const subtotal = order.lineItems.reduce(
    (total, item) => total + cents(item.adjustedPrice ?? item.originalPrice) * item.quantity,
    0,
  );
  const parts: [string, string | undefined, number][] = [
    ["subtotal", order.subtotal, subtotal],
    ["discountTotal", order.discountTotal, sum((order.discounts ?? []).map((d) => d.amount))],
    ["taxTotal", order.taxTotal, sum((order.taxes ?? []).map((t) => t.amount))],
    ["feeTotal", order.feeTotal, sum((order.fees ?? []).map((f) => f.amount))],
  ];
  for (const [field, stated, computed] of parts)
    if (stated !== undefined && Math.abs(cents(stated) - computed) > 1) warnings.push(`totals: ${field}`);
  if (order.grandTotal !== undefined) {
    const [sub, discount, tax, fee] = parts.map(([, stated, computed]) =>
      stated !== undefined ? cents(stated) : computed,
    );
    if (Math.abs(cents(order.grandTotal) - (sub! - discount! + tax! + fee!)) > 1) warnings.push("totals: grandTotal");
  }
  return warnings;
}

const fieldOf = (value: unknown, key: string) =>
  value && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined;
const issuePath = (error: z.ZodError) => error.issues[0]!.path.map(String).join(".") || "(root)";

/**
 * What the customer is charged: a decimal string of zero or more. A negative one (an engine that subtracted a
 * discount from nothing) or one that is not a number would be shown at checkout as the confirmed total.
 */
const isChargeableTotal = (value: unknown) => Decimal.safeParse(value).success && Number(value) >= 0;

/**
 * A Draft answer is the customer's checkout: the Order object, the same order, a total that can be charged, the parts
 * the POS may not change as the Draft sent them, and the Service Fee kept. `repair` puts those last two back from the
 * Draft instead of refusing; another order's answer and an unchargeable total are refused in either mode, since they
 * are the POS's pricing, which the Draft cannot supply.
 */
export function checkWeedmapsAnswer(
  request: unknown,
  answer: unknown,
  mode: "strict" | "repair",
  options: WeedmapsAnswerOptions = {},
): AnswerCheck {
  if (!answer || typeof answer !== "object" || Array.isArray(answer))
    return { ok: false, rule: "draft_answer_invalid_order", path: "(root)" };
  const answeredId = fieldOf(answer, "orderId");
  if (!Id.safeParse(answeredId).success || !sameJson(fieldOf(request, "orderId"), answeredId))
    return { ok: false, rule: "draft_answer_order_id", path: "orderId" };
  const grandTotal = fieldOf(answer, "grandTotal");
  if (grandTotal !== undefined && !isChargeableTotal(grandTotal))
    return { ok: false, rule: "draft_answer_total", path: "grandTotal" };
  const parsed = WeedmapsOrderSchema.safeParse(answer);
  if (!parsed.success) return { ok: false, rule: "draft_answer_invalid_order", path: issuePath(parsed.error) };
  const recognise = options.serviceFee ?? DEFAULT_SERVICE_FEE;
  const mended: Record<string, unknown> = { ...(answer as Record<string, unknown>) };
  const repaired: string[] = [];
  for (const field of DRAFT_IMMUTABLE_FIELDS) {
    const asked = fieldOf(request, field);
    if (asked === undefined || sameJson(asked, mended[field])) continue;
    if (mode === "strict") return { ok: false, rule: "draft_answer_immutable", path: field };
    mended[field] = asked;
    repaired.push(field);
  }
  const askedFees =
    (fieldOf(request, "fees") as unknown[] | undefined)?.filter((fee) => isServiceFee(fee, recognise)) ?? [];
  const answeredFees = (mended.fees as unknown[] | undefined) ?? [];
  const kept = askedFees.every((fee) => answeredFees.some((f) => sameJson(f, fee)));
  if (!kept) {
    if (mode === "strict") return { ok: false, rule: "draft_answer_service_fee", path: "fees" };
    mended.fees = [...askedFees, ...answeredFees.filter((f) => !isServiceFee(f, recognise))];
    repaired.push("fees (Weedmaps Service Fee)");
  }
  const final = repaired.length > 0 ? WeedmapsOrderSchema.safeParse(mended) : parsed;
  if (!final.success) return { ok: false, rule: "draft_answer_invalid_order", path: issuePath(final.error) };
  return {
    ok: true,
    repaired,
    warnings: totalWarnings(final.data),
    ...(repaired.length > 0 ? { repairedAnswer: mended } : {}),
  };
}
