/** SQL helpers shared by the storage modules. */
import { deliveryKey as k } from "../core/delivery-state.ts";

/**
 * Builds a WHERE clause from conditions written with bare `?`, numbering each as the next bound parameter
 * (D1 takes `?N`), so callers never count parameters by hand.
 */
export function sqlConditions() {
  const clauses: string[] = [];
  const params: unknown[] = [];
  const bind = (value: unknown) => {
    params.push(value);
    return `?${params.length}`;
  };
  return {
    params,
    bind,
    add(clause: string, ...values: unknown[]) {
      clauses.push(values.reduce<string>((text, value) => text.replace(/\?(?!\d)/, bind(value)), clause));
    },
    where: () => (clauses.length ? `WHERE ${clauses.join(" AND ")}` : ""),
  };
}

/** A field of the delivery JSON element `alias.value`, by a key the compiler checks against DeliveryState. */
export function deliveryField(alias: string, key: Parameters<typeof k>[0]): string {
  return `${alias}.value ->> '${k(key)}'`;
}
