import type { RouterConfig, SourceConfig } from "./config/schema.ts";
import type { Quarantine } from "./event.ts";
import { readScalar } from "./fields.ts";
import { decideMerchant } from "./merchant.ts";
import {
  heldBody,
  UNIDENTIFIED_TYPE,
  type EventIdentity,
  type IdentifyInput,
  type ProviderAdapter,
} from "./providers/contract.ts";
import { routeEvent, type RoutingDecision } from "./routing.ts";

export interface IntakeOptions {
  config: RouterConfig;
  sourceName: string;
  source: SourceConfig;
  adapter: ProviderAdapter;
  /** The URL's merchant, already checked against the merchant id pattern. Unsigned. */
  queryMerchant: string | undefined;
  /** The URL's merchant could not be used (src/core/merchant.ts): the event is held with this. */
  merchantProblem?: { detail: string; given: string };
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
export function intake(
  identity: EventIdentity,
  { config, sourceName, source, adapter, queryMerchant, merchantProblem }: IntakeOptions,
): Intake {
  const merchantField = source.merchant.field ?? adapter.merchantField;
  const merchant = decideMerchant(
    merchantField ? { field: merchantField, value: readScalar(identity.subject, merchantField) } : undefined,
    queryMerchant,
  );
  const route = (merchantId: string | null) =>
    routeEvent(config, { source: sourceName, eventType: identity.eventType, merchantId, subject: identity.subject });
  let merchantId = merchant.merchantId;
  // The URL names no merchant and the body has no merchant field of its own: where a route of this source pins the
  // merchant to a signed field, that field is the merchant (so routes that select merchants can match).
  if (merchantId === null) {
    const pinned = config.routes.find((r) => r.source === sourceName && r.requireMerchantField)?.requireMerchantField;
    if (pinned) merchantId = readScalar(identity.subject, pinned) ?? null;
  }
  const decision = route(merchantId);
  let quarantine: Intake["quarantine"] = null;
  if (identity.hold) {
    const { reason, detail } = identity.hold;
    quarantine = {
      reason,
      detail,
      field: null,
      route: null,
      queryMerchant: queryMerchant ?? null,
      signedMerchant: null,
    };
  } else if (merchantProblem) {
    const signedMerchant = merchantField ? (readScalar(identity.subject, merchantField) ?? null) : null;
    quarantine = {
      reason: "merchant_url",
      detail: merchantProblem.detail,
      field: merchantField ?? null,
      route: null,
      queryMerchant: merchantProblem.given,
      signedMerchant,
    };
  } else if (merchant.conflict) {
    const { field, queryMerchant: given, signedMerchant } = merchant.conflict;
    quarantine = {
      reason: "merchant_mismatch",
      detail: `the URL names another merchant than the signed ${field}`,
      field,
      route: null,
      queryMerchant: given,
      signedMerchant,
    };
  } else if (decision.merchantMismatch) {
    const { route: routeName, field } = decision.merchantMismatch;
    const detail = `the URL names another merchant than the signed ${field} (route ${routeName})`;
    quarantine = {
      reason: "merchant_mismatch",
      detail,
      field,
      route: routeName,
      queryMerchant: queryMerchant ?? null,
      signedMerchant: readScalar(identity.subject, field) ?? null,
    };
  }
  if (!quarantine) return { merchantId, decision, quarantine };
  // Held: the merchant shown is the signed one (a body hold keeps what the URL or body said); the URL's is in the
  // quarantine record.
  const shown =
    quarantine.reason === "merchant_mismatch" || quarantine.reason === "merchant_url"
      ? quarantine.signedMerchant
      : merchantId;
  return {
    merchantId: shown,
    decision: { ...decision, deliveries: [], responder: undefined, skippedDisabled: [] },
    quarantine,
  };
}

/**
 * The fields of a source's records that decide an event: what it is, its object, its state, its merchant, and what
 * its routes match on. Relative to a record, as the adapter's `records` gives them.
 */
export function identityFieldsOf(
  config: RouterConfig,
  sourceName: string,
  source: SourceConfig,
  adapter: ProviderAdapter,
): string[] {
  const routes = config.routes.filter((r) => r.source === sourceName);
  const fields = [
    ...adapter.identityPaths,
    ...(adapter.identityFields ? [adapter.identityFields.id, adapter.identityFields.updatedAt ?? ""] : []),
    adapter.merchantField ?? "",
    source.merchant.field ?? "",
    source.eventTypeField ?? "",
    ...(source.idempotencyFields ?? []),
    ...routes.flatMap((r) => [r.requireMerchantField ?? "", ...r.match.map((m) => m.field)]),
  ];
  return [...new Set(fields.filter((f) => f.length > 0))];
}

/**
 * Which duplicated keys (paths from src/core/json-inspect.ts, array indexes as digits) fall on an identity field or
 * on an object that holds one: there JSON.parse's last-one-wins and a destination's parser may disagree about what
 * the event is. Pure.
 */
export function ambiguousIdentity(
  duplicateKeys: readonly string[],
  fields: readonly string[],
  recordsPath?: string,
): string[] {
  const paths = recordsPath ? [recordsPath, ...fields, ...fields.map((f) => `${recordsPath}.*.${f}`)] : [...fields];
  const general = (path: string) =>
    path
      .split(".")
      .map((segment) => (/^\d+$/.test(segment) ? "*" : segment))
      .join(".");
  return duplicateKeys.filter((duplicate) => {
    const at = general(duplicate);
    return paths.some((path) => path === at || path.startsWith(`${at}.`));
  });
}

/**
 * A body with a duplicated identity field is one held event, whatever the adapter made of it: which of the values
 * is meant is not ours to guess, and splitting it (a V4 envelope) would guess per order.
 */
export function holdAmbiguous(
  identities: EventIdentity[],
  duplicateKeys: readonly string[],
  config: RouterConfig,
  adapter: ProviderAdapter,
  input: IdentifyInput,
): EventIdentity[] {
  if (duplicateKeys.length === 0 || identities.some((e) => e.hold)) return identities;
  const fields = identityFieldsOf(config, input.sourceName, input.source, adapter);
  const ambiguous = ambiguousIdentity(duplicateKeys, fields, adapter.recordsPath);
  if (ambiguous.length === 0) return identities;
  const [first] = identities;
  const detail = `the signed body sends ${ambiguous.slice(0, 5).join(", ")} more than once`;
  const providerId = identities.length === 1 ? (first?.providerId ?? null) : null;
  const eventType = first?.eventType ?? input.pathEvent ?? UNIDENTIFIED_TYPE;
  return [heldBody(adapter.name, input, eventType, { reason: "ambiguous_json", detail }, input.payload, providerId)];
}
