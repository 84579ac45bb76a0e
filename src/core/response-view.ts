/**
 * What a destination answered an attempt, as the router keeps it and as an operator sees it. Pure.
 *
 * Kept (src/delivery/consumer.ts): the first EXCERPT_CHARS characters of every answer's body and, for a failed
 * attempt only, its response headers, bounded here (`keepHeaders`). Both are sealed with the event's data key, like
 * its body: a destination may echo the customer.
 *
 * Shown without a reveal, by the rules payloads are shown by (src/core/payload-view.ts):
 * - an excerpt that is JSON has the fields at the source's PII paths replaced, at any depth (an ERP that wraps the
 *   order in `{"order": …}` still hides `order.customer`), so its error codes and messages stay readable;
 * - an excerpt that is not JSON (text, or JSON cut at EXCERPT_CHARS) is shown as text, with the value of any PII key
 *   it names cut out;
 * - either way, any value of this event's own customer data that the destination echoed (a name in an error message)
 *   is replaced wherever it appears, whatever the case;
 * - headers show the values of HEADERS_SHOWN (they describe the answer, not the customer) and only the names of the
 *   rest.
 * A reveal (audited, src/operations/events.ts) shows the excerpt and every kept header value as stored.
 */
import { z } from "zod";
import { REDACTED, redactPaths, valuesAt } from "./redact.ts";

/** The characters of a response body an attempt keeps. */
export const EXCERPT_CHARS = 256;

/** Header values shown without a reveal: what an on-call engineer needs to read a refusal, none of it the customer's. */
export const HEADERS_SHOWN: readonly string[] = [
  "content-type",
  "content-length",
  "content-language",
  "content-encoding",
  "cache-control",
  "vary",
  "retry-after",
  "date",
  "server",
  "www-authenticate",
  "x-request-id",
  "request-id",
  "x-correlation-id",
  "x-amzn-requestid",
  "cf-ray",
];

/** Kept by name only, never their values, not even sealed: a destination's cookies and credentials are its own. */
const VALUE_NEVER_KEPT = new Set(["set-cookie", "set-cookie2", "authorization", "proxy-authorization", "cookie"]);

/** Not kept at all: they describe the connection, not the answer. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"]);

/**
 * The bounds of what one failed attempt keeps of its headers. At most 16 headers and 1,024 characters of JSON before
 * sealing: a typical error answer's eight headers take about 300 (docs/performance.md).
 */
export const HEADER_LIMITS = { count: 16, nameChars: 64, valueChars: 200, jsonChars: 1_024 } as const;

const KeptHeadersSchema = z.strictObject({
  headers: z.array(z.tuple([z.string(), z.string().nullable()])),
  /** Headers left out by the bounds. */
  omitted: z.number().int().nonnegative(),
});

type KeptHeaders = z.infer<typeof KeptHeadersSchema>;

const cut = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

/**
 * A failed attempt's response headers as the attempt log keeps them (JSON, to be sealed): the HEADERS_SHOWN first,
 * so the bounds never push them out, each name and value cut to its bound, the rest counted. Null when there are none.
 */
export function keepHeaders(entries: Iterable<readonly [string, string]>): string | null {
  const all = [...entries]
    .map(([name, value]) => [name.toLowerCase(), value] as const)
    .filter(([name]) => !HOP_BY_HOP.has(name));
  if (all.length === 0) return null;
  const shownFirst = [
    ...all.filter(([name]) => HEADERS_SHOWN.includes(name)),
    ...all.filter(([name]) => !HEADERS_SHOWN.includes(name)),
  ];
  const kept: KeptHeaders = { headers: [], omitted: 0 };
  for (const [name, value] of shownFirst) {
    const entry: [string, string | null] = [
      cut(name, HEADER_LIMITS.nameChars),
      VALUE_NEVER_KEPT.has(name) ? null : cut(value, HEADER_LIMITS.valueChars),
    ];
    const headers = [...kept.headers, entry];
    // Measured with the largest count `omitted` could come to, so the JSON stays within its bound whatever follows.
    const size = JSON.stringify({ headers, omitted: Number.MAX_SAFE_INTEGER }).length;
    if (kept.headers.length >= HEADER_LIMITS.count || size > HEADER_LIMITS.jsonChars) {
      kept.omitted++;
      continue;
    }
    kept.headers = headers;
  }
  return JSON.stringify(kept);
}

export interface HeaderView {
  name: string;
  /** `[redacted]` when hidden without a reveal; null when the router never keeps its value (a cookie). */
  value: string | null;
}

export interface HeadersView {
  headers: HeaderView[];
  /** Headers the bounds left out. */
  omitted: number;
  /** Whether a value is hidden: a reveal shows it. */
  redacted: boolean;
}

/** Kept headers as shown: every value on a reveal, else only those of HEADERS_SHOWN. Null if they cannot be read. */
export function headersView(kept: string, reveal: boolean): HeadersView | null {
  let parsed: KeptHeaders;
  try {
    parsed = KeptHeadersSchema.parse(JSON.parse(kept));
  } catch {
    return null;
  }
  let redacted = false;
  const headers = parsed.headers.map(([name, value]) => {
    if (reveal || value === null || HEADERS_SHOWN.includes(name)) return { name, value };
    redacted = true;
    return { name, value: REDACTED };
  });
  return { headers, omitted: parsed.omitted, redacted };
}

export interface ExcerptView {
  text: string;
  /** The excerpt parsed as JSON (shown indented); otherwise it is text, perhaps cut short. */
  json: boolean;
  /** Where customer data was hidden: field paths, key names, or "values of this event's customer data". Never values. */
  redacted: string[];
}

/** A value of the event's customer data found in an excerpt is named by this, never by itself. */
export const ECHOED_VALUES = "values of this event's customer data";

