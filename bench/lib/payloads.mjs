// Weedmaps callbacks as the benchmark sends them: realistic orders (built from the repo's fixtures) at an exact byte
// size, each with its own orderId and signed exactly as Weedmaps signs (base64 HMAC-SHA256 of the body in
// `Signature`). A repeated orderId would be a duplicate, which the router answers without storing or enqueuing
// anything, so reusing bodies would flatter the numbers.
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";

const FIXTURES = path.resolve(import.meta.dirname, "../../test/fixtures/providers");
const fixture = (name) => JSON.parse(readFileSync(path.join(FIXTURES, `${name}.json`), "utf8"));

// Fixed-width ids keep every body of one template at exactly the same size.
const ID_WIDTH = 12;
const ID_PLACEHOLDER = "#".repeat(ID_WIDTH);

// Optional parts of an order, dropped in this order when even a one-item order is over the wanted size.
const OPTIONAL = [
  "documents",
  "shippingAddress",
  "requestedSchedulingInfo",
  "discounts",
  "fees",
  "payments",
  "taxes",
  "customer",
];

function lineItem(i, template) {
  const n = String(i + 1).padStart(3, "0");
  return { ...template, id: `li_${n}`, externalId: `SKU-${n}`, wmProductId: `prd-${10000 + i}` };
}

/**
 * A JSON order of exactly `size` bytes with a placeholder orderId: line items are added while they fit, and the
 * customer note takes up the rest. Returns the text before and after the placeholder.
 */
function orderTemplate(base, size, merchantId) {
  const order = structuredClone(base);
  order.orderId = ID_PLACEHOLDER;
  order.seller = { ...order.seller, id: merchantId };
  const items = base.lineItems;
  const render = (count) => {
    order.lineItems = Array.from({ length: count }, (_, i) => lineItem(i, items[i % items.length]));
    order.customerNote = "";
    return JSON.stringify(order).length;
  };
  let count = 1;
  for (const field of OPTIONAL) {
    if (render(1) <= size) break;
    delete order[field];
  }
  if (render(1) > size) throw new Error(`cannot build a ${size}-byte order: the smallest is ${render(1)} bytes`);
  while (render(count + 1) <= size) count += 1;
  render(count);
  order.customerNote = "x".repeat(size - JSON.stringify(order).length);
  const text = JSON.stringify(order);
  if (Buffer.byteLength(text) !== size)
    throw new Error(`order template is ${Buffer.byteLength(text)} bytes, wanted ${size}`);
  const at = text.indexOf(ID_PLACEHOLDER);
  return { before: text.slice(0, at), after: text.slice(at + ID_WIDTH) };
}

/**
 * A source of distinct signed requests. `next()` returns { body, headers, orderId }. `prefix` keeps ids from
 * different scenarios apart, so no two requests in one run are ever the same event.
 */
export function weedmapsRequests({ kind = "create", size, merchantId, secret, prefix }) {
  const base = kind === "draft" ? fixture("weedmaps/draft") : fixture("weedmaps/create");
  const { before, after } = orderTemplate(base, size ?? JSON.stringify(base).length, merchantId);
  const idPrefix = String(prefix).padStart(3, "0");
  let counter = 0;
  return {
    size: Buffer.byteLength(before + ID_PLACEHOLDER + after),
    next() {
      counter += 1;
      const orderId = `${idPrefix}${String(counter).padStart(ID_WIDTH - idPrefix.length, "0")}`;
      const body = `${before}${orderId}${after}`;
      const signature = createHmac("sha256", secret).update(body).digest("base64");
      return { body, orderId, headers: { "content-type": "application/json", signature } };
    },
  };
}
