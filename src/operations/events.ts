/**
 * Finding and reading events: one bounded search for the admin API and the dashboard, one event redacted,
 * and the reveal, which takes the reveal token, is throttled per client and is audited before anything is shown.
 */
import type { z } from "@hono/zod-openapi";
import { loadPayloadProtection } from "../config/keys.ts";
import { readVar } from "../config/load.ts";
import { eventDb, shardsOf } from "../config/shards.ts";
import { decodeCursor, EventCursorSchema, nextCursor } from "../core/cursor.ts";
import { RouterError } from "../core/errors.ts";
import type { AttemptRecord } from "../core/delivery-state.ts";
import { diffDraft, type DraftDiff } from "../core/draft-diff.ts";
import { payloadOf, piiPathsOf, redactedPayloadOf, type PayloadView } from "../core/payload-view.ts";
import { redactPaths } from "../core/redact.ts";
import {
  customerValuesOf,
  headersView,
  redactedExcerpt,
  revealedExcerpt,
  type HeadersView,
} from "../core/response-view.ts";
import { verifyHeaderToken } from "../core/signatures/inbound.ts";
import { tokenId } from "../core/signatures/token-id.ts";
import {
  getEventDetail,
  searchEvents as searchStoredEvents,
  type DeliveryDetail,
  type EventDetail,
  type EventFilter,
} from "../storage/admin-queries.ts";
import { failAttempt, guardAttempt, passAttempt, type Attempt } from "../storage/attempts.ts";
import { isSealedText } from "../storage/payloads.ts";
import { configOf, recordAction, type Actor, type OperationContext, type Origin } from "./context.ts";
import type { ListEventsQuery } from "./inputs.ts";
import { objectEvents } from "./objects.ts";

export type { DeliveryDetail, EventDetail, EventSummary } from "../storage/admin-queries.ts";
export { SEARCH_WINDOW } from "../storage/admin-queries.ts";

type EventQuery = z.output<typeof ListEventsQuery>;

const msOf = (value: string | undefined) => (value === undefined ? undefined : Date.parse(value));

async function filterOf(ctx: OperationContext, q: EventQuery): Promise<EventFilter> {
  return {
    source: q.source,
    eventType: q.eventType,
    merchantId: q.merchantId,
    object: q.orderId === undefined ? undefined : await objectEvents(ctx, q.orderId, q.source),
    status: q.status,
    since: msOf(q.since),
    until: msOf(q.until),
  };
}

function cursorOf(q: EventQuery) {
  const cursor = q.cursor ? decodeCursor(q.cursor, EventCursorSchema) : null;
  return cursor ? { receivedAt: cursor[0], id: cursor[1] } : null;
}

/**
 * Events matching a filter, newest first, for the admin API and the dashboard alike. Every page reads a bounded
 * number of rows from each shard, all at once, merged exactly (src/storage/admin-queries.ts `searchEvents`), so a
 * page costs the same with a million events as with ten. A filter no index serves looks at SEARCH_WINDOW events per
 * shard and page: such a page may be short, even empty, and still carry a cursor; `scanned` says how far it looked.
 * The search is over when `nextCursor` is null.
 */
export async function searchEvents(ctx: OperationContext, q: EventQuery) {
  const shards = shardsOf(ctx.env, configOf(ctx));
  const found = await searchStoredEvents(shards, await filterOf(ctx, q), cursorOf(q), q.limit);
  const next = found.next && nextCursor([found.next], 1, (e) => [e.receivedAt, e.id]);
  return { events: found.events, nextCursor: next, scanned: found.scanned };
}

/** One attempt as an operator sees it: what the destination answered, redacted unless revealed. */
export interface AttemptView extends Omit<AttemptRecord, "responseHeaders"> {
  /** A failed attempt's response headers (src/core/response-view.ts); null when none were kept. */
  headers: HeadersView | null;
  /** The excerpt parsed as JSON. */
  responseJson: boolean;
  /** Where customer data was hidden in the excerpt: paths and names, never values. Empty on a reveal. */
  responseRedacted: string[];
}

export interface DeliveryView extends Omit<DeliveryDetail, "attemptLog"> {
  attemptLog: AttemptView[];
}

/** One event as an operator sees it: customer data redacted unless this view is an audited reveal. */
export interface EventView {
  event: EventDetail;
  payload: PayloadView | null;
  /** What a synchronous event's provider was answered, when it was the order. */
  answered: PayloadView | null;
  /**
   * A Draft answered with the order: what the POS changed, field by field (src/core/draft-diff.ts). Values at the
   * source's PII paths are compared redacted unless revealed; other changed fields are named only.
   */
  answerDiff: DraftDiff | null;
  /** Every generation of every delivery, each attempt's response excerpt and headers redacted or opened. */
  deliveries: DeliveryView[];
  revealed: boolean;
  /** The reveal's audit entry. */
  auditId: string | null;
}

async function loadEvent(ctx: OperationContext, eventId: string) {
  const config = configOf(ctx);
  const db = eventDb(ctx.env, config, eventId);
  const found = await getEventDetail(db, await loadPayloadProtection(ctx.env, config), eventId);
  if (!found) throw new RouterError("not_found", { detail: `event ${eventId}` });
  return { ...found, paths: piiPathsOf(config, ctx.providers, found.event.source) };
}

