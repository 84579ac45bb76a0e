/**
 * Envelope encryption of the customer data the router keeps (bodies, Draft answers, destination response excerpts),
 * with WebCrypto's AES-256-GCM. Each event gets its own random data key; the data key is stored wrapped by a key of
 * the operator's key ring (the `PAYLOAD_KEYS` secret). So rotating the ring re-wraps 60 bytes per event rather than
 * re-encrypting its payloads, and purging an event's data key makes every ciphertext of it unreadable at once.
 *
 * Every ciphertext is bound to its event id and to what it is (additional authenticated data), so a body copied to
 * another row, or an answer copied over a body, fails to decrypt instead of being shown as that event's.
 */
import { decodeBase64, encodeBase64 } from "./signatures/encoding.ts";

export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/** What a sealed value is; part of its additional data. */
export type PayloadField = "body" | "answer" | "excerpt";

/** Stored forms, versioned so a later scheme can be told apart: a wrapped data key names the ring key that wraps it. */
const WRAPPED_PREFIX = "dk1:";
const SEALED_PREFIX = "pe1:";
const IV_BYTES = 12;
const KEY_BYTES = 32;

export interface KeyRing {
  /** The key id new data keys are wrapped with: the first of the secret. */
  readonly primary: string;
  /** Every key id, in the secret's order. */
  readonly ids: readonly string[];
  readonly keys: ReadonlyMap<string, CryptoKey>;
}

export type KeyRingResult = { ok: true; ring: KeyRing } | { ok: false; reason: string };

/** Thrown when a stored value cannot be opened. `reason` names no key material and no payload byte. */
export class PayloadKeyError extends Error {
  readonly reason: "key_not_in_ring" | "not_authentic" | "malformed";
  readonly keyId?: string;

  constructor(reason: PayloadKeyError["reason"], keyId?: string) {
    super(
      reason === "key_not_in_ring"
        ? `payload key "${keyId}" is not in PAYLOAD_KEYS`
        : `stored payload is ${reason === "malformed" ? "malformed" : "not authentic for this event"}`,
    );
    this.name = "PayloadKeyError";
    this.reason = reason;
    this.keyId = keyId;
  }
}

const encoder = new TextEncoder();

/**
 * `PAYLOAD_KEYS`: entries `<key id>:<base64 of 32 random bytes>`, separated by commas or whitespace. The first
 * encrypts; all of them decrypt. Reasons never quote a key.
 */
export async function parseKeyRing(secret: string): Promise<KeyRingResult> {
  const entries = secret.split(/[\s,]+/).filter((entry) => entry.length > 0);
  if (entries.length === 0) return { ok: false, reason: "PAYLOAD_KEYS holds no key" };
  const keys = new Map<string, CryptoKey>();
  for (const [i, entry] of entries.entries()) {
    const colon = entry.indexOf(":");
    const id = colon > 0 ? entry.slice(0, colon) : "";
    if (!KEY_ID_PATTERN.test(id))
      return {
        ok: false,
        reason: `PAYLOAD_KEYS entry ${i + 1}: expected <key id>:<base64 key>, with an id of ${KEY_ID_PATTERN.source}`,
      };
    if (keys.has(id)) return { ok: false, reason: `PAYLOAD_KEYS: key id "${id}" appears twice` };
    const raw = decodeBase64(entry.slice(colon + 1));
    if (!raw || raw.length !== KEY_BYTES)
      return { ok: false, reason: `PAYLOAD_KEYS: key "${id}" is not ${KEY_BYTES} bytes of base64` };
    keys.set(id, await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]));
  }
  const ids = [...keys.keys()];
  return { ok: true, ring: { primary: ids[0]!, ids, keys } };
}

/** An event's data key: `key` seals and opens its fields, `wrapped` is what is stored, under ring key `keyId`. */
export interface DataKey {
  readonly keyId: string;
  readonly wrapped: string;
  readonly key: CryptoKey;
}

const wrapAad = (keyId: string, eventId: string) => encoder.encode(`${WRAPPED_PREFIX}${keyId}:${eventId}`);
const fieldAad = (field: PayloadField, eventId: string) => encoder.encode(`${SEALED_PREFIX}${field}:${eventId}`);

function concat(iv: Uint8Array, ciphertext: ArrayBuffer): Uint8Array {
  const out = new Uint8Array(iv.length + ciphertext.byteLength);
  out.set(iv);
  out.set(new Uint8Array(ciphertext), iv.length);
  return out;
}

