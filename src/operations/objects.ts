/** Where an object's events are: the id range its digest gives in each shard and source it may belong to (src/core/event-id.ts). */
import { objectEventsIn, type ObjectEvents } from "../storage/object-events.ts";
import { configOf, type OperationContext } from "./context.ts";

/** An order named without its source may be any configured source's: one range each, in every configured shard. */
export async function objectEvents(
  ctx: OperationContext,
  providerId: string,
  source: string | undefined,
): Promise<ObjectEvents> {
  const config = configOf(ctx);
  const sources = source === undefined ? Object.keys(config.sources) : [source];
  return objectEventsIn(
    config.storage.shards.map((s) => s.id),
    sources,
    providerId,
    source,
  );
}
