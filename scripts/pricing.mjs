// A stand-in pricing engine for the Weedmaps Draft, shared by `npm run receiver` and the benchmark's receiver. It
// answers as Weedmaps' "Updating an Order" guide asks: 200 with the Order object, prices from each line item's
// adjustedPrice (else originalPrice), an unavailable item at quantity 0, the confirmed taxes and totals, and every
// part the POS may not change (customer, seller, source, orderId, documents, customerNote, requestedSchedulingInfo,
// payments, the Weedmaps Service Fee) exactly as the Draft sent it.

const cents = (value) => Math.round(Number(value ?? 0) * 100);
const money = (value) => (value / 100).toFixed(2);

const TAXES = [
  { name: "State Excise Tax", taxType: "EXCISE", rate: 0.15 },
  { name: "Local Sales Tax", taxType: "SALES", rate: 0.095 },
];

/** `unavailable`: line item ids or externalIds out of stock; they are answered with quantity 0. */
export function confirmDraft(order, { unavailable = [] } = {}) {
  const lineItems = (order.lineItems ?? []).map((item) =>
    unavailable.includes(item.id) || unavailable.includes(item.externalId) ? { ...item, quantity: 0 } : { ...item },
  );
  const subtotal = lineItems.reduce((sum, item) => sum + cents(item.adjustedPrice ?? item.originalPrice) * item.quantity, 0);
  const discountTotal = (order.discounts ?? []).reduce((sum, d) => sum + cents(d.amount), 0);
  const taxable = Math.max(0, subtotal - discountTotal);
  const taxes = TAXES.map(({ rate, ...tax }) => ({ ...tax, amount: money(Math.round(taxable * rate)) }));
  const taxTotal = taxes.reduce((sum, t) => sum + cents(t.amount), 0);
  const feeTotal = (order.fees ?? []).reduce((sum, f) => sum + cents(f.amount), 0);
  return {
    ...order,
    lineItems,
    taxes,
    subtotal: money(subtotal),
    discountTotal: money(discountTotal),
    taxTotal: money(taxTotal),
    feeTotal: money(feeTotal),
    grandTotal: money(subtotal - discountTotal + taxTotal + feeTotal),
  };
}
