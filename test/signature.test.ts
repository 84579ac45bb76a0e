import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { verifyHeaderToken, verifyHmacSignature } from "../src/core/signatures/inbound.ts";
import { BUILTIN_PROVIDERS } from "../src/core/providers/registry.ts";
import { fixture, fixturesOf, hexSignature, weedmapsSignature } from "./helpers.ts";
import { fixtureSecret } from "./secrets.ts";
import { decodeBase64, encodeBase64 } from "../src/core/signatures/encoding.ts";

const encode = (text: string) => new TextEncoder().encode(text).buffer as ArrayBuffer;
const WEEDMAPS = { encoding: "base64", prefix: "" } as const;
const LEAFTRADE = { encoding: "hex", prefix: "" } as const;

describe("HMAC verification against signatures made by Node's crypto.createHmac", () => {
  for (const [name, adapter] of Object.entries(BUILTIN_PROVIDERS).filter(([, a]) => a.signature)) {
    it(`accepts the ${name} signature of each of its fixtures, in the adapter's own scheme`, async () => {
      const { encoding, prefix = "" } = adapter.signature!;
      const fixtures = fixturesOf(name);
      expect(fixtures.length).toBeGreaterThan(0);
      for (const [, { body, signature }] of fixtures) {
        expect(await verifyHmacSignature(encode(body), signature, [fixtureSecret(name)], { encoding, prefix })).toEqual(
          { ok: true, secretIndex: 0 },
        );
      }
    });
  }

  it("agrees with the test helpers that sign run-time bodies", async () => {
    const { body, signature } = fixture("weedmaps/create");
    expect(await weedmapsSignature(body)).toBe(signature);
    expect(await hexSignature(fixture("leaftrade/order-v3").body, env.LEAFTRADE_WEBHOOK_SECRET as string)).toBe(
      fixture("leaftrade/order-v3").signature,
    );
  });

  it("rejects a body changed by one byte, or re-serialised", async () => {
    const { body, signature: base64 } = fixture("weedmaps/create");
    const secrets = [env.WEEDMAPS_CLIENT_SECRET as string];
    expect(await verifyHmacSignature(encode(body.replace("67.50", "67.51")), base64, secrets, WEEDMAPS)).toEqual({
      ok: false,
      reason: "signature_mismatch",
    });
    expect(
      await verifyHmacSignature(encode(JSON.stringify(JSON.parse(body), null, 1)), base64, secrets, WEEDMAPS),
    ).toEqual({
      ok: false,
      reason: "signature_mismatch",
    });
  });

  it("rejects the wrong secret, a missing header and malformed values", async () => {
    const { body, signature: base64 } = fixture("weedmaps/create");
    const hex = await hexSignature(body, env.WEEDMAPS_CLIENT_SECRET as string);
    const bytes = encode(body);
    expect(await verifyHmacSignature(bytes, base64, ["some-other-secret"], WEEDMAPS)).toEqual({
      ok: false,
      reason: "signature_mismatch",
    });
    expect(await verifyHmacSignature(bytes, undefined, ["x"], WEEDMAPS)).toEqual({
      ok: false,
      reason: "missing_header",
    });
    expect(await verifyHmacSignature(bytes, "", ["x"], WEEDMAPS)).toEqual({ ok: false, reason: "missing_header" });
    expect(await verifyHmacSignature(bytes, "not base64 !!", ["x"], WEEDMAPS)).toEqual({
      ok: false,
      reason: "malformed_signature",
    });
    expect(await verifyHmacSignature(bytes, base64.slice(0, 20), ["x"], WEEDMAPS)).toEqual({
      ok: false,
      reason: "malformed_signature",
    });
    // A hex digest where base64 is configured decodes to the wrong length.
    expect(await verifyHmacSignature(bytes, hex, ["x"], WEEDMAPS)).toEqual({
      ok: false,
      reason: "malformed_signature",
    });
    expect(await verifyHmacSignature(bytes, "zz".repeat(32), ["x"], LEAFTRADE)).toEqual({
      ok: false,
      reason: "malformed_signature",
    });
  });

  it("accepts any configured secret, so a secret rotates with no downtime", async () => {
    const { body, signature: base64 } = fixture("weedmaps/create");
    const result = await verifyHmacSignature(
      encode(body),
      base64,
      ["the-new-secret", env.WEEDMAPS_CLIENT_SECRET as string],
      WEEDMAPS,
    );
    expect(result).toEqual({ ok: true, secretIndex: 1 });
  });

  it("strips a configured prefix such as sha256=, and requires it", async () => {
    const body = '{"id":"a1","type":"order.created"}';
    const hex = await hexSignature(body, "k");
    const scheme = { encoding: "hex", prefix: "sha256=" } as const;
    expect(await verifyHmacSignature(encode(body), `sha256=${hex}`, ["k"], scheme)).toMatchObject({ ok: true });
    expect(await verifyHmacSignature(encode(body), hex, ["k"], scheme)).toEqual({
      ok: false,
      reason: "malformed_signature",
    });
  });

  it("accepts the URL-safe base64 alphabet", async () => {
    const { body, signature: base64 } = fixture("weedmaps/draft");
    const urlSafe = base64.replace(/\+/g, "-").replace(/\//g, "_");
    expect(
      await verifyHmacSignature(encode(body), urlSafe, [env.WEEDMAPS_CLIENT_SECRET as string], WEEDMAPS),
    ).toMatchObject({ ok: true });
  });
});

describe("custom header tokens", () => {
  it("compares prefix + secret exactly, whatever the length of the candidate", () => {
    expect(verifyHeaderToken("Bearer tok-1", ["tok-0", "tok-1"], "Bearer ")).toEqual({ ok: true, secretIndex: 1 });
    expect(verifyHeaderToken("Bearer tok-2", ["tok-1"], "Bearer ")).toEqual({ ok: false, reason: "token_mismatch" });
    expect(verifyHeaderToken("Bearer tok-1-and-more", ["tok-1"], "Bearer ")).toEqual({
      ok: false,
      reason: "token_mismatch",
    });
    expect(verifyHeaderToken("tok-1", ["tok-1"], "Bearer ")).toEqual({ ok: false, reason: "token_mismatch" });
    expect(verifyHeaderToken(undefined, ["tok-1"], "Bearer ")).toEqual({ ok: false, reason: "missing_header" });
  });
});

describe("base64", () => {
  it("encodes every length and a 100 KB body as the standard alphabet does, and decodes it back", () => {
    const bytes = Uint8Array.from({ length: 102_400 + 2 }, (_, i) => (i * 31 + (i >> 8)) & 255);
    for (const length of [0, 1, 2, 3, 4, 5, 4095, 4096, 4097, 102_400, 102_402]) {
      const slice = bytes.subarray(0, length);
      let binary = "";
      for (const b of slice) binary += String.fromCharCode(b);
      const encoded = encodeBase64(slice);
      expect(encoded).toBe(btoa(binary));
      expect(decodeBase64(encoded)).toEqual(slice);
    }
  });
});
