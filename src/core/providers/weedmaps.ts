import { z } from "zod";
import { sameJson, type AnswerCheck } from "../answer.ts";
import { EVENT_TYPE_PATTERN } from "../config/schema.ts";
import { readScalar } from "../fields.ts";
import { keyPart, timestampOf, type ProviderAdapter } from "./contract.ts";

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
  checkAnswer: (request, answer, mode) => checkWeedmapsAnswer(request, answer, mode),
  records: (payload) => [payload],
  identityFields: { id: "orderId", updatedAt: "lastModifiedAt" },
  identify({ sourceName, pathEvent, payload, bodySha256 }) {
    const status = readScalar(payload, "status");
    if (status === undefined) return { ok: false, code: "unidentified_event", detail: "the order has no status" };
    const eventType = weedmapsEventType(status);
    if (!EVENT_TYPE_PATTERN.test(eventType)) return { ok: false, code: "unidentified_event", detail: "the order status is not an event name" };
    if (pathEvent !== undefined && pathEvent !== eventType) {
      return { ok: false, code: "event_type_mismatch", detail: `the path says ${pathEvent}, the order's status says ${eventType}` };
    }
    const orderId = readScalar(payload, "orderId") ?? null;
    const lastModifiedAt = readScalar(payload, "lastModifiedAt");
    // Weedmaps has no event id. A Create is the order itself: its retries, however serialised, are one event. A
    // Draft is one pricing request, so a changed cart is a new one. A later status is one state of the order.
    const version =
      eventType === "create" ? [] : eventType === "draft" ? [bodySha256] : [lastModifiedAt !== undefined ? keyPart(lastModifiedAt) : `sha256:${bodySha256}`];
    const idempotencyKey = orderId === null ? ["weedmaps", sourceName, eventType, "sha256", bodySha256].join(":") : ["weedmaps", sourceName, eventType, keyPart(orderId), ...version].join(":");
    return {
      ok: true,
      events: [{ eventType, providerId: orderId, providerTimestamp: timestampOf(lastModifiedAt), idempotencyKey, subject: payload }],
    };
  },
};

// ---------------------------------------------------------------------------------------------------------------
// The Order object (Weedmaps' Orders API reference and "Versioning" page), and what a Draft answer may change.

const Decimal = z.string().regex(/^-?\d+(?:\.\d+)?$/, 'must be a decimal string such as "12.50"');
const Text = z.string().max(10_000);
const Id = z.string().min(1).max(255);

// Lenient on fields it does not know (Weedmaps versions the payload and adds properties), strict on the types of
// the ones it does.
const LineItem = z.looseObject({
  id: Id,
  externalId: Text.nullish(),
  wmProductId: Text.nullish(),
  name: Text,
  weightBreakpoint: Text.nullish(),
  brand: Text.nullish(),
  /** 0 marks the item unavailable: the customer must remove it before checking out. */
  quantity: z.number().int().nonnegative(),
  originalPrice: Decimal,
  /** Supersedes originalPrice when both are set. */
  adjustedPrice: Decimal.nullish(),
  url: Text.nullish(),
  imageUrl: Text.nullish(),
});

