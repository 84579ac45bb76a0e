#!/usr/bin/env node
// One-off micro-benchmark: `npx node bench/json-inspect.mjs` (Node 24 strips the types of the imported .ts).
// Times inspectJson against JSON.parse of the same text on a ~5 KB and a ~1 MB body built from the Leaf Trade
// fixture (a results list of orders), and on one object of 100,000 keys, so the cost of the check can be read as a
// fraction of the parse we already pay.
// Prints numbers only; it asserts nothing about speed.
import { readFileSync } from "node:fs";
import { inspectJson } from "../src/core/json-inspect.ts";

const order = JSON.parse(
  readFileSync(new URL("../test/fixtures/providers/leaftrade/order-v4.json", import.meta.url), "utf8"),
).results[0];

function body(targetBytes) {
  const perOrder = JSON.stringify(order).length + 1;
  const results = Array.from({ length: Math.max(1, Math.ceil(targetBytes / perOrder)) }, (_, k) => ({
    ...order,
    id: `ord_${k}`,
    order_number: `LT-${100000 + k}`,
  }));
  return JSON.stringify({ count: results.length, next: null, previous: null, results });
}

function time(fn, text, minMs) {
  let runs = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < minMs) {
    fn(text);
    runs++;
    elapsed = performance.now() - start;
  }
  return (elapsed / runs) * 1000; // µs per call
}

const median = (xs) => xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Alternating rounds with a median each, because the cores are shared and a single long loop catches a neighbour's burst. */
function compare(text, roundMs) {
  // Warm up the JIT.
  for (let k = 0; k < 20; k++) {
    JSON.parse(text);
    inspectJson(text);
  }
  const parse = [];
  const inspect = [];
  for (let round = 0; round < 7; round++) {
    parse.push(time(JSON.parse, text, roundMs));
    inspect.push(time(inspectJson, text, roundMs));
  }
  return { parse: median(parse), inspect: median(inspect) };
}

// The adversarial shape of the brief: one object of 100,000 keys, where the keys live in a Set until it closes.
const wide = `{${Array.from({ length: 100_000 }, (_, k) => `"k${k.toString(36)}":${k % 10}`).join(",")}}`;

for (const [label, text, roundMs] of [
  ["5 KB", body(5_000), 300],
  ["1 MB", body(1_000_000), 800],
  ["1 MB one object", wide, 800],
]) {
  const keys = (text.match(/":/g) ?? []).length;
  const { parse, inspect } = compare(text, roundMs);
  console.log(
    `${label} (${text.length} chars, ~${keys} keys): JSON.parse ${parse.toFixed(1)} µs, inspectJson ${inspect.toFixed(1)} µs, ratio ${(inspect / parse).toFixed(2)}x`,
  );
}
