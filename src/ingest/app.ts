import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { loadConfig, readVar } from "../config/load.ts";
import { shardsOf } from "../config/shards.ts";
import { CapacityWatch, withMapStates } from "../control/capacity.ts";
import { EVENT_TYPE_PATTERN, type SourceConfig } from "../core/config/schema.ts";
import { nestsDeeperThan } from "../core/fields.ts";
import type { RouterDeps } from "../core/deps.ts";
import { RouterError } from "../core/errors.ts";
import { holdAmbiguous } from "../core/intake.ts";
import { applyRawNumbers, inspectJson } from "../core/json-inspect.ts";
import { queryMerchantOf } from "../core/merchant.ts";
import { sha256Hex, verifyHeaderToken } from "../core/signatures/inbound.ts";
import { answerDraft } from "./draft.ts";
import { protectionForIngest } from "./keys.ts";
import { prepareEvents } from "./prepare.ts";
import { alertHeld } from "./held.ts";
import { storeAndEnqueue } from "./store.ts";
import { verifySource } from "./verify.ts";
import { shardOfEventId } from "../core/event-id.ts";
import { placeEvent, writableShards } from "../core/shards.ts";
import { shardMaps } from "../storage/shard-maps.ts";

type IngestEnv = { Bindings: Env };

interface ParsedBody {
  payload: unknown;
  /** The decoded text, for cutting an envelope by spans; undefined when the body is not JSON. */
  text: string | undefined;
  /** Duplicated keys (paths) that JSON.parse silently resolved last-one-wins. */
  duplicateKeys: string[];
}

function parsePayload(body: ArrayBuffer, required: boolean, maxDepth: number): ParsedBody {
  try {
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(body);
    // Too deep to be a webhook: refused even where JSON is optional, since it would be parsed on every read.
    if (nestsDeeperThan(text, maxDepth))
      throw new RouterError("invalid_json", { detail: `JSON nested deeper than ${maxDepth}` });
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === "object") {
      // JSON.parse reads 1e400 and 2e400 both as Infinity, and a duplicated key as its last value: identities are
      // read from the numbers as written, and a duplicate on one is found here (and held by the caller).
      const { duplicateKeys, inexactNumbers } = inspectJson(text);
      applyRawNumbers(parsed, inexactNumbers);
      return { payload: parsed, text, duplicateKeys };
    }
  } catch (err) {
    if (err instanceof RouterError) throw err;
  }
  if (required) throw new RouterError("invalid_json", { detail: "body is not a JSON object or array" });
  return { payload: undefined, text: undefined, duplicateKeys: [] };
}

/** A source with URL tokens: the one for this type's URL, compared in constant time, before the body is read. */
function checkUrlToken(
  env: Env,
  sourceName: string,
  source: SourceConfig,
  pathEvent: string | undefined,
  given: readonly string[] | undefined,
): void {
  const urlToken = source.urlToken;
  if (!urlToken) return;
  const type = pathEvent ?? "default";
  const secretName = urlToken.secrets[type];
  if (secretName === undefined)
    throw new RouterError("url_token_invalid", { detail: `${sourceName}: no URL token is configured for ${type}` });
  const secret = readVar(env, secretName);
  if (secret === undefined)
    throw new RouterError("source_misconfigured", {
      detail: `${sourceName}: the URL token secret ${secretName} is not set`,
    });
  // Never logged: the detail says only whether one came.
  if (given?.length !== 1 || !verifyHeaderToken(given[0], [secret], "").ok) {
    throw new RouterError("url_token_invalid", {
      detail: `${sourceName}: ${given?.length ? "a wrong" : "no"} URL token for ${type}`,
    });
  }
}

/**
 * `/webhooks/<source>[/<event>]`: verify, identify, route, then store and enqueue (or, for a synchronous event,
 * answer). The shards' bindings are watched for their size (`capacity`, one per Worker): when no shard has room the
 * request is refused with `503 storage_full` before anything is accepted, so the provider retries.
 */
