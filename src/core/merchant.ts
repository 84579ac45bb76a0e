/**
 * Whose an event is. The signature covers the body, not the URL: where the signed body names the merchant, that
 * is the merchant, and a URL that says another one is a conflict to be looked at, never a choice. Pure.
 */

/**
 * A merchant id in a URL: Weedmaps Menu IDs (documented up to 255 characters), Leaf Trade licenses
 * (`C10-0000456-LIC`) and the like. No CR/LF, no spaces.
 */
export const MERCHANT_ID_PATTERN = /^[A-Za-z0-9._:-]{1,255}$/;

// CR/LF and other control characters are refused outright: they are never a mistake in a callback URL, only an
// attempt at the logs or at a header further on.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is this pattern's purpose.
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/** How much of an unusable URL merchant the hold record keeps, for the operator to see what the URL said. */
const KEPT_CHARS = 255;

/**
 * The merchant a query gives: absent, one valid value (repeated is fine), a `problem` (the event is held, with the
 * URL's value kept), or refused (control characters).
 */
export type QueryMerchant =
  | { ok: true; value: string | undefined; problem?: undefined }
  | { ok: true; value: undefined; problem: { detail: string; given: string } }
  | { ok: false; detail: string };

export function queryMerchantOf(values: readonly string[] | undefined): QueryMerchant {
  const given = [...new Set((values ?? []).filter((v) => v.length > 0))];
  if (given.some((v) => CONTROL_CHARACTER.test(v))) return { ok: false, detail: "the merchant has control characters" };
  if (given.length === 0) return { ok: true, value: undefined };
  const kept = given.join(",").slice(0, KEPT_CHARS);
  const held = (detail: string) => ({ ok: true as const, value: undefined, problem: { detail, given: kept } });
  if (given.length > 1) return held("the callback URL names the merchant twice, with different values");
  if (given[0]!.includes("{{")) return held("the callback URL's {{merchantId}} placeholder was never filled in");
  if (!MERCHANT_ID_PATTERN.test(given[0]!))
    return held("the callback URL's merchant cannot be a merchant id (up to 255 of A-Z a-z 0-9 . _ : -)");
  return { ok: true, value: given[0] };
}

export interface MerchantDecision {
  /** The merchant routing and delivery use: the signed one, else the URL's. */
  merchantId: string | null;
  /** The URL named a merchant the signed field contradicts. */
  conflict?: { field: string; signedMerchant: string; queryMerchant: string };
}

export function decideMerchant(
  signed: { field: string; value: string | undefined } | undefined,
  query: string | undefined,
): MerchantDecision {
  const signedMerchant = signed?.value;
  if (signed && signedMerchant !== undefined && query !== undefined && signedMerchant !== query) {
    return { merchantId: signedMerchant, conflict: { field: signed.field, signedMerchant, queryMerchant: query } };
  }
  return { merchantId: signedMerchant ?? query ?? null };
}
