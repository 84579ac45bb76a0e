import { nestsDeeperThan } from "./fields.ts";

/**
 * A synchronous answer (the Weedmaps Draft: the customer's checkout) is checked before the provider sees it. The
 * generic rules are here; what a valid answer is for one provider is its adapter's `checkAnswer`. Pure.
 */

/** Each rule an answer can break: the wire code names it, the record adds the field path. */
export const ANSWER_RULES = [
  "draft_answer_status",
  "draft_answer_too_large",
  "draft_answer_not_json",
  "draft_answer_invalid_order",
  "draft_answer_order_id",
  "draft_answer_immutable",
  "draft_answer_service_fee",
  "draft_answer_total",
] as const;

export type AnswerRule = (typeof ANSWER_RULES)[number];

/**
 * `strict` (the default) refuses an answer that changes what it may not; `repair` puts the Draft's own values back
 * and records that it did; `unchecked` relays the answer as it came (for measuring the check; never in production).
 */
export type AnswerMode = "strict" | "repair" | "unchecked";

export type AnswerCheck =
  | {
      ok: true;
      /** Set when the answer was mended: the JSON to give the provider instead of the responder's bytes. */
      repairedAnswer?: unknown;
      /** Field paths put back from the request. */
      repaired: string[];
      /** Accepted, but worth a look: a total that disagrees with its parts, say. */
      warnings: string[];
    }
  | { ok: false; rule: AnswerRule; path: string };

export interface AnswerInput {
  status: number;
  contentType: string | null | undefined;
  body: Uint8Array;
  overLimit: boolean;
  /** The parsed request the answer answers. */
  request: unknown;
  mode: AnswerMode;
  /** `limits.maxJsonDepth`: the answer is relayed to the provider and stored, so it is held to the limit bodies are. */
  maxJsonDepth: number;
  checkAnswer?: (request: unknown, answer: unknown, mode: "strict" | "repair") => AnswerCheck;
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

export function checkAnswer(input: AnswerInput): AnswerCheck {
  if (input.mode === "unchecked") return { ok: true, repaired: [], warnings: [] };
  // The provider documents one answer: 200 with the Order object. A 201 or a 204 is not it.
  if (input.status !== 200) return { ok: false, rule: "draft_answer_status", path: "(status)" };
  if (input.overLimit) return { ok: false, rule: "draft_answer_too_large", path: "(body)" };
  if (!JSON_TYPE.test(input.contentType ?? ""))
    return { ok: false, rule: "draft_answer_not_json", path: "(content-type)" };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(input.body);
  } catch {
    return { ok: false, rule: "draft_answer_not_json", path: "(body)" };
  }
  // Scanned before parsing, as a request body is: a 200 KB answer nested 100,000 levels deep is within the size limit
  // but is no order, and comparing or re-serialising it would recurse that deep.
  if (nestsDeeperThan(text, input.maxJsonDepth)) return { ok: false, rule: "draft_answer_not_json", path: "(depth)" };
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    return { ok: false, rule: "draft_answer_not_json", path: "(body)" };
  }
  return input.checkAnswer
    ? input.checkAnswer(input.request, answer, input.mode)
    : { ok: true, repaired: [], warnings: [] };
}

/** Deep equality of parsed JSON values, key order aside. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a))
    return a.length === (b as unknown[]).length && a.every((v, i) => sameJson(v, (b as unknown[])[i]));
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every(
      (k) => Object.hasOwn(b, k) && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  );
}
