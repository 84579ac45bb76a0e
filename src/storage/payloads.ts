/**
 * Every payload byte that enters or leaves D1 passes through here: event bodies, Draft answers and destination
 * response excerpts. They carry customer PII and medical-recommendation data, so they are stored encrypted
 * (src/core/envelope.ts): each event's data key, wrapped by the ring, in `payload_dek` (its ring key id in
 * `payload_key`), and each field sealed with it. Only a config that says `"payloadEncryption": "unsafe-disabled"`
 * stores them as given.
 *
 * Each field is compressed (raw DEFLATE, CompressionStream) before it is encrypted, and stored as `pe2:`; one that
 * compression would not shrink (a short excerpt such as "ok", random bytes) is encrypted as given, as `pe1:`, the form
 * every row stored before compression holds. Both open here, whichever the row has. A 4.3 KB Weedmaps Create takes
 * about 1.9 KB sealed instead of 5.8 KB (issue #24). Opening a `pe2:` value refuses one that would inflate past the
 * largest body the config allows (src/core/envelope.ts, `MAX_OPENED_BYTES`), so a crafted value cannot fill memory.
 *
 * Sealed values are base64 TEXT. workerd's D1 binding sends a BLOB parameter as a JSON array of numbers, about 3.5
 * bytes per payload byte, and reads it back the same way (bench/REPORT.md: a 100 KB body cost 4× the CPU of a 1 KB
 * one), so base64's 4/3 is the cheaper form. Unencrypted, a body that is valid UTF-8 (every JSON webhook) is stored
 * as TEXT, from which the exact bytes come back; anything else, or text with a NUL, which SQLite's text functions
 * would cut short, stays a BLOB. The column has BLOB affinity, so SQLite keeps either as given. Unencrypted payloads
 * are not compressed: that mode exists to read them as they came.
 */
import { RouterError } from "../core/errors.ts";
import {
  isSealed,
  newDataKey,
  openDataKey,
  openField,
  sealField,
  type DataKey,
  type PayloadField,
  type PayloadProtection,
} from "../core/envelope.ts";

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const ENCODER = new TextEncoder();

function toPlainStored(body: ArrayBuffer | Uint8Array): string | ArrayBuffer {
  const bytes = body instanceof Uint8Array ? body : new Uint8Array(body);
  try {
    const text = UTF8.decode(bytes);
    return text.includes("\u0000") ? (bytes.slice().buffer as ArrayBuffer) : text;
  } catch {
    return bytes.slice().buffer as ArrayBuffer;
  }
}

/** D1 hands BLOBs back as ArrayBuffer or as an array of byte values depending on the path; accept both. */
function fromPlainStored(stored: unknown): Uint8Array {
  if (typeof stored === "string") return ENCODER.encode(stored);
  if (stored instanceof ArrayBuffer) return new Uint8Array(stored);
  if (stored instanceof Uint8Array) return stored;
  if (Array.isArray(stored)) return Uint8Array.from(stored as number[]);
  throw new RouterError("payload_unreadable", { detail: `stored payload is a ${typeof stored}, not text or bytes` });
}

/**
 * One event's payloads as storage reads and writes them: its data key (none when stored unencrypted) opens and
 * seals each field, bound to the event.
 */
export class EventPayloads {
  readonly eventId: string;
  private readonly dataKey: DataKey | null;

  private constructor(eventId: string, dataKey: DataKey | null) {
    this.eventId = eventId;
    this.dataKey = dataKey;
  }

  /** For a new event: a fresh data key under the ring's primary key, unless payloads are kept unencrypted. */
  static async create(protection: PayloadProtection, eventId: string): Promise<EventPayloads> {
    return new EventPayloads(
      eventId,
      protection.mode === "encrypted" ? await newDataKey(protection.ring, eventId) : null,
    );
  }

  /** For a stored event, from its `payload_dek`; a row without one was stored unencrypted (or has been purged). */
  static async open(protection: PayloadProtection, eventId: string, wrapped: string | null): Promise<EventPayloads> {
    if (wrapped === null) return new EventPayloads(eventId, null);
    if (protection.mode !== "encrypted") {
      throw new RouterError("payload_key_missing", {
        detail: `${eventId}: an encrypted event cannot be read without PAYLOAD_KEYS`,
      });
    }
    return new EventPayloads(eventId, await openDataKey(protection.ring, eventId, wrapped));
  }

  /** The columns that name the key: `payload_key` and `payload_dek`. */
  get keyColumns(): { keyId: string | null; wrapped: string | null } {
    return { keyId: this.dataKey?.keyId ?? null, wrapped: this.dataKey?.wrapped ?? null };
  }

  async seal(field: PayloadField, bytes: ArrayBuffer | Uint8Array): Promise<string | ArrayBuffer> {
    if (!this.dataKey) return toPlainStored(bytes);
    return sealField(this.dataKey, this.eventId, field, bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  }

  /** A row with a data key holds only sealed bodies and answers; one without holds them as given. */
  async open(field: PayloadField, stored: unknown): Promise<Uint8Array> {
    if (!this.dataKey) return fromPlainStored(stored);
    if (typeof stored !== "string") {
      throw new RouterError("payload_unreadable", {
        detail: `${this.eventId}: an encrypted row holds a ${field} that is not sealed`,
      });
    }
    return openField(this.dataKey, this.eventId, field, stored);
  }

  /** A response excerpt as kept in the delivery JSON: text either way. */
  async sealText(field: PayloadField, text: string): Promise<string> {
    if (!this.dataKey) return text;
    return sealField(this.dataKey, this.eventId, field, ENCODER.encode(text));
  }

  /** Excerpts that are the router's own notes (a header it could not build) are kept as text in any row. */
  async openText(field: PayloadField, stored: string): Promise<string> {
    if (!this.dataKey || !isSealed(stored)) return stored;
    return new TextDecoder().decode(await openField(this.dataKey, this.eventId, field, stored));
  }
}

/** Whether a stored excerpt is sealed customer data (a destination's words) rather than the router's own note. */
export function isSealedText(stored: string): boolean {
  return isSealed(stored);
}
