/**
 * Every payload byte that enters or leaves D1 passes through here. Payloads carry customer PII and
 * medical-recommendation data; encryption at rest will be added in this one place.
 */
export function toStoredPayload(body: ArrayBuffer): ArrayBuffer {
  return body;
}

/** D1 hands BLOBs back as ArrayBuffer or as an array of byte values depending on the path; accept both. */
export function fromStoredPayload(stored: unknown): Uint8Array {
  if (stored instanceof ArrayBuffer) return new Uint8Array(stored);
  if (stored instanceof Uint8Array) return stored;
  if (Array.isArray(stored)) return Uint8Array.from(stored as number[]);
  throw new TypeError("stored payload has an unexpected type");
}
