/**
 * Dead letters: one list for the admin API and the dashboard (newest event first, through the dead-letter index),
 * and the count a redrive's confirmation shows.
 */
import type { z } from "@hono/zod-openapi";
import { decodeCursor, EventCursorSchema, nextCursor } from "../core/cursor.ts";
import { shardsOf } from "../config/shards.ts";
import { countDeadLettersIn, listDeadLetters as listStoredDeadLetters } from "../storage/admin-queries.ts";
import { configOf, type OperationContext } from "./context.ts";
import type { DeadLettersQuery, RedriveWindow } from "./inputs.ts";

export type { DeadLetter } from "../storage/admin-queries.ts";

const msOf = (value: string | undefined) => (value === undefined ? undefined : Date.parse(value));

/**
 * A page of dead deliveries (the current generation of each): `limit` events holding one, newest first, read
 * through each shard's dead-letter index at once and merged, so a page costs the same with a million events stored
 * as with ten.
 */
export async function listDeadLetters(ctx: OperationContext, q: z.output<typeof DeadLettersQuery>) {
  const cursor = q.cursor ? decodeCursor(q.cursor, EventCursorSchema) : null;
  const { deadLetters, next } = await listStoredDeadLetters(
    shardsOf(ctx.env, configOf(ctx)),
    { destination: q.destination, since: msOf(q.since), until: msOf(q.until) },
    cursor ? { receivedAt: cursor[0], id: cursor[1] } : null,
    q.limit,
  );
  return { deadLetters, nextCursor: next && nextCursor([next], 1, (e) => [e.receivedAt, e.id]) };
}

/** How many dead deliveries a redrive of this window would take, before it is started: the sum over the shards. */
export async function countRedrive(ctx: OperationContext, w: z.output<typeof RedriveWindow>) {
  const window = { destination: w.destination, since: Date.parse(w.since), until: Date.parse(w.until) };
  return { ...window, count: await countDeadLettersIn(shardsOf(ctx.env, configOf(ctx)), window) };
}
