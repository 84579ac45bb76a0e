import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { loadConfig, readVar } from "../config/load";
import { EVENT_TYPE_PATTERN, type SourceConfig } from "../config/schema";
import { RouterError } from "../errors";
import { answerDraft } from "./draft";
import { adapterFor, type ProviderAdapter } from "./providers";
import { routeEvent } from "./routing";
import { sha256Hex, verifyHeaderToken, verifyHmacSignature } from "./signature";
import { storeAndEnqueue } from "./store";

type IngestEnv = { Bindings: Env };

const bodyLimits = new Map<number, MiddlewareHandler>();

/** Hono's bodyLimit stops reading at the limit, before any verification work; one instance per configured size. */
const limitBody: MiddlewareHandler<IngestEnv> = (c, next) => {
  const maxSize = loadConfig(c.env).limits.maxBodyBytes;
  let limiter = bodyLimits.get(maxSize);
  if (!limiter) {
    limiter = bodyLimit({
      maxSize,
      onError: () => {
        throw new RouterError("payload_too_large", { detail: `body over ${maxSize} bytes` });
      },
    });
    bodyLimits.set(maxSize, limiter);
  }
  return limiter(c, next);
};

async function verifySource(
  env: Env,
  headers: (name: string) => string | undefined,
  sourceName: string,
  source: SourceConfig,
  adapter: ProviderAdapter,
  body: ArrayBuffer,
): Promise<void> {
  const verify = source.verify;
  if (verify.type === "none") return;
  const secrets = verify.secrets.map((name) => readVar(env, name)).filter((value): value is string => value !== undefined);
  if (secrets.length === 0) {
    throw new RouterError("source_misconfigured", { detail: `${sourceName}: none of the secrets ${verify.secrets.join(", ")} is set` });
  }
  const result =
    verify.type === "hmac"
      ? await verifyHmacSignature(body, headers(verify.header ?? adapter.signatureDefaults!.header), secrets, {
          encoding: verify.encoding ?? adapter.signatureDefaults!.encoding,
          prefix: verify.prefix,
        })
      : verifyHeaderToken(headers(verify.header), secrets, verify.prefix);
  if (!result.ok) throw new RouterError("invalid_signature", { detail: `${sourceName}: ${result.reason}` });
}

function parsePayload(body: ArrayBuffer, required: boolean): unknown {
  try {
    const parsed: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(body));
    if (parsed !== null && typeof parsed === "object") return parsed;
  } catch {
    // fall through
  }
  if (required) throw new RouterError("invalid_json", { detail: "body is not a JSON object or array" });
  return undefined;
}

export const webhooks = new Hono<IngestEnv>();

webhooks.use("/:source/:event?", async (c, next) => {
  const config = loadConfig(c.env);
  const sourceName = c.req.param("source");
  if (!Object.hasOwn(config.sources, sourceName)) throw new RouterError("unknown_source", { detail: `source "${sourceName}"` });
  if (c.req.method !== "POST") throw new RouterError("method_not_allowed", { headers: { Allow: "POST" } });
  await next();
});

webhooks.post("/:source/:event?", limitBody, async (c) => {
  const config = loadConfig(c.env);
  const sourceName = c.req.param("source");
  const source = config.sources[sourceName]!;
  const adapter = adapterFor(source);
  const pathEvent = c.req.param("event");
  if (pathEvent !== undefined && !EVENT_TYPE_PATTERN.test(pathEvent)) throw new RouterError("not_found", { detail: "bad event segment" });
  if (adapter.requiresPathEvent && pathEvent === undefined) {
    throw new RouterError("not_found", { detail: `${sourceName} needs the webhook type in the path` });
  }

  const body = await c.req.arrayBuffer();
  await verifySource(c.env, (name) => c.req.header(name), sourceName, source, adapter, body);
  const payload = parsePayload(body, source.requireJson);

  const bodySha256 = await sha256Hex(body);
  const identity = adapter.identify({
    sourceName,
    source,
    pathEvent,
    queryMerchant: c.req.query(source.merchant.query) || undefined,
    payload,
    bodySha256,
  });
  if ("error" in identity) throw new RouterError("not_found", { detail: identity.error });

  const decision = routeEvent(config, {
    source: sourceName,
    eventType: identity.eventType,
    merchantId: identity.merchantId,
    subject: identity.subject,
  });
  if (decision.merchantMismatch) {
    throw new RouterError("merchant_mismatch", {
      detail: `route ${decision.merchantMismatch.route}: ${decision.merchantMismatch.field} differs from the query merchant`,
    });
  }

  const eventId = `evt_${(await sha256Hex(identity.idempotencyKey)).slice(0, 32)}`;
  const event = {
    id: eventId,
    idempotencyKey: identity.idempotencyKey,
    ingestId: crypto.randomUUID(),
    source: sourceName,
    eventType: identity.eventType,
    merchantId: identity.merchantId,
    providerId: identity.providerId,
    contentType: c.req.header("content-type") ?? "application/octet-stream",
    body,
    bodySha256,
    receivedAt: Date.now(),
  };

  if (source.provider === "weedmaps" && identity.eventType === "draft") {
    return answerDraft({
      env: c.env,
      ctx: c.executionCtx,
      config,
      decision,
      event,
      outbound: { ...event, body: new Uint8Array(body) },
      deliveries: decision.deliveries,
    });
  }

  const { duplicate, enqueued } = await storeAndEnqueue(c.env, event, decision.deliveries);
  return c.json({
    received: true,
    eventId,
    duplicate,
    ...(duplicate
      ? {}
      : { routing: decision.deliveries.length > 0 ? "routed" : "unrouted", deliveries: decision.deliveries.length, enqueued }),
  });
});
