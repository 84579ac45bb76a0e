#!/usr/bin/env node
// `npm run send -- <event>`: sends realistic provider traffic, signed exactly as Weedmaps and Leaf Trade sign it,
// to the local router (or any --url), then prints the response and a one-line verdict. `npm run send -- status …`
// sends an order status update as the POS would, to the router's status relay.
import { localSecrets, parseArgs, routerConfig } from "./local-env.mjs";

// The provider events (the fixtures and their adapters) load only when an event is sent or the usage is shown, so
// `status`, which sends none, starts without them.
const loadEvents = () => import("./events.mjs");
const STATUS_USAGE = "usage: npm run send -- status <orderId> <STATUS> [canceledReason] [--url http://127.0.0.1:8787]";
const usage =
  async () => `usage: npm run send -- <event> [--url http://127.0.0.1:8787] [--merchant ID] [--order ID] [--bad-signature] [--duplicate] [--count N] [--json]
       npm run send -- status <orderId> <STATUS> [canceledReason] [--url http://127.0.0.1:8787]
events: ${Object.keys((await loadEvents()).EVENTS).join(", ")}
status: PUT {status, canceledReason?} to /relay/weedmaps/orders/<orderId>/status with the bearer token RELAY_POS_TOKEN
        (from .dev.vars, else .dev.vars.example), as the POS would; prints the status and the router's JSON answer
  --merchant ID     the merchant in the callback URL (?merchant_id=ID); a signed merchant field the source reads is set to match
  --order ID        the order (or issue) id of the event, instead of a fresh one: a Draft, its Create and its statuses
  --bad-signature   sign with a wrong secret: expect 401 invalid_signature
  --duplicate       send the same signed request twice: expect the second to be acknowledged as a duplicate
  --count N         send N distinct events`;

let options;
try {
  options = parseArgs(process.argv.slice(2), {
    url: "string",
    merchant: "string",
    order: "string",
    "bad-signature": "boolean",
    duplicate: "boolean",
    count: "number",
    json: "boolean",
    help: "boolean",
  });
} catch (err) {
  console.error(`${err.message}\n${await usage()}`);
  process.exit(2);
}
const eventName = options._[0];
if (eventName === "status" && !options.help) process.exit(await sendStatus(options._.slice(1)));
const { EVENTS, eventBuilder } = await loadEvents();
if (options.help || !eventName || !EVENTS[eventName]) {
  console.error(options.help ? await usage() : `unknown or missing event "${eventName ?? ""}"\n${await usage()}`);
  process.exit(options.help ? 0 : 2);
}
const baseUrl = (options.url ?? "http://127.0.0.1:8787").replace(/\/$/, "");
const { file: secretsFile, values: secrets } = localSecrets();
let builder;
try {
  builder = eventBuilder(eventName, routerConfig(), { merchant: options.merchant, orderId: options.order });
} catch (err) {
  console.error(`${err.message} (router.config.json)`);
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

const url = () => `${baseUrl}${builder.path()}`;

async function send(body, headers) {
  const target = url();
  const started = performance.now();
  let response;
  try {
    response = await fetch(target, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": `${builder.event.provider}-simulator`, ...headers },
      body,
    });
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
  const shown =
    options.json || text.length <= 240 ? text : `${text.slice(0, 240)}… (${text.length} bytes; --json shows all)`;
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
    console.log(
      ok
        ? "✔ rejected with 401 invalid_signature, as expected for a bad signature"
        : `✘ expected 401 invalid_signature, got ${status}`,
    );
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
    console.log(
      `✔ draft confirmed: grandTotal ${json.grandTotal} (subtotal ${json.subtotal}; taxes: ${taxes}; fees: ${fees})`,
    );
    return true;
  }
  if (status !== 200 || !json?.received) {
    console.log(`✘ not accepted: ${status} ${json?.error?.code ?? ""}`);
    return false;
  }
  if (second) {
    console.log(
      json.duplicate
        ? `✔ duplicate acknowledged, stored once as ${json.eventId}`
        : `✘ expected a duplicate, but ${json.eventId} was stored again`,
    );
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
  const body = builder.body();
  const headers = builder.headers(body, secret);
  allOk = verdict(await send(body, headers)) && allOk;
  if (options.duplicate) allOk = verdict(await send(body, headers), { second: true }) && allOk;
}
process.exit(allOk ? 0 : 1);

/** `status <orderId> <STATUS> [canceledReason]`: the POS's status update, through the router's relay. */
async function sendStatus(args) {
  const [orderId, status, canceledReason, ...extra] = args;
  if (!orderId || !status || extra.length) {
    console.error(`status needs <orderId> <STATUS> [canceledReason]\n${STATUS_USAGE}`);
    return 2;
  }
  const { file, values } = localSecrets();
  if (!values.RELAY_POS_TOKEN) {
    console.error(`RELAY_POS_TOKEN is not set in ${file}`);
    return 2;
  }
  const target = `${(options.url ?? "http://127.0.0.1:8787").replace(/\/$/, "")}/relay/weedmaps/orders/${encodeURIComponent(orderId)}/status`;
  const started = performance.now();
  let response;
  try {
    response = await fetch(target, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: `Bearer ${values.RELAY_POS_TOKEN}` },
      body: JSON.stringify({ status, ...(canceledReason ? { canceledReason } : {}) }),
    });
  } catch (err) {
    console.error(`✘ could not reach ${target}: ${err.cause?.code ?? err.message}. Is \`npm run dev\` running?`);
    return 1;
  }
  const text = await response.text();
  let shown = text;
  try {
    shown = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    // not JSON: shown as it came
  }
  console.log(`→ PUT ${target} ${status}${canceledReason ? ` (${canceledReason})` : ""}`);
  console.log(`← ${response.status} in ${Math.round(performance.now() - started)} ms`);
  console.log(shown);
  return response.ok ? 0 : 1;
}
