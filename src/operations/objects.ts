/** Where an object's events are: the id range its digest gives in each source it may belong to (src/core/event-id.ts). */
import { objectDigest, objectIdRange } from "../core/event-id.ts";
import type { ObjectEvents } from "../storage/object-events.ts";
import { configOf, type OperationContext } from "./context.ts";

/**
 * An order named without its source may be any configured source's: one range each. The database is shard 0, the
 * only one there is.
 */
export async function objectEvents(
  ctx: OperationContext,
  providerId: string,
  source: string | undefined,
): Promise<ObjectEvents> {
  const sources = source === undefined ? Object.keys(configOf(ctx).sources) : [source];
  const ranges = await Promise.all(
    sources.map(async (s) => ({ source: s, ...objectIdRange(0, await objectDigest(s, providerId)) })),
  );
  return { providerId, ranges, source };
}
