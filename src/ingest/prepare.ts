import type { Clock } from "../core/clock.ts";
import type { NewEvent } from "../core/event.ts";
import { eventDigests, type EventDigests } from "../core/event-id.ts";
import { intake, type IntakeOptions } from "../core/intake.ts";
import type { EventIdentity } from "../core/providers/contract.ts";
import type { RoutingDecision } from "../core/routing.ts";
import type { Placement } from "../core/shards.ts";
import { sha256Hex } from "../core/signatures/inbound.ts";

export interface PreparedEvent {
  event: NewEvent;
  /** Where it goes; empty while quarantined. */
  decision: RoutingDecision;
}

export interface PrepareOptions extends IntakeOptions {
  clock: Clock;
  contentType: string;
  body: ArrayBuffer;
  bodySha256: string;
  /** Where an event with these digests is stored (src/core/shards.ts, with the shard map of this request). */
  place: (digests: EventDigests) => Placement;
}

const encoder = new TextEncoder();

/** The events to store from what the adapter read in the signed body: ids, bytes, merchant, routing, any hold. */
export async function prepareEvents(
  identities: readonly EventIdentity[],
  options: PrepareOptions,
): Promise<PreparedEvent[]> {
  const receivedAt = options.clock.now();
  return Promise.all(
    identities.map(async (identity) => {
      const body = identity.body === undefined ? options.body : (encoder.encode(identity.body).buffer as ArrayBuffer);
      const bodySha256 = identity.body === undefined ? options.bodySha256 : await sha256Hex(body);
      const { merchantId, decision, quarantine } = intake(identity, options);
      const digests = await eventDigests({
        source: options.sourceName,
        providerId: identity.providerId,
        idempotencyKey: identity.idempotencyKey,
      });
      const placement = options.place(digests);
      const event: NewEvent = {
        id: placement.id,
        earlier: placement.earlier,
        idempotencyKey: identity.idempotencyKey,
        ingestId: crypto.randomUUID(),
        source: options.sourceName,
        eventType: identity.eventType,
        merchantId,
        providerId: identity.providerId,
        contentType: options.contentType,
        body,
        bodySha256,
        receivedAt,
        providerTimestamp: identity.providerTimestamp,
        quarantine: quarantine && { ...quarantine, at: receivedAt },
      };
      return { event, decision };
    }),
  );
}
