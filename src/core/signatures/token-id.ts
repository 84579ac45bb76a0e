import { sha256Hex } from "./inbound.ts";

/**
 * What the audit log records of a token: a short hash, the same for every use of one token and different after a
 * rotation, from which the token cannot be recovered.
 */
export async function tokenId(token: string): Promise<string> {
  return `tok_${(await sha256Hex(`webhook-router token id:${token}`)).slice(0, 16)}`;
}
