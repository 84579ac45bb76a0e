import type { SourceConfig } from "../../config/schema";
import { generic } from "./generic";
import { leaftrade } from "./leaftrade";
import type { ProviderAdapter } from "./types";
import { weedmaps } from "./weedmaps";

export type { EventIdentity, ProviderAdapter } from "./types";

const ADAPTERS: Record<SourceConfig["provider"], ProviderAdapter> = { weedmaps, leaftrade, generic };

export function adapterFor(source: SourceConfig): ProviderAdapter {
  return ADAPTERS[source.provider];
}
