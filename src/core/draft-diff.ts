/**
 * What the POS changed in a Weedmaps Draft: the order Weedmaps sent against the order it was answered, field by field,
 * over what a Draft answer is for ("Updating an Order"; the Draft event "confirms item availability and provides
 * accurate estimates for taxes, fees, and totals"): line items (quantity and prices), taxes, fees, discounts and the
 * totals. Every other top-level field that differs is named, never shown: it may be customer data (a repaired
 * `shippingAddress`). Pure.
 *
 * The field names are the Order object's (test/fixtures/providers/weedmaps/README.md): `lineItems[{id, externalId,
 * wmProductId, name, quantity, originalPrice, adjustedPrice}]`, `taxes[{name, taxType, amount}]`, `fees[{name,
 * feeType, amount}]`, `discounts[{appliesTo, discountType, value, amount, description, discountCode}]`, `subtotal`,
 * `discountTotal`, `taxTotal`, `feeTotal`, `grandTotal`. Money is decimal strings; "35" and "35.00" are one price.
 */
import { sameJson } from "./answer.ts";

export interface ValueChange {
  field: string;
  /** As Weedmaps sent it; null when absent. */
  asked: string | null;
  /** As it was answered; null when absent. */
  answered: string | null;
  /** `answered − asked` with its sign ("+2.50", "-1"), when both are numbers. */
  delta: string | null;
}

export interface EntryChange {
  /** How a reader knows the entry: a line item's name, a tax's or fee's name or type, or its position. */
  label: string;
  change: "added" | "removed" | "changed";
  /** A line item the answer marks unavailable (quantity 0): the customer must remove it at checkout. */
  unavailable: boolean;
  fields: ValueChange[];
  /** Other fields of the entry that differ, by name only. */
  others: string[];
}

export interface DraftDiff {
  lineItems: EntryChange[];
  taxes: EntryChange[];
  fees: EntryChange[];
  discounts: EntryChange[];
  totals: ValueChange[];
  /** Other top-level fields the answer changed, by name only. */
  others: string[];
  /** True when the answer is the Draft as sent, in every field compared and named. */
  unchanged: boolean;
}

export const TOTAL_FIELDS = ["subtotal", "discountTotal", "taxTotal", "feeTotal", "grandTotal"] as const;

type Entry = Record<string, unknown>;

interface EntryRules {
  /** The fields shown with their values. */
  fields: readonly string[];
  /** The entry's identity: the first of these with a value, else its position. */
  key: (entry: Entry) => string | null;
  label: (entry: Entry) => string | null;
}

const text = (value: unknown): string | null =>
  typeof value === "string" && value.trim() !== "" ? value : typeof value === "number" ? String(value) : null;

const firstOf =
  (...names: string[]) =>
  (entry: Entry) => {
    for (const name of names) {
      const value = text(entry[name]);
      if (value !== null) return `${name}:${value}`;
    }
    return null;
  };

const labelOf =
  (...names: string[]) =>
  (entry: Entry) => {
    for (const name of names) {
      const value = text(entry[name]);
      if (value !== null) return value;
    }
    return null;
  };

/** A tax or fee is its type and its name together: a POS that splits "Estimated taxes" into two has two new taxes. */
const typedName =
  (type: string) =>
  (entry: Entry): string | null => {
    const kind = text(entry[type]) ?? text(entry.type);
    const name = text(entry.name);
    return kind === null && name === null ? null : `${kind ?? ""}|${name ?? ""}`;
  };

const RULES = {
  lineItems: {
    fields: ["quantity", "originalPrice", "adjustedPrice"],
    key: firstOf("id", "externalId", "wmProductId"),
    label: labelOf("name", "id", "externalId", "wmProductId"),
  },
  taxes: { fields: ["amount"], key: typedName("taxType"), label: labelOf("name", "taxType", "type") },
  fees: { fields: ["amount"], key: typedName("feeType"), label: labelOf("name", "feeType", "type") },
  discounts: {
    fields: ["value", "amount"],
    key: firstOf("discountCode", "description"),
    label: labelOf("description", "discountCode", "discountType"),
  },
} satisfies Record<string, EntryRules>;

const DECIMAL = /^-?\d+(?:\.\d+)?$/;

const numeric = (value: unknown): string | null =>
  typeof value === "number" && Number.isFinite(value)
    ? String(value)
    : typeof value === "string" && DECIMAL.test(value)
      ? value
      : null;

const decimals = (value: string) => value.split(".")[1]?.length ?? 0;

/** Two values alike: equal JSON, or the same number however it is written ("35" and "35.00"). */
function same(a: unknown, b: unknown): boolean {
  if (sameJson(a, b)) return true;
  const [x, y] = [numeric(a), numeric(b)];
  return x !== null && y !== null && Number(x) === Number(y);
}

