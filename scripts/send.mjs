#!/usr/bin/env node
// `npm run send -- <event>`: sends realistic provider traffic, signed exactly as Weedmaps and Leaf Trade sign it,
// to the local router (or any --url), then prints the response and a one-line verdict.
import { createHmac, randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { localSecrets, parseArgs, ROOT, routerConfig } from "./local-env.mjs";

const EVENTS = {
  "weedmaps.draft": { fixture: "weedmaps-draft", provider: "weedmaps", path: "/webhooks/weedmaps" },
  "weedmaps.create": { fixture: "weedmaps-create", provider: "weedmaps", path: "/webhooks/weedmaps" },
  "leaftrade.order-v4": { fixture: "leaftrade-order-v4", provider: "leaftrade", path: "/webhooks/leaftrade/order-v4" },
  "leaftrade.order-v3": { fixture: "leaftrade-order-v3", provider: "leaftrade", path: "/webhooks/leaftrade/order-v3" },
  "leaftrade.product-issue": { fixture: "leaftrade-product-issue", provider: "leaftrade", path: "/webhooks/leaftrade/product-issue" },
};

const USAGE = `usage: npm run send -- <event> [--url http://127.0.0.1:8787] [--merchant ID] [--bad-signature] [--duplicate] [--count N] [--json]
events: ${Object.keys(EVENTS).join(", ")}
  --merchant ID     the merchant in the callback URL (?merchant_id=ID); Weedmaps' seller.id is set to match
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
const baseUrl = (options.url ?? "http://127.0.0.1:8787").replace(/\/$/, "");
const { file: secretsFile, values: secrets } = localSecrets();
const source = routerConfig().sources?.[event.provider];

function secret(name) {
  const value = secrets[name];
  if (!value) {
    console.error(`${name} is not set in ${secretsFile}`);
    process.exit(2);
  }
  return options["bad-signature"] ? "not-the-configured-secret" : value;
}

/** Fresh business ids for every event, so each send is a new event unless --duplicate says otherwise. */
function buildBody() {
  const payload = JSON.parse(readFileSync(path.join(ROOT, "test/fixtures/providers", `${event.fixture}.json`), "utf8"));
  if (event.provider === "weedmaps") {
    payload.orderId = String(randomInt(10_000_000, 99_999_999));
    if (options.merchant && payload.seller) payload.seller.id = options.merchant;
  } else {
    const record = Array.isArray(payload.results) ? payload.results[0] : payload;
    record.id = `${record.id.split("_")[0]}_${randomInt(100_000, 999_999)}`;
    record.updated_at = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  }
  return JSON.stringify(payload);
}

/** Exactly what the provider sends: Weedmaps base64 HMAC in `Signature`; Leaf Trade per router.config.json. */
function sign(body) {
  if (event.provider === "weedmaps") {
    return { Signature: createHmac("sha256", secret("WEEDMAPS_CLIENT_SECRET")).update(body).digest("base64") };
  }
  const verify = source?.verify ?? { type: "hmac", secrets: ["LEAFTRADE_WEBHOOK_SECRET"] };
  if (verify.type === "header") return { [verify.header]: `${verify.prefix ?? ""}${secret(verify.secrets[0])}` };
  if (verify.type === "none") return {};
  const digest = createHmac("sha256", secret(verify.secrets[0])).update(body).digest(verify.encoding ?? "hex");
  return { [verify.header ?? "X-Signature"]: `${verify.prefix ?? ""}${digest}` };
}

function url() {
  const merchant = options.merchant ?? (event.provider === "weedmaps" ? "4242" : undefined);
  return `${baseUrl}${event.path}${merchant ? `?merchant_id=${encodeURIComponent(merchant)}` : ""}`;
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

function verdict({ status, json }, { second = false } = {}) {
  if (options["bad-signature"]) {
    const ok = status === 401 && json?.error?.code === "invalid_signature";
    console.log(ok ? "✔ rejected with 401 invalid_signature, as expected for a bad signature" : `✘ expected 401 invalid_signature, got ${status}`);
    return ok;
  }
  if (eventName === "weedmaps.draft") {
    if (status !== 200 || !json?.grandTotal) {
      console.log(`✘ draft not confirmed: ${json?.error?.code ?? status} (Weedmaps would keep its estimate)`);
      return false;
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
  const where = json.duplicate ? "duplicate of an earlier event" : json.routing === "routed" ? `routed to ${json.deliveries} destination(s)` : "stored as unrouted (no route matched)";
  console.log(`✔ accepted as ${json.eventId}: ${where}${json.enqueued === false && json.deliveries ? "; queue send failed, the sweeper will retry" : ""}`);
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
