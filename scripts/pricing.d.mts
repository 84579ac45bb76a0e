// Types for scripts/pricing.mjs, so the Worker's tests can check the sample responder against the Draft answer check.
export function confirmDraft(
  order: Record<string, unknown>,
  options?: { unavailable?: string[] },
): Record<string, unknown>;