/** Exact in the larger number of decimal places of the two: money is never a float here. */
function deltaOf(asked: unknown, answered: unknown): string | null {
  const [x, y] = [numeric(asked), numeric(answered)];
  if (x === null || y === null) return null;
  const places = Math.min(6, Math.max(decimals(x), decimals(y)));
  const scale = 10 ** places;
  const diff = Math.round(Number(y) * scale) - Math.round(Number(x) * scale);
  const sign = diff > 0 ? "+" : diff < 0 ? "-" : "±";
  return `${sign}${(Math.abs(diff) / scale).toFixed(places)}`;
}

/** A value as a reader sees it: text as it is, anything else as JSON, cut to 80 characters. */
function shown(value: unknown): string | null {
  if (value === undefined) return null;
  if (typeof value === "string") return value;
  const json = JSON.stringify(value);
  return json.length <= 80 ? json : `${json.slice(0, 79)}…`;
}

function valueChange(field: string, asked: unknown, answered: unknown): ValueChange | null {
  if (same(asked, answered)) return null;
  return { field, asked: shown(asked), answered: shown(answered), delta: deltaOf(asked, answered) };
}

const isEntry = (value: unknown): value is Entry =>
  value !== null && typeof value === "object" && !Array.isArray(value);
const entriesOf = (value: unknown): Entry[] => (Array.isArray(value) ? value.filter(isEntry) : []);
const fieldOf = (value: unknown, key: string): unknown => (isEntry(value) ? value[key] : undefined);

function changedKeys(a: Entry, b: Entry, except: readonly string[]): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => !except.includes(k) && !same(a[k], b[k])).sort();
}

function diffEntries(asked: unknown, answered: unknown, rules: EntryRules, quantity: boolean): EntryChange[] {
  const before = entriesOf(asked);
  const after = entriesOf(answered);
  const matched = new Set<number>();
  // The same key, else the same position among the unkeyed.
  const partnerOf = (entry: Entry, index: number): number => {
    const key = rules.key(entry);
    const found = after.findIndex((e, i) => !matched.has(i) && (key === null ? i === index : rules.key(e) === key));
    return found;
  };
  const changes: EntryChange[] = [];
  const labelFor = (entry: Entry, index: number) => rules.label(entry) ?? `#${index + 1}`;
  for (const [index, entry] of before.entries()) {
    const j = partnerOf(entry, index);
    if (j === -1) {
      changes.push({
        label: labelFor(entry, index),
        change: "removed",
        unavailable: false,
        fields: rules.fields.flatMap((f) => valueChange(f, entry[f], undefined) ?? []),
        others: [],
      });
      continue;
    }
    matched.add(j);
    const other = after[j]!;
    const fields = rules.fields.flatMap((f) => valueChange(f, entry[f], other[f]) ?? []);
    const others = changedKeys(entry, other, rules.fields);
    if (fields.length === 0 && others.length === 0) continue;
    changes.push({
      label: labelFor(other, index),
      change: "changed",
      unavailable: quantity && same(other.quantity, 0) && !same(entry.quantity, 0),
      fields,
      others,
    });
  }
  for (const [index, entry] of after.entries()) {
    if (matched.has(index)) continue;
    changes.push({
      label: labelFor(entry, index),
      change: "added",
      unavailable: quantity && same(entry.quantity, 0),
      fields: rules.fields.flatMap((f) => valueChange(f, undefined, entry[f]) ?? []),
      others: [],
    });
  }
  return changes;
}

/** The Draft and its answer compared; null when either is not an object (nothing to compare field by field). */
export function diffDraft(asked: unknown, answered: unknown): DraftDiff | null {
  if (!isEntry(asked) || !isEntry(answered)) return null;
  const lineItems = diffEntries(asked.lineItems, answered.lineItems, RULES.lineItems, true);
  const taxes = diffEntries(asked.taxes, answered.taxes, RULES.taxes, false);
  const fees = diffEntries(asked.fees, answered.fees, RULES.fees, false);
  const discounts = diffEntries(asked.discounts, answered.discounts, RULES.discounts, false);
  const totals = TOTAL_FIELDS.flatMap((f) => valueChange(f, fieldOf(asked, f), fieldOf(answered, f)) ?? []);
  const others = changedKeys(asked, answered, ["lineItems", "taxes", "fees", "discounts", ...TOTAL_FIELDS]);
  const unchanged = [lineItems, taxes, fees, discounts, totals, others].every((list) => list.length === 0);
  return { lineItems, taxes, fees, discounts, totals, others, unchanged };
}
