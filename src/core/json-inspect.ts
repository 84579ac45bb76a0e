/**
 * Parser differentials in a signed JSON body: places where `JSON.parse` and some other parser downstream can read
 * the same bytes as different values, so that what we verified, keyed and stored is not what the receiver acts on,
 * or two different bodies get one identity.
 */

/** One path step: an object key (decoded) or an array index. */
export type JsonPathSegment = string | number;

/** A number whose text `JSON.parse` cannot carry: non-finite (`1e400`) or an integer beyond 2^53 - 1. */
export type InexactNumber = {
  /**
   * Dotted path as `readField` reads it (`results.0.id`); `""` for a body that is just a number. Ambiguous when a
   * key contains "." (`{"a.b":1}` and `{"a":{"b":1}}` both give `a.b`), so it is for messages and logs only.
   */
  path: string;
  /** The same path unambiguously: keys as strings, array indexes as numbers. `applyRawNumbers` walks this one. */
  segments: readonly JsonPathSegment[];
  /** The number exactly as written in the body. */
  raw: string;
};

/** What `inspectJson` found; each list stops at `maxFindings`. */
export type JsonInspection = {
  /** Dotted path of every key written more than once in one object, each path once, in order of first repeat. */
  duplicateKeys: string[];
  /** Every number `JSON.parse` cannot represent exactly, in body order. */
  inexactNumbers: InexactNumber[];
};

export type InspectJsonOptions = {
  /** Cap on each of the two lists (default 100, also for NaN); past it, that list is no longer collected. */
  maxFindings?: number;
};

const DEFAULT_MAX_FINDINGS = 100;

type Frame = {
  object: boolean;
  /** The key being read (object) or the index of the element being read (array). */
  seg: JsonPathSegment;
  /** Whether the next string in this object is a key rather than a value. */
  expectKey: boolean;
  /**
   * Keys seen so far in this object, dropped with the frame, so memory follows the open objects, not the body. Most
   * objects have a handful of keys, for which a short array is cheaper to build and search than a Set.
   */
  keys: string[] | undefined;
  keySet: Set<string> | undefined;
};

/** Past this many keys an object's keys move from an array to a Set, so a 100,000-key object stays linear. */
const SHORT_OBJECT_KEYS = 16;

/**
 * Finds duplicated keys and numbers that do not survive `JSON.parse`, by one pass over the characters with no value
 * tree built. `text` must be JSON that `JSON.parse` has already accepted and whose depth is already bounded (see
 * `nestsDeeperThan`); on other text the answer is unspecified but the pass still ends.
 *
 * Keys are compared after decoding their escapes, so `"st\u0061tus"` duplicates `"status"`. A number is inexact
 * when, for `n = Number(raw)`, `!Number.isFinite(n)` or `Number.isInteger(n) && !Number.isSafeInteger(n)`:
 * `1e400`, `-1e400`, `12345678901234567890`, `1e20`. Rounded fractions (`0.1`, `1.00000000000000001`) and
 * underflow (`1e-400` reads as 0) are not reported: they are not identities anyone should key on.
 */
export function inspectJson(text: string, options?: InspectJsonOptions): JsonInspection {
  const asked = Math.floor(options?.maxFindings ?? DEFAULT_MAX_FINDINGS);
  // NaN would compare false against every length and lift the bound, so it falls back to the default.
  const max = Number.isNaN(asked) ? DEFAULT_MAX_FINDINGS : Math.max(0, asked);
  const duplicateKeys: string[] = [];
  const inexactNumbers: InexactNumber[] = [];
  const result = { duplicateKeys, inexactNumbers };
  if (max === 0) return result;
  // A key can be repeated in a third place or in two copies of a duplicated parent; one line per path is enough.
  const reported = new Set<string>();
  let wantKeys = true;
  let wantNumbers = true;
  const stack: Frame[] = [];
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22) {
      const end = stringEnd(text, i);
      const top = stack[stack.length - 1];
      if (top?.object && top.expectKey) {
        // Keys are sliced even when duplicates are no longer collected: number paths still need them.
        let key = text.slice(i + 1, end);
        if (key.includes("\\")) key = decodeKey(text.slice(i, end + 1));
        top.seg = key;
        if (wantKeys) {
          if (isRepeat(top, key)) {
            const path = pathOf(stack);
            if (!reported.has(path)) {
              reported.add(path);
              duplicateKeys.push(path);
              if (duplicateKeys.length >= max) {
                wantKeys = false;
                if (!wantNumbers) return result;
              }
            }
          }
        }
      }
      i = end;
    } else if (ch === 0x2c) {
      const top = stack[stack.length - 1];
      if (top !== undefined) {
        if (top.object) top.expectKey = true;
        else (top.seg as number)++;
      }
    } else if (ch === 0x3a) {
      const top = stack[stack.length - 1];
      if (top !== undefined) top.expectKey = false;
    } else if (ch === 0x7b) stack.push({ object: true, seg: "", expectKey: true, keys: undefined, keySet: undefined });
    else if (ch === 0x5b) stack.push({ object: false, seg: 0, expectKey: false, keys: undefined, keySet: undefined });
    else if (ch === 0x7d || ch === 0x5d) stack.pop();
    else if (ch === 0x2d || (ch >= 0x30 && ch <= 0x39)) {
      let end = i + 1;
      let exponent = false;
      for (; end < n; end++) {
        const c = text.charCodeAt(end);
        if (c === 0x65 || c === 0x45) exponent = true;
        else if (!((c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2b || c === 0x2d)) break;
      }
      // Fifteen characters without an exponent stay below 10^15 < 2^53, so most numbers skip Number() entirely.
      if (wantNumbers && (exponent || end - i > 15)) {
        const raw = text.slice(i, end);
        const value = Number(raw);
        if (!Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value))) {
          const segments = stack.map((frame) => frame.seg);
          inexactNumbers.push({ path: segments.join("."), segments, raw });
          if (inexactNumbers.length >= max) {
            wantNumbers = false;
            if (!wantKeys) return result;
          }
        }
      }
      i = end - 1;
    }
    // Whitespace and the letters of true, false and null carry nothing here.
  }
  return result;
}

