import { describe, expect, it } from "vitest";
import { applyRawNumbers, inspectJson } from "../src/core/json-inspect.ts";

/** The inspection of text that JSON.parse must accept first, as the intake path guarantees. */
function inspect(text: string, options?: { maxFindings?: number }) {
  JSON.parse(text);
  return inspectJson(text, options);
}

const rawOf = (text: string) => inspect(text).inexactNumbers.map(({ path, raw }) => ({ path, raw }));

describe("inspectJson: duplicate keys", () => {
  it("reports a key repeated at the top level", () => {
    expect(inspect('{"status":"paid","total":5,"status":"void"}').duplicateKeys).toEqual(["status"]);
  });

  it("reports duplicates nested in objects and inside array elements, with dotted paths", () => {
    const text = JSON.stringify({ dispensary_location: { license_number: "A" }, results: [{ id: 1 }, { id: 2 }] })
      .replace('"license_number":"A"', '"license_number":"A","license_number":"B"')
      .replace('{"id":2}', '{"id":2,"x":[],"id":3}');
    expect(inspect(text).duplicateKeys).toEqual(["dispensary_location.license_number", "results.1.id"]);
    expect(inspect('[[0,{"a":1,"a":2}]]').duplicateKeys).toEqual(["0.1.a"]);
  });

  it("compares keys after decoding their escapes", () => {
    expect(inspect('{"status":1,"st\\u0061tus":2}').duplicateKeys).toEqual(["status"]);
    expect(inspect('{"a\\"b":1,"a\\u0022b":2}').duplicateKeys).toEqual(['a"b']);
    expect(inspect('{"\\\\":1,"\\u005c":2,"\\/":3,"/":4}').duplicateKeys).toEqual(["\\", "/"]);
    // Different after decoding: not duplicates, even though their raw spellings share a prefix.
    expect(inspect('{"a\\n":1,"a\\\\n":2,"a":3}').duplicateKeys).toEqual([]);
  });

  it("does not report the same key in two sibling objects, nor a key equal to a value", () => {
    expect(inspect('{"a":{"id":1},"b":{"id":1},"c":[{"id":1},{"id":2}],"d":"id","id":"id"}').duplicateKeys).toEqual([]);
    expect(inspect('[{"id":1},{"id":1}]').duplicateKeys).toEqual([]);
  });

  it("reports a key repeated after a nested object closes, against the keys of its own object only", () => {
    expect(inspect('{"a":{"b":{"c":1},"c":2},"b":3,"a":4}').duplicateKeys).toEqual(["a"]);
  });

  it("is not confused by braces, brackets, colons, commas and escaped quotes inside strings", () => {
    const text = String.raw`{"note":"}{\"status\":1,[","status":"ok","x\"}":"{\"status\":2}","tail":"\\","status":"again"}`;
    expect(inspect(text).duplicateKeys).toEqual(["status"]);
    expect(inspect(String.raw`{"k":"\\\"","j":"a\\","k2":"\\\\"}`).duplicateKeys).toEqual([]);
  });

  it("reports each duplicated path once", () => {
    expect(inspect('{"a":1,"a":2,"a":3}').duplicateKeys).toEqual(["a"]);
    expect(inspect('{"a":{"b":1,"b":2},"a":{"b":3,"b":4}}').duplicateKeys).toEqual(["a.b", "a"]);
  });

  it("finds nothing in a body without repeats, whitespace and all", () => {
    expect(inspect(' {\n "a" : [ 1 , true , null , { "b" : false } ] ,\t"c" : "d" } ')).toEqual({
      duplicateKeys: [],
      inexactNumbers: [],
    });
    expect(inspect('"just a string"')).toEqual({ duplicateKeys: [], inexactNumbers: [] });
  });
});

