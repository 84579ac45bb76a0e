// A stand-in pricing engine for the Weedmaps Draft, shared by `npm run receiver` and the benchmark's receiver. It
// answers as Weedmaps' "Updating an Order" guide asks: 200 with the Order object, prices from each line item's
// adjustedPrice (else originalPrice), an unavailable item at quantity 0, the confirmed discounts, taxes and totals,
// and every part the POS may not change (customer, seller, source, orderId, documents, customerNote,
// requestedSchedulingInfo, payments, the Weedmaps Service Fee) exactly as the Draft sent it.

const cents = (value) => Math.round(Number(value ?? 0) * 100);
const money = (value) => (value / 100).toFixed(2);

const TAXES = [
  { name: "State Excise Tax", taxType: "EXCISE", rate: 0.15 },
  { name: "Local Sales Tax", taxType: "SALES", rate: 0.095 },
];

const priceOf = (item) => cents(item.adjustedPrice ?? item.originalPrice);

/**
 * The line item a LINE_ITEM discount is for. Weedmaps' discount object names no item, so this is the sample's
 * assumption: the item named by an undocumented `lineItemId` (a POS knows its own discounts), else the one item
 * whose original price the discount's amount fits: `value` percent of it, or the cut its adjustedPrice already shows.
 */
function discountedItem(discount, draftItems) {
  if (discount.lineItemId != null)
    return draftItems.find((item) => item.id === discount.lineItemId || item.externalId === discount.lineItemId);
  const amount = cents(discount.amount);
  const fits = (item) => {
    const full = cents(item.originalPrice) * item.quantity;
    const percent =
      discount.discountType === "PERCENTAGE" &&
      Math.abs(Math.round((full * Number(discount.value)) / 100) - amount) <= 1;
    return percent || Math.abs(full - priceOf(item) * item.quantity - amount) <= 1;
  };
  const candidates = draftItems.filter(fits);
  return candidates.length === 1 ? candidates[0] : undefined;
}

/** An item's adjustedPrice already takes this discount off: subtracting it again would charge the customer less twice. */
const alreadyInPrice = (discount, item) =>
  item.adjustedPrice != null &&
  Math.abs((cents(item.originalPrice) - cents(item.adjustedPrice)) * item.quantity - cents(discount.amount)) <= 1 &&
  cents(discount.amount) > 0;

/** `unavailable`: line item ids or externalIds out of stock; they are answered with quantity 0. */
export function confirmDraft(order, { unavailable = [] } = {}) {
  const draftItems = order.lineItems ?? [];
  const isUnavailable = (item) => unavailable.includes(item.id) || unavailable.includes(item.externalId);
  const lineItems = draftItems.map((item) => (isUnavailable(item) ? { ...item, quantity: 0 } : { ...item }));
  const subtotal = lineItems.reduce((sum, item) => sum + priceOf(item) * item.quantity, 0);

  // Each discount is taken once, from what is still in the cart: an unavailable item's discount goes with it (it
  // never moves onto the items left), a percentage of the subtotal is of the subtotal that remains, and together they
  // never take off more than the subtotal, so no total is ever negative.
  let left = subtotal;
  const discounts = [];
  for (const discount of order.discounts ?? []) {
    let amount = cents(discount.amount);
    if (discount.appliesTo === "LINE_ITEM") {
      const item = discountedItem(discount, draftItems);
      if (item && (isUnavailable(item) || alreadyInPrice(discount, item))) continue;
    } else if (discount.appliesTo === "SUBTOTAL" && discount.discountType === "PERCENTAGE") {
      amount = Math.round((subtotal * Number(discount.value)) / 100);
    }
    amount = Math.min(Math.max(0, amount), left);
    left -= amount;
    discounts.push({ ...discount, amount: money(amount) });
  }
  const discountTotal = subtotal - left;

  const taxable = subtotal - discountTotal;
  const taxes = TAXES.map(({ rate, ...tax }) => ({ ...tax, amount: money(Math.round(taxable * rate)) }));
  const taxTotal = taxes.reduce((sum, t) => sum + cents(t.amount), 0);
  const feeTotal = (order.fees ?? []).reduce((sum, f) => sum + cents(f.amount), 0);
  return {
    ...order,
    lineItems,
    ...(order.discounts !== undefined ? { discounts } : {}),
    taxes,
    subtotal: money(subtotal),
    discountTotal: money(discountTotal),
    taxTotal: money(taxTotal),
    feeTotal: money(feeTotal),
    grandTotal: money(Math.max(0, subtotal - discountTotal + taxTotal + feeTotal)),
  };
}
