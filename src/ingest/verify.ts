import { readVar } from "../config/load.ts";
import type { SourceConfig } from "../core/config/schema.ts";
import { RouterError } from "../core/errors.ts";
import type { ProviderAdapter } from "../core/providers/contract.ts";
import { verifyHeaderToken, verifyHmacSignature } from "../core/signatures/inbound.ts";

/**
 * Checks a request against its source's scheme, with the secrets read from the Worker's bindings. Fails closed:
 * a source whose secrets are all unset answers 503, never accepts unsigned traffic.
 */
export async function verifySource(
  env: Env,
  headers: (name: string) => string | undefined,
  sourceName: string,
  source: SourceConfig,
  adapter: ProviderAdapter,
  body: ArrayBuffer,
): Promise<void> {
  const verify = source.verify;
  if (verify.type === "none") return;
  const secrets = verify.secrets
    .map((name) => readVar(env, name))
    .filter((value): value is string => value !== undefined);
  if (secrets.length === 0) {
    throw new RouterError("source_misconfigured", {
      detail: `${sourceName}: none of the secrets ${verify.secrets.join(", ")} is set`,
    });
  }
  // The config check guarantees a header and an encoding for an adapter without defaults.
  const result =
    verify.type === "hmac"
      ? await verifyHmacSignature(body, headers(verify.header ?? adapter.signature!.header), secrets, {
          encoding: verify.encoding ?? adapter.signature!.encoding,
          prefix: verify.prefix || (adapter.signature?.prefix ?? ""),
        })
      : verifyHeaderToken(headers(verify.header), secrets, verify.prefix);
  if (!result.ok) throw new RouterError("invalid_signature", { detail: `${sourceName}: ${result.reason}` });
}