async function encrypt(key: CryptoKey, plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  return concat(iv, await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, key, plaintext));
}

async function decrypt(key: CryptoKey, sealed: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
  if (sealed.length < IV_BYTES + 16) throw new PayloadKeyError("malformed");
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: sealed.subarray(0, IV_BYTES), additionalData: aad },
      key,
      sealed.subarray(IV_BYTES),
    );
    return new Uint8Array(plain);
  } catch {
    throw new PayloadKeyError("not_authentic");
  }
}

const importDataKey = (raw: Uint8Array) =>
  crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);

async function wrap(ring: KeyRing, keyId: string, eventId: string, raw: Uint8Array): Promise<string> {
  return `${WRAPPED_PREFIX}${keyId}:${encodeBase64(await encrypt(ring.keys.get(keyId)!, raw, wrapAad(keyId, eventId)))}`;
}

async function unwrapRaw(ring: KeyRing, eventId: string, wrapped: string): Promise<Uint8Array> {
  const keyId = wrappedKeyId(wrapped);
  const kek = ring.keys.get(keyId);
  if (!kek) throw new PayloadKeyError("key_not_in_ring", keyId);
  const sealed = decodeBase64(wrapped.slice(WRAPPED_PREFIX.length + keyId.length + 1));
  if (!sealed) throw new PayloadKeyError("malformed");
  const raw = await decrypt(kek, sealed, wrapAad(keyId, eventId));
  if (raw.length !== KEY_BYTES) throw new PayloadKeyError("malformed");
  return raw;
}

/** The ring key id a stored data key is wrapped with. */
export function wrappedKeyId(wrapped: string): string {
  const end = wrapped.indexOf(":", WRAPPED_PREFIX.length);
  if (!wrapped.startsWith(WRAPPED_PREFIX) || end < 0) throw new PayloadKeyError("malformed");
  return wrapped.slice(WRAPPED_PREFIX.length, end);
}

/** A new data key for one event, wrapped by the ring's primary key. */
export async function newDataKey(ring: KeyRing, eventId: string): Promise<DataKey> {
  const raw = crypto.getRandomValues(new Uint8Array(KEY_BYTES));
  return { keyId: ring.primary, wrapped: await wrap(ring, ring.primary, eventId, raw), key: await importDataKey(raw) };
}

export async function openDataKey(ring: KeyRing, eventId: string, wrapped: string): Promise<DataKey> {
  const raw = await unwrapRaw(ring, eventId, wrapped);
  return { keyId: wrappedKeyId(wrapped), wrapped, key: await importDataKey(raw) };
}

/** Rotation: the same data key, wrapped by the ring's primary key instead. */
export async function rewrapDataKey(
  ring: KeyRing,
  eventId: string,
  wrapped: string,
): Promise<{ keyId: string; wrapped: string }> {
  const raw = await unwrapRaw(ring, eventId, wrapped);
  return { keyId: ring.primary, wrapped: await wrap(ring, ring.primary, eventId, raw) };
}

export function isSealed(stored: string): boolean {
  return stored.startsWith(SEALED_PREFIX);
}

export async function sealField(
  dataKey: DataKey,
  eventId: string,
  field: PayloadField,
  plaintext: Uint8Array,
): Promise<string> {
  return `${SEALED_PREFIX}${encodeBase64(await encrypt(dataKey.key, plaintext, fieldAad(field, eventId)))}`;
}

export async function openField(
  dataKey: DataKey,
  eventId: string,
  field: PayloadField,
  sealed: string,
): Promise<Uint8Array> {
  if (!isSealed(sealed)) throw new PayloadKeyError("malformed");
  const bytes = decodeBase64(sealed.slice(SEALED_PREFIX.length));
  if (!bytes) throw new PayloadKeyError("malformed");
  return decrypt(dataKey.key, bytes, fieldAad(field, eventId));
}

/** Which ring key ids a ring lacks, of those that still protect stored rows: the ring must not be used then. */
export function missingKeys(ring: KeyRing, protecting: readonly string[]): string[] {
  return protecting.filter((id) => !ring.keys.has(id));
}

/** How payloads are kept: encrypted with a ring (the default), or, where the config says `unsafe-disabled`, as given. */
export type PayloadProtection = { mode: "encrypted"; ring: KeyRing } | { mode: "plaintext" };

export const PLAINTEXT: PayloadProtection = { mode: "plaintext" };