describe("inspectJson: inexact numbers", () => {
  it("reports 1e400, 2e400, -1e400 and 12345678901234567890 with their raw text and paths", () => {
    expect(rawOf('{"id":1e400,"other":{"id":2e400},"list":[-1e400,12345678901234567890]}')).toEqual([
      { path: "id", raw: "1e400" },
      { path: "other.id", raw: "2e400" },
      { path: "list.0", raw: "-1e400" },
      { path: "list.1", raw: "12345678901234567890" },
    ]);
  });

  it("reports integers beyond 2^53 however they are written", () => {
    expect(
      rawOf("[9007199254740993,-9007199254740993,1e20,9007199254740993.0,1E+16,123456789012345678e-1]").map(
        (f) => f.raw,
      ),
    ).toEqual([
      "9007199254740993",
      "-9007199254740993",
      "1e20",
      "9007199254740993.0",
      "1E+16",
      "123456789012345678e-1",
    ]);
  });

  it("does not report 1.5, 42, fractions, safe integers or underflow", () => {
    expect(
      rawOf(
        '{"a":1.5,"b":42,"c":0.1,"d":-0,"e":9007199254740991,"f":-9007199254740991,"g":1e-400,"h":1.5e3,"i":0.12345678901234567890}',
      ),
    ).toEqual([]);
  });

  it('reports a body that is only a number at path ""', () => {
    expect(inspect("1e400").inexactNumbers).toEqual([{ path: "", segments: [], raw: "1e400" }]);
  });

  it("keeps keys with dots apart in segments", () => {
    const [finding] = inspect('{"a.b":{"c":1e400}}').inexactNumbers;
    expect(finding).toEqual({ path: "a.b.c", segments: ["a.b", "c"], raw: "1e400" });
  });
});

describe("inspectJson: bounds", () => {
  it("stops each list at maxFindings", () => {
    const keys = Array.from({ length: 10 }, (_, k) => `"k${k}":1,"k${k}":2`).join(",");
    const numbers = Array.from({ length: 10 }, () => "1e400").join(",");
    const text = `{${keys},"n":[${numbers}]}`;
    const capped = inspect(text, { maxFindings: 3 });
    expect(capped.duplicateKeys).toEqual(["k0", "k1", "k2"]);
    expect(capped.inexactNumbers.map((f) => f.path)).toEqual(["n.0", "n.1", "n.2"]);
    expect(inspect(text).duplicateKeys).toHaveLength(10);
    expect(inspect(text, { maxFindings: 0 })).toEqual({ duplicateKeys: [], inexactNumbers: [] });
    expect(inspect(text, { maxFindings: Number.NaN }).duplicateKeys).toHaveLength(10);
    expect(inspect(text, { maxFindings: 2.9 }).duplicateKeys).toEqual(["k0", "k1"]);
    // A full list of duplicates does not stop the numbers from being collected, nor the reverse.
    expect(inspect(text, { maxFindings: 1 }).inexactNumbers).toHaveLength(1);
    expect(inspect(`{"n":[${numbers}],${keys}}`, { maxFindings: 2 }).duplicateKeys).toEqual(["k0", "k1"]);
  });

  it("reads a 1 MB body with 100,000 keys, reporting the repeat at its end", () => {
    const entries = Array.from({ length: 100_000 }, (_, k) => `"key_${k.toString(36)}":${k}`);
    const text = `{"items":[{${entries.join(",")},"key_0":1e400}],"id":12345678901234567890}`;
    expect(text.length).toBeGreaterThan(1_000_000);
    expect(inspect(text)).toEqual({
      duplicateKeys: ["items.0.key_0"],
      inexactNumbers: [
        { path: "items.0.key_0", segments: ["items", 0, "key_0"], raw: "1e400" },
        { path: "id", segments: ["id"], raw: "12345678901234567890" },
      ],
    });
  });

  it("stops at the default 100 findings on a 1 MB body where every key repeats", () => {
    const entries = Array.from({ length: 50_000 }, (_, k) => `"k${k}":0,"k${k}":1e400`);
    const found = inspect(`{${entries.join(",")}}`);
    expect(found.duplicateKeys).toHaveLength(100);
    expect(found.inexactNumbers).toHaveLength(100);
    expect(found.duplicateKeys[99]).toBe("k99");
  });
});

