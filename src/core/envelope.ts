/**
 * Envelope encryption of the customer data the router keeps (bodies, Draft answers, destination response excerpts
 * and failed attempts' response headers), with WebCrypto's AES-256-GCM. Each event gets its own random data key; the
 * data key is stored wrapped by a key of the operator's key ring (the `PAYLOAD_KEYS` secret). So rotating the ring
 * re-wraps 60 bytes per event rather than re-encrypting its payloads, and purging an event's data key makes every
 * ciphertext of it unreadable at once.
 *
 * Every ciphertext is bound to its event id and to what it is (additional authenticated data), so a body copied to
 * another row, or an answer copied over a body, fails to decrypt instead of being shown as that event's.
 *
 * A field is compressed before it is encrypted (issue #24: a 4.3 KB Weedmaps Create took 5.8 KB of base64 sealed,
 * 1.9 KB compressed first), unless compressing would not make it smaller. The prefix says which: `pe2:` is
 * compressed, `pe1:` is the bytes as given (every value stored before compression, and short ones since). The prefix
 * is part of the additional data, so neither form can be relabelled as the other.
 */
import { MAX_BODY_BYTES_CEILING } from "./config/schema.ts";
import { decodeBase64, encodeBase64 } from "./signatures/encoding.ts";

export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/** What a sealed value is; part of its additional data. */
export type PayloadField = "body" | "answer" | "excerpt" | "headers";

/** Stored forms, versioned so a later scheme can be told apart: a wrapped data key names the ring key that wraps it. */
const WRAPPED_PREFIX = "dk1:";
/** `pe1:` base64(IV ‖ AES-GCM(bytes)). */
const SEALED_PREFIX = "pe1:";
/** `pe2:` base64(IV ‖ AES-GCM(length ‖ deflate-raw(bytes))), the length a 4-byte big-endian count of the bytes. */
const COMPRESSED_PREFIX = "pe2:";
const IV_BYTES = 12;
const KEY_BYTES = 32;

/**
 * "deflate-raw", of the three formats CompressionStream offers in workerd (no brotli): the same DEFLATE data as
 * "deflate" and "gzip" without their header and checksum, which AES-GCM's tag makes redundant. Measured in workerd on
 * 500 distinct Weedmaps Creates of 4,300 bytes on average: 1,399 bytes, against 1,405 ("deflate") and 1,417 ("gzip");
 * on the 2,211-byte create fixture 1,047, 1,053 and 1,065.
 */
const COMPRESSION = "deflate-raw";
const LENGTH_BYTES = 4;
/**
 * Shorter values are sealed as given, without trying: DEFLATE's framing and the length take about 6 bytes, so a short
 * excerpt rarely shrinks, and by a few bytes when it does ("ok" would take 6, `{"ok":true}` 17, a 77-byte JSON answer
 * 79, a 99-byte one 96), while each try costs a compression stream (about 0.2 ms in local workerd).
 */
const MIN_COMPRESSED_INPUT = 128;
/**
 * The most a compressed value may open to: the largest payload the router stores. Only values up to it are compressed,
 * so every authentic one opens; a value that says or turns out to be larger is refused before it is held in memory.
 */
export const MAX_OPENED_BYTES = MAX_BODY_BYTES_CEILING;
/**
 * workerd's DecompressionStream inflates each write whole (it has no backpressure), and DEFLATE expands at most
 * 1032:1, so compressed input goes in slices of this size: at most about 1 MiB of output past the bound.
 */
