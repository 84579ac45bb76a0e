/**
 * Every payload byte that enters or leaves D1 passes through here. Payloads carry customer PII and
 * medical-recommendation data; encryption at rest will be added in this one place.
 *
 * workerd's D1 binding sends a BLOB parameter as a JSON array of numbers, about 3.5 bytes per payload byte, and
 * reads it back the same way (measured in bench/REPORT.md: a 100 KB body cost 4× the CPU of a 1 KB one). So a body
 * that is valid UTF-8 (every JSON webhook) is stored as TEXT, from which the exact bytes come back; anything else,
 * or text with a NUL, which SQLite's text functions would cut short, stays a BLOB. The column has BLOB affinity,
 * so SQLite keeps either as given.
 */
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const ENCODER = new TextEncoder();

export function toStoredPayload(body: ArrayBuffer): string | ArrayBuffer {
  try {
    const text = UTF8.decode(body);
    return text.includes("\u0000") ? body : text;
  } catch {
    return body;
  }
}

/** D1 hands BLOBs back as ArrayBuffer or as an array of byte values depending on the path; accept both. */
export function fromStoredPayload(stored: unknown): Uint8Array {
  if (typeof stored === "string") return ENCODER.encode(stored);
  if (stored instanceof ArrayBuffer) return new Uint8Array(stored);
  if (stored instanceof Uint8Array) return stored;
  if (Array.isArray(stored)) return Uint8Array.from(stored as number[]);
  throw new TypeError("stored payload has an unexpected type");
}