/** The shortest customer value searched for in an excerpt: shorter ones ("CA") would cut out ordinary words. */
const MIN_ECHO_CHARS = 3;

/**
 * The strings at an event's PII paths, longest first: what an excerpt must not echo unrevealed. `body` is the
 * event's payload, parsed; anything else gives none. A value that also appears outside them (a city the store shares
 * with the customer's address, an amount equal to the total) says nothing of the customer and is left alone.
 */
export function customerValuesOf(body: unknown, paths: readonly string[]): string[] {
  if (body === null || typeof body !== "object") return [];
  const rest = JSON.stringify(redactPaths(body, paths).value);
  const found = new Set<string>();
  for (const value of valuesAt(body, paths)) {
    const text = typeof value === "number" ? String(value) : typeof value === "string" ? value.trim() : null;
    if (text !== null && text.length >= MIN_ECHO_CHARS && !rest.includes(text)) found.add(text);
  }
  return [...found].sort((a, b) => b.length - a.length);
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Each of `values` cut out of `text`, whatever its case; a marker already put in is not searched again. */
function withoutValues(text: string, values: readonly string[]): { text: string; changed: boolean } {
  // The text still searched, with null where a value was (or a marker already is) cut out.
  const marked = (part: string, i: number) => (i === 0 ? [part] : [null, part]);
  let pieces: (string | null)[] = text.split(REDACTED).flatMap(marked);
  for (const value of values) {
    const pattern = new RegExp(escapeRegExp(value), "gi");
    pieces = pieces.flatMap((piece) => (piece === null ? [null] : piece.split(pattern).flatMap(marked)));
  }
  const out = pieces.map((p) => p ?? REDACTED).join("");
  return { text: out, changed: out !== text };
}

/** The index just past the JSON value that starts at `i`, tolerating text that ends inside it. */
function endOfValue(text: string, i: number): number {
  const first = text[i];
  if (first === '"') {
    for (let j = i + 1; j < text.length; j++) {
      if (text[j] === "\\") j++;
      else if (text[j] === '"') return j + 1;
    }
    return text.length;
  }
  if (first === "{" || first === "[") {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const ch = text[j];
      if (ch === '"') j = endOfValue(text, j) - 1;
      else if (ch === "{" || ch === "[") depth++;
      else if (ch === "}" || ch === "]") {
        depth--;
        if (depth === 0) return j + 1;
      }
    }
    return text.length;
  }
  const stop = text.slice(i).search(/[,}\]\s]/);
  return stop === -1 ? text.length : i + stop;
}

/** In text that is not JSON (or JSON cut short): the value after each `"<key>":` of a PII key, replaced. */
function withoutKeyedValues(text: string, keys: readonly string[]): { text: string; found: string[] } {
  const found = new Set<string>();
  let out = text;
  for (const key of keys) {
    const pattern = new RegExp(`"${escapeRegExp(key)}"\\s*:\\s*`, "g");
    let result = "";
    let from = 0;
    for (let match = pattern.exec(out); match !== null; match = pattern.exec(out)) {
      const start = match.index + match[0].length;
      if (start >= out.length) break;
      const end = endOfValue(out, start);
      result += `${out.slice(from, start)}"${REDACTED}"`;
      from = end;
      pattern.lastIndex = end;
      found.add(key);
    }
    out = result + out.slice(from);
  }
  return { text: out, found: [...found] };
}

/** Every string in a parsed JSON value, with the customer's values cut out. */
function mapStrings(node: unknown, map: (text: string) => string): unknown {
  if (typeof node === "string") return map(node);
  if (Array.isArray(node)) return node.map((item) => mapStrings(item, map));
  if (node !== null && typeof node === "object")
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, mapStrings(v, map)]));
  return node;
}

const isWildcard = (segment: string) => segment === "*" || segment === "**";

function parsedObject(text: string): object | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed !== null && typeof parsed === "object" ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** An excerpt as a reveal shows it: as stored. */
export function revealedExcerpt(text: string): ExcerptView {
  return { text, json: parsedObject(text) !== undefined, redacted: [] };
}

/**
 * A destination's excerpt as shown without a reveal (the module comment says how). `paths` are the source's PII
 * paths; `values` what `customerValuesOf` found in the event's body. A path that is all of the payload (`*`, a source
 * no longer configured) hides the whole excerpt.
 */
export function redactedExcerpt(text: string, paths: readonly string[], values: readonly string[]): ExcerptView {
  if (paths.some((p) => p.split(".").every(isWildcard)))
    return { text: REDACTED, json: false, redacted: ["(excerpt)"] };
  const parsed = parsedObject(text);
  if (parsed !== undefined) {
    const { value, redacted } = redactPaths(
      parsed,
      paths.map((p) => (p.startsWith("**.") ? p : `**.${p}`)),
    );
    let echoed = false;
    const scrubbed = mapStrings(value, (s) => {
      const cleaned = withoutValues(s, values);
      echoed ||= cleaned.changed;
      return cleaned.text;
    });
    const hidden = echoed ? [...redacted, ECHOED_VALUES] : redacted;
    return { text: hidden.length === 0 ? text : JSON.stringify(scrubbed), json: true, redacted: hidden };
  }
  const keys = [
    ...new Set(
      paths.map((p) =>
        p
          .split(".")
          .filter((s) => !isWildcard(s) && !/^\d+$/.test(s))
          .at(-1),
      ),
    ),
  ];
  const keyed = withoutKeyedValues(
    text,
    keys.filter((k): k is string => k !== undefined),
  );
  const cleaned = withoutValues(keyed.text, values);
  return {
    text: cleaned.text,
    json: false,
    redacted: cleaned.changed ? [...keyed.found, ECHOED_VALUES] : keyed.found,
  };
}
