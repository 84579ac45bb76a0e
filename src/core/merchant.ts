/**
 * Whose an event is. The signature covers the body, not the URL: where the signed body names the merchant, that
 * is the merchant, and a URL that says another one is a conflict to be looked at, never a choice. Pure.
 */

/** A merchant id in a URL: Weedmaps Menu IDs, Leaf Trade licenses (`C10-0000456-LIC`) and the like. No CR/LF, no spaces. */
export const MERCHANT_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

export type QueryMerchant = { ok: true; value: string | undefined } | { ok: false; detail: string };

/** The merchant a query gives: absent, one valid value (repeated is fine), or refused. */
export function queryMerchantOf(values: readonly string[] | undefined): QueryMerchant {
  const given = [...new Set((values ?? []).filter((v) => v.length > 0))];
  if (given.length === 0) return { ok: true, value: undefined };
  if (given.length > 1) return { ok: false, detail: "the merchant is given twice with different values" };
  if (!MERCHANT_ID_PATTERN.test(given[0]!)) return { ok: false, detail: "the merchant does not match the merchant id pattern" };
  return { ok: true, value: given[0] };
}

export interface MerchantDecision {
  /** The merchant routing and delivery use: the signed one, else the URL's. */
  merchantId: string | null;
  /** The URL named a merchant the signed field contradicts. */
  conflict?: { field: string; signedMerchant: string; queryMerchant: string };
}

export function decideMerchant(signed: { field: string; value: string | undefined } | undefined, query: string | undefined): MerchantDecision {
  const signedMerchant = signed?.value;
  if (signed && signedMerchant !== undefined && query !== undefined && signedMerchant !== query) {
    return { merchantId: signedMerchant, conflict: { field: signed.field, signedMerchant, queryMerchant: query } };
  }
  return { merchantId: signedMerchant ?? query ?? null };
}
