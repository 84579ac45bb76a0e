import type { Clock } from "./clock.ts";
import type { ProviderRegistry } from "./providers/contract.ts";

/**
 * What a Worker is built from besides its bindings: the providers it knows and the clock it reads. Production uses
 * the built-in providers and the system clock; a test adds a provider of its own or holds time still.
 */
export interface RouterDeps {
  providers: ProviderRegistry;
  clock: Clock;
}