export function createWebhooks({ providers, clock }: RouterDeps, capacity = new CapacityWatch(clock)) {
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
    if (!Object.hasOwn(config.sources, sourceName))
      throw new RouterError("unknown_source", { detail: `source "${sourceName}"` });
    if (c.req.method !== "POST") throw new RouterError("method_not_allowed", { headers: { Allow: "POST" } });
    await next();
  });

  webhooks.post("/:source/:event?", limitBody, async (c) => {
    const config = loadConfig(c.env, providers);
    const sourceName = c.req.param("source");
    const source = config.sources[sourceName]!;
    const adapter = providers[source.provider]!;
    const pathEvent = c.req.param("event");
    if (pathEvent !== undefined && !EVENT_TYPE_PATTERN.test(pathEvent))
      throw new RouterError("not_found", { detail: "bad event segment" });
    if (adapter.pathEvent === "required" && pathEvent === undefined) {
      throw new RouterError("not_found", { detail: `${sourceName} needs the webhook type in the path` });
    }
    // Refused before the body is read: a made-up path never reaches storage.
    const accepted = source.events ?? adapter.eventTypes;
    if (pathEvent !== undefined && accepted && !accepted.includes(pathEvent)) {
      throw new RouterError("unknown_event_type", { detail: `${sourceName} does not accept ${pathEvent}` });
    }
    checkUrlToken(c.env, sourceName, source, pathEvent, c.req.queries(source.urlToken?.query ?? "token"));
    const query = queryMerchantOf(c.req.queries(source.merchant.query));
    if (!query.ok) throw new RouterError("invalid_merchant", { detail: `${sourceName}: ${query.detail}` });

    const body = await c.req.arrayBuffer();
    await verifySource(c.env, (name) => c.req.header(name), sourceName, source, adapter, body);
    const { payload, text, duplicateKeys } = parsePayload(body, source.requireJson, config.limits.maxJsonDepth);

    const shards = shardsOf(c.env, config);
    const watched = capacity.watch(c.env, shards, c.executionCtx, config);
    const env = watched.env;
    const bodySha256 = await sha256Hex(body);
    const input = {
      sourceName,
      source,
      pathEvent,
      payload,
      bodySha256,
      text,
      maxRecords: config.limits.maxRecordsPerBody,
    };
    const identified = adapter.identify(input);
    if (!identified.ok) throw new RouterError(identified.code, { detail: `${sourceName}: ${identified.detail}` });
    const identities = holdAmbiguous(identified.events, duplicateKeys, config, adapter, input);
    // The accepted types bind what the body says too, not only the path. A held body keeps the path's type.
    const refused = accepted ? identities.find((e) => !e.hold && !accepted.includes(e.eventType)) : undefined;
    if (refused)
      throw new RouterError("unknown_event_type", { detail: `${sourceName} does not accept ${refused.eventType}` });

    // Where each event goes: the shard map (src/core/shards.ts), read at most once a minute per isolate.
    const now = clock.now();
    const maps = await shardMaps(env.DB, (readOnly) => writableShards(config.storage.shards, readOnly), now);
    const retryWindowMs = config.storage.retryWindowHours * 3_600_000;
    const prepared = await prepareEvents(identities, {
      place: (digests) => placeEvent(digests, maps.versions, now, retryWindowMs),
      config,
      clock,
      sourceName,
      source,
      adapter,
      queryMerchant: query.value,
      merchantProblem: query.problem,
      contentType: c.req.header("content-type") ?? "application/octet-stream",
      body,
      bodySha256,
    });

    // Before anything is answered: an event that cannot be stored encrypted is refused, so the provider retries.
    const protection = await protectionForIngest(env, config, clock);
    // So is one that has nowhere to go: no shard has room under its read-only line (by the sizes D1 last reported).
    try {
      await capacity.refuseWhenFull(c.env, c.executionCtx, config, withMapStates(shards, maps.current.writable));
    } catch (err) {
      watched.settle();
      throw err;
    }
    const [only] = prepared;
    if (prepared.length === 1 && adapter.synchronousEvents.includes(only!.event.eventType)) {
      const answered = await answerDraft({
        env,
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
      // Stored after the answer; Weedmaps never sends a Draft twice.
      watched.stored(shardOfEventId(only!.event.id) ?? 0, 1);
      watched.settle();
      return answered;
    }

    let stored: Awaited<ReturnType<typeof storeAndEnqueue>>;
    try {
      stored = await storeAndEnqueue(env, config, protection, prepared, clock);
    } catch (err) {
      capacity.writeFailed(err, c.env, c.executionCtx, config, shards);
      watched.settle();
      throw err;
    }
    for (const s of stored) if (!s.duplicate) watched.stored(shardOfEventId(s.event.id) ?? 0, 1);
    watched.settle();
    alertHeld(c.env, c.executionCtx, config, clock.now(), stored);
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