describe("inspectJson: against bodies whose repeats are known", () => {
  // A seeded generator: objects built from entry lists that may repeat a key, serialized with random whitespace
  // and escaped key spellings, so the expected findings come from the structure and not from another scanner.
  function generator(seed: number) {
    let state = seed;
    const rand = (n: number) => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return state % n;
    };
    const ws = () => [" ", "", "\n", "\t", ""][rand(5)]!;
    const spell = (key: string) =>
      `"${[...key].map((c) => (rand(3) === 0 ? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}` : c === '"' || c === "\\" ? `\\${c}` : c)).join("")}"`;
    const NUMBERS: [string, boolean][] = [
      ["1", false],
      ["-2.5", false],
      ["1e400", true],
      ["99999999999999999", true],
      ["0.1", false],
      ["7e15", false],
    ];
    const STRINGS = ['"{"', '"}\\""', '"a\\\\"', '"[:,]"', '""'];
    const KEYS = ["a", "b", "{", '"', "\\", "a.b"];
    function value(depth: number, path: string, dups: string[], inexact: { path: string; raw: string }[]): string {
      const kind = depth > 3 ? rand(3) : rand(5);
      if (kind === 0) {
        const [raw, bad] = NUMBERS[rand(NUMBERS.length)]!;
        if (bad) inexact.push({ path, raw });
        return raw;
      }
      if (kind === 1) return STRINGS[rand(STRINGS.length)]!;
      if (kind === 2) return ["true", "false", "null"][rand(3)]!;
      const at = (seg: string) => (path === "" ? seg : `${path}.${seg}`);
      if (kind === 3) {
        const items = Array.from(
          { length: rand(4) },
          (_, k) => ws() + value(depth + 1, at(String(k)), dups, inexact) + ws(),
        );
        return `[${items.join(",")}]`;
      }
      const seen = new Set<string>();
      const parts: string[] = [];
      for (let k = rand(5); k > 0; k--) {
        const key = KEYS[rand(KEYS.length)]!;
        if (seen.has(key) && !dups.includes(at(key))) dups.push(at(key));
        seen.add(key);
        parts.push(`${ws()}${spell(key)}${ws()}:${ws()}${value(depth + 1, at(key), dups, inexact)}${ws()}`);
      }
      return `{${parts.join(",")}}`;
    }
    return () => {
      const dups: string[] = [];
      const inexact: { path: string; raw: string }[] = [];
      const text = value(0, "", dups, inexact);
      return { text, dups, inexact };
    };
  }

  it("matches the known findings on 2,000 generated bodies", () => {
    const next = generator(20_260_611);
    let withFindings = 0;
    for (let run = 0; run < 2_000; run++) {
      const { text, dups, inexact } = next();
      const found = inspect(text);
      // Paths may repeat across generated entries, so the expected list is compared as a set.
      expect(new Set(found.duplicateKeys), text).toEqual(new Set(dups));
      expect(found.duplicateKeys.length, text).toBe(new Set(found.duplicateKeys).size);
      expect(
        found.inexactNumbers.map(({ path, raw }) => ({ path, raw })),
        text,
      ).toEqual(inexact);
      if (dups.length > 0 && inexact.length > 0) withFindings++;
    }
    expect(withFindings).toBeGreaterThan(50);
  });
});

describe("applyRawNumbers", () => {
  it("makes two ids that both parse to Infinity distinct, and keeps big integers' digits", () => {
    const bodies = ['{"order":{"id":1e400}}', '{"order":{"id":2e400}}'];
    const ids = bodies.map((text) => {
      const value = JSON.parse(text) as { order: { id: unknown } };
      expect(value.order.id).toBe(Infinity);
      applyRawNumbers(value, inspectJson(text).inexactNumbers);
      return value.order.id;
    });
    expect(ids).toEqual(["1e400", "2e400"]);

    const text = '{"ids":[12345678901234567890,12345678901234567891],"n":1.5}';
    const value = JSON.parse(text) as unknown;
    applyRawNumbers(value, inspectJson(text).inexactNumbers);
    expect(value).toEqual({ ids: ["12345678901234567890", "12345678901234567891"], n: 1.5 });
  });

  it("follows JSON.parse's last-one-wins when the key holding the number is repeated", () => {
    const apply = (text: string) => {
      const value = JSON.parse(text) as unknown;
      applyRawNumbers(value, inspectJson(text).inexactNumbers);
      return value;
    };
    expect(apply('{"id":1e400,"id":2e400}')).toEqual({ id: "2e400" });
    expect(apply('{"id":1e400,"id":5}')).toEqual({ id: 5 });
    expect(apply('{"id":5,"id":-1e400}')).toEqual({ id: "-1e400" });
    expect(apply('{"a":{"id":1e400},"a":{"other":1}}')).toEqual({ a: { other: 1 } });
    expect(apply('{"a":[1e400],"a":{"0":1e400}}')).toEqual({ a: { "0": "1e400" } });
  });

  it("walks segments, so dotted keys are replaced where they are and never through a prototype", () => {
    const text = '{"a.b":1e400,"a":{"b":2},"__proto__":{"x":1e400}}';
    const value = JSON.parse(text) as Record<string, unknown>;
    applyRawNumbers(value, inspectJson(text).inexactNumbers);
    expect(value["a.b"]).toBe("1e400");
    expect(value.a).toEqual({ b: 2 });
    expect(Object.getOwnPropertyDescriptor(value, "__proto__")?.value).toEqual({ x: "1e400" });
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it("leaves a body that is only a number to the caller", () => {
    const value = JSON.parse("1e400") as unknown;
    applyRawNumbers(value, inspectJson("1e400").inexactNumbers);
    expect(value).toBe(Infinity);
  });
});
