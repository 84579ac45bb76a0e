import type { RouterConfig } from "./config/schema.ts";
import { RouterError } from "./errors.ts";
import type { Quarantine } from "./event.ts";
import { intake } from "./intake.ts";
import { queryMerchantOf } from "./merchant.ts";
import type { ProviderRegistry } from "./providers/contract.ts";
import type { RouteExplanation } from "./routing.ts";
import { sha256Hex } from "./signatures/inbound.ts";

export interface DryRunRequest {
  source: string;
  /** As the path would give it (draft, order-v4, …); Weedmaps derives it from the status when absent. */
  eventType?: string;
  merchantId?: string;
  payload: unknown;
}

export interface DryRunEvent {
  source: string;
  eventType: string;
  providerOrderId: string | null;
  merchantId: string | null;
  routes: RouteExplanation[];
  deliveries: { destination: string; route: string }[];
  responder: { destination: string; route: string } | null;
  skippedDisabled: { destination: string; route: string }[];
  merchantMismatch: { route: string; field: string } | null;
  /** Set when a real request would be held in quarantine, delivered nowhere. */
  quarantine: Omit<Quarantine, "at"> | null;
}

/**
 * Which routes an event would match and which destinations would get it, with the same checks, adapter and intake
 * as ingest, so a dry run says what a real request would get. Writes nothing. One element per event the payload is
 * (a Leaf Trade V4 envelope of several orders is several).
 */
export async function dryRun(
  config: RouterConfig,
  providers: ProviderRegistry,
  request: DryRunRequest,
): Promise<DryRunEvent[]> {
  const source = config.sources[request.source];
  if (!source) throw new RouterError("unknown_source");
  const adapter = providers[source.provider]!;
  const query = queryMerchantOf(request.merchantId === undefined ? undefined : [request.merchantId]);
  if (!query.ok) throw new RouterError("invalid_merchant", { detail: query.detail });
  const accepted = source.events ?? adapter.eventTypes;
  if (request.eventType !== undefined && accepted && !accepted.includes(request.eventType))
    throw new RouterError("unknown_event_type");
  if (adapter.pathEvent === "required" && request.eventType === undefined) {
    throw new RouterError("invalid_request", {
      details: [`eventType: ${request.source} needs the webhook type, one of ${JSON.stringify(accepted)}`],
    });
  }
  const identified = adapter.identify({
    sourceName: request.source,
    source,
    pathEvent: request.eventType,
    payload: request.payload,
    bodySha256: await sha256Hex(JSON.stringify(request.payload ?? null)),
    maxRecords: config.limits.maxRecordsPerBody,
  });
  if (!identified.ok) throw new RouterError(identified.code, { detail: identified.detail });
  return identified.events.map((identity) => {
    const { merchantId, decision, quarantine } = intake(identity, {
      config,
      sourceName: request.source,
      source,
      adapter,
      queryMerchant: query.value,
      merchantProblem: query.problem,
    });
    return {
      source: request.source,
      eventType: identity.eventType,
      providerOrderId: identity.providerId,
      merchantId,
      routes: decision.explanations,
      deliveries: decision.deliveries,
      responder: decision.responder ?? null,
      skippedDisabled: decision.skippedDisabled,
      merchantMismatch: decision.merchantMismatch ?? null,
      quarantine,
    };
  });
}
