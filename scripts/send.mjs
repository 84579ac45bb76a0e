#!/usr/bin/env node
// `npm run send -- <event>`: sends realistic provider traffic, signed exactly as Weedmaps and Leaf Trade sign it,
// to the local router (or any --url), then prints the response and a one-line verdict.
import { createHmac, randomInt } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { BUILTIN_PROVIDERS } from "../src/core/providers/registry.ts";
import { localSecrets, parseArgs, ROOT, routerConfig } from "./local-env.mjs";

// Every provider fixture is an event: test/fixtures/providers/<provider>/<event>.json is `<provider>.<event>`, and
// `<type>--<variant>.json` is another body of one webhook type (`leaftrade.order-v4--three-orders`). What
// the provider's URLs look like, how it signs and which fields make an event distinct come from its adapter.
const FIXTURES = path.join(ROOT, "test/fixtures/providers");
const EVENTS = Object.fromEntries(
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

const USAGE = `usage: npm run send -- <event> [--url http://127.0.0.1:8787] [--merchant ID] [--bad-signature] [--duplicate] [--count N] [--json]
events: ${Object.keys(EVENTS).join(", ")}
  --merchant ID     the merchant in the callback URL (?merchant_id=ID); a signed merchant field the source reads is set to match
  --bad-signature   sign with a wrong secret: expect 401 invalid_signature
  --duplicate       send the same signed request twice: expect the second to be acknowledged as a duplicate
  --count N         send N distinct events`;

let options;
try {
  options = parseArgs(process.argv.slice(2), { url: "string", merchant: "string", "bad-signature": "boolean", duplicate: "boolean", count: "number", json: "boolean", help: "boolean" });
} catch (err) {
  console.error(`${err.message}\n${USAGE}`);
  process.exit(2);
}
const eventName = options._[0];
if (options.help || !eventName || !EVENTS[eventName]) {
  console.error(options.help ? USAGE : `unknown or missing event "${eventName ?? ""}"\n${USAGE}`);
  process.exit(options.help ? 0 : 2);
}
const event = EVENTS[eventName];
const adapter = BUILTIN_PROVIDERS[event.provider];
const baseUrl = (options.url ?? "http://127.0.0.1:8787").replace(/\/$/, "");
const { file: secretsFile, values: secrets } = localSecrets();
const config = routerConfig();
const [sourceName, source] = Object.entries(config.sources ?? {}).find(([, s]) => s.provider === event.provider) ?? [];
if (!source) {
  console.error(`router.config.json has no source with provider "${event.provider}"`);
  process.exit(2);
}

function secret(name) {
  const value = secrets[name];
  if (!value) {
    console.error(`${name} is not set in ${secretsFile}`);
    process.exit(2);
  }
  return options["bad-signature"] ? "not-the-configured-secret" : value;
}

function setField(record, fieldPath, value) {
  const keys = fieldPath.split(".");
  let target = record;
  for (const key of keys.slice(0, -1)) target = target?.[key];
  if (target && typeof target === "object" && keys.at(-1) in target) target[keys.at(-1)] = value;
}

/** Fresh business ids (and update times) for every event, so each send is a new event unless --duplicate says otherwise. */
function buildBody() {
  const payload = JSON.parse(readFileSync(event.file, "utf8"));
  const fields = adapter.identityFields;
  for (const record of adapter.records(payload)) {
    if (!record || typeof record !== "object") continue;
    if (fields) {
      const current = fields.id.split(".").reduce((v, k) => v?.[k], record);
      const fresh = /^\d+$/.test(String(current)) ? String(randomInt(10_000_000, 99_999_999)) : `${String(current).split("_")[0]}_${randomInt(100_000, 999_999)}`;
      setField(record, fields.id, fresh);
      if (fields.updatedAt) setField(record, fields.updatedAt, new Date().toISOString().replace(/\.\d+Z$/, "Z"));
    }
    // The merchant in the URL is unsigned; where the source reads it from a signed field, that field says the same.
    if (options.merchant && source.merchant?.field) setField(record, source.merchant.field, options.merchant);
  }
  return JSON.stringify(payload);
}

/** Exactly what the provider sends, by the source's `verify` block and the adapter's defaults. */
function sign(body) {
  const verify = source.verify;
  if (verify.type === "none") return {};
  if (verify.type === "header") return { [verify.header]: `${verify.prefix ?? ""}${secret(verify.secrets[0])}` };
  const scheme = { ...adapter.signature, ...verify };
  const digest = createHmac("sha256", secret(verify.secrets[0])).update(body).digest(scheme.encoding);
  return { [scheme.header]: `${verify.prefix || adapter.signature?.prefix || ""}${digest}` };
}

function url() {
  const merchant = options.merchant;
  // `<type>--<variant>.json` is another body of the same webhook type (Leaf Trade's URL names the type).
  const typed = adapter.pathEvent === "required" ? `/${event.event.split("--")[0]}` : "";
  return `${baseUrl}/webhooks/${sourceName}${typed}${merchant ? `?merchant_id=${encodeURIComponent(merchant)}` : ""}`;
}

async function send(body, headers) {
  const target = url();
  const started = performance.now();
  let response;
  try {
    response = await fetch(target, { method: "POST", headers: { "content-type": "application/json", "user-agent": `${event.provider}-simulator`, ...headers }, body });
  } catch (err) {
    console.error(`✘ could not reach ${target}: ${err.cause?.code ?? err.message}. Is \`npm run dev\` running?`);
    process.exit(1);
  }
  const text = await response.text();
  const ms = Math.round(performance.now() - started);
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  console.log(`→ POST ${target}`);
  const shown = options.json || text.length <= 240 ? text : `${text.slice(0, 240)}… (${text.length} bytes; --json shows all)`;
  console.log(`← ${response.status} in ${ms} ms ${shown}`);
  return { status: response.status, json };
}

function describe(one) {
  const where = one.duplicate
    ? "duplicate of an earlier event"
    : one.routing === "routed"
      ? `routed to ${one.deliveries} destination(s)`
      : one.routing === "quarantined"
        ? "held in quarantine: the URL's merchant differs from the signed one (release it with POST /admin/events/<id>/release)"
        : "stored as unrouted (no route matched)";
  return `${where}${one.enqueued === false && one.deliveries ? "; queue send failed, the sweeper will retry" : ""}`;
}

function verdict({ status, json }, { second = false } = {}) {
  if (options["bad-signature"]) {
    const ok = status === 401 && json?.error?.code === "invalid_signature";
    console.log(ok ? "✔ rejected with 401 invalid_signature, as expected for a bad signature" : `✘ expected 401 invalid_signature, got ${status}`);
    return ok;
  }
  // A synchronous event (Weedmaps Draft) is answered with the responder's body, not with an acknowledgement.
  if (json?.error?.code?.startsWith("responder_")) {
    console.log(`✘ not answered: ${json.error.code} (the provider keeps its own estimate)`);
    return false;
  }
  if (status === 200 && json && !("received" in json)) {
    if (json.grandTotal === undefined) {
      console.log("✔ answered synchronously by the responder");
      return true;
    }
    const taxes = (json.taxes ?? []).map((t) => `${t.name} ${t.amount}`).join(", ");
    const fees = (json.fees ?? []).map((f) => `${f.name} ${f.amount}`).join(", ");
    console.log(`✔ draft confirmed: grandTotal ${json.grandTotal} (subtotal ${json.subtotal}; taxes: ${taxes}; fees: ${fees})`);
    return true;
  }
  if (status !== 200 || !json?.received) {
    console.log(`✘ not accepted: ${status} ${json?.error?.code ?? ""}`);
    return false;
  }
  if (second) {
    console.log(json.duplicate ? `✔ duplicate acknowledged, stored once as ${json.eventId}` : `✘ expected a duplicate, but ${json.eventId} was stored again`);
    return json.duplicate === true;
  }
  if (json.events) {
    for (const one of json.events) console.log(`✔ accepted as ${one.eventId}: ${describe(one)}`);
    return true;
  }
  console.log(`✔ accepted as ${json.eventId}: ${describe(json)}`);
  return true;
}

let allOk = true;
const count = options.count ?? 1;
for (let i = 0; i < count; i++) {
  if (count > 1) console.log(`\n[${i + 1}/${count}]`);
  const body = buildBody();
  const headers = sign(body);
  allOk = verdict(await send(body, headers)) && allOk;
  if (options.duplicate) allOk = verdict(await send(body, headers), { second: true }) && allOk;
}
process.exit(allOk ? 0 : 1);