const INFLATE_SLICE_BYTES = 1024;

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
  readonly reason: "key_not_in_ring" | "not_authentic" | "malformed" | "too_large";
  readonly keyId?: string;

  constructor(reason: PayloadKeyError["reason"], keyId?: string) {
    super(
      reason === "key_not_in_ring"
        ? `payload key "${keyId}" is not in PAYLOAD_KEYS`
        : reason === "too_large"
          ? `stored payload opens to more than its recorded length, or than ${MAX_OPENED_BYTES} bytes`
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
type SealedPrefix = typeof SEALED_PREFIX | typeof COMPRESSED_PREFIX;
const fieldAad = (prefix: SealedPrefix, field: PayloadField, eventId: string) =>
  encoder.encode(`${prefix}${field}:${eventId}`);

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

const sealedPrefixOf = (stored: string): SealedPrefix | null =>
  stored.startsWith(COMPRESSED_PREFIX) ? COMPRESSED_PREFIX : stored.startsWith(SEALED_PREFIX) ? SEALED_PREFIX : null;

export function isSealed(stored: string): boolean {
  return sealedPrefixOf(stored) !== null;
}

/** The length, then the DEFLATE data: what `pe2:` encrypts. */
async function compress(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream(COMPRESSION));
  const deflated = new Uint8Array(await new Response(stream).arrayBuffer());
  const out = new Uint8Array(LENGTH_BYTES + deflated.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(deflated, LENGTH_BYTES);
  return out;
}

/**
 * The bytes `compress` took, refused unless they are exactly the length it recorded, which is at most
 * MAX_OPENED_BYTES. One BYOB read is always waiting with room for the rest plus one byte, so each slice's output goes
 * straight into the result, and a stream that opens to more stops at the slice that overshoots.
 */
async function decompress(packed: Uint8Array): Promise<Uint8Array> {
  if (packed.length < LENGTH_BYTES) throw new PayloadKeyError("malformed");
  const length = new DataView(packed.buffer, packed.byteOffset, LENGTH_BYTES).getUint32(0);
  if (length > MAX_OPENED_BYTES) throw new PayloadKeyError("too_large");
  const input = packed.subarray(LENGTH_BYTES);
  const stream = new DecompressionStream(COMPRESSION);
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader({ mode: "byob" });
  let out = new Uint8Array(length + 1);
  let filled = 0;
  const reading = (async () => {
    while (filled <= length) {
      // The read takes the buffer and hands it back in `value`, also when it is the last.
      const { done, value } = await reader.read(new Uint8Array(out.buffer, filled, out.length - filled));
      if (value) out = new Uint8Array(value.buffer);
      if (done || !value) return;
      filled += value.byteLength;
    }
  })();
  reading.catch(() => {}); // a bad stream fails the write and this read at once: the write's error is the one kept
  let inflated = true;
  try {
    for (let at = 0; at < input.length && filled <= length; at += INFLATE_SLICE_BYTES) {
      // A copy: workerd detaches the buffer of what is written, and a view would take all of `input` with it.
      await writer.write(input.slice(at, at + INFLATE_SLICE_BYTES));
    }
    if (filled <= length) await writer.close();
    await reading;
  } catch {
    inflated = false; // not DEFLATE data, or cut short
  } finally {
    // What is left unwritten or unread is dropped, which also settles a read still waiting.
    await Promise.allSettled([writer.abort(), reader.cancel(), reading]);
  }
  if (filled > length) throw new PayloadKeyError("too_large");
  if (!inflated || filled < length) throw new PayloadKeyError("malformed");
  return out.subarray(0, length);
}

/** Compressed (`pe2:`) where that makes it smaller, else as given (`pe1:`); bound to the event and the field. */
export async function sealField(
  dataKey: DataKey,
  eventId: string,
  field: PayloadField,
  plaintext: Uint8Array,
): Promise<string> {
  const packed =
    plaintext.length >= MIN_COMPRESSED_INPUT && plaintext.length <= MAX_OPENED_BYTES ? await compress(plaintext) : null;
  const [prefix, bytes]: [SealedPrefix, Uint8Array] =
    packed && packed.length < plaintext.length ? [COMPRESSED_PREFIX, packed] : [SEALED_PREFIX, plaintext];
  return `${prefix}${encodeBase64(await encrypt(dataKey.key, bytes, fieldAad(prefix, field, eventId)))}`;
}

/** Either stored form. A `pe2:` value is authenticated before it is decompressed, and opens to at most MAX_OPENED_BYTES. */
export async function openField(
  dataKey: DataKey,
  eventId: string,
  field: PayloadField,
  sealed: string,
): Promise<Uint8Array> {
  const prefix = sealedPrefixOf(sealed);
  if (!prefix) throw new PayloadKeyError("malformed");
  const bytes = decodeBase64(sealed.slice(prefix.length));
  if (!bytes) throw new PayloadKeyError("malformed");
  const plain = await decrypt(dataKey.key, bytes, fieldAad(prefix, field, eventId));
  return prefix === COMPRESSED_PREFIX ? decompress(plain) : plain;
}

/** Which ring key ids a ring lacks, of those that still protect stored rows: the ring must not be used then. */
export function missingKeys(ring: KeyRing, protecting: readonly string[]): string[] {
  return protecting.filter((id) => !ring.keys.has(id));
}

/** How payloads are kept: encrypted with a ring (the default), or, where the config says `unsafe-disabled`, as given. */
export type PayloadProtection = { mode: "encrypted"; ring: KeyRing } | { mode: "plaintext" };

export const PLAINTEXT: PayloadProtection = { mode: "plaintext" };