/** Parsed JSON of stored bytes, or undefined when they are not JSON. */
function jsonOf(bytes: Uint8Array | null | undefined): unknown {
  if (!bytes) return undefined;
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    return undefined;
  }
}

/**
 * What the destination answered one attempt, as shown: opened (a destination's words are sealed; a note of the
 * router's own, with no status, is not), then redacted by the payload's rules unless revealed.
 */
async function attemptView(
  event: EventDetail,
  a: AttemptRecord,
  reveal: boolean,
  paths: readonly string[],
  values: readonly string[],
): Promise<AttemptView> {
  const open = async (field: "excerpt" | "headers", stored: string) =>
    isSealedText(stored) ? event.payloads.openText(field, stored) : stored;
  const { responseHeaders: storedHeaders, ...record } = a;
  const headers = storedHeaders ? headersView(await open("headers", storedHeaders), reveal) : null;
  if (a.responseExcerpt === null || a.statusCode === null)
    return { ...record, headers, responseJson: false, responseRedacted: [] };
  const text = await open("excerpt", a.responseExcerpt);
  const shown = reveal ? revealedExcerpt(text) : redactedExcerpt(text, paths, values);
  return {
    ...record,
    responseExcerpt: shown.text,
    headers,
    responseJson: shown.json,
    responseRedacted: shown.redacted,
  };
}

/**
 * A Draft and its answer compared (src/core/draft-diff.ts). Unrevealed, the values at the PII paths are compared
 * as they are shown, redacted; the names of every other top-level field that changed come from the whole orders.
 */
function answerDiffOf(event: EventDetail, reveal: boolean, paths: readonly string[]): DraftDiff | null {
  const asked = jsonOf(event.body);
  const answered = jsonOf(event.responder?.answered.body);
  if (asked === undefined || answered === undefined) return null;
  const whole = diffDraft(asked, answered);
  if (reveal || !whole) return whole;
  const shown = diffDraft(redactPaths(asked, paths).value, redactPaths(answered, paths).value)!;
  return { ...shown, others: whole.others, unchanged: whole.unchanged };
}

async function show(found: Awaited<ReturnType<typeof loadEvent>>, revealedAs: string | null): Promise<EventView> {
  const { event, deliveries, paths } = found;
  const reveal = revealedAs !== null;
  const view = (bytes: Uint8Array) => (reveal ? payloadOf(bytes) : redactedPayloadOf(bytes, paths));
  // This event's own customer values, which an excerpt must not echo unrevealed (a name in an error message).
  const values = reveal ? [] : customerValuesOf(jsonOf(event.body), paths);
  const shown = await Promise.all(
    deliveries.map(async (d) => ({
      ...d,
      attemptLog: await Promise.all(d.attemptLog.map((a) => attemptView(event, a, reveal, paths, values))),
    })),
  );
  const answered = event.responder?.answered.body;
  return {
    event,
    payload: event.body && view(event.body),
    answered: answered ? view(answered) : null,
    answerDiff: event.responder ? answerDiffOf(event, reveal, paths) : null,
    deliveries: shown,
    revealed: reveal,
    auditId: revealedAs,
  };
}

/** One event with every attempt of every delivery, customer data redacted. */
export async function viewEvent(ctx: OperationContext, eventId: string): Promise<EventView> {
  return show(await loadEvent(ctx, eventId), null);
}

/**
 * Revealing customer data takes a second secret, `ADMIN_REVEAL_TOKEN`: the admin token alone (held by scripts and
 * dashboards) shows redacted payloads only. A wrong or missing token is a failed attempt, audited without the token
 * and throttled per client (src/storage/attempts.ts). Checked before anything is read: a wrong token learns
 * nothing, not even whether the event exists. Returns the reveal token's id for the audit log.
 */
async function checkRevealToken(
  ctx: OperationContext,
  origin: Origin,
  eventId: string,
  typed: string | undefined,
): Promise<string> {
  const token = readVar(ctx.env, "ADMIN_REVEAL_TOKEN");
  if (!token) throw new RouterError("reveal_forbidden", { detail: "ADMIN_REVEAL_TOKEN is not set: revealing is off" });
  const attempt: Attempt = { db: ctx.env.DB, scope: "reveal", now: ctx.clock.now(), ...origin, eventId };
  const standing = await guardAttempt(attempt);
  if (!typed) {
    await failAttempt(attempt, "token_missing");
    throw new RouterError("reveal_token_required", { detail: `reveal of ${eventId}: token_missing` });
  }
  if (!verifyHeaderToken(typed, [token], "").ok) {
    await failAttempt(attempt, "token_mismatch");
    throw new RouterError("reveal_forbidden", { detail: `reveal of ${eventId}: token_mismatch` });
  }
  await passAttempt(attempt, standing);
  return tokenId(token);
}

/** The event with its customer data shown, recorded in the audit log (under the reveal token's id) first. */
export async function revealEvent(
  ctx: OperationContext,
  actor: Actor,
  eventId: string,
  typedToken: string | undefined,
): Promise<EventView> {
  const revealedBy = await checkRevealToken(ctx, actor, eventId, typedToken);
  const found = await loadEvent(ctx, eventId);
  // Recorded before anything is shown: a reveal the log does not hold never happened.
  const auditId = await recordAction(ctx, { ...actor, tokenId: revealedBy }, "reveal", eventId, {
    fields: found.paths,
    answer: Boolean(found.event.responder?.answered.body),
  });
  return show(found, auditId);
}
