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
