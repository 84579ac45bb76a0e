import type { RouteConfig, RouterConfig } from "./config/schema.ts";
import { readField, readScalar } from "./fields.ts";

export interface RoutingInput {
  source: string;
  eventType: string;
  merchantId: string | null;
  /** The signed payload (for Leaf Trade, the order inside `results`). */
  subject: unknown;
}

export interface RouteExplanation {
  route: string;
  matched: boolean;
  reason: string;
}

export interface PlannedDelivery {
  destination: string;
  route: string;
}

export interface RoutingDecision {
  deliveries: PlannedDelivery[];
  /** Weedmaps Draft: the destination whose answer goes back to the provider. */
  responder?: PlannedDelivery;
  /** Set when a matching route requires the unsigned merchant to equal a signed field, and it does not. */
  merchantMismatch?: { route: string; field: string };
  explanations: RouteExplanation[];
  /** Destinations a matching route names but that are disabled, so no delivery is created. */
  skippedDisabled: PlannedDelivery[];
}

function conditionFails(route: RouteConfig, subject: unknown): string | undefined {
  for (const condition of route.match) {
    const value = readField(subject, condition.field);
    if (condition.exists !== undefined && (value !== undefined && value !== null) !== condition.exists) {
      return `${condition.field} ${condition.exists ? "is missing" : "is present"}`;
    }
    if (condition.equals !== undefined && value !== condition.equals) {
      return `${condition.field} is not ${JSON.stringify(condition.equals)}`;
    }
    if (condition.in !== undefined && !condition.in.some((candidate) => candidate === value)) {
      return `${condition.field} is not one of ${JSON.stringify(condition.in)}`;
    }
  }
  return undefined;
}

function explainMiss(route: RouteConfig, input: RoutingInput): string | undefined {
  if (route.source !== input.source) return `source is not ${route.source}`;
  if (route.events && !route.events.includes(input.eventType))
    return `event type ${input.eventType} is not in [${route.events.join(", ")}]`;
  if (route.merchants && (input.merchantId === null || !route.merchants.includes(input.merchantId))) {
    return input.merchantId === null
      ? "no merchant given"
      : `merchant ${input.merchantId} is not in [${route.merchants.join(", ")}]`;
  }
  return conditionFails(route, input.subject);
}

/** Pure: which routes match, which destinations get a delivery, and why. Used by ingest and the admin dry run. */
export function routeEvent(config: RouterConfig, input: RoutingInput): RoutingDecision {
  const decision: RoutingDecision = { deliveries: [], explanations: [], skippedDisabled: [] };
  const planned = new Set<string>();
  for (const route of config.routes) {
    const miss = explainMiss(route, input);
    if (miss) {
      decision.explanations.push({ route: route.name, matched: false, reason: miss });
      continue;
    }
    decision.explanations.push({
      route: route.name,
      matched: true,
      reason: "source, event type, merchant and conditions match",
    });
    if (route.requireMerchantField && !decision.merchantMismatch) {
      const signed = readScalar(input.subject, route.requireMerchantField);
      if (input.merchantId === null || signed !== input.merchantId) {
        decision.merchantMismatch = { route: route.name, field: route.requireMerchantField };
      }
    }
    if (route.responder && !decision.responder) {
      decision.responder = { destination: route.responder, route: route.name };
    }
    for (const destination of route.destinations) {
      if (planned.has(destination)) continue;
      planned.add(destination);
      const target = { destination, route: route.name };
      if (config.destinations[destination]?.enabled === false) decision.skippedDisabled.push(target);
      else decision.deliveries.push(target);
    }
  }
  return decision;
}
