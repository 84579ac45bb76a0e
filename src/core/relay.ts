/**
 * The status relay (docs/relay.md): an internal system tells Weedmaps where an order is, through the router. Pure:
 * the statuses and reasons Weedmaps documents, the table of allowed moves, one order's state from its events, and
 * what a request does to it.
 *
 * An update is stored as an event of the order (type `relay.<status>`), in the order's own id range, so its
 * timeline, purge, replay and dead letters are the order's. Its idempotency key is the order and the update's
 * sequence number, so two requests that read the same state race for one id: the loser sees the winner's update
 * and is decided again. A state is never kept twice: it is read back from the order's events each time.
 */
import { z } from "zod";

/** What a POS may set (Weedmaps' 2026-01 Orders API). `PENDING` is where the Create callback leaves an order. */
export const RELAY_STATUSES = [
  "IN_PROGRESS",
  "READY_FOR_ATTAINMENT",
  "COMPLETE",
  "CANCELED_CUSTOMER",
  "CANCELED_SELLER",
  "FAILED",
] as const;
export type RelayStatus = (typeof RELAY_STATUSES)[number];
export const ORDER_STATUSES = ["PENDING", ...RELAY_STATUSES] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const CANCEL_STATUSES: readonly RelayStatus[] = ["CANCELED_CUSTOMER", "CANCELED_SELLER"];

/** `canceledReason`, only with a cancel status. */
export const CANCELED_REASONS = [
  "OUT_OF_STOCK",
  "CUSTOMER_REQUEST",
  "PAYMENT_FAILURE",
  "FRAUD_DETECTED",
  "POS_CLOSED",
  "DELIVERY_ISSUE",
  "ORDER_TOO_EXPENSIVE",
  "ID_ISSUE",
  "CUSTOMER_NO_SHOW",
  "EXCEEDS_LIMIT",
  "OTHER",
] as const;

export type Transitions = Readonly<Partial<Record<OrderStatus, readonly OrderStatus[]>>>;

const TERMINAL: readonly OrderStatus[] = [];
const ENDINGS: readonly OrderStatus[] = ["COMPLETE", "CANCELED_CUSTOMER", "CANCELED_SELLER", "FAILED"];

/**
 * The documented flow (PENDING → IN_PROGRESS → READY_FOR_ATTAINMENT → an ending), forward only, skipping allowed:
 * Weedmaps does not say which moves it refuses, so the router refuses only going back and leaving an ending.
 */
export const DEFAULT_TRANSITIONS: Transitions = {
  PENDING: ["IN_PROGRESS", "READY_FOR_ATTAINMENT", ...ENDINGS],
  IN_PROGRESS: ["READY_FOR_ATTAINMENT", ...ENDINGS],
  READY_FOR_ATTAINMENT: ENDINGS,
  COMPLETE: TERMINAL,
  CANCELED_CUSTOMER: TERMINAL,
  CANCELED_SELLER: TERMINAL,
  FAILED: TERMINAL,
};

