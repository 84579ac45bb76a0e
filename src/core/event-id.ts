/**
 * Event ids. An id is derived from what the signed body says, so a provider's retry of one event computes the same
 * id and is a duplicate by the primary key alone:
 *
 *   evt_<shard>_<object digest: 8 hex><identity digest: 24 hex>
 *
 * - `shard` is the database the event lives in (0 for the first), so a read by id goes to one database.
 * - The object digest is SHA-256 of the source and the provider's object id (an order's or an issue's id), so every
 *   event of one order sorts into one range of the primary key: a customer's deletion request and an order's
 *   timeline read that range, and no secondary index on the provider id is written per event. An event with no
 *   object id uses the start of its identity digest instead.
 * - The identity digest is SHA-256 of the idempotency key.
 *
 * Ids stored before this scheme (migrations/0012) are `evt_<32 hex>`, the start of the identity digest, all in
 * shard 0. They stay valid: they are read, replayed and purged as they are.
 */
import { sha256Hex } from "./signatures/inbound.ts";

/** Either form; `shard` is absent for the earlier form. */
export const EVENT_ID_PATTERN = /^evt_(?:(\d{1,3})_)?([0-9a-f]{32})$/;
/** The same, as a string for schemas that take a pattern. */
export const EVENT_ID_REGEX = "^evt_(?:\\d{1,3}_)?[0-9a-f]{32}$";

const OBJECT_HEX = 8;
const IDENTITY_HEX = 32 - OBJECT_HEX;

export interface EventKey {
  source: string;
  /** The provider's id of the object the event is about, from the signed body; null when it names none. */
  providerId: string | null;
  idempotencyKey: string;
}

/** The digests an id is made of: the placement of an object and the identity of one event about it. */
export interface EventDigests {
  object: string;
  identity: string;
}

export async function eventDigests(key: EventKey): Promise<EventDigests> {
  const identity = await sha256Hex(key.idempotencyKey);
  const object = key.providerId === null ? identity : await objectDigest(key.source, key.providerId);
  return { object, identity };
}

/** The digest every event about one object shares. A NUL separates the parts: neither may contain one in an id. */
export async function objectDigest(source: string, providerId: string): Promise<string> {
  return sha256Hex(`${source}\u0000${providerId}`);
}

export function eventIdOf(shard: number, digests: EventDigests): string {
  return `evt_${shard}_${digests.object.slice(0, OBJECT_HEX)}${digests.identity.slice(0, IDENTITY_HEX)}`;
}

/** The id the same event had before object digests (migrations/0012): what a retry across the upgrade matches. */
export function earlierEventId(digests: EventDigests): string {
  return `evt_${digests.identity.slice(0, 32)}`;
}

/** The shard an id names; an id of the earlier form lives in shard 0. Null for a string that is not an event id. */
export function shardOfEventId(id: string): number | null {
  const match = EVENT_ID_PATTERN.exec(id);
  if (!match) return null;
  return match[1] === undefined ? 0 : Number(match[1]);
}

/**
 * The primary-key range of one object's events in one shard, `[from, to)`: every id of the current form that starts
 * with the object's digest. Ids are lowercase hex after the prefix, and "g" sorts after every hex digit.
 */
export function objectIdRange(shard: number, object: string): { from: string; to: string } {
  const prefix = `evt_${shard}_${object.slice(0, OBJECT_HEX)}`;
  return { from: prefix, to: `${prefix}g` };
}
