import type { RouterConfig, SourceConfig } from "./config/schema.ts";
import type { Quarantine } from "./event.ts";
import { readScalar } from "./fields.ts";
import { decideMerchant } from "./merchant.ts";
import type { EventIdentity, ProviderAdapter } from "./providers/contract.ts";
import { routeEvent, type RoutingDecision } from "./routing.ts";

export interface IntakeOptions {
  config: RouterConfig;
  sourceName: string;
  source: SourceConfig;
  adapter: ProviderAdapter;
  /** The URL's merchant, already checked against the merchant id pattern. Unsigned. */
  queryMerchant: string | undefined;
}

export interface Intake {
  merchantId: string | null;
  /** Where it goes; no deliveries and no responder while it is held. */
  decision: RoutingDecision;
  /** Set when the URL's merchant contradicts the signed one: the event is held, not delivered. */
  quarantine: Omit<Quarantine, "at"> | null;
}

/**
 * Pure: whose an identified event is, where it goes, and whether it must be held. Used by ingest for every event
 * and by the admin dry run, so the two never disagree. Where the signed body names the merchant, that is the
 * merchant and the URL is only a fallback; a URL that names another one holds the event in quarantine instead of
 * refusing it (a refusal would lose an authentic order after the provider's retries).
 */
export function intake(identity: EventIdentity, { config, sourceName, source, adapter, queryMerchant }: IntakeOptions): Intake {
  const merchantField = source.merchant.field ?? adapter.merchantField;
  const merchant = decideMerchant(merchantField ? { field: merchantField, value: readScalar(identity.subject, merchantField) } : undefined, queryMerchant);
  const route = (merchantId: string | null) => routeEvent(config, { source: sourceName, eventType: identity.eventType, merchantId, subject: identity.subject });
  let merchantId = merchant.merchantId;
  // The URL names no merchant and the body has no merchant field of its own: where a route of this source pins the
  // merchant to a signed field, that field is the merchant (so routes that select merchants can match).
  if (merchantId === null) {
    const pinned = config.routes.find((r) => r.source === sourceName && r.requireMerchantField)?.requireMerchantField;
    if (pinned) merchantId = readScalar(identity.subject, pinned) ?? null;
  }
  const decision = route(merchantId);
  let quarantine: Intake["quarantine"] = null;
  if (merchant.conflict) {
    const { field, queryMerchant: given, signedMerchant } = merchant.conflict;
    quarantine = { reason: "merchant_mismatch", field, route: null, queryMerchant: given, signedMerchant };
  } else if (decision.merchantMismatch) {
    const { route: routeName, field } = decision.merchantMismatch;
    quarantine = { reason: "merchant_mismatch", field, route: routeName, queryMerchant: queryMerchant ?? null, signedMerchant: readScalar(identity.subject, field) ?? null };
  }
  if (!quarantine) return { merchantId, decision, quarantine };
  // Held: the merchant shown is the signed one; the URL's is in the quarantine record.
  return { merchantId: quarantine.signedMerchant, decision: { ...decision, deliveries: [], responder: undefined, skippedDisabled: [] }, quarantine };
}
