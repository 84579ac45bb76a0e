/**
 * Dead letters: the API's list of dead deliveries (every one in a window, in key order), the dashboard's page of
 * them (newest event first, through the dead-letter index), and the count a redrive's confirmation shows.
 */
import type { z } from "@hono/zod-openapi";
import { decodeCursor, DeliveryCursorSchema, EventCursorSchema, nextCursor } from "../core/cursor.ts";
import {
  countDeadLetters,
  listCurrentDeliveries,
  listDeadLetters as listStoredDeadLetters,
  type CurrentDelivery,
} from "../storage/admin-queries.ts";
import type { OperationContext } from "./context.ts";
import type { DeadLettersQuery, RedriveWindow } from "./inputs.ts";

export type { CurrentDelivery, DeadLetter } from "../storage/admin-queries.ts";

const msOf = (value: string | undefined) => (value === undefined ? undefined : Date.parse(value));

/** The admin API's list: every dead delivery (the current generation of each) created in the window. */
export async function listDeadLetters(ctx: OperationContext, q: z.output<typeof DeadLettersQuery>) {
  const cursor = q.cursor ? decodeCursor(q.cursor, DeliveryCursorSchema) : null;
  const deliveries: CurrentDelivery[] = await listCurrentDeliveries(
    ctx.env.DB,
    { status: "dead", destination: q.destination, since: msOf(q.since), until: msOf(q.until) },
    cursor ? { eventId: cursor[0], destination: cursor[1] } : null,
    q.limit,
  );
  return { deliveries, nextCursor: nextCursor(deliveries, q.limit, (d) => [d.eventId, d.destination]) };
}

/**
 * The dashboard's page: `limit` events holding dead deliveries, newest first, read through the dead-letter index,
 * so it costs the same with a million events stored as with ten.
 */
export async function browseDeadLetters(ctx: OperationContext, q: z.output<typeof DeadLettersQuery>) {
  const cursor = q.cursor ? decodeCursor(q.cursor, EventCursorSchema) : null;
  const { deadLetters, next } = await listStoredDeadLetters(
    ctx.env.DB,
    { destination: q.destination },
    cursor ? { receivedAt: cursor[0], id: cursor[1] } : null,
    q.limit,
  );
  return { deadLetters, nextCursor: next && nextCursor([next], 1, (e) => [e.receivedAt, e.id]) };
}

/** How many dead deliveries a redrive of this window would take, before it is started. */
export async function countRedrive(ctx: OperationContext, w: z.output<typeof RedriveWindow>) {
  const window = { destination: w.destination, since: Date.parse(w.since), until: Date.parse(w.until) };
  return { ...window, count: await countDeadLetters(ctx.env.DB, window) };
}
