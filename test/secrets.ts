/**
 * The secret a provider's fixtures are signed with (vitest.config.ts signs every fixture folder with it). A source
 * in a test config names a Worker secret bound to this value; a test-only provider binds its own the same way.
 */
export function fixtureSecret(provider: string): string {
  return `fixture-signing-secret-${provider}`;
}

/** Test-only secret values, bound into the Worker by vitest.config.ts. Never used outside tests. */
export const TEST_SECRETS = {
  WEEDMAPS_CLIENT_SECRET: fixtureSecret("weedmaps"),
  WEEDMAPS_CLIENT_SECRET_PREVIOUS: "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
  LEAFTRADE_WEBHOOK_SECRET: fixtureSecret("leaftrade"),
  ACME_SIGNING_SECRET: "acme-test-secret",
  PARTNER_BEARER_TOKEN: "partner-token-abc123",
  POS_SIGNING_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  ERP_SIGNING_SECRET: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
  PRICING_SIGNING_SECRET: "whsec_dGVzdC1wcmljaW5nLXNpZ25pbmcta2V5LTE=",
  POS_API_TOKEN: "pos-api-token-xyz",
  // The status relay: an internal system's bearer token and another's Standard Webhooks key, and Weedmaps' client.
  RELAY_POS_TOKEN: "relay-pos-token-0123456789",
  RELAY_ERP_SIGNING_SECRET: "whsec_cmVsYXktZXJwLXNpZ25pbmcta2V5LTE=",
  WEEDMAPS_API_CLIENT_ID: "weedmaps-test-client-id",
  WEEDMAPS_API_CLIENT_SECRET: "weedmaps-test-client-secret",
  ADMIN_TOKEN: "admin-test-token-0123456789",
  ADMIN_REVEAL_TOKEN: "reveal-test-token-9876543210",
  // The payload key ring: one key, "test-a". Rotation tests bind a ring of their own.
  PAYLOAD_KEYS: "test-a:6P7FfcwCEY/vfCue5mwHFEphifobhKahtk4CyDhTmyc=",
} as const;
