import { loadPayloadProtection } from "../config/keys.ts";
import type { Clock } from "../core/clock.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import { missingKeys, type PayloadProtection } from "../core/envelope.ts";
import { errorMessage, RouterError } from "../core/errors.ts";
import { registerPrimaryKey } from "../storage/payload-keys.ts";
import { logEvent } from "../telemetry/log.ts";

/** How long an isolate trusts its last check of the ring against D1's registry of keys in use. */
const RECHECK_MS = 5 * 60_000;

let checked: { ring: unknown; at: number; missing: string[] } | undefined;

/**
 * The protection new events are stored with, once the ring is known to cover every key that still protects rows:
 * a ring that drops such a key would leave those payloads unreadable, so it is refused (503
 * `source_misconfigured`) until the key is put back. One D1 round trip per isolate every five minutes; if that
 * check fails, the last good one stands.
 */
export async function protectionForIngest(env: Env, config: RouterConfig, clock: Clock): Promise<PayloadProtection> {
  const protection = await loadPayloadProtection(env, config);
  if (protection.mode !== "encrypted") return protection;
  const { ring } = protection;
  const now = clock.now();
  if (!checked || checked.ring !== ring || now - checked.at >= RECHECK_MS) {
    try {
      const inUse = await registerPrimaryKey(env.DB, ring.primary, now);
      checked = {
        ring,
        at: now,
        missing: missingKeys(
          ring,
          inUse.map((k) => k.keyId),
        ),
      };
    } catch (err) {
      if (checked?.ring !== ring)
        throw new RouterError("storage_unavailable", { detail: `payload key registry: ${errorMessage(err)}` });
    }
  }
  if (checked!.missing.length > 0) {
    logEvent("error", "payload_keys_invalid", {
      reason: "PAYLOAD_KEYS lacks keys that still protect stored rows; put them back",
      missing: checked!.missing,
    });
    throw new RouterError("source_misconfigured", { detail: `PAYLOAD_KEYS lacks ${checked!.missing.join(", ")}` });
  }
  return protection;
}
