/**
 * `PUT /relay/<source>/orders/<orderId>/status`: an internal system tells Weedmaps where an order is (docs/relay.md).
 * Authenticated per system (its bearer token, or a Standard Webhooks signature), then accepted by
 * src/relay/accept.ts: 202 with the update's id, sent to Weedmaps from the queue.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { loadConfig, readVar } from "../config/load.ts";
import { shardsOf } from "../config/shards.ts";
import { type CapacityWatch, withMapStates } from "../control/capacity.ts";
import { shardOfEventId } from "../core/event-id.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import type { RouterDeps } from "../core/deps.ts";
import { RouterError } from "../core/errors.ts";
import { reasonProblem, RelayRequestSchema } from "../core/relay.ts";
import { verifyHeaderToken } from "../core/signatures/inbound.ts";
import { verifyStandardWebhook } from "../core/signatures/standard-webhooks.ts";
import { acceptUpdate } from "../relay/accept.ts";
import { logEvent } from "../telemetry/log.ts";
import { protectionForIngest } from "./keys.ts";

/** `{"status":"CANCELED_SELLER","canceledReason":"CUSTOMER_NO_SHOW"}` with room to spare. */
const MAX_UPDATE_BYTES = 4_096;
/** Weedmaps' ids are at most 255 characters. */
const MAX_ORDER_ID = 255;

type RelayEnv = { Bindings: Env };

/**
 * The system that sent the request, or null. Every system's credential is checked, whichever matches first, so the
 * time taken does not tell which systems exist; each comparison is constant-time.
 */
async function authenticate(
  env: Env,
  config: RouterConfig,
  source: string,
  header: (name: string) => string | undefined,
  body: Uint8Array,
  now: number,
): Promise<string | null> {
  let found: string | null = null;
  for (const [name, system] of Object.entries(config.relay[source]!.systems)) {
    const secret = readVar(env, "token" in system ? system.token : system.signingSecret);
    if (!secret) {
      logEvent("error", "relay_system_misconfigured", { source, system: name, reason: "secret not set" });
      continue;
    }
    const ok =
      "token" in system
        ? verifyHeaderToken(header("authorization"), [secret], "Bearer ").ok
        : await verifyStandardWebhook(
            secret,
            {
              id: header("webhook-id"),
              timestamp: header("webhook-timestamp"),
              signature: header("webhook-signature"),
            },
            body,
            now,
          );
    if (ok && found === null) found = name;
  }
  return found;
}

export function createRelay({ providers, clock }: RouterDeps, capacity: CapacityWatch) {
  const relay = new Hono<RelayEnv>();
  relay.use("/:source/orders/:orderId/status", async (c, next) => {
    const config = loadConfig(c.env, providers);
    if (!Object.hasOwn(config.relay, c.req.param("source")))
      throw new RouterError("relay_not_configured", { detail: `no relay for "${c.req.param("source")}"` });
    if (c.req.method !== "PUT") throw new RouterError("method_not_allowed", { headers: { Allow: "PUT" } });
    await next();
  });

  relay.put(
    "/:source/orders/:orderId/status",
    bodyLimit({
      maxSize: MAX_UPDATE_BYTES,
      onError: () => {
        throw new RouterError("payload_too_large", { detail: `update over ${MAX_UPDATE_BYTES} bytes` });
      },
    }),
    async (c) => {
      const config = loadConfig(c.env, providers);
      const source = c.req.param("source");
      const orderId = c.req.param("orderId");
      const body = new Uint8Array(await c.req.arrayBuffer());
      const system = await authenticate(c.env, config, source, (name) => c.req.header(name), body, clock.now());
      if (system === null) throw new RouterError("unauthorized", { detail: `relay ${source}: no system matched` });
      if (orderId.length === 0 || orderId.length > MAX_ORDER_ID)
        throw new RouterError("invalid_order_id", { detail: `order id of ${orderId.length} characters` });
      const type = c.req.header("content-type") ?? "";
      if (!/^application\/json\s*(;|$)/i.test(type))
        throw new RouterError("unsupported_media_type", { detail: "relay update not application/json" });
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(body));
      } catch {
        throw new RouterError("invalid_json", { detail: "relay update is not JSON" });
      }
      const parsed = RelayRequestSchema.safeParse(json);
      if (!parsed.success)
        throw new RouterError("relay_invalid_update", {
          detail: "relay update failed validation",
          details: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`),
        });
      const problem = reasonProblem(parsed.data);
      if (problem) throw new RouterError("relay_reason_not_allowed", { detail: problem });

      const protection = await protectionForIngest(c.env, config, clock);
      // The capacity watch sees the relay's reads and writes as it sees ingest's: the sizes D1 reports, the update
      // counted in its shard's rate, and the same 503 storage_full when no shard that takes new events has room.
      const shards = shardsOf(c.env, config);
      const watched = capacity.watch(c.env, shards, c.executionCtx, config);
      let accepted: Awaited<ReturnType<typeof acceptUpdate>>;
      try {
        accepted = await acceptUpdate({
          env: watched.env,
          config,
          clock,
          protection,
          source,
          orderId,
          request: parsed.data,
          requestedBy: system,
          forced: false,
          beforeStore: (writable) =>
            capacity.refuseWhenFull(c.env, c.executionCtx, config, withMapStates(shards, writable)),
        });
        if (!accepted.duplicate && accepted.updateId) watched.stored(shardOfEventId(accepted.updateId) ?? 0, 1);
      } catch (err) {
        capacity.writeFailed(err, c.env, c.executionCtx, config, shards);
        throw err;
      } finally {
        watched.settle();
      }
      return c.json(
        {
          accepted: true,
          updateId: accepted.updateId,
          orderId,
          status: parsed.data.status,
          previous: accepted.previous,
          duplicate: accepted.duplicate,
        },
        202,
      );
    },
  );
  return relay;
}
