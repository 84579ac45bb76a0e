import { decodeBase64, encodeBase64 } from "./encoding.ts";

const encoder = new TextEncoder();
const keyCache = new Map<string, Promise<CryptoKey>>();

/**
 * Standard Webhooks secrets are base64, optionally prefixed `whsec_` (the `standardwebhooks` library decodes them
 * the same way, so receivers can verify with it).
 */
export function decodeSigningSecret(secret: string): Uint8Array | undefined {
  const bytes = decodeBase64(secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret);
  return bytes && bytes.byteLength >= 16 ? bytes : undefined;
}

function signingKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret);
  if (!key) {
    const bytes = decodeSigningSecret(secret);
    if (!bytes) return Promise.reject(new TypeError("signing secret is not base64 (whsec_…) of at least 16 bytes"));
    key = crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    keyCache.set(secret, key);
  }
  return key;
}

/** `v1,` + base64(HMAC-SHA256(`${id}.${timestamp}.${body}`)), per the Standard Webhooks specification. */
export async function signStandardWebhook(
  secret: string,
  id: string,
  timestampSeconds: number,
  body: Uint8Array,
): Promise<string> {
  const prefix = encoder.encode(`${id}.${timestampSeconds}.`);
  const content = new Uint8Array(prefix.byteLength + body.byteLength);
  content.set(prefix, 0);
  content.set(body, prefix.byteLength);
  const signature = await crypto.subtle.sign("HMAC", await signingKey(secret), content);
  return `v1,${encodeBase64(signature)}`;
}

/** How far a Standard Webhooks timestamp may be from now, either way (the specification's suggested tolerance). */
export const STANDARD_WEBHOOKS_TOLERANCE_SECONDS = 300;

/**
 * Verifies a Standard Webhooks request: any `v1,` signature in `webhook-signature` over `${id}.${timestamp}.${body}`,
 * compared by `crypto.subtle.verify` (constant time), with a timestamp within the tolerance so a captured request
 * cannot be replayed later.
 */
export async function verifyStandardWebhook(
  secret: string,
  headers: { id: string | undefined; timestamp: string | undefined; signature: string | undefined },
  body: Uint8Array,
  nowMs: number,
): Promise<boolean> {
  const { id, timestamp, signature } = headers;
  if (!id || !timestamp || !signature || !/^\d{1,12}$/.test(timestamp)) return false;
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > STANDARD_WEBHOOKS_TOLERANCE_SECONDS) return false;
  const bytes = decodeSigningSecret(secret);
  if (!bytes) return false;
  const key = await crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  const prefix = encoder.encode(`${id}.${timestamp}.`);
  const content = new Uint8Array(prefix.byteLength + body.byteLength);
  content.set(prefix, 0);
  content.set(body, prefix.byteLength);
  for (const part of signature.split(" ").slice(0, 10)) {
    if (!part.startsWith("v1,")) continue;
    const given = decodeBase64(part.slice(3));
    if (given && (await crypto.subtle.verify("HMAC", key, given, content))) return true;
  }
  return false;
}