export const WeedmapsOrderSchema = z.looseObject({
  orderId: Id,
  version: Text.optional(),
  status: Text,
  createdAt: Text.optional(),
  lastModifiedAt: Text.optional(),
  currency: Text.optional(),
  source: Text.optional(),
  customer: z
    .looseObject({
      id: Text.optional(),
      firstName: Text.nullish(),
      lastName: Text.nullish(),
      phone: Text.nullish(),
      dob: Text.nullish(),
      hasMedicalRecommendation: z.boolean().optional(),
      medicalRecommendation: z.looseObject({ id: Text.nullish(), expires: Text.nullish(), caregiverId: Text.nullish(), province: Text.nullish() }).nullish(),
    })
    .optional(),
  seller: z.looseObject({ id: Text.optional(), name: Text.nullish() }).optional(),
  customerNote: Text.nullish(),
  documents: z.array(z.looseObject({ documentType: Text, url: Text })).optional(),
  lineItems: z.array(LineItem),
  discounts: z.array(z.looseObject({ amount: Decimal, value: Decimal.nullish(), appliesTo: Text.nullish(), discountType: Text.nullish() })).optional(),
  taxes: z.array(z.looseObject({ name: Text, taxType: Text.nullish(), amount: Decimal })).optional(),
  fees: z.array(z.looseObject({ name: Text.nullish(), amount: Decimal })).optional(),
  payments: z.array(z.looseObject({})).optional(),
  requestedSchedulingInfo: z.looseObject({}).nullish(),
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
export const DRAFT_IMMUTABLE_FIELDS = ["orderId", "customer", "seller", "source", "documents", "customerNote", "requestedSchedulingInfo", "payments"] as const;

/**
 * The Weedmaps Service Fee in a Draft's `fees`. The public reference does not show how it is marked, so this reads
 * a fee type or a name that says "service fee"; confirm it against a real Draft before going live (README → Draft).
 */
export function isServiceFee(fee: unknown): boolean {
  if (!fee || typeof fee !== "object") return false;
  const { feeType, type, name } = fee as Record<string, unknown>;
  return [feeType, type].some((t) => typeof t === "string" && /service/i.test(t)) || (typeof name === "string" && /service fee/i.test(name));
}

const cents = (value: string | null | undefined) => Math.round(Number(value ?? 0) * 100);
const sum = (values: readonly (string | null | undefined)[]) => values.reduce((total, v) => total + cents(v), 0);

/** Totals that disagree with their parts by more than a cent: recorded, never refused (Weedmaps' rounding is not documented). */
function totalWarnings(order: WeedmapsOrder): string[] {
  const warnings: string[] = [];
  const subtotal = order.lineItems.reduce((total, item) => total + cents(item.adjustedPrice ?? item.originalPrice) * item.quantity, 0);
  const parts: [string, string | undefined, number][] = [
    ["subtotal", order.subtotal, subtotal],
    ["discountTotal", order.discountTotal, sum((order.discounts ?? []).map((d) => d.amount))],
    ["taxTotal", order.taxTotal, sum((order.taxes ?? []).map((t) => t.amount))],
    ["feeTotal", order.feeTotal, sum((order.fees ?? []).map((f) => f.amount))],
  ];
  for (const [field, stated, computed] of parts) if (stated !== undefined && Math.abs(cents(stated) - computed) > 1) warnings.push(`totals: ${field}`);
  if (order.grandTotal !== undefined) {
    const [sub, discount, tax, fee] = parts.map(([, stated, computed]) => (stated !== undefined ? cents(stated) : computed));
    if (Math.abs(cents(order.grandTotal) - (sub! - discount! + tax! + fee!)) > 1) warnings.push("totals: grandTotal");
  }
  return warnings;
}

const fieldOf = (value: unknown, key: string) => (value && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined);

/**
 * A Draft answer is the customer's checkout: the Order object, the same order, the parts the POS may not change as
 * the Draft sent them, and the Service Fee kept. `repair` puts those back from the Draft instead of refusing.
 */
export function checkWeedmapsAnswer(request: unknown, answer: unknown, mode: "strict" | "repair"): AnswerCheck {
  const parsed = WeedmapsOrderSchema.safeParse(answer);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.map(String).join(".") || "(root)";
    return { ok: false, rule: path === "orderId" ? "draft_answer_order_id" : "draft_answer_invalid_order", path };
  }
  const mended: Record<string, unknown> = { ...(answer as Record<string, unknown>) };
  const repaired: string[] = [];
  // Another order's answer is refused in either mode: its prices are not this checkout's.
  if (!sameJson(fieldOf(request, "orderId"), parsed.data.orderId)) return { ok: false, rule: "draft_answer_order_id", path: "orderId" };
  for (const field of DRAFT_IMMUTABLE_FIELDS) {
    const asked = fieldOf(request, field);
    if (asked === undefined || sameJson(asked, mended[field])) continue;
    if (mode === "strict") return { ok: false, rule: "draft_answer_immutable", path: field };
    mended[field] = asked;
    repaired.push(field);
  }
  const askedFees = (fieldOf(request, "fees") as unknown[] | undefined)?.filter(isServiceFee) ?? [];
  const answeredFees = (mended.fees as unknown[] | undefined) ?? [];
  const kept = askedFees.every((fee) => answeredFees.some((f) => sameJson(f, fee)));
  if (!kept) {
    if (mode === "strict") return { ok: false, rule: "draft_answer_service_fee", path: "fees" };
    mended.fees = [...askedFees, ...answeredFees.filter((f) => !isServiceFee(f))];
    repaired.push("fees (Weedmaps Service Fee)");
  }
  const final = repaired.length > 0 ? WeedmapsOrderSchema.safeParse(mended) : parsed;
  if (!final.success) return { ok: false, rule: "draft_answer_invalid_order", path: final.error.issues[0]!.path.map(String).join(".") || "(root)" };
  return { ok: true, repaired, warnings: totalWarnings(final.data), ...(repaired.length > 0 ? { repairedAnswer: mended } : {}) };
}