/**
 * Replaces, in place in `value` (the `JSON.parse` of the same text), each inexact number by its raw text, so an id
 * written `1e400` is keyed as "1e400", never as "Infinity", and `2e400` stays a different id.
 *
 * It walks `segments`, not the dotted `path`, so keys containing "." are safe. A spot is replaced only when it
 * still holds the number `raw` parses to: with a duplicated key, `JSON.parse` kept the last value, and only the
 * last matching finding for a spot is applied, so the result follows the same last-one-wins. A body that is just
 * a number cannot be replaced in place: that finding (path `""`) is skipped and the caller uses its `raw`.
 */
export function applyRawNumbers(value: unknown, inexact: readonly InexactNumber[]): void {
  // Last first: once a spot holds a string, an earlier finding for the same spot no longer matches.
  for (let f = inexact.length - 1; f >= 0; f--) {
    const { segments, raw } = inexact[f]!;
    if (segments.length === 0) continue;
    let parent: unknown = value;
    for (let s = 0; s < segments.length - 1 && parent !== undefined; s++) parent = ownChild(parent, segments[s]!);
    const last = segments[segments.length - 1]!;
    const current = ownChild(parent, last);
    if (typeof current === "number" && Object.is(current, Number(raw))) {
      (parent as Record<string | number, unknown>)[last] = raw;
    }
  }
}

/** Whether `key` was already seen in the object of `frame`, which then remembers it. */
function isRepeat(frame: Frame, key: string): boolean {
  if (frame.keySet !== undefined) {
    if (frame.keySet.has(key)) return true;
    frame.keySet.add(key);
    return false;
  }
  frame.keys ??= [];
  const keys = frame.keys;
  if (keys.includes(key)) return true;
  keys.push(key);
  if (keys.length > SHORT_OBJECT_KEYS) {
    frame.keySet = new Set(keys);
    frame.keys = undefined;
  }
  return false;
}

/** A child by own property only, so a `__proto__` or `constructor` segment never walks into a prototype. */
function ownChild(container: unknown, segment: JsonPathSegment): unknown {
  if (container === null || typeof container !== "object") return undefined;
  if (Array.isArray(container) !== (typeof segment === "number")) return undefined;
  return Object.hasOwn(container, segment) ? (container as Record<string | number, unknown>)[segment] : undefined;
}

/** Index of the quote closing the string opened at `open`; `indexOf` lets the engine skip long strings natively. */
function stringEnd(text: string, open: number): number {
  let quote = open;
  for (;;) {
    quote = text.indexOf('"', quote + 1);
    if (quote === -1) return text.length;
    // A quote is escaped by an odd run of backslashes before it; an even run escapes only backslashes.
    let before = quote - 1;
    while (text.charCodeAt(before) === 0x5c) before--;
    if ((quote - 1 - before) % 2 === 0) return quote;
  }
}

/** A quoted key with escapes, decoded; text that is not valid JSON keeps its raw spelling rather than throwing. */
function decodeKey(quoted: string): string {
  try {
    return JSON.parse(quoted) as string;
  } catch {
    return quoted.slice(1, -1);
  }
}

function pathOf(stack: readonly Frame[]): string {
  return stack.map((frame) => frame.seg).join(".");
}
