import { describe, expect, it } from "vitest";
import { diffDraft } from "../src/core/draft-diff.ts";
import { fixture } from "./helpers.ts";

/**
 * What the Draft page shows of a POS's answer (src/core/draft-diff.ts), on the Weedmaps Draft fixture: its line
 * items, taxes, fees, discounts and totals are the Order object's field names (test/fixtures/providers/weedmaps).
 */
type Order = Record<string, unknown> & {
  lineItems: Record<string, unknown>[];
  taxes: Record<string, unknown>[];
  fees: Record<string, unknown>[];
  discounts: Record<string, unknown>[];
};

const draft = () => JSON.parse(fixture("weedmaps/draft").body) as Order;

/** The Draft as a POS answers it: the same order, changed by `change`. */
function answer(change: (order: Order) => void): Order {
  const order = draft();
  change(order);
  return order;
}

describe("the Draft diff", () => {
  it("shows what a pricing engine changed: a price, an unavailable item, the taxes it confirmed, and the totals", () => {
    const answered = answer((o) => {
      o.lineItems[0]!.adjustedPrice = "31.50";
      o.lineItems[1]!.quantity = 0;
      o.taxes = [
        { name: "State Excise Tax", taxType: "EXCISE", amount: "7.41" },
        { name: "Local Sales Tax", taxType: "SALES", amount: "4.69" },
      ];
      Object.assign(o, { subtotal: "31.50", taxTotal: "12.10", grandTotal: "43.00" });
    });
    expect(diffDraft(draft(), answered)).toEqual({
      lineItems: [
        {
          label: "Blue Dream 3.5g",
          change: "changed",
          unavailable: false,
          fields: [{ field: "adjustedPrice", asked: "35.00", answered: "31.50", delta: "-3.50" }],
          others: [],
        },
        {
          label: "Sour Diesel Pre-Roll 1g",
          change: "changed",
          unavailable: true,
          fields: [{ field: "quantity", asked: "2", answered: "0", delta: "-2" }],
          others: [],
        },
      ],
      taxes: [
        {
          label: "Estimated taxes",
          change: "removed",
          unavailable: false,
          fields: [{ field: "amount", asked: "11.86", answered: null, delta: null }],
          others: [],
        },
        {
          label: "State Excise Tax",
          change: "added",
          unavailable: false,
          fields: [{ field: "amount", asked: null, answered: "7.41", delta: null }],
          others: [],
        },
        {
          label: "Local Sales Tax",
          change: "added",
          unavailable: false,
          fields: [{ field: "amount", asked: null, answered: "4.69", delta: null }],
          others: [],
        },
      ],
      fees: [],
      discounts: [],
      totals: [
        { field: "subtotal", asked: "51.00", answered: "31.50", delta: "-19.50" },
        { field: "taxTotal", asked: "11.86", answered: "12.10", delta: "+0.24" },
        { field: "grandTotal", asked: "62.26", answered: "43.00", delta: "-19.26" },
      ],
      others: [],
      unchanged: false,
    });
  });

  it("says an answer that is the Draft as sent changed nothing, however its numbers are written", () => {
    expect(diffDraft(draft(), draft())).toMatchObject({ unchanged: true, lineItems: [], totals: [], others: [] });
    const rewritten = answer((o) => {
      o.lineItems[0]!.originalPrice = "35";
      o.grandTotal = "62.260";
      o.lineItems[1]!.quantity = 2;
    });
    expect(diffDraft(draft(), rewritten)?.unchanged).toBe(true);
  });

  it("shows a repriced fee and discount, and a line item added or removed, matched by id rather than position", () => {
    const answered = answer((o) => {
      o.fees.push({ name: "Delivery fee", feeType: "DELIVERY", amount: "5.00" });
      o.discounts[0]!.amount = "2.00";
      // Reordered, one removed and one added: matched by id, not by place.
      const [first] = o.lineItems;
      o.lineItems = [
        { id: "li_99001", name: "Gelato Gummies 10pk", quantity: 1, originalPrice: "20.00", adjustedPrice: "20.00" },
        first!,
      ];
    });
    const diff = diffDraft(draft(), answered)!;
    expect(diff.fees).toEqual([
      {
        label: "Delivery fee",
        change: "added",
        unavailable: false,
        fields: [{ field: "amount", asked: null, answered: "5.00", delta: null }],
        others: [],
      },
    ]);
    expect(diff.discounts).toEqual([
      expect.objectContaining({
        label: "10% off pre-rolls",
        change: "changed",
        fields: [{ field: "amount", asked: "1.60", answered: "2.00", delta: "+0.40" }],
      }),
    ]);
    expect(diff.lineItems.map((e) => [e.label, e.change])).toEqual([
      ["Sour Diesel Pre-Roll 1g", "removed"],
      ["Gelato Gummies 10pk", "added"],
    ]);
    expect(diff.lineItems[1]!.fields.map((f) => [f.field, f.answered])).toEqual([
      ["quantity", "1"],
      ["originalPrice", "20.00"],
      ["adjustedPrice", "20.00"],
    ]);
  });

  it("names the other fields an answer changed, in an item or in the order, without their values", () => {
    const answered = answer((o) => {
      o.lineItems[0]!.name = "Blue Dream 3.5g (reserve)";
      o.shippingAddress = { address1: "1 Secret Lane", city: "Oakland" };
      o.lastModifiedAt = "2026-11-20T17:02:12Z";
    });
    const diff = diffDraft(draft(), answered)!;
    expect(diff.lineItems).toEqual([
      { label: "Blue Dream 3.5g (reserve)", change: "changed", unavailable: false, fields: [], others: ["name"] },
    ]);
    expect(diff.others).toEqual(["lastModifiedAt", "shippingAddress"]);
    expect(JSON.stringify(diff)).not.toContain("Secret Lane");
  });

  it("matches entries without an id by their place, and compares nothing that is not an order", () => {
    const asked = { lineItems: [{ quantity: 1, originalPrice: "5.00" }], taxes: [{ amount: "1.00" }] };
    const answered = { lineItems: [{ quantity: 3, originalPrice: "5.00" }], taxes: [{ amount: "1.20" }] };
    const diff = diffDraft(asked, answered)!;
    expect(diff.lineItems).toEqual([
      {
        label: "#1",
        change: "changed",
        unavailable: false,
        fields: [{ field: "quantity", asked: "1", answered: "3", delta: "+2" }],
        others: [],
      },
    ]);
    expect(diff.taxes[0]!.fields).toEqual([{ field: "amount", asked: "1.00", answered: "1.20", delta: "+0.20" }]);
    expect(diffDraft(draft(), [1, 2])).toBeNull();
    expect(diffDraft("not an order", draft())).toBeNull();
  });
});
