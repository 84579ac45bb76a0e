/**
 * Where the members of a JSON object and the elements of an array sit in the signed text. A V4 envelope of several
 * orders is cut into one body per order from these spans, so each order is stored and delivered in the bytes Leaf
 * Trade signed (its number formats, its key order, a duplicated key as sent), never as `JSON.stringify` re-wrote it.
 * Pure; expects text that `JSON.parse` has accepted.
 */

export interface Span {
  start: number;
  /** Exclusive. */
  end: number;
}

export interface MemberSpan {
  /** The key, escapes decoded. */
  key: string;
  /** From the key's opening quote to the end of its value. */
  member: Span;
  value: Span;
}

const isSpace = (ch: number) => ch === 0x20 || ch === 0x0a || ch === 0x0d || ch === 0x09;

function skipSpace(text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** The index just past the string that opens at `i`. */
function endOfString(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const ch = text.charCodeAt(j);
    if (ch === 0x5c) j++;
    else if (ch === 0x22) return j + 1;
  }
  return text.length;
}

/** The index just past the value that starts at `i`. */
function endOfValue(text: string, i: number): number {
  const first = text.charCodeAt(i);
  if (first === 0x22) return endOfString(text, i);
  if (first === 0x7b || first === 0x5b) {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const ch = text.charCodeAt(j);
      if (ch === 0x22) j = endOfString(text, j) - 1;
      else if (ch === 0x7b || ch === 0x5b) depth++;
      else if ((ch === 0x7d || ch === 0x5d) && --depth === 0) return j + 1;
    }
    return text.length;
  }
  let j = i;
  while (j < text.length) {
    const ch = text.charCodeAt(j);
    if (ch === 0x2c || ch === 0x7d || ch === 0x5d || isSpace(ch)) break;
    j++;
  }
  return j;
}

/** The members of the top-level object, in the order sent (a duplicated key appears twice); undefined when the text is not an object. */
export function objectMembers(text: string, at = 0): MemberSpan[] | undefined {
  let i = skipSpace(text, at);
  if (text.charCodeAt(i) !== 0x7b) return undefined;
  const members: MemberSpan[] = [];
  i = skipSpace(text, i + 1);
  while (i < text.length && text.charCodeAt(i) === 0x22) {
    const keyEnd = endOfString(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    const valueStart = skipSpace(text, skipSpace(text, keyEnd) + 1);
    const valueEnd = endOfValue(text, valueStart);
    members.push({ key, member: { start: i, end: valueEnd }, value: { start: valueStart, end: valueEnd } });
    i = skipSpace(text, valueEnd);
    if (text.charCodeAt(i) === 0x2c) i = skipSpace(text, i + 1);
  }
  return members;
}

/** The elements of the array that opens at `span.start`. */
export function arrayElements(text: string, span: Span): Span[] {
  let i = skipSpace(text, span.start);
  if (text.charCodeAt(i) !== 0x5b) return [];
  const elements: Span[] = [];
  i = skipSpace(text, i + 1);
  while (i < span.end && text.charCodeAt(i) !== 0x5d) {
    const end = endOfValue(text, i);
    elements.push({ start: i, end });
    i = skipSpace(text, end);
    if (text.charCodeAt(i) === 0x2c) i = skipSpace(text, i + 1);
  }
  return elements;
}
