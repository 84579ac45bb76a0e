import { decodeBase64, decodeHex, encodeHex } from "./encoding.ts";

/**
 * Inbound signature schemes, over the exact bytes received. Pure: they take the raw body, the header value and
 * the secret values, and return a tagged result whose reason goes to the log only.
 */
export type VerifyResult =
  | { ok: true; secretIndex: number }
  | { ok: false; reason: "missing_header" | "malformed_signature" | "signature_mismatch" | "token_mismatch" };

export interface HmacSchemeOptions {
  encoding: "base64" | "hex";
  prefix: string;
}

const SHA256_BYTES = 32;
const encoder = new TextEncoder();
// Import each secret once per isolate: importKey is the costly part of an HMAC verify.
const keyCache = new Map<string, Promise<CryptoKey>>();

export function hmacKey(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  const cacheKey = `${usage}:${secret}`;
  let key = keyCache.get(cacheKey);
  if (!key) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [usage]);
    keyCache.set(cacheKey, key);
    key.catch(() => keyCache.delete(cacheKey));
  }
  return key;
}

/**
 * HMAC-SHA256 over the raw body, as Weedmaps (base64 in `Signature`) and Leaf Trade (configurable) sign.
 * `crypto.subtle.verify` compares in constant time; every secret is tried so rotation needs no downtime.
 */
export async function verifyHmacSignature(
  body: ArrayBuffer,
  headerValue: string | undefined,
  secrets: readonly string[],
  options: HmacSchemeOptions,
): Promise<VerifyResult> {
  if (!headerValue) return { ok: false, reason: "missing_header" };
  let value = headerValue.trim();
  if (options.prefix) {
    if (!value.startsWith(options.prefix)) return { ok: false, reason: "malformed_signature" };
    value = value.slice(options.prefix.length);
  }
  const signature = options.encoding === "hex" ? decodeHex(value) : decodeBase64(value);
  if (!signature || signature.byteLength !== SHA256_BYTES) return { ok: false, reason: "malformed_signature" };
  for (const [secretIndex, secret] of secrets.entries()) {
    const key = await hmacKey(secret, "verify");
    if (await crypto.subtle.verify("HMAC", key, signature, body)) return { ok: true, secretIndex };
  }
  return { ok: false, reason: "signature_mismatch" };
}

/** Leaf Trade's custom-header option, e.g. `Authorization: Bearer <token>`, compared in constant time. */
export function verifyHeaderToken(
  headerValue: string | undefined,
  secrets: readonly string[],
  prefix: string,
): VerifyResult {
  if (!headerValue) return { ok: false, reason: "missing_header" };
  const received = encoder.encode(headerValue);
  for (const [secretIndex, secret] of secrets.entries()) {
    const expected = encoder.encode(prefix + secret);
    // timingSafeEqual throws on unequal lengths; the length of a token is not the secret part.
    if (expected.byteLength === received.byteLength && crypto.subtle.timingSafeEqual(expected, received)) {
      return { ok: true, secretIndex };
    }
  }
  return { ok: false, reason: "token_mismatch" };
}

export async function sha256Hex(data: ArrayBuffer | Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return encodeHex(await crypto.subtle.digest("SHA-256", bytes));
}
