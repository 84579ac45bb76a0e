import type { ProviderRegistry } from "./contract.ts";
import { generic } from "./generic.ts";
import { leaftrade } from "./leaftrade.ts";
import { weedmaps } from "./weedmaps.ts";

export type { EventIdentity, IdentifyInput, ProviderAdapter, ProviderRegistry } from "./contract.ts";

/** The providers a deployment knows. The config's `provider` enum is derived from these names. */
export const BUILTIN_PROVIDERS: ProviderRegistry = Object.fromEntries(
  [weedmaps, leaftrade, generic].map((adapter) => [adapter.name, adapter]),
);
