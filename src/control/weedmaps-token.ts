/**
 * The bearer token of one Weedmaps Orders API destination, kept by that destination's Durable Object, so every
 * consumer in every isolate shares one token and the token endpoint (one request a minute) is asked once: a fetch
 * in flight is joined by every caller (single flight), and the token is reused until day 7 (src/core/relay.ts).
 *
 * The token is kept in the object's own storage, which only this object reads: never in D1, a log or an answer.
 */
import type { DestinationConfig } from "../core/config/schema.ts";
import { errorMessage } from "../core/errors.ts";
import { NO_TOKEN, planToken, type TokenState } from "../core/relay.ts";
import { logEvent } from "../telemetry/log.ts";

/** What a consumer gets: a token, or why not and when to try again. */
export type TokenAnswer = { token: string } | { unavailable: string; retryInMs: number };

/** What the object needs to fetch a token: the API's base, the path, the secrets' names and the scope. */
export interface TokenSettings {
  baseUrl: string;
  tokenPath: string;
  clientId: string;
  clientSecret: string;
  scope?: string;
  timeoutMs: number;
}

export function tokenSettings(destination: DestinationConfig): TokenSettings | null {
  const api = destination.weedmapsOrders;
  if (!api) return null;
  return {
    baseUrl: destination.url,
    tokenPath: api.tokenPath,
    clientId: api.clientId,
    clientSecret: api.clientSecret,
    ...(api.scope === undefined ? {} : { scope: api.scope }),
    timeoutMs: destination.timeoutMs,
  };
}

const STORAGE_KEY = "weedmaps-token";

/** The token endpoint's answer: OAuth 2.0's `access_token` (an assumption: Weedmaps shows token_type and expires_in). */
interface TokenResponse {
  access_token?: unknown;
  expires_in?: unknown;
}

export class TokenHolder {
  private state: TokenState | null = null;
  private inFlight: Promise<TokenAnswer> | null = null;

  private readonly storage: DurableObjectStorage;
  private readonly env: Env;

  constructor(storage: DurableObjectStorage, env: Env) {
    this.storage = storage;
    this.env = env;
  }

  private async load(): Promise<TokenState> {
    this.state ??= (await this.storage.get<TokenState>(STORAGE_KEY)) ?? NO_TOKEN;
    return this.state;
  }

  private async save(state: TokenState): Promise<void> {
    this.state = state;
    await this.storage.put(STORAGE_KEY, state);
  }

  /** `rejected`: the token a PUT was just answered 401 with; if it is still the one kept, it is dropped. */
  async get(settings: TokenSettings, now: number, rejected?: string): Promise<TokenAnswer> {
    if (this.inFlight) return this.inFlight;
    let state = await this.load();
    if (rejected !== undefined && state.token === rejected && !state.rejected) {
      state = { ...state, rejected: true };
      await this.save(state);
      logEvent("warn", "weedmaps_token_rejected", { note: "a PUT was answered 401; a new token will be fetched" });
    }
    const plan = planToken(state, now);
    if (plan.kind === "use") return { token: plan.token };
    if (plan.kind === "wait") return { unavailable: "token_wait", retryInMs: plan.waitMs };
    this.inFlight = this.fetchToken(settings, state, now).finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async fetchToken(settings: TokenSettings, previous: TokenState, now: number): Promise<TokenAnswer> {
    // Recorded before the request, so a crash or a timeout still counts against the one-a-minute limit.
    await this.save({ ...previous, lastFetchAt: now });
    const clientId = this.env[settings.clientId as keyof Env];
    const clientSecret = this.env[settings.clientSecret as keyof Env];
    if (typeof clientId !== "string" || typeof clientSecret !== "string" || !clientId || !clientSecret) {
      logEvent("error", "weedmaps_token_failed", { reason: "client id or secret not set" });
      return { unavailable: "token_config_error", retryInMs: 60_000 };
    }
    try {
      // Under the base's own path (a proxy or the local mock may serve the API below one): not `new URL(path, base)`,
      // which would drop it.
      const response = await fetch(`${settings.baseUrl.replace(/\/+$/, "")}${settings.tokenPath}`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({
          client_id: clientId,
          client_secret: clientSecret,
          grant_type: "client_credentials",
          ...(settings.scope === undefined ? {} : { scope: settings.scope }),
        }),
        redirect: "manual",
        signal: AbortSignal.timeout(settings.timeoutMs),
      });
      if (response.status !== 200 && response.status !== 201) {
        await response.body?.cancel().catch(() => undefined);
        logEvent("error", "weedmaps_token_failed", { statusCode: response.status });
        return { unavailable: `token_http_${response.status}`, retryInMs: 60_000 };
      }
      const json = (await response.json().catch(() => null)) as TokenResponse | null;
      const token = json?.access_token;
      const expiresIn = Number(json?.expires_in);
      if (typeof token !== "string" || token.length === 0 || token.length > 4_096) {
        logEvent("error", "weedmaps_token_failed", { reason: "no access_token in the answer" });
        return { unavailable: "token_unreadable", retryInMs: 60_000 };
      }
      await this.save({
        token,
        obtainedAt: now,
        // 14 days when the answer does not say.
        expiresAt: now + (Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : 1_209_600) * 1000,
        rejected: false,
        lastFetchAt: now,
      });
      logEvent("info", "weedmaps_token_fetched", { expiresInSeconds: Number.isFinite(expiresIn) ? expiresIn : null });
      return { token };
    } catch (err) {
      logEvent("error", "weedmaps_token_failed", { errorMessage: errorMessage(err) });
      return { unavailable: "token_network_error", retryInMs: 60_000 };
    }
  }
}
