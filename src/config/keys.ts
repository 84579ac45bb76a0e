import type { RouterConfig } from "../core/config/schema.ts";
import { parseKeyRing, PLAINTEXT, type KeyRingResult, type PayloadProtection } from "../core/envelope.ts";
import { RouterError } from "../core/errors.ts";
import { logEvent } from "../telemetry/log.ts";
import { readVar } from "./load.ts";

let parsed: { secret: string; result: Promise<KeyRingResult> } | undefined;

/**
 * How this isolate keeps payloads: encrypted with the `PAYLOAD_KEYS` ring unless the config says
 * `"payloadEncryption": "unsafe-disabled"`. A missing or malformed ring fails closed (503 `source_misconfigured`, so
 * providers retry once it is fixed): nothing is stored in the clear because a secret was forgotten.
 */
export async function loadPayloadProtection(env: Env, config: RouterConfig): Promise<PayloadProtection> {
  if (config.payloadEncryption === "unsafe-disabled") return PLAINTEXT;
  const secret = readVar(env, "PAYLOAD_KEYS");
  if (!secret) {
    logEvent("error", "payload_keys_invalid", { reason: "PAYLOAD_KEYS is not set; nothing is stored until it is" });
    throw new RouterError("source_misconfigured", { detail: "PAYLOAD_KEYS is not set" });
  }
  if (parsed?.secret !== secret) parsed = { secret, result: parseKeyRing(secret) };
  const result = await parsed.result;
  if (!result.ok) {
    logEvent("error", "payload_keys_invalid", { reason: result.reason });
    throw new RouterError("source_misconfigured", { detail: result.reason });
  }
  return { mode: "encrypted", ring: result.ring };
}
