// Provider events built from the fixtures, signed as the provider signs them: shared by `npm run send` and the soak.
// Every fixture is an event: test/fixtures/providers/<provider>/<event>.json is `<provider>.<event>`, and
// `<type>--<variant>.json` another body of one webhook type. What the provider's URLs look like, how it signs and
// which fields make an event distinct come from its adapter.
import { createHmac, randomInt } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { BUILTIN_PROVIDERS } from "../src/core/providers/registry.ts";
import { ROOT } from "./local-env.mjs";

const FIXTURES = path.join(ROOT, "test/fixtures/providers");

export const EVENTS = Object.fromEntries(
  Object.keys(BUILTIN_PROVIDERS)
    .filter((provider) => readdirSync(FIXTURES).includes(provider))
    .flatMap((provider) =>
      readdirSync(path.join(FIXTURES, provider))
        .filter((file) => file.endsWith(".json"))
        .map((file) => {
          const event = file.replace(/\.json$/, "");
          return [`${provider}.${event}`, { provider, event, file: path.join(FIXTURES, provider, file) }];
        }),
    ),
);

function setField(record, fieldPath, value) {
  const keys = fieldPath.split(".");
  let target = record;
  for (const key of keys.slice(0, -1)) target = target?.[key];
  if (target && typeof target === "object" && keys.at(-1) in target) target[keys.at(-1)] = value;
}

/**
 * A builder for one fixture event against one source of a router config: `body()` gives a new, distinct event each
 * time (fresh business ids and update times), `headers(body, secret)` its signature, `path(merchant?)` its URL path.
 */
export function eventBuilder(eventName, config, { random = () => randomInt(0, 2 ** 31), merchant, orderId } = {}) {
  const event = EVENTS[eventName];
  if (!event) throw new Error(`unknown event "${eventName}"`);
  const adapter = BUILTIN_PROVIDERS[event.provider];
  const [sourceName, source] =
    Object.entries(config.sources ?? {}).find(([, s]) => s.provider === event.provider) ?? [];
  if (!source) throw new Error(`the config has no source with provider "${event.provider}"`);
  const template = readFileSync(event.file, "utf8");
  return {
    event,
    source,
    body() {
      const payload = JSON.parse(template);
      const fields = adapter.identityFields;
      for (const record of adapter.records(payload)) {
        if (!record || typeof record !== "object") continue;
        if (fields) {
          const current = fields.id.split(".").reduce((v, k) => v?.[k], record);
          const n = random();
          // `orderId`: every event built is about that one order (a Draft, then its Create, then its statuses).
          const fresh =
            orderId ??
            (/^\d+$/.test(String(current))
              ? String(10_000_000 + (n % 89_999_999))
              : `${String(current).split("_")[0]}_${n}`);
          setField(record, fields.id, fresh);
          if (fields.updatedAt) setField(record, fields.updatedAt, new Date().toISOString().replace(/\.\d+Z$/, "Z"));
        }
        // The merchant in the URL is unsigned; where the source reads it from a signed field, that field says the same.
        if (merchant && source.merchant?.field) setField(record, source.merchant.field, merchant);
      }
      return JSON.stringify(payload);
    },
    /** Exactly what the provider sends, by the source's `verify` block and the adapter's defaults. */
    headers(body, secretOf) {
      const verify = source.verify;
      if (verify.type === "none") return {};
      if (verify.type === "header") return { [verify.header]: `${verify.prefix ?? ""}${secretOf(verify.secrets[0])}` };
      const scheme = { ...adapter.signature, ...verify };
      const digest = createHmac("sha256", secretOf(verify.secrets[0])).update(body).digest(scheme.encoding);
      return { [scheme.header]: `${verify.prefix || adapter.signature?.prefix || ""}${digest}` };
    },
    path() {
      // `<type>--<variant>.json` is another body of the same webhook type (Leaf Trade's URL names the type).
      const typed = adapter.pathEvent === "required" ? `/${event.event.split("--")[0]}` : "";
      return `/webhooks/${sourceName}${typed}${merchant ? `?merchant_id=${encodeURIComponent(merchant)}` : ""}`;
    },
  };
}