/** A cycle in the table would let two systems move an order back and forth: the statuses on one, or null. */
export function transitionCycle(transitions: Transitions): OrderStatus[] | null {
  const state = new Map<OrderStatus, "visiting" | "done">();
  const path: OrderStatus[] = [];
  const visit = (status: OrderStatus): OrderStatus[] | null => {
    if (state.get(status) === "done") return null;
    if (state.get(status) === "visiting") return [...path.slice(path.indexOf(status)), status];
    state.set(status, "visiting");
    path.push(status);
    for (const next of transitions[status] ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(status, "done");
    return null;
  };
  for (const status of ORDER_STATUSES) {
    const cycle = visit(status);
    if (cycle) return cycle;
  }
  return null;
}

/** What an internal system sends. Unknown keys are refused: a typo must not pass as an update without its reason. */
export const RelayRequestSchema = z.strictObject({
  status: z.enum(RELAY_STATUSES),
  canceledReason: z.enum(CANCELED_REASONS).optional(),
});
export type RelayRequest = z.output<typeof RelayRequestSchema>;

/** A reason on a status that takes none: stable code `relay_reason_not_allowed`. */
export function reasonProblem(request: RelayRequest): string | null {
  return request.canceledReason !== undefined && !CANCEL_STATUSES.includes(request.status)
    ? `canceledReason goes only with ${CANCEL_STATUSES.join(" or ")}`
    : null;
}

/** The route name an update's delivery carries: no configured route sends it, the relay does. Ordered "latest". */
export const RELAY_ROUTE = "relay";

/** The event type an update is stored as: its status, in the order's timeline beside Weedmaps' own callbacks. */
export const RELAY_TYPE_PREFIX = "relay.";
export const relayEventType = (status: RelayStatus) => `${RELAY_TYPE_PREFIX}${status.toLowerCase()}`;

/** The idempotency key of an order's n-th update: what two requests that read the same state both compute. */
export const relayIdempotencyKey = (source: string, orderId: string, sequence: number) =>
  ["relay", source, encodeURIComponent(orderId), String(sequence)].join(":");

function sequenceOf(idempotencyKey: string): number {
  const last = idempotencyKey.slice(idempotencyKey.lastIndexOf(":") + 1);
  return /^\d+$/.test(last) ? Number(last) : 0;
}

/**
 * The status an event of the order stands for: the Create leaves it PENDING, a later callback is its status (the
 * Weedmaps adapter types it by its status in lower case), an update is the status it sent. Drafts and anything else
 * say nothing about the order's state.
 */
export function statusOfEventType(eventType: string): { status: OrderStatus; relayed: boolean } | null {
  const relayed = eventType.startsWith(RELAY_TYPE_PREFIX);
  const name = relayed ? eventType.slice(RELAY_TYPE_PREFIX.length) : eventType;
  if (!relayed && name === "create") return { status: "PENDING", relayed };
  const status = name.toUpperCase() as RelayStatus;
  return RELAY_STATUSES.includes(status) ? { status, relayed } : null;
}

/** One of the order's events, as the state is read from it. */
export interface OrderEventRow {
  id: string;
  eventType: string;
  idempotencyKey: string;
  merchantId: string | null;
  receivedAt: number;
  /** Held (quarantined) and not released: it says nothing yet. */
  held: boolean;
}

export interface OrderState {
  /** The Create that makes the order known: its id and merchant (the listing the update goes to). */
  create: { id: string; merchantId: string | null; held: boolean } | null;
  status: OrderStatus | null;
  /** The update that set the status, when an update did (not a callback). */
  updateId: string | null;
  /** How many updates the order has: the next one is number `updates + 1`. */
  updates: number;
}

/**
 * The order's state: its events in the order they were received. An update always moves the state: it was checked
 * against the state when it was accepted, or forced by an operator. A callback moves it only forward, by the table,
 * so a late or repeated callback (Weedmaps may echo an update back) never moves an order back.
 */
export function orderState(rows: readonly OrderEventRow[], transitions: Transitions): OrderState {
  const known = rows
    .map((row) => ({ row, kind: statusOfEventType(row.eventType) }))
    .filter((r): r is { row: OrderEventRow; kind: NonNullable<typeof r.kind> } => r.kind !== null);
  // Callbacks by the time they came (the Create first at one instant: it is the order); updates by their sequence,
  // which is the order they were accepted in, whatever an isolate's clock said. The two merged by time.
  const callbacks = known
    .filter((r) => !r.kind.relayed)
    .sort(
      (a, b) =>
        a.row.receivedAt - b.row.receivedAt ||
        Number(a.kind.status !== "PENDING") - Number(b.kind.status !== "PENDING"),
    );
  const updates = known
    .filter((r) => r.kind.relayed)
    .sort((a, b) => sequenceOf(a.row.idempotencyKey) - sequenceOf(b.row.idempotencyKey));
  const kinds: typeof known = [];
  while (callbacks.length > 0 || updates.length > 0) {
    const next =
      updates.length === 0 || (callbacks.length > 0 && callbacks[0]!.row.receivedAt <= updates[0]!.row.receivedAt)
        ? callbacks.shift()!
        : updates.shift()!;
    kinds.push(next);
  }
  const createRow = rows.find((r) => r.eventType === "create") ?? null;
  const state: OrderState = {
    create: createRow && { id: createRow.id, merchantId: createRow.merchantId, held: createRow.held },
    status: null,
    updateId: null,
    updates: 0,
  };
  for (const { row, kind } of kinds) {
    if (kind.relayed) {
      state.updates = Math.max(state.updates, sequenceOf(row.idempotencyKey));
      state.status = kind.status;
      state.updateId = row.id;
    } else if (
      !row.held &&
      (state.status === null ? kind.status === "PENDING" : allowed(transitions, state.status, kind.status))
    ) {
      state.status = kind.status;
      state.updateId = null;
    }
  }
  return state;
}

export function allowed(transitions: Transitions, from: OrderStatus, to: OrderStatus): boolean {
  return (transitions[from] ?? []).includes(to);
}

export type RelayDecision =
  | { kind: "accept" }
  /** Already where the request asks: nothing is sent again. `updateId` is the update that put it there, if one did. */
  | { kind: "unchanged"; updateId: string | null }
  | { kind: "refused"; code: "relay_order_unknown" | "relay_order_held" | "relay_order_no_merchant"; detail: string }
  | { kind: "conflict"; current: OrderStatus; detail: string };

/**
 * What a request does to the order. The same status again is unchanged (one PUT, whoever asked twice); a move the
 * table does not allow is a conflict, unless an operator forces it.
 */
export function decideUpdate(
  state: OrderState,
  request: RelayRequest,
  transitions: Transitions,
  forced: boolean,
): RelayDecision {
  if (!state.create)
    return { kind: "refused", code: "relay_order_unknown", detail: "no verified Create of this order is stored" };
  if (state.create.held)
    return { kind: "refused", code: "relay_order_held", detail: "the order's Create is held for review" };
  if (state.create.merchantId === null)
    return { kind: "refused", code: "relay_order_no_merchant", detail: "the order's Create named no merchant" };
  const current = state.status ?? "PENDING";
  if (current === request.status && !forced) return { kind: "unchanged", updateId: state.updateId };
  if (forced || allowed(transitions, current, request.status)) return { kind: "accept" };
  const terminal = (transitions[current] ?? []).length === 0;
  return {
    kind: "conflict",
    current,
    detail: terminal
      ? `the order is ${current}, which ends it`
      : `the order is ${current}; ${request.status} is not a move forward from it`,
  };
}

/** What is stored as the update's body, and so shown in its event page: the PUT's body and who asked. */
export interface RelayBody {
  status: RelayStatus;
  canceledReason?: string;
  /** The internal system that asked, or `operator:<who>` for a forced update. */
  requestedBy: string;
  forced: boolean;
}

/** The PUT's body from the stored update: only what Weedmaps' 2026-01 API takes. */
export function putBodyOf(stored: Uint8Array): string {
  const body = JSON.parse(new TextDecoder().decode(stored)) as RelayBody;
  return JSON.stringify(
    body.canceledReason === undefined
      ? { status: body.status }
      : { status: body.status, canceledReason: body.canceledReason },
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The bearer token (one per Orders API destination, kept by its Durable Object).

/** Weedmaps gives the same token back until day 7 of its 14: a fetch before then gains nothing. */
export const TOKEN_REUSE_MS = 7 * 24 * 3_600_000;
/** The token endpoint allows one request a minute. */
export const TOKEN_FETCH_INTERVAL_MS = 60_000;

export interface TokenState {
  token: string | null;
  obtainedAt: number | null;
  expiresAt: number | null;
  /** A PUT answered 401 with this token: it is not used again. */
  rejected: boolean;
  /** The last request to the token endpoint, answered or not: the next waits a minute after it. */
  lastFetchAt: number | null;
}

export const NO_TOKEN: TokenState = {
  token: null,
  obtainedAt: null,
  expiresAt: null,
  rejected: false,
  lastFetchAt: null,
};

export type TokenPlan = { kind: "use"; token: string } | { kind: "fetch" } | { kind: "wait"; waitMs: number };

/**
 * Use the token until day 7 (or its expiry, if sooner), then fetch; a token a PUT was refused with is fetched anew.
 * Never more than one fetch a minute: until then, a token still valid is used, and otherwise the caller waits.
 */
export function planToken(state: TokenState, now: number): TokenPlan {
  const usable = state.token !== null && !state.rejected && (state.expiresAt ?? 0) > now;
  const fresh = usable && now - (state.obtainedAt ?? 0) < TOKEN_REUSE_MS;
  if (fresh) return { kind: "use", token: state.token! };
  const nextFetch = (state.lastFetchAt ?? -Infinity) + TOKEN_FETCH_INTERVAL_MS;
  if (now >= nextFetch) return { kind: "fetch" };
  return usable ? { kind: "use", token: state.token! } : { kind: "wait", waitMs: nextFetch - now };
}
