import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { loadConfig } from "../config/load.ts";
import { EVENT_TYPE_PATTERN } from "../core/config/schema.ts";
import { nestsDeeperThan } from "../core/fields.ts";
import type { RouterDeps } from "../core/deps.ts";
import { RouterError } from "../core/errors.ts";
import { queryMerchantOf } from "../core/merchant.ts";
import { sha256Hex } from "../core/signatures/inbound.ts";
import { answerDraft } from "./draft.ts";
import { protectionForIngest } from "./keys.ts";
import { prepareEvents } from "./prepare.ts";
import { storeAndEnqueue } from "./store.ts";
import { verifySource } from "./verify.ts";

type IngestEnv = { Bindings: Env };

function parsePayload(body: ArrayBuffer, required: boolean, maxDepth: number): unknown {
  try {
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(body);
    // Too deep to be a webhook: refused even where JSON is optional, since it would be parsed on every read.
    if (nestsDeeperThan(text, maxDepth)) throw new RouterError("invalid_json", { detail: `JSON nested deeper than ${maxDepth}` });
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === "object") return parsed;
  } catch (err) {
    if (err instanceof RouterError) throw err;
  }
  if (required) throw new RouterError("invalid_json", { detail: "body is not a JSON object or array" });
  return undefined;
}

/** `/webhooks/<source>[/<event>]`: verify, identify, route, then store and enqueue (or, for a synchronous event, answer). */
export function createWebhooks({ providers, clock }: RouterDeps) {
  const bodyLimits = new Map<number, MiddlewareHandler>();

  /** Hono's bodyLimit stops reading at the limit, before any verification work; one instance per configured size. */
  const limitBody: MiddlewareHandler<IngestEnv> = (c, next) => {
    const maxSize = loadConfig(c.env, providers).limits.maxBodyBytes;
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

  const webhooks = new Hono<IngestEnv>();

  webhooks.use("/:source/:event?", async (c, next) => {
    const config = loadConfig(c.env, providers);
    const sourceName = c.req.param("source");
    if (!Object.hasOwn(config.sources, sourceName)) throw new RouterError("unknown_source", { detail: `source "${sourceName}"` });
    if (c.req.method !== "POST") throw new RouterError("method_not_allowed", { headers: { Allow: "POST" } });
    await next();
  });

  webhooks.post("/:source/:event?", limitBody, async (c) => {
    const config = loadConfig(c.env, providers);
    const sourceName = c.req.param("source");
    const source = config.sources[sourceName]!;
    const adapter = providers[source.provider]!;
    const pathEvent = c.req.param("event");
    if (pathEvent !== undefined && !EVENT_TYPE_PATTERN.test(pathEvent)) throw new RouterError("not_found", { detail: "bad event segment" });
    if (adapter.pathEvent === "required" && pathEvent === undefined) {
      throw new RouterError("not_found", { detail: `${sourceName} needs the webhook type in the path` });
    }
    // Refused before the body is read: a made-up path never reaches storage.
    const accepted = source.events ?? adapter.eventTypes;
    if (pathEvent !== undefined && accepted && !accepted.includes(pathEvent)) {
      throw new RouterError("unknown_event_type", { detail: `${sourceName} does not accept ${pathEvent}` });
    }
    const query = queryMerchantOf(c.req.queries(source.merchant.query));
    if (!query.ok) throw new RouterError("invalid_merchant", { detail: `${sourceName}: ${query.detail}` });

    const body = await c.req.arrayBuffer();
    await verifySource(c.env, (name) => c.req.header(name), sourceName, source, adapter, body);
    const payload = parsePayload(body, source.requireJson, config.limits.maxJsonDepth);

    const bodySha256 = await sha256Hex(body);
    const identified = adapter.identify({ sourceName, source, pathEvent, payload, bodySha256 });
    if (!identified.ok) throw new RouterError(identified.code, { detail: `${sourceName}: ${identified.detail}` });
    // The accepted types bind what the body says too, not only the path.
    const refused = accepted ? identified.events.find((e) => !accepted.includes(e.eventType)) : undefined;
    if (refused) throw new RouterError("unknown_event_type", { detail: `${sourceName} does not accept ${refused.eventType}` });

    const prepared = await prepareEvents(identified.events, {
      config,
      clock,
      sourceName,
      source,
      adapter,
      queryMerchant: query.value,
      contentType: c.req.header("content-type") ?? "application/octet-stream",
      body,
      bodySha256,
    });

    // Before anything is answered: an event that cannot be stored encrypted is refused, so the provider retries.
    const protection = await protectionForIngest(c.env, config, clock);
    const [only] = prepared;
    if (prepared.length === 1 && adapter.synchronousEvents.includes(only!.event.eventType)) {
      return answerDraft({
        env: c.env,
        ctx: c.executionCtx,
        config,
        protection,
        clock,
        adapter,
        decision: only!.decision,
        event: only!.event,
        payload,
        requestId: c.get("requestId") ?? "unknown",
      });
    }

    const stored = await storeAndEnqueue(c.env, protection, prepared, clock);
    const summaries = stored.map(({ event, decision, duplicate, enqueued }) => ({
      eventId: event.id,
      duplicate,
      ...(duplicate
        ? {}
        : {
            routing: event.quarantine ? "quarantined" : decision.deliveries.length > 0 ? "routed" : "unrouted",
            deliveries: decision.deliveries.length,
            enqueued,
          }),
    }));
    // One event answers as it always has; an envelope of several lists each.
    return c.json(summaries.length === 1 ? { received: true, ...summaries[0] } : { received: true, events: summaries });
  });

  return webhooks;
}
