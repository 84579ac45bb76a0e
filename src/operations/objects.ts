/** Where an object's events are: the id range its digest gives in each shard and source it may belong to (src/core/event-id.ts). */
import { objectDigest, objectIdRange } from "../core/event-id.ts";
import type { ObjectEvents } from "../storage/object-events.ts";
import { configOf, type OperationContext } from "./context.ts";

/**
 * An order named without its source may be any configured source's: one range each. Every configured shard gets its
 * ranges, read-only ones too: an order's events may sit in different shards across versions of the shard map.
 */
export async function objectEvents(
  ctx: OperationContext,
  providerId: string,
  source: string | undefined,
): Promise<ObjectEvents> {
  const config = configOf(ctx);
  const sources = source === undefined ? Object.keys(config.sources) : [source];
  const digests = await Promise.all(
    sources.map(async (s) => ({ source: s, digest: await objectDigest(s, providerId) })),
  );
  const ranges = config.storage.shards.flatMap(({ id: shard }) =>
    digests.map(({ source: s, digest }) => ({ shard, source: s, ...objectIdRange(shard, digest) })),
  );
  return { providerId, ranges, source };
}
