/**
 * Sending one alert to one channel: a JSON webhook (signed with Standard Webhooks when it names a secret), a
 * Slack-compatible incoming webhook (`{"text": …}`, its URL a Worker secret), or a configured destination (its URL,
 * headers and signature, through the one delivery client). An alert carries ids, counts and reasons only.
 */
import { readVar } from "../config/load.ts";
import type { Clock } from "../core/clock.ts";
import type { RouterConfig } from "../core/config/schema.ts";
import { alertText, type Alert } from "../core/controls.ts";
import { signStandardWebhook } from "../core/signatures/standard-webhooks.ts";
import { sendToDestination } from "./client.ts";

const ALERT_TIMEOUT_MS = 10_000;

export type AlertSendResult = { ok: true } | { ok: false; error: string; permanent: boolean };

/** The JSON an alert webhook receives. */
export function alertBody(alert: Alert): Record<string, unknown> {
  return { type: "router.alert", ...alert, at: new Date(alert.at).toISOString() };
}

async function post(
  url: string,
  headers: Record<string, string>,
  body: Uint8Array,
  clock: Clock,
): Promise<AlertSendResult> {
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body,
      redirect: "manual",
      signal: clock.timeout(ALERT_TIMEOUT_MS),
    });
    await response.body?.cancel();
    return response.ok ? { ok: true } : { ok: false, error: `http_${response.status}`, permanent: false };
  } catch (err) {
    return {
      ok: false,
      error:
        err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")
          ? "timeout"
          : "network_error",
      permanent: false,
    };
  }
}

export async function sendAlert(
  env: Env,
  config: RouterConfig,
  channelName: string,
  alert: Alert,
  clock: Clock,
): Promise<AlertSendResult> {
  const channel = config.alerts.channels[channelName];
  if (!channel) return { ok: false, error: "channel_removed", permanent: true };
  if (channel.type === "slack") {
    const url = readVar(env, channel.urlSecret);
    if (!url) return { ok: false, error: `secret ${channel.urlSecret} is not set`, permanent: false };
    return post(url, {}, new TextEncoder().encode(JSON.stringify({ text: alertText(alert) })), clock);
  }
  const body = new TextEncoder().encode(JSON.stringify(alertBody(alert)));
  if (channel.type === "webhook") {
    const headers: Record<string, string> = { "webhook-id": alert.id };
    if (channel.signingSecret) {
      const secret = readVar(env, channel.signingSecret);
      if (!secret) return { ok: false, error: `secret ${channel.signingSecret} is not set`, permanent: false };
      const timestamp = Math.floor(clock.now() / 1000);
      headers["webhook-timestamp"] = String(timestamp);
      headers["webhook-signature"] = await signStandardWebhook(secret, alert.id, timestamp, body);
    }
    return post(channel.url, headers, body, clock);
  }
  const destination = config.destinations[channel.destination];
  if (!destination) return { ok: false, error: "destination_removed", permanent: true };
  const result = await sendToDestination(
    env,
    destination,
    {
      id: alert.id,
      source: "router",
      eventType: "router.alert",
      merchantId: null,
      contentType: "application/json",
      body,
    },
    { attempt: 1, timeoutMs: Math.min(destination.timeoutMs, ALERT_TIMEOUT_MS), clock },
  );
  if (result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300) return { ok: true };
  return {
    ok: false,
    error: result.transportError ?? `http_${result.statusCode}`,
    permanent: result.transportError === "invalid_header",
  };
}
